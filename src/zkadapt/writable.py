"""Where a local file-system failure is the user's to fix: one line naming the path.

An ``--out`` under a regular file, a folder without write permission, or an output folder
made read-only mid-round used to end in a 40-line ``PermissionError`` after a long hang
(issue 17). :func:`ensure_out_dir` checks ``--out`` before anything starts;
:func:`local_write_failure` recognises the same faults later, even when a local store has
already wrapped them in a :class:`~zkadapt.errors.StorageError`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from zkadapt.errors import OutputError, UsageError

#: ``errno`` values that mean "this path cannot be written here", not a passing fault.
_LOCAL_WRITE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENOSPC,
        errno.EDQUOT,
    }
)


def ensure_out_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove it writable, or raise one line naming it.

    Raises:
        UsageError: ``path`` (or a folder above it) is a file, or the folder is not writable.
    """
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "is a file" if blocker == path else f"is under {blocker}, which is a file"
        raise UsageError(f"{option} {path} {where}; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {path} is not writable: {exc.strerror}") from None
    return path


def local_write_failure(exc: BaseException) -> OutputError | None:
    """The :class:`OutputError` that ``exc`` stands for, or None for any other failure.

    Follows ``__cause__`` and ``__context__``, because the local store re-raises a failed
    write as a ``StorageError`` ``from None`` (the context is kept even then).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _LOCAL_WRITE_ERRNOS:
            path = current.filename or getattr(exc, "uri", None) or "a local file"
            return OutputError(str(path), current.strerror or str(current))
        current = current.__cause__ or current.__context__
    return None
