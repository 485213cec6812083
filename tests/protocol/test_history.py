"""Tests for zkadapt.protocol.history: SessionHistory over hand-built channel entries."""

from __future__ import annotations

import json

import pytest

from tests.fakes import make_keys
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.crypto.identity import IdentityKey
from zkadapt.protocol.history import Dropped, Posted, SessionHistory
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    sign,
)

SESSION = "5e" * 32
OTHER_SESSION = "0a" * 32
NAMES = ["alice", "bob", "carol"]
MODEL = "0f" * 32


@pytest.fixture(scope="module")
def keys() -> dict[str, IdentityKey]:
    return make_keys([*NAMES, "mallory"])[0]


class Ledger:
    """Builds consecutive channel entries with real signatures (the channel's job)."""

    def __init__(self, keys: dict[str, IdentityKey]) -> None:
        self.keys = keys
        self.entries: list[Entry] = []

    def post(self, sender: str, message: Message) -> int:
        return self.raw(sender, message.to_bytes())

    def raw(self, sender: str, payload: bytes) -> int:
        seq = len(self.entries) + 1
        signature = self.keys[sender].sign(payload)
        envelope = SignedEnvelope(sender=sender, payload=payload, signature=signature)
        self.entries.append(Entry(seq, envelope, 1000.0 + seq))
        return seq

    def history(self) -> SessionHistory:
        history = SessionHistory(SESSION, NAMES)
        history.extend(self.entries)
        return history


@pytest.fixture
def ledger(keys: dict[str, IdentityKey]) -> Ledger:
    return Ledger(keys)


def submitted(party: str, round_: int = 1, *, session: str = SESSION, n: int = 10) -> Submitted:
    digest = f"{party}-{round_}-{n}".encode().hex().ljust(64, "0")[:64]
    return Submitted(session, round_, party, f"mem://{party}/{round_}", digest, 100, n)


def closed(round_: int = 1, phase: str = SUBMIT_PHASE) -> PhaseClosed:
    return PhaseClosed(SESSION, round_, phase, "quorum reached")


def done(party: str, round_: int = 1, model: str = MODEL) -> RoundDone:
    return RoundDone(SESSION, round_, party, model, ("alice", "bob"), {"accuracy": 0.5})


# --- what is kept, ignored and dropped ------------------------------------------------------


def test_empty_history_answers_nothing() -> None:
    history = SessionHistory(SESSION, NAMES)
    assert history.extend([]) == []
    assert history.last_seq == 0
    assert history.cut(1) is None
    assert history.submissions(1) == {}
    assert history.round_done(1) == {}
    assert history.rejections(1) == []
    assert history.failure(1) is None
    assert history.last_round_started() == 0


def test_extend_returns_the_new_messages_with_their_place(ledger: Ledger) -> None:
    message = submitted("alice")
    ledger.post("alice", message)
    history = SessionHistory(SESSION, NAMES)
    new = history.extend(ledger.entries)
    assert new == [Posted(1, "alice", message, 1001.0)]
    assert history.posted == new
    assert history.last_seq == 1


def test_messages_of_another_session_are_ignored_not_dropped(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice", session=OTHER_SESSION))
    ledger.post("bob", PhaseClosed(OTHER_SESSION, 1, SUBMIT_PHASE, "other"))
    ledger.post("bob", submitted("bob"))
    history = ledger.history()
    assert [p.sender for p in history.posted] == ["bob"]
    assert history.dropped == []
    assert history.cut(1) is None
    assert history.last_seq == 3


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"type":"Nope","v":1}', b'{"type":"Submitted","v":1}'],
    ids=["not-json", "not-object", "unknown-type", "missing-fields"],
)
def test_malformed_payload_is_dropped_with_its_seq(ledger: Ledger, payload: bytes) -> None:
    ledger.post("alice", submitted("alice"))
    seq = ledger.raw("bob", payload)
    ledger.post("carol", submitted("carol"))
    history = ledger.history()
    assert len(history.dropped) == 1
    dropped = history.dropped[0]
    assert isinstance(dropped, Dropped)
    assert (dropped.seq, dropped.sender) == (seq, "bob")
    assert dropped.reason.startswith("malformed message")
    assert sorted(history.submissions(1)) == ["alice", "carol"]


