"""Exhaustive exploration of the round machine (issue 9; specs/RoundProtocol.tla).

The default run checks small models in seconds; ``-m slow`` checks the issue's model:
n=3, t=2, q=2, 2 rounds, with a crash and restart, with fair deadlines (safety and Progress)
and with submission deadlines that may pass at any time (safety, up to symmetry: ~10
minutes), plus one round with every deadline unfair and a crash, and three parties deciding
on lagging views. Symmetry reduction is checked against the full search on every model it
is used for or a smaller one of the same kind. Since issue 16 the machines close a submit
phase (and fail a decryption) at close_votes = t = 2 votes by default, and a malicious party
that posts any message for any round is checked too (MALICIOUS_MODELS; bigger ones under
``-m slow``), with the broken variants that show its attacks are caught. Bigger runs:
specs/README.md.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable

import pytest

from zkadapt.protocol import machine, model_check
from zkadapt.protocol.model_check import (
    Model,
    Renaming,
    World,
    _digest,
    _renamed_digest,
    explore,
    fingerprint,
    format_trace,
    initial,
    main,
    successors,
    threshold_safety,
)


def _explored(model: Model) -> int:
    result = explore(model)
    assert result.violation is None, format_trace(result, model)
    print(f"{model}: {result.states} distinct states, {result.transitions} transitions")
    return result.states


def test_two_rounds_fair_deadlines_hold_every_invariant() -> None:
    """9,699 states with close_votes = t = 2 (4,341 with one vote)."""
    assert _explored(Model(rounds=2, crashes=0, fair_deadlines=True)) > 5_000


def test_one_round_with_premature_deadlines_is_safe() -> None:
    """3,282 states with close_votes = t = 2: a deadline that passes early makes a party
    vote, and the cut waits for a second vote."""
    assert _explored(Model(rounds=1, crashes=0, fair_deadlines=False)) > 3_000


def test_one_round_with_a_crash_keeps_progress() -> None:
    assert _explored(Model(rounds=1, crashes=1, fair_deadlines=True)) > 1_000


def test_share_deadlines_that_pass_at_any_time_are_safe() -> None:
    """8,892 states with close_votes = t = 2 (9,720 with one vote: a single early
    ``RoundFailed`` then failed the decryption)."""
    model = Model(rounds=1, crashes=0, fair_deadlines=False, unfair_shares=True)
    assert _explored(model) > 8_000


def test_decisions_on_lagging_views_hold_every_invariant() -> None:
    """Each party acts on whatever prefix of the channel it has read (two parties here)."""
    two = ("alice", "bob")
    assert _explored(Model(two, rounds=2, crashes=0, fair_deadlines=True, lagging=True)) > 20_000
    unfair = Model(two, rounds=1, crashes=0, unfair_shares=True, lagging=True)
    assert _explored(unfair) > 5_000


def test_decrypting_with_t_minus_1_shares_is_caught_on_lagging_views_too() -> None:
    broken = Model(rounds=1, crashes=0, fair_deadlines=True, share_slack=1, lagging=True)
    result = explore(broken)
    assert result.violation is not None and result.violation.startswith("ThresholdSafety")
    assert any(label.startswith("Deliver(") for label, _ in result.trace)


def _reachable(model: Model) -> list[World]:
    """Every state of ``model`` (a plain search; for small models)."""
    first = initial(model)
    seen = {fingerprint(model, first): first}
    queue = deque([first])
    while queue:
        for _, after in successors(model, queue.popleft()):
            if (key := fingerprint(model, after)) not in seen:
                seen[key] = after
                queue.append(after)
    return list(seen.values())


def test_with_as_many_parties_as_the_quorum_a_crash_fails_a_round_and_the_session_goes_on() -> None:
    """n = q = 2, one vote closes the submit phase, and one crash: a cut can pass the
    crashed party by, so round 1 fails.

    The round fails cleanly from the channel (RoundFailed, G(1) = G0) and both parties go on:
    Progress (every round ends Done or Failed) holds, and round 2 is done from G0 by both.
    Before failed rounds were outcomes (issue 17) this was a Progress violation: the failed
    round ended the session. (With close_votes = 2 = n the cut waits for the restarted
    party's vote, and this round does not fail.)
    """
    model = Model(("alice", "bob"), rounds=2, crashes=1, fair_deadlines=True, close_votes=1)
    result = explore(model)
    assert result.violation is None, format_trace(result, model)
    went_on = [
        world
        for world in _reachable(model)
        if {(p, 1) for p in model.parties} <= world.failed
        and {(p, 2) for p, r, _, _ in world.applied if r == 2} == {(p, 2) for p in model.parties}
    ]
    assert went_on
    assert {d for _, r, d, _ in went_on[0].applied if r == 2} == {"G0|2:alice+bob"}


def test_rejected_updates_and_bad_shares_are_handled() -> None:
    model = Model(
        rounds=1,
        crashes=0,
        fair_deadlines=True,
        bad_updates=frozenset({("carol", 1)}),
        bad_shares=frozenset({"bob"}),
    )
    assert _explored(model) > 100


def test_decrypting_with_t_minus_1_shares_is_caught_with_a_shortest_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = Model(rounds=1, crashes=0, fair_deadlines=True, share_slack=1)
    result = explore(broken)
    assert result.violation is not None and result.violation.startswith("ThresholdSafety")
    trace = format_trace(result, broken)
    print(trace)
    # three parties train and submit, two vote to close, one posts a share and decrypts alone
    assert len(result.trace) == 9
    assert "Combine r1 shares of" in trace.splitlines()[-1]
    assert main(["--rounds", "1", "--crashes", "0", "--share-slack", "1"]) == 1
    assert "counterexample (9 steps)" in capsys.readouterr().out


def test_skipping_the_quorum_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine that never fails a round applies one with a single accepted update."""
    original = machine.next_action

    def no_quorum(spec: machine.MachineSpec, state: machine.PartyState) -> machine.Action:
        return original(dataclasses.replace(spec, quorum=0), state)

    monkeypatch.setattr(machine, "next_action", no_quorum)
    result = explore(Model(rounds=1, crashes=0, fair_deadlines=False, threshold=1, quorum=2))
    assert result.violation is not None
    assert result.violation.startswith(("QuorumSafety", "ThresholdSafety")), result.violation


def test_a_crash_between_checkpoint_and_round_done_is_announced_again() -> None:
    """The restarted party posts the RoundDone its crash cut off (found by this model)."""
    spec = Model().spec("alice")
    state = machine.start(spec, (1, "d1"))
    assert machine.next_action(spec, state) == machine.Announce(1, "d1", ())
    replayed = state
    for sender, message in (
        ("alice", machine.Submitted("s", 1, "alice", "u", "h", 1, 1)),
        ("bob", machine.Submitted("s", 1, "bob", "u", "h", 1, 1)),
        ("alice", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "all submitted")),
        ("bob", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "all submitted")),
        ("alice", machine.DecryptionShare("s", 1, "alice", "u", "h", 1, "k")),
        ("bob", machine.DecryptionShare("s", 1, "bob", "u", "h", 1, "k")),
        ("alice", machine.RoundDone("s", 1, "alice", "d1", ("alice", "bob"))),
    ):
        replayed = machine.apply(spec, replayed, machine.ChannelMessage(sender, message))
    assert replayed.pending_announce is None  # it did reach the channel: nothing to redo
    assert machine.next_action(spec, replayed) == machine.Prepare(2)


