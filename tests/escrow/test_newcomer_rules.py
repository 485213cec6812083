"""Escrow rules with a newcomer (issue 20): a party the round machine admitted during the session.

Hand-built histories of real signed entries: alice, bob and carol are the session file's
parties, dave a newcomer admitted at channel seq ``since`` with the deposit its request
declared (:class:`AdmittedDeposit`), signing with the identity key it was admitted with. Each
test would fail if the rule it names did nothing (the rules in ``zkadapt.escrow.rules``, the
layer-1 side in ``test_newcomer_settlement_properties.py``).
"""

from __future__ import annotations

import json

import pytest

from tests.escrow.helpers import DEPOSIT, KEYS, NAMES, SESSION, History, terms
from tests.fakes import make_keys
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.escrow.messages import EscrowDeposit, KillVote
from zkadapt.escrow.rules import (
    SLASHED,
    AdmittedDeposit,
    EscrowTerms,
    EscrowView,
    depositors,
    kill_votes,
    lock_payouts,
    payouts,
    settlement_of,
    silent,
    slashed,
)

OTHERS, _ = make_keys(["dave", "erin", "mallory"])
DAVE = OTHERS["dave"]
#: Where the examples admit dave: after the three listed deposits and two more entries.
SINCE = 6


def admitted(since: int = SINCE, deposit: int = DEPOSIT, **overrides: object) -> EscrowTerms:
    """The example terms with dave admitted at ``since`` with ``deposit`` declared."""
    dave = AdmittedDeposit(DAVE.public.hex, deposit, "dave#0", since)
    return terms(newcomers={"dave": dave}, **overrides)


class Channel(History):
    """A history where dave posts with his admitted key, and anyone can be forged."""

    def post(self, sender: str, payload: bytes, *, signer: str | None = None) -> Channel:
        key = {**KEYS, **OTHERS}[signer or sender]
        env = SignedEnvelope(sender, payload, key.sign(payload))
        self.entries.append(Entry(len(self.entries) + 1, env, 0.0))
        return self

    def forged(self, sender: str, payload: bytes, signer: str = "mallory") -> Channel:
        """``sender``'s entry signed with ``signer``'s key (the channel let it through: it
        checks a newcomer's entries against no key of its own, docs/membership.md)."""
        return self.post(sender, payload, signer=signer)


def listed_deposits() -> Channel:
    history = Channel()
    history.deposits(*NAMES)  # seq 1-3
    return history


def test_a_newcomers_deposit_counts_from_its_boundary_on() -> None:
    history = listed_deposits()
    history.kill("alice", "dave").kill("bob", "dave")  # seq 4, 5: before dave's boundary
    history.kill("carol", "dave")  # seq 6: dave is a depositor from here on
    view = EscrowView.from_entries(history.entries, admitted())
    assert view.deposits["dave"] == DEPOSIT and view.refs["dave"] == "dave#0"
    assert depositors(view, admitted()) == ("alice", "bob", "carol", "dave")
    before = "kill vote before both parties deposited"
    assert view.ignored == [(4, before), (5, before)]
    assert kill_votes(view, admitted())["dave"] == ("carol",)
    assert settlement_of(history.entries, admitted()).slashed == ()
    # the same votes after an earlier boundary slash dave (two and a majority of three)
    early = settlement_of(history.entries, admitted(since=4))
    assert early.status == SLASHED and early.slashed == ("dave",)
    # one more vote after the boundary is what the late admission needs
    history.kill("alice", "dave")
    assert settlement_of(history.entries, admitted()).slashed == ("dave",)


def test_a_newcomer_is_no_depositor_before_its_boundary_and_cannot_claim_there() -> None:
    history = listed_deposits().rounds(3, *NAMES)  # complete by seq 21
    history.message("dave", EscrowDeposit(SESSION, 0, "dave", DEPOSIT))  # ignored anyway
    history.claim("dave")  # seq 23: dave joins at 26, so nothing pays it yet
    history.claim("alice")  # seq 24 fixes the settlement before dave's boundary
    history.rounds(3, "alice", "dave", start=3)
    terms_ = admitted(since=26)
    view = EscrowView.from_entries(history.entries, terms_)
    assert (23, "claim before a settlement pays this party") in view.ignored
    result = settlement_of(history.entries, terms_)
    assert result.depositors == NAMES and result.claims == ("alice",)
    assert result.payouts == {name: DEPOSIT for name in NAMES}
    assert "dave" not in view.deposits  # after the first claim nobody joins the escrow