def test_payload_with_an_unhashable_type_is_dropped(ledger: Ledger) -> None:
    body = json.loads(submitted("bob").to_bytes())
    body["type"] = []
    seq = ledger.raw("bob", json.dumps(body).encode())
    history = ledger.history()
    assert [d.seq for d in history.dropped] == [seq]


def test_escrow_messages_on_the_channel_are_skipped_not_dropped(ledger: Ledger) -> None:
    """The escrow shares the session's channel (deposits, votes): the protocol neither
    counts them nor names their sender; a payload that only pretends to be one is dropped."""
    from zkadapt.escrow.messages import EscrowDeposit, KillVote

    ledger.post("alice", submitted("alice"))
    ledger.raw("bob", EscrowDeposit(SESSION, 0, "bob", 10, "ab" * 32 + "#0").to_bytes())
    ledger.raw("carol", KillVote(SESSION, 1, "carol", "bob", "silent").to_bytes())
    ledger.raw("carol", json.dumps({"type": "KillVote", "v": 9}).encode())  # judged by the escrow
    fake = ledger.raw("bob", json.dumps({"type": "EscrowDeposit", "pad": "x" * 5000}).encode())
    history = ledger.history()
    assert [d.seq for d in history.dropped] == [fake]
    assert sorted(history.submissions(1)) == ["alice"]


def test_submission_for_another_party_is_dropped(ledger: Ledger) -> None:
    seq = ledger.post("mallory", submitted("alice"))
    ledger.post("bob", submitted("alice"))
    history = ledger.history()
    assert history.submissions(1) == {}
    assert [(d.seq, d.sender) for d in history.dropped] == [(seq, "mallory"), (seq + 1, "bob")]
    assert all(d.reason == "signer does not match party" for d in history.dropped)


@pytest.mark.parametrize(
    "message",
    [done("alice"), PhaseClosed(SESSION, 1, SUBMIT_PHASE, "x"), RoundFailed(SESSION, 1, "x")],
    ids=["round-done", "phase-closed", "round-failed"],
)
def test_messages_from_a_sender_outside_the_session_are_dropped(
    ledger: Ledger, message: Message
) -> None:
    ledger.post("mallory", message)
    history = ledger.history()
    assert history.posted == []
    assert [d.sender for d in history.dropped] == ["mallory"]


def test_round_done_speaking_for_another_party_is_dropped(ledger: Ledger) -> None:
    ledger.post("bob", done("alice"))
    history = ledger.history()
    assert history.round_done(1) == {}
    assert len(history.dropped) == 1


def test_rejection_may_name_another_party(ledger: Ledger) -> None:
    rejection = Rejected(SESSION, 1, "carol", "digest mismatch")
    ledger.post("alice", rejection)
    history = ledger.history()
    assert history.rejections(1) == [("alice", rejection)]
    assert history.dropped == []


# --- the cut and submissions ----------------------------------------------------------------


