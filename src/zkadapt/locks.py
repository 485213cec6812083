"""Exclusive locks that keep two processes from acting as one party, or running one ``--out``.

A party started twice, or ``zkadapt run`` started twice on one output directory, used to
overwrite the other's update objects and checkpoints while both exited 0 (issue 17). Each
party now holds ``OUT/parties/<name>/party.lock`` for as long as it runs, and ``zkadapt run``
holds ``OUT/run.lock``. The lock is an advisory ``flock`` on an open file: the kernel drops it
when the holder exits or is killed, so a crash never leaves a stale lock behind. The file
records who holds it (pid, host, start time, command line), so the refusal names the holder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from zkadapt.errors import ZkAdaptError

#: Lock file of one party inside its home folder, and of a whole ``zkadapt run``.
PARTY_LOCK = "party.lock"
RUN_LOCK = "run.lock"


class LockHeld(ZkAdaptError):
    """Another live process holds the lock; the message names it (exit code 2: a usage error)."""

    exit_code = 2


class ExclusiveLock:
    """An exclusive, non-blocking lock on ``path``, held until :meth:`release` or exit.

    Args:
        path: the lock file (created with its folder if missing).
        what: what the lock protects, for the refusal ("party alice of session 3d60e12b").
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path, self.what = Path(path), what
        self._fd: int | None = None

    def acquire(self) -> ExclusiveLock:
        """Take the lock or refuse at once.

        Raises:
            LockHeld: another process holds it (the message says which, and since when).
            OSError: the lock file cannot be created (the caller reports the folder).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise LockHeld(
                f"{self.what} is already running ({holder}); stop it first or use another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_me()).encode("utf-8"), 0)
        self._fd = fd
        return self

    def fileno(self) -> int | None:
        """The open lock file's descriptor while held (a forked child closes its copy)."""
        return self._fd

    def release(self) -> None:
        """Drop the lock (the file stays; it says who held it last)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ExclusiveLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _me() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)),
    }


def _read_holder(fd: int) -> dict[str, object]:
    """What the holder wrote; an empty or foreign file gives an empty record (never raises)."""
    try:
        data = os.pread(fd, 4096, 0)
        record = json.loads(data.decode("utf-8")) if data else {}
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if not holder.get("pid"):
        return "held by another process"
    text = f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"
    command = str(holder.get("command", ""))[:120]
    return f"{text}: {command}" if command else text
