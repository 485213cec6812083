"""The escrow's layer-1 transactions, built with PyCardano against any ``ChainContext``.

Every party locks its own deposit (:func:`build_lock`): one output at the session's script
address holding exactly the deposit, with the inline ``LockDatum`` naming the parties (payment
key hashes in name order), the owner, the deposit, the rounds and the deadline. The others
check that lock from its out-ref (:func:`check_lock`) before round 1. After the session,
anyone settles the locks as the rules say (:func:`build_settlement`: ``Release`` or ``Slash``,
each payout tagged with the spent lock's out-ref); after the deadline, anyone refunds them
(:func:`build_refund`). Fees and collateral come from the submitter's own UTxO.

The builders only read the chain (UTxOs, protocol parameters, the slot clock) and return a
signed :class:`pycardano.Transaction`; submitting is the caller's step. Before returning, a
builder runs every escrow input's script on the context derived from the transaction itself
(:func:`zkadapt.escrow.tx_context.script_runs`) with ``uplc``: that fixes the execution
units, and a transaction the validator would reject is refused here with the contract's
own reason (the traced build), instead of failing on the node.

The chain context must provide ``slot_to_posix_ms`` and ``posix_ms_to_slot`` (the project's
Ogmios and Blockfrost contexts do; :mod:`zkadapt.cardano.chain`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import cbor2

from zkadapt.escrow.onchain import (
    REFUND,
    EscrowError,
    EscrowLock,
    EscrowScript,
    Evaluation,
    lock_datum,
)
from zkadapt.escrow.script_context import tx_out_ref

#: Execution units a script may use at most per transaction (Conway ``maxTxExecutionUnits``).
MAX_TX_MEMORY = 14_000_000
MAX_TX_STEPS = 10_000_000_000
#: Headroom added to the units the local evaluation measured (the node re-measures).
UNITS_MARGIN = 0.1
#: How many slots after the current one a settlement stays valid (at most; before the
#: deadline for a slash).
VALIDITY_SLOTS = 600
#: Lovelace added to PyCardano's fee estimate, whose stand-in transaction can come out a few
#: bytes short of the signed one (a lock came out 2 bytes, 88 lovelace, short on the double).
FEE_BUFFER = 1_000


class LockInvalid(EscrowError):
    """A party's lock is missing, spent, or not what the session agreed (address, datum,
    amount): that party has not deposited."""


class SettlementRefused(EscrowError):
    """The validator would reject the settlement built (its reason), or it cannot be built."""


class TooManyLocks(SettlementRefused):
    """The locks' scripts need more execution units than one transaction may use."""


@dataclass(frozen=True)
class SessionLocks:
    """What every lock of one session shares: the terms the datum fixes.

    Attributes:
        session: the 32-byte session id (the script's parameter).
        parties: party name -> 28-byte payment key hash (the session file's parties).
        deposit: lovelace each party locks.
        rounds: rounds of the session.
        deadline_ms: POSIX milliseconds: slashing before, refunds from then on.
        network: ``pycardano.Network`` of the addresses.
        newcomers: admitted (or asking) newcomers -> payment key hash: a newcomer's lock
            lists the parties and itself (docs/membership.md, "Escrow").
    """

    session: bytes
    parties: Mapping[str, bytes]
    deposit: int
    rounds: int
    deadline_ms: int
    network: Any
    newcomers: Mapping[str, bytes] = field(default_factory=dict)

    @cached_property
    def script(self) -> EscrowScript:
        return EscrowScript(self.session)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.parties))

    @cached_property
    def plutus_script(self) -> Any:
        from pycardano import PlutusV3Script

        return PlutusV3Script(self.script.compiled)

    @cached_property
    def address(self) -> Any:
        """The session's script address (no staking part)."""
        from pycardano import Address, ScriptHash

        return Address(payment_part=ScriptHash(self.script.script_hash), network=self.network)

    @property
    def owners(self) -> tuple[str, ...]:
        """Everyone who may hold a lock: the parties and the newcomers, in name order."""
        return tuple(sorted({*self.parties, *self.newcomers}))

    def community(self, owner: str) -> dict[str, bytes]:
        """The parties ``owner``'s lock lists (name -> key hash): the session file's
        parties, and a newcomer itself on its own lock (locks made before it cannot list it).

        Raises:
            EscrowError: ``owner`` is neither a party nor a newcomer.
        """
        if owner in self.parties:
            return dict(self.parties)
        if owner in self.newcomers:
            return {**self.parties, owner: self.newcomers[owner]}
        raise EscrowError(f"{owner} is not a party of this session")

    def key_address(self, name: str) -> Any:
        """Where a party's payouts go: the enterprise address of its payment key hash."""
        from pycardano import Address, VerificationKeyHash

        keys = {**self.parties, **self.newcomers}
        return Address(payment_part=VerificationKeyHash(keys[name]), network=self.network)

    def datum(self, owner: str) -> cbor2.CBORTag:
        """``LockDatum`` of ``owner``'s lock (Plutus data as cbor2 objects)."""
        members = self.community(owner)
        names = sorted(members)
        keys = [members[n] for n in names]
        owner_index = names.index(owner)
        return lock_datum(keys, owner_index, self.deposit, self.rounds, self.deadline_ms)

    def lock(self, owner: str, ref: Any) -> EscrowLock:
        """``owner``'s lock at ``ref`` as :mod:`zkadapt.escrow.onchain` describes it."""
        return EscrowLock(
            self.script,
            self.community(owner),
            owner,
            self.deposit,
            self.rounds,
            self.deadline_ms,
            _ref_data(ref),
        )


