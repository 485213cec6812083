"""Escrow balance with a newcomer, as properties over every history (issue 20).

The sibling of ``test_settlement_properties.py`` (which keeps its own numbers): alice, bob
and carol are the session file's parties, dave a newcomer the round machine admitted at
channel seq :data:`SINCE` (:class:`AdmittedDeposit`: his deposit is the one his request
declared, from that entry on), whose identity key is his payment key (the datum names its
blake2b-224 hash, ``zkadapt.operator.escrow.key_hash``). Breadth-first over every channel
history of up to ``DEPTH`` messages from ``ALPHABET``: the listed deposits, dave's own
``EscrowDeposit`` (ignored), an outsider's; ``RoundDone`` signals, dave's among them; every
payment-signed kill vote between the listed parties, theirs against dave and dave's against
them (ignored: their locks do not list him); a claim and a ``RoundDone`` by dave signed with
another identity key (ignored); claims, one from an outsider. Histories that leave the
same escrow facts are merged, but only at the same depth while dave's boundary is ahead
(the fold admits him at seq :data:`SINCE`, so the depth is part of the state until then).
On every reachable history:

* **Depositors** are the listed parties whose own first deposit was the agreed amount, and
  dave once the history reached his boundary (an oracle over the raw history), all as of
  the claim that fixed the settlement.
* **Conservation**: a final settlement pays exactly ``deposit * |depositors|``, only to
  depositors; the slashed get 0; someone remains.
* **Slashing**: each slashed party had payment-signed kill votes from two and a strict
  majority of the other depositors of **every** lock that lists it (what the validator
  checks on each of those locks), all from parties its own lock lists.
* **Locks**: each lock pays exactly its deposit, only to the parties it lists; dave is paid
  his own deposit or nothing (he never shares a listed party's slashed lock), and a slashed
  dave's lock goes to the listed parties that remain.
* **Claims** fix the settlement: no later message changes it.

Every distinct final settlement with two or more listed depositors is then run through the
compiled validator lock by lock, as the sibling test does: dave's lock with its own datum
(the listed depositors and dave, :meth:`SessionLocks.community`), each listed lock with the
listed depositors only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable
from dataclasses import dataclass

import pytest

from tests.escrow.helpers import DEPOSIT, SESSION
from tests.escrow.locks import PAYMENT_KEYS, key_hash, payment_keys, vote
from tests.fakes import make_keys
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.crypto.identity import IdentityKey
from zkadapt.escrow.messages import Claim, EscrowDeposit, EscrowMessage, KillVote
from zkadapt.escrow.rules import (
    PENDING,
    AdmittedDeposit,
    EscrowTerms,
    EscrowView,
    Settlement,
    enough_to_slash,
    lock_payouts,
    settle,
    slash_voters,
)
from zkadapt.operator.escrow import key_hash as identity_key_hash

MEMBERS = ("alice", "bob", "carol")
NEWCOMER = "dave"
OUTSIDER = "mallory"
#: dave's boundary: the channel seq from which his deposit counts.
SINCE = 3
KEYS, _ = make_keys([*MEMBERS, OUTSIDER])
KEYS[NEWCOMER] = IdentityKey.from_seed(PAYMENT_KEYS[NEWCOMER].payload)  # his payment key
ADMITTED = AdmittedDeposit(KEYS[NEWCOMER].public.hex, DEPOSIT, "dave#0", SINCE)


def terms_with(since: int) -> EscrowTerms:
    """Layer-1 terms (everyone's payment key) with dave admitted at ``since``."""
    dave = AdmittedDeposit(ADMITTED.key, DEPOSIT, ADMITTED.ref, since)
    keys = payment_keys((*MEMBERS, NEWCOMER))
    return EscrowTerms(
        SESSION, MEMBERS, DEPOSIT, rounds=1, quorum=2, payment_keys=keys, newcomers={NEWCOMER: dave}
    )


TERMS = terms_with(SINCE)
#: distinct (escrow facts, depth until the boundary) states: 913 at 5, 3,035 at 6, 12,697
#: at 7; the slow run admits dave at seq 6 instead and reaches 8,111 at 7
DEPTH = 6


def _signed(
    sender: str, body: EscrowMessage | dict[str, object], signer: str = ""
) -> SignedEnvelope:
    payload = body.to_bytes() if isinstance(body, EscrowMessage) else json.dumps(body).encode()
    return SignedEnvelope(sender, payload, KEYS[signer or sender].sign(payload))


def _round_done(party: str) -> dict[str, object]:
    return {"type": "RoundDone", "v": 1, "session": SESSION, "round": 1, "party": party}


def _kill(voter: str, target: str) -> KillVote:
    signed = vote(voter, target, round_=1)
    return KillVote(SESSION, 1, voter, target, "silent", signed.vkey.hex(), signed.signature.hex())


def _alphabet() -> list[tuple[str, SignedEnvelope]]:
    """(label, envelope) for every message a history may append."""
    everyone = (*MEMBERS, NEWCOMER)
    items = []
    for p in (*everyone, OUTSIDER):
        items.append((f"{p} deposits", _signed(p, EscrowDeposit(SESSION, 0, p, DEPOSIT))))
    for p in everyone:
        items.append((f"{p} RoundDone r1", _signed(p, _round_done(p))))
    for voter in everyone:
        for target in everyone:
            if voter != target:
                items.append(
                    (f"{voter} votes to kill {target}", _signed(voter, _kill(voter, target)))
                )
    for p in (*everyone, OUTSIDER):
        items.append((f"{p} claims", _signed(p, Claim(SESSION, 1, p))))
    forged = "signed by another key"
    items.append(
        (f"dave claims, {forged}", _signed(NEWCOMER, Claim(SESSION, 1, NEWCOMER), OUTSIDER))
    )
    done = _signed(NEWCOMER, _round_done(NEWCOMER), OUTSIDER)
    items.append((f"dave RoundDone r1, {forged}", done))
    return items


ALPHABET = _alphabet()


@dataclass(frozen=True)
class Path:
    """One explored history: its envelopes, and the seq of the claim that fixed it."""

    envelopes: tuple[SignedEnvelope, ...]
    fixed_at: int | None = None


def _fold(view: EscrowView, envelope: SignedEnvelope, seq: int, terms: EscrowTerms) -> EscrowView:
    """``view`` with one more entry at ``seq``, as :meth:`EscrowView.from_entries` folds it."""
    after = EscrowView(
        deposits=dict(view.deposits),
        refs=dict(view.refs),
        last_signal=dict(view.last_signal),
        done={r: set(who) for r, who in view.done.items()},
        vote_order=list(view.vote_order),
        claims=list(view.claims),
        fixed=view.fixed,
        kill_evidence=dict(view.kill_evidence),
    )
    after._admit(seq, terms)
    after._add(Entry(seq, envelope, 0.0), terms)
    return after


def _state(view: EscrowView, depth: int, since: int) -> Hashable:
    """What decides the future: the escrow facts, and the depth while the boundary is ahead."""
    facts = (
        tuple(sorted(view.deposits.items())),
        tuple(sorted((r, frozenset(who)) for r, who in view.done.items())),
        tuple(view.vote_order),
        tuple(view.claims),
        view.fixed,
    )
    return facts, min(depth, since)


def _genuine(env: SignedEnvelope) -> bool:
    """Signed by the sender's own identity key (dave's: the one he was admitted with)."""
    return KEYS[env.sender].public.verify(env.payload, env.signature)


def _community(owner: str) -> tuple[str, ...]:
    return tuple(sorted({*MEMBERS, owner}))


def _expected_depositors(path: Path, since: int) -> tuple[str, ...]:
    """Oracle from the raw history, up to the fixing claim: listed parties whose own first
    deposit is the agreed amount, and dave once the history reached his boundary."""
    reached = len(path.envelopes) if path.fixed_at is None else path.fixed_at
    first: dict[str, int] = {}
    for env in path.envelopes[: reached - 1 if path.fixed_at else reached]:
        body = json.loads(env.payload)
        if body["type"] == "EscrowDeposit" and body["party"] == env.sender and _genuine(env):
            first.setdefault(env.sender, body["amount"])
    listed = [p for p in MEMBERS if first.get(p) == DEPOSIT]
    return tuple(sorted([*listed, NEWCOMER] if reached >= since else listed))


def _votes_against(path: Path, target: str, members: tuple[str, ...]) -> int:
    """Oracle: distinct depositors of ``target``'s lock who posted a kill vote against it
    signed with their own payment key (before the fixing claim)."""
    end = len(path.envelopes) if path.fixed_at is None else path.fixed_at - 1
    voters = set()
    for env in path.envelopes[:end]:
        body = json.loads(env.payload)
        if body["type"] == "KillVote" and body["target"] == target and _genuine(env):
            own_key = hashlib.blake2b(bytes.fromhex(body["vkey"]), digest_size=28).digest()
            if own_key == key_hash(env.sender):
                voters.add(env.sender)
    return len(voters & (set(members) & set(_community(target))) - {target})


def _check(path: Path, result: Settlement, since: int) -> None:
    members = _expected_depositors(path, since)
    assert result.depositors == members, (path, result)
    assert result.newcomers == ((NEWCOMER,) if NEWCOMER in members else ())
    if result.status == PENDING:
        assert result.payouts == {} and result.claims == () and result.slashed == ()
        return
    assert set(result.payouts) == set(members)
    assert sum(result.payouts.values()) == DEPOSIT * len(members)  # conservation
    remaining = [p for p in members if p not in result.slashed]
    assert remaining or not members, "everyone slashed: the pool has nobody to go to"
    assert set(result.claims) <= set(remaining)
    locks = {owner: result.lock_members(owner) for owner in members}
    for owner, listed in locks.items():
        assert listed == tuple(p for p in members if p in _community(owner))
    for target in result.slashed:
        assert result.payouts[target] == 0
        votes = _votes_against(path, target, members)
        for listed in locks.values():  # every lock that lists it can prove it slashed
            if target in listed:
                assert enough_to_slash(votes, len(listed)), (target, listed, votes, path)
    paid = {owner: lock_payouts(locks[owner], result.slashed, DEPOSIT, owner) for owner in members}
    for owner, lock in paid.items():
        assert sum(lock.values()) == DEPOSIT  # every lock paid exactly
        assert set(lock) <= set(locks[owner]) - set(result.slashed)
        if owner != NEWCOMER:
            assert NEWCOMER not in lock  # a newcomer never shares a listed lock
    assert {p: sum(lock.get(p, 0) for lock in paid.values()) for p in members} == result.payouts
    if NEWCOMER in members:
        lost = NEWCOMER in result.slashed
        assert result.payouts[NEWCOMER] == (0 if lost else DEPOSIT)
    listed_paid = [result.payouts[p] for p in remaining if p != NEWCOMER]
    if listed_paid:
        assert min(listed_paid) >= DEPOSIT
        assert max(listed_paid) - min(listed_paid) <= len(result.slashed)


Finals = dict[Hashable, tuple[EscrowView, Settlement]]


def _explore(depth_limit: int = DEPTH, terms: EscrowTerms = TERMS) -> tuple[int, Finals]:
    """Every distinct escrow state up to ``depth_limit`` messages; checks each and each step."""
    since = terms.newcomers[NEWCOMER].since
    start = EscrowView()
    frontier: list[tuple[EscrowView, Path]] = [(start, Path(()))]
    seen = {_state(start, 0, since)}
    finals: Finals = {}
    for depth in range(1, depth_limit + 1):
        following = []
        for view, path in frontier:
            before = settle(view, terms)
            for _, envelope in ALPHABET:
                after = _fold(view, envelope, depth, terms)
                result = settle(after, terms)
                fixed_at = path.fixed_at
                if fixed_at is None and after.fixed is not None:
                    fixed_at = depth
                    claim = json.loads(envelope.payload)
                    assert claim["type"] == "Claim" and _genuine(envelope)
                    assert envelope.sender in result.claims
                extended = Path((*path.envelopes, envelope), fixed_at)
                _check(extended, result, since)
                if before.claims:  # the first claim fixed the settlement
                    assert (result.status, result.depositors, result.slashed, result.payouts) == (
                        before.status,
                        before.depositors,
                        before.slashed,
                        before.payouts,
                    )
                    assert result.claims[: len(before.claims)] == before.claims
                if result.final and len(set(result.depositors) & set(MEMBERS)) >= 2:
                    finals.setdefault((result.depositors, result.slashed), (after, result))
                key = _state(after, depth, since)
                if key not in seen:
                    seen.add(key)
                    following.append((after, extended))
        frontier = following
    return len(seen), finals


@pytest.fixture(scope="module")
def explored() -> tuple[int, Finals]:
    return _explore()


def test_the_newcomers_payment_key_is_its_identity_key() -> None:
    assert identity_key_hash(ADMITTED.key) == TERMS.payment_keys[NEWCOMER] == key_hash(NEWCOMER)


def test_every_history_with_a_newcomer_conserves_each_lock(explored) -> None:
    states, finals = explored
    assert states > 3_000  # the alphabet reaches far; a broken fold would stall early
    shapes = {(len(d), s) for d, s in finals if NEWCOMER in d}
    # dave settled with two and three listed parties, slashed himself, and beside a slashed
    # listed party (every final here has dave: a settlement takes four messages, his
    # boundary is the third; test_newcomer_rules.py fixes one before a later boundary)
    assert {(3, ()), (3, ("dave",)), (4, ()), (4, ("carol",)), (4, ("dave",))} <= shapes
    assert all(NEWCOMER in members for members, _ in finals)


def test_every_final_settlement_with_a_newcomer_is_what_the_validator_accepts(explored) -> None:
    _, finals = explored
    assert _through_the_validator(finals, TERMS) == 38  # 11 settlements, 3 or 4 locks each


def _through_the_validator(finals: Finals, terms: EscrowTerms) -> int:
    """Runs every lock of every final settlement through the compiled validator, with the
    evidence the channel holds (the payment-signed kill votes the rules counted) and the
    release votes the remaining parties then sign; returns how many locks it ran.

    Dave's lock lists the listed depositors and him, a listed lock only the listed
    depositors: the datum :class:`SessionLocks` writes for each.
    """
    pytest.importorskip("uplc")
    from pycardano import Network

    from tests.escrow.locks import BEFORE, DEADLINE, lock_ref, release_vote, run, script_for
    from zkadapt.escrow.onchain import EscrowLock, redeemer_for, settlement_payouts, settlement_tx
    from zkadapt.escrow.txs import SessionLocks

    locks = 0
    for (members, lost), (view, result) in sorted(finals.items()):
        session = SessionLocks(
            bytes.fromhex(SESSION),
            payment_keys(p for p in members if p in terms.parties),
            DEPOSIT,
            terms.rounds,
            DEADLINE,
            Network.TESTNET,
            newcomers=payment_keys(p for p in members if p == NEWCOMER),
        )
        counted = slash_voters(view, terms)
        kills = [view.kill_evidence[(v, t)] for t in lost for v in counted[t]]
        remaining = [p for p in members if p not in lost]
        releases = [release_vote(v, t) for t in remaining for v in remaining if v != t]
        for owner in members:
            script = script_for(session.session)
            datum = session.community(owner)
            lock = EscrowLock(
                script, datum, owner, DEPOSIT, terms.rounds, DEADLINE, lock_ref(owner)
            )
            assert lock.names == result.lock_members(owner)
            redeemer = redeemer_for(result, owner, kills, releases)
            paid = settlement_payouts(result, owner)
            outcome = run(lock, settlement_tx(lock, redeemer, paid, validity=BEFORE))
            assert outcome.accepted, (members, lost, owner, paid, outcome)
            locks += 1
    return locks


@pytest.mark.slow
def test_a_later_boundary_and_seven_messages_keep_every_property() -> None:
    """Dave admitted at seq 6: settlements fixed before him leave him out, and two parties
    are slashed (one listed and dave, or two listed) beside him."""
    states, finals = _explore(DEPTH + 1, terms_with(6))
    assert states > 8_000
    shapes = {(NEWCOMER in d, len(d), s) for d, s in finals}
    assert {(False, 3, ()), (False, 3, ("alice",)), (True, 4, ("carol", "dave"))} <= shapes
    assert {(True, 4, ("alice", "bob")), (True, 3, ("dave",))} <= shapes
    assert _through_the_validator(finals, terms_with(6)) == 80  # 24 settlements


def test_a_listed_slash_is_one_every_lock_that_lists_the_party_accepts() -> None:
    """Four listed parties and dave: dave's lock lists five, so the validator proves a
    listed party slashed there only with three votes (two and more than half of four
    others), where the listed locks need two. A slash the rules count with two votes left
    dave's lock with no settlement the validator accepts: no ``Release`` (the slash cannot
    be proven there) and, with dave slashed too, no ``Slash`` either (the unproven party
    counts as remaining and must be paid) -- dave would get his deposit back at the
    deadline. So the rules slash a party only with the votes the largest lock listing it
    needs (here three), and every lock then settles as the rules say."""
    listed = ("alice", "bob", "carol", "erin")
    keys, _ = make_keys(["erin"])
    signers = {**KEYS, **keys}
    dave = AdmittedDeposit(ADMITTED.key, DEPOSIT, ADMITTED.ref, 1)
    terms = EscrowTerms(
        SESSION,
        listed,
        DEPOSIT,
        rounds=1,
        quorum=2,
        payment_keys=payment_keys((*listed, NEWCOMER)),
        newcomers={NEWCOMER: dave},
    )
    entries: list[Entry] = []

    def post(sender: str, message: EscrowMessage) -> None:
        payload = message.to_bytes()
        env = SignedEnvelope(sender, payload, signers[sender].sign(payload))
        entries.append(Entry(len(entries) + 1, env, 0.0))

    for p in listed:
        post(p, EscrowDeposit(SESSION, 0, p, DEPOSIT))
    for voter in ("alice", "bob", "erin"):
        post(voter, _kill(voter, NEWCOMER))
    post("alice", _kill("alice", "carol"))
    post("bob", _kill("bob", "carol"))
    view = EscrowView.from_entries(entries, terms)
    assert settle(view, terms).slashed == ("dave",)  # two votes: short on dave's lock
    post("erin", _kill("erin", "carol"))
    view = EscrowView.from_entries(entries, terms)
    result = settle(view, terms)
    assert result.slashed == ("carol", "dave")
    third, left = divmod(DEPOSIT, 3)  # each slashed lock among alice, bob and erin
    assert left == 1
    assert result.payouts == {
        "alice": DEPOSIT + 2 * (third + 1),
        "bob": DEPOSIT + 2 * third,
        "carol": 0,
        "dave": 0,
        "erin": DEPOSIT + 2 * third,
    }
    finals = {(result.depositors, result.slashed): (view, result)}
    assert _through_the_validator(finals, terms) == 5
