"""Escrow settlement rules over channel histories: completion, silence, early close, votes."""

from __future__ import annotations

import pytest

from tests.escrow.helpers import DEPOSIT, NAMES, SESSION, History, terms
from zkadapt.escrow.messages import (
    EscrowDeposit,
    KillVote,
    MalformedEscrowMessage,
    ReleaseVote,
    read_payload,
)
from zkadapt.escrow.rules import (
    COMPLETED,
    PENDING,
    SLASHED,
    EscrowView,
    completed,
    kill_votes,
    lock_payouts,
    payouts,
    progress,
    settlement_of,
    silent,
)
from zkadapt.escrow.status import status_lines


def test_a_completed_session_refunds_every_deposit_and_claims_count() -> None:
    history = History().deposits(*NAMES).rounds(3, *NAMES).claim("alice").claim("bob")
    result = settlement_of(history.entries, terms())
    assert result.status == COMPLETED and result.final
    assert result.payouts == {name: DEPOSIT for name in NAMES}
    assert result.slashed == () and result.claims == ("alice", "bob")
    assert sum(result.payouts.values()) == 3 * DEPOSIT


def test_an_unfinished_session_pays_nothing_yet() -> None:
    history = History().deposits(*NAMES).rounds(2, *NAMES).claim("alice")
    result = settlement_of(history.entries, terms())
    assert result.status == PENDING and not result.final
    assert result.payouts == {} and result.claims == ()