def test_a_newcomers_own_escrow_deposit_is_ignored() -> None:
    history = listed_deposits()
    history.message("dave", EscrowDeposit(SESSION, 0, "dave", DEPOSIT - 1, "elsewhere#1"))
    history.message("dave", EscrowDeposit(SESSION, 0, "dave", DEPOSIT, "elsewhere#2"))
    view = EscrowView.from_entries(history.entries, admitted(since=1))
    assert view.deposits["dave"] == DEPOSIT and view.refs["dave"] == "dave#0"
    declared = "a newcomer's deposit is the one its admitted request declared"
    assert view.ignored == [(4, declared), (5, declared)]
    # a request that declared too little keeps dave out, whatever it posts later
    short = admitted(since=1, deposit=DEPOSIT - 1)
    assert depositors(EscrowView.from_entries(history.entries, short), short) == NAMES


def test_a_newcomers_entry_signed_with_another_key_is_ignored() -> None:
    history = listed_deposits().rounds(1, *NAMES)
    history.forged("dave", _round_done("dave", 2))
    history.forged("dave", _kill_vote("dave", "alice"))
    history.forged("dave", _kill_vote("dave", "alice"), signer="alice")
    history.protocol("dave", "RoundDone", 3)  # his own key: counts
    view = EscrowView.from_entries(history.entries, admitted(since=1))
    bad = "bad signature: not the key the newcomer was admitted with"
    assert [why for _, why in view.ignored] == [bad, bad, bad]
    assert [seq for seq, _ in view.ignored] == [10, 11, 12]
    assert view.last_signal["dave"] == 3 and 2 not in view.done
    assert view.vote_order == []


def test_a_newcomers_kill_vote_against_a_listed_party_does_not_count() -> None:
    history = listed_deposits().rounds(1, *NAMES)
    history.kill("dave", "carol").kill("alice", "carol")  # with dave's, two votes
    view = EscrowView.from_entries(history.entries, admitted(since=1))
    assert view.ignored == [(10, "carol's lock does not list the voter")]
    assert kill_votes(view, admitted(since=1))["carol"] == ("alice",)
    assert settlement_of(history.entries, admitted(since=1)).slashed == ()
    # the count checks it again, for a view not folded from entries
    folded = EscrowView(deposits=dict.fromkeys((*NAMES, "dave"), DEPOSIT))
    folded.vote_order = [("dave", "carol"), ("alice", "carol")]
    assert slashed(folded, admitted(since=1)) == ()
    folded.vote_order.append(("bob", "carol"))
    assert slashed(folded, admitted(since=1)) == ("carol",)
    # dave may vote on his own lock's parties only, and his own lock lists him alone of
    # the newcomers: a second newcomer's vote against him does not count either
    erin = AdmittedDeposit(OTHERS["erin"].public.hex, DEPOSIT, "erin#0", 1)
    dave = admitted(since=1).newcomers["dave"]
    both = terms(newcomers={"dave": dave, "erin": erin})
    history.kill("erin", "dave")
    view = EscrowView.from_entries(history.entries, both)
    assert view.ignored[-1] == (12, "dave's lock does not list the voter")


def test_listed_parties_slash_a_newcomer_by_a_majority_and_share_its_deposit() -> None:
    history = listed_deposits().rounds(1, *NAMES, "dave")
    history.kill("alice", "dave")
    assert settlement_of(history.entries, admitted(since=1)).slashed == ()  # one vote
    history.kill("bob", "dave")  # two of the three others: slashed
    result = settlement_of(history.entries, admitted(since=1))
    assert result.status == SLASHED and result.slashed == ("dave",)
    assert result.newcomers == ("dave",)
    third, left = divmod(DEPOSIT, 3)
    assert result.payouts == {
        "alice": DEPOSIT + third + left,
        "bob": DEPOSIT + third,
        "carol": DEPOSIT + third,
        "dave": 0,
    }
    assert sum(result.payouts.values()) == 4 * DEPOSIT


def test_a_slashed_listed_partys_deposit_goes_to_the_listed_parties_only() -> None:
    history = listed_deposits().rounds(1, *NAMES, "dave")
    history.kill("alice", "carol").kill("bob", "carol")
    result = settlement_of(history.entries, admitted(since=1))
    assert result.slashed == ("carol",)
    assert result.lock_members("carol") == NAMES
    assert result.lock_members("dave") == (*NAMES, "dave")
    half = DEPOSIT // 2
    assert result.payouts == {
        "alice": DEPOSIT + half,
        "bob": DEPOSIT + half,
        "carol": 0,
        "dave": DEPOSIT,
    }
    assert sum(result.payouts.values()) == 4 * DEPOSIT
    # and both slashed: each lock goes to the listed parties that remain
    history.kill("alice", "dave").kill("bob", "dave")
    both = settlement_of(history.entries, admitted(since=1))
    assert both.slashed == ("carol", "dave")
    assert both.payouts == {"alice": 2 * DEPOSIT, "bob": 2 * DEPOSIT, "carol": 0, "dave": 0}