def parse_ref(text: str) -> Any:
    """``"<64 hex>#<index>"`` as a ``pycardano.TransactionInput``.

    Raises:
        LockInvalid: not an out-ref.
    """
    from pycardano import TransactionInput

    tx_id, sep, index = text.partition("#")
    ok = sep and len(tx_id) == 64 and index.isdigit() and len(index) <= 5
    try:
        bytes.fromhex(tx_id)
    except ValueError:
        ok = False
    if not ok:
        raise LockInvalid(f"{text[:80]!r} is not an out-ref (<64 hex>#<index>)")
    return TransactionInput.from_primitive([tx_id, int(index)])


def ref_text(ref: Any) -> str:
    return f"{bytes(ref.transaction_id.payload).hex()}#{ref.index}"


def _ref_data(ref: Any) -> cbor2.CBORTag:
    return tx_out_ref(bytes(ref.transaction_id.payload), int(ref.index))


def _raw(data: Any) -> Any:
    from pycardano import RawPlutusData

    return RawPlutusData(data)


def _normal(value: Any) -> Any:
    """Plutus data with lists and tuples alike (definite and indefinite encodings agree)."""
    if isinstance(value, cbor2.CBORTag):
        return ("tag", value.tag, _normal(value.value))
    if isinstance(value, list | tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((repr(_normal(k)), _normal(v)) for k, v in value.items()))
    return value


def same_data(a: Any, b: Any) -> bool:
    """Whether two Plutus data values are equal (whatever their CBOR encoding)."""
    return _normal(a) == _normal(b)


# --- lock ----------------------------------------------------------------------------------


def build_lock(
    context: Any, locks: SessionLocks, owner: str, payer: Any, signing_key: Any
) -> tuple[Any, Any]:
    """``owner`` pays its deposit to the session's address with its inline datum.

    Args:
        payer: the address whose UTxO pays the deposit and fee (change goes back there).
        signing_key: the payment signing key of ``payer``.

    Returns:
        (the signed transaction, the lock's out-ref).
    """
    from pycardano import TransactionBuilder, TransactionInput, TransactionOutput

    builder = TransactionBuilder(context)
    builder.add_input_address(payer)
    builder.add_output(
        TransactionOutput(locks.address, locks.deposit, datum=_raw(locks.datum(owner)))
    )
    tx = _build(builder, [signing_key], payer)
    index = next(i for i, o in enumerate(tx.transaction_body.outputs) if o.address == locks.address)
    return tx, TransactionInput(tx.transaction_body.id, index)


