"""Checking a persisted copy of a Hydra channel against what anyone can check (pure).

A copy (:mod:`zkadapt.channel.hydra.record`) is a file; whoever holds it could have edited
it. :func:`check_copy` believes nothing in it that it cannot recompute:

1. **Every transaction as signed.** Its id is recomputed from its body bytes (and must equal
   the id recorded beside it), its metadata must hash to the body's auxiliary-data hash, and
   every key witness must verify over that id (Conway ledger rules). A changed byte anywhere
   in a transaction, its metadata (the envelope) included, breaks one of these.
2. **Every entry as the live channel reads it.** The snapshots are folded into the same
   :class:`~zkadapt.channel.hydra.view.HeadView` a party uses: the envelope's Ed25519
   signature by its sender and the sender's witness on the transaction; an entry's ``seq``
   is numbered exactly as the parties numbered it.
3. **The snapshots' numbers**: 1, 2, ... without a gap or a repeat, in order, and ending at
   the snapshot the head was closed with, when the close is known.
4. **The head's ledger, replayed.** Applying the transactions in the copy's order (and the
   outputs deposits brought in), no output may be spent twice or before the transaction
   that makes it; and the outputs left at the end must be exactly the head's fanout UTxO
   (``HeadIsFinalized``) among those the copy can account for. Transaction ids chain
   through the inputs, so the fanout UTxO pins, hash by hash, every transaction whose
   outputs lead to it: dropping, adding or changing one changes what the replay leaves.

What this does **not** prove, and why (docs/hydra.md, "Reading a finished session"):

* The order of two transactions that do not spend each other's outputs (two parties'
  messages) is not pinned by anything public after fanout: snapshot signatures are the
  nodes' Hydra keys over the snapshot's UTxO, not over the order of its transactions, and
  are not kept. Swapping two parties' entries that keep every party's own chain intact is
  caught only where the round protocol's own rules see it (a ``RoundDone`` before the
  votes it counts) or where two copies disagree.
* The fanout UTxO is only as independent as its source: the node's own ``HeadIsFinalized``
  is; one read back from the same copy only shows the copy is consistent with itself.
* Outputs the head held from the start (an offline head's initial UTxO) are not listed
  anywhere a client can see; an input the copy cannot account for is taken as such funds.
  Dropping a party's *first* transaction (which spends such funds) is therefore seen by
  the ledger replay only through the rest of its chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pycardano import Address

from zkadapt.channel.base import Entry
from zkadapt.channel.hydra.cbor import blake2b_256
from zkadapt.channel.hydra.record import ChannelCopy, CopiedSnapshot
from zkadapt.channel.hydra.txread import DecodedTx, MalformedTransaction, TxOutput, decode_tx
from zkadapt.channel.hydra.view import HeadView, Rejection
from zkadapt.channel.hydra.wire import HydraProtocolError, SnapshotConfirmed, parse_utxo
from zkadapt.channel.outsiders import OutsiderPolicy
from zkadapt.crypto.identity import Keyring

#: An output as compared with the fanout: (bech32 address, lovelace, sorted assets).
Value = tuple[str, int, tuple[tuple[str, str, int], ...]]
#: At most this many problems are listed (the first ones name the cause).
MAX_PROBLEMS = 20


@dataclass
class CopyCheck:
    """The outcome of :func:`check_copy`.

    Attributes:
        entries: the channel entries, numbered as the live channel numbers them.
        rejected: confirmed transactions under our label that are not valid entries (a
            peer's forgery the head confirmed; the live channel skips them alike).
        problems: why the copy is not what the head confirmed; empty if it passed.
        checked: one line per check that ran, for the reader's report.
    """

    entries: list[Entry] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_copy(
    copy: ChannelCopy,
    keyring: Keyring,
    *,
    fanout: dict[str, Any] | None = None,
    fanout_source: str = "",
    outsiders: OutsiderPolicy | None = None,
) -> CopyCheck:
    """Check ``copy`` (see the module docstring) and read its entries.

    Args:
        copy: the parsed copy.
        keyring: the session's parties.
        fanout: the head's ``HeadIsFinalized`` UTxO from an independent source (the node),
            or None to use the one the copy recorded, if any.
        fanout_source: where ``fanout`` came from, for the report.
        outsiders: newcomers' envelopes are read by this policy, as the live channel does.
    """
    result = CopyCheck()
    decoded = _transactions(copy, result.problems)
    _numbers(copy, result.problems)
    if fanout is not None and copy.finalized_utxo not in (None, fanout):
        result.problems.append(
            f"the fanout UTxO the copy recorded differs from the one {fanout_source} shows"
        )
    if fanout is None and copy.finalized_utxo is not None:
        fanout, fanout_source = copy.finalized_utxo, "the copy itself (not independent)"
    _ledger(copy, decoded, fanout, result.problems)
    view = HeadView(keyring, copy.head_id, outsiders=outsiders)
    for snapshot in copy.snapshots:
        view.apply(_as_output(copy.head_id, snapshot))
    head = view.log
    if head is not None:
        result.entries, result.rejected = list(head.entries), list(head.rejected)
    closed = f", closed at {copy.closed_snapshot}" if copy.closed_snapshot is not None else ""
    result.checked = [
        f"{sum(len(s.confirmed) for s in copy.snapshots)} transactions in "
        f"{len(copy.snapshots)} snapshots: ids, metadata hashes and key witnesses recomputed",
        f"{len(result.entries)} entries: each sender's signature and witness verified",
        f"snapshot numbers 1 to {copy.last_snapshot} without gaps{closed}",
        "head ledger replayed "
        + (
            f"against the fanout UTxO from {fanout_source}"
            if fanout is not None
            else "without a fanout UTxO (none seen: what it ends with is not checked)"
        ),
    ]
    result.problems = result.problems[:MAX_PROBLEMS]
    return result


def _transactions(copy: ChannelCopy, problems: list[str]) -> dict[str, DecodedTx]:
    """Decode every transaction and check it is as signed; returns them by id."""
    decoded: dict[str, DecodedTx] = {}
    for snapshot in copy.snapshots:
        for position, envelope in enumerate(snapshot.confirmed, start=1):
            where = f"snapshot {snapshot.number}, transaction {position}"
            try:
                tx = decode_tx(envelope.cbor)
            except MalformedTransaction as exc:
                problems.append(f"{where}: {exc}")
                continue
            why = _not_as_signed(tx, envelope.tx_id)
            if why is not None:
                problems.append(f"{where} ({tx.tx_id[:16]}): {why}")
            elif tx.tx_id in decoded:
                problems.append(f"{where}: transaction {tx.tx_id[:16]} appears twice")
            decoded[tx.tx_id] = tx
    return decoded


def _not_as_signed(tx: DecodedTx, recorded_id: str | None) -> str | None:
    """Why ``tx`` cannot be a transaction the head confirmed as recorded, or None."""
    if recorded_id is not None and recorded_id != tx.tx_id:
        return f"recorded id {recorded_id[:16]} is not the id of its body"
    aux = blake2b_256(tx.aux_raw) if tx.aux_raw is not None else None
    if aux != tx.aux_hash:
        return "its metadata does not hash to the body's auxiliary-data hash (edited)"
    if not tx.witnesses:
        return "no key witness"
    if not all(w.verifies(tx.tx_id) for w in tx.witnesses):
        return "a key witness does not verify over its id (edited or forged)"
    return None


def _numbers(copy: ChannelCopy, problems: list[str]) -> None:
    expected = 1
    for snapshot in copy.snapshots:
        if snapshot.number != expected:
            problems.append(
                f"snapshot {snapshot.number} where snapshot {expected} belongs: snapshots are "
                "missing, repeated or out of order"
            )
            return
        expected += 1
    if copy.closed_snapshot is not None and copy.closed_snapshot != copy.last_snapshot:
        problems.append(
            f"the head was closed at snapshot {copy.closed_snapshot}, but the copy ends at "
            f"snapshot {copy.last_snapshot}"
        )


def _ledger(
    copy: ChannelCopy,
    decoded: dict[str, DecodedTx],
    fanout: dict[str, Any] | None,
    problems: list[str],
) -> None:
    """Replay the head's ledger from the copy; compare what is left with ``fanout``."""
    utxo: dict[str, Value] = {}
    spent: dict[str, str] = {}
    applied: set[str] = set()
    for snapshot in copy.snapshots:
        utxo.update(_values(snapshot.utxo_to_commit, problems))
        for envelope in snapshot.confirmed:
            tx = _decoded(envelope.cbor, decoded)
            if tx is None:
                continue
            for tx_id, index in tx.inputs:
                ref = f"{tx_id}#{index}"
                if ref in spent:
                    problems.append(
                        f"transaction {tx.tx_id[:16]} spends {ref[:16]}…#{index} again "
                        f"(spent before by {spent[ref][:16]}): a double spend the head "
                        "never confirmed"
                    )
                elif ref not in utxo and tx_id in decoded and tx_id not in applied:
                    problems.append(
                        f"transaction {tx.tx_id[:16]} spends an output of {tx_id[:16]}, "
                        "which comes later in the copy: entries are out of order"
                    )
                utxo.pop(ref, None)
                spent[ref] = tx.tx_id
            for index, output in enumerate(tx.outputs):
                utxo[f"{tx.tx_id}#{index}"] = _value_of(output)
            applied.add(tx.tx_id)
        for ref in snapshot.utxo_to_decommit or {}:
            utxo.pop(ref, None)
    if fanout is not None:
        _against_fanout(utxo, spent, _values(fanout, problems), problems)


def _against_fanout(
    left: dict[str, Value], spent: dict[str, str], fanout: dict[str, Value], problems: list[str]
) -> None:
    for ref in sorted(left):
        if ref not in fanout:
            problems.append(
                f"the copy leaves {_short(ref)} unspent, but the head's fanout does not hold "
                "it: a transaction that spent it is missing from the copy"
            )
        elif fanout[ref] != left[ref]:
            problems.append(f"{_short(ref)} differs from the output the head fanned out")
    for ref in sorted(fanout):
        if ref in spent:
            problems.append(
                f"the copy's transaction {spent[ref][:16]} spends {_short(ref)}, which the "
                "head fanned out unspent: the head never confirmed that transaction"
            )


def _decoded(cbor: bytes, decoded: dict[str, DecodedTx]) -> DecodedTx | None:
    try:
        return decoded.get(decode_tx(cbor).tx_id)
    except MalformedTransaction:
        return None


def _value_of(output: TxOutput) -> Value:
    try:
        address = str(Address.from_primitive(output.address))
    except (ValueError, LookupError, AssertionError, TypeError):  # PyCardano's, on bad bytes
        address = output.address.hex()
    assets = tuple(sorted((p.hex(), n.hex(), q) for p, n, q in output.assets))
    return address, output.lovelace, assets


def _values(utxo: dict[str, Any] | None, problems: list[str]) -> dict[str, Value]:
    if not utxo:
        return {}
    try:
        parsed = parse_utxo(utxo)
    except (HydraProtocolError, ValueError) as exc:
        problems.append(f"a UTxO in the copy is malformed: {exc}")
        return {}
    return {ref: (o.address, o.lovelace, tuple(sorted(o.assets))) for ref, o in parsed.items()}


def _as_output(head_id: str, snapshot: CopiedSnapshot) -> SnapshotConfirmed:
    """The copied snapshot as the server output it was (for the parties' own view)."""
    return SnapshotConfirmed(
        "SnapshotConfirmed",
        None,
        snapshot.timestamp,
        head_id,
        snapshot.number,
        snapshot.confirmed,
        snapshot.utxo_to_commit,
        snapshot.utxo_to_decommit,
    )


def _short(ref: str) -> str:
    tx_id, _, index = ref.partition("#")
    return f"{tx_id[:16]}…#{index}"