def test_a_listed_slash_needs_the_votes_of_the_largest_lock_that_lists_it() -> None:
    """Four listed parties: carol's lock lists four, dave's five (and dave cannot vote
    against carol), and dave's lock must prove carol slashed too: three votes, not two."""
    four = (*NAMES, "erin")
    history = Channel()
    for name in four:
        history.message(name, EscrowDeposit(SESSION, 0, name, DEPOSIT, f"{name}#0"))
    history.kill("alice", "carol").kill("bob", "carol")
    with_dave = admitted(since=1, parties=four)
    assert settlement_of(history.entries, with_dave).slashed == ()
    # without a newcomer among the depositors, two of the three others are enough
    short = admitted(since=1, parties=four, deposit=DEPOSIT - 1)
    assert settlement_of(history.entries, short).slashed == ("carol",)
    history.kill("erin", "carol")
    result = settlement_of(history.entries, with_dave)
    assert result.slashed == ("carol",) and result.payouts["dave"] == DEPOSIT
    # dave's own lock lists five as well: three votes slash him, two do not
    history.kill("alice", "dave").kill("bob", "dave")
    assert settlement_of(history.entries, with_dave).slashed == ("carol",)
    history.kill("erin", "dave")
    assert settlement_of(history.entries, with_dave).slashed == ("carol", "dave")


@pytest.mark.parametrize(
    ("lost", "newcomers", "expected"),
    [
        ((), ("dave",), {"alice": 10, "bob": 10, "carol": 10, "dave": 10}),
        (("carol",), ("dave",), {"alice": 15, "bob": 15, "carol": 0, "dave": 10}),
        (("dave",), ("dave",), {"alice": 14, "bob": 13, "carol": 13, "dave": 0}),
        (("carol", "dave"), ("dave",), {"alice": 20, "bob": 20, "carol": 0, "dave": 0}),
        # two newcomers: neither shares the other's lock (neither lock lists the other)
        (("erin",), ("dave", "erin"), {"alice": 14, "bob": 13, "carol": 13, "dave": 10, "erin": 0}),
        (
            ("carol",),
            ("dave", "erin"),
            {"alice": 15, "bob": 15, "carol": 0, "dave": 10, "erin": 10},
        ),
    ],
)
def test_payouts_split_each_lock_among_the_parties_it_lists(lost, newcomers, expected) -> None:
    members = (*NAMES, *newcomers)
    paid = payouts(members, lost, 10, newcomers)
    assert paid == expected and sum(paid.values()) == 10 * len(members)
    for owner in members:
        listed = NAMES + ((owner,) if owner in newcomers else ())
        lock = lock_payouts(listed, lost, 10, owner)
        assert sum(lock.values()) == 10 and set(lock) <= set(listed)


def test_an_absent_member_is_silent() -> None:
    history = listed_deposits().rounds(3, *NAMES, "dave")  # everyone signals every round
    view = EscrowView.from_entries(history.entries, admitted(since=1))
    assert silent(view, admitted(since=1)) == ()
    absent = admitted(since=1, absent=frozenset({"dave", "bob"}))
    assert silent(view, absent) == ("bob", "dave")
    # a newcomer whose request declared too little is no depositor, so never silent
    short = admitted(since=1, deposit=1, absent=frozenset({"dave"}))
    assert silent(EscrowView.from_entries(history.entries, short), short) == ()


def test_a_newcomers_silence_counts_from_its_first_round() -> None:
    history = listed_deposits().rounds(2, *NAMES)  # dave has posted nothing
    late = AdmittedDeposit(DAVE.public.hex, DEPOSIT, "dave#0", 1, first_round=3)
    joined_late = terms(newcomers={"dave": late})
    view = EscrowView.from_entries(history.entries, joined_late)
    assert silent(view, joined_late) == ()  # rounds 1 and 2 were before his time
    history.rounds(3, *NAMES, start=3)
    assert silent(EscrowView.from_entries(history.entries, joined_late), joined_late) == ("dave",)
    assert silent(view, admitted(since=1)) == ("dave",)  # a member from round 1 is behind


def test_terms_with_newcomers_are_checked() -> None:
    dave = AdmittedDeposit(DAVE.public.hex, DEPOSIT, "", 1)
    with pytest.raises(ValueError, match="listed party's name"):
        terms(newcomers={"alice": dave})
    listed_keys = {n: bytes([i]) * 28 for i, n in enumerate(NAMES)}
    with pytest.raises(ValueError, match="payment_keys"):
        terms(newcomers={"dave": dave}, payment_keys=listed_keys)
    ok = terms(newcomers={"dave": dave}, payment_keys={**listed_keys, "dave": b"d" * 28})
    assert ok.everyone == ("alice", "bob", "carol", "dave") and ok.on_layer1
    assert ok.community("dave") == ("alice", "bob", "carol", "dave")
    assert ok.community("alice") == NAMES


def _round_done(party: str, round_: int) -> bytes:
    body = {"type": "RoundDone", "v": 1, "session": SESSION, "round": round_, "party": party}
    return json.dumps(body, sort_keys=True).encode()


def _kill_vote(voter: str, target: str) -> bytes:
    return KillVote(SESSION, 2, voter, target, "silent").to_bytes()
