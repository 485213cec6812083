"""ExclusiveLock: one holder at a time, the refusal names the holder, a dead holder frees it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zkadapt.locks import ExclusiveLock, LockHeld

_HOLD = (
    "import sys, time; from pathlib import Path; from zkadapt.locks import ExclusiveLock; "
    "lock = ExclusiveLock(Path(sys.argv[1]), 'test').acquire(); print('held', flush=True); "
    "time.sleep(60)"
)


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path), "--flag"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "parties" / "alice" / "party.lock"
    proc = _holder(path)
    try:
        with pytest.raises(LockHeld, match=rf"party alice is already running \(pid {proc.pid} on "):
            ExclusiveLock(path, "party alice").acquire()
        with pytest.raises(LockHeld, match=r"--flag"):
            ExclusiveLock(path, "party alice").acquire()
    finally:
        proc.kill()
        proc.wait()
    with ExclusiveLock(path, "party alice"):  # the kernel freed it with the dead process
        assert str(os.getpid()) in path.read_text()


def test_release_lets_the_next_one_in_and_a_lock_is_exclusive_in_one_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.lock"
    first = ExclusiveLock(path, "this output directory").acquire()
    with pytest.raises(LockHeld, match="this output directory is already running"):
        ExclusiveLock(path, "this output directory").acquire()
    first.release()
    second = ExclusiveLock(path, "this output directory").acquire()
    second.release()


def test_a_garbled_lock_file_does_not_break_the_refusal(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = ExclusiveLock(path, "x").acquire()
    path.write_bytes(b"\xff not json")
    try:
        with pytest.raises(LockHeld, match="held by another process"):
            ExclusiveLock(path, "x").acquire()
    finally:
        held.release()
