"""The round protocol, seen by one party (DESIGN.md section 3). Read this file top to bottom.

Each round r runs these phases::

    PREPARE    the privacy scheme gets ready (paillier: join, make sure the key is dealt)
    TRAIN      start from G(r-1); train locally; delta = local - G(r-1)
    SUBMIT     seal the delta (plain safetensors, or packed ciphertexts with a proof), store
               it in the party's own prefix; post ``Submitted``
    COLLECT    wait for the first ``PhaseClosed(r, submit)`` in channel order (post one when
               everyone has submitted or this party's deadline passes); the submissions before
               it are the candidates; verify each; post ``Rejected`` for bad ones
    AGGREGATE  the scheme's weighted mean of the accepted deltas, deterministic: plain FedAvg
               in party-name order, or homomorphic sum + threshold decryption
               (:mod:`zkadapt.protocol.secure_aggregation`)
    APPLY      G(r) = outer_step(G(r-1), mean delta); evaluate; checkpoint; post ``RoundDone``
               and check every other party's digest of G(r) against ours

Agreement comes from channel order, never from clocks: local deadlines only decide *when*
a party posts ``PhaseClosed``; which updates count is decided by where the first such entry
sits in the channel, so every honest party derives the same accepted set.

A party that crashes restarts from its last checkpoint, replays the channel, and rejoins:
a round whose submit phase already closed is followed without training (the same code path
as everyone else's COLLECT/AGGREGATE/APPLY), and a submission already posted is not redone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zkadapt.aggregation.codec import FlatCodec
from zkadapt.aggregation.strategy import Strategy
from zkadapt.channel.base import Channel
from zkadapt.errors import IntegrityError, ProtocolError, StorageError
from zkadapt.learning.base import Learner
from zkadapt.learning.checkpoint import state_digest
from zkadapt.protocol.checkpoints import RoundCheckpoints, SavedRound
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    sign,
)
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.schemes import PlainScheme, RoundIO, UpdateScheme
from zkadapt.protocol.update import UpdateRejected
from zkadapt.seeds import derive_seed
from zkadapt.storage.base import ObjectRef, ObjectStore, object_key


@dataclass(frozen=True)
class PartyContext:
    """What one party needs to know about the session to run the protocol."""

    session_id: str
    party: str
    parties: tuple[str, ...]
    rounds: int
    quorum: int
    submit_timeout_s: float
    poll_interval_s: float = 0.1
    seed_id: str = ""

    def __post_init__(self) -> None:
        if not self.seed_id:  # default: seed from the session id itself
            object.__setattr__(self, "seed_id", self.session_id)


class RoundDeadline:
    """A local phase deadline; it only decides when this party posts ``PhaseClosed``."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.expires_at = clock() + timeout_s

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires_at - self._clock())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.remaining() == 0.0


@dataclass(frozen=True)
class RoundOutcome:
    """What one party concluded about one round."""

    round: int
    accepted: tuple[str, ...]
    rejected: dict[str, str]
    model_sha256: str
    metrics: dict[str, float]
    duration_s: float
    trained: bool
    timing: dict[str, float] = field(default_factory=dict)


@dataclass
class _Global:
    """The global trainable state G(r) and the outer optimizer's memory."""

    round: int
    vector: np.ndarray
    momentum: np.ndarray | None = None
    digests: dict[int, str] = field(default_factory=dict)


EventSink = Callable[[int, Phase, str], None]


