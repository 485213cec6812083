"""Atomic file writes: old file or new file, never half of one, and never a stray temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zkadapt import atomic_file
from zkadapt.atomic_file import atomic_writer, fsync_dir, write_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    write_atomic(str(path), b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_default_mode_is_private_and_mode_is_applied(tmp_path: Path) -> None:
    write_atomic(tmp_path / "private", b"x")
    assert _mode(tmp_path / "private") == 0o600
    write_atomic(tmp_path / "shared", b"x", mode=0o644)
    assert _mode(tmp_path / "shared") == 0o644
    write_atomic(tmp_path / "shared", b"y", mode=0o640)  # replacing sets the new mode
    assert _mode(tmp_path / "shared") == 0o640


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    error = ValueError("digest mismatch")
    with pytest.raises(ValueError) as info, atomic_writer(path) as out:
        out.write(b"new bytes that must never show")
        raise error
    assert info.value is error  # propagated unchanged
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_interrupt_mid_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with pytest.raises(KeyboardInterrupt), atomic_writer(path) as out:
        out.write(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_failed_fsync_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic_file.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_failed_rename_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "d"
    (target / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced
    with pytest.raises(OSError):
        write_atomic(target, b"x")
    assert sorted(os.listdir(tmp_path)) == ["d"]
    assert os.listdir(target) == ["inside"]


def test_missing_directory_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "absent" / "f.bin", b"x")


def test_no_overwrite_creates_but_never_replaces(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_atomic(path, b"secret", mode=0o600, overwrite=False)
    assert path.read_bytes() == b"secret"
    assert _mode(path) == 0o600
    with pytest.raises(FileExistsError):
        write_atomic(path, b"other", overwrite=False)
    assert path.read_bytes() == b"secret"
    assert os.listdir(tmp_path) == ["key"]


def test_streamed_writer_can_seek_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with atomic_writer(path) as out:
        out.write(b"hello world")
        out.seek(0)
        assert out.read() == b"hello world"
        out.seek(6)
        out.write(b"WORLD")
        assert not path.exists()  # nothing visible before the block ends
    assert path.read_bytes() == b"hello WORLD"


def test_file_and_directory_are_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[tuple[bool, bytes | None]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        synced.append((is_dir, None if is_dir else os.pread(fd, 100, 0)))
        real_fsync(fd)

    monkeypatch.setattr(atomic_file.os, "fsync", recording_fsync)
    write_atomic(tmp_path / "f.bin", b"payload")
    assert synced == [(False, b"payload"), (True, None)]  # the data, then the rename


def test_fsync_dir_is_best_effort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fsync_dir(tmp_path / "absent")  # cannot be opened: skipped
    closed: list[int] = []
    real_close = os.close

    def broken_fsync(fd: int) -> None:
        raise OSError(22, "Invalid argument")

    def recording_close(fd: int) -> None:
        closed.append(fd)
        real_close(fd)

    monkeypatch.setattr(atomic_file.os, "fsync", broken_fsync)
    monkeypatch.setattr(atomic_file.os, "close", recording_close)
    fsync_dir(tmp_path)  # fsync refused: skipped, and the descriptor is still closed
    assert len(closed) == 1
