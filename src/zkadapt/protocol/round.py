"""The round protocol, seen by one party (DESIGN.md section 3): the work around the decisions.

Every decision is :mod:`zkadapt.protocol.machine`'s (a pure state machine the model checker
explores); this module syncs the channel, asks the machine, and does the work it names.

Each round r runs these phases::

    KEYS       (paillier) join, and the round's key epoch dealt, generated or opened: the
               machine's Join / DealKey / KeygenStep / OpenKey, each carried out by
               :class:`~zkadapt.protocol.key_epochs.KeyEpochs` without waiting
    PREPARE    the privacy scheme's own preparation
    TRAIN      start from G(r-1); train locally; delta = local - G(r-1)
    SUBMIT     seal the delta (plain safetensors, or packed ciphertexts with a proof), store
               it in the party's own prefix; post ``Submitted``
    COLLECT    post our ``PhaseClosed(r, submit)`` vote when everyone has submitted or this
               party's deadline passes, and wait for the entry where ``close_votes`` distinct
               parties have voted (the cut); the submissions before it are the candidates;
               verify each; post ``Rejected`` for bad ones
    AGGREGATE  the scheme's weighted mean of the accepted deltas, deterministic: plain FedAvg
               in party-name order, or homomorphic sum + threshold decryption
               (:mod:`zkadapt.protocol.secure_aggregation`)
    APPLY      G(r) = outer_step(G(r-1), mean delta); evaluate; checkpoint; post ``RoundDone``
               and check every other party's digest of G(r) against ours

A round can fail instead (below quorum at the cut, an encrypted accepted set below
``min_accepted``, fewer than t valid decryption shares before the ``close_votes``-th
``RoundFailed``, or an aggregate out of range): the machine decides it from the channel, this driver
posts ``RoundFailed`` where the machine says so and goes on with round r+1 from
G(r) = G(r-1); a failed round leaves no checkpoint.

Agreement comes from channel order, never from clocks: local deadlines only decide *when*
a party posts its ``PhaseClosed`` vote; which updates count is decided by where the
``close_votes``-th vote sits in the channel, so every honest party derives the same accepted
set and no single party decides it (THREATS.md section 2).

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
from zkadapt.errors import CryptoError, HistoryConflict, ProtocolError
from zkadapt.learning.base import Learner
from zkadapt.learning.checkpoint import state_digest
from zkadapt.protocol import machine
from zkadapt.protocol.checkpoints import RoundCheckpoints, SavedRound
from zkadapt.protocol.history import ChannelContradiction, SessionHistory, checkpoint_standing
from zkadapt.protocol.key_epochs import KeyEpochs
from zkadapt.protocol.machine import (
    Advance,
    Announce,
    Apply,
    ChannelMessage,
    CheckShare,
    CloseSubmissions,
    Combine,
    DeadlinePassed,
    DealKey,
    Done,
    FailRound,
    Finish,
    Halt,
    Join,
    KeygenStep,
    MachineSpec,
    OpenKey,
    PostShare,
    Prepare,
    Reject,
    RequestJoin,
    Sum,
    TrainAndSubmit,
    Verify,
    Wait,
)
from zkadapt.protocol.membership import Candidacy, MembershipRules
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    JoinRequest,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    sign,
)
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.publishing import fetch_checked, publish
from zkadapt.protocol.schemes import PlainScheme, RoundIO, UpdateScheme
from zkadapt.protocol.update import UpdateRejected, party_location
from zkadapt.seeds import derive_seed
from zkadapt.storage.base import ObjectRef, ObjectStore, is_key_of, object_key


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
    #: Distinct PhaseClosed / RoundFailed votes that cut a phase (THREATS.md section 2).
    close_votes: int = 1
    #: Smallest accepted set whose sum is decrypted (encrypted schemes; 0: no floor).
    min_accepted: int = 0
    #: ``[membership]`` (docs/membership.md); None: the listed parties, every round.
    membership: MembershipRules | None = None
    #: This party is no listed one and asks to join with this (``zkadapt join``).
    candidacy: Candidacy | None = None

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
    #: Why the round failed (G(r) = G(r-1), ``model_sha256`` its digest); None when done.
    failure: str | None = None


@dataclass
class _Global:
    """The global trainable state G(r) and the outer optimizer's memory."""

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


