"""Write-once objects: a key that holds bytes never gets other bytes (issue 17).

Every reference a party posts on the channel names an object by URI and digest. If anyone —
the same party started twice, a rerun of the session into another output directory, a
resumed party that seals its update again — could replace the bytes under a URI, the
channel's digest would stop matching and honest readers would reject an update that was
valid when it was accepted; the audit of a finished session would fail from then on.

So every backend's ``put`` is idempotent and never overwrites: the same bytes under an
existing key return the existing reference, other bytes are refused with
:class:`ObjectExists`. The local store does this atomically (the object is hard-linked into
place, which fails if the name exists); bucket stores check before they upload, which a
concurrent writer of the same key could race (the per-party lock of ``zkadapt.locks`` keeps
a second process of one party from starting). Protocol objects are also content-addressed
(:func:`zkadapt.protocol.publishing.publish` puts their digest in the key), so an honest
party never meets the refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from zkadapt.errors import IntegrityError, StorageError
from zkadapt.storage.base import ObjectRef, ObjectStore, sha256_hex
from zkadapt.storage.integrity import read_chunks


class ObjectExists(StorageError):
    """The key already holds other bytes; objects are write-once."""


def existing_or_refuse(store: ObjectStore, ref: ObjectRef) -> ObjectRef:
    """``ref`` when the object already stored at ``ref.uri`` has exactly its bytes.

    Args:
        store: the backend that found ``ref.uri`` taken.
        ref: URI, digest and size of the bytes the caller wanted to store.

    Raises:
        ObjectExists: the stored bytes differ.
        StorageError: the stored object cannot be read back.
    """
    try:
        store.get(ref)
    except IntegrityError:
        raise ObjectExists(
            ref.uri,
            "already holds other bytes, and objects are write-once (is this party running "
            "twice, or is a second run writing into the first one's store?)",
        ) from None
    return ref


def taken_by(
    store: ObjectStore,
    key: str,
    uri: str,
    data: bytes | BinaryIO,
    *,
    exists: Callable[[str], bool] | None = None,
) -> ObjectRef | None:
    """If ``key`` is taken in ``store``'s own location: the ref of the same bytes, or refused.

    Returns None when the key is free, or when the store cannot say (it is unreachable: the
    caller's upload then meets the outage and reports it in its own words). A stream is
    read to its end to compare it, only when the key is taken (which an honest party meets
    after a crash).

    Args:
        exists: the probe (default ``store.exists``), e.g. one that does not retry.
    """
    try:
        if not (exists or store.exists)(key):
            return None
    except StorageError:
        return None
    if isinstance(data, (bytes, bytearray, memoryview)):
        body = bytes(data)
    else:
        body = b"".join(read_chunks(data))
    return existing_or_refuse(store, ObjectRef(uri, sha256_hex(body), len(body)))
