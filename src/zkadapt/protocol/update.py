"""The stored form of one party's update (privacy scheme ``none``): a safetensors file.

The object binds itself to its session, round and party in its header, so a replayed
(earlier round) or copied (another party's) object is recognised and rejected with a
specific reason instead of being averaged in (DESIGN.md section 3, COLLECT).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from zkadapt.bounded_json import loads_bounded

#: Largest safetensors header parsed (an honest one is ~200 bytes).
MAX_UPDATE_HEADER = 64 * 1024

#: Header tag of the plaintext update format.
PLAIN_UPDATE_FORMAT = "zkadapt-update/plain-v1"


class UpdateRejected(Exception):
    """An update failed verification; ``reason`` is what gets posted in ``Rejected``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def party_location(store: Any, party: str) -> str:
    """Where ``party`` may write in ``store`` (:meth:`ObjectStore.location_of`); a party the
    store gives no place (a newcomer the storage templates cannot place on its own) has
    its objects rejected, never crashes the reader.

    Raises:
        UpdateRejected: ``party`` has no storage location.
    """
    try:
        return str(store.location_of(party))
    except ValueError:
        raise UpdateRejected("the party has no storage location of its own") from None


@dataclass(frozen=True)
class PlainUpdate:
    """A float32 delta over the flat trainable vector, with its binding."""

    session: str
    round: int
    party: str
    n_samples: int
    delta: np.ndarray

    def to_bytes(self) -> bytes:
        """Serialize as safetensors with a string header (no pickling), byte-reproducibly.

        The same update must give the same bytes in every process, so that a party that
        uploads it again (after a crash) cannot break the digest already on the channel.
        ``safetensors.save`` writes its metadata map in a per-process random order, so the
        header is written here with sorted keys (any safetensors reader loads it).
        """
        meta = {
            "format": PLAIN_UPDATE_FORMAT,
            "session": self.session,
            "round": str(self.round),
            "party": self.party,
            "n_samples": str(self.n_samples),
        }
        return canonical_safetensors("delta", self.delta, meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> PlainUpdate:
        """Parse an update object.

        Raises:
            UpdateRejected: ``malformed object`` with the detail of what is wrong.
        """
        try:
            tensors = st_load(data)
            meta = _header(data)
        except (SafetensorError, ValueError, OSError, struct.error) as exc:
            raise UpdateRejected(f"malformed object: {exc}") from None
        if meta.get("format") != PLAIN_UPDATE_FORMAT or set(tensors) != {"delta"}:
            raise UpdateRejected("malformed object: not a plain update")
        delta = tensors["delta"]
        if delta.dtype != np.float32 or delta.ndim != 1:
            raise UpdateRejected("malformed object: delta must be a 1-D float32 tensor")
        try:
            round_, n_samples = int(meta["round"]), int(meta["n_samples"])
            session, party = meta["session"], meta["party"]
        except (KeyError, ValueError):
            raise UpdateRejected("malformed object: incomplete header") from None
        return cls(session, round_, party, n_samples, delta)

    def check_binding(
        self, *, session: str, round_: int, party: str, n_samples: int, length: int
    ) -> None:
        """Check the object is the one its ``Submitted`` message claims.

        Raises:
            UpdateRejected: with reason ``wrong session``, ``replay`` (an earlier round's
                object), ``copied object`` (another party's), ``malformed object``.
        """
        if self.session != session:
            raise UpdateRejected("wrong session")
        if self.round != round_:
            raise UpdateRejected(f"replay: object is for round {self.round}")
        if self.party != party:
            raise UpdateRejected(f"copied object: it belongs to {self.party}")
        if self.n_samples != n_samples:
            raise UpdateRejected("malformed object: n_samples differs from the Submitted message")
        if self.delta.shape != (length,):
            raise UpdateRejected(
                f"malformed object: delta has {self.delta.size} values, expected {length}"
            )
        if not np.all(np.isfinite(self.delta)):
            raise UpdateRejected("malformed object: non-finite values")


def canonical_safetensors(name: str, array: np.ndarray, metadata: dict[str, str]) -> bytes:
    """One float32 tensor as a safetensors file whose bytes depend only on the inputs.

    Layout (safetensors format): an 8-byte little-endian header length, the JSON header (here
    with sorted keys and no spaces, padded with spaces to a multiple of 8 as the reference
    writer does), then the little-endian float32 data.
    """
    values = np.ascontiguousarray(array, dtype="<f4")
    header = {
        "__metadata__": metadata,
        name: {"dtype": "F32", "shape": list(values.shape), "data_offsets": [0, values.nbytes]},
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + values.tobytes()


def _header(data: bytes) -> dict[str, str]:
    (length,) = struct.unpack("<Q", data[:8])
    header = loads_bounded(data[8 : 8 + length], max_bytes=MAX_UPDATE_HEADER)
    if not isinstance(header, dict):
        raise ValueError("header is not a mapping")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a mapping")
    return meta
