"""The ``local`` channel: an append-only, hash-chained SQLite ledger (DESIGN.md section 6).

It is the embedded default: every party of a ``zkadapt run`` opens the same file, each from
its own OS process. SQLite in WAL mode gives one total order (appends take the write lock
with ``BEGIN IMMEDIATE``; readers never block), and triggers abort any UPDATE or DELETE.

Each entry is chained to its predecessor::

    entry_hash = sha256(lp(DOMAIN) | lp(prev_hash) | lp(seq) | lp(sender) | lp(payload)
                        | lp(signature) | lp(timestamp))

where ``lp(x)`` is ``x`` prefixed by its 8-byte big-endian length, ``seq`` is 8 bytes
big-endian, ``timestamp`` an IEEE-754 double, and the genesis ``prev_hash`` is 64 zeros.

What the chain catches: someone with write access to the file who edits, drops, inserts or
reorders entries without recomputing the chain is caught on the next read, and an entry
that is not signed by its sender under the session keyring is refused on read. A reader
also remembers the hash of every entry it has verified, so a later *consistent* rewrite of
what it has already seen is caught too. A consistent rewrite of entries nobody has read yet
can only be caught by comparing with other parties (the round protocol's agreed digests).
"""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from zkadapt.channel.base import Entry, Receipt, SignedEnvelope
from zkadapt.channel.outsiders import OutsiderKeys, OutsiderPolicy
from zkadapt.errors import ChannelError

if TYPE_CHECKING:
    from zkadapt.crypto.identity import Keyring

GENESIS_HASH = "0" * 64
POLL_INTERVAL_S = 0.05
BUSY_TIMEOUT_S = 30.0
SCHEMA_VERSION = 1
_DOMAIN = b"zkadapt/local-ledger/v1"
_COLUMNS = "seq, sender, payload, signature, timestamp, prev_hash, entry_hash"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        seq INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        payload BLOB NOT NULL,
        signature BLOB NOT NULL,
        timestamp REAL NOT NULL,
        prev_hash TEXT NOT NULL,
        entry_hash TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'zkadapt ledger is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'zkadapt ledger is append-only'); END""",
)


def entry_hash(
    prev_hash: str, seq: int, sender: str, payload: bytes, signature: bytes, timestamp: float
) -> str:
    """The chain hash of one entry (module docstring), as lowercase hex.

    Every field is length-prefixed, so no two different entries encode to the same bytes.
    """
    h = hashlib.sha256()
    fields = (
        _DOMAIN,
        prev_hash.encode("utf-8"),
        seq.to_bytes(8, "big", signed=True),
        sender.encode("utf-8"),
        payload,
        signature,
        struct.pack(">d", timestamp),
    )
    for field in fields:
        h.update(len(field).to_bytes(8, "big"))
        h.update(field)
    return h.hexdigest()


