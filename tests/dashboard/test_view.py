"""SessionView: party cards, timeline statuses and rounds derived from a real ledger."""

from __future__ import annotations

from tests.dashboard.scripted import ScriptedSession
from zkadapt.channel.base import SignedEnvelope
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.dashboard.view import DROPPED, FAILED, VERIFIED, PartyCard, Snapshot
from zkadapt.protocol.messages import Joined, Submitted


def _snapshot(scripted: ScriptedSession) -> Snapshot:
    watcher = LedgerWatcher(locate_session(scripted.session_file))
    try:
        watcher.poll()
        return watcher.snapshot()
    finally:
        watcher.close()


def _cards(snap: Snapshot) -> dict[str, PartyCard]:
    return {c.name: c for c in snap.cards}


def test_cards_follow_each_party_through_a_round(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    cards = _cards(_snapshot(scripted))
    assert cards["alice"].phase == "Submitted" and cards["alice"].round == 1
    assert cards["bob"].phase == "not joined" and not cards["bob"].joined

    scripted.submit(1, "bob")
    scripted.close_phase(1, by="bob")
    assert _cards(_snapshot(scripted))["alice"].phase == "Submitted"  # one vote of two
    scripted.close_phase(1, by="alice")
    cards = _cards(_snapshot(scripted))
    assert cards["alice"].phase == "PhaseClosed"
    assert cards["carol"].phase == "not joined"

    scripted.reject(1, "bob", "digest mismatch", by="alice")
    scripted.done(1, "alice", ("alice",), 0.6)
    snap = _snapshot(scripted)
    cards = _cards(snap)
    assert cards["alice"].phase == "RoundDone" and cards["alice"].rounds_done == 1
    assert cards["bob"].phase == "Rejected"
    assert "digest mismatch" in cards["bob"].detail
    assert cards["bob"].rejections == ("round 1: digest mismatch (by alice)",)
    assert snap.report["rounds"][0]["rejected"] == [
        {"party": "bob", "reason": "digest mismatch", "by": "alice"}
    ]


def test_a_party_that_missed_the_cut_is_shown_left_out(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    scripted.submit(1, "bob")
    scripted.close_phase(1, by="alice")
    scripted.close_phase(1, by="bob")
    scripted.submit(1, "carol")  # after the cut
    card = _cards(_snapshot(scripted))["carol"]
    assert card.phase == "PhaseClosed" and "left out" in card.detail


def test_round_failed_shows_on_cards_and_in_progress(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    scripted.close_phase(1, by="alice")
    scripted.close_phase(1, by="bob")
    scripted.fail(1, "only 1 of 3 updates accepted, quorum is 2")
    snap = _snapshot(scripted)
    assert _cards(snap)["alice"].phase == "RoundFailed"
    assert snap.in_progress is not None
    assert snap.in_progress["failed"].startswith("only 1 of 3")


def test_in_progress_round_lists_submissions_until_it_is_done(scripted: ScriptedSession) -> None:
    scripted.play_round(1)
    scripted.submit(2, "carol")
    snap = _snapshot(scripted)
    assert len(snap.report["rounds"]) == 1
    assert snap.in_progress == {
        "round": 2,
        "submitted": ["carol"],
        "closed": False,
        "rejected": [],
        "done": [],
        "failed": None,
    }


def test_finished_session_has_no_round_in_progress(scripted: ScriptedSession) -> None:
    for r in (1, 2, 3):
        scripted.play_round(r, rejected="carol" if r == 2 else None)
    snap = _snapshot(scripted)
    assert snap.completed and snap.in_progress is None
    assert [len(r["accepted"]) for r in snap.report["rounds"]] == [3, 2, 3]
    assert all(c.phase == "RoundDone" for c in snap.cards)
    assert "session complete" in snap.cards[0].detail


def test_timeline_marks_verified_and_dropped_entries(scripted: ScriptedSession) -> None:
    scripted.post("alice", Joined(scripted.sid, 0, "alice", 1000))
    # bob signs a message that speaks for carol: the protocol drops it
    forged = Submitted(scripted.sid, 1, "carol", "file:///x", "cd" * 32, 10, 5)
    scripted.post("bob", forged)
    # a signed entry that is not a message at all
    key = scripted.keys["carol"]
    scripted.ledger().post(SignedEnvelope("carol", b"not json", key.sign(b"not json")))
    snap = _snapshot(scripted)
    statuses = [(row.seq, row.status) for row in snap.timeline]
    assert statuses == [(1, VERIFIED), (2, DROPPED), (3, DROPPED)]
    assert snap.timeline[1].note == "signer does not match party"
    assert snap.timeline[2].note.startswith("malformed message")
    assert (
        snap.timeline[0].kind == "Joined" and "1,000 training samples" in snap.timeline[0].summary
    )
    assert _cards(snap)["alice"].phase == "Joined"


def test_a_tampered_ledger_is_reported_not_raised(scripted: ScriptedSession) -> None:
    import sqlite3

    scripted.play_round(1)
    scripted.close()
    conn = sqlite3.connect(scripted.ledger_path)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET payload = replace(payload, 'alice', 'alicf') WHERE seq = 3")
    conn.commit()
    conn.close()
    snap = _snapshot(scripted)
    assert not snap.channel.chain_ok
    assert snap.channel.error and "seq 3" in snap.channel.error
    assert snap.timeline[-1].status == FAILED


def test_a_second_phase_closed_is_marked_as_without_effect(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    first = scripted.close_phase(1, by="alice")
    cut = scripted.close_phase(1, by="bob")
    scripted.close_phase(1, by="carol")
    rows = _snapshot(scripted).timeline
    assert rows[first - 1].summary.endswith("vote 1 of 2 to close")
    assert rows[cut - 1].summary.endswith("vote 2 of 2: the phase closes here")
    assert rows[-1].summary.endswith(f"already closed at seq {cut}, no effect")