def test_a_silent_party_is_slashed_by_a_majority_and_its_deposit_shared() -> None:
    history = History().deposits(*NAMES).rounds(1, *NAMES)
    history.rounds(3, "alice", "bob", start=2)  # carol goes silent after round 1
    view = EscrowView.from_entries(history.entries, terms())
    assert silent(view, terms()) == ("carol",) and completed(view, terms())
    history.kill("alice", "carol").kill("bob", "carol")
    result = settlement_of(history.entries, terms())
    assert result.status == COMPLETED and result.slashed == ("carol",)
    assert result.payouts == {"alice": DEPOSIT * 3 // 2, "bob": DEPOSIT * 3 // 2, "carol": 0}


def test_closing_the_head_early_gets_the_closer_slashed_before_completion() -> None:
    history = History().deposits(*NAMES).rounds(1, *NAMES)
    history.kill("alice", "bob", "closed-early").kill("carol", "bob", "closed-early")
    result = settlement_of(history.entries, terms())
    assert result.status == SLASHED and result.slashed == ("bob",)
    assert result.payouts["bob"] == 0
    assert result.payouts["alice"] + result.payouts["carol"] == 3 * DEPOSIT


def test_a_vote_without_majority_fails_and_everyone_is_refunded() -> None:
    history = History().deposits(*NAMES).rounds(3, *NAMES).kill("alice", "carol")
    result = settlement_of(history.entries, terms())
    assert result.status == COMPLETED and result.slashed == ()
    assert result.payouts == {name: DEPOSIT for name in NAMES}
    view = EscrowView.from_entries(history.entries, terms())
    assert kill_votes(view, terms())["carol"] == ("alice",)


def test_votes_and_deposits_count_once_and_only_from_depositors() -> None:
    history = History().deposits("alice", "bob").deposits("carol", amount=DEPOSIT - 1)
    history.kill("alice", "bob").kill("alice", "bob").kill("carol", "bob")
    history.deposits("alice", amount=1)  # a second deposit does not replace the first
    view = EscrowView.from_entries(history.entries, terms())
    assert view.deposits["alice"] == DEPOSIT
    assert kill_votes(view, terms()) == {"alice": (), "bob": ("alice",)}  # carol is no member
    # two members: one vote is a strict majority of the one other party, but a slash needs
    # two voters (no single party slashes another), so nobody is slashed
    result = settlement_of(history.entries, terms())
    assert result.depositors == ("alice", "bob") and result.slashed == ()
    assert result.payouts == {}


def test_messages_signed_for_someone_else_or_another_session_are_ignored() -> None:
    history = History().deposits(*NAMES)
    history.message("alice", KillVote(SESSION, 1, "bob", "carol", "silent"))  # alice as bob
    history.message("alice", EscrowDeposit("ab" * 32, 0, "alice", 1))
    history.post("bob", b'{"type":"KillVote","v":1}')
    history.protocol("carol", "RoundDone", 1, party="alice")
    view = EscrowView.from_entries(history.entries, terms())
    assert view.votes == {} and view.done == {}
    assert [reason.split(":")[0] for _, reason in view.ignored] == [
        "signer does not match party",
        "malformed escrow message",
        "signer does not match party",
    ]


def test_progress_needs_a_quorum_of_round_done() -> None:
    history = History().deposits(*NAMES).rounds(2, "alice")
    view = EscrowView.from_entries(history.entries, terms())
    assert progress(view, terms()) == 0
    assert progress(view, terms(quorum=1)) == 2


@pytest.mark.parametrize(
    ("members", "lost", "expected"),
    [
        (("a", "b", "c"), (), {"a": 10, "b": 10, "c": 10}),
        (("a", "b", "c"), ("c",), {"a": 15, "b": 15, "c": 0}),
        (("a", "b", "c", "d"), ("d",), {"a": 14, "b": 13, "c": 13, "d": 0}),
        # each slashed lock is split on its own: 3 + the remainder lovelace to "a", twice
        (("a", "b", "c", "d", "e"), ("d", "e"), {"a": 18, "b": 16, "c": 16, "d": 0, "e": 0}),
    ],
)
def test_payouts_pay_out_the_whole_pool(members, lost, expected) -> None:
    paid = payouts(members, lost, 10)
    assert paid == expected and sum(paid.values()) == 10 * len(members)
    locks = [lock_payouts(members, lost, 10, owner) for owner in members]
    assert all(sum(lock.values()) == 10 for lock in locks)
    assert {p: sum(lock.get(p, 0) for lock in locks) for p in members} == paid


def test_a_lock_pays_its_owner_back_or_splits_among_the_remaining() -> None:
    members = ("a", "b", "c", "d")
    assert lock_payouts(members, ("d",), 10, "a") == {"a": 10}
    assert lock_payouts(members, ("d",), 10, "d") == {"a": 4, "b": 3, "c": 3}
    assert lock_payouts(members, ("c", "d"), 1, "d") == {"a": 1}  # zero shares are left out
    with pytest.raises(ValueError):
        lock_payouts(members, (), 10, "mallory")


def test_nobody_left_to_pay_is_an_error() -> None:
    with pytest.raises(ValueError):
        payouts(("a", "b"), ("a", "b"), 10)


def test_escrow_messages_round_trip_and_validate() -> None:
    vote = KillVote(SESSION, 2, "alice", "bob", "closed-early")
    assert read_payload(vote.to_bytes()) == vote
    assert read_payload(b'{"type":"Joined"}') is None and read_payload(b"\xff") is None
    for bad in (
        b'{"type":"KillVote","v":1,"session":"'
        + SESSION.encode()
        + b'","round":1,"party":"a","target":"a","reason":"silent"}',
        b'{"type":"Claim","v":2,"session":"' + SESSION.encode() + b'","round":1,"party":"a"}',
        b'{"type":"EscrowDeposit","v":1,"session":"x","round":0,"party":"a","amount":1}',
    ):
        with pytest.raises(MalformedEscrowMessage):
            read_payload(bad)
    with pytest.raises(MalformedEscrowMessage):
        KillVote(SESSION, 1, "a", "b", "bored").to_bytes()


def test_signed_votes_round_trip_and_bad_keys_or_signatures_are_malformed() -> None:
    signed = KillVote(SESSION, 2, "alice", "bob", "silent", "ab" * 32, "cd" * 64)
    assert read_payload(signed.to_bytes()) == signed
    unsigned = KillVote(SESSION, 2, "alice", "bob", "silent")
    assert b"vkey" not in unsigned.to_bytes()  # the old wire form, unchanged
    release = ReleaseVote(SESSION, 3, "alice", "bob", "ab" * 32, "cd" * 64)
    assert read_payload(release.to_bytes()) == release
    for bad in (
        ReleaseVote(SESSION, 3, "alice", "bob", "", ""),  # a release vote must be signed
        ReleaseVote(SESSION, 3, "alice", "alice", "ab" * 32, "cd" * 64),
        ReleaseVote(SESSION, 3, "alice", "bob", "AB" * 32, "cd" * 64),
        KillVote(SESSION, 2, "alice", "bob", "silent", "ab" * 32, ""),
        KillVote(SESSION, 2, "alice", "bob", "silent", "ab" * 31, "cd" * 64),
        KillVote(SESSION, 2, "alice", "bob", "silent", "ab" * 32, "cd" * 63),
    ):
        with pytest.raises(MalformedEscrowMessage):
            bad.to_bytes()


def test_terms_are_checked_and_sorted() -> None:
    assert terms(parties=("carol", "alice")).parties == ("alice", "carol")
    with pytest.raises(ValueError):
        terms(deposit=0)
    with pytest.raises(ValueError, match="payment_keys"):
        terms(payment_keys={"alice": b"x" * 28})  # bob and carol missing
    with pytest.raises(ValueError, match="payment_keys"):
        terms(payment_keys={n: b"x" * 27 for n in NAMES})


def test_status_lines_show_deposits_votes_and_settlement() -> None:
    history = History().deposits(*NAMES).rounds(1, *NAMES).rounds(3, "alice", "bob", start=2)
    history.kill("alice", "carol").kill("bob", "carol").claim("alice")
    lines = status_lines(history.entries, terms())
    assert lines[0].startswith("escrow 5e5e5e5e5e5e5e5e…: completed; progress round 3 of 3")
    carol = next(line for line in lines if "carol:" in line)
    assert "kill votes: alice, bob" in carol and "settlement: 0" in carol
    assert "[silent, slashed]" in carol
    assert "[claimed]" in next(line for line in lines if "alice:" in line)
