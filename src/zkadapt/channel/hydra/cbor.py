"""Raw CBOR spans of a Cardano transaction: its id is the hash of the bytes as sent.

A transaction id is ``blake2b-256`` of the transaction body *exactly as serialized*
(Cardano ledger spec, CDDL ``transaction = [body, witness_set, bool, auxiliary_data / null]``),
and ``auxiliary_data_hash`` is ``blake2b-256`` of the auxiliary data as serialized. Decoding
and re-encoding (as PyCardano does) can change the bytes (set tags 258, map order, indefinite
lengths), so a verifier must hash the original spans. This module finds them without
decoding, using only RFC 8949 item headers.

>>> split_array(bytes.fromhex("83010203"))
[b'\\x01', b'\\x02', b'\\x03']
"""

from __future__ import annotations

import hashlib

from zkadapt.errors import ChannelError

_BREAK = 0xFF


class MalformedCbor(ChannelError):
    """Bytes that are not the CBOR item they claim to be (a peer's fault, never a crash)."""


def blake2b_256(data: bytes) -> bytes:
    """The 32-byte BLAKE2b digest Cardano uses for transaction ids and data hashes."""
    return hashlib.blake2b(data, digest_size=32).digest()


def blake2b_224(data: bytes) -> bytes:
    """The 28-byte BLAKE2b digest Cardano uses for key hashes (CIP-19 credentials)."""
    return hashlib.blake2b(data, digest_size=28).digest()


def _argument(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """Major type, argument (None for indefinite length) and the offset after the header."""
    if pos >= len(data):
        raise MalformedCbor("CBOR item truncated")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise MalformedCbor("CBOR header truncated")
        return major, int.from_bytes(data[pos : pos + size], "big"), pos + size
    if info == 31 and major in (2, 3, 4, 5, 7):
        return major, None, pos
    raise MalformedCbor(f"reserved CBOR additional info {info} at offset {pos - 1}")


def item_end(data: bytes, pos: int = 0, depth: int = 0) -> int:
    """Offset just past the CBOR data item that starts at ``pos``.

    Raises:
        MalformedCbor: the item is truncated, uses reserved encodings or nests too deep.
    """
    if depth > 256:
        raise MalformedCbor("CBOR nesting too deep")
    major, arg, pos = _argument(data, pos)
    if major in (0, 1):
        return pos
    if major in (2, 3):
        if arg is None:  # indefinite string: definite chunks until break
            while True:
                if pos >= len(data):
                    raise MalformedCbor("indefinite string truncated")
                if data[pos] == _BREAK:
                    return pos + 1
                pos = item_end(data, pos, depth + 1)
        if pos + arg > len(data):
            raise MalformedCbor("CBOR string truncated")
        return pos + arg
    if major in (4, 5):
        per_entry = 1 if major == 4 else 2
        if arg is None:
            while True:
                if pos >= len(data):
                    raise MalformedCbor("indefinite container truncated")
                if data[pos] == _BREAK:
                    return pos + 1
                pos = item_end(data, pos, depth + 1)
        for _ in range(arg * per_entry):
            pos = item_end(data, pos, depth + 1)
        return pos
    if major == 6:
        return item_end(data, pos, depth + 1)
    if arg is None:  # major 7 with info 31 outside a container is a stray break
        raise MalformedCbor("unexpected CBOR break")
    return pos


def split_array(data: bytes) -> list[bytes]:
    """The raw bytes of each element of the CBOR array that is the whole of ``data``.

    Raises:
        MalformedCbor: ``data`` is not exactly one CBOR array.
    """
    major, count, pos = _argument(data, 0)
    if major != 4:
        raise MalformedCbor("expected a CBOR array")
    items: list[bytes] = []
    while count is None or len(items) < count:
        if count is None:
            if pos >= len(data):
                raise MalformedCbor("indefinite array truncated")
            if data[pos] == _BREAK:
                pos += 1
                break
        end = item_end(data, pos)
        items.append(data[pos:end])
        pos = end
    if pos != len(data):
        raise MalformedCbor(f"{len(data) - pos} trailing bytes after the CBOR array")
    return items


def encode_array(items: list[bytes]) -> bytes:
    """A definite-length CBOR array of already encoded ``items`` (kept byte for byte)."""
    n = len(items)
    if n < 24:
        header = bytes([0x80 | n])
    elif n < 256:
        header = bytes([0x98, n])
    else:
        header = bytes([0x99]) + n.to_bytes(2, "big")
    return header + b"".join(items)
