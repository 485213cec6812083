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
signed vote the script checks.

**One lock per party.** Each party locks its own deposit in its own output at the session's
address, under the inline datum ``LockDatum(parties, owner, deposit, rounds, deadline)``:
``parties`` are the payment key hashes in canonical (sorted party name) order, ``owner`` the
index of the party whose deposit this is, ``deadline`` a POSIX time in milliseconds. No party
needs another to lock; the others check the lock (address, datum, amount) from its out-ref.

**No double satisfaction.** An output counts as a payment to a party only if it carries, as
its inline datum, the ``TxOutRef`` of the escrow input being validated. Out-refs are unique
on the chain, so one output can pay for one escrow input only, whether the other input is
this session's, another session's (another script hash) or any other contract's.

**Votes** are Ed25519 signatures by a party's payment key (its datum entry is the key's
blake2b-224 hash), each over a fixed-length message naming the session:

* kill: ``KILL_DOMAIN || session || round (8 bytes, big-endian) || victim's key hash``;
* release: ``RELEASE_DOMAIN || session || owner's key hash``.

A party is **slashed** (as evidence) when at least two other parties, and more than half of
the others, signed kill votes against it: no single party can slash another.

Redeemers, mirroring the off-chain settlement rules (``zkadapt.escrow.rules``):

* ``Release(slashed, votes)`` -- any time: the owner is paid its deposit back. ``slashed``
  proves who was slashed (kill votes for each); ``votes`` are release votes from more than
  half of the *other remaining* parties (slashed parties neither vote nor count).
* ``Slash(evidence, released)`` -- before the deadline: ``evidence`` proves the slashed
  set, which holds the owner; the deposit is split among the ``h`` remaining parties,
  ``deposit // h`` each and one more lovelace to each of the first ``deposit % h`` in datum
  order. ``released`` holds, for each remaining party in datum order, release votes for it
  from a strict majority of the other remaining parties -- the same evidence its own
  ``Release`` needs. That makes the proven set's completeness harmless: a slashed party the
  submitter leaves out of ``evidence`` would count as remaining and share in the split, but
  it cannot be proven released (honest parties never sign a release vote for a party the
  rules slashed), so the slash is rejected.
