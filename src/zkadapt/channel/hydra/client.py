"""The ``hydra`` channel: signed messages as transactions in a Cardano Hydra head.

DESIGN.md section 6. Posting builds a Conway transaction with PyCardano that spends one of
the sender's outputs in the head back to the sender and carries the envelope in its metadata
(:mod:`zkadapt.channel.hydra.tx`), submits it with ``NewTx`` over the node's WebSocket and
waits until a ``SnapshotConfirmed`` includes it (``TxInvalid``, or the node refusing the
``NewTx`` with ``CommandFailed``, ``RejectedInputBecauseUnsynced`` or ``InvalidInput``, fails
the post at once with the node's reason). Reading
folds the node's server outputs into a :class:`~zkadapt.channel.hydra.view.HeadView`: entries
are decoded from confirmed snapshots in snapshot order and verified (keyring signature and
the sender's transaction witness). A dropped WebSocket is reopened with ``history=yes`` and
the replay is deduplicated by snapshot number, so no entry is lost or repeated.

Head lifecycle (``Init``, deposits via ``POST /commit``, ``Close``, ``Fanout``) lives in
:class:`~zkadapt.channel.hydra.head.HeadLifecycle`. Nothing here shells out: no cardano-cli.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from zkadapt.channel.base import Entry, Receipt, SignedEnvelope
from zkadapt.channel.hydra.feed import HeadFeed, HydraHttp, endpoints
from zkadapt.channel.hydra.head import HeadLifecycle
from zkadapt.channel.hydra.layer1 import NodeLayer1
from zkadapt.channel.hydra.record import CopyRecorder
from zkadapt.channel.hydra.tx import FeeRule, address_of, build_message_tx, owned_by
from zkadapt.channel.hydra.view import OPEN, HeadEvent, HeadView, Rejection
from zkadapt.channel.hydra.waits import (
    PROGRESS_INTERVAL_S,
    ProgressSink,
    Until,
    WaitProgress,
    after,
)
from zkadapt.channel.hydra.wire import (
    HydraNodeError,
    ServerOutput,
    TxEnvelope,
    UtxoOut,
    new_tx,
    parse_utxo,
)
from zkadapt.channel.outsiders import OutsiderPolicy
from zkadapt.crypto.identity import IdentityKey, Keyring
from zkadapt.errors import ChannelError

T = TypeVar("T")

#: Times a post is rebuilt when the head refuses it because its input moved (BadInputs).
POST_ATTEMPTS = 3
RETRY_DELAY_S = 0.2


class HydraChannel(HeadLifecycle):
    """A :class:`~zkadapt.channel.base.Channel` over one party's hydra-node.

    Args:
        keyring: the session's parties; entries are verified against it.
        api: this party's node, ``host:port`` or ``ws://host:port`` (HTTP on the same port).
        identity: the party's identity key (= Cardano payment key); without it the channel
            is read-only and :meth:`post` raises.
        head_id: the head to follow; None follows the node's current (or next opened) head.
        network: ``"testnet"`` or ``"mainnet"``, for the party's address (CIP-19).
        connect_timeout_s: how long the constructor waits for the history replay.
        confirm_timeout_s: how long a post waits for its snapshot confirmation.
        layer1_timeout_s: how long a layer-1 round trip may take (a head command's
            transaction posted and observed; the margin after a deposit's or the
            contestation deadline), see :mod:`zkadapt.channel.hydra.waits`.
        reconnect_delay_s: first delay before reconnecting after a drop (then doubled).
        record: where to persist a copy of the head's confirmed transactions as they
            arrive (:mod:`zkadapt.channel.hydra.record`), so that the session stays
            readable after fanout; None keeps no copy.
        outsiders: carry senders outside ``keyring`` by this policy (a session newcomers
            may join, :mod:`zkadapt.channel.outsiders`); None refuses them.
        name: this party's name when ``identity`` is no keyring key (a newcomer, with
            ``outsiders``); it posts from its own address in the head, so it must hold an
            output there (a member pays it one, or it deposits through a node).

    Raises:
        ChannelError: the node cannot be reached, or ``identity`` is not in the keyring
            (and no ``name`` with ``outsiders`` is given).
    """

    def __init__(
        self,
        keyring: Keyring,
        *,
        api: str,
        identity: IdentityKey | None = None,
        head_id: str | None = None,
        network: str = "testnet",
        connect_timeout_s: float = 30.0,
        confirm_timeout_s: float = 60.0,
        layer1_timeout_s: float = 600.0,
        reconnect_delay_s: float = 0.1,
        record: Path | None = None,
        outsiders: OutsiderPolicy | None = None,
        name: str | None = None,
    ) -> None:
        self.keyring = keyring
        self.api = api
        self.network = network
        self.confirm_timeout_s = confirm_timeout_s
        self.layer1_timeout_s = layer1_timeout_s
        self._identity = identity
        self.party = (
            _name_of(keyring, identity, name if outsiders is not None else None)
            if identity is not None
            else None
        )
        self.address = address_of(identity.public, network) if identity is not None else None
        ws_url, http_base = endpoints(api)
        self._http = HydraHttp(http_base)
        self._view = HeadView(keyring, head_id, outsiders=outsiders)
        self._cond = threading.Condition()
        self._post_lock = threading.Lock()
        self._fees: FeeRule | None = None
        self._recorder = CopyRecorder(record, api) if record is not None else None
        self._feed = HeadFeed(ws_url, self._on_output, reconnect_delay_s=reconnect_delay_s)
        self._feed.start()
        try:
            self._await(lambda v: v.greetings > 0, connect_timeout_s, "the node's Greetings")
        except ChannelError as exc:
            self._feed.close()
            raise ChannelError(f"{api}: cannot reach the hydra-node ({exc})") from None

    # ---- Channel protocol -------------------------------------------------------------

    def post(self, envelope: SignedEnvelope) -> Receipt:
        """Submit ``envelope`` as a transaction and return its place once confirmed.

        Raises:
            HydraNodeError: the node refused the ``NewTx`` (``CommandFailed``: the head is
                not open; ``RejectedInputBecauseUnsynced``; ``InvalidInput``).
            ChannelError: read-only channel, sender is not this party, bad signature, head
                not open, no UTxO of ours in the head, the head refused the transaction
                (``TxInvalid``), or no confirmation within ``confirm_timeout_s``.
        """
        identity = self._identity
        if identity is None or self.party is None:
            raise ChannelError(f"{self.api}: read-only hydra channel (no identity key)")
        if envelope.sender != self.party:
            raise ChannelError(
                f"{self.api}: this channel posts as {self.party!r}, not {envelope.sender!r}"
            )
        if not identity.public.verify(envelope.payload, envelope.signature):
            raise ChannelError(f"{self.api}: bad signature from {envelope.sender!r}; not posted")
        with self._post_lock:
            reason, earlier = "no attempt", []
            for attempt in range(POST_ATTEMPTS):
                if attempt:
                    time.sleep(RETRY_DELAY_S * attempt)  # let the conflicting snapshot land
                utxo = parse_utxo(self._http.get("/snapshot/utxo"))
                seq = self._landed(earlier, utxo)
                if seq is not None:
                    return Receipt(seq)
                tx = self._build(identity, envelope, utxo)
                earlier.append(tx.tx_id or "")
                seq, reason = self._submit(tx)
                if seq is not None:
                    return Receipt(seq)
                if "BadInputs" not in reason:
                    break
        raise ChannelError(f"{self.api}: message from {self.party!r} not posted: {reason}")

    def history(self, since: int = 0) -> list[Entry]:
        """Verified entries with ``seq > since``, in snapshot order.

        Raises:
            ValueError: ``since`` is negative.
            ChannelError: the node's history skipped a snapshot (entries could be missing).
        """
        if since < 0:
            raise ValueError(f"since must be >= 0, got {since}")
        with self._cond:
            return self._view.entries(since)

    def wait(self, since: int, timeout: float) -> list[Entry]:
        """Block until entries with ``seq > since`` exist or ``timeout`` seconds pass."""
        with self._cond:
            self._cond.wait_for(lambda: self._has_news(since), max(timeout, 0.0))
            return self._view.entries(since)

    def close(self) -> None:
        """Close the WebSocket and stop the feed thread. Idempotent."""
        self._feed.close()
        with self._cond:
            self._cond.notify_all()
            if self._recorder is not None:
                self._recorder.close()

    def __enter__(self) -> HydraChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HydraChannel({self.api!r}, party={self.party!r})"

    # ---- inspection -------------------------------------------------------------------

    @property
    def head_status(self) -> str:
        """api.yaml ``HeadStatus`` of the followed head (``Unknown`` before Greetings)."""
        with self._cond:
            return self._view.status

    @property
    def head_id(self) -> str | None:
        with self._cond:
            return self._view.bound_head

    @property
    def head_events(self) -> list[HeadEvent]:
        """The followed head's lifecycle (open, closed, fanout, ...) and refused commands."""
        with self._cond:
            return self._view.lifecycle

    @property
    def provenance(self) -> str:
        """Where this channel reads from, one line (for an audit's report)."""
        with self._cond:
            head, status = self._view.bound_head, self._view.status
            log = self._view.log
        if head is None:
            return (
                f"the hydra-node {self.api} (status {status}, following no head); no "
                "persisted copy of the channel was found"
            )
        seen = log.last_snapshot if log is not None else 0
        return f"hydra head {head} through the node {self.api} ({status}, {seen} snapshots)"

    def knows_head(self, at_least: int = 0) -> bool:
        """Whether the node knows the followed head: it is open or closing, or the node's
        history holds its confirmed snapshots (at least up to number ``at_least``)."""
        with self._cond:
            log = self._view.log
            if log is None:
                return False
            if log.last_snapshot > 0:
                return log.last_snapshot >= at_least
            return self._view.status in (OPEN, "Closed", "FanoutPossible") and at_least == 0

    def finalized_utxo_of(self, head_id: str) -> dict[str, object] | None:
        """The UTxO the node announced in ``HeadIsFinalized`` for ``head_id``, if it did."""
        with self._cond:
            log = self._view.logs.get(head_id)
            return dict(log.finalized_utxo) if log and log.finalized_utxo is not None else None

    @property
    def recording(self) -> str | None:
        """Why the copy is not being recorded, if it was asked for and stopped."""
        return self._recorder.disabled if self._recorder is not None else None

    @property
    def contestation_deadline(self) -> str | None:
        """When the closed head's contestation period ends (api.yaml ``UTCTime``), if closed."""
        with self._cond:
            return self._view.contestation_deadline

    @property
    def rejected(self) -> list[Rejection]:
        """Confirmed transactions under our label that failed verification, in order."""
        with self._cond:
            log = self._view.log
            return list(log.rejected) if log is not None else []

    @property
    def reconnects(self) -> int:
        """How many times the WebSocket was reopened after the first connection."""
        return max(self._feed.connections - 1, 0)

    def node_layer1(self, utxo_file: Path | None = None) -> NodeLayer1:
        """Layer 1 through this node (submission), with outputs from ``utxo_file``."""
        return NodeLayer1(self._http, utxo_file)

    def drop_connection(self) -> None:
        """Close the WebSocket as a network fault would (the feed reconnects)."""
        self._feed.drop()

    # ---- internals ----------------------------------------------------------------------

    def _on_output(self, output: ServerOutput) -> None:
        with self._cond:
            self._view.apply(output)
            if self._recorder is not None:
                self._recorder.sync(self._view)  # before a post returns, its entry is kept
            self._cond.notify_all()

    def _has_news(self, since: int) -> bool:
        log = self._view.log
        return log is not None and (len(log.entries) > since or log.gap is not None)

    def _await(
        self,
        ready: Callable[[HeadView], T],
        timeout: float | Until,
        what: str,
        *,
        stage: Callable[[HeadView], str] | None = None,
        progress: ProgressSink | None = None,
    ) -> T:
        """Wait until ``ready(view)`` is truthy; return it.

        Args:
            ready: the condition, read under the view's lock after every server output.
            timeout: seconds from now, or a function of the view giving the wall-clock time
                to wait until (re-read as outputs arrive: a deposit's deadline, say).
            what: what is awaited, for the timeout message and progress reports.
            stage: what the node reported so far, one line, for progress reports.
            progress: gets a :class:`~zkadapt.channel.hydra.waits.WaitProgress` about once
                a second while waiting.

        Raises:
            ChannelError: the time ran out first.
        """
        started = time.time()
        until = timeout if callable(timeout) else after(timeout, started)
        reported = started  # the first report after an interval: quick answers print none
        with self._cond:
            while True:
                result = ready(self._view)
                if result:
                    return result
                now = time.time()
                deadline = until(self._view)
                if progress is not None and now - reported >= PROGRESS_INTERVAL_S:
                    line = stage(self._view) if stage is not None else ""
                    progress(WaitProgress(what, line, now - started, deadline - started))
                    reported = now
                remaining = deadline - now
                if remaining <= 0:
                    budget = deadline - started
                    shown = f"{budget:,.0f}" if budget >= 10 else f"{budget:.2g}"
                    raise ChannelError(f"{self.api}: timed out after {shown} s waiting for {what}")
                self._cond.wait(min(remaining, PROGRESS_INTERVAL_S) if progress else remaining)

    def _inspect(self, read: Callable[[HeadView], T]) -> T:
        """``read(view)`` under the view's lock."""
        with self._cond:
            return read(self._view)

    def _send(self, frame: str) -> int:
        """Send a client input; returns the view's event count just before sending."""
        with self._cond:
            mark = self._view.events
        self._feed.send(frame, self.confirm_timeout_s)
        return mark

    def _fee_rule(self) -> FeeRule:
        if self._fees is None:
            self._fees = FeeRule.from_protocol_parameters(self._http.get("/protocol-parameters"))
        return self._fees

    def _landed(self, earlier: list[str], utxo: dict[str, UtxoOut]) -> int | None:
        """The seq of an earlier attempt of this post that made it after all, if one did.

        An earlier attempt landed if its output ``<tx_id>#0`` is in the confirmed UTxO
        (only this party can spend its own outputs); wait for its snapshot and report it,
        so a retry never posts the same message twice.
        """
        for tx_id in earlier:
            if f"{tx_id}#0" in utxo or self._inspect(lambda v, t=tx_id: v.confirmed(t)):
                self._await(
                    lambda v, t=tx_id: v.confirmed(t),
                    self.confirm_timeout_s,
                    f"the snapshot of transaction {tx_id}",
                )
                seq, reason = self._inspect(lambda v, t=tx_id: self._outcome(t))
                if seq is None:
                    raise ChannelError(f"{self.api}: message not posted: {reason}")
                return seq
        return None

    def _build(
        self, identity: IdentityKey, envelope: SignedEnvelope, utxo: dict[str, UtxoOut]
    ) -> TxEnvelope:
        if self.head_status != OPEN:
            raise ChannelError(f"{self.api}: head is {self.head_status}, not Open; not posted")
        mine = owned_by(identity.public, utxo)
        if not mine:
            raise ChannelError(
                f"{self.api}: no UTxO of {self.party!r} ({self.address}) in the head; "
                f"deposit funds first (`zkadapt head deposit SESSION --party {self.party} "
                "--lovelace N`)"
            )
        return build_message_tx(identity, mine[0], envelope, self._fee_rule())

    def _submit(self, tx: TxEnvelope) -> tuple[int | None, str]:
        """Send ``tx`` and wait for its fate: ``(seq, "")`` or ``(None, reason)``.

        If the connection drops before the node acknowledged the transaction (no ``TxValid``
        in the replayed history), the identical transaction is sent again: building is
        deterministic, so a resubmission can never post a message twice.
        """
        tx_id = tx.tx_id or ""
        with self._cond:
            if self._view.confirmed(tx_id):  # a resubmission of something already in
                return self._outcome(tx_id)
        deadline = time.monotonic() + self.confirm_timeout_s
        while True:
            connection = self._feed.connections
            mark = self._send(new_tx(tx))

            def settled(view: HeadView, mark: int = mark, connection: int = connection) -> bool:
                acknowledged = tx_id in view.valid  # a resend's TxInvalid then means nothing
                return (
                    view.confirmed(tx_id)
                    or (view.invalid_after(tx_id, mark) is not None and not acknowledged)
                    or (self._feed.connections != connection and not acknowledged)
                    or view.failure_after("NewTx", mark, tx_id) is not None
                )

            remaining = deadline - time.monotonic()
            self._await(settled, remaining, f"confirmation of transaction {tx_id}")
            with self._cond:
                if self._view.confirmed(tx_id):
                    return self._outcome(tx_id)
                refused = self._view.failure_after("NewTx", mark, tx_id)
                reason = self._view.invalid_after(tx_id, mark)
            if refused is not None:
                where = f"{self.api}: message from {self.party!r} not posted"
                raise HydraNodeError(where, "NewTx", refused.tag, refused.reason)
            if reason is not None and not self._inspect(lambda v: tx_id in v.valid):
                return None, f"TxInvalid: {reason}"
            # reconnected and the node never acknowledged it: send it again

    def _outcome(self, tx_id: str) -> tuple[int | None, str]:
        seq = self._view.seq_of(tx_id)
        if seq is not None:
            return seq, ""
        rejection = self._view.rejection_of(tx_id)
        return None, f"confirmed but not an entry: {rejection.reason if rejection else '?'}"


def _name_of(keyring: Keyring, identity: IdentityKey, outsider: str | None = None) -> str:
    """The keyring name of ``identity``, else ``outsider`` (a newcomer's own name)."""
    for name, public in keyring.items():
        if public == identity.public:
            return name
    if outsider is not None and outsider not in keyring:
        return outsider
    raise ChannelError("the identity key is not in the session's keyring")
