"""Head lifecycle from the client side: Init, deposit, Close, Fanout (hydra 2.x).

Since hydra 2.0 a head opens directly on ``Init`` (no commit phase); funds enter an open head
through deposits: ``POST /commit`` with ``{"utxoToCommit": UTxO}`` answers a draft deposit
transaction, the owner signs it and submits it to layer 1 (here ``POST /cardano-transaction``
on the same node), and the node announces ``CommitRecorded`` ... ``CommitFinalized``. At the
end, ``Close`` starts the contestation period (``HeadIsClosed``), ``ReadyToFanout`` announces
its end, and ``Fanout`` distributes the head's UTxO on layer 1 (``HeadIsFinalized``).
(api.yaml channels ``/``, ``/commit``, ``/cardano-transaction``; hydra docs "API behavior".)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from zkadapt.channel.hydra.tx import add_witness
from zkadapt.channel.hydra.txread import tx_id_of
from zkadapt.channel.hydra.view import OPEN, HeadView
from zkadapt.channel.hydra.wire import TxEnvelope, client_input
from zkadapt.errors import ChannelError

if TYPE_CHECKING:
    from zkadapt.channel.hydra.feed import HydraHttp
    from zkadapt.crypto.identity import IdentityKey

T = TypeVar("T")


class HeadLifecycle:
    """Head commands for :class:`~zkadapt.channel.hydra.HydraChannel` (a mixin).

    The host class provides ``api``, ``_identity``, ``_http``, ``_send``, ``_await`` and
    ``_inspect``.
    """

    api: str
    _identity: IdentityKey | None
    _http: HydraHttp

    def _send(self, frame: str) -> int:  # pragma: no cover - provided by the channel
        raise NotImplementedError

    def _await(self, ready: Callable[[HeadView], T], timeout: float, what: str) -> T:
        raise NotImplementedError  # pragma: no cover - provided by the channel

    def _inspect(self, read: Callable[[HeadView], T]) -> T:
        raise NotImplementedError  # pragma: no cover - provided by the channel

    def init_head(self, timeout: float = 60.0) -> str:
        """Send ``Init`` and wait for ``HeadIsOpen``; returns the head id.

        Raises:
            ChannelError: the node refused (``CommandFailed``) or timed out.
        """
        mark = self._send(client_input("Init"))
        self._await(
            lambda v: v.opened_at > mark or v.command_failed_after("Init", mark),
            timeout,
            "HeadIsOpen",
        )
        return self._opened(mark, "Init")

    def close_head(self, timeout: float = 60.0) -> int:
        """Send ``Close`` and wait for ``HeadIsClosed``; returns the closing snapshot number.

        Raises:
            ChannelError: the node refused (``CommandFailed``: the head is not open) or
                timed out.
        """
        mark = self._send(client_input("Close"))
        self._await(
            lambda v: v.closed_at > mark or v.command_failed_after("Close", mark),
            timeout,
            "HeadIsClosed",
        )
        return self._after_command(mark, "Close", lambda v: v.closed_snapshot or 0)

    def fanout(self, timeout: float = 60.0) -> dict[str, Any]:
        """Send ``Fanout`` and wait for ``HeadIsFinalized``.

        A closed head first waits for ``ReadyToFanout`` (the end of the contestation
        period); in any other state the input goes straight to the node, which refuses it
        unless fanout is possible.

        Returns:
            The finalized UTxO (api.yaml ``UTxO``), now on layer 1.

        Raises:
            ChannelError: the node refused (``CommandFailed``) or timed out.
        """
        if self._inspect(lambda v: v.status) == "Closed":
            self._await(
                lambda v: v.status != "Closed", timeout, "ReadyToFanout (contestation period)"
            )
        mark = self._send(client_input("Fanout"))
        self._await(
            lambda v: v.finalized_at > mark or v.command_failed_after("Fanout", mark),
            timeout,
            "HeadIsFinalized",
        )
        return self._after_command(mark, "Fanout", lambda v: dict(v.finalized_utxo or {}))

    def deposit(self, utxo: dict[str, Any], timeout: float = 60.0) -> str:
        """Move ``utxo`` (api.yaml ``UTxO``, owned by this party on layer 1) into the open head.

        Drafts the deposit with ``POST /commit``, adds this party's witness, submits it with
        ``POST /cardano-transaction`` and waits for ``CommitFinalized``.

        Returns:
            The deposit transaction id.

        Raises:
            ChannelError: read-only channel, the node refused the draft or the submission,
                or no ``CommitFinalized`` within ``timeout``.
        """
        if self._identity is None:
            raise ChannelError(f"{self.api}: read-only hydra channel (no identity key)")
        draft = TxEnvelope.from_json(self._http.post("/commit", {"utxoToCommit": utxo}))
        signed = add_witness(draft.cbor, self._identity)
        tx_id = tx_id_of(signed)
        envelope = TxEnvelope(signed.hex(), tx_id, draft.type, draft.description)
        self._http.post("/cardano-transaction", envelope.to_json())
        self._await(lambda v: tx_id in v.deposits, timeout, f"CommitFinalized of {tx_id}")
        return tx_id

    def _opened(self, mark: int, tag: str) -> str:
        def head(view: HeadView) -> str:
            failed = view.command_failed_after(tag, mark)
            if failed or view.status != OPEN:
                raise self._refused(tag, failed or view.status)
            return view.bound_head or ""

        return self._inspect(head)

    def _after_command(self, mark: int, tag: str, result: Callable[[HeadView], T]) -> T:
        def read(view: HeadView) -> T:
            failed = view.command_failed_after(tag, mark)
            if failed:
                raise self._refused(tag, failed)
            return result(view)

        return self._inspect(read)

    def _refused(self, tag: str, state: str) -> ChannelError:
        """The node's ``CommandFailed`` for input ``tag`` as one line."""
        return ChannelError(
            f"{self.api}: {tag} refused by the node (CommandFailed: head is {state})"
        )