def check_lock(context: Any, locks: SessionLocks, owner: str, ref: Any) -> Any:
    """``owner``'s lock at ``ref`` is unspent and exactly what the session agreed.

    Checked: at the session's script address, holding exactly the deposit in lovelace and
    nothing else, with the inline datum the session fixes for ``owner`` (parties, owner,
    deposit, rounds, deadline), and no reference script. A lock that differs might let its
    owner take it back alone (a datum naming keys it holds), so it does not count.

    Returns:
        the lock's ``UTxO``.

    Raises:
        LockInvalid: the lock is missing or spent, or differs from the agreement.
    """
    from zkadapt.escrow.tx_context import as_data

    ref = parse_ref(ref) if isinstance(ref, str) else ref
    found = context.utxo_by_tx_id(bytes(ref.transaction_id.payload).hex(), int(ref.index))
    where = f"{owner}'s lock {ref_text(ref)[:16]}…#{ref.index}"
    if found is None:
        raise LockInvalid(f"{where} is not in the UTxO (never made, not confirmed yet, or spent)")
    output = found.output
    if output.address != locks.address:
        raise LockInvalid(f"{where} is not at the session's script address")
    amount = output.amount
    coin = amount if isinstance(amount, int) else amount.coin
    assets = None if isinstance(amount, int) else amount.multi_asset
    if coin != locks.deposit or (assets and any(assets.values())):
        raise LockInvalid(f"{where} holds {coin} lovelace (and tokens?), not {locks.deposit}")
    if output.datum is None:
        raise LockInvalid(f"{where} has no inline datum")
    if not same_data(as_data(output.datum), locks.datum(owner)):
        raise LockInvalid(f"{where} has another datum than the session's for {owner}")
    if output.script is not None:
        raise LockInvalid(f"{where} carries a reference script")
    return found


# --- settle and refund ---------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    """One lock to spend: its UTxO, owner, redeemer and what it must pay (lovelace per party)."""

    utxo: Any
    owner: str
    redeemer: Any
    payouts: Mapping[str, int]

    @property
    def is_slash(self) -> bool:
        return self.redeemer.tag == 122  # constr(1): Slash


def build_settlement(
    context: Any,
    locks: SessionLocks,
    spends: Sequence[Spend],
    payer: Any,
    signing_key: Any,
    *,
    check: bool = True,
) -> Any:
    """Spend ``spends`` in one transaction, each paying its payouts tagged with its out-ref.

    A transaction with a ``Slash`` is valid only up to the deadline (its validity interval
    ends at or before it); one of releases only has no bound at the deadline.

    Args:
        payer: the address paying the fee and the collateral (change goes back there).
        check: evaluate every escrow input locally first and refuse with the contract's
            reason (False: build anyway, for tests that show the node refusing).

    Raises:
        SettlementRefused: nothing to spend, the deadline has passed for a slash, or the
            validator rejects an input (with its reason).
    """
    if not spends:
        raise SettlementRefused("no lock to settle")
    now = context.last_block_slot
    end = now + VALIDITY_SLOTS
    if any(s.is_slash for s in spends):
        last = context.posix_ms_to_slot(locks.deadline_ms)
        end = min(end, last)
        if end <= now:
            raise SettlementRefused("the deadline has passed: a slash is no longer possible")
    return _spend(context, locks, spends, payer, signing_key, (None, end), check)


def refund_spends(locks: SessionLocks, utxos: Mapping[str, Any]) -> list[Spend]:
    """``Refund`` each owner's lock (``owner -> UTxO``) to its owner."""
    return [Spend(u, owner, REFUND, {owner: locks.deposit}) for owner, u in sorted(utxos.items())]


def build_refund(
    context: Any,
    locks: SessionLocks,
    utxos: Mapping[str, Any],
    payer: Any,
    signing_key: Any,
    *,
    check: bool = True,
    start_slot: int | None = None,
) -> Any:
    """Return each lock in ``utxos`` (owner -> UTxO) to its owner, from the deadline on.

    Args:
        start_slot: the validity start (default: the first slot at or after the deadline);
            an earlier one only makes sense to show the validator refusing it.

    Raises:
        SettlementRefused: the deadline is not reached (in the chain's time), or the
            validator rejects the refund.
    """
    first = context.posix_ms_to_slot(locks.deadline_ms)
    if context.slot_to_posix_ms(first) < locks.deadline_ms:
        first += 1
    start = first if start_slot is None else start_slot
    now = context.last_block_slot
    if start > now:
        wait_s = (context.slot_to_posix_ms(start) - context.slot_to_posix_ms(now)) / 1000
        raise SettlementRefused(f"no refund before the deadline ({wait_s:.0f} s from the tip)")
    spends = refund_spends(locks, utxos)
    return _spend(context, locks, spends, payer, signing_key, (start, now + VALIDITY_SLOTS), check)


