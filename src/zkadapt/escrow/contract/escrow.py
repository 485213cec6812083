# ruff: noqa: F403, F405, SIM102, SIM300, B011, RUF005
"""ZK-ADAPT escrow validator, written in OpShin and compiled to Plutus V3 (DESIGN.md section 7).

This file is OpShin source: a restricted Python that ``opshin build`` compiles to UPLC. It
is not imported by the package at run time; :mod:`zkadapt.escrow.onchain` loads the compiled
blueprint (``plutus.json``) next to it and applies the session id to it
(``python -m zkadapt.escrow.blueprint`` regenerates the blueprint). Failing an ``assert`` is
how a Plutus script rejects a transaction, so on-chain checks are written as asserts (the
off-chain rule of STYLE.md, "no assert for validation", does not apply to on-chain code).

**Parameter.** ``session`` (the 32-byte session id) is applied to the compiled script, so
every session has its own script hash and address, and the session id is part of every
signed kill vote the script checks.

**Pool.** One output at the session's address holds every party's deposit under the inline
datum ``EscrowDatum(parties, deposit, rounds, deadline)``: ``parties`` are the payment key
hashes in canonical (sorted party name) order, ``deadline`` is a POSIX time in milliseconds.

**No double satisfaction.** An output counts as a payment to a party only if it carries, as
its inline datum, the ``TxOutRef`` of the escrow input being validated. Out-refs are unique
on the chain, so one output can pay for one escrow input only, whether the other input is
this session's, another session's (another script hash) or any other contract's. Without
the tag, one transaction spending two pools could show both validators the same payments.

Redeemers, mirroring the off-chain settlement rules (``zkadapt.escrow.rules``):

* ``Claim()`` -- every party signs the transaction and is paid at least its deposit.
* ``Slash(evidence)`` -- before the deadline, for each target a strict majority of the
  *other* parties signed a kill vote (Ed25519, with the payment key their datum entry is
  the hash of) over ``KILL_DOMAIN || session || round (8 bytes, big-endian) || victim``; the
  remaining parties are paid exactly what ``rules.payouts`` computes, in datum order.
* ``Refund()`` -- at or after the deadline, anyone may return every deposit to its party.
"""

from opshin.prelude import *
from opshin.std.builtins import *
from opshin.std.integrity import check_integrity

#: Domain tag of a kill vote's signed message (22 bytes), followed by session, round, victim.
KILL_DOMAIN = b"zkadapt/escrow/kill/v1"


@dataclass()
class EscrowDatum(PlutusData):
    CONSTR_ID = 0
    parties: List[bytes]
    deposit: int
    rounds: int
    deadline: int


@dataclass()
class SignedKillVote(PlutusData):
    CONSTR_ID = 0
    voter: int
    missed: int
    vkey: bytes
    signature: bytes


@dataclass()
class Evidence(PlutusData):
    CONSTR_ID = 0
    target: int
    votes: List[SignedKillVote]


@dataclass()
class Claim(PlutusData):
    CONSTR_ID = 0


@dataclass()
class Slash(PlutusData):
    CONSTR_ID = 1
    evidence: List[Evidence]


@dataclass()
class Refund(PlutusData):
    CONSTR_ID = 2


def kill_message(session: bytes, missed: int, victim: bytes) -> bytes:
    """What a voter signs: the victim missed round ``missed`` of ``session``."""
    return KILL_DOMAIN + session + integer_to_byte_string(True, 8, missed) + victim


def paid_to(outputs: List[TxOut], pkh: bytes, tag: TxOutRef) -> int:
    """Lovelace paid to the key hash ``pkh`` by outputs tagged with the spent input ``tag``."""
    total = 0
    for output in outputs:
        credential = output.address.payment_credential
        if isinstance(credential, PubKeyCredential):
            if credential.credential_hash == pkh:
                datum = output.datum
                if isinstance(datum, SomeOutputDatum):
                    if equals_data(datum.datum, tag):
                        total += output.value.get(b"", {b"": 0}).get(b"", 0)
    return total


def signed_by(signatories: List[bytes], pkh: bytes) -> bool:
    return any([s == pkh for s in signatories])


def ends_before(valid: POSIXTimeRange, deadline: int) -> bool:
    """Whether every time in ``valid`` is before ``deadline``."""
    upper = valid.upper_bound
    limit = upper.limit
    result = False
    if isinstance(limit, FinitePOSIXTime):
        if limit.time < deadline:
            result = True
        elif limit.time == deadline:
            closed = upper.closed
            result = isinstance(closed, FalseData)
    return result


