"""How an update is sealed, checked and averaged: the ``privacy.scheme`` seam of a round.

The round protocol (:mod:`zkadapt.protocol.round`) does not know whether updates travel
in the clear or encrypted. It asks an :class:`UpdateScheme` to

* ``prepare`` a round (e.g. make sure a threshold key for the round's epoch is dealt),
* ``seal`` this party's delta into the bytes it uploads,
* ``open`` another party's bytes (raising :class:`UpdateRejected` with a specific reason),
* ``mean_delta`` of the accepted updates — for encrypted updates this is where the
  homomorphic sum, decryption shares and combination happen.

Every honest party must get bit-identical results from ``mean_delta`` on the same accepted
set: that is what lets ``RoundDone`` digests agree (DESIGN.md section 3).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from zkadapt.aggregation.codec import FlatCodec
from zkadapt.aggregation.strategy import Strategy
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import Message, Submitted
from zkadapt.protocol.update import PlainUpdate
from zkadapt.storage.base import ObjectStore


class RoundIO(Protocol):
    """What a scheme may use of the running round protocol (one party's view)."""

    @property
    def ctx(self) -> Any: ...  # PartyContext; Any avoids an import cycle

    @property
    def codec(self) -> FlatCodec: ...

    @property
    def history(self) -> SessionHistory: ...

    @property
    def store(self) -> ObjectStore: ...

    @property
    def identity(self) -> Any: ...  # IdentityKey

    def post(self, message: Message) -> None: ...

    def sync(self, wait: float = 0.0) -> None: ...

    def emit(self, round_: int, phase: Any, detail: str) -> None: ...


class UpdateScheme(Protocol):
    """Seal, open and average updates (one implementation per ``privacy.scheme``)."""

    name: str
    #: Seconds spent in scheme-specific steps of the last ``mean_delta`` (e.g. decryption).
    timings: dict[str, float]

    def prepare(self, round_: int, io: RoundIO) -> None:
        """Get ready for ``round_`` (key dealing, joining); called before training."""
        ...

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """The object this party uploads for ``round_``."""
        ...

    def open(self, round_: int, sub: Submitted, data: bytes, io: RoundIO) -> Any:
        """Parse and check another party's object; raises UpdateRejected."""
        ...

    def mean_delta(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> np.ndarray:
        """Weighted mean delta of the accepted updates (identical in every honest party)."""
        ...


class PlainScheme:
    """``privacy.scheme = "none"``: float32 deltas in the clear, FedAvg-weighted by samples."""

    name = "none"

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.timings: dict[str, float] = {}

    def prepare(self, round_: int, io: RoundIO) -> None:
        """Nothing to set up."""

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """A safetensors object bound to session, round and party."""
        return PlainUpdate(io.ctx.session_id, round_, io.ctx.party, n_samples, delta).to_bytes()

    def open(self, round_: int, sub: Submitted, data: bytes, io: RoundIO) -> PlainUpdate:
        """Parse and check the binding (replay, copy, shape, finite values)."""
        update = PlainUpdate.from_bytes(data)
        update.check_binding(
            session=io.ctx.session_id,
            round_=round_,
            party=sub.party,
            n_samples=sub.n_samples,
            length=io.codec.size,
        )
        return update

    def mean_delta(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> np.ndarray:
        """Sample-weighted mean, accumulated in party-name order."""
        names = sorted(accepted)
        return self.strategy.mean_delta(
            [accepted[n].delta for n in names], [float(accepted[n].n_samples) for n in names]
        )
