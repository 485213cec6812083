"""A channel envelope as Cardano transaction metadata (CIP-10 label, 64-byte chunks).

Transaction metadata (Shelley ledger, CDDL ``transaction_metadatum``) is a map from unsigned
labels (CIP-10 registry) to values built from maps, lists, integers, byte strings and text
strings, where every byte or text string is at most 64 bytes. A signed envelope travels
under :data:`METADATA_LABEL` as::

    {31339: {"v": 1,                  # this layout's version
             "from": "alice",         # the sender's party name (<= 64 UTF-8 bytes)
             "sig": h'...64 bytes',   # Ed25519 signature of the payload (identity key)
             "msg": ["...", ...]}}    # the payload in chunks of <= 64 bytes

The payload is split into text strings when it is UTF-8 (canonical JSON always is; cuts
fall on character boundaries, so explorers show readable text, as CIP-20 messages do) and
into byte strings otherwise. Decoding is strict: anything else is a
:class:`MalformedEnvelope`, which the channel records as a rejected transaction.

>>> from zkadapt.channel.base import SignedEnvelope
>>> env = SignedEnvelope("alice", b'{"a":1}', bytes(64))
>>> decode_envelope(encode_envelope(env)[METADATA_LABEL]) == env
True
"""

from __future__ import annotations

from typing import Any

from zkadapt.channel.base import SignedEnvelope
from zkadapt.errors import ChannelError

#: CIP-10 metadata label of ZK-ADAPT channel messages (0x7a6b, "zk").
METADATA_LABEL = 31339
#: Version of the layout under the label.
LAYOUT_VERSION = 1
#: Longest byte or text string allowed in transaction metadata (Shelley ledger rule).
MAX_CHUNK_BYTES = 64
_SIGNATURE_BYTES = 64
_KEYS = frozenset({"v", "from", "sig", "msg"})


class MalformedEnvelope(ChannelError):
    """Metadata under our label that is not a well-formed envelope (a peer's fault)."""


def chunk_payload(payload: bytes) -> list[str] | list[bytes]:
    """Split ``payload`` into <= 64-byte text strings if it is UTF-8, else byte strings.

    Text chunks never split a character, so each one is valid UTF-8 on its own.
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return [payload[i : i + MAX_CHUNK_BYTES] for i in range(0, len(payload), MAX_CHUNK_BYTES)]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > MAX_CHUNK_BYTES:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        chunks.append("".join(current))
    return chunks


def encode_envelope(envelope: SignedEnvelope) -> dict[int, dict[str, Any]]:
    """The metadata map ``{METADATA_LABEL: {...}}`` that carries ``envelope``.

    Raises:
        ValueError: the sender name is empty or longer than 64 UTF-8 bytes, or the
            signature is not 64 bytes (a programming error: envelopes are built locally).
    """
    sender = envelope.sender.encode("utf-8")
    if not 0 < len(sender) <= MAX_CHUNK_BYTES:
        raise ValueError(f"sender name must be 1..{MAX_CHUNK_BYTES} UTF-8 bytes")
    if len(envelope.signature) != _SIGNATURE_BYTES:
        raise ValueError(f"signature must be {_SIGNATURE_BYTES} bytes")
    body = {
        "v": LAYOUT_VERSION,
        "from": envelope.sender,
        "sig": bytes(envelope.signature),
        "msg": chunk_payload(envelope.payload),
    }
    return {METADATA_LABEL: body}


def decode_envelope(value: object) -> SignedEnvelope:
    """The envelope carried by the metadatum ``value`` found under :data:`METADATA_LABEL`.

    Raises:
        MalformedEnvelope: wrong keys, types, version, chunk sizes or signature length.
    """
    if not isinstance(value, dict) or set(value) != _KEYS:
        raise MalformedEnvelope(f"metadata label {METADATA_LABEL}: expected keys {sorted(_KEYS)}")
    version, sender, signature, chunks = value["v"], value["from"], value["sig"], value["msg"]
    if version != LAYOUT_VERSION or isinstance(version, bool):
        raise MalformedEnvelope(f"unsupported envelope layout version {version!r}")
    if not isinstance(sender, str) or not sender:
        raise MalformedEnvelope("sender must be a non-empty text string")
    if not isinstance(signature, bytes) or len(signature) != _SIGNATURE_BYTES:
        raise MalformedEnvelope(f"signature must be {_SIGNATURE_BYTES} bytes")
    if not isinstance(chunks, list):
        raise MalformedEnvelope("msg must be a list of chunks")
    return SignedEnvelope(sender=sender, payload=_join(chunks), signature=signature)


def _join(chunks: list[object]) -> bytes:
    """Reassemble chunks that are all text or all bytes, each within the 64-byte limit."""
    if all(isinstance(c, str) for c in chunks):
        parts = [c.encode("utf-8") for c in chunks]  # type: ignore[union-attr]
    elif all(isinstance(c, bytes) for c in chunks):
        parts = list(chunks)  # type: ignore[arg-type]
    else:
        raise MalformedEnvelope("msg chunks must be all text or all byte strings")
    if any(len(p) > MAX_CHUNK_BYTES for p in parts):
        raise MalformedEnvelope(f"a msg chunk exceeds {MAX_CHUNK_BYTES} bytes")
    return b"".join(parts)  # type: ignore[arg-type]
