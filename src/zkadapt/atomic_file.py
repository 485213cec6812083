"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every write goes to a temporary file in the destination's directory (the same file system,
so the final rename is atomic), is flushed and fsynced, and only then takes the
destination's name with ``os.replace`` (or ``os.link``, where nothing may be replaced). A
crash or an exception at any point leaves the old file, or no file, and removes the
temporary one. The directory is fsynced after the rename so that the rename itself is
durable: without it, the new bytes can be on disk while the directory still names the old
file.

This is a leaf module: it imports nothing from zkadapt, so storage, crypto, learning and the
report can all use it without import cycles.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_writer", "fsync_dir", "write_atomic"]


@contextlib.contextmanager
def atomic_writer(
    path: Path | str, *, mode: int | None = None, overwrite: bool = True
) -> Iterator[BinaryIO]:
    """Yield a binary file that becomes ``path`` when the ``with`` block ends normally.

    For data that is streamed, hashed or checked while it is written: raise inside the block
    (e.g. on a digest mismatch) and ``path`` is left as it was, the temporary file is
    removed and the exception propagates unchanged. The file is open for reading too
    (``w+b``), so a writer may seek and read back what it wrote.

    The temporary file is ``.<name>.<random>.tmp`` beside ``path``: hidden, and never a
    name a caller would pick.

    Args:
        path: the destination; its directory must exist.
        mode: permission bits for the new file, set before it gets its name; ``None`` keeps
            ``mkstemp``'s 0600.
        overwrite: if False, the file is hard-linked to ``path`` instead of renamed over it,
            so an existing ``path`` is never replaced, even by a racing writer.

    Raises:
        FileExistsError: ``overwrite`` is False and ``path`` exists.
        OSError: the temporary file cannot be created, written, synced or moved into place.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w+b") as tmp:
            yield tmp
            tmp.flush()
            if mode is not None:
                os.fchmod(tmp.fileno(), mode)
            os.fsync(tmp.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)
            os.unlink(tmp_name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_dir(path.parent)


def write_atomic(
    path: Path | str, data: bytes, *, mode: int | None = None, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically and durably (see :func:`atomic_writer`).

    Raises:
        FileExistsError: ``overwrite`` is False and ``path`` exists.
        OSError: the file system refused the write; ``path`` is unchanged.
    """
    with atomic_writer(path, mode=mode, overwrite=overwrite) as out:
        out.write(data)


def fsync_dir(directory: Path | str) -> None:
    """fsync ``directory`` so that a rename or link into it survives a crash.

    Best effort: a platform that cannot open or fsync a directory skips it (the write it
    follows is atomic either way; only its durability is at stake).
    """
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
