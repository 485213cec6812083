"""Digests and size checks shared by every backend: nothing unverified is ever returned.

An :class:`~zkadapt.storage.base.ObjectRef` names an object *and* what it must hash to. Each
backend streams the stored bytes through :func:`verified_bytes` or :func:`write_verified`,
which count and hash as they read, stop one byte past the expected size (so a huge object
planted by a peer is never read in full), and raise
:class:`~zkadapt.errors.IntegrityError` before any byte reaches the caller. Streaming
uploads go through :class:`HashingReader`, which hashes the bytes as the backend reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from zkadapt.atomic_file import atomic_writer
from zkadapt.errors import IntegrityError
from zkadapt.storage.base import ObjectRef

#: Read size for streaming copies (1 MiB: large enough for throughput, small for memory).
CHUNK = 1 << 20


def check_size_and_digest(ref: ObjectRef, size: int, digest: str) -> None:
    """Raise IntegrityError unless ``size``/``digest`` are what ``ref`` promises.

    ``size`` may be ``ref.size + 1`` to mean "longer than expected" (readers stop there).
    """
    if size != ref.size:
        got = f"{size}" if size <= ref.size else f"more than {ref.size}"
        raise IntegrityError(ref.uri, f"size mismatch: expected {ref.size} bytes, found {got}")
    if digest != ref.sha256:
        raise IntegrityError(ref.uri, f"sha256 mismatch: expected {ref.sha256}, found {digest}")


def bounded_chunks(ref: ObjectRef, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield ``chunks`` but never more than ``ref.size + 1`` bytes in total."""
    budget = max(ref.size, 0) + 1
    for chunk in chunks:
        if not chunk:
            continue
        if len(chunk) >= budget:
            yield chunk[:budget]
            return
        budget -= len(chunk)
        yield chunk


def verified_bytes(ref: ObjectRef, chunks: Iterable[bytes]) -> bytes:
    """Join ``chunks`` after checking their total size and sha256 against ``ref``.

    Raises:
        IntegrityError: wrong size (too short or too long) or wrong digest.
    """
    data = b"".join(bounded_chunks(ref, chunks))
    check_size_and_digest(ref, len(data), hashlib.sha256(data).hexdigest())
    return data


def write_verified(ref: ObjectRef, chunks: Iterable[bytes], dest: Path) -> None:
    """Stream ``chunks`` into ``dest``; the file appears only if size and sha256 match.

    The bytes go to a temporary file beside ``dest`` that is renamed into place after the
    check (:func:`~zkadapt.atomic_file.atomic_writer`), so a reader of ``dest`` never sees a
    partial or unverified object.

    Raises:
        IntegrityError: wrong size or digest (``dest`` is left untouched).
        OSError: the file system refused the write.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dest) as tmp:
        hasher, size = hashlib.sha256(), 0
        for chunk in bounded_chunks(ref, chunks):
            hasher.update(chunk)
            size += len(chunk)
            tmp.write(chunk)
        check_size_and_digest(ref, size, hasher.hexdigest())


class Readable(Protocol):
    """Anything with a binary ``read``: files, sockets' makefile, :class:`HashingReader`."""

    def read(self, n: int = -1, /) -> bytes: ...


def place_verified(ref: ObjectRef, fill: Callable[[BinaryIO], None], dest: Path) -> None:
    """Let ``fill`` write a temporary file beside ``dest``; rename it there once verified.

    For writers that seek (parallel ranged downloads): the file is hashed after ``fill``.

    Raises:
        IntegrityError: wrong size or digest (``dest`` is left untouched).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dest) as tmp:
        fill(tmp)
        tmp.flush()
        tmp.seek(0)
        hasher, size = hashlib.sha256(), 0
        for chunk in bounded_chunks(ref, read_chunks(tmp)):
            hasher.update(chunk)
            size += len(chunk)
        check_size_and_digest(ref, size, hasher.hexdigest())


def read_chunks(stream: Readable, size: int = CHUNK) -> Iterator[bytes]:
    """Yield a binary stream's content in chunks of at most ``size`` bytes."""
    while chunk := stream.read(size):
        yield chunk


def is_seekable(stream: Any) -> bool:
    """Whether ``stream`` can be rewound to retry an upload from its start."""
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class HashingReader:
    """A read-only, non-seekable view of a binary stream that hashes what is read.

    Backends read uploads through it, so the sha256 and size of a streamed object come
    from the very bytes that were sent (no second pass over a file larger than memory).
    It is deliberately not seekable: multipart uploaders then read it strictly in order.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all when negative) and hash them."""
        chunk = self._stream.read(n)
        if chunk:
            self._hasher.update(chunk)
            self.size += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        """Hex digest of everything read so far."""
        return self._hasher.hexdigest()