def test_machine_posts_a_digest_fault_of_the_round_it_just_applied_once() -> None:
    """A ``RoundDone`` with a wrong digest is on the channel when we apply the round: our
    ``Reject`` of its sender is posted once, even before we read it back (found by the
    malicious model on lagging views, where the party posted it again at every step)."""
    spec = Model(malicious="carol").spec("alice")
    state = machine.start(spec)
    for sender, message in (
        ("alice", machine.Submitted("s", 1, "alice", "u", "h", 1, 1)),
        ("bob", machine.Submitted("s", 1, "bob", "u", "h", 1, 1)),
        ("alice", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "deadline")),
        ("bob", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "deadline")),
        ("alice", machine.DecryptionShare("s", 1, "alice", "u", "h", 1, "k")),
        ("bob", machine.DecryptionShare("s", 1, "bob", "u", "h", 1, "k")),
        ("carol", machine.RoundDone("s", 1, "carol", "evil", ())),
    ):
        state = machine.apply(spec, state, machine.ChannelMessage(sender, message))
    for action, result in (
        (machine.Prepare(1), None),
        (machine.Verify(1, ("alice", "bob")), (("alice", None), ("bob", None))),
        (machine.Sum(1, ("alice", "bob")), None),
        (machine.CheckShare(1, "alice"), None),
        (machine.CheckShare(1, "bob"), None),
        (machine.Combine(1, ("alice", "bob")), None),
        (machine.Apply(1, ("alice", "bob")), "d1"),
    ):
        assert machine.next_action(spec, state) == action
        state = machine.apply(spec, state, machine.Done(action, result))
    reject = machine.next_action(spec, state)
    assert reject == machine.Reject(1, "carol", "announced G(1) digest evil, the channel gives d1")
    state = machine.apply(spec, state, machine.Done(reject))  # not read back yet
    assert machine.next_action(spec, state) == machine.Announce(1, "d1", ("alice", "bob"))


