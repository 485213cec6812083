"""Protocol objects in the store: one way to publish them, one way to fetch and check them.

Every object a party hands to the others — its update, its decryption shares, a dealt key,
a distributed key-generation message — travels the same way (DESIGN.md sections 3 and 5):
the bytes go into the sender's own location in the store, and a signed channel message
carries their reference ``(uri, sha256, size)``. The channel entry authenticates the bytes:
whoever fetches them checks the digest before reading a single field.

* :func:`publish` is the only writer: store the objects, build the announcing message from
  their references, post it.
* :func:`fetch_checked` is the only reader: refuse an oversized reference before fetching,
  fetch, check the digest (the store does), then hand the bytes to the caller's parser and
  verifier. Every failure is an :class:`~zkadapt.protocol.update.UpdateRejected` whose
  reason is what goes into ``Rejected`` ("digest mismatch", "object unavailable: ...").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from zkadapt.errors import IntegrityError, StorageError
from zkadapt.protocol.update import UpdateRejected
from zkadapt.storage.base import ObjectRef, ObjectStore, content_key

_Message = TypeVar("_Message")
_Parsed = TypeVar("_Parsed")

#: Bytes allowed beyond an object's payload for its header and proof (proofs are a few KiB).
OBJECT_SLACK_BYTES = 1 << 20


def publish(
    store: ObjectStore,
    post: Callable[[_Message], object],
    objects: Mapping[str, bytes],
    announce: Callable[[dict[str, ObjectRef]], _Message],
) -> _Message:
    """Store ``objects`` (store key -> bytes) in order, then post ``announce(refs)``.

    The message is posted only after every object is stored, so no reference on the channel
    ever points at an object that is not there yet. Each object is written under
    :func:`~zkadapt.storage.base.content_key` of its key (the digest of its bytes in the
    name), so publishing the same bytes again is a no-op and different bytes never replace
    what a posted reference names; ``announce`` still receives the refs keyed like
    ``objects``.

    Args:
        store: the sender's own store (it writes only under its own location).
        post: signs and posts a message for the sender (a party, or the key-generation centre).
        objects: what to store, keyed by store key (insertion order is the write order).
        announce: builds the message from the references, keyed like ``objects``.

    Returns:
        The posted message.
    """
    refs = {key: store.put(content_key(key, data), data) for key, data in objects.items()}
    message = announce(refs)
    post(message)
    return message


def fetch_checked(
    store: ObjectStore,
    ref: ObjectRef,
    check: Callable[[bytes], _Parsed],
    *,
    max_size: int | None = None,
) -> _Parsed:
    """Fetch the object behind ``ref``, check its digest, then parse and verify it with ``check``.

    Args:
        store: where the object is read from (any party's location).
        ref: the reference a signed channel message carried.
        check: parses and verifies the bytes; raises ``UpdateRejected`` with its own reason.
        max_size: refuse a reference declaring more bytes than this, before fetching (a peer
            cannot make the others download an unbounded object).

    Raises:
        UpdateRejected: ``object too large: ...``, ``digest mismatch``,
            ``object unavailable: ...``, or whatever ``check`` raises.
    """
    if max_size is not None and ref.size > max_size:
        raise UpdateRejected(f"object too large: {ref.size} bytes, at most {max_size} expected")
    try:
        data = store.get(ref)
    except IntegrityError:
        raise UpdateRejected("digest mismatch") from None
    except StorageError as exc:
        raise UpdateRejected(f"object unavailable: {exc}") from None
    return check(data)


def fetch_bytes(store: ObjectStore, ref: ObjectRef, *, max_size: int | None = None) -> bytes:
    """:func:`fetch_checked` for callers that parse the bytes themselves."""
    return fetch_checked(store, ref, lambda data: data, max_size=max_size)