def out_of_range(exc: CryptoError, accepted: tuple[str, ...]) -> str:
    """The failure of a round whose decrypted aggregate no honest accepted set could sum to
    (THREATS.md section 3): some accepted party sent values outside its range, and without
    per-party range proofs nobody can say which (docs/crypto.md)."""
    return (
        f"aggregate out of range ({exc}): one of {', '.join(accepted)} sent values outside "
        "the quantization range; without range proofs no culprit can be named"
    )


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
    location = party_location(io.store, sub.party)
    if not sub.uri.startswith(location):
        raise UpdateRejected("object outside the party's own prefix")
    ref = ObjectRef(sub.uri, sub.sha256, sub.size)
    bound = getattr(scheme, "max_object_bytes", None)  # a peer must not size our download
    update = fetch_checked(
        io.store,
        ref,
        lambda data: scheme.open(r, sub, data, io),
        max_size=bound(r, io) if bound is not None else None,
    )
    own = object_key(io.ctx.session_id, r, "update", sub.party)
    if not is_key_of(sub.uri[len(location) :], own):
        raise UpdateRejected("object outside the party's own prefix")
    return update


@dataclass
class _RoundWork:
    """What one round's actions produced in this process (the machine keeps the decisions)."""

    round: int
    timer: _PhaseTimer
    trained: dict[str, float] | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # of G(r), posted in RoundDone
    opened: dict[str, Any] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    deadlines: dict[str, RoundDeadline] = field(default_factory=dict)
    expired: set[str] = field(default_factory=set)  # deadlines reported to the machine


