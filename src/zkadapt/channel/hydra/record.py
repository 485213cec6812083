"""A persisted copy of a Hydra head's confirmed transactions: the channel after fanout.

A head's order lives in its nodes. Once the head is fanned out, or a node restarts with
fresh state, or the nodes are simply shut down, nobody can ask for the session's channel
any more. So every party (and ``zkadapt run``) keeps what its client saw: each confirmed
snapshot as the node sent it (number, the transactions as signed, the outputs a deposit
brought in or a decommit took out), and the head's ``HeadIsClosed`` and
``HeadIsFinalized``. A reader that finds the head gone checks such a copy
(:mod:`zkadapt.channel.hydra.replay`) and reads the channel from it
(:mod:`zkadapt.channel.hydra.archive`); docs/hydra.md, "Reading a finished session".

The file is JSON lines, appended as snapshots arrive (a crash loses at most the line being
written, which the reader ignores)::

    {"copy": "zkadapt-hydra-channel", "version": 1, "head_id": "<32 hex>", "node": "host:port"}
    {"snapshot": 1, "timestamp": 1718000000.1, "confirmed": [Transaction, ...],
     "utxoToCommit": UTxO | null, "utxoToDecommit": UTxO | null}
    {"event": "HeadIsClosed", "snapshot": 7}
    {"event": "HeadIsFinalized", "utxo": UTxO}

(``Transaction`` and ``UTxO`` as in api.yaml.) A copy is a file anyone could have edited:
:func:`load_copy` parses it totally, and nothing in it is believed before the replay
checks it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from zkadapt.bounded_json import loads_bounded
from zkadapt.channel.hydra.view import HeadView
from zkadapt.channel.hydra.wire import HydraProtocolError, SnapshotConfirmed, TxEnvelope
from zkadapt.errors import ChannelError

log = logging.getLogger(__name__)

#: The first line's ``copy`` tag and layout version.
COPY_TAG = "zkadapt-hydra-channel"
COPY_VERSION = 1
#: File name of a copy, in ``OUT/`` (``zkadapt run``) and ``OUT/parties/<name>/`` (a party).
COPY_FILE = "hydra-channel.jsonl"
#: Largest copy read (a transaction carries at most ~16 KiB; this is far above a session).
MAX_COPY_BYTES = 1 << 30
#: Largest line (one snapshot of many transactions).
MAX_LINE_BYTES = 64 << 20
_HEAD_ID = frozenset("0123456789abcdef")


class CopyError(ChannelError):
    """A persisted copy of the channel cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class CopiedSnapshot:
    """One confirmed snapshot as the client saw it."""

    number: int
    timestamp: float | None
    confirmed: tuple[TxEnvelope, ...]
    utxo_to_commit: dict[str, Any] | None = None
    utxo_to_decommit: dict[str, Any] | None = None


@dataclass
class ChannelCopy:
    """A parsed copy: the head, its snapshots in file order, and how the head ended."""

    path: Path
    head_id: str
    node: str
    snapshots: list[CopiedSnapshot] = field(default_factory=list)
    closed_snapshot: int | None = None
    finalized_utxo: dict[str, Any] | None = None

    @property
    def last_snapshot(self) -> int:
        return self.snapshots[-1].number if self.snapshots else 0


