"""What one client knows about a Hydra head, folded from server outputs (pure; no I/O).

Order comes from confirmed snapshots (Hydra Head protocol, Chakravarty et al., FC 2021,
section 4; hydra docs "API behavior"): a ``SnapshotConfirmed`` is signed by every party, so
every node reports the same snapshot ``number`` with the same transactions in the same order.
A channel entry is a confirmed transaction that carries an envelope under our metadata label
(:mod:`zkadapt.channel.hydra.metadata`); its ``seq`` is its position among such transactions,
counting snapshot by snapshot (numbers 1, 2, ... without gaps) and in ``confirmed`` order within
one. Every honest client therefore numbers the same entries the same way.

An envelope becomes an entry only if its sender is in the keyring, the sender's Ed25519
signature of the payload verifies, and the transaction is witnessed by that same key (the
identity key is the payment key). With an :class:`~zkadapt.channel.outsiders.OutsiderPolicy`
(a session newcomers may join), a sender outside the keyring is judged by it instead, in
snapshot order: its introduction must verify against the key it carries, its later envelopes
against a key it introduced, and the transaction must be witnessed by that key. Anything
else is recorded in :attr:`HeadLog.rejected` and gets no ``seq``: a peer's forgery is data,
not a crash, and all honest clients skip it alike.

The view deduplicates by snapshot number, so replaying the node's history after a reconnect
(``?history=yes``) neither loses nor repeats an entry.

It also keeps what a waiting client needs to stop at the right time: the node's
:class:`~zkadapt.channel.hydra.wire.NodeEnvironment` (its contestation and deposit periods,
from ``Greetings``), each deposit's deadline (``CommitRecorded``), and every refusal or failure
the node announced (:class:`~zkadapt.channel.hydra.wire.NodeFailure`), numbered by event so a
wait only takes the answers that came after its own input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.channel.hydra.txread import MalformedTransaction, decode_tx
from zkadapt.channel.hydra.wire import (
    CommitFinalized,
    CommitRecorded,
    DepositActivated,
    Greetings,
    HeadIsClosed,
    HeadIsFinalized,
    HeadIsOpen,
    NodeEnvironment,
    NodeFailure,
    ReadyToFanout,
    ServerOutput,
    SnapshotConfirmed,
    TxEnvelope,
    TxInvalid,
    TxValid,
)
from zkadapt.channel.outsiders import OutsiderKeys, OutsiderPolicy
from zkadapt.crypto.identity import Keyring
from zkadapt.errors import ChannelError

#: Head statuses as in api.yaml ``HeadStatus`` (plus ``Unknown`` before the first Greetings).
OPEN = "Open"


@dataclass(frozen=True)
class HeadEvent:
    """A change of the head's life the node announced (or a command it refused).

    Attributes:
        tag: ``HeadIsOpen``, ``HeadIsClosed``, ``ReadyToFanout``, ``HeadIsFinalized``, a
            deposit's ``CommitRecorded``/``DepositActivated``/``CommitFinalized``, or a
            refusal or failure (``CommandFailed``, ``PostTxOnChainFailed`` ...).
        detail: one line about it (the head, the closing snapshot, the refused input ...).
        timestamp: the node's time for timed outputs, else when the client saw it.
        after_seq: how many channel entries the bound head had then (places it in a
            timeline of entries).
        failure: the node refused or failed something (a :class:`NodeFailure`).
    """

    tag: str
    detail: str
    timestamp: float
    after_seq: int
    failure: bool = False


@dataclass(frozen=True)
class Rejection:
    """A confirmed transaction under our label that is not a valid channel entry, and why."""

    snapshot: int
    tx_id: str
    reason: str


@dataclass
class HeadLog:
    """The verified entries of one head, in channel order.

    ``snapshots`` keeps every confirmed snapshot as the node sent it (the transactions as
    signed, their snapshot numbers): what a persisted copy of the channel records
    (:mod:`zkadapt.channel.hydra.record`). ``closed_snapshot`` and ``finalized_utxo`` are
    this head's ``HeadIsClosed`` number and ``HeadIsFinalized`` UTxO once announced.
    """

    head_id: str
    entries: list[Entry] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    seq_of_tx: dict[str, int] = field(default_factory=dict)
    confirmed_txs: set[str] = field(default_factory=set)
    last_snapshot: int = 0
    gap: str | None = None
    snapshots: list[SnapshotConfirmed] = field(default_factory=list)
    closed_snapshot: int | None = None
    finalized_utxo: dict[str, object] | None = None


@dataclass(frozen=True)
class TxOutcome:
    """A ``TxInvalid`` seen for a transaction: the reason and when (view event count)."""

    reason: str
    event: int


class HeadView:
    """Folds server outputs into the head's status and its verified channel entries.

    Args:
        keyring: the session's parties (names and identity keys).
        head_id: bind to this head; None binds to the node's current head as announced by
            the first ``Greetings`` (or the next ``HeadIsOpen`` if the node is idle).
        outsiders: carry senders outside ``keyring`` by this policy (None: refuse them).
    """

    def __init__(
        self,
        keyring: Keyring,
        head_id: str | None = None,
        *,
        outsiders: OutsiderPolicy | None = None,
    ) -> None:
        self.keyring = keyring
        self.outsiders = OutsiderKeys(outsiders) if outsiders is not None else None
        self.bound_head = head_id
        self.status = "Unknown"
        self.greetings = 0
        self.events = 0
        self.logs: dict[str, HeadLog] = {}
        self.invalid: dict[str, TxOutcome] = {}
        self.valid: set[str] = set()
        self.deposits: set[str] = set()
        self.deposit_deadlines: dict[str, str] = {}
        self.activated: set[str] = set()
        self.failures: list[tuple[int, NodeFailure]] = []
        self.env: NodeEnvironment | None = None
        self.finalized_utxo: dict[str, object] | None = None
        self.closed_snapshot: int | None = None
        self.contestation_deadline: str | None = None
        self._lifecycle_log: list[tuple[str | None, HeadEvent]] = []
        self.opened_at = 0  # event count of the last HeadIsOpen
        self.closed_at = 0  # ... of the last HeadIsClosed of the bound head
        self.finalized_at = 0  # ... of the last HeadIsFinalized of the bound head
        self._seen_lifecycle: set[tuple[str, int]] = set()
        self._by_key = {identity.raw: name for name, identity in keyring.items()}

    # ---- folding ----------------------------------------------------------------------

    def apply(self, output: ServerOutput) -> None:
        """Fold one server output into the view (idempotent for replayed history)."""
        self.events += 1
        if isinstance(output, Greetings):
            self._greet(output)
        elif isinstance(output, SnapshotConfirmed):
            self._snapshot(output)
        elif isinstance(output, (HeadIsOpen, HeadIsClosed, ReadyToFanout, HeadIsFinalized)):
            self._lifecycle(output)
        elif isinstance(output, TxValid):
            self.valid.add(output.tx_id)
        elif isinstance(output, TxInvalid):
            self._tx_invalid(output)
        elif isinstance(output, (CommitRecorded, DepositActivated, CommitFinalized)):
            self._deposit(output)
        elif isinstance(output, NodeFailure):
            self.failures.append((self.events, output))
            what = output.command or "an input"
            detail = f"the node refused {what} ({output.tag}: {output.reason})"
            self._record(output, detail, None, failure=True)

    def _deposit(self, output: CommitRecorded | DepositActivated | CommitFinalized) -> None:
        tx = output.deposit_tx_id
        if isinstance(output, CommitRecorded):
            self.deposit_deadlines[tx] = output.deadline
            detail = f"deposit {tx[:12]} seen on layer 1; must enter the head by {output.deadline}"
        elif isinstance(output, DepositActivated):
            self.activated.add(tx)
            detail = f"deposit {tx[:12]} is active: the next snapshot takes it in"
        else:
            self.deposits.add(tx)
            detail = f"deposit {tx[:12]} is in the head"
        self._record(output, detail)

    def _lifecycle(self, output: ServerOutput) -> None:
        if isinstance(output, HeadIsOpen):
            self.opened_at = self.events
            self.logs.setdefault(output.head_id, HeadLog(output.head_id))
            self._set_status(output.head_id, OPEN)
            if self.bound_head is None and self.greetings:
                self.bound_head = output.head_id
            self._record(output, f"head {output.head_id[:12]} is open")
        elif isinstance(output, HeadIsClosed):
            self._set_status(output.head_id, "Closed")
            self.closed_snapshot = output.snapshot_number
            self.logs.setdefault(
                output.head_id, HeadLog(output.head_id)
            ).closed_snapshot = output.snapshot_number
            if self._concerns(output.head_id):
                self.closed_at = self.events
                self.contestation_deadline = output.contestation_deadline
                self._record(
                    output,
                    f"closed at snapshot {output.snapshot_number}; contestation until "
                    f"{output.contestation_deadline}",
                )
        elif isinstance(output, ReadyToFanout):
            self._set_status(output.head_id, "FanoutPossible")
            self._record(output, "contestation period over: fanout possible")
        elif isinstance(output, HeadIsFinalized):
            self._set_status(output.head_id, "Idle")
            self.logs.setdefault(output.head_id, HeadLog(output.head_id)).finalized_utxo = dict(
                output.utxo
            )
            if output.head_id == self.bound_head:
                self.finalized_utxo = output.utxo
            if self._concerns(output.head_id):
                self.finalized_at = self.events
                lovelace = sum(_lovelace(o) for o in output.utxo.values())
                self._record(
                    output,
                    f"finalized: {len(output.utxo)} outputs, {lovelace:,} lovelace back on layer 1",
                )

    def _concerns(self, head_id: str) -> bool:
        """Whether an output about ``head_id`` concerns the followed head (or none is bound)."""
        return self.bound_head is None or head_id == self.bound_head

    def _record(
        self, output: ServerOutput, detail: str, head_id: str | None = "", *, failure: bool = False
    ) -> None:
        """Remember a lifecycle event once (a replayed history repeats the node's ``seq``).

        ``head_id`` defaults to the output's own ``head_id``; None means "whatever head"
        (a refusal names none).
        """
        if output.seq is not None:
            key = (output.tag, output.seq)
            if key in self._seen_lifecycle:
                return
            self._seen_lifecycle.add(key)
        head = getattr(output, "head_id", None) if head_id == "" else head_id
        log = self.logs.get(head) if head is not None else self.log
        stamp = output.timestamp if output.timestamp is not None else time.time()
        after = len(log.entries) if log is not None else 0
        event = HeadEvent(output.tag, detail, stamp, after, failure)
        self._lifecycle_log.append((head, event))

    def _greet(self, output: Greetings) -> None:
        self.greetings += 1
        self.status = output.head_status
        self.env = output.env or self.env
        if self.bound_head is None and output.head_id is not None:
            self.bound_head = output.head_id
        if output.head_id is not None:
            self.logs.setdefault(output.head_id, HeadLog(output.head_id))

    def _set_status(self, head_id: str, status: str) -> None:
        if self.bound_head is None or head_id == self.bound_head:
            self.status = status

    def _tx_invalid(self, output: TxInvalid) -> None:
        tx_id = output.transaction.tx_id
        if tx_id is None:
            try:
                tx_id = decode_tx(output.transaction.cbor).tx_id
            except MalformedTransaction:
                return
        self.invalid[tx_id] = TxOutcome(output.reason or "TxInvalid", self.events)

    def _snapshot(self, output: SnapshotConfirmed) -> None:
        log = self.logs.setdefault(output.head_id, HeadLog(output.head_id))
        if output.number <= log.last_snapshot:
            return  # replayed history: already folded
        if output.number != log.last_snapshot + 1 and log.gap is None:
            log.gap = (
                f"head {output.head_id}: snapshot {log.last_snapshot + 1} was never seen "
                f"(next is {output.number}); the node's history is incomplete"
            )
        log.last_snapshot = output.number
        log.snapshots.append(output)
        stamp = output.timestamp if output.timestamp is not None else time.time()
        for tx in output.confirmed:
            self._confirm(log, output.number, tx, stamp)

    def _confirm(self, log: HeadLog, number: int, tx: TxEnvelope, stamp: float) -> None:
        try:
            decoded = decode_tx(tx.cbor)
        except (MalformedTransaction, ValueError):
            return  # not ours to judge; the head's ledger accepted it
        log.confirmed_txs.add(decoded.tx_id)
        try:
            envelope = decoded.envelope()
        except ChannelError as exc:
            log.rejected.append(Rejection(number, decoded.tx_id, f"malformed envelope: {exc}"))
            return
        if envelope is None:
            return  # an ordinary payment in the head
        reason, key = self._check(envelope)
        if reason is None and key is not None and not decoded.witnessed_by(key):
            reason = f"transaction not witnessed by {envelope.sender}'s key"
        if reason is not None:
            log.rejected.append(Rejection(number, decoded.tx_id, reason))
            return
        entry = Entry(seq=len(log.entries) + 1, envelope=envelope, timestamp=stamp)
        log.entries.append(entry)
        log.seq_of_tx[decoded.tx_id] = entry.seq

    def _check(self, envelope: SignedEnvelope) -> tuple[str | None, bytes | None]:
        """``(why it is refused or None, the key that must witness its transaction)``."""
        sender = envelope.sender
        if sender not in self.keyring and self.outsiders is not None:
            found = self.outsiders.judge(envelope)
            return (found.reason, None) if found.key is None else (None, found.key.raw)
        if sender not in self.keyring:
            return f"unknown sender {sender!r}", None
        if not self.keyring.verify(sender, envelope.payload, envelope.signature):
            return f"invalid signature from {sender!r}", None
        return None, self.keyring[sender].raw

    # ---- questions --------------------------------------------------------------------

    @property
    def log(self) -> HeadLog | None:
        """The bound head's log, if the head is known."""
        return self.logs.get(self.bound_head) if self.bound_head is not None else None

    @property
    def lifecycle(self) -> list[HeadEvent]:
        """Lifecycle events of the bound head (and refused commands), in arrival order."""
        return [
            event
            for head, event in self._lifecycle_log
            if head is None or self.bound_head is None or head == self.bound_head
        ]

    def entries(self, since: int = 0) -> list[Entry]:
        """Verified entries of the bound head with ``seq > since``.

        Raises:
            ChannelError: a snapshot of the bound head was skipped (entries could be lost).
        """
        log = self.log
        if log is None:
            return []
        if log.gap is not None:
            raise ChannelError(log.gap)
        return log.entries[since:]

    def seq_of(self, tx_id: str) -> int | None:
        """The entry ``seq`` of a confirmed transaction of the bound head, if any."""
        log = self.log
        return log.seq_of_tx.get(tx_id) if log is not None else None

    def confirmed(self, tx_id: str) -> bool:
        """Whether ``tx_id`` is in a confirmed snapshot of the bound head."""
        log = self.log
        return log is not None and tx_id in log.confirmed_txs

    def rejection_of(self, tx_id: str) -> Rejection | None:
        """Why a confirmed transaction of the bound head did not become an entry."""
        log = self.log
        if log is None:
            return None
        return next((r for r in log.rejected if r.tx_id == tx_id), None)

    def invalid_after(self, tx_id: str, event: int) -> str | None:
        """The ``TxInvalid`` reason for ``tx_id`` seen after view event ``event``, if any."""
        outcome = self.invalid.get(tx_id)
        return outcome.reason if outcome is not None and outcome.event > event else None

    def failure_after(
        self, command: str, event: int, tx_id: str | None = None
    ) -> NodeFailure | None:
        """The node's first refusal or failure of ``command`` after view event ``event``.

        A failure that does not say what it answers (an input the node could not decode)
        counts for any command. With ``tx_id``, a failure about another transaction does not
        count (another client of the same node may have sent it).
        """
        for at, failure in self.failures:
            if at <= event or failure.command not in (command, None):
                continue
            if tx_id is not None and failure.tx_id not in (tx_id, None):
                continue
            return failure
        return None


def _lovelace(txout: object) -> int:
    """The lovelace of an api.yaml ``TxOut`` (0 if it has none)."""
    value = txout.get("value") if isinstance(txout, dict) else None
    amount = value.get("lovelace", 0) if isinstance(value, dict) else 0
    return amount if isinstance(amount, int) else 0