def test_machine_with_a_quorum_of_one_halts_only_when_two_others_contradict_it() -> None:
    """Updates in the clear, q = 1: one party's wrong ``RoundDone`` names it faulty and the
    session goes on; a second party's makes us the odd one out (found by the malicious
    model with q = 1: carol's ``RoundDone(1, "evil")`` alone stopped alice and bob)."""
    spec = machine.MachineSpec("alice", ("alice", "bob", "carol"), 2, 1, close_votes=2)
    state = machine.start(spec)
    for sender, message in (
        ("alice", machine.Submitted("s", 1, "alice", "u", "h", 1, 1)),
        ("bob", machine.Submitted("s", 1, "bob", "u", "h", 1, 1)),
        ("alice", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "deadline")),
        ("bob", machine.PhaseClosed("s", 1, machine.SUBMIT_PHASE, "deadline")),
    ):
        state = machine.apply(spec, state, machine.ChannelMessage(sender, message))
    for action, result in (
        (machine.Prepare(1), None),
        (machine.Verify(1, ("alice", "bob")), (("alice", None), ("bob", None))),
        (machine.Sum(1, ("alice", "bob")), None),
        (machine.Combine(1, ()), None),
        (machine.Apply(1, ("alice", "bob")), "d1"),
    ):
        assert machine.next_action(spec, state) == action
        state = machine.apply(spec, state, machine.Done(action, result))
    carol = machine.RoundDone("s", 1, "carol", "evil", ())
    state = machine.apply(spec, state, machine.ChannelMessage("carol", carol))
    assert state.halted is None
    assert machine.next_action(spec, state) == machine.Reject(
        1, "carol", "announced G(1) digest evil, the channel gives d1"
    )
    bob = machine.RoundDone("s", 1, "bob", "evil", ())
    state = machine.apply(spec, state, machine.ChannelMessage("bob", bob))
    assert state.halted is not None and "disagrees with bob, carol (at least 2" in state.halted


def _full_search(model: Model) -> tuple[int, set[int]]:
    """Search ``model`` without symmetry: the states, and the orbits (symmetric fingerprints)."""
    symmetric = dataclasses.replace(model, symmetry=True)
    first = initial(model)
    seen = {fingerprint(model, first): first}
    queue = deque([first])
    while queue:
        for _, after in successors(model, queue.popleft()):
            if (key := fingerprint(model, after)) not in seen:
                seen[key] = after
                queue.append(after)
    return len(seen), {fingerprint(symmetric, world) for world in seen.values()}


SYMMETRY_CHECKS = {
    "2-rounds-fair": Model(rounds=2, crashes=0, fair_deadlines=True),
    "1-round-crash-fair": Model(rounds=1, crashes=1, fair_deadlines=True),
    "1-round-all-unfair": Model(rounds=1, crashes=0, unfair_shares=True),
    "2-parties-lagging-crash-unfair": Model(
        ("alice", "bob"), rounds=1, crashes=1, fair_deadlines=False, lagging=True
    ),
}


@pytest.mark.parametrize("model", SYMMETRY_CHECKS.values(), ids=SYMMETRY_CHECKS.keys())
def test_symmetry_reaches_exactly_the_orbits_of_the_full_search(model: Model) -> None:
    """The reduced search visits one state per orbit of the full one: no more, no fewer.

    Fewer would mean two states that are not renamings of each other were merged (unsound);
    more, that the canonical key depends on more than the orbit (a weaker reduction).
    """
    reduced = explore(dataclasses.replace(model, symmetry=True), keep_visited=True)
    assert reduced.violation is None
    full, orbits = _full_search(model)
    assert reduced.visited == orbits
    print(f"{full} states, {len(orbits)} orbits")
    assert full >= len(orbits) * (1.9 if len(model.parties) == 2 else 4)


