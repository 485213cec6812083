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

import contextlib
import time
from collections.abc import Callable, Iterator
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


#: The steps a scheme times itself (:class:`StepTimings`), work only, never a wait for others
#: and never a transfer: ``verify_s`` (open every submission: parse, binding, proofs),
#: ``sum_s`` (add the accepted updates), ``share_s`` (make and prove this party's decryption
#: shares), ``check_share_s`` (verify others' shares), ``combine_s`` (combine shares, unmask,
#: decode the mean). Sealing is timed by the round itself (``seal_s``). ``decrypt_s`` is a
#: span, not work: from the sum to the combined mean, waiting for the others' shares included.
SCHEME_STEPS = ("verify_s", "sum_s", "share_s", "check_share_s", "combine_s")


class StepTimings:
    """Seconds a scheme spent in each of its own steps of one round (``UpdateScheme.timings``).

    A step of a later round starts a fresh record, so one round's figures never carry
    another's. A step inside another (an override calling its base) counts once, in the
    outer step.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._round: int | None = None
        self._depth = 0
        self.seconds: dict[str, float] = {}

    def _of_round(self, round_: int) -> dict[str, float]:
        if round_ != self._round:
            self._round, self.seconds = round_, {}
        return self.seconds

    @contextlib.contextmanager
    def step(self, round_: int, name: str) -> Iterator[None]:
        """Add the time the ``with`` body takes to ``name`` of ``round_``."""
        seconds = self._of_round(round_)
        start = self._clock()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                seconds[name] = seconds.get(name, 0.0) + self._clock() - start

    def record(self, round_: int, name: str, seconds: float) -> None:
        """Set ``name`` of ``round_`` to a span measured elsewhere (``decrypt_s``)."""
        self._of_round(round_)[name] = seconds


class UpdateScheme(Protocol):
    """Seal, open and average updates (one implementation per ``privacy.scheme``)."""

    name: str

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of the scheme's own steps (:data:`SCHEME_STEPS`) in its latest round; the
        round reads them after ``combine`` into ``RoundDone.timing``."""
        ...

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
        self.steps = StepTimings()
        self._accepted: tuple[int, dict[str, Any]] = (0, {})

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of :data:`SCHEME_STEPS` in the latest round."""
        return self.steps.seconds

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
        with self.steps.step(round_, "verify_s"):
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
        with self.steps.step(round_, "sum_s"):
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
        with self.steps.step(round_, "combine_s"):
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