* ``Refund()`` -- at or after the deadline, anyone may return the deposit to its owner.
"""

from opshin.prelude import *
from opshin.std.builtins import *
from opshin.std.integrity import check_integrity

#: Domain tag of a kill vote's signed message (22 bytes), followed by session, round, victim.
KILL_DOMAIN = b"zkadapt/escrow/kill/v1"
#: Domain tag of a release vote's signed message (25 bytes), followed by session, owner.
RELEASE_DOMAIN = b"zkadapt/escrow/release/v1"


@dataclass()
class LockDatum(PlutusData):
    CONSTR_ID = 0
    parties: List[bytes]
    owner: int
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
class SignedReleaseVote(PlutusData):
    CONSTR_ID = 0
    voter: int
    vkey: bytes
    signature: bytes


@dataclass()
class Release(PlutusData):
    CONSTR_ID = 0
    slashed: List[Evidence]
    votes: List[SignedReleaseVote]


@dataclass()
class Recipient(PlutusData):
    CONSTR_ID = 0
    votes: List[SignedReleaseVote]


@dataclass()
class Slash(PlutusData):
    CONSTR_ID = 1
    evidence: List[Evidence]
    released: List[Recipient]


@dataclass()
class Refund(PlutusData):
    CONSTR_ID = 2


def kill_message(session: bytes, missed: int, victim: bytes) -> bytes:
    """What a voter signs: the victim missed round ``missed`` of ``session``."""
    return KILL_DOMAIN + session + integer_to_byte_string(True, 8, missed) + victim


def release_message(session: bytes, owner: bytes) -> bytes:
    """What a voter signs: ``owner`` may have its deposit in ``session`` back."""
    return RELEASE_DOMAIN + session + owner


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


def check_datum(datum: LockDatum) -> None:
    n = len(datum.parties)
    assert n >= 2, "an escrow needs at least two parties"
    assert 0 <= datum.owner and datum.owner < n, "the owner must be a party"
    assert datum.deposit > 0, "deposit must be positive"
    assert datum.rounds >= 1, "a session has at least one round"
    seen: List[bytes] = []
    for p in datum.parties:
        assert len(p) == 28, "parties must be payment key hashes"
        assert not any([s == p for s in seen]), "parties must be distinct"
        seen = [p] + seen


def count_kill_votes(session: bytes, datum: LockDatum, evidence: Evidence) -> int:
    """Checks every kill vote of ``evidence`` and returns how many there are."""
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


def slashed_set(session: bytes, datum: LockDatum, proofs: List[Evidence]) -> List[bool]:
    """Checks the kill votes proving each target slashed; returns who is, by party index."""
    n = len(datum.parties)
    lost = [False for _ in datum.parties]
    last = -1
    for evidence in proofs:
        target = evidence.target
        assert last < target and target < n, "targets must be increasing party indices"
        last = target
        votes = count_kill_votes(session, datum, evidence)
        assert votes >= 2 and 2 * votes > n - 1, (
            "a slash needs signed votes from two and a strict majority of the others"
        )
        lost = [lost[i] or i == target for i in range(n)]
    return lost


def count_release_votes(
    session: bytes, datum: LockDatum, lost: List[bool], owner: int, votes: List[SignedReleaseVote]
) -> int:
    """Checks release votes for party ``owner`` by parties not in ``lost``; returns how many."""
    n = len(datum.parties)
    message = release_message(session, datum.parties[owner])
    count = 0
    last = -1
    for vote in votes:
        voter = vote.voter
        assert last < voter and voter < n, "voters must be increasing party indices"
        last = voter
        assert voter != owner, "a party cannot release itself"
        assert not lost[voter], "a slashed party cannot vote"
        assert blake2b_224(vote.vkey) == datum.parties[voter], "a vote's key must be its voter's"
        assert verify_ed25519_signature(vote.vkey, message, vote.signature), "a bad vote signature"
        count += 1
    return count


def check_release(
    session: bytes, datum: LockDatum, release: Release, tx: TxInfo, tag: TxOutRef
) -> None:
    lost = slashed_set(session, datum, release.slashed)
    owner = datum.owner
    assert not lost[owner], "a slashed owner cannot be released"
    remaining = len(datum.parties) - len(release.slashed)
    votes = count_release_votes(session, datum, lost, owner, release.votes)
    assert remaining == 1 or 2 * votes > remaining - 1, (
        "a release needs votes from a strict majority of the other remaining parties"
    )
    target = datum.parties[owner]
    assert paid_to(tx.outputs, target, tag) >= datum.deposit, "a release must return the deposit"


def check_slash(session: bytes, datum: LockDatum, slash: Slash, tx: TxInfo, tag: TxOutRef) -> None:
    assert ends_before(tx.validity_range, datum.deadline), "a slash must end before the deadline"
    lost = slashed_set(session, datum, slash.evidence)
    assert lost[datum.owner], "a slash must prove this lock's owner slashed"
    honest = len(datum.parties) - len(slash.evidence)
    assert honest >= 1, "someone must remain to be paid"
    assert len(slash.released) == honest, "a slash proves every remaining party released"
    share = datum.deposit // honest
    extra = datum.deposit % honest
    rank = 0
    for i in range(len(datum.parties)):
        if not lost[i]:
            votes = count_release_votes(session, datum, lost, i, slash.released[rank].votes)
            assert honest == 1 or 2 * votes > honest - 1, (
                "every recipient of a slash must be released by a strict majority of the others"
            )
            due = share
            if rank < extra:
                due += 1
            paid = paid_to(tx.outputs, datum.parties[i], tag)
            assert paid >= due, "every remaining party must get its share"
            rank += 1


def check_refund(datum: LockDatum, tx: TxInfo, tag: TxOutRef) -> None:
    assert starts_at_or_after(tx.validity_range, datum.deadline), "no refund before the deadline"
    owner = datum.parties[datum.owner]
    assert paid_to(tx.outputs, owner, tag) >= datum.deposit, "a refund must return the deposit"


def validator(session: bytes, context: ScriptContext) -> None:
    assert len(session) == 32, "the session id must be 32 bytes"
    purpose = context.purpose
    assert isinstance(purpose, Spending), "the escrow only guards spending"
    tag = purpose.tx_out_ref
    datum: LockDatum = own_datum_unsafe(context)
    check_integrity(datum)  # a wrong datum (constructor, fields, types) fails here
    check_datum(datum)
    redeemer: Union[Release, Slash, Refund] = context.redeemer
    check_integrity(redeemer)
    tx = context.transaction
    if isinstance(redeemer, Release):
        check_release(session, datum, redeemer, tx, tag)
    elif isinstance(redeemer, Slash):
        check_slash(session, datum, redeemer, tx, tag)
    elif isinstance(redeemer, Refund):
        check_refund(datum, tx, tag)
    else:
        assert False, "unknown redeemer"