def load_copy(path: Path) -> ChannelCopy:
    """Parse the copy at ``path``; an unfinished last line (a crash while writing) is ignored.

    Raises:
        CopyError: the file cannot be read, is too big, or a line is not what it must be.
    """
    try:
        size = path.stat().st_size
        if size > MAX_COPY_BYTES:
            raise CopyError(f"{path}: {size:,} bytes, more than a copy may hold")
        data = path.read_bytes()
    except OSError as exc:
        raise CopyError(f"{path}: cannot read the copy ({exc.strerror})") from None
    lines = data.split(b"\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # not ended by a newline: the write was cut off
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise CopyError(f"{path}: empty copy")
    header = _line(path, 1, lines[0])
    copy = _header(path, header)
    for number, raw in enumerate(lines[1:], start=2):
        _fold(copy, number, _line(path, number, raw))
    return copy


def _line(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        value = loads_bounded(raw, max_bytes=MAX_LINE_BYTES)
    except ValueError as exc:
        raise CopyError(f"{path}, line {number}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CopyError(f"{path}, line {number}: not a JSON object")
    return value


def _header(path: Path, header: dict[str, Any]) -> ChannelCopy:
    if header.get("copy") != COPY_TAG or header.get("version") != COPY_VERSION:
        raise CopyError(f"{path}: not a version-{COPY_VERSION} copy of a hydra channel")
    head, node = header.get("head_id"), header.get("node", "")
    if not (isinstance(head, str) and len(head) == 32 and set(head) <= _HEAD_ID):
        raise CopyError(f"{path}, line 1: head_id must be 32 lowercase hex digits")
    return ChannelCopy(path, head, node if isinstance(node, str) else "")


def _fold(copy: ChannelCopy, number: int, line: dict[str, Any]) -> None:
    where = f"{copy.path}, line {number}"
    if "snapshot" in line and "event" not in line:
        copy.snapshots.append(_snapshot(where, line))
        return
    event = line.get("event")
    if event == "HeadIsClosed":
        closed = line.get("snapshot")
        if not _natural(closed):
            raise CopyError(f"{where}: HeadIsClosed needs a snapshot number")
        copy.closed_snapshot = closed
    elif event == "HeadIsFinalized":
        copy.finalized_utxo = _utxo(where, line.get("utxo"), "utxo", optional=False)
    else:
        raise CopyError(f"{where}: neither a snapshot nor a head event")


def _snapshot(where: str, line: dict[str, Any]) -> CopiedSnapshot:
    number, stamp, txs = line["snapshot"], line.get("timestamp"), line.get("confirmed")
    if not _natural(number) or number < 1:
        raise CopyError(f"{where}: the snapshot number must be a positive integer")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, (int, float))):
        raise CopyError(f"{where}: timestamp must be a number")
    if not isinstance(txs, list):
        raise CopyError(f"{where}: confirmed must be a list of transactions")
    try:
        confirmed = tuple(TxEnvelope.from_json(tx) for tx in txs)
    except HydraProtocolError as exc:
        raise CopyError(f"{where}: {exc}") from None
    return CopiedSnapshot(
        number,
        float(stamp) if stamp is not None else None,
        confirmed,
        _utxo(where, line.get("utxoToCommit"), "utxoToCommit"),
        _utxo(where, line.get("utxoToDecommit"), "utxoToDecommit"),
    )


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _utxo(where: str, value: object, key: str, *, optional: bool = True) -> dict[str, Any] | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise CopyError(f"{where}: {key} must be a UTxO object")
    return value


def snapshot_line(snapshot: SnapshotConfirmed) -> dict[str, Any]:
    """The copy's line for a confirmed snapshot."""
    return {
        "snapshot": snapshot.number,
        "timestamp": snapshot.timestamp,
        "confirmed": [tx.to_json() for tx in snapshot.confirmed],
        "utxoToCommit": snapshot.utxo_to_commit,
        "utxoToDecommit": snapshot.utxo_to_decommit,
    }


class CopyRecorder:
    """Appends what a client's :class:`HeadView` confirms to the copy at ``path``.

    Called after every server output (:meth:`sync`); it writes the bound head's snapshots
    it has not written yet, then its close and fanout, once each. A copy left by an earlier
    run of the same party (a restart) is continued; one of another head is left alone and
    nothing is written (``disabled`` says why). A write that fails disables the recorder
    with a warning instead of stopping the client: the channel itself is unaffected.

    Args:
        path: the copy's file (its folder is created).
        node: the node API it is read from (kept in the header, informative).
    """

    def __init__(self, path: Path, node: str) -> None:
        self.path = path
        self.node = node
        self.disabled: str | None = None
        self._head: str | None = None
        self._written = 0  # the last snapshot number in the file
        self._seen = 0  # how many of the view's snapshots were looked at
        self._closed = False
        self._finalized = False
        self._file: IO[bytes] | None = None

    def sync(self, view: HeadView) -> None:
        """Write what ``view`` confirmed for its bound head since the last call."""
        head = view.log
        if self.disabled is not None or head is None or not head.snapshots:
            return
        try:
            if self._file is None:
                self._open(head.head_id)
                if self.disabled is not None:
                    return
            fresh = head.snapshots[self._seen :]
            lines = [snapshot_line(s) for s in fresh if s.number > self._written]
            if head.closed_snapshot is not None and not self._closed:
                lines.append({"event": "HeadIsClosed", "snapshot": head.closed_snapshot})
            if head.finalized_utxo is not None and not self._finalized:
                lines.append({"event": "HeadIsFinalized", "utxo": head.finalized_utxo})
            if lines:
                self._append(lines)
            self._seen = len(head.snapshots)
            self._written = max(self._written, head.last_snapshot)
            self._closed = self._closed or head.closed_snapshot is not None
            self._finalized = self._finalized or head.finalized_utxo is not None
        except OSError as exc:
            self._disable(f"cannot write {self.path}: {exc.strerror or exc}")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self, head_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size:
            try:
                earlier = load_copy(self.path)
            except CopyError as exc:
                self._disable(f"{exc}; not continued")
                return
            if earlier.head_id != head_id:
                self._disable(f"{self.path} is a copy of head {earlier.head_id}, not {head_id}")
                return
            self._written = earlier.last_snapshot
            self._closed = earlier.closed_snapshot is not None
            self._finalized = earlier.finalized_utxo is not None
            _cut_unfinished_line(self.path)
            self._file = self.path.open("ab")
            return
        self._file = self.path.open("ab")
        header = {"copy": COPY_TAG, "version": COPY_VERSION, "head_id": head_id, "node": self.node}
        self._append([header])

    def _append(self, lines: list[dict[str, Any]]) -> None:
        if self._file is None:  # pragma: no cover - sync opens it first
            return
        text = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        self._file.write(text.encode())
        self._file.flush()
        os.fsync(self._file.fileno())

    def _disable(self, why: str) -> None:
        self.disabled = why
        self.close()
        log.warning("not recording the hydra channel: %s", why)


def _cut_unfinished_line(path: Path) -> None:
    """Drop a last line that a crash left without its newline, so appends stay lines."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)