def test_symmetry_still_catches_the_broken_variant_with_a_real_trace() -> None:
    broken = Model(rounds=1, crashes=0, fair_deadlines=True, share_slack=1, symmetry=True)
    result = explore(broken)
    assert result.violation is not None and result.violation.startswith("ThresholdSafety")
    assert len(result.trace) == 9  # as short as without symmetry
    last = result.trace[-1][1]
    assert threshold_safety(broken, last) == result.violation  # the replayed run violates it
    assert result.collision_probability < 1e-15


def test_symmetry_refuses_a_model_that_names_parties() -> None:
    with pytest.raises(ValueError, match="names no party"):
        Model(bad_shares=frozenset({"bob"}), symmetry=True)


def test_a_renaming_maps_digests_to_the_renamed_run() -> None:
    digest = _digest(_digest("G0", 1, ("alice", "bob")), 2, ("bob", "carol"))
    assert digest == "G0|1:alice+bob|2:bob+carol"
    renaming = Renaming(("alice", "bob", "carol"), (1, 2, 0))
    assert [renaming(p) for p in ("alice", "bob", "carol")] == ["carol", "alice", "bob"]
    renamed = _renamed_digest(digest, renaming)
    assert renamed == "G0|1:alice+carol|2:alice+bob"  # the accepted sets stay sorted


def test_the_command_line_counts_states_up_to_symmetry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rounds", "1", "--crashes", "0", "--symmetry"]) == 0
    out = capsys.readouterr().out
    assert "194 distinct states up to symmetry" in out, out


