"""The object store seen by the round protocol (DESIGN.md section 5).

Updates, checkpoints and key material travel as immutable objects under keys of the form
``zkadapt/<session>/round-<r>/<kind>/<party>.bin``. Every object is addressed by an
:class:`ObjectRef` that carries its sha256, and :meth:`ObjectStore.get` refuses bytes that
do not match it, so nothing truncated or tampered with is ever used.

Each party writes only under its own *location* (a bucket and prefix: ``s3://zkadapt-alice/``;
the whole directory for ``local``) and reads the others'. :meth:`ObjectStore.location_of`
lets the protocol reject an update whose URI is not where its sender may write.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectRef:
    """Where an object lives and what it must hash to.

    Attributes:
        uri: backend-specific address, e.g. ``local://zkadapt/<session>/round-1/update/alice.bin``.
        sha256: lowercase hex digest of the object's bytes.
        size: length in bytes.
    """

    uri: str
    sha256: str
    size: int


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data`` (the digest format used everywhere in ZK-ADAPT)."""
    return hashlib.sha256(data).hexdigest()


def object_key(session_id: str, round_: int, kind: str, party: str) -> str:
    """The canonical key of a party's object for one round (DESIGN.md section 5).

    :func:`content_key` turns it into the key actually written (the digest of the bytes in
    the name); sessions recorded before that hold objects under this key itself.
    """
    return f"zkadapt/{session_id}/round-{round_}/{kind}/{party}.bin"


#: Hex digits of the content digest that :func:`content_key` puts into a key.
CONTENT_DIGITS = 16


def content_key(key: str, data: bytes) -> str:
    """``key`` with the first 64 bits of ``sha256(data)`` before its extension.

    ``.../update/alice.bin`` becomes ``.../update/alice.3f2a9c0d1e7b5a64.bin``: a key that
    names its bytes, so two runs of one session (or a party that seals its update again)
    never write different bytes under one key, and the same bytes land on the same key
    (issue 17). The channel message still carries the full digest.
    """
    stem, dot, ext = key.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = key, ""
    digest = sha256_hex(data)[:CONTENT_DIGITS]
    return f"{stem}.{digest}" + (f".{ext}" if ext else "")


def is_key_of(key: str, canonical: str) -> bool:
    """Whether ``key`` is ``canonical`` itself or :func:`content_key` of it for some bytes."""
    if key == canonical:
        return True
    stem, _, ext = canonical.rpartition(".")
    if not (key.startswith(stem + ".") and key.endswith("." + ext)):
        return False
    middle = key[len(stem) + 1 : len(key) - len(ext) - 1]
    return len(middle) == CONTENT_DIGITS and all(c in "0123456789abcdef" for c in middle)


@runtime_checkable
class ObjectStore(Protocol):
    """Put and get immutable objects; every read is checked against its digest."""

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        """Store ``data`` (bytes, or a binary stream read to its end) under ``key``.

        The object is written to this party's own location, atomically: readers see the
        old object, the new one, or nothing. Streams may be larger than memory.
        """
        ...

    def get(self, ref: ObjectRef) -> bytes:
        """Return the bytes behind ``ref``.

        Raises:
            StorageError: the object is missing or unreadable.
            IntegrityError: the bytes do not hash to ``ref.sha256`` (or have the wrong size).
        """
        ...

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        """Stream the object behind ``ref`` into the file ``dest`` (for large objects).

        ``dest`` appears only after its size and sha256 matched ``ref``.

        Raises:
            StorageError: the object is missing or unreadable.
            IntegrityError: the bytes do not match ``ref``; ``dest`` is left untouched.
        """
        ...

    def location_of(self, party: str) -> str:
        """The URI prefix under which ``party`` writes; ``location_of(p) + key`` is its URI."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key`` in this party's own location."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` in this party's own location, sorted."""
        ...