def test_cut_is_the_first_phase_closed_for_that_round_and_phase(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice"))
    ledger.post("bob", PhaseClosed(SESSION, 1, "train", "other phase"))
    ledger.post("carol", closed(round_=2))
    first = ledger.post("bob", closed())
    ledger.post("alice", closed())
    history = ledger.history()
    assert history.cut(1) == first
    assert history.cut(1, SUBMIT_PHASE) == first
    assert history.cut(1, "train") == 2
    assert history.cut(2) == 3
    assert history.cut(3) is None


def test_submissions_keep_the_first_per_party(ledger: Ledger) -> None:
    first = submitted("alice", n=1)
    ledger.post("alice", first)
    ledger.post("alice", submitted("alice", n=2))
    ledger.post("bob", submitted("bob"))
    subs = ledger.history().submissions(1)
    assert sorted(subs) == ["alice", "bob"]
    assert subs["alice"].message == first
    assert subs["alice"].seq == 1
    assert subs["bob"].seq == 3


def test_submissions_before_the_cut_only(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice"))
    ledger.post("bob", submitted("bob"))
    cut = ledger.post("alice", closed())
    ledger.post("carol", submitted("carol"))
    ledger.post("bob", closed())
    history = ledger.history()
    assert history.cut(1) == cut
    assert sorted(history.submissions(1, before=cut)) == ["alice", "bob"]
    assert sorted(history.submissions(1)) == ["alice", "bob", "carol"]


def test_a_resubmission_after_the_cut_does_not_replace_the_first(ledger: Ledger) -> None:
    first = submitted("alice", n=1)
    ledger.post("alice", first)
    cut = ledger.post("bob", closed())
    ledger.post("alice", submitted("alice", n=2))
    subs = ledger.history().submissions(1, before=cut)
    assert subs["alice"].message == first


def test_a_party_whose_first_submission_is_after_the_cut_is_left_out(ledger: Ledger) -> None:
    cut = ledger.post("bob", closed())
    ledger.post("alice", submitted("alice"))
    assert ledger.history().submissions(1, before=cut) == {}


def test_submissions_are_per_round(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice", round_=1))
    ledger.post("bob", submitted("bob", round_=2))
    history = ledger.history()
    assert sorted(history.submissions(1)) == ["alice"]
    assert sorted(history.submissions(2)) == ["bob"]
    assert history.submissions(3) == {}


def test_a_cut_of_another_round_does_not_limit_submissions(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice", round_=2))
    ledger.post("bob", closed(round_=1))
    ledger.post("bob", submitted("bob", round_=2))
    history = ledger.history()
    assert sorted(history.submissions(2, before=history.cut(2))) == ["alice", "bob"]


# --- round results --------------------------------------------------------------------------


def test_round_done_keeps_the_first_per_party(ledger: Ledger) -> None:
    ledger.post("alice", done("alice", model="aa" * 32))
    ledger.post("alice", done("alice", model="bb" * 32))
    ledger.post("bob", done("bob", model="cc" * 32))
    ledger.post("carol", done("carol", round_=2))
    history = ledger.history()
    result = history.round_done(1)
    assert sorted(result) == ["alice", "bob"]
    assert result["alice"].model_sha256 == "aa" * 32
    assert result["bob"].model_sha256 == "cc" * 32
    assert sorted(history.round_done(2)) == ["carol"]


def test_rejections_are_in_channel_order_with_their_senders(ledger: Ledger) -> None:
    first = Rejected(SESSION, 1, "carol", "digest mismatch")
    second = Rejected(SESSION, 1, "carol", "norm too large")
    third = Rejected(SESSION, 1, "alice", "late")
    ledger.post("bob", first)
    ledger.post("alice", Rejected(SESSION, 2, "bob", "other round"))
    ledger.post("alice", second)
    ledger.post("bob", third)
    history = ledger.history()
    assert history.rejections(1) == [("bob", first), ("alice", second), ("bob", third)]
    assert len(history.rejections(2)) == 1


def test_failure_is_the_first_round_failed_of_that_round(ledger: Ledger) -> None:
    first = RoundFailed(SESSION, 2, "below quorum: 1 of 2")
    ledger.post("alice", RoundFailed(SESSION, 1, "round one"))
    ledger.post("bob", first)
    ledger.post("carol", RoundFailed(SESSION, 2, "later"))
    history = ledger.history()
    assert history.failure(2) == first
    assert history.failure(1) == RoundFailed(SESSION, 1, "round one")
    assert history.failure(3) is None


def test_last_round_started_is_the_highest_round_posted(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice", round_=1))
    ledger.post("bob", submitted("bob", round_=3))
    ledger.post("carol", submitted("carol", round_=2))
    ledger.post("alice", submitted("alice", round_=7, session=OTHER_SESSION))
    ledger.post("mallory", submitted("mallory", round_=9))
    ledger.raw("bob", b"garbage")
    assert ledger.history().last_round_started() == 3


# --- incremental extension ------------------------------------------------------------------


def test_extend_ignores_entries_already_seen(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice"))
    ledger.raw("bob", b"garbage")
    ledger.post("carol", submitted("carol"))
    history = SessionHistory(SESSION, NAMES)
    assert len(history.extend(ledger.entries[:2])) == 1
    new = history.extend(ledger.entries)  # overlapping read: entries 1 and 2 again
    assert [p.seq for p in new] == [3]
    assert [p.seq for p in history.posted] == [1, 3]
    assert [d.seq for d in history.dropped] == [2]
    assert history.last_seq == 3
    assert history.extend(ledger.entries) == []
    assert len(history.posted) == 2
    assert len(history.dropped) == 1


def test_incremental_extension_equals_one_pass(ledger: Ledger) -> None:
    ledger.post("alice", submitted("alice"))
    ledger.post("bob", submitted("bob"))
    ledger.post("carol", closed())
    ledger.post("alice", done("alice"))
    ledger.raw("bob", b"{}")
    ledger.post("bob", done("bob"))
    one_pass = ledger.history()
    stepwise = SessionHistory(SESSION, NAMES)
    for i in range(len(ledger.entries)):
        stepwise.extend(ledger.entries[: i + 1])
    assert stepwise.posted == one_pass.posted
    assert stepwise.dropped == one_pass.dropped
    assert stepwise.last_seq == one_pass.last_seq == len(ledger.entries)


def test_history_does_not_verify_signatures(ledger: Ledger) -> None:
    """The channel verifies; the history trusts the sender it is given."""
    payload = submitted("alice").to_bytes()
    forged = Entry(1, SignedEnvelope("alice", payload, b"\0" * 64), 0.0)
    history = SessionHistory(SESSION, NAMES)
    assert len(history.extend([forged])) == 1


def test_entries_signed_with_sign_are_accepted(keys: dict[str, IdentityKey]) -> None:
    envelope = sign(submitted("bob"), "bob", keys["bob"])
    history = SessionHistory(SESSION, NAMES)
    history.extend([Entry(5, envelope, 0.0)])
    assert sorted(history.submissions(1)) == ["bob"]
    assert history.last_seq == 5


# --- an external key-generation centre ------------------------------------------------------


def _key_dealt(sender: str, epoch: int = 0) -> Message:
    from zkadapt.protocol.messages import KeyDealt

    ref = {"uri": "local://k/public.bin", "sha256": MODEL, "size": 10}
    return KeyDealt(SESSION, 1, sender, epoch, MODEL, ref, {"alice": ref})


def test_an_outside_signer_may_only_deal_keys(ledger: Ledger) -> None:
    """The channel admits the KGC (its key is in the session); the history takes only its
    KeyDealt, and the scheme reads keys only from the configured dealer."""
    dealt = ledger.post("mallory", _key_dealt("mallory"))
    ledger.post("mallory", submitted("mallory"))
    ledger.post("alice", _key_dealt("mallory"))  # a party posing as the centre
    history = ledger.history()
    assert history.key_dealt(0, "mallory").seq == dealt
    assert history.key_dealt(0, "alice") is None and history.key_dealt(0, None) is None
    assert history.submissions(1) == {}
    assert [(d.sender, d.reason) for d in history.dropped] == [
        ("mallory", "signer does not match party"),
        ("alice", "signer does not match party"),
    ]


def test_channel_refuses_the_centres_name_without_its_key(tmp_path, keys) -> None:
    from zkadapt.channel.local import LocalLedger
    from zkadapt.crypto.identity import Keyring
    from zkadapt.errors import ChannelError

    keyring = Keyring({**{n: keys[n].public for n in NAMES}, "kgc": keys["mallory"].public})
    ledger = LocalLedger(tmp_path / "ledger.sqlite", keyring)
    ledger.post(sign(_key_dealt("kgc"), "kgc", keys["mallory"]))  # the configured key: fine
    with pytest.raises(ChannelError):
        ledger.post(sign(_key_dealt("kgc"), "kgc", keys["alice"]))  # anyone else: refused
    history = SessionHistory(SESSION, NAMES)
    history.extend(ledger.history(0))
    assert history.key_dealt(0, "kgc") is not None
    ledger.close()