SLOW_MODELS = {
    # the .cfg's model: a crash and restart, fair deadlines, safety and Progress (142,728
    # states with two close votes, 73 s; 428,241 before issue 16)
    "2-rounds-crash-fair": Model(rounds=2, crashes=1, fair_deadlines=True),
    # the same with premature submission deadlines (before issue 16: 5,885,904 states;
    # 981,034 orbits; not re-measured)
    "2-rounds-crash-unfair-symmetric": Model(
        rounds=2, crashes=1, fair_deadlines=False, symmetry=True
    ),
    "1-round-crash-all-unfair": Model(
        rounds=1, crashes=1, fair_deadlines=False, unfair_shares=True
    ),
    # three parties deciding on lagging views, Progress (before issue 16: 1,007,300 states;
    # 167,890 orbits; not re-measured)
    "1-round-lagging-symmetric": Model(
        rounds=1, crashes=0, fair_deadlines=True, lagging=True, symmetry=True
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW_MODELS.values(), ids=SLOW_MODELS.keys())
def test_the_issue_model_holds_every_invariant(model: Model) -> None:
    assert _explored(model) > 50_000


SLOW_SYMMETRY_CHECKS = {
    "1-round-crash-unfair": Model(rounds=1, crashes=1, fair_deadlines=False),
    "3-parties-lagging-q3": Model(
        rounds=1, crashes=0, fair_deadlines=True, lagging=True, quorum=3, threshold=3
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW_SYMMETRY_CHECKS.values(), ids=SLOW_SYMMETRY_CHECKS.keys())
def test_symmetry_reaches_exactly_the_orbits_of_bigger_full_searches(model: Model) -> None:
    test_symmetry_reaches_exactly_the_orbits_of_the_full_search(model)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parties", "6"], "argument --parties: invalid choice: 6"),
        (["--t", "4"], "--t 4 is out of range (0..3 with 3 parties)"),
        (["--q", "0"], "--q 0 is out of range (1..3 with 3 parties)"),
        (["--rounds", "0"], "--rounds 0 is out of range (at least 1)"),
        (["--crashes", "-1"], "--crashes -1 is out of range (at least 0)"),
        (["--share-slack", "3"], "--share-slack 3 is out of range (0..2, at most t)"),
        (["--unfair-shares"], "--unfair-shares needs --unfair"),
    ],
)
def test_the_command_line_refuses_a_model_it_cannot_build(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err.strip().splitlines()[-1], err


# -- key epochs (the machine's Join, DealKey, KeygenStep, OpenKey, Wait key, Halt) ---------


def test_dealer_keys_refreshed_every_round_hold_every_invariant() -> None:
    """Two rounds, two key epochs: the dealer deals epoch 1 inside the explored rounds.

    8,993 states with close_votes = t = 2 (3,995 with one vote; 11,255 before a party
    skipped its own decryption share only once it had checked t valid ones).
    """
    model = Model(rounds=2, crashes=0, fair_deadlines=True, keygen="dealer", refresh_every=1)
    assert _explored(model) == 8_993


def test_key_deadlines_that_pass_before_the_dealer_deals_are_safe() -> None:
    """Unfair key deadlines: parties give up before a late dealer deals, or it deals early.

    6,302 states with close_votes = t = 2 (7,582 with one vote; 11,350 before a party
    skipped its own decryption share only once it had checked t valid ones; 8,576 when a
    party stopped at its key deadline): a party without a key follows the round without
    submitting, and the cut decides (issue 17; specs/README.md).
    """
    model = Model(rounds=1, crashes=0, fair_deadlines=False, keygen="dealer")
    assert _explored(model) == 6_302


def _labels(model: Model) -> set[str]:
    """Every step label of ``model`` (a plain search; for small models)."""
    labels: set[str] = set()
    for world in _reachable(model):
        labels.update(label for label, _ in successors(model, world))
    return labels


def test_a_dealer_that_never_deals_fails_the_round_from_the_channel_with_a_named_reason() -> None:
    """The others give up on the key, submit nothing, close at their deadline, and fail the
    round from the empty cut with the reason (84 states with close_votes = t = 2, 108 with
    one vote; 48 when they stopped instead)."""
    model = Model(rounds=1, crashes=0, keygen="dealer", dealer_silent=True)
    result = explore(model, check_progress=False)
    assert result.violation is None and result.states == 84
    failures = [label for label in _labels(model) if "FailRound r1" in label]
    assert failures and all(
        "(no threshold key for epoch 0 from dealer alice)" in label for label in failures
    )


def _run_until(model: Model, world: World, done: Callable[[World], bool]) -> World:
    """Follow the first step that is neither a crash nor a restart until ``done``."""
    while not done(world):
        world = next(
            after
            for label, after in successors(model, world)
            if not label.startswith(("Crash", "Restart"))
        )
    return world


def test_a_dealer_that_crashes_before_dealing_deals_in_a_later_round() -> None:
    """Issue 17's liveness gap, closed: while the dealer is down the others' key deadline
    passes, round 1 fails from the channel (an empty cut), and the restarted dealer deals in
    round 2, which every party finishes from G0. Every run of one round keeps Progress
    (14,837 states with close_votes = t = 2; 10,859 with one vote; 17,389 before a party
    skipped its own decryption share only once it had checked t valid ones)."""
    assert explore(Model(rounds=1, crashes=1, fair_deadlines=True, keygen="dealer")).states == (
        14_837
    )
    model = Model(rounds=2, crashes=1, fair_deadlines=True, keygen="dealer")
    world = initial(model)
    world = dict(successors(model, world))["Crash(alice)"]
    world = _run_until(model, world, lambda w: {("bob", 1), ("carol", 1)} <= w.failed)
    world = dict(successors(model, world))["Restart(alice)"]
    world = _run_until(
        model,
        world,
        lambda w: (
            not any(True for _ in successors(model, w))
            or all(n.state is not None and n.state.round > 2 for n in w.nodes)
        ),
    )
    assert world.failed == {(p, 1) for p in model.parties}
    assert {(p, d) for p, r, d, _ in world.applied if r == 2} == {
        (p, "G0|2:alice+bob+carol") for p in model.parties
    }
    assert model_check.agreement(model, world) is None


def test_distributed_keys_refreshed_every_round_hold_every_invariant() -> None:
    """No dealer: every party runs the machine's KeygenStep rounds, then opens its own key
    (9,019 states with close_votes = t = 2; 4,129 with one vote; 11,473 before a party
    skipped its own decryption share only once it had checked t valid ones)."""
    model = Model(rounds=2, crashes=0, fair_deadlines=True, keygen="distributed", refresh_every=1)
    assert _explored(model) == 9_019


def test_distributed_key_deadlines_that_pass_at_any_time_are_safe() -> None:
    """14,072 states with close_votes = t = 2 (13,988 with one vote; 18,164 before a party
    skipped its own decryption share only once it had checked t valid ones; 10,876 when a
    party stopped at its key deadline; issue 17)."""
    model = Model(rounds=1, crashes=0, fair_deadlines=False, keygen="distributed")
    assert _explored(model) == 14_072


def test_a_party_that_loses_its_distributed_keygen_secrets_cannot_follow_the_round() -> None:
    """Distributed key generation keeps its secrets in memory. A party down before joining
    no longer stops the others (they fail the round from the channel and go on, issue 17);
    what is left of the limit: a party whose restart cut off a key generation that the
    others then finished cannot follow their round, and stops (posting nothing)."""
    model = Model(rounds=1, crashes=1, fair_deadlines=True, keygen="distributed")
    result = explore(model)
    assert result.violation is not None and result.violation.startswith("Progress:")
    assert "was cut off by a restart" in result.violation
    assert "cannot follow round 1 without it" in result.violation
    assert explore(model, check_progress=False).violation is None


# -- a malicious party (THREATS.md sections 2 and 3; issue 16) ------------------------------


def _malicious(**changes: object) -> Model:
    """n = 3, t = q = close_votes = 2, carol malicious: alice and bob alone can submit,
    close, decrypt and fail a decryption, so Progress may not rely on carol."""
    fields: dict[str, object] = {"malicious": "carol", "crashes": 0, "fair_deadlines": True}
    return Model(**{**fields, **changes})  # type: ignore[arg-type]


MALICIOUS_MODELS = {
    # any message for any round, two that change a view; safety and Progress
    "1-round-fair": (_malicious(rounds=1), 3_992),
    # every deadline may pass at any time (safety)
    "1-round-every-deadline-unfair": (
        _malicious(rounds=1, fair_deadlines=False, unfair_shares=True),
        10_208,
    ),
    # the floor: a round whose accepted set is smaller than 3 fails instead of decrypting
    "1-round-min-accepted-3": (_malicious(rounds=1, malicious_posts=3, min_accepted=3), 5_938),
    # one vote closes a phase: carol decides the cut alone, yet nothing unsafe follows
    "1-round-one-close-vote": (_malicious(rounds=1, close_votes=1), 8_271),
    # in the clear with q = 1: carol's wrong RoundDone alone used to stop alice and bob
    "1-round-clear-quorum-1": (_malicious(rounds=1, threshold=0, quorum=1), 1_260),
}


@pytest.mark.parametrize(
    ("model", "states"), MALICIOUS_MODELS.values(), ids=MALICIOUS_MODELS.keys()
)
def test_a_malicious_party_breaks_no_invariant_of_the_honest_ones(
    model: Model, states: int
) -> None:
    """Agreement, ThresholdSafety, QuorumSafety, MinAcceptedSafety and HonestBlameless hold
    for alice and bob whatever carol posts, and with fair deadlines Progress: carol can
    neither stall them nor make either stop."""
    assert _explored(model) == states


def test_a_malicious_party_is_seen_doing_what_the_model_lets_it_do() -> None:
    """The model is not vacuous: carol's posts reach the honest machines, which record the
    impossible ones, name her for a wrong digest, reject her bad update and share, fail a
    round whose aggregate she took out of range, and still finish rounds with her."""
    model = _malicious(rounds=1, malicious_posts=2)
    worlds = _reachable(model)
    steps = [(label, after) for world in worlds for label, after in successors(model, world)]
    labels = {label for label, _ in steps}
    assert any(
        label.startswith("Malicious(carol") and ("carol", what) in view.violations
        for label, after in steps
        for view in after.observer.views  # type: ignore[union-attr]
        for what in ("DecryptionShare for round 1 before its submit phase closed",)
    )
    assert any(
        "carol" in {party for _, party, _ in n.state.accused}
        for w in worlds
        for n in w.nodes
        if n.state is not None
    )
    assert any("party=carol, reason=invalid update" in label for label in labels)
    assert any("party=carol, reason=decryption share: proof failed" in label for label in labels)
    assert any("FailRound r1 reason=decrypted aggregate out of range" in label for label in labels)
    assert any(
        accepted == ("alice", "bob", "carol") and p != "carol"
        for w in worlds
        for p, _, _, accepted in w.applied
    )


def test_with_honest_parties_able_to_finish_alone_a_malicious_party_fails_no_round() -> None:
    """min_accepted = 2 and carol's updates verify or not (no overflow: without range proofs
    an out-of-range update fails its round, THREATS.md 3): every round ends Done for alice
    and bob whatever carol posts, with Progress demanding Done (``all_done``)."""
    model = _malicious(rounds=1, min_accepted=2, malicious_updates=("good", "bad"), all_done=True)
    assert _explored(model) == 3_600


def test_one_close_vote_lets_a_malicious_party_fail_every_round() -> None:
    """The broken variant of close_votes: with one vote carol closes round 1 before anyone
    submitted, and it fails for alice and bob (3 steps); with t = 2 votes it cannot."""
    model = _malicious(
        rounds=1, close_votes=1, malicious_updates=("good", "bad"), min_accepted=2, all_done=True
    )
    result = explore(model)
    assert result.violation == "Progress: round 1 failed for alice (all rounds must be Done)"
    trace = format_trace(result, model)
    print(trace)
    assert result.trace[0][0] == "Malicious(carol: closed r1)"
    assert len(result.trace) == 3


def test_without_the_min_accepted_floor_a_malicious_cut_exposes_one_honest_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MinAcceptedSafety is not vacuous. With one close vote and machines that ignore
    min_accepted = 3, carol submits and cuts right after alice's submission; alice posts a
    decryption share of the sum of {alice, carol}, which carol's own share decrypts: alice's
    update, for carol (5 steps). With close_votes = t = 2 the early cut needs an honest vote
    (here alice's deadline with bob's update in), and the floor stops that round too; the
    real machines hold the floor in both (MALICIOUS_MODELS)."""
    original = machine.next_action

    def no_floor(spec: machine.MachineSpec, state: machine.PartyState) -> machine.Action:
        return original(dataclasses.replace(spec, min_accepted=0), state)

    monkeypatch.setattr(machine, "next_action", no_floor)
    one_vote = _malicious(rounds=1, min_accepted=3, close_votes=1, malicious_posts=3)
    result = explore(one_vote)
    print(format_trace(result, one_vote))
    assert result.violation == (
        "MinAcceptedSafety: alice posted a decryption share of round 1's sum of "
        "['alice', 'carol'], min_accepted = 3"
    )
    assert [label for label, _ in result.trace] == [
        "Act(alice: TrainAndSubmit r1)",
        "Act(alice: Submitted r1)",
        "Malicious(carol: submitted r1 good)",
        "Malicious(carol: closed r1)",
        "Act(alice: PostShare r1)",
    ]
    two_votes = _malicious(rounds=1, min_accepted=3, malicious_posts=3)
    result = explore(two_votes)
    assert result.violation is not None and result.violation.startswith("MinAcceptedSafety")
    assert "['alice', 'bob']" in result.violation
    assert any(label.startswith("Timeout(alice, cut") for label, _ in result.trace)


def test_honest_blameless_names_an_honest_party_whose_entry_is_impossible() -> None:
    """HonestBlameless is not vacuous: a RoundDone of alice's before the cut is a violation
    by an honest party; the same entry from the malicious party is not."""
    model = _malicious(rounds=1)
    world = initial(model)
    for sender in ("carol", "alice"):
        entry = ("done", sender, 1, ("evil", ()))
        world = dataclasses.replace(world, **model_check._post(model, world, (entry,)))
        blamed = model_check.honest_blameless(model, world)
        if sender == "carol":
            assert blamed is None
    assert blamed == (
        "HonestBlameless: alice's entry is a violation (round 1): "
        "RoundDone for round 1 before its submit phase closed"
    )


def test_the_command_line_runs_a_malicious_party(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rounds", "1", "--crashes", "0", "--malicious", "carol"]) == 0
    out = capsys.readouterr().out
    assert "k=2 malicious=carol (<=2 posts)" in out and "3992 distinct states" in out, out
    argv = ["--rounds", "1", "--crashes", "0", "--malicious", "carol", "--close-votes", "1"]
    argv += ["--malicious-updates", "good,bad", "--all-done"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "counterexample (3 steps): Progress: round 1 failed for alice" in out, out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--close-votes", "4"], "--close-votes 4 is out of range (1..3 with 3 parties)"),
        (["--min-accepted", "-1"], "--min-accepted -1 is out of range (0..3 with 3 parties)"),
        (["--malicious", "dave"], "--malicious dave is not one of alice, bob, carol"),
        (["--malicious", "bob", "--symmetry"], "--symmetry needs a model that names no party"),
        (["--malicious-posts", "-1"], "--malicious-posts -1 is out of range (at least 0)"),
        (["--malicious-updates", "good,evil"], "--malicious-updates good,evil: each one of"),
    ],
)
def test_the_command_line_refuses_a_malicious_model_it_cannot_build(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    test_the_command_line_refuses_a_model_it_cannot_build(argv, message, capsys)


SLOW_MALICIOUS_MODELS = {
    "1-round-3-posts-fair": _malicious(rounds=1, malicious_posts=3),
    "1-round-3-posts-all-done": _malicious(
        rounds=1,
        malicious_posts=3,
        min_accepted=2,
        malicious_updates=("good", "bad"),
        all_done=True,
    ),
    "2-rounds-fair": _malicious(rounds=2, malicious_posts=3),
    "2-rounds-crash-fair": _malicious(rounds=2, crashes=1),
    "1-round-crash-every-deadline-unfair": _malicious(
        rounds=1, crashes=1, fair_deadlines=False, unfair_shares=True
    ),
    "2-rounds-min-accepted-3-every-deadline-unfair": _malicious(
        rounds=2, malicious_posts=3, fair_deadlines=False, unfair_shares=True, min_accepted=3
    ),
    "4-parties-t-3-min-accepted-3": _malicious(
        parties=("alice", "bob", "carol", "dave"),
        threshold=3,
        quorum=3,
        min_accepted=3,
        rounds=1,
        malicious="dave",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW_MALICIOUS_MODELS.values(), ids=SLOW_MALICIOUS_MODELS.keys())
def test_a_malicious_party_breaks_no_invariant_in_bigger_models(model: Model) -> None:
    assert _explored(model) > 10_000  # 12,516 to 241,574 states (specs/README.md)


# -- dynamic joining (issue 20, docs/membership.md) ------------------------------------------


def _joining(**changes: object) -> Model:
    """Two listed parties and dave, in no session file, whose ``RequestJoin`` the search
    puts at every position of every round."""
    fields: dict[str, object] = {
        "parties": ("alice", "bob", "dave"),
        "newcomers": ("dave",),
        "rounds": 2,
        "crashes": 0,
        "fair_deadlines": True,
    }
    return Model(**(fields | changes))  # type: ignore[arg-type]


#: The model of specs/RoundProtocolJoining.cfg (one crash: under ``-m slow``).
JOINING_MODEL = _joining(crashes=1)


def test_a_join_request_at_every_position_of_a_round_holds_every_invariant() -> None:
    """4,016 states: dave's request lands before, between and after every entry of both
    rounds; admitted at round 1's cut he takes part in round 2 (his digest agrees, his
    update is accepted), refused during the last round he stops, and no run breaks an
    invariant or Progress."""
    model = _joining()
    assert _explored(model) > 3_000
    worlds = _reachable(model)
    positions = {
        sum(1 for e in w.channel[:i] if e[2] > 0)
        for w in worlds
        for i, e in enumerate(w.channel)
        if e[0] == "join"
    }
    assert len(positions) >= 8 and 0 in positions, positions
    assert any(
        party == "dave" and r == 2 and "dave" in accepted
        for w in worlds
        for party, r, _, accepted in w.applied
    )
    assert any(  # dave followed round 1 himself: the same digest as the members
        party == "dave" and r == 1 for w in worlds for party, r, _, _ in w.applied
    )
    refused = "join request refused: no round left to join (round 2 of 2 in progress)"
    assert any(w.nodes[2].stopped == refused for w in worlds)


def test_a_join_by_vote_waits_for_the_members_admits() -> None:
    """6,821 states: ``Admit`` steps by alice and bob at any time; dave is a member only
    after both, from the round after the cut that follows the second."""
    model = _joining(admission="vote", admit_votes=2)
    assert _explored(model) > 5_000
    worlds = _reachable(model)
    for w in worlds:
        roster = w.observer.roster  # type: ignore[union-attr]
        for newcomer in roster.admitted:
            admits = [e for e in w.channel if e[0] == "admit" and e[3] == newcomer.name]
            assert {e[1] for e in admits} == {"alice", "bob"}, w.channel
    assert any(w.observer.roster.admitted for w in worlds)  # type: ignore[union-attr]


def test_the_command_line_explores_a_newcomer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--parties", "2", "--newcomers", "1", "--crashes", "0"]) == 0
    out = capsys.readouterr().out
    assert "newcomers=carol (open)" in out and "4016 distinct states" in out, out


SLOW_JOINING_MODELS = {
    "2-rounds-crash-fair": JOINING_MODEL,  # 53,630 states
    "2-rounds-unfair": _joining(fair_deadlines=False),  # 9,744 states
    "3-rounds-fair": _joining(rounds=3),  # 27,017 states
    "3-listed-absent-after-1-round-crash": Model(  # 120,918 states
        rounds=2, crashes=1, fair_deadlines=True, absent_rounds=1
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", SLOW_JOINING_MODELS.values(), ids=SLOW_JOINING_MODELS.keys())
def test_joining_and_absence_break_no_invariant_in_bigger_models(model: Model) -> None:
    assert _explored(model) > 9_000