def _spend(
    context: Any,
    locks: SessionLocks,
    spends: Sequence[Spend],
    payer: Any,
    signing_key: Any,
    validity: tuple[int | None, int | None],
    check: bool,
) -> Any:
    """Build twice: with a placeholder budget, then with the units the scripts measured."""
    share = (MAX_TX_MEMORY // len(spends), MAX_TX_STEPS // len(spends))
    placeholder = {ref_text(s.utxo.input): share for s in spends}
    draft = _assemble(context, locks, spends, payer, signing_key, validity, placeholder)
    measured = evaluate_locks(context, locks, draft, spends)
    refused = {ref: e for ref, e in measured.items() if not e.accepted}
    if refused and check:
        ref, outcome = next(iter(refused.items()))
        owner = next(s.owner for s in spends if ref_text(s.utxo.input) == ref)
        raise SettlementRefused(f"the validator rejects {owner}'s lock: {_reason(outcome)}")
    units = {
        ref: (int(e.memory * (1 + UNITS_MARGIN)) + 1, int(e.cpu * (1 + UNITS_MARGIN)) + 1)
        for ref, e in measured.items()
    }
    if refused:  # check=False: keep the placeholder so the node judges the script itself
        units.update({ref: placeholder[ref] for ref in refused})
    if (
        sum(m for m, _ in units.values()) > MAX_TX_MEMORY
        or sum(c for _, c in units.values()) > MAX_TX_STEPS
    ):
        raise TooManyLocks(
            f"{len(spends)} locks exceed one transaction's execution units; settle fewer at once"
        )
    return _assemble(context, locks, spends, payer, signing_key, validity, units)


def _reason(outcome: Evaluation) -> str:
    return outcome.logs[-1] if outcome.logs else (outcome.error or "rejected")


def _assemble(
    context: Any,
    locks: SessionLocks,
    spends: Sequence[Spend],
    payer: Any,
    signing_key: Any,
    validity: tuple[int | None, int | None],
    units: Mapping[str, tuple[int, int]],
) -> Any:
    from pycardano import ExecutionUnits, Redeemer, TransactionBuilder, TransactionOutput
    from pycardano.utils import min_lovelace_post_alonzo

    builder = TransactionBuilder(context)
    builder.add_input_address(payer)
    for spend in spends:
        memory, steps = units[ref_text(spend.utxo.input)]
        redeemer = Redeemer(_raw(spend.redeemer), ExecutionUnits(memory, steps))
        builder.add_script_input(spend.utxo, script=locks.plutus_script, redeemer=redeemer)
    for spend in spends:
        tag = _raw(_ref_data(spend.utxo.input))
        for name in locks.owners:
            due = spend.payouts.get(name, 0)
            if due <= 0:
                continue
            output = TransactionOutput(locks.key_address(name), due, datum=tag)
            output.amount = max(due, min_lovelace_post_alonzo(output, context))
            builder.add_output(output)
    start, end = validity
    if start is not None:
        builder.validity_start = start
    if end is not None:
        builder.ttl = end
    return _build(builder, [signing_key], payer)


def _build(builder: Any, keys: Iterable[Any], payer: Any) -> Any:
    """``build_and_sign``; PyCardano's own errors (no funds, ...) become one line."""
    from pycardano.exception import PyCardanoException

    builder.fee_buffer = FEE_BUFFER
    try:
        return builder.build_and_sign(list(keys), change_address=payer)
    except (PyCardanoException, ValueError) as exc:  # ValueError: too little for collateral
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SettlementRefused(f"cannot build the transaction: {first[:200]}") from None


def evaluate_locks(
    context: Any, locks: SessionLocks, tx: Any, spends: Sequence[Spend]
) -> dict[str, Evaluation]:
    """Run the escrow script of every lock ``tx`` spends on its derived context (traced
    build, so a rejection carries the contract's reason); out-ref text -> outcome."""
    from zkadapt.escrow.tx_context import script_runs

    resolved = {s.utxo.input: s.utxo.output for s in spends}
    for tx_in in tx.transaction_body.inputs:
        if tx_in not in resolved:
            found = context.utxo_by_tx_id(bytes(tx_in.transaction_id.payload).hex(), tx_in.index)
            if found is None:
                raise SettlementRefused(f"input {ref_text(tx_in)} is not in the UTxO")
            resolved[tx_in] = found.output
    sorted_inputs = sorted(
        tx.transaction_body.inputs, key=lambda i: (bytes(i.transaction_id.payload), i.index)
    )
    outcomes = {}
    for run in script_runs(tx, resolved, context.slot_to_posix_ms):
        if run.script_hash != locks.script.script_hash:
            continue
        ref = ref_text(sorted_inputs[run.index])
        on_chain = locks.script.evaluate(run.context)
        if not on_chain.accepted:
            traced = locks.script.explain(run.context)
            on_chain = Evaluation(False, on_chain.error, traced.logs, on_chain.cpu, on_chain.memory)
        outcomes[ref] = on_chain
    return outcomes
