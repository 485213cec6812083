"""Escrow balance as properties over every history: the seed's escrow spec, checked.

Breadth-first over every channel history of up to ``DEPTH`` messages drawn from ``ALPHABET``
(deposits right, wrong, forged and from an outsider; ``RoundDone`` signals; every kill vote,
each signed with the voter's payment key as the layer-1 escrow needs, and one whose payment
signature is forged; claims, one of them from an outsider), with real signed entries folded
by :class:`EscrowView` under layer-1 terms (the parties' payment key hashes). Histories
that leave the same escrow facts are merged (the settlement and every later fold depend on
nothing else). On every reachable history:

* **Conservation**: a final settlement pays exactly the pool, ``deposit * |depositors|``,
  and only to depositors; while pending it pays nothing.
* **Depositors** are exactly the members whose own first deposit was the agreed amount
  (an oracle over the raw history, not the view).
* **Slashing**: the slashed get 0 and each had validly signed votes from two and a strict
  majority of the other depositors; someone always remains; the others get ``deposit`` plus
  an equal share of each slashed lock (±1 lovelace per slashed lock).
* **Locks**: each depositor's lock pays out exactly its deposit (:func:`lock_payouts`), and
  the locks together pay the settlement's payouts.
* **Claims** come only from remaining depositors, and the first one **fixes** the
  settlement: no later message changes status, depositors, slashed or payouts.

Every distinct final settlement of two or more depositors is then run through the compiled
on-chain validator, lock by lock: a slashed party's lock by a ``Slash``, every other by a
``Release``, both proving each slashed party with the payment-signed kill votes the rules
counted (:func:`slash_voters`, taken from the channel messages themselves), the releases
carrying release votes of the other remaining parties.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable

import pytest

from tests.escrow.helpers import DEPOSIT, SESSION
from tests.escrow.locks import key_hash, payment_keys, vote
from tests.fakes import make_keys
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.escrow.messages import Claim, EscrowDeposit, EscrowMessage, KillVote
from zkadapt.escrow.rules import (
    PENDING,
    EscrowTerms,
    EscrowView,
    Settlement,
    enough_to_slash,
    lock_payouts,
    settle,
    slash_voters,
)

MEMBERS = ("alice", "bob", "carol")
OUTSIDER = "mallory"
KEYS, _ = make_keys([*MEMBERS, OUTSIDER])
TERMS = EscrowTerms(
    SESSION, MEMBERS, DEPOSIT, rounds=1, quorum=2, payment_keys=payment_keys(MEMBERS)
)
DEPTH = 8  # distinct escrow states: 1,822 at 7, 5,850 at 8, 16,400 at 9, 35,712 at 10


def _signed(sender: str, body: EscrowMessage | dict[str, object]) -> SignedEnvelope:
    payload = body.to_bytes() if isinstance(body, EscrowMessage) else json.dumps(body).encode()
    return SignedEnvelope(sender, payload, KEYS[sender].sign(payload))


def _alphabet() -> list[tuple[str, SignedEnvelope]]:
    """(label, envelope) for every message a history may append."""
    items = []
    for p in (*MEMBERS, OUTSIDER):
        items.append((f"{p} deposits", _signed(p, EscrowDeposit(SESSION, 0, p, DEPOSIT))))
    wrong = EscrowDeposit(SESSION, 0, "alice", DEPOSIT - 1)
    items.append(("alice deposits too little", _signed("alice", wrong)))
    forged = EscrowDeposit(SESSION, 0, "alice", DEPOSIT)
    items.append(("bob deposits as alice", _signed("bob", forged)))
    for p in MEMBERS:
        done = {"type": "RoundDone", "v": 1, "session": SESSION, "round": 1, "party": p}
        items.append((f"{p} RoundDone r1", _signed(p, done)))
    for voter in (*MEMBERS, OUTSIDER):
        for target in MEMBERS:
            if voter != target and (voter != OUTSIDER or target == "alice"):
                signed = vote(voter, target, round_=1)
                kill = _kill(voter, target, signed.vkey, signed.signature)
                items.append((f"{voter} votes to kill {target}", _signed(voter, kill)))
    forged = vote("bob", "carol", round_=1, signer=OUTSIDER)
    forged_kill = _kill("bob", "carol", forged.vkey, forged.signature)
    items.append(("bob votes to kill carol, signed by another key", _signed("bob", forged_kill)))
    for p in (*MEMBERS, OUTSIDER):
        items.append((f"{p} claims", _signed(p, Claim(SESSION, 1, p))))
    return items


def _kill(voter: str, target: str, vkey: bytes, signature: bytes) -> KillVote:
    return KillVote(SESSION, 1, voter, target, "silent", vkey.hex(), signature.hex())


ALPHABET = _alphabet()


def _fold(view: EscrowView, envelope: SignedEnvelope, seq: int) -> EscrowView:
    after = EscrowView(
        deposits=dict(view.deposits),
        last_signal=dict(view.last_signal),
        done={r: set(who) for r, who in view.done.items()},
        vote_order=list(view.vote_order),
        claims=list(view.claims),
        fixed=view.fixed,
        kill_evidence=dict(view.kill_evidence),
    )
    after._add(Entry(seq, envelope, 0.0), TERMS)
    return after


def _facts(view: EscrowView) -> Hashable:
    return (
        tuple(sorted(view.deposits.items())),
        tuple(sorted((r, frozenset(who)) for r, who in view.done.items())),
        tuple(view.vote_order),
        tuple(view.claims),
        view.fixed,
    )


def _expected_depositors(history: list[SignedEnvelope]) -> tuple[str, ...]:
    """Oracle from the raw history: members whose own first deposit is the agreed amount."""
    first: dict[str, int] = {}
    for env in history:
        body = json.loads(env.payload)
        if body["type"] == "EscrowDeposit" and body["party"] == env.sender:
            first.setdefault(env.sender, body["amount"])
    return tuple(p for p in MEMBERS if first.get(p) == DEPOSIT)


def _votes_against(history: list[SignedEnvelope], target: str, members: tuple[str, ...]) -> int:
    """Oracle: distinct members who posted a kill vote signed with their own payment key."""
    voters = set()
    for env in history:
        body = json.loads(env.payload)
        if body["type"] == "KillVote" and body["target"] == target and env.sender in members:
            own_key = hashlib.blake2b(bytes.fromhex(body["vkey"]), digest_size=28).digest()
            if own_key == key_hash(env.sender):
                voters.add(env.sender)
    return len(voters - {target})


def _before_fixing_claim(history: list[SignedEnvelope], result: Settlement) -> list[SignedEnvelope]:
    """The history up to the first valid claim (the one that fixed the settlement)."""
    for i, env in enumerate(history):
        claim = json.loads(env.payload)["type"] == "Claim"
        if claim and result.claims and env.sender == result.claims[0]:
            return history[:i]
    return history


def _check(history: list[SignedEnvelope], result: Settlement) -> None:
    members = _expected_depositors(_before_fixing_claim(history, result))
    assert result.depositors == members
    if result.status == PENDING:
        assert result.payouts == {} and result.claims == () and result.slashed == ()
        return
    assert set(result.payouts) == set(members)
    assert sum(result.payouts.values()) == DEPOSIT * len(members)  # conservation
    remaining = [p for p in members if p not in result.slashed]
    assert remaining or not members, "everyone slashed: the pool has nobody to go to"
    for target in result.slashed:
        assert result.payouts[target] == 0
        assert enough_to_slash(_votes_against(history, target, members), len(members))
    paid = [result.payouts[p] for p in remaining] or [DEPOSIT]
    assert min(paid) >= DEPOSIT and max(paid) - min(paid) <= len(result.slashed)
    assert set(result.claims) <= set(remaining)
    locks = [lock_payouts(members, result.slashed, DEPOSIT, owner) for owner in members]
    assert all(sum(lock.values()) == DEPOSIT for lock in locks)  # every lock paid exactly
    assert {p: sum(lock.get(p, 0) for lock in locks) for p in members} == result.payouts


def _explore(
    depth_limit: int = DEPTH,
) -> tuple[int, dict[Hashable, tuple[EscrowView, Settlement]]]:
    """Every distinct escrow state up to ``depth_limit`` messages; checks each and each step."""
    start = EscrowView()
    frontier: list[tuple[EscrowView, list[SignedEnvelope]]] = [(start, [])]
    seen = {_facts(start)}
    finals: dict[Hashable, tuple[EscrowView, Settlement]] = {}
    for depth in range(1, depth_limit + 1):
        following = []
        for view, history in frontier:
            before = settle(view, TERMS)
            for _, envelope in ALPHABET:
                after = _fold(view, envelope, depth)
                result = settle(after, TERMS)
                extended = [*history, envelope]
                _check(extended, result)
                if before.claims:  # the first claim fixed the settlement
                    assert (result.status, result.depositors, result.slashed, result.payouts) == (
                        before.status,
                        before.depositors,
                        before.slashed,
                        before.payouts,
                    )
                    assert result.claims[: len(before.claims)] == before.claims
                if result.final and len(result.depositors) >= 2:
                    finals.setdefault((result.depositors, result.slashed), (after, result))
                key = _facts(after)
                if key not in seen:
                    seen.add(key)
                    following.append((after, extended))
        frontier = following
    return len(seen), finals


@pytest.fixture(scope="module")
def explored() -> tuple[int, dict[Hashable, tuple[EscrowView, Settlement]]]:
    return _explore()


def test_every_history_conserves_the_pool_and_a_claim_fixes_the_settlement(explored) -> None:
    states, finals = explored
    assert states > 5_000  # the alphabet reaches far; a broken fold would stall early
    shapes = {(len(d), len(s)) for d, s in finals}
    # completions and slashes of one and of two parties (sequential votes) are all reached;
    # with two depositors nobody is slashed (a slash needs two voters)
    assert {(3, 0), (3, 1), (3, 2), (2, 0)} <= shapes
    assert all(slashed == 0 for members, slashed in shapes if members == 2)


def test_kill_votes_all_round_slash_two_and_leave_the_third_to_pay() -> None:
    labels = dict(ALPHABET)
    votes = ["alice bob", "bob carol", "carol alice", "alice carol", "bob alice", "carol bob"]
    history = [labels[f"{p} deposits"] for p in MEMBERS]
    history += [labels[" votes to kill ".join(v.split())] for v in votes]
    view = EscrowView()
    for seq, env in enumerate(history, 1):
        view = _fold(view, env, seq)
    result = settle(view, TERMS)
    # carol falls to alice + bob, then alice to carol (counted before carol fell) + bob;
    # carol's vote against bob comes after her fall and does not count
    assert result.slashed == ("alice", "carol")
    assert result.payouts == {"alice": 0, "bob": 3 * DEPOSIT, "carol": 0}
    assert slash_voters(view, TERMS) == {"alice": ("bob", "carol"), "carol": ("alice", "bob")}


def test_every_final_settlement_is_what_the_validator_accepts(explored) -> None:
    """Lock by lock, with the evidence the channel itself holds (the payment-signed kill
    votes the rules counted) and the release votes honest remaining parties then sign."""
    pytest.importorskip("uplc")
    from tests.escrow.locks import BEFORE, make_lock, release_vote, run
    from zkadapt.escrow.onchain import redeemer_for, settlement_payouts, settlement_tx

    _, finals = explored
    locks = 0
    for (members, lost), (view, result) in sorted(finals.items()):
        counted = slash_voters(view, TERMS)
        kills = [view.kill_evidence[(v, t)] for t in lost for v in counted[t]]
        remaining = [p for p in members if p not in lost]
        releases = [release_vote(v, t) for t in remaining for v in remaining if v != t]
        for owner in members:
            lock = make_lock(owner, members, rounds=TERMS.rounds)
            redeemer = redeemer_for(result, owner, kills, releases)
            paid = settlement_payouts(result, owner)
            outcome = run(lock, settlement_tx(lock, redeemer, paid, validity=BEFORE))
            assert outcome.accepted, (members, lost, owner, paid, outcome)
            locks += 1
    assert locks == 27  # 10 shapes: 3 completions of 2, 1 of 3, 3 + 3 slashes of one or two


@pytest.mark.slow
def test_histories_of_ten_messages_keep_every_property() -> None:
    states, finals = _explore(10)
    assert states > 30_000 and len(finals) >= 10