def starts_at_or_after(valid: POSIXTimeRange, deadline: int) -> bool:
    """Whether every time in ``valid`` is at or after ``deadline``."""
    limit = valid.lower_bound.limit
    result = False
    if isinstance(limit, FinitePOSIXTime):
        result = limit.time >= deadline
    return result


def check_datum(datum: EscrowDatum) -> None:
    assert len(datum.parties) >= 2, "an escrow needs at least two parties"
    assert datum.deposit > 0, "deposit must be positive"
    assert datum.rounds >= 1, "a session has at least one round"
    seen: List[bytes] = []
    for p in datum.parties:
        assert len(p) == 28, "parties must be payment key hashes"
        assert not any([s == p for s in seen]), "parties must be distinct"
        seen = [p] + seen


def check_claim(datum: EscrowDatum, tx: TxInfo, tag: TxOutRef) -> None:
    for p in datum.parties:
        assert signed_by(tx.signatories, p), "a claim needs every party's signature"
        assert paid_to(tx.outputs, p, tag) >= datum.deposit, "a claim must refund every deposit"


def check_refund(datum: EscrowDatum, tx: TxInfo, tag: TxOutRef) -> None:
    assert starts_at_or_after(tx.validity_range, datum.deadline), "no refund before the deadline"
    for p in datum.parties:
        assert paid_to(tx.outputs, p, tag) >= datum.deposit, "a refund must return every deposit"


def count_votes(session: bytes, datum: EscrowDatum, evidence: Evidence) -> int:
    """Checks every vote of ``evidence`` and returns how many there are."""
    n = len(datum.parties)
    victim = datum.parties[evidence.target]
    votes = 0
    last = -1
    for vote in evidence.votes:
        voter = vote.voter
        assert last < voter and voter < n, "voters must be increasing party indices"
        last = voter
        assert voter != evidence.target, "a party cannot vote against itself"
        assert 1 <= vote.missed and vote.missed <= datum.rounds, "a vote names a session round"
        assert blake2b_224(vote.vkey) == datum.parties[voter], "a vote's key must be its voter's"
        message = kill_message(session, vote.missed, victim)
        assert verify_ed25519_signature(vote.vkey, message, vote.signature), "a bad vote signature"
        votes += 1
    return votes


def check_slash(
    session: bytes, datum: EscrowDatum, slash: Slash, tx: TxInfo, tag: TxOutRef
) -> None:
    assert ends_before(tx.validity_range, datum.deadline), "a slash must end before the deadline"
    n = len(datum.parties)
    assert len(slash.evidence) >= 1, "a slash needs a target"
    lost = [False for _ in datum.parties]
    last = -1
    for evidence in slash.evidence:
        target = evidence.target
        assert last < target and target < n, "targets must be increasing party indices"
        last = target
        votes = count_votes(session, datum, evidence)
        assert 2 * votes > n - 1, "a slash needs signed votes from a strict majority of the others"
        lost = [lost[i] or i == target for i in range(n)]
    slashed = len(slash.evidence)
    honest = n - slashed
    assert honest >= 1, "someone must remain to be paid"
    forfeited = datum.deposit * slashed
    share = forfeited // honest
    extra = forfeited % honest
    rank = 0
    for i in range(n):
        if not lost[i]:
            due = datum.deposit + share
            if rank < extra:
                due += 1
            paid = paid_to(tx.outputs, datum.parties[i], tag)
            assert paid >= due, "every remaining party must get its share"
            rank += 1


def validator(session: bytes, context: ScriptContext) -> None:
    assert len(session) == 32, "the session id must be 32 bytes"
    purpose = context.purpose
    assert isinstance(purpose, Spending), "the escrow only guards spending"
    tag = purpose.tx_out_ref
    datum: EscrowDatum = own_datum_unsafe(context)
    check_integrity(datum)  # a wrong datum (constructor, fields, types) fails here
    check_datum(datum)
    redeemer: Union[Claim, Slash, Refund] = context.redeemer
    check_integrity(redeemer)
    tx = context.transaction
    if isinstance(redeemer, Claim):
        check_claim(datum, tx, tag)
    elif isinstance(redeemer, Slash):
        check_slash(session, datum, redeemer, tx, tag)
    elif isinstance(redeemer, Refund):
        check_refund(datum, tx, tag)
    else:
        assert False, "unknown redeemer"
