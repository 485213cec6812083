"""The validator's paths as properties (hypothesis), each case evaluated with uplc.

* **Slash**: for any two to five parties, any odd or even deposit and any set of slashed
  parties leaving someone, each with signed kill votes from a random strict majority (and
  at least two) of the others, every slashed lock paying exactly :func:`rules.lock_payouts`
  is accepted, the locks together pay :func:`rules.payouts`, and one lovelace less to a
  remaining party is rejected. A minority of votes is rejected. Leaving a slashed party out
  of the proofs (so that it would share in the split) is rejected.
* **Release**: every remaining party's lock, proving the same slashed set and carrying
  release votes from a random strict majority of the other remaining parties, is accepted;
  one vote fewer than a majority is rejected.
* **Refund**: returning the deposit is accepted exactly when the validity range starts at or
  after the deadline; a slash exactly when it ends before it.

Each example costs a few script evaluations (a quarter of a second each), so the example
counts are small and derandomized.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("uplc")

from tests.escrow.locks import (
    DEADLINE,
    PARTIES,
    assert_rejected,
    make_lock,
    release_vote,
    run,
    vote,
)
from zkadapt.escrow.onchain import REFUND, redeemer_for, release, settlement_tx, slash
from zkadapt.escrow.rules import SLASHED, Settlement, lock_payouts, payouts, refunds
from zkadapt.escrow.script_context import validity_range

EXAMPLES = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
BEFORE = validity_range(DEADLINE - 1_000, DEADLINE)
MAJORITY = "a slash needs signed votes from two and a strict majority of the others"


def _need(others: int) -> int:
    """Votes that slash among ``others`` other parties: two, and a strict majority."""
    return max(2, others // 2 + 1)


@st.composite
def slashes(draw, *, majority: bool = True):
    """(names, deposit, slashed, kill votes, release votes): kill votes from a majority (or a
    minority) of the others; release votes from a majority of the other remaining parties."""
    n = draw(st.integers(3, 5))
    names = PARTIES[:n]
    deposit = draw(st.integers(1, 10**9))
    lost = tuple(sorted(draw(st.sets(st.sampled_from(names), min_size=1, max_size=n - 1))))
    kills = []
    for target in lost:
        others = [p for p in names if p != target]
        need = _need(n - 1)
        size = st.integers(need, n - 1) if majority else st.integers(0, need - 1)
        chosen = draw(st.permutations(others))[: draw(size)]
        kills += [vote(v, target, round_=draw(st.integers(1, 3))) for v in chosen]
    remaining = [p for p in names if p not in lost]
    releases = []
    for owner in remaining:
        others = [p for p in remaining if p != owner]
        size = draw(st.integers(len(others) // 2 + 1 if others else 0, len(others)))
        releases += [release_vote(v, owner) for v in draw(st.permutations(others))[:size]]
    return names, deposit, lost, kills, releases


def _settlement(names, lost, deposit):
    return Settlement(SLASHED, tuple(names), lost, {}, (), deposit)


@EXAMPLES
@given(slashes())
def test_every_lock_pays_exactly_what_the_rules_compute(case) -> None:
    names, deposit, lost, kills, releases = case
    settlement = _settlement(names, lost, deposit)
    total = dict.fromkeys(names, 0)
    for owner in names:
        lock = make_lock(owner, names, deposit=deposit)
        paid = lock_payouts(names, lost, deposit, owner)
        for p, amount in paid.items():
            total[p] += amount
        redeemer = redeemer_for(settlement, owner, kills, releases)
        outcome = run(lock, settlement_tx(lock, redeemer, paid, validity=BEFORE))
        assert outcome.accepted, (names, deposit, lost, owner, outcome)
    assert total == payouts(names, lost, deposit)
    assert sum(total.values()) == deposit * len(names)
    victim = lost[0]
    lock = make_lock(victim, names, deposit=deposit)
    paid = lock_payouts(names, lost, deposit, victim)
    short = next((p for p in paid if paid[p] > 0), None)
    if short is not None:  # one underpaid remaining party per example keeps the run short
        tx = settlement_tx(
            lock,
            redeemer_for(settlement, victim, kills, releases),
            {**paid, short: paid[short] - 1},
            validity=BEFORE,
        )
        assert_rejected(lock, tx, "every remaining party must get its share")


@EXAMPLES
@given(slashes().filter(lambda case: len(case[2]) >= 2), st.data())
def test_a_slashed_party_left_out_of_the_proofs_is_never_paid(case, data) -> None:
    """Whoever settles a slashed lock and leaves another slashed party out of the proofs
    (so that it counts as remaining and takes a share) is rejected: that party has no
    release votes from the honest (they release only the rules' remaining), and every
    recipient must be released by a strict majority of the other remaining parties."""
    names, deposit, lost, kills, releases = case
    index = {p: i for i, p in enumerate(names)}
    owner = data.draw(st.sampled_from(lost))
    omitted = data.draw(st.sampled_from([p for p in lost if p != owner]))
    shown = tuple(p for p in lost if p != omitted)
    full = redeemer_for(_settlement(names, lost, deposit), owner, kills, releases)
    proofs = [e for e in full.value[0] if names[e.value[0]] != omitted]
    remaining = [p for p in names if p not in shown]
    recipients = []
    for r in remaining:  # the honest votes there are; none for the omitted party
        votes = sorted((index[v.voter], *_vk(v)) for v in releases if v.target == r)
        recipients.append([(v, vk, sig) for v, vk, sig in votes if names[v] not in shown])
    redeemer = slash([(e.value[0], _kill_entries(e)) for e in proofs], recipients)
    lock = make_lock(owner, names, deposit=deposit)
    paid = lock_payouts(names, shown, deposit, owner)
    assert paid[omitted] > 0 or deposit < len(remaining)
    tx = settlement_tx(lock, redeemer, paid, validity=BEFORE)
    reason = "every recipient of a slash must be released by a strict majority of the others"
    assert_rejected(lock, tx, reason)


def _kill_entries(evidence):
    return [tuple(v.value) for v in evidence.value[1]]


@EXAMPLES
@given(slashes(majority=False))
def test_a_minority_of_signed_votes_slashes_nobody(case) -> None:
    names, deposit, lost, kills, _ = case
    index = {p: i for i, p in enumerate(names)}
    proofs = [
        (
            index[t],
            sorted((index[v.voter], v.round, v.vkey, v.signature) for v in kills if v.target == t),
        )
        for t in lost
    ]
    lock = make_lock(lost[0], names, deposit=deposit)
    paid = lock_payouts(names, lost, deposit, lost[0])
    tx = settlement_tx(lock, slash(proofs), paid, validity=BEFORE)
    assert_rejected(lock, tx, MAJORITY)


@EXAMPLES
@given(n=st.integers(3, 5), deposit=st.integers(1, 10**9), data=st.data())
def test_a_release_needs_a_strict_majority_of_the_others(n, deposit, data) -> None:
    names = PARTIES[:n]
    owner = data.draw(st.sampled_from(names))
    others = [p for p in names if p != owner]
    short = data.draw(st.permutations(others))[: (n - 1) // 2]  # one short of a majority
    lock = make_lock(owner, names, deposit=deposit)
    votes = sorted((names.index(v), *_vk(release_vote(v, owner))) for v in short)
    tx = settlement_tx(lock, release((), votes), {owner: deposit})
    reason = "a release needs votes from a strict majority of the other remaining parties"
    assert_rejected(lock, tx, reason)
    extra = next(p for p in others if p not in short)
    votes = sorted([*votes, (names.index(extra), *_vk(release_vote(extra, owner)))])
    assert run(lock, settlement_tx(lock, release((), votes), {owner: deposit})).accepted


def _vk(signed):
    return signed.vkey, signed.signature


@EXAMPLES
@given(
    n=st.integers(2, 5),
    deposit=st.integers(1, 10**9),
    offset=st.integers(-(10**6), 10**6) | st.sampled_from([-1, 0, 1]),
    closed=st.booleans(),
)
def test_a_refund_is_accepted_exactly_from_the_deadline_on(n, deposit, offset, closed) -> None:
    names = PARTIES[:n]
    assert refunds(names, deposit) == payouts(names, (), deposit) == dict.fromkeys(names, deposit)
    owner = names[-1]
    lock = make_lock(owner, names, deposit=deposit)
    valid = validity_range(DEADLINE + offset, lower_closed=closed)
    outcome = run(lock, settlement_tx(lock, REFUND, {owner: deposit}, validity=valid))
    assert outcome.accepted == (offset >= 0), (offset, closed, outcome)


@EXAMPLES
@given(offset=st.integers(-(10**6), 10**6) | st.sampled_from([-1, 0, 1]), closed=st.booleans())
def test_a_slash_is_accepted_exactly_when_it_ends_before_the_deadline(offset, closed) -> None:
    names = ("alice", "bob", "carol")
    lock = make_lock("carol", names)
    kills = [vote("alice", "carol"), vote("bob", "carol")]
    releases = [release_vote("alice", "bob"), release_vote("bob", "alice")]
    settlement = _settlement(names, ("carol",), lock.deposit)
    redeemer = redeemer_for(settlement, "carol", kills, releases)
    valid = validity_range(DEADLINE - 10**7, DEADLINE + offset, upper_closed=closed)
    paid = lock_payouts(names, ("carol",), lock.deposit, "carol")
    outcome = run(lock, settlement_tx(lock, redeemer, paid, validity=valid))
    assert outcome.accepted == (offset < 0 or (offset == 0 and not closed)), outcome
