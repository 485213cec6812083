"""The validator's paths as properties (hypothesis), each case evaluated with uplc.

* **Slash**: for any pool of two to five parties, any odd or even deposit and any set of
  slashed parties leaving someone, each with signed votes from a random strict majority of
  the others, the single-pool transaction paying exactly :func:`rules.payouts` is accepted,
  the payouts are the pool, and one lovelace less to any remaining party is rejected. A
  minority of votes is rejected.
* **Refund**: paying :func:`rules.refunds` is accepted exactly when the validity range starts
  at or after the deadline; a slash exactly when it ends before it.

Each example costs one or two script evaluations (a quarter of a second each), so the
example counts are small and derandomized.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("uplc")

from tests.escrow.pools import DEADLINE, PARTIES, assert_rejected, make_pool, run, vote
from zkadapt.escrow.onchain import REFUND, redeemer_for, settlement_tx, slash
from zkadapt.escrow.rules import SLASHED, Settlement, payouts, refunds
from zkadapt.escrow.script_context import validity_range

EXAMPLES = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
BEFORE = validity_range(DEADLINE - 1_000, DEADLINE)


@st.composite
def slashes(draw, *, majority: bool = True):
    """(names, deposit, slashed, votes): votes from a majority (or a minority) of the others."""
    n = draw(st.integers(2, 5))
    names = PARTIES[:n]
    deposit = draw(st.integers(1, 10**9))
    lost = draw(st.sets(st.sampled_from(names), min_size=1, max_size=n - 1))
    votes = []
    for target in sorted(lost):
        others = [p for p in names if p != target]
        need = (n - 1) // 2 + 1  # a strict majority of the n - 1 others
        size = st.integers(need, n - 1) if majority else st.integers(0, need - 1)
        chosen = draw(st.permutations(others))[: draw(size)]
        votes += [vote(v, target, round_=draw(st.integers(1, 3))) for v in chosen]
    return names, deposit, tuple(sorted(lost)), votes


def _settlement(names, lost):
    return Settlement(SLASHED, tuple(names), lost, {}, ())


@EXAMPLES
@given(slashes())
def test_one_pool_pays_exactly_what_the_rules_compute(case) -> None:
    names, deposit, lost, votes = case
    pool = make_pool(names, deposit=deposit)
    paid = payouts(names, lost, deposit)
    assert sum(paid.values()) == deposit * len(names)
    redeemer = redeemer_for(_settlement(names, lost), votes)
    outcome = run(pool, settlement_tx(pool, redeemer, paid, validity=BEFORE))
    assert outcome.accepted, (names, deposit, lost, outcome)
    for short in (p for p in names if p not in lost):
        less = {**paid, short: paid[short] - 1}
        tx = settlement_tx(pool, redeemer, less, validity=BEFORE)
        assert_rejected(pool, tx, "every remaining party must get its share")
        break  # one underpaid party per example keeps the run short


@EXAMPLES
@given(slashes(majority=False))
def test_a_minority_of_signed_votes_slashes_nobody(case) -> None:
    names, deposit, lost, votes = case
    pool = make_pool(names, deposit=deposit)
    index = {p: i for i, p in enumerate(names)}
    evidence = [
        (
            index[t],
            sorted((index[v.voter], v.round, v.vkey, v.signature) for v in votes if v.target == t),
        )
        for t in lost
    ]
    paid = payouts(names, lost, deposit)
    tx = settlement_tx(pool, slash(evidence), paid, validity=BEFORE)
    assert_rejected(pool, tx, "a slash needs signed votes from a strict majority of the others")


@EXAMPLES
@given(
    n=st.integers(2, 5),
    deposit=st.integers(1, 10**9),
    offset=st.integers(-(10**6), 10**6) | st.sampled_from([-1, 0, 1]),
    closed=st.booleans(),
)
def test_a_refund_is_accepted_exactly_from_the_deadline_on(n, deposit, offset, closed) -> None:
    names = PARTIES[:n]
    pool = make_pool(names, deposit=deposit)
    paid = refunds(names, deposit)
    assert paid == payouts(names, (), deposit) == {p: deposit for p in names}
    valid = validity_range(DEADLINE + offset, lower_closed=closed)
    outcome = run(pool, settlement_tx(pool, REFUND, paid, validity=valid))
    assert outcome.accepted == (offset >= 0), (offset, closed, outcome)


@EXAMPLES
@given(offset=st.integers(-(10**6), 10**6) | st.sampled_from([-1, 0, 1]), closed=st.booleans())
def test_a_slash_is_accepted_exactly_when_it_ends_before_the_deadline(offset, closed) -> None:
    names = ("alice", "bob", "carol")
    pool = make_pool(names)
    votes = [vote("alice", "carol"), vote("bob", "carol")]
    redeemer = redeemer_for(_settlement(names, ("carol",)), votes)
    valid = validity_range(DEADLINE - 10**7, DEADLINE + offset, upper_closed=closed)
    paid = payouts(names, ("carol",), pool.deposit)
    outcome = run(pool, settlement_tx(pool, redeemer, paid, validity=valid))
    assert outcome.accepted == (offset < 0 or (offset == 0 and not closed)), outcome