class LocalLedger:
    """A :class:`~zkadapt.channel.base.Channel` on one SQLite file, safe across processes.

    One instance may be shared by the threads of a process (a lock serializes its
    connection); each process opens its own instance on the same path.
    """

    def __init__(
        self, path: Path, keyring: Keyring, *, outsiders: OutsiderPolicy | None = None
    ) -> None:
        """Open (creating if needed) the ledger at ``path``.

        Args:
            path: the SQLite file; its directory must exist.
            keyring: the session's parties; posts and reads are checked against it.
            outsiders: carry envelopes of senders outside ``keyring`` by this policy
                (a session that newcomers may join, :mod:`zkadapt.channel.outsiders`);
                None refuses them.

        Raises:
            ChannelError: the file cannot be opened, is not a ledger, or WAL is unavailable.
        """
        self.path = Path(path)
        self._keyring = keyring
        self._lock = threading.Lock()
        self._hashes = [GENESIS_HASH]  # _hashes[s]: verified hash of entry s (0 = genesis)
        self._outsiders = OutsiderKeys(outsiders) if outsiders is not None else None
        try:
            self._conn: sqlite3.Connection | None = _connect_retrying(self.path)
        except sqlite3.Error as exc:
            raise ChannelError(f"{self.path}: cannot open ledger: {exc}") from None

    def post(self, envelope: SignedEnvelope) -> Receipt:
        """Append ``envelope`` after checking its signature; nothing is written otherwise.

        An outsider's envelope (a sender outside the keyring) is checked, with the write
        lock held, against the introductions already on the ledger
        (:mod:`zkadapt.channel.outsiders`), so that every reader accepts what was written.

        Raises:
            ChannelError: unknown sender, bad signature, an outsider's envelope the policy
                refuses (with its reason), or the database refused the write.
        """
        sender = envelope.sender
        outsider = sender not in self._keyring
        if outsider and self._outsiders is None:
            raise ChannelError(f"{self.path}: unknown sender {sender!r}; not in the keyring")
        if not outsider and not self._keyring.verify(sender, envelope.payload, envelope.signature):
            raise ChannelError(f"{self.path}: bad signature from {sender!r}; nothing posted")
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if self._outsiders is not None and outsider:
                        self._check_outsider(self._outsiders, envelope)
                    row = conn.execute(
                        "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
                    ).fetchone()
                    last_seq, prev = row if row is not None else (0, GENESIS_HASH)
                    seq, now = last_seq + 1, time.time()
                    digest = entry_hash(
                        prev, seq, sender, envelope.payload, envelope.signature, now
                    )
                    conn.execute(
                        f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (seq, sender, envelope.payload, envelope.signature, now, prev, digest),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise ChannelError(f"{self.path}: cannot append: {exc}") from None
        return Receipt(seq=seq)

    def history(self, since: int = 0) -> list[Entry]:
        """Entries with ``seq > since``, in order, each verified before it is returned.

        For every returned entry: seq continuity, the link to its predecessor's hash, its
        stored hash, its sender and signature. Entries verified by an earlier call are
        remembered (their hashes), so polling only verifies what is new or returned.

        Raises:
            ValueError: ``since`` is negative.
            ChannelError: naming the first bad seq and what is wrong with it.
        """
        if since < 0:
            raise ValueError(f"since must be >= 0, got {since}")
        with self._lock:
            return self._read_verified(since)

    def verify_all(self) -> int:
        """Re-check the whole ledger from genesis; return its number of entries.

        Raises:
            ChannelError: as :meth:`history`.
        """
        with self._lock:
            stray = self._select("WHERE seq < 1 ORDER BY seq LIMIT 1")
            if stray:
                raise ChannelError(f"{self.path}: seq {stray[0][0]}: stray entry (seq starts at 1)")
            return len(self._read_verified(0))

    def wait(self, since: int, timeout: float) -> list[Entry]:
        """Poll (every 50 ms) until entries with ``seq > since`` exist; ``[]`` after ``timeout`` s.

        Raises:
            ChannelError: as :meth:`history`.
        """
        deadline = time.monotonic() + timeout
        while True:
            entries = self.history(since)
            remaining = deadline - time.monotonic()
            if entries or remaining <= 0:
                return entries
            time.sleep(min(POLL_INTERVAL_S, remaining))

    def close(self) -> None:
        """Close the connection; later calls raise ChannelError. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> LocalLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalLedger({str(self.path)!r})"

    def _check_outsider(self, keys: OutsiderKeys, envelope: SignedEnvelope) -> None:
        """Refuse an outsider's envelope the policy refuses, after reading every entry
        before it (the caller holds the write lock: nothing lands in between)."""
        self._read_verified(len(self._hashes) - 1)
        found = keys.check(envelope)
        if found.key is None:
            raise ChannelError(f"{self.path}: {found.reason}; nothing posted")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ChannelError(f"{self.path}: ledger is closed")
        return self._conn

    def _read_verified(self, since: int) -> list[Entry]:
        """Read and verify entries after ``min(since, verified)``; return those after ``since``.

        The entry just before the first one read must still carry its remembered hash, since
        the new entries link to it: that also catches a deleted or rewritten tail.
        """
        verified = len(self._hashes) - 1
        start = min(since, verified)
        rows = self._select("WHERE seq >= ? ORDER BY seq", max(start, 1))
        if start > 0:
            if not rows or rows[0][0] != start:
                raise ChannelError(
                    f"{self.path}: seq {start}: entry missing; it was verified earlier "
                    "(entries deleted)"
                )
            if rows[0][6] != self._hashes[start]:
                raise ChannelError(
                    f"{self.path}: seq {start}: entry differs from the one verified earlier "
                    "(history rewritten)"
                )
            rows = rows[1:]
        entries = [self._verify_row(row, expected) for expected, row in enumerate(rows, start + 1)]
        last = start + len(rows)
        if last < verified:
            raise ChannelError(
                f"{self.path}: seq {last + 1}: entry missing; the ledger was verified up to "
                f"seq {verified} (entries deleted)"
            )
        return [e for e in entries if e.seq > since]

    def _select(self, where: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of ``entries`` matching ``where`` (one SELECT, so one consistent snapshot)."""
        try:
            cursor = self._connection().execute(f"SELECT {_COLUMNS} FROM entries {where}", params)
            return cursor.fetchall()
        except sqlite3.Error as exc:
            raise ChannelError(f"{self.path}: cannot read: {exc}") from None

    def _verify_row(self, row: tuple[object, ...], expected: int) -> Entry:
        """Check one row against its predecessor's verified hash; remember its own hash."""
        seq, sender, payload, signature, timestamp, prev, stored = row
        where = f"{self.path}: seq {expected}"
        if seq != expected:
            raise ChannelError(f"{where}: entry missing (next stored entry is seq {seq})")
        if not (
            isinstance(sender, str)
            and isinstance(payload, bytes)
            and isinstance(signature, bytes)
            and isinstance(timestamp, float)
        ):
            raise ChannelError(f"{where}: malformed entry (a column has the wrong type)")
        if prev != self._hashes[expected - 1]:
            raise ChannelError(
                f"{where}: broken hash chain (prev_hash does not match seq {expected - 1}; "
                "entries reordered, inserted or removed)"
            )
        digest = entry_hash(prev, expected, sender, payload, signature, timestamp)
        if digest != stored:
            raise ChannelError(
                f"{where}: entry hash mismatch (payload, sender, signature "
                "or timestamp tampered with)"
            )
        if expected < len(self._hashes) and digest != self._hashes[expected]:
            raise ChannelError(
                f"{where}: entry differs from the one verified earlier (history rewritten)"
            )
        envelope = SignedEnvelope(sender, payload, signature)
        if sender not in self._keyring and self._outsiders is not None:
            found = self._outsiders.judge(envelope)
            if found.key is None:
                raise ChannelError(f"{where}: {found.reason}")
        elif sender not in self._keyring:
            raise ChannelError(f"{where}: unknown sender {sender!r}")
        elif not signature:
            raise ChannelError(f"{where}: missing signature from {sender!r}")
        elif not self._keyring.verify(sender, payload, signature):
            raise ChannelError(f"{where}: invalid signature from {sender!r}")
        if expected == len(self._hashes):
            self._hashes.append(digest)
        return Entry(seq=expected, envelope=envelope, timestamp=timestamp)


def _connect_retrying(path: Path) -> sqlite3.Connection:
    """:func:`_connect`, retried while another process holds the lock it needs.

    SQLite answers "database is locked" at once (without the busy handler) when two
    connections switch a new file to WAL at the same moment, so retry for a bounded time.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.01
    while True:
        try:
            return _connect(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with a busy timeout and make sure the schema exists."""
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"WAL journal mode unavailable (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"unsupported ledger schema version {version}")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return conn
