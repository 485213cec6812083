"""Stored forms of encrypted updates and decryption shares: compact fixed-width binary.

Layout of every object (no pickle, one boundary per type)::

    b"ZKAO" | u32 header length | canonical JSON header | count x width big-endian integers | tail

The header binds the object to its session, round, party and key id and carries the
public packing parameters, so a replayed, copied or re-keyed object is recognised before
any arithmetic (issue 4: "Ciphertext objects: compact fixed-width binary"). The tail holds
the object's zero-knowledge proof (canonical JSON of :mod:`zkadapt.crypto.proofs`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zkadapt.bounded_json import JsonLimitError, loads_bounded
from zkadapt.protocol.update import UpdateRejected

MAGIC = b"ZKAO"
UPDATE_FORMAT = "zkadapt-update/paillier-v1"
SHARES_FORMAT = "zkadapt-shares/paillier-v1"
_MAX_HEADER = 1 << 16


def encode_object(header: dict[str, Any], values: Sequence[int], width: int, tail: bytes) -> bytes:
    """Serialize a header, fixed-width integers and a tail (see the module docstring)."""
    full = {**header, "count": len(values), "width": width, "tail_bytes": len(tail)}
    head = json.dumps(full, sort_keys=True, separators=(",", ":")).encode()
    body = b"".join(int(v).to_bytes(width, "big") for v in values)
    return MAGIC + struct.pack(">I", len(head)) + head + body + tail


def decode_object(data: bytes, fmt: str) -> tuple[dict[str, Any], list[int], bytes]:
    """Parse :func:`encode_object` output of format ``fmt``.

    Raises:
        UpdateRejected: ``malformed object`` with what is wrong.
    """
    if len(data) < 8 or data[:4] != MAGIC:
        raise UpdateRejected("malformed object: bad magic")
    (length,) = struct.unpack(">I", data[4:8])
    if length > _MAX_HEADER or 8 + length > len(data):
        raise UpdateRejected("malformed object: bad header length")
    try:
        header = loads_bounded(data[8 : 8 + length], max_bytes=_MAX_HEADER)
    except JsonLimitError as exc:
        raise UpdateRejected(f"malformed object: header: {exc}") from None
    if not isinstance(header, dict) or header.get("format") != fmt:
        raise UpdateRejected(f"malformed object: not a {fmt} object")
    count, width, tail_len = header.get("count"), header.get("width"), header.get("tail_bytes")
    if not all(type(v) is int and v >= 0 for v in (count, width, tail_len)) or width == 0:
        raise UpdateRejected("malformed object: bad count, width or tail")
    start = 8 + length
    if len(data) != start + count * width + tail_len:
        raise UpdateRejected("malformed object: truncated or padded")
    values = [
        int.from_bytes(data[start + i * width : start + (i + 1) * width], "big")
        for i in range(count)
    ]
    return header, values, data[start + count * width :]


@dataclass(frozen=True)
class EncryptedUpdate:
    """A party's packed, encrypted update for one round, with its proof of knowledge."""

    session: str
    round: int
    party: str
    key_id: str
    packing: dict[str, Any]
    length: int
    n_samples: int
    ciphertexts: tuple[int, ...]
    proof: bytes

    def to_bytes(self, width: int) -> bytes:
        """Serialize with ciphertexts of ``width`` bytes (2·⌈|N|/8⌉)."""
        header = {
            "format": UPDATE_FORMAT,
            "session": self.session,
            "round": self.round,
            "party": self.party,
            "key_id": self.key_id,
            "packing": self.packing,
            "length": self.length,
            "n_samples": self.n_samples,
        }
        return encode_object(header, self.ciphertexts, width, self.proof)

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedUpdate:
        """Parse; raises UpdateRejected (``malformed object``)."""
        header, values, tail = decode_object(data, UPDATE_FORMAT)
        try:
            return cls(
                _str(header, "session"),
                _int(header, "round"),
                _str(header, "party"),
                _str(header, "key_id"),
                _dict(header, "packing"),
                _int(header, "length"),
                _int(header, "n_samples"),
                tuple(values),
                tail,
            )
        except (KeyError, TypeError):
            raise UpdateRejected("malformed object: incomplete header") from None


@dataclass(frozen=True)
class ShareBundle:
    """A party's decryption shares of one round's aggregate ciphertexts, with their proof."""

    session: str
    round: int
    party: str
    key_id: str
    index: int
    shares: tuple[int, ...]
    proof: bytes

    def to_bytes(self, width: int) -> bytes:
        """Serialize with shares of ``width`` bytes."""
        header = {
            "format": SHARES_FORMAT,
            "session": self.session,
            "round": self.round,
            "party": self.party,
            "key_id": self.key_id,
            "index": self.index,
        }
        return encode_object(header, self.shares, width, self.proof)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareBundle:
        """Parse; raises UpdateRejected (``malformed object``)."""
        header, values, tail = decode_object(data, SHARES_FORMAT)
        try:
            return cls(
                _str(header, "session"),
                _int(header, "round"),
                _str(header, "party"),
                _str(header, "key_id"),
                _int(header, "index"),
                tuple(values),
                tail,
            )
        except (KeyError, TypeError):
            raise UpdateRejected("malformed object: incomplete header") from None


def _str(header: dict[str, Any], key: str) -> str:
    value = header[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value


def _int(header: dict[str, Any], key: str) -> int:
    value = header[key]
    if type(value) is not int:
        raise TypeError(key)
    return value


def _dict(header: dict[str, Any], key: str) -> dict[str, Any]:
    value = header[key]
    if not isinstance(value, dict):
        raise TypeError(key)
    return value
