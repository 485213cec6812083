"""The round machine's rules against one malicious party (THREATS.md sections 2 and 3).

Each test drives :mod:`zkadapt.protocol.machine` directly with the channel entries a
malicious party can post and checks what an honest party decides; each would fail if the
rule were missing (a single vote cutting the phase, an early ``RoundDone`` skipping our
share, one wrong digest halting us, ...).
"""

from __future__ import annotations

from typing import Any

from zkadapt.protocol import machine
from zkadapt.protocol.machine import (
    SUBMIT_PHASE,
    ChannelMessage,
    Combine,
    DecryptionShare,
    Done,
    FailRound,
    MachineSpec,
    PartyState,
    PhaseClosed,
    PostShare,
    Reject,
    RoundDone,
    RoundFailed,
    Submitted,
    Verify,
)

S = "session"
PARTIES = ("alice", "bob", "mallory")


def _spec(party: str = "alice", **changes: Any) -> MachineSpec:
    fields: dict[str, Any] = {
        "shares_needed": 2,
        "close_votes": 2,
        "min_accepted": 2,
    } | changes
    return MachineSpec(party, PARTIES, 3, 2, **fields)


def _feed(spec: MachineSpec, state: PartyState, *entries: tuple[str, Any]) -> PartyState:
    for sender, message in entries:
        state = machine.apply(spec, state, ChannelMessage(sender, message))
    return state


def _submitted(party: str, r: int = 1) -> tuple[str, Submitted]:
    return party, Submitted(S, r, party, f"file:///{party}", "ab" * 32, 10, 100)


def _closed(party: str, r: int = 1) -> tuple[str, PhaseClosed]:
    return party, PhaseClosed(S, r, SUBMIT_PHASE, "all submitted")


def _share(party: str, r: int = 1) -> tuple[str, DecryptionShare]:
    return party, DecryptionShare(S, r, party, f"file:///{party}.s", "cd" * 32, 10, "key")


def _done(party: str, digest: str, r: int = 1) -> tuple[str, RoundDone]:
    return party, RoundDone(S, r, party, digest, PARTIES)


def _failed(party: str, r: int = 1) -> tuple[str, RoundFailed]:
    return party, RoundFailed(S, r, "only 1 of 2 valid decryption shares")


def _prepared(spec: MachineSpec) -> PartyState:
    """A party in round 1 that prepared and submitted."""
    state = machine.start(spec)
    state = machine.apply(spec, state, Done(machine.Prepare(1)))
    return machine.apply(spec, state, Done(machine.TrainAndSubmit(1)))


def _summed(spec: MachineSpec, verdicts: tuple[machine.Verdict, ...]) -> PartyState:
    """Round 1 cut with every party's update, verified with ``verdicts``, summed."""
    state = _feed(
        spec,
        _prepared(spec),
        *(_submitted(p) for p in PARTIES),
        _closed("alice"),
        _closed("bob"),
    )
    state = machine.apply(spec, state, Done(Verify(1, PARTIES), verdicts))
    for party, reason in verdicts:
        if reason is not None:
            state = machine.apply(spec, state, Done(Reject(1, party, reason)))
    return state


ALL_VALID: tuple[machine.Verdict, ...] = tuple((p, None) for p in PARTIES)


def test_one_vote_does_not_close_the_submit_phase() -> None:
    spec = _spec()
    state = _feed(spec, _prepared(spec), _submitted("alice"), _submitted("mallory"))
    state = _feed(spec, state, _closed("mallory"), _closed("mallory"))  # twice: one voter
    assert state.view(1).cut is None and state.view(1).closers == ("mallory",)
    state = _feed(spec, state, _submitted("bob"), _closed("alice"))
    assert state.view(1).cut == ("alice", "mallory", "bob")  # bob's update made the cut


def test_a_vote_for_a_future_round_is_a_violation_and_counts_for_nothing() -> None:
    spec = _spec()
    state = _feed(spec, _prepared(spec), _closed("mallory", r=2), _closed("mallory", r=3))
    assert state.view(2).closers == () and state.view(3).closers == ()
    assert state.view(2).violations == (
        ("mallory", "PhaseClosed for round 2 before its own outcome of round 1"),
    )


def test_an_early_round_done_is_ignored_and_does_not_skip_our_share() -> None:
    spec = _spec()
    state = _feed(spec, _prepared(spec), _done("mallory", "evil"))
    assert state.view(1).done == () and state.view(1).violations
    state = _summed(spec, ALL_VALID)
    state = machine.apply(spec, state, Done(machine.Sum(1, PARTIES)))
    state = _feed(spec, state, _share("mallory"), _share("bob"), _done("mallory", "evil"))
    # t shares are posted, but unchecked: check them before skipping our own share
    assert machine.next_action(spec, state) == machine.CheckShare(1, "mallory")
    state = machine.apply(spec, state, Done(machine.CheckShare(1, "mallory"), "bad proof"))
    state = machine.apply(spec, state, Done(Reject(1, "mallory", "bad proof")))
    state = machine.apply(spec, state, Done(machine.CheckShare(1, "bob"), None))
    assert machine.next_action(spec, state) == PostShare(1)


def test_one_failure_vote_does_not_fail_the_decryption() -> None:
    spec = _spec()
    state = _summed(spec, ALL_VALID)
    state = _feed(spec, state, _failed("mallory"))
    assert not state.view(1).failed
    state = _feed(spec, state, _share("bob"), _share("alice"))
    state = machine.apply(spec, state, Done(machine.Sum(1, PARTIES)))
    state = machine.apply(spec, state, Done(machine.CheckShare(1, "bob"), None))
    state = machine.apply(spec, state, Done(machine.CheckShare(1, "alice"), None))
    assert machine.next_action(spec, state) == Combine(1, ("bob", "alice"))