class RoundProtocol:
    """Drives one party's round machine (:mod:`zkadapt.protocol.machine`) with real I/O.

    The loop is: fold every new channel entry into the machine's state, ask
    :func:`~zkadapt.protocol.machine.next_action`, do the work the action names (train,
    post, verify, sum, decrypt, evaluate, checkpoint), fold the result back in. Every
    decision — who is a candidate, when to close, when to fail, which shares decrypt, when a
    round is done — is the machine's, the same code the model checker explores.
    """

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
        between_rounds: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ctx = ctx
        #: Called with round r once this party moves on from it (and after the last round):
        #: bookkeeping outside the round machine that decides nothing in it (the escrow's
        #: kill votes, :mod:`zkadapt.operator.party_escrow`).
        self.between_rounds = between_rounds
        self.identity = identity
        self.channel = channel
        self.store = store
        self.learner = learner
        self.strategy = strategy
        self.scheme: UpdateScheme = scheme or PlainScheme(strategy)
        self.checkpoints = checkpoints
        self.emit: EventSink = on_event or (lambda r, phase, detail: None)
        self._clock = clock
        self.clock = clock  # RoundIO: the scheme's key deadlines run on the same clock
        #: The scheme's key epochs, if its updates need a key (``UpdateScheme`` implementations
        #: without keys have no ``key_epochs``): the machine decides them, this driver runs them.
        self.key_epochs: KeyEpochs | None = getattr(self.scheme, "key_epochs", None)
        self.spec = MachineSpec(
            ctx.party,
            ctx.parties,
            ctx.rounds,
            ctx.quorum,
            self.scheme.shares_needed,
            keys=self.key_epochs.plan if self.key_epochs is not None else None,
            close_votes=ctx.close_votes,
            min_accepted=ctx.min_accepted if self.scheme.shares_needed else 0,
            membership=ctx.membership,
            candidacy=ctx.candidacy,
        )
        self.history = SessionHistory(ctx.session_id, ctx.parties, self.spec)
        self._fed = 0  # entries of self.history.posted folded into the machine
        initial = learner.initial_state(derive_seed(ctx.seed_id, "init"))
        self.codec = FlatCodec(initial)
        self._initial = self.codec.flatten(initial)

    # -- the session ---------------------------------------------------------------------

    def run(self) -> list[RoundOutcome]:
        """Run (or resume) every remaining round; returns this process's outcomes.

        A failed round is an outcome like a done one (``RoundOutcome.failure``): the session
        goes on from G(r) = G(r-1).

        Raises:
            ProtocolError: parties disagree on G(r), or this party cannot follow a round.
        """
        self.sync()
        saved = self.checkpoints.latest(accept=self._backed_by_channel)
        g = self._resume(saved)
        state = self._feed(
            machine.start(self.spec, (saved.round, saved.model_sha256) if saved else None)
        )
        outcomes: list[RoundOutcome] = []
        work = _RoundWork(state.round, _PhaseTimer(self._clock))
        while not isinstance(action := machine.next_action(self.spec, state), Finish):
            if action.round != work.round and not isinstance(action, (Announce, Reject)):
                if self.between_rounds is not None and 0 < work.round < action.round:
                    self.between_rounds(work.round)
                work = _RoundWork(action.round, _PhaseTimer(self._clock))
            result = self._execute(action, g, work)
            if isinstance(action, Wait):
                state = self._feed(state)
                if result is not None:
                    state = machine.apply(self.spec, state, result)
                continue
            state = self._feed(machine.apply(self.spec, state, Done(action, result)))
            if isinstance(action, FailRound) and action.decided:
                outcomes.append(
                    RoundOutcome(
                        action.round,
                        (),
                        dict(work.rejected),
                        self._digest_of(g),
                        {},
                        work.timer.elapsed(),
                        work.trained is not None,
                        work.timer.phases,
                        failure=action.reason,
                    )
                )
            if isinstance(action, (Announce, Advance)) and action.accepted:
                outcomes.append(
                    RoundOutcome(
                        action.round,
                        action.accepted,
                        dict(work.rejected),
                        action.digest,
                        work.metrics,
                        work.timer.elapsed(),
                        work.trained is not None,
                        work.timer.phases,
                    )
                )
        self._await_final_agreement(state)
        self.emit(self.ctx.rounds, Phase.DONE, self._digest_of(g))
        if self.between_rounds is not None:
            self.between_rounds(self.ctx.rounds)
        return outcomes

    def _digest_of(self, g: _Global) -> str:
        """Digest of the current global state: the last round done, or G0 (a failed round
        leaves G as it was)."""
        if g.digests:
            return g.digests[max(g.digests)]
        return state_digest(self.codec.unflatten(g.vector))

    def _backed_by_channel(self, saved: SavedRound) -> bool:
        """Resume only from a checkpoint the channel backs (:func:`checkpoint_standing`).

        Raises:
            HistoryConflict: the channel contradicts itself about that round.
        """
        try:
            why = checkpoint_standing(self.history, saved.round, saved.model_sha256)
        except ChannelContradiction as exc:
            raise HistoryConflict(str(exc), party=self.ctx.party) from None
        if why is not None:
            self.emit(saved.round, Phase.DONE, f"checkpoint of round {saved.round} ignored: {why}")
        return why is None

    def _resume(self, saved: SavedRound | None) -> _Global:
        if saved is None:
            return _Global(self._initial.copy())
        self.emit(saved.round, Phase.DONE, f"resumed from checkpoint of round {saved.round}")
        vector = self.codec.flatten(saved.state)
        return _Global(vector, saved.momentum, {saved.round: saved.model_sha256})

    def _feed(self, state: machine.PartyState) -> machine.PartyState:
        """Fold the channel entries read since the last call into the machine's state."""
        for posted in self.history.posted[self._fed :]:
            message = ChannelMessage(posted.sender, posted.message, posted.authentic)
            state = machine.apply(self.spec, state, message)
        self._fed = len(self.history.posted)
        return state

    # -- doing what the machine decided ----------------------------------------------------

    def _execute(self, action: machine.Action, g: _Global, work: _RoundWork) -> Any:
        """Do the work ``action`` names; returns its result (see :class:`machine.Done`)."""
        r, timer = action.round, work.timer
        match action:
            case Join() | DealKey() | KeygenStep() | OpenKey():
                with timer("prepare_s"):
                    return self._key_step(action, work)
            case Prepare():
                with timer("prepare_s"):
                    self.scheme.prepare(r, self)
            case TrainAndSubmit():
                work.trained = self._train_and_submit(r, g, timer)
            case CloseSubmissions(reason=reason):
                self.post(PhaseClosed(self.ctx.session_id, r, SUBMIT_PHASE, reason))
            case Verify(candidates=candidates):
                with timer("collect_s"):
                    return self._verify_candidates(r, candidates, work)
            case Reject(party=party, reason=reason):
                self.post(Rejected(self.ctx.session_id, r, party, reason))
            case FailRound(reason=reason, post=post, decided=decided):
                if post:
                    self.post(RoundFailed(self.ctx.session_id, r, reason))
                if decided:  # G(r) = G(r-1): nothing to apply, round r+1 trains from it
                    self.emit(r, Phase.DONE, f"round {r} failed: {reason}")
            case Halt(reason=reason):
                raise ProtocolError(reason, round=r, party=self.ctx.party)
            case Sum(accepted=accepted):
                self.emit(r, Phase.AGGREGATE, f"{len(accepted)} accepted")
                with timer("aggregate_s"):
                    self.scheme.sum(r, {p: work.opened[p] for p in accepted}, self)
            case PostShare():
                with timer("aggregate_s"):
                    self.scheme.post_share(r, self)
            case CheckShare(party=party):
                return self._check_share(r, party)
            case Combine(parties=parties):
                with timer("aggregate_s"):
                    try:
                        mean = self.scheme.combine(r, parties, self)
                    except CryptoError as exc:  # the same for every party: the round fails
                        return out_of_range(exc, tuple(sorted(work.opened)))
                    timer.phases.update(self.scheme.timings)
                    g.vector, g.momentum = self.strategy.outer_step(g.vector, mean, g.momentum)
            case Apply(accepted=accepted):
                return self._apply(r, g, accepted, work)
            case Announce(digest=digest, accepted=accepted):
                self._announce(r, digest, accepted, work)
            case Advance():
                self.emit(r, Phase.DONE, f"round {r} applied (no member of it: nothing posted)")
            case RequestJoin():
                self._request_join(r)
            case Wait(deadline=kind):
                return self._wait(r, kind, work)
            case _:
                raise TypeError(f"no executor for {action!r}")
        return None

    def _key_step(self, action: machine.Action, work: _RoundWork) -> Any:
        """Carry out one key-epoch action of the machine (DESIGN.md section 4); a new key
        step starts a new key deadline (each message round of a key generation gets one)."""
        keys, r = self.key_epochs, action.round
        if keys is None:
            raise ProtocolError(f"{type(action).__name__}: this scheme has no key epochs", round=r)
        work.deadlines.pop("key", None)
        work.expired.discard("key")
        match action:
            case Join():
                keys.join(self)
            case DealKey(epoch=epoch):
                keys.deal(epoch, r, self)
            case KeygenStep(epoch=epoch, step=step):
                return keys.keygen_step(epoch, step, r, self)
            case OpenKey(epoch=epoch):
                keys.open(epoch, r, self)
        return None

    def _wait(self, r: int, kind: str, work: _RoundWork) -> machine.Event | None:
        """Sync the channel until something arrives or our deadline for ``kind`` passes
        (``"outcome"`` has none: our ``RoundFailed`` is on its way back)."""
        if kind in ("outcome", "follow"):  # no deadline of ours: the members decide
            self.sync(wait=self.ctx.poll_interval_s)
            return None
        if kind not in work.deadlines:
            timeout = self.ctx.submit_timeout_s
            if kind == "key" and self.key_epochs is not None:
                timeout = self.key_epochs.timeout_s
            work.deadlines[kind] = RoundDeadline(timeout, self._clock)
            if kind == "cut":
                self.emit(r, Phase.COLLECT, "waiting for the other parties")
        deadline = work.deadlines[kind]
        if deadline.expired() and kind not in work.expired:
            work.expired.add(kind)  # once: then wait for the others' votes like anyone
            return DeadlinePassed(r, kind)
        phase = {"cut": "collect_s", "key": "prepare_s"}.get(kind, "aggregate_s")
        with work.timer(phase):
            self.sync(wait=min(self.ctx.poll_interval_s, deadline.remaining() or float("inf")))
        return None

    def _request_join(self, r: int) -> None:
        """Post our ``JoinRequest`` (docs/membership.md): signed by our own key, which the
        request carries since no session file lists it."""
        candidacy = self.ctx.candidacy
        if candidacy is None:
            raise ProtocolError("RequestJoin: this party is no candidate", round=r)
        self.emit(r, Phase.KEYS, "asking to join the session")
        self.post(
            JoinRequest(
                self.ctx.session_id,
                r,
                self.ctx.party,
                candidacy.public_key,
                candidacy.n_samples,
                candidacy.deposit,
                candidacy.lock,
            )
        )

    # -- TRAIN and SUBMIT ----------------------------------------------------------------

    def _train_and_submit(
        self, r: int, state: _Global, timer: _PhaseTimer
    ) -> dict[str, float] | None:
        """Train from G(r-1), seal, store, post ``Submitted``; returns the training metrics."""
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
        key = object_key(self.ctx.session_id, r, "update", self.ctx.party)

        def submitted(refs: dict[str, ObjectRef]) -> Submitted:
            ref = refs[key]
            session, me = self.ctx.session_id, self.ctx.party
            return Submitted(session, r, me, ref.uri, ref.sha256, ref.size, result.n_samples)

        with timer("store_s"):
            publish(self.store, self.post, {key: data}, submitted)
        return {"train_loss": float(result.train_loss)}

    # -- COLLECT -------------------------------------------------------------------------

    def _verify_candidates(
        self, r: int, candidates: tuple[str, ...], work: _RoundWork
    ) -> tuple[machine.Verdict, ...]:
        """Fetch and check each submission before the cut: ``(party, reason or None)``."""
        if work.trained is None:
            self.emit(r, Phase.COLLECT, "submit phase closed: verifying the submissions")
        submissions = self.history.submissions(r)  # first per party, as the machine counts
        verdicts: list[machine.Verdict] = []
        for name in sorted(candidates):
            try:
                work.opened[name] = self._verify(r, submissions[name].message)  # type: ignore[arg-type]
                verdicts.append((name, None))
            except UpdateRejected as exc:
                work.rejected[name] = exc.reason
                verdicts.append((name, exc.reason))
        return tuple(verdicts)

    def _verify(self, r: int, sub: Submitted) -> Any:
        """Fetch and check one submission; raises UpdateRejected with a specific reason."""
        return verify_submission(self.scheme, r, sub, self)

    def _check_share(self, r: int, party: str) -> str | None:
        """Verify ``party``'s posted decryption share; the reason when it is bad."""
        posted = next(p for p in self.history.decryption_shares(r) if p.sender == party)
        try:
            self.scheme.check_share(r, posted.message, self)  # type: ignore[arg-type]
        except UpdateRejected as exc:
            return exc.reason
        return None

    # -- APPLY ---------------------------------------------------------------------------

    def _apply(self, r: int, g: _Global, accepted: tuple[str, ...], work: _RoundWork) -> str:
        """Evaluate G(r), checkpoint it; returns its digest."""
        self.emit(r, Phase.APPLY, "evaluating and checkpointing")
        tensors = self.codec.unflatten(g.vector)
        digest = state_digest(tensors)
        metrics = dict(work.trained or {})
        with work.timer("evaluate_s"):
            metrics.update(_scores(self.learner.evaluate(tensors, "local")))
            scores = _scores(self.learner.evaluate(tensors, "global"))
        metrics.update({f"global_{k}": v for k, v in scores.items()})
        with work.timer("checkpoint_s"):
            self.checkpoints.save(
                SavedRound(r, tensors, g.momentum, digest, {"accepted": list(accepted)})
            )
        g.digests[r] = digest
        work.metrics = metrics
        return digest

    def _announce(self, r: int, digest: str, accepted: tuple[str, ...], work: _RoundWork) -> None:
        """Post ``RoundDone`` (also for a checkpointed round whose post a crash cut off)."""
        if not accepted:  # re-announcing a round finished before a restart
            saved = self.checkpoints.latest()
            accepted = tuple(saved.meta.get("accepted", ())) if saved else ()
            metrics, duration, timing = {}, 0.0, {}
        else:
            metrics, duration, timing = work.metrics, work.timer.elapsed(), work.timer.phases
        self.post(
            RoundDone(
                self.ctx.session_id,
                r,
                self.ctx.party,
                digest,
                tuple(sorted(accepted)),
                metrics,
                duration,
                timing,
            )
        )

    def _await_final_agreement(self, state: machine.PartyState) -> None:
        """Wait (bounded) for the last round's digests of the parties accepted in it."""
        last = self.ctx.rounds
        deadline = RoundDeadline(self.ctx.submit_timeout_s, self._clock)
        while not deadline.expired():
            done = self.history.round_done(last)
            accepted = next(iter(done.values())).accepted if done else ()
            if set(accepted) <= set(done):
                break
            self.sync(wait=min(self.ctx.poll_interval_s, deadline.remaining()))
        state = self._feed(state)
        while isinstance(action := machine.next_action(self.spec, state), Reject):
            self.post(Rejected(self.ctx.session_id, action.round, action.party, action.reason))
            state = self._feed(machine.apply(self.spec, state, Done(action)))
        if state.halted:
            raise ProtocolError(state.halted, round=last, party=self.ctx.party)

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
