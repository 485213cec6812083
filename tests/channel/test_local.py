"""Tests for zkadapt.channel.local, the SQLite ledger, and the channel registry (DESIGN.md 6)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkadapt.channel import Channel, SignedEnvelope, open_channel
from zkadapt.channel.local import GENESIS_HASH, LocalLedger, entry_hash
from zkadapt.crypto.identity import IdentityKey, Keyring
from zkadapt.errors import ChannelError

PARTIES = ("alice", "bob", "carol", "dave")
KEYS = {name: IdentityKey.from_seed(bytes([i + 1]) * 32) for i, name in enumerate(PARTIES)}
MALLORY = IdentityKey.from_seed(b"\xee" * 32)
_SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def keyring() -> Keyring:
    return Keyring({name: key.public for name, key in KEYS.items()})


@pytest.fixture
def ledger(tmp_path: Path, keyring: Keyring) -> Iterator[LocalLedger]:
    with LocalLedger(tmp_path / "ledger.db", keyring) as led:
        yield led


def envelope(sender: str, text: str, key: IdentityKey | None = None) -> SignedEnvelope:
    payload = text.encode()
    return SignedEnvelope(sender, payload, (key or KEYS[sender]).sign(payload))


def post_texts(ledger: LocalLedger, count: int) -> None:
    for i in range(count):
        ledger.post(envelope(PARTIES[i % 3], f"message {i + 1}"))


def tamper(path: Path, sql: str, *params: object) -> None:
    """Edit the ledger file behind its back, as an attacker with file access would."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    conn.execute(sql, params)
    conn.close()


def swap(path: Path, a: int, b: int) -> None:
    """Exchange the rows at seq ``a`` and ``b`` (stored hashes travel with their rows)."""
    tamper(path, "UPDATE entries SET seq = -1 WHERE seq = ?", a)
    tamper(path, "UPDATE entries SET seq = ? WHERE seq = ?", a, b)
    tamper(path, "UPDATE entries SET seq = ? WHERE seq = -1", b)


def forge_append(path: Path, sender: str, payload: bytes, signature: bytes) -> int:
    """Append a correctly chained row that bypasses post()'s signature check."""
    conn = sqlite3.connect(path, isolation_level=None)
    seq, prev = conn.execute("SELECT seq, entry_hash FROM entries ORDER BY seq DESC").fetchone()
    seq += 1
    digest = entry_hash(prev, seq, sender, payload, signature, 1.0)
    conn.execute(
        "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, sender, payload, signature, 1.0, prev, digest),
    )
    conn.close()
    return seq


