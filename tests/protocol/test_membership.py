"""Dynamic membership in the round machine (docs/membership.md, issue 20).

Each test folds hand-built channel entries into :mod:`zkadapt.protocol.machine` and checks
what the machine derives: who is a member of which round, which requests are refused and
why, who is marked absent, what a newcomer does. Each would fail if the rule did nothing
(a request admitted at once, a refused one admitted, an absent member still counted, ...).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.fakes import make_keys
from zkadapt.channel.base import Entry as Entry_
from zkadapt.channel.base import SignedEnvelope
from zkadapt.protocol import machine, membership
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.key_rules import KeyPlan
from zkadapt.protocol.machine import (
    SUBMIT_PHASE,
    Advance,
    ChannelMessage,
    DealKey,
    Done,
    FailRound,
    Halt,
    MachineSpec,
    PartyState,
    PhaseClosed,
    RequestJoin,
    RoundDone,
    Submitted,
    TrainAndSubmit,
    Wait,
)
from zkadapt.protocol.membership import Candidacy, MembershipRules
from zkadapt.protocol.messages import Admit, JoinRequest

S = "5e" * 32
LISTED = ("alice", "bob", "carol")
DAVE_KEY = "da" * 32
ERIN_KEY = "e1" * 32
ALICE_KEY = "a1" * 32
OPEN = MembershipRules(admission="open", absent_rounds=None, listed_keys=frozenset({ALICE_KEY}))
VOTE = replace(OPEN, admission="vote", votes=2)

Entry = tuple[str, Any] | tuple[str, Any, bool]


def _spec(party: str = "", rules: MembershipRules | None = OPEN, **changes: Any) -> MachineSpec:
    fields: dict[str, Any] = {"close_votes": 2, "membership": rules} | changes
    return MachineSpec(party, LISTED, 4, 2, **fields)


def _feed(spec: MachineSpec, state: PartyState, *entries: Entry) -> PartyState:
    for entry in entries:
        sender, message, *authentic = entry
        event = ChannelMessage(sender, message, authentic[0] if authentic else True)
        state = machine.apply(spec, state, event)
    return state


def _observe(*entries: Entry, rules: MembershipRules | None = OPEN) -> PartyState:
    spec = _spec(rules=rules)
    return _feed(spec, machine.start(spec), *entries)


def join(name: str = "dave", key: str = DAVE_KEY, **fields: Any) -> tuple[str, JoinRequest]:
    return name, JoinRequest(S, fields.pop("round", 1), name, key, fields.pop("n", 50), **fields)


def admit(voter: str, candidate: str = "dave") -> tuple[str, Admit]:
    return voter, Admit(S, 1, voter, candidate)


def sub(party: str, r: int = 1) -> tuple[str, Submitted]:
    return party, Submitted(S, r, party, f"file:///{party}/{r}", "ab" * 32, 10, 100)


def closed(party: str, r: int = 1) -> tuple[str, PhaseClosed]:
    return party, PhaseClosed(S, r, SUBMIT_PHASE, "all submitted")


def done(party: str, r: int = 1, digest: str = "0d" * 32) -> tuple[str, RoundDone]:
    return party, RoundDone(S, r, party, digest, LISTED)


def round_entries(r: int, parties: tuple[str, ...] = LISTED) -> list[Entry]:
    """A whole round by ``parties``: everyone submits, two votes cut it, all announce."""
    return [
        *(sub(p, r) for p in parties),
        closed(parties[0], r),
        closed(parties[1], r),
        *(done(p, r) for p in parties),
    ]


def cut(r: int, parties: tuple[str, ...] = LISTED) -> list[Entry]:
    return [*(sub(p, r) for p in parties), closed(parties[0], r), closed(parties[1], r)]


def finish(r: int, parties: tuple[str, ...] = LISTED) -> list[Entry]:
    return [done(p, r) for p in parties]


# -- the boundary: admission follows channel order alone --------------------------------------


def test_an_open_request_during_round_1_is_admitted_at_its_cut_from_round_2() -> None:
    state = _observe(sub("alice"), join())
    assert state.roster.pending and not state.roster.admitted  # not before the boundary
    assert machine.members_of(_spec(), state, 1) == LISTED
    state = _feed(_spec(), state, sub("bob"), closed("alice"), closed("bob"))
    assert [(n.name, n.round) for n in state.roster.admitted] == [("dave", 2)]
    assert machine.members_of(_spec(), state, 1) == LISTED
    assert machine.members_of(_spec(), state, 2) == ("alice", "bob", "carol", "dave")


def test_a_request_after_a_cut_waits_for_the_next_boundary() -> None:
    state = _observe(*cut(1), join())
    assert not state.roster.admitted and state.roster.in_progress == 2
    state = _feed(_spec(), state, *finish(1), *cut(2))
    assert [(n.name, n.round) for n in state.roster.admitted] == [("dave", 3)]
    assert "dave" not in machine.members_of(_spec(), state, 2)


def test_without_the_membership_section_a_join_request_changes_nothing() -> None:
    state = _observe(join(), *cut(1), rules=None)
    assert state.roster == membership.NO_ROSTER
    assert machine.members_of(_spec(rules=None), state, 2) == LISTED


def test_every_reader_derives_the_same_roster() -> None:
    entries = [sub("alice"), join(), admit("alice"), *cut(1), join("erin", ERIN_KEY, n=7)]
    rosters = {
        _feed(_spec(p, VOTE), machine.start(_spec(p, VOTE)), *entries).roster
        for p in ("", "alice", "bob", "dave")
    }
    assert len(rosters) == 1


# -- refusals: named, in channel order -------------------------------------------------------


def _refused(*entries: Entry, rules: MembershipRules = OPEN) -> list[tuple[str, str]]:
    return [(r.name, r.reason) for r in _observe(*entries, rules=rules).roster.refused]


def test_a_request_whose_signature_does_not_verify_is_refused_and_belongs_to_nobody() -> None:
    state = _observe((*join(), False))
    assert [(r.name, r.key) for r in state.roster.refused] == [("dave", "")]
    assert state.roster.refused[0].reason.startswith("bad signature")
    assert membership.status(state.roster, "dave", DAVE_KEY) is None  # dave may still ask


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([join("bob", "bb" * 32)], "the name bob is taken"),
        ([join(), join("dave", "dd" * 32)], "the name dave is taken"),
        ([join("erin", ALICE_KEY)], "its public key is already used"),
        ([join(), join("erin", DAVE_KEY)], "its public key is already used"),
        ([join(deposit=0)], None),
    ],
)
def test_names_and_keys_are_unique(entries: list[Entry], reason: str | None) -> None:
    refused = _refused(*entries)
    assert refused[-1][1].startswith(reason) if reason else not refused, refused


def test_a_name_taken_by_a_newcomer_is_refused_later_too() -> None:
    refused = _refused(join(), *cut(1), join("dave", "dd" * 32))
    assert refused == [("dave", "the name dave is taken")]


def test_requests_over_max_parties_are_refused() -> None:
    rules = replace(OPEN, max_parties=4)
    refused = _refused(join(), join("erin", ERIN_KEY), rules=rules)
    assert refused == [("erin", "over membership.max_parties (4)")]


def test_fixed_admission_refuses_every_request() -> None:
    refused = _refused(join(), rules=replace(OPEN, admission="fixed"))
    assert refused == [("dave", 'membership is fixed (membership.admission = "fixed")')]


def test_a_request_during_the_last_round_is_refused() -> None:
    entries = [e for r in (1, 2, 3) for e in round_entries(r)]
    refused = _refused(*entries, join())
    assert refused == [("dave", "no round left to join (round 4 of 4 in progress)")]


def test_a_deposit_below_the_minimum_is_refused() -> None:
    rules = replace(OPEN, min_deposit=5)
    assert _refused(join(deposit=4), join("erin", ERIN_KEY, deposit=5), rules=rules) == [
        ("dave", "deposit 4 is below the required 5")
    ]


def test_pending_requests_are_bounded() -> None:
    rules = replace(OPEN, admission="vote", votes=1, max_parties=256)
    entries = [join(f"n{i}", f"{i:064x}") for i in range(membership.MAX_PENDING + 1)]
    refused = _refused(*entries, rules=rules)
    assert refused == [(f"n{membership.MAX_PENDING}", "too many pending requests (at most 32)")]


# -- admission by vote -----------------------------------------------------------------------


def test_a_vote_request_needs_votes_distinct_members() -> None:
    spec = _spec(rules=VOTE)
    state = _observe(join(), admit("alice"), admit("alice"), *cut(1), rules=VOTE)
    assert not state.roster.admitted and state.roster.pending[0].approvals == ("alice",)
    state = _feed(spec, state, admit("mallory"), admit("dave"), *finish(1), admit("bob"))
    assert state.roster.pending[0].approved  # alice and bob; mallory and dave are no members
    assert not state.roster.admitted
    state = _feed(spec, state, *cut(2))
    assert [(n.name, n.round) for n in state.roster.admitted] == [("dave", 3)]


def test_a_vote_for_no_pending_request_changes_nothing() -> None:
    state = _observe(admit("alice", "zed"), admit("bob", "zed"), rules=VOTE)
    assert state.roster == membership.NO_ROSTER


# -- the newcomer is no member of the round in progress -------------------------------------


def test_a_newcomers_entries_count_only_from_its_first_round() -> None:
    spec = _spec()
    state = _observe(join(), sub("dave", 1))
    assert state.view(1).violations == (
        ("dave", "Submitted for round 1 from dave, no member of round 1"),
    )
    state = _feed(spec, state, sub("dave", 2))  # before the boundary: not admitted yet
    assert ("dave", "Submitted for round 2 from dave, no member of round 2") in state.view(
        2
    ).violations
    state = _observe(join(), *cut(1), *finish(1), sub("dave", 2))
    assert state.view(2).submitted == ("dave",) and not state.view(2).violations


def test_the_newcomer_counts_for_quorum_and_the_everyone_submitted_close() -> None:
    spec = _spec("alice")
    state = _feed(spec, machine.start(spec), join(), *cut(1))
    state = machine.apply(spec, evolve_round(state, 2), Done(TrainAndSubmit(2)))
    state = _feed(spec, state, *finish(1), sub("alice", 2), sub("bob", 2), sub("carol", 2))
    assert machine.quorum_of(spec, state, 2) == 3  # a majority of four
    assert isinstance(machine.next_action(spec, state), Wait)  # dave has not submitted
    state = _feed(spec, state, sub("dave", 2))
    action = machine.next_action(spec, state)
    assert action == machine.CloseSubmissions(2, "all submitted")


def evolve_round(state: PartyState, r: int) -> PartyState:
    """``state`` moved on to round ``r`` (prepared), as if it finished the rounds before."""
    return machine.evolve(state, round=r, prepared=True)


def test_the_newcomer_asks_once_then_follows_and_takes_part_from_its_round() -> None:
    spec = _spec("dave", candidacy=Candidacy(DAVE_KEY, 50))
    state = machine.start(spec)
    state = machine.apply(spec, state, Done(machine.Prepare(1)))
    assert machine.next_action(spec, state) == RequestJoin(1)
    state = machine.apply(spec, state, Done(RequestJoin(1)))
    assert machine.next_action(spec, state) == Wait(1, "follow")  # posted, not read back
    state = _feed(spec, state, sub("alice"), join())
    assert machine.next_action(spec, state) == Wait(1, "follow")  # no submission, no vote
    state = _feed(spec, state, sub("bob"), sub("carol"), closed("alice"), closed("bob"))
    verify = machine.next_action(spec, state)
    assert verify == machine.Verify(1, LISTED)  # it checks round 1 itself
    state = machine.apply(spec, state, Done(verify, tuple((p, None) for p in LISTED)))
    state = machine.apply(spec, state, Done(machine.Sum(1, LISTED)))
    state = machine.apply(spec, state, Done(machine.Combine(1, ())))
    state = machine.apply(spec, state, Done(machine.Apply(1, LISTED), "0d" * 32))
    assert machine.next_action(spec, state) == Advance(1, "0d" * 32, LISTED)  # posts nothing
    state = machine.apply(spec, state, Done(Advance(1, "0d" * 32, LISTED)))
    state = machine.apply(spec, state, Done(machine.Prepare(2)))
    assert state.round == 2 and machine.next_action(spec, state) == TrainAndSubmit(2)


def test_a_refused_newcomer_stops_with_the_reason() -> None:
    spec = _spec("bob2", candidacy=Candidacy(ALICE_KEY, 50))
    state = _feed(spec, machine.start(spec), join("bob2", ALICE_KEY))
    action = machine.next_action(spec, state)
    assert isinstance(action, Halt) and "public key is already used" in action.reason


def test_someone_else_taking_the_name_first_refuses_the_newcomer() -> None:
    spec = _spec("dave", candidacy=Candidacy(DAVE_KEY, 50))
    state = _feed(spec, machine.start(spec), join("dave", "dd" * 32), join())
    action = machine.next_action(spec, state)
    assert isinstance(action, Halt) and "the name dave is taken" in action.reason


def test_a_forged_request_in_the_newcomers_name_does_not_stop_it() -> None:
    spec = _spec("dave", candidacy=Candidacy(DAVE_KEY, 50))
    state = _feed(spec, machine.start(spec), (*join(), False))
    state = machine.apply(spec, state, Done(machine.Prepare(1)))
    assert machine.next_action(spec, state) == RequestJoin(1)


def test_a_non_member_never_votes_to_fail_a_round() -> None:
    spec = _spec("dave", candidacy=Candidacy(DAVE_KEY, 50))
    state = _feed(
        spec, machine.start(spec), join(), sub("alice"), *[closed("alice"), closed("bob")]
    )
    state = machine.apply(spec, state, Done(machine.Prepare(1)))
    state = machine.apply(spec, state, Done(machine.Verify(1, ("alice",)), (("alice", None),)))
    action = machine.next_action(spec, state)
    assert isinstance(action, FailRound) and not action.post


# -- absence ----------------------------------------------------------------------------------


def test_a_silent_member_is_marked_absent_and_no_longer_counted() -> None:
    rules = replace(OPEN, absent_rounds=2)
    spec = _spec(rules=rules)
    pair = ("alice", "bob")
    state = _observe(*cut(1, pair), *finish(1, pair), rules=rules)
    assert not state.roster.absent  # one silent round is not two
    state = _feed(spec, state, *cut(2, pair))
    assert state.roster.absent == (("carol", 3),)
    assert machine.members_of(spec, state, 2) == LISTED
    assert machine.members_of(spec, state, 3) == pair
    assert machine.quorum_of(spec, state, 3) == 2 and machine.close_votes_of(spec, state, 3) == 2
    state = _feed(spec, state, *finish(2, pair), done("carol", 2), sub("carol", 3))
    assert state.view(3).violations == (
        ("carol", "Submitted for round 3 from carol, no member of round 3"),
    )


def test_a_member_that_posts_is_not_marked_absent() -> None:
    rules = replace(OPEN, absent_rounds=1)
    state = _observe(sub("alice"), sub("bob"), closed("carol"), closed("alice"), rules=rules)
    assert not state.roster.absent


def test_a_newcomer_is_not_marked_absent_before_it_was_a_member_long_enough() -> None:
    rules = replace(OPEN, absent_rounds=2)
    state = _observe(join(), *cut(1), *finish(1), *cut(2), rules=rules)
    assert "dave" not in {p for p, _ in state.roster.absent}


# -- key epochs: a membership change starts one --------------------------------------------


def test_admission_starts_a_key_epoch_holding_the_newcomer() -> None:
    plan = KeyPlan(LISTED, "dealer", "alice", 2, 512)
    spec = _spec("alice", keys=plan, shares_needed=2)
    state = _feed(spec, machine.start(spec), join(), *cut(1))
    before, epoch1 = machine.key_plan_of(spec, state, 1)
    after, epoch2 = machine.key_plan_of(spec, state, 2)
    assert (epoch1, before.names) == (0, LISTED)
    assert (epoch2, after.names) == (1, ("alice", "bob", "carol", "dave"))
    assert machine.key_plan_of(spec, state, 4)[1] == 1  # no change since
    dealer = machine.evolve(state, round=2, joined=frozenset(LISTED), key_open=0, views=state.views)
    assert machine.next_action(spec, dealer) == DealKey(2, 1)


def test_an_additive_key_after_admission_needs_every_holders_share() -> None:
    plan = KeyPlan(LISTED, "additive", "alice", 3, 512)
    spec = _spec("alice", keys=plan, shares_needed=3)
    state = _feed(spec, machine.start(spec), join(), *cut(1))
    assert machine.shares_needed_of(spec, state, 1) == 3
    assert machine.shares_needed_of(spec, state, 2) == 4


def test_a_key_epoch_refresh_and_a_join_number_epochs_in_round_order() -> None:
    plan = KeyPlan(LISTED, "dealer", "alice", 2, 512, refresh_every=2)
    assert [plan.epoch_of(r, (2,)) for r in range(1, 6)] == [0, 1, 2, 2, 3]
    assert [plan.first_round(e, (2,)) for e in range(4)] == [1, 2, 3, 5]
    assert [plan.epoch_of(r) for r in range(1, 6)] == [0, 0, 1, 1, 2]


# -- reading a real channel: the newcomer's signatures (SessionHistory) ---------------------


class _Ledger:
    """Consecutive entries with real signatures; an outsider's are not checked by the
    channel (it is in no keyring), which is what SessionHistory must make up for."""

    def __init__(self) -> None:
        names = [*LISTED, "dave", "mallory"]
        self.keys = make_keys(names)[0]
        self.entries: list[Entry_] = []

    def post(self, sender: str, message: Any, signer: str | None = None) -> None:
        payload = message.to_bytes()
        signature = self.keys[signer or sender].sign(payload)
        envelope = SignedEnvelope(sender=sender, payload=payload, signature=signature)
        self.entries.append(Entry_(len(self.entries) + 1, envelope, 1.0))

    def history(self, rules: MembershipRules | None = OPEN) -> SessionHistory:
        history = SessionHistory(S, LISTED, _spec(rules=rules))
        history.extend(self.entries)
        return history

    def key(self, name: str) -> str:
        return self.keys[name].public.hex


def _round_1(ledger: _Ledger) -> None:
    for entry in cut(1):
        ledger.post(*entry)


def test_a_newcomers_request_is_checked_against_the_key_it_carries() -> None:
    ledger = _Ledger()
    ledger.post(*join("dave", ledger.key("dave")))
    ledger.post(*join("erin", ledger.key("dave")), signer="mallory")  # forged
    history = ledger.history()
    assert [p.authentic for p in history.posted] == [True, False]
    roster = history.roster
    assert roster is not None and [q.name for q in roster.pending] == ["dave"]
    assert roster.refused[0].name == "erin" and "bad signature" in roster.refused[0].reason


def test_an_admitted_newcomers_entries_are_read_and_forgeries_dropped() -> None:
    ledger = _Ledger()
    ledger.post(*join("dave", ledger.key("dave")))
    ledger.post(*sub("dave", 1))  # before admission: no member yet
    _round_1(ledger)
    for entry in finish(1):
        ledger.post(*entry)
    ledger.post(*sub("dave", 2), signer="mallory")  # someone else's signature
    ledger.post(*sub("dave", 2))
    history = ledger.history()
    reasons = [(d.seq, d.reason) for d in history.dropped]
    assert reasons == [
        (2, "signer is no listed party and was not admitted"),
        (11, "bad signature: not the key the newcomer was admitted with"),
    ]
    assert list(history.submissions(2)) == ["dave"]


def test_without_membership_an_outsiders_request_is_dropped_as_before() -> None:
    ledger = _Ledger()
    ledger.post(*join("dave", ledger.key("dave")))
    history = ledger.history(rules=None)
    assert [d.reason for d in history.dropped] == ["signer does not match party"]
    assert history.roster == membership.NO_ROSTER