class _PhaseTimer:
    """Seconds spent per phase of one round (reported in ``RoundDone.timing``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.started = clock()
        self.phases: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + self._clock() - start

    def elapsed(self) -> float:
        return self._clock() - self.started


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    """Evaluation scores worth posting: drop counts and undefined (NaN) values."""
    return {k: float(v) for k, v in metrics.items() if k != "n_samples" and np.isfinite(v)}


def verify_submission(scheme: UpdateScheme, r: int, sub: Submitted, io: RoundIO) -> Any:
    """Fetch one submission and check it (digest, prefix, the scheme's checks and proofs).

    Pure apart from reading the store, so a party and an auditor reach the same verdict.
    The URI must be exactly where the sender may write: its own bucket/prefix (checked
    before anything is fetched, so a peer cannot point others at foreign buckets) and its
    own key for this round (checked after the scheme's header checks, which give replays
    and copies their specific reasons).

    Raises:
        UpdateRejected: with the specific reason that goes into ``Rejected``.
    """
    location = io.store.location_of(sub.party)
    if not sub.uri.startswith(location):
        raise UpdateRejected("object outside the party's own prefix")
    try:
        data = io.store.get(ObjectRef(sub.uri, sub.sha256, sub.size))
    except IntegrityError:
        raise UpdateRejected("digest mismatch") from None
    except StorageError as exc:
        raise UpdateRejected(f"object unavailable: {exc}") from None
    update = scheme.open(r, sub, data, io)
    if sub.uri != location + object_key(io.ctx.session_id, r, "update", sub.party):
        raise UpdateRejected("object outside the party's own prefix")
    return update


class RoundProtocol:
    """Drives the round protocol for one party over injected channel, store and learner."""

    def __init__(
        self,
        ctx: PartyContext,
        *,
        identity: object,
        channel: Channel,
        store: ObjectStore,
        learner: Learner,
        strategy: Strategy,
        checkpoints: RoundCheckpoints,
        scheme: UpdateScheme | None = None,
        on_event: EventSink | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        self.identity = identity
        self.channel = channel
        self.store = store
        self.learner = learner
        self.strategy = strategy
        self.scheme: UpdateScheme = scheme or PlainScheme(strategy)
        self.checkpoints = checkpoints
        self.emit: EventSink = on_event or (lambda r, phase, detail: None)
        self._clock = clock
        self.history = SessionHistory(ctx.session_id, ctx.parties)
        initial = learner.initial_state(derive_seed(ctx.seed_id, "init"))
        self.codec = FlatCodec(initial)
        self._initial = self.codec.flatten(initial)

    # -- the session ---------------------------------------------------------------------

    def run(self) -> list[RoundOutcome]:
        """Run (or resume) every remaining round; returns this process's outcomes.

        Raises:
            ProtocolError: a round fell below quorum, or parties disagree on G(r).
        """
        state = self._resume()
        outcomes = []
        for r in range(state.round + 1, self.ctx.rounds + 1):
            outcomes.append(self._run_round(r, state))
        self._await_final_agreement(state)
        self.emit(self.ctx.rounds, Phase.DONE, state.digests.get(self.ctx.rounds, ""))
        return outcomes

    def _resume(self) -> _Global:
        self.sync()
        saved = self.checkpoints.latest()
        if saved is None:
            return _Global(0, self._initial.copy())
        self.emit(saved.round, Phase.DONE, f"resumed from checkpoint of round {saved.round}")
        vector = self.codec.flatten(saved.state)
        return _Global(saved.round, vector, saved.momentum, {saved.round: saved.model_sha256})

    def _run_round(self, r: int, state: _Global) -> RoundOutcome:
        timer = _PhaseTimer(self._clock)
        with timer("prepare_s"):
            self.scheme.prepare(r, self)
        trained = self._train_and_submit(r, state, timer)
        with timer("collect_s"):
            cut = self._await_cut(r)
            accepted, rejected = self._collect(r, cut)
        self.emit(r, Phase.AGGREGATE, f"{len(accepted)} accepted")
        with timer("aggregate_s"):
            mean = self.scheme.mean_delta(r, accepted, self)
            timer.phases.update(self.scheme.timings)
            state.vector, state.momentum = self.strategy.outer_step(
                state.vector, mean, state.momentum
            )
        state.round = r
        return self._apply(r, state, tuple(sorted(accepted)), rejected, trained, timer)

    # -- TRAIN and SUBMIT ----------------------------------------------------------------

    def _train_and_submit(
        self, r: int, state: _Global, timer: _PhaseTimer
    ) -> dict[str, float] | None:
        """Train and submit unless the phase closed already or we submitted before a crash."""
        if self.history.cut(r) is not None:
            self.emit(r, Phase.COLLECT, "submit phase already closed: following without training")
            return None
        if self.ctx.party in self.history.submissions(r):
            self.emit(r, Phase.COLLECT, "update already submitted before a restart")
            return None
        self.emit(r, Phase.TRAIN, "training")
        with timer("train_s"):
            result = self.learner.train(
                self.codec.unflatten(state.vector),
                seed=derive_seed(self.ctx.seed_id, "train", r, self.ctx.party),
            )
            delta = self.codec.flatten(result.state) - state.vector
        self.emit(r, Phase.SUBMIT, f"sealing update ({self.scheme.name})")
        with timer("seal_s"):
            data = self.scheme.seal(r, delta, result.n_samples, self)
        with timer("store_s"):
            key = object_key(self.ctx.session_id, r, "update", self.ctx.party)
            ref = self.store.put(key, data)
        self.post(
            Submitted(
                self.ctx.session_id,
                r,
                self.ctx.party,
                ref.uri,
                ref.sha256,
                ref.size,
                result.n_samples,
            )
        )
        return {"train_loss": float(result.train_loss)}

    # -- COLLECT -------------------------------------------------------------------------

    def _await_cut(self, r: int) -> int:
        """Return the seq of the first ``PhaseClosed(r, submit)``, posting one when due."""
        deadline = RoundDeadline(self.ctx.submit_timeout_s, self._clock)
        self.emit(r, Phase.COLLECT, "waiting for the other parties")
        while True:
            cut = self.history.cut(r)
            if cut is not None:
                return cut
            missing = set(self.ctx.parties) - set(self.history.submissions(r))
            if not missing:
                reason = "all submitted"
            elif deadline.expired():
                reason = f"deadline: missing {', '.join(sorted(missing))}"
            else:
                self.sync(wait=min(self.ctx.poll_interval_s, deadline.remaining()))
                continue
            self.post(PhaseClosed(self.ctx.session_id, r, SUBMIT_PHASE, reason))

    def _collect(self, r: int, cut: int) -> tuple[dict[str, Any], dict[str, str]]:
        """Verify every submission before the cut; post ``Rejected`` for failures."""
        already = {m.party for sender, m in self.history.rejections(r) if sender == self.ctx.party}
        accepted: dict[str, Any] = {}
        rejected: dict[str, str] = {}
        for name, posted in sorted(self.history.submissions(r, before=cut).items()):
            try:
                accepted[name] = self._verify(r, posted.message)  # type: ignore[arg-type]
            except UpdateRejected as exc:
                rejected[name] = exc.reason
                if name not in already:
                    self.post(Rejected(self.ctx.session_id, r, name, exc.reason))
        if len(accepted) < self.ctx.quorum:
            reason = (
                f"only {len(accepted)} of {len(self.ctx.parties)} updates accepted, "
                f"quorum is {self.ctx.quorum}"
            )
            if self.history.failure(r) is None:
                self.post(RoundFailed(self.ctx.session_id, r, reason))
            raise ProtocolError(reason, round=r)
        return accepted, rejected

    def _verify(self, r: int, sub: Submitted) -> Any:
        """Fetch and check one submission; raises UpdateRejected with a specific reason."""
        return verify_submission(self.scheme, r, sub, self)

    # -- APPLY ---------------------------------------------------------------------------

    def _apply(
        self,
        r: int,
        state: _Global,
        accepted: tuple[str, ...],
        rejected: dict[str, str],
        trained: dict[str, float] | None,
        timer: _PhaseTimer,
    ) -> RoundOutcome:
        self.emit(r, Phase.APPLY, "evaluating and checkpointing")
        tensors = self.codec.unflatten(state.vector)
        digest = state_digest(tensors)
        metrics = dict(trained or {})
        metrics.update(_scores(self.learner.evaluate(tensors, "local")))
        metrics.update(
            {f"global_{k}": v for k, v in _scores(self.learner.evaluate(tensors, "global")).items()}
        )
        with timer("checkpoint_s"):
            self.checkpoints.save(
                SavedRound(r, tensors, state.momentum, digest, {"accepted": list(accepted)})
            )
        state.digests[r] = digest
        duration = timer.elapsed()
        self.post(
            RoundDone(
                self.ctx.session_id,
                r,
                self.ctx.party,
                digest,
                accepted,
                metrics,
                duration,
                timer.phases,
            )
        )
        self._check_agreement(state)
        return RoundOutcome(
            r, accepted, rejected, digest, metrics, duration, trained is not None, timer.phases
        )

    def _check_agreement(self, state: _Global) -> None:
        """Every ``RoundDone`` digest seen so far must equal ours for that round."""
        for r, mine in state.digests.items():
            for party, done in self.history.round_done(r).items():
                if done.model_sha256 != mine:
                    raise ProtocolError(
                        f"model digest {mine[:12]} disagrees with {party}'s "
                        f"{done.model_sha256[:12]}; stopping the session",
                        round=r,
                        party=self.ctx.party,
                    )

    def _await_final_agreement(self, state: _Global) -> None:
        """Wait (bounded) for the last round's digests of the parties accepted in it."""
        last = self.ctx.rounds
        deadline = RoundDeadline(self.ctx.submit_timeout_s, self._clock)
        while not deadline.expired():
            done = self.history.round_done(last)
            accepted = next(iter(done.values())).accepted if done else ()
            if set(accepted) <= set(done):
                break
            self.sync(wait=min(self.ctx.poll_interval_s, deadline.remaining()))
        self._check_agreement(state)

    # -- channel I/O ---------------------------------------------------------------------

    def post(self, message: Message) -> None:
        self.channel.post(sign(message, self.ctx.party, self.identity))
        self.sync()

    def sync(self, wait: float = 0.0) -> None:
        if wait > 0:
            entries = self.channel.wait(self.history.last_seq, wait)
        else:
            entries = self.channel.history(self.history.last_seq)
        self.history.extend(entries)
