"""Head lifecycle from the client side: Init, deposit, Close, Fanout (hydra 2.x).

Since hydra 2.0 a head opens directly on ``Init`` (no commit phase); funds enter an open head
through deposits: ``POST /commit`` with ``{"utxoToCommit": UTxO, "amount": N}`` answers a
draft deposit transaction, the owner signs it and submits it to layer 1 through a
:class:`~zkadapt.channel.hydra.layer1.Layer1` (by default ``POST /cardano-transaction`` on the
same node), and the node announces ``CommitRecorded`` ... ``CommitFinalized``. At the
end, ``Close`` starts the contestation period (``HeadIsClosed``), ``ReadyToFanout`` announces
its end, and ``Fanout`` distributes the head's UTxO on layer 1 (``HeadIsFinalized``).
(api.yaml channels ``/``, ``/commit``, ``/cardano-transaction``; hydra docs "API behavior".)

Every wait ends at once when the node announces that it refused or failed the request
(:class:`~zkadapt.channel.hydra.wire.NodeFailure`, raised as a one-line
:class:`~zkadapt.channel.hydra.wire.HydraNodeError`), and lasts only as long as the node's
parameters allow (:mod:`zkadapt.channel.hydra.waits`), unless a caller gives a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from zkadapt.channel.hydra.layer1 import Layer1, NodeLayer1, choose_deposit
from zkadapt.channel.hydra.tx import add_witness, owned_by
from zkadapt.channel.hydra.txread import tx_id_of
from zkadapt.channel.hydra.view import OPEN, HeadView
from zkadapt.channel.hydra.waits import (
    ProgressSink,
    Until,
    after,
    closed_stage,
    contestation_over,
    deposit_in_head,
    deposit_stage,
)
from zkadapt.channel.hydra.wire import HydraNodeError, TxEnvelope, client_input, parse_utxo
from zkadapt.errors import ChannelError

if TYPE_CHECKING:
    from zkadapt.channel.hydra.feed import HydraHttp
    from zkadapt.crypto.identity import IdentityKey

T = TypeVar("T")


class HeadLifecycle:
    """Head commands for :class:`~zkadapt.channel.hydra.HydraChannel` (a mixin).

    The host class provides ``api``, ``address``, ``layer1_timeout_s``, ``_identity``,
    ``_http``, ``_send``, ``_await`` and ``_inspect``.
    """

    api: str
    address: str | None
    layer1_timeout_s: float
    _identity: IdentityKey | None
    _http: HydraHttp

    def _send(self, frame: str) -> int:  # pragma: no cover - provided by the channel
        raise NotImplementedError

    def _await(
        self,
        ready: Callable[[HeadView], T],
        timeout: float | Until,
        what: str,
        *,
        stage: Callable[[HeadView], str] | None = None,
        progress: ProgressSink | None = None,
    ) -> T:
        raise NotImplementedError  # pragma: no cover - provided by the channel

    def _inspect(self, read: Callable[[HeadView], T]) -> T:
        raise NotImplementedError  # pragma: no cover - provided by the channel

    def init_head(self, timeout: float | None = None, progress: ProgressSink | None = None) -> str:
        """Send ``Init`` and wait for ``HeadIsOpen``; returns the head id.

        Args:
            timeout: seconds to wait; default ``layer1_timeout_s`` (the init transaction is
                posted and observed on layer 1).
            progress: gets the wait's progress about once a second.

        Raises:
            HydraNodeError: the node refused or failed it (``CommandFailed``,
                ``RejectedInputBecauseUnsynced``, ``PostTxOnChainFailed`` ...).
            ChannelError: no answer in time.
        """
        self._command("Init", "HeadIsOpen", lambda v, m: v.opened_at > m, timeout, progress)
        status, head = self._inspect(lambda v: (v.status, v.bound_head))
        if status != OPEN or head is None:
            raise ChannelError(f"{self.api}: Init answered, but the head is {status}")
        return head

    def close_head(self, timeout: float | None = None, progress: ProgressSink | None = None) -> int:
        """Send ``Close`` and wait for ``HeadIsClosed``; returns the closing snapshot number.

        Raises:
            HydraNodeError: the node refused or failed it (the head is not open, ...).
            ChannelError: no answer within ``timeout`` (default ``layer1_timeout_s``).
        """
        self._command("Close", "HeadIsClosed", lambda v, m: v.closed_at > m, timeout, progress)
        return self._inspect(lambda v: v.closed_snapshot or 0)

    def fanout(
        self, timeout: float | None = None, progress: ProgressSink | None = None
    ) -> dict[str, Any]:
        """Send ``Fanout`` and wait for ``HeadIsFinalized``.

        A closed head first waits for ``ReadyToFanout``: until the contestation deadline the
        node announced plus ``layer1_timeout_s`` (or ``timeout``); in any other state the
        input goes straight to the node, which refuses it unless fanout is possible.

        Returns:
            The finalized UTxO (api.yaml ``UTxO``), now on layer 1.

        Raises:
            HydraNodeError: the node refused or failed it.
            ChannelError: no answer in time.
        """
        if self._inspect(lambda v: v.status) == "Closed":
            self._contestation(timeout, progress)
        try:
            self._command(
                "Fanout", "HeadIsFinalized", lambda v, m: v.finalized_at > m, timeout, progress
            )
        except HydraNodeError:
            # Our view had not seen HeadIsClosed yet when we sent Fanout; the node's refusal
            # comes after it on the same connection, so the view knows the head is closed now.
            if self._inspect(lambda v: v.status) != "Closed":
                raise
            self._contestation(timeout, progress)
            self._command(
                "Fanout", "HeadIsFinalized", lambda v, m: v.finalized_at > m, timeout, progress
            )
        return self._inspect(lambda v: dict(v.finalized_utxo or {}))

    def _contestation(self, timeout: float | None, progress: ProgressSink | None) -> None:
        """Wait for ``ReadyToFanout``: the contestation deadline plus the layer-1 margin."""
        until = (
            after(timeout, time.time())
            if timeout is not None
            else contestation_over(time.time(), self.layer1_timeout_s)
        )
        self._await(
            lambda v: v.status != "Closed",
            until,
            "ReadyToFanout",
            stage=closed_stage,
            progress=progress,
        )

    def deposit(
        self,
        utxo: dict[str, Any],
        timeout: float | None = None,
        *,
        amount: int | None = None,
        layer1: Layer1 | None = None,
        progress: ProgressSink | None = None,
    ) -> str:
        """Move ``utxo`` (api.yaml ``UTxO``, owned by this party on layer 1) into the open head.

        Drafts the deposit with ``POST /commit`` (only ``amount`` lovelace of it when given:
        the node returns the rest as change), adds this party's witness, submits it on
        layer 1 (``layer1``; default: through the node, ``POST /cardano-transaction``) and
        waits for ``CommitFinalized``: until the deposit's deadline (``CommitRecorded``)
        plus ``layer1_timeout_s``, or ``timeout``.

        Returns:
            The deposit transaction id.

        Raises:
            HydraNodeError: the node refused the draft or the submission, failed to take
                the deposit in (``PostTxOnChainFailed``), or let it expire
                (``DepositExpired``).
            ChannelError: read-only channel, or no ``CommitFinalized`` in time.
        """
        if self._identity is None:
            raise ChannelError(f"{self.api}: read-only hydra channel (no identity key)")
        request: dict[str, Any] = {"utxoToCommit": utxo}
        if amount is not None:
            request["amount"] = amount
        draft = TxEnvelope.from_json(self._http.post("/commit", request))
        signed = add_witness(draft.cbor, self._identity)
        tx_id = tx_id_of(signed)
        mark = self._inspect(lambda v: v.events)
        (layer1 or NodeLayer1(self._http)).submit(
            TxEnvelope(signed.hex(), tx_id, draft.type, draft.description)
        )
        started = time.time()
        until = (
            after(timeout, started)
            if timeout is not None
            else deposit_in_head(tx_id, started, self.layer1_timeout_s)
        )
        self._await(
            lambda v: tx_id in v.deposits or v.failure_after("Deposit", mark, tx_id),
            until,
            f"CommitFinalized of deposit {tx_id[:12]}",
            stage=deposit_stage(tx_id),
            progress=progress,
        )
        if not self._inspect(lambda v: tx_id in v.deposits):
            self._raise_failure("Deposit", mark, tx_id)
        return tx_id

    def fund(
        self,
        lovelace: int,
        layer1: Layer1,
        *,
        timeout: float | None = None,
        progress: ProgressSink | None = None,
    ) -> str:
        """Deposit ``lovelace`` of this party's layer-1 funds into the open head.

        Picks one plain output at this party's address on layer 1 that holds enough
        (:func:`~zkadapt.channel.hydra.layer1.choose_deposit`) and deposits ``lovelace`` of
        it (:meth:`deposit`). Returns the deposit transaction id.

        Raises:
            ChannelError: read-only channel, no output holds enough, or as :meth:`deposit`.
        """
        if self._identity is None:
            raise ChannelError(f"{self.api}: read-only hydra channel (no identity key)")
        utxo = layer1.utxo_at(self.address or "")
        ref, txout = choose_deposit(utxo, self._identity.public, lovelace)
        return self.deposit(
            {ref: txout}, timeout, amount=lovelace, layer1=layer1, progress=progress
        )

    def funds_in_head(self) -> int:
        """Lovelace this party holds in the head, in plain outputs it can post with.

        Raises:
            ChannelError: read-only channel, or the node cannot be asked.
        """
        if self._identity is None:
            raise ChannelError(f"{self.api}: read-only hydra channel (no identity key)")
        utxo = parse_utxo(self._http.get("/snapshot/utxo"))
        return sum(u.lovelace for u in owned_by(self._identity.public, utxo))

    def _command(
        self,
        tag: str,
        answer: str,
        done: Callable[[HeadView, int], bool],
        timeout: float | None,
        progress: ProgressSink | None,
    ) -> None:
        """Send client input ``tag`` and wait until ``done(view, mark)`` or the node refuses.

        ``mark`` is the view's event count before sending: only answers after it count.

        Raises:
            HydraNodeError: the node refused or failed ``tag`` after it was sent.
            ChannelError: no ``answer`` within ``timeout`` (default ``layer1_timeout_s``).
        """
        mark = self._send(client_input(tag))
        self._await(
            lambda v: done(v, mark) or v.failure_after(tag, mark),
            self.layer1_timeout_s if timeout is None else timeout,
            answer,
            progress=progress,
        )
        if not self._inspect(lambda v: done(v, mark)):
            self._raise_failure(tag, mark)

    def _raise_failure(self, command: str, mark: int, tx_id: str | None = None) -> None:
        """Raise the node's failure of ``command`` after ``mark`` as one line."""
        failure = self._inspect(lambda v: v.failure_after(command, mark, tx_id))
        if failure is None:  # pragma: no cover - the wait ended on it
            raise ChannelError(f"{self.api}: {command} failed without a reason from the node")
        raise HydraNodeError(self.api, command, failure.tag, failure.reason)