def test_the_second_failure_vote_fails_the_decryption_at_its_place() -> None:
    spec = _spec()
    state = _summed(spec, ALL_VALID)
    state = _feed(spec, state, _failed("mallory"), _share("bob"), _failed("bob"), _share("alice"))
    view = state.view(1)
    assert view.failed and view.failed_at == 1  # only bob's share precedes the second vote


def test_fewer_accepted_than_min_accepted_fails_instead_of_decrypting() -> None:
    spec = _spec(min_accepted=3)
    state = _summed(spec, (("alice", None), ("bob", None), ("mallory", "proof failed")))
    action = machine.next_action(spec, state)
    assert isinstance(action, FailRound) and action.decided and action.post
    assert "privacy.min_accepted is 3" in action.reason


def test_a_plain_round_ignores_min_accepted() -> None:
    spec = _spec(shares_needed=0, min_accepted=3)
    state = _summed(spec, (("alice", None), ("bob", None), ("mallory", "bad")))
    assert machine.next_action(spec, state) == machine.Sum(1, ("alice", "bob"))


def test_an_out_of_range_aggregate_fails_the_round_and_the_session_goes_on() -> None:
    spec = _spec()
    state = _summed(spec, ALL_VALID)
    state = machine.apply(spec, state, Done(machine.Sum(1, PARTIES)))
    state = machine.apply(spec, state, Done(Combine(1, ("alice", "bob")), "aggregate out of range"))
    action = machine.next_action(spec, state)
    assert action == FailRound(1, "aggregate out of range", post=True)
    state = machine.apply(spec, state, Done(action))
    assert state.round == 2 and state.failed_rounds == (1,)


def _finished_round_one(spec: MachineSpec, digest: str = "good") -> PartyState:
    state = _summed(spec, ALL_VALID)
    state = machine.apply(spec, state, Done(machine.Sum(1, PARTIES)))
    state = _feed(spec, state, _share("alice"), _share("bob"))
    for party in ("alice", "bob"):
        state = machine.apply(spec, state, Done(machine.CheckShare(1, party), None))
    state = machine.apply(spec, state, Done(PostShare(1)))
    state = machine.apply(spec, state, Done(Combine(1, ("alice", "bob"))))
    state = machine.apply(spec, state, Done(machine.Apply(1, PARTIES), digest))
    state = machine.apply(spec, state, Done(machine.Announce(1, digest, PARTIES)))
    return _feed(spec, state, _done("alice", digest))


def test_a_wrong_digest_names_its_sender_and_the_session_goes_on() -> None:
    spec = _spec()
    state = _feed(spec, _finished_round_one(spec), _done("mallory", "evil"))
    assert state.halted is None
    action = machine.next_action(spec, state)
    assert isinstance(action, Reject) and (action.round, action.party) == (1, "mallory")
    assert "evil" in action.reason
    state = machine.apply(spec, state, Done(action))
    assert machine.next_action(spec, state) == machine.Prepare(2)  # named once, then on


def test_a_party_stops_only_when_a_quorum_contradicts_it() -> None:
    spec = _spec()
    state = _feed(spec, _finished_round_one(spec), _done("mallory", "other"), _done("bob", "other"))
    assert state.halted is not None and "at least 2: a quorum of others" in state.halted


def test_a_second_submission_is_a_violation() -> None:
    spec = _spec()
    state = _feed(spec, _prepared(spec), _submitted("mallory"), _submitted("mallory"))
    assert state.view(1).submitted == ("mallory",)
    assert state.view(1).violations == (
        ("mallory", "Submitted again for round 1 (only a party's first one counts)"),
    )


def test_a_share_posted_before_the_cut_spoils_the_senders_later_shares() -> None:
    spec = _spec()
    state = _feed(spec, _prepared(spec), _share("mallory"), *(_submitted(p) for p in PARTIES))
    state = _feed(spec, state, _closed("alice"), _closed("bob"), _share("mallory"))
    assert state.view(1).shares == ()  # the driver reads each party's first share only
    assert [why for _, why in state.view(1).violations] == [
        "DecryptionShare for round 1 before its submit phase closed",
        "DecryptionShare again for round 1 (only a party's first one counts)",
    ]


def test_an_honest_round_holds_no_violation_for_an_observer() -> None:
    rules = _spec(party="")
    entries = [
        *(_submitted(p) for p in PARTIES),
        _closed("alice"),
        _closed("bob"),
        _share("alice"),
        _share("bob"),
        *(_done(p, "good") for p in PARTIES),
        _submitted("bob", r=2),
    ]
    observed = machine.observe(rules, entries)
    assert observed.view(1).violations == () and observed.view(2).violations == ()
    assert machine.announced_outcome(observed.view(1)) == ("good", PARTIES)


def test_the_announced_outcome_is_the_majoritys() -> None:
    rules = _spec(party="", shares_needed=0)
    entries = [
        *(_submitted(p) for p in PARTIES),
        _closed("alice"),
        _closed("bob"),
        _done("mallory", "evil"),
        _done("alice", "good"),
        _done("bob", "good"),
    ]
    view = machine.observe(rules, entries).view(1)
    assert machine.announced_outcome(view) == ("good", ("alice", "bob"))