def rechain(path: Path) -> None:
    """Recompute every stored hash so the file is self-consistent again."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    prev = GENESIS_HASH
    rows = conn.execute(
        "SELECT seq, sender, payload, signature, timestamp FROM entries ORDER BY seq"
    )
    for seq, sender, payload, signature, ts in rows.fetchall():
        digest = entry_hash(prev, seq, sender, payload, signature, ts)
        conn.execute(
            "UPDATE entries SET prev_hash = ?, entry_hash = ? WHERE seq = ?", (prev, digest, seq)
        )
        prev = digest
    conn.close()


def _post_many(path: Path, keyring: Keyring, sender: str, count: int) -> None:
    with LocalLedger(path, keyring) as led:
        for i in range(count):
            led.post(envelope(sender, f"{sender} {i}"))


def _post_later(path: Path, keyring: Keyring, delay: float) -> None:
    time.sleep(delay)
    _post_many(path, keyring, "bob", 1)


def test_implements_channel(ledger: LocalLedger) -> None:
    assert isinstance(ledger, Channel)


def test_post_and_history_keep_order(ledger: LocalLedger) -> None:
    receipts = [ledger.post(envelope(p, f"m{i}")) for i, p in enumerate(PARTIES)]
    assert [r.seq for r in receipts] == [1, 2, 3, 4]
    entries = ledger.history()
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert [e.envelope for e in entries] == [envelope(p, f"m{i}") for i, p in enumerate(PARTIES)]
    assert [e.seq for e in ledger.history(2)] == [3, 4]
    assert ledger.history(4) == []
    assert ledger.history(99) == []
    assert ledger.verify_all() == 4


def test_history_is_readable_by_a_second_reader(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "ledger.db"
    with LocalLedger(path, keyring) as writer, LocalLedger(path, keyring) as reader:
        post_texts(writer, 3)
        assert [e.envelope.payload for e in reader.history()] == [
            b"message 1",
            b"message 2",
            b"message 3",
        ]


def test_post_by_unknown_sender_is_refused(ledger: LocalLedger) -> None:
    with pytest.raises(ChannelError, match="unknown sender 'mallory'"):
        ledger.post(envelope("mallory", "hi", MALLORY))
    assert ledger.verify_all() == 0


def test_post_with_bad_signature_is_refused(ledger: LocalLedger) -> None:
    with pytest.raises(ChannelError, match="bad signature"):
        ledger.post(envelope("alice", "hi", KEYS["bob"]))
    with pytest.raises(ChannelError, match="bad signature"):
        ledger.post(SignedEnvelope("alice", b"hi", b""))
    assert ledger.verify_all() == 0


def test_ledger_file_is_append_only(ledger: LocalLedger) -> None:
    post_texts(ledger, 2)
    conn = sqlite3.connect(ledger.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE entries SET payload = x'00' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM entries WHERE seq = 2")
    conn.close()
    assert ledger.verify_all() == 2


def test_concurrent_appends_from_processes_form_a_gapless_chain(
    tmp_path: Path, keyring: Keyring
) -> None:
    path = tmp_path / "ledger.db"  # created concurrently by the workers themselves
    workers = [
        _SPAWN.Process(target=_post_many, args=(path, keyring, name, 25)) for name in PARTIES
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with LocalLedger(path, keyring) as led:
        assert led.verify_all() == 100
        entries = led.history()
    assert [e.seq for e in entries] == list(range(1, 101))
    for name in PARTIES:
        mine = [e.envelope.payload for e in entries if e.envelope.sender == name]
        assert mine == [f"{name} {i}".encode() for i in range(25)]


def test_tampered_payload_is_detected(ledger: LocalLedger, keyring: Keyring) -> None:
    post_texts(ledger, 4)
    tamper(ledger.path, "UPDATE entries SET payload = ? WHERE seq = 2", b"message 666")
    with pytest.raises(ChannelError, match="seq 2: entry hash mismatch"):
        ledger.history()
    with (
        LocalLedger(ledger.path, keyring) as fresh,
        pytest.raises(ChannelError, match="seq 2: entry hash mismatch"),
    ):
        fresh.verify_all()


def test_tampered_payload_with_recomputed_chain_fails_signature(
    ledger: LocalLedger, keyring: Keyring
) -> None:
    post_texts(ledger, 4)
    tamper(ledger.path, "UPDATE entries SET payload = ? WHERE seq = 3", b"message 666")
    rechain(ledger.path)
    with (
        LocalLedger(ledger.path, keyring) as fresh,
        pytest.raises(ChannelError, match="seq 3: invalid signature from 'carol'"),
    ):
        fresh.history()


def test_swapped_entries_are_detected(ledger: LocalLedger, keyring: Keyring) -> None:
    post_texts(ledger, 5)
    swap(ledger.path, 3, 4)
    with LocalLedger(ledger.path, keyring) as fresh:
        with pytest.raises(ChannelError, match="seq 3: broken hash chain"):
            fresh.history()
        with pytest.raises(ChannelError, match="seq 3: broken hash chain"):
            fresh.history(4)  # seq 4 still needs a verified seq 3 to link to


def test_consistent_rewrite_of_verified_history_is_detected(
    ledger: LocalLedger, keyring: Keyring
) -> None:
    post_texts(ledger, 4)
    assert ledger.verify_all() == 4
    swap(ledger.path, 3, 4)
    rechain(ledger.path)
    with LocalLedger(ledger.path, keyring) as fresh:
        assert fresh.verify_all() == 4  # self-consistent and validly signed: a new reader agrees
    with pytest.raises(ChannelError, match="seq 3: entry differs from the one verified earlier"):
        ledger.history(2)


def test_deleted_tail_of_verified_history_is_detected(ledger: LocalLedger) -> None:
    post_texts(ledger, 3)
    assert ledger.verify_all() == 3
    tamper(ledger.path, "DELETE FROM entries WHERE seq = 3")
    with pytest.raises(ChannelError, match="seq 3: entry missing"):
        ledger.history(3)


def test_gap_in_seq_is_detected(ledger: LocalLedger, keyring: Keyring) -> None:
    post_texts(ledger, 3)
    tamper(ledger.path, "DELETE FROM entries WHERE seq = 2")
    with (
        LocalLedger(ledger.path, keyring) as fresh,
        pytest.raises(ChannelError, match="seq 2: entry missing"),
    ):
        fresh.history()


def test_stray_row_before_genesis_is_detected(ledger: LocalLedger) -> None:
    post_texts(ledger, 1)
    tamper(ledger.path, "UPDATE entries SET seq = 0 WHERE seq = 1")
    with pytest.raises(ChannelError, match="seq 0: stray entry"):
        ledger.verify_all()


def test_empty_signature_is_detected(ledger: LocalLedger) -> None:
    post_texts(ledger, 2)
    seq = forge_append(ledger.path, "alice", b"forged", b"")
    with pytest.raises(ChannelError, match=f"seq {seq}: missing signature from 'alice'"):
        ledger.history()


def test_wrong_signature_is_detected(ledger: LocalLedger) -> None:
    post_texts(ledger, 2)
    seq = forge_append(ledger.path, "alice", b"forged", KEYS["bob"].sign(b"forged"))
    with pytest.raises(ChannelError, match=f"seq {seq}: invalid signature from 'alice'"):
        ledger.history(2)


def test_entry_by_unknown_sender_is_detected(ledger: LocalLedger) -> None:
    post_texts(ledger, 2)
    seq = forge_append(ledger.path, "mallory", b"hi", MALLORY.sign(b"hi"))
    with pytest.raises(ChannelError, match=f"seq {seq}: unknown sender 'mallory'"):
        ledger.wait(0, timeout=0)


def test_polling_verifies_only_new_entries(tmp_path: Path, keyring: Keyring) -> None:
    class CountingKeyring(Keyring):
        __slots__ = ("calls",)

        def verify(self, sender: str, data: bytes, signature: bytes) -> bool:
            self.calls += 1
            return super().verify(sender, data, signature)

    counting = CountingKeyring(keyring)
    counting.calls = 0
    with LocalLedger(tmp_path / "ledger.db", counting) as led:
        post_texts(led, 10)
        counting.calls = 0
        assert len(led.history(8)) == 2
        assert counting.calls == 10  # first read verifies from genesis
        counting.calls = 0
        assert led.history(10) == []
        assert counting.calls == 0
        led.post(envelope("alice", "new"))
        counting.calls = 0
        assert [e.seq for e in led.history(10)] == [11]
        assert counting.calls == 1


def test_wait_times_out_with_empty_list(ledger: LocalLedger) -> None:
    post_texts(ledger, 1)
    start = time.monotonic()
    assert ledger.wait(1, timeout=0.2) == []
    assert time.monotonic() - start >= 0.2


def test_wait_returns_existing_entries_at_once(ledger: LocalLedger) -> None:
    post_texts(ledger, 2)
    assert [e.seq for e in ledger.wait(0, timeout=5)] == [1, 2]


def test_wait_sees_entries_posted_by_another_process(ledger: LocalLedger, keyring: Keyring) -> None:
    post_texts(ledger, 1)
    worker = _SPAWN.Process(target=_post_later, args=(ledger.path, keyring, 0.3))
    worker.start()
    try:
        entries = ledger.wait(1, timeout=60)
    finally:
        worker.join(timeout=60)
    assert worker.exitcode == 0
    assert [(e.seq, e.envelope.sender) for e in entries] == [(2, "bob")]


def test_closed_ledger_raises(tmp_path: Path, keyring: Keyring) -> None:
    led = LocalLedger(tmp_path / "ledger.db", keyring)
    led.close()
    led.close()
    with pytest.raises(ChannelError, match="closed"):
        led.history()


def test_non_database_file_is_channel_error(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "ledger.db"
    path.write_bytes(b"not a database, just some bytes" * 100)
    with pytest.raises(ChannelError, match="cannot open ledger"):
        LocalLedger(path, keyring)


def test_open_channel_registry(tmp_path: Path, keyring: Keyring) -> None:
    channel = open_channel("local", keyring=keyring, path=tmp_path / "ledger.db")
    try:
        assert isinstance(channel, LocalLedger)
        assert channel.post(envelope("alice", "hi")).seq == 1
    finally:
        channel.close()
    with pytest.raises(ValueError, match="local"):
        open_channel("carrier-pigeon", keyring=keyring)
