"""The ``local`` object store: a directory on this machine (DESIGN.md section 5).

It is the embedded default that lets one laptop run a whole session with no services. Keys
map one-to-one onto relative paths under the root, and an object's URI is
``local://<key>``. Every write goes to a temporary file in the target directory, is
fsynced, and is renamed into place (``os.replace``), so a reader sees the old object, the
new one, or nothing: never a torn write, even if the writer crashes.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO

from zkadapt.atomic_file import atomic_writer
from zkadapt.errors import StorageError
from zkadapt.storage.base import ObjectRef
from zkadapt.storage.integrity import HashingReader, read_chunks, verified_bytes, write_verified
from zkadapt.storage.write_once import existing_or_refuse

SCHEME = "local://"
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise ValueError.

    A key is ``/``-separated segments of ``[A-Za-z0-9._-]``. No segment may be empty or
    start with a dot: that rules out ``..`` (escaping the root), ``.``, and collisions with
    the store's hidden temporary files. Absolute paths are rejected.

    Raises:
        ValueError: ``key`` is not a str or is not a safe key (the message says why).
    """
    if not isinstance(key, str):
        raise ValueError(f"object key must be a str, got {type(key).__name__}")
    if not key or key.startswith("/"):
        raise ValueError(f"object key must be a non-empty relative path, got {key!r}")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"object key {key!r}: segment {segment!r} must be non-empty, use only "
                "[A-Za-z0-9._-] and not start with '.'"
            )
    return key


class LocalStore:
    """An :class:`~zkadapt.storage.base.ObjectStore` over a directory.

    Putting a key again replaces the object atomically (S3 semantics); a reference to the
    old bytes then fails :meth:`get` with IntegrityError instead of returning new bytes.
    Files are created with mode 0600 (:func:`~zkadapt.atomic_file.atomic_writer`'s default):
    objects are private to the user running the parties.
    """

    def __init__(self, root: Path) -> None:
        """Open (and create if needed) the store rooted at ``root``.

        Raises:
            StorageError: ``root`` cannot be created or is not a directory.
        """
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"{SCHEME}{self.root}", f"cannot create store root: {exc.strerror}"
            ) from None

    def uri(self, key: str) -> str:
        """The URI of ``key`` in this backend (``local://<key>``)."""
        return SCHEME + validate_key(key)

    def location_of(self, party: str) -> str:
        """Every party shares the one directory, so its location is the scheme itself.

        Object keys carry the party name, so ``local://`` + the key still pins the writer.
        """
        return SCHEME

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        """Store ``data`` under ``key`` atomically and once (temp file, fsync, ``os.link``).

        Objects are write-once (:mod:`zkadapt.storage.write_once`): the same bytes again
        return the same reference; other bytes under an existing key raise ObjectExists.

        Args:
            key: a safe relative key, e.g. ``object_key(...)``.
            data: the object's bytes, or a binary stream copied to its end.

        Returns:
            The reference to publish: URI, sha256 and size.

        Raises:
            ValueError: ``key`` is unsafe, or ``data`` is neither bytes nor a stream.
            StorageError: the file system refused the write.
        """
        uri = self.uri(key)
        if isinstance(data, (bytes, bytearray, memoryview)):
            source: BinaryIO = io.BytesIO(bytes(data))
        elif hasattr(data, "read"):
            source = data
        else:
            raise ValueError(f"object data must be bytes or a stream, got {type(data).__name__}")
        path = self.root / key
        reader = HashingReader(source)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_writer(path, overwrite=False) as tmp:  # linked in: never replaces
                for chunk in read_chunks(reader):
                    tmp.write(chunk)
        except FileExistsError:
            ref = ObjectRef(uri=uri, sha256=reader.sha256, size=reader.size)
            return existing_or_refuse(self, ref)  # write-once: same bytes, or refused
        except OSError as exc:
            raise StorageError(uri, f"cannot write: {exc.strerror}") from None
        return ObjectRef(uri=uri, sha256=reader.sha256, size=reader.size)

    def get(self, ref: ObjectRef) -> bytes:
        """Return the bytes behind ``ref`` after checking their size and sha256.

        ``ref`` usually comes from another party's channel message, so a URI for another
        backend or an unsafe key is a StorageError, not a ValueError.

        Raises:
            StorageError: wrong scheme or unsafe key, object missing or unreadable.
            IntegrityError: the stored bytes have another size or digest than ``ref``.
        """
        with self._open(ref) as f:
            try:
                return verified_bytes(ref, read_chunks(f))
            except OSError as exc:
                raise StorageError(ref.uri, f"cannot read: {exc.strerror}") from None

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        """Copy the object behind ``ref`` to ``dest``; ``dest`` appears only when verified.

        Raises:
            StorageError: as :meth:`get`, or ``dest`` cannot be written.
            IntegrityError: the stored bytes do not match ``ref``.
        """
        with self._open(ref) as f:
            try:
                write_verified(ref, read_chunks(f), dest)
            except OSError as exc:
                raise StorageError(ref.uri, f"cannot copy to {dest}: {exc.strerror}") from None

    def _open(self, ref: ObjectRef) -> BinaryIO:
        path = self._path_of(ref.uri)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise StorageError(ref.uri, "object not found") from None
        except OSError as exc:
            raise StorageError(ref.uri, f"cannot read: {exc.strerror}") from None

    def get_key(self, uri: str, max_bytes: int) -> bytes:
        """The bytes under another party's fixed key (``local://<key>``), unverified: for
        objects that carry their own signatures (the escrow's ballots after a premature
        close, :mod:`zkadapt.escrow.ballot`), whose digest nobody could post.

        Raises:
            StorageError: not a ``local://`` URI of a safe key, missing, unreadable, or more
                than ``max_bytes`` long.
        """
        with self._open(ObjectRef(uri, "", 0)) as f:
            try:
                data = f.read(max_bytes + 1)
            except OSError as exc:
                raise StorageError(uri, f"cannot read: {exc.strerror}") from None
        if len(data) > max_bytes:
            raise StorageError(uri, f"larger than {max_bytes} bytes")
        return data

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` (ValueError for an unsafe key)."""
        return (self.root / validate_key(key)).is_file()

    def list(self, prefix: str = "") -> list[str]:
        """Keys that start with ``prefix`` (a plain string prefix, as in S3), sorted.

        Raises:
            ValueError: ``prefix`` contains characters or segments a key cannot have.
        """
        if prefix:
            validate_key(prefix + "x" if prefix.endswith("/") else prefix)
        base = self.root / prefix.rpartition("/")[0]
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                key = name if rel == "." else f"{rel}/{name}"
                if not name.startswith(".") and key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def _path_of(self, uri: str) -> Path:
        """The file behind a ``local://`` URI (StorageError for anything else)."""
        if not isinstance(uri, str) or not uri.startswith(SCHEME):
            raise StorageError(str(uri), f"not a {SCHEME} URI; this store is {SCHEME}{self.root}")
        try:
            key = validate_key(uri[len(SCHEME) :])
        except ValueError as exc:
            raise StorageError(uri, str(exc)) from None
        return self.root / key

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"
