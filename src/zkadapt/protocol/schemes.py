"""How an update is sealed, checked and averaged: the ``privacy.scheme`` seam of a round.

The round protocol (:mod:`zkadapt.protocol.round`) does not know whether updates travel
in the clear or encrypted. It asks an :class:`UpdateScheme` to

* ``prepare`` a round (e.g. make sure a threshold key for the round's epoch is dealt),
* ``seal`` this party's delta into the bytes it uploads,
* ``open`` another party's bytes (raising :class:`UpdateRejected` with a specific reason),
* ``sum`` the accepted updates, and (threshold schemes, ``shares_needed > 0``)
  ``post_share`` its decryption share of that sum and ``check_share`` others' shares,
* ``combine`` exactly the shares the round machine chose into the mean delta.

*When* each step runs is decided by the round machine (:mod:`zkadapt.protocol.machine`),
never by a scheme. Every honest party must get bit-identical results from ``combine`` on
the same accepted set: that is what lets ``RoundDone`` digests agree (DESIGN.md section 3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from zkadapt.aggregation.codec import FlatCodec
from zkadapt.aggregation.strategy import Strategy
from zkadapt.aggregation.weights import bounded_shares
from zkadapt.errors import ProtocolError
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.machine import shares_to_combine
from zkadapt.protocol.messages import DecryptionShare, Message, Rejected, Submitted
from zkadapt.protocol.update import MAX_UPDATE_HEADER, PlainUpdate, UpdateRejected
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

    @property
    def clock(self) -> Callable[[], float]:
        """The round driver's injected clock: every deadline of the round runs on it."""
        ...

    def post(self, message: Message) -> None: ...

    def sync(self, wait: float = 0.0) -> None: ...

    def emit(self, round_: int, phase: Any, detail: str) -> None: ...


class UpdateScheme(Protocol):
    """Seal, open and average updates (one implementation per ``privacy.scheme``)."""

    name: str
    #: Seconds spent in scheme-specific steps of the last sum and combine (e.g. decryption).
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

    @property
    def shares_needed(self) -> int:
        """Valid decryption shares that decrypt a sum (t); 0 for updates in the clear."""
        ...

    def sum(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> None:
        """Aggregate the accepted (opened) updates of ``round_``."""
        ...

    def post_share(self, round_: int, io: RoundIO) -> None:
        """Post this party's decryption share of the round's sum (threshold schemes)."""
        ...

    def check_share(self, round_: int, msg: DecryptionShare, io: RoundIO) -> None:
        """Verify and keep one posted decryption share; raises UpdateRejected."""
        ...

    def combine(self, round_: int, parties: tuple[str, ...], io: RoundIO) -> np.ndarray:
        """The weighted mean delta from these parties' shares (identical in every party)."""
        ...


class PlainScheme:
    """``privacy.scheme = "none"``: float32 deltas in the clear, FedAvg-weighted by samples."""

    name = "none"

    def __init__(
        self, strategy: Strategy, *, weighting: str = "declared", max_share: float | None = None
    ) -> None:
        self.strategy = strategy
        self.weighting, self.max_share = weighting, max_share
        self.timings: dict[str, float] = {}
        self._accepted: tuple[int, dict[str, Any]] = (0, {})

    def prepare(self, round_: int, io: RoundIO) -> None:
        """Nothing to set up."""

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """A safetensors object bound to session, round and party."""
        return PlainUpdate(io.ctx.session_id, round_, io.ctx.party, n_samples, delta).to_bytes()

    def max_object_bytes(self, round_: int, io: RoundIO) -> int:
        """The largest honest update object: its float32 values and a bounded header."""
        return 8 + MAX_UPDATE_HEADER + 4 * io.codec.size

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

    shares_needed = 0

    def sum(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> None:
        """Keep the accepted updates; the mean is taken in :meth:`combine`."""
        self._accepted = (round_, dict(accepted))

    def post_share(self, round_: int, io: RoundIO) -> None:
        raise ProtocolError("updates in the clear have no decryption shares", round=round_)

    def check_share(self, round_: int, msg: DecryptionShare, io: RoundIO) -> None:
        raise UpdateRejected("decryption share: this session's updates are not encrypted")

    def combine(self, round_: int, parties: tuple[str, ...], io: RoundIO) -> np.ndarray:
        """Sample-weighted mean, accumulated in party-name order; each party's share of it is
        bounded (:func:`~zkadapt.aggregation.weights.bounded_shares`) so a declared size
        cannot outweigh the others (docs/threats.md section 3)."""
        held, accepted = self._accepted
        if held != round_:
            raise ProtocolError("no accepted updates for this round yet", round=round_)
        names = sorted(accepted)
        counts = [float(accepted[n].n_samples) for n in names]
        shares = bounded_shares(counts, weighting=self.weighting, max_share=self.max_share)
        return self.strategy.mean_delta([accepted[n].delta for n in names], shares or counts)


def mean_from_channel(
    scheme: UpdateScheme, round_: int, accepted: dict[str, Any], io: RoundIO
) -> np.ndarray:
    """The mean delta an observer derives from the channel as it stands (the audit's path).

    Sums the accepted updates, checks the posted decryption shares in channel order (posting
    ``Rejected`` through ``io`` for bad ones) and combines the shares
    :func:`zkadapt.protocol.machine.shares_to_combine` picks — the parties' own choice.

    Raises:
        ProtocolError: fewer than ``shares_needed`` valid shares are posted.
    """
    scheme.sum(round_, accepted, io)
    valid: tuple[str, ...] = ()
    chosen = shares_to_combine(valid, scheme.shares_needed)
    for posted in io.history.counted_shares(round_):
        if chosen is not None:
            break
        try:
            scheme.check_share(round_, posted.message, io)  # type: ignore[arg-type]
        except UpdateRejected as exc:
            io.post(Rejected(io.ctx.session_id, round_, posted.sender, exc.reason))
            continue
        valid = (*valid, posted.sender)
        chosen = shares_to_combine(valid, scheme.shares_needed)
    if chosen is None:
        raise ProtocolError(
            f"only {len(valid)} of {scheme.shares_needed} valid decryption shares", round=round_
        )
    return scheme.combine(round_, chosen, io)
