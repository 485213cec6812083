"""Public audit of a session: re-derive every round from the channel and the store alone.

``zkadapt audit SESSION.toml`` needs no secret. It checks (issue 5):

* the channel: every signature and the order (the local ledger's hash chain via
  ``verify_all``; a Hydra head's confirmed snapshots);
* per round: the accepted set — the submissions before the first ``PhaseClosed``, each
  re-fetched and re-verified (digest, binding, proofs) exactly as a party does it — equals
  what the parties announced in ``RoundDone``;
* the aggregate: recomputed from the accepted updates (the homomorphic sum of the accepted
  ciphertexts when encrypted); each posted decryption share is checked against that sum with
  its proof, and t valid shares are combined;
* the result: G(r) = outer_step(G(r-1), mean delta), replayed from G(0), must hash to the
  digest every party posted in ``RoundDone``, and those digests must agree;
* failed rounds: a round with ``RoundFailed`` (and no ``RoundDone``) is an outcome, re-checked
  from the channel as the parties' machine decides it: fewer than q updates verify before the
  cut, or fewer than t valid decryption shares precede the first ``RoundFailed``; G(r) =
  G(r-1) is replayed through it, and failed rounds are listed with their reasons;
* completeness: every round the session file plans must have a checked outcome, done or
  failed (a missing round fails the audit unless ``partial``; a session with no outcome
  always fails), and no signed entry may appear twice (a replayed row);
* who was named: every party the others rejected, with the reasons, is listed.

It reuses the parties' own verification code through a read-only :class:`RoundIO`, so the
auditor and the parties cannot disagree about what "valid" means.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zkadapt.aggregation.codec import FlatCodec
from zkadapt.config import SessionConfig
from zkadapt.errors import ChannelError, ZkAdaptError
from zkadapt.learning.base import Learner
from zkadapt.learning.checkpoint import state_digest
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import Message, Rejected
from zkadapt.protocol.round import PartyContext, verify_submission
from zkadapt.protocol.schemes import UpdateScheme, mean_from_channel
from zkadapt.protocol.update import UpdateRejected
from zkadapt.seeds import derive_seed
from zkadapt.storage.base import ObjectStore

AUDITOR = "auditor"


@dataclass
class RoundVerdict:
    """What the audit found for one round."""

    round: int
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    digest: str = ""
    #: The ``RoundFailed`` reason when the round failed (G(r) = G(r-1)); None when done.
    failure: str | None = None

    @property
    def ok(self) -> bool:
        """No problem found."""
        return not self.problems


@dataclass
class AuditReport:
    """Channel-level findings, one verdict per audited round, and what the session lacks.

    Attributes:
        planned_rounds: ``session.rounds`` of the session file.
        completed: rounds with an outcome, done or failed (a prefix of 1..planned_rounds).
        incomplete: one line per planned round without an outcome (started, or never run).
        failed: one line per failed round, with its reason.
        partial: incomplete rounds are reported but do not fail the audit (``--partial``).
        named: every party a ``Rejected`` entry named -> the reasons, in channel order.
    """

    ledger_entries: int = 0
    problems: list[str] = field(default_factory=list)
    rounds: list[RoundVerdict] = field(default_factory=list)
    planned_rounds: int = 0
    completed: int = 0
    incomplete: list[str] = field(default_factory=list)
    partial: bool = False
    named: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the channel and every audited round passed and the session is complete."""
        if self.problems or not all(v.ok for v in self.rounds):
            return False
        if self.planned_rounds and not self.completed:
            return False  # nothing was verified: never a pass
        return self.partial or not self.incomplete


class _ObserverIO:
    """A read-only :class:`~zkadapt.protocol.schemes.RoundIO`: it never posts or waits."""

    def __init__(
        self, ctx: PartyContext, codec: FlatCodec, history: SessionHistory, store: ObjectStore
    ) -> None:
        self.ctx, self.codec, self.history, self.store = ctx, codec, history, store
        self.identity = None
        self.clock = time.monotonic  # an observer's key deadline is 0 s: it never waits
        self.would_post: list[Message] = []

    def post(self, message: Message) -> None:
        self.would_post.append(message)

    def sync(self, wait: float = 0.0) -> None:
        """The history is complete already."""

    def emit(self, round_: int, phase: Any, detail: str) -> None:
        """Audits are silent."""


def audit_session(
    config: SessionConfig,
    *,
    channel: Any,
    store: ObjectStore,
    learner: Learner,
    scheme: UpdateScheme,
    strategy: Any,
    only_round: int | None = None,
    partial: bool = False,
) -> AuditReport:
    """Audit a session's channel and stored objects; see the module docstring.

    Args:
        only_round: report only this round's verdict (earlier rounds are still replayed).
        partial: an unfinished session may pass on the rounds it completed.
    """
    report = AuditReport(planned_rounds=config.session.rounds, partial=partial)
    try:
        entries = channel.history(0)  # every backend verifies signatures and order on read
        verify_all = getattr(channel, "verify_all", None)  # the local ledger's hash chain
        report.ledger_entries = verify_all() if verify_all else len(entries)
    except ChannelError as exc:
        report.problems.append(f"channel: {exc}")
        return report
    history = SessionHistory(config.session_id, config.party_names)
    history.extend(entries)
    report.problems += [
        f"channel: seq {d.seq} from {d.sender}: {d.reason}" for d in history.dropped
    ]
    report.problems += replayed_entries(entries)
    for posted in history.posted:
        if isinstance(posted.message, Rejected):
            rejected = posted.message
            report.named.setdefault(rejected.party, []).append(
                f"round {rejected.round}, by {posted.sender}: {rejected.reason}"
            )
    ctx = PartyContext(
        config.session_id,
        AUDITOR,
        tuple(config.party_names),
        config.session.rounds,
        config.quorum,
        0.0,
        0.0,
        seed_id=config.seed_id,
    )
    initial = learner.initial_state(derive_seed(config.seed_id, "init"))
    codec = FlatCodec(initial)
    io = _ObserverIO(ctx, codec, history, store)
    vector, momentum = codec.flatten(initial), None
    for r in range(1, config.session.rounds + 1):
        failure = None if history.round_done(r) else history.failure(r)
        if not history.round_done(r) and failure is None:
            break
        verdict = RoundVerdict(r)
        try:
            if failure is not None:  # G(r) = G(r-1)
                verdict.failure = failure.reason
                verdict.digest = state_digest(codec.unflatten(vector))
                _audit_failed_round(r, verdict, io, scheme)
                report.failed.append(f"round {r} failed: {failure.reason}")
            else:
                vector, momentum = _audit_round(r, verdict, io, scheme, strategy, vector, momentum)
        except (ZkAdaptError, UpdateRejected, ValueError) as exc:
            verdict.problems.append(f"cannot recompute the round: {exc}")
        if only_round is None or only_round == r:
            report.rounds.append(verdict)
        if verdict.problems and only_round is None:
            break  # later rounds build on this one
    report.completed = _completed_rounds(history, config.session.rounds)
    report.incomplete = _incomplete_rounds(history, report.completed, config.session.rounds)
    if only_round is not None and only_round > report.completed:
        report.problems.append(f"round {only_round} was not completed")
    return report


def replayed_entries(entries: list[Any]) -> list[str]:
    """One line per channel entry whose signed message already appeared at an earlier seq.

    Every message names its session, round and kind, and the protocol never signs the same
    one twice, so a second copy is a replayed row (a signature alone cannot tell it apart).
    """
    first: dict[tuple[str, bytes], int] = {}
    found = []
    for entry in entries:
        key = (entry.envelope.sender, entry.envelope.payload)
        if key in first:
            found.append(
                f"channel: seq {entry.seq} replays seq {first[key]} "
                f"(the same signed message from {entry.envelope.sender})"
            )
        else:
            first[key] = entry.seq
    return found


def _completed_rounds(history: SessionHistory, planned: int) -> int:
    """How many rounds from 1 on have an outcome, ``RoundDone`` or ``RoundFailed`` (the
    session's completed prefix; the audit checks each outcome against the channel)."""
    done = 0
    while done < planned and (history.round_done(done + 1) or history.failure(done + 1)):
        done += 1
    return done


def _incomplete_rounds(history: SessionHistory, completed: int, planned: int) -> list[str]:
    """Why each planned round after the completed prefix is missing."""
    lines = []
    for r in range(completed + 1, planned + 1):
        if history.cut(r) is not None or history.submissions(r):
            lines.append(f"round {r} started but never completed")
        else:
            lines.append(f"round {r} never ran")
    return lines


def _audit_failed_round(
    r: int, verdict: RoundVerdict, io: _ObserverIO, scheme: UpdateScheme
) -> None:
    """Re-check a ``RoundFailed`` from the channel, as the parties' machine decides it.

    The round failed iff fewer than q updates verify among the submissions before the cut,
    or fewer than t valid decryption shares precede the first ``RoundFailed`` in channel
    order (``machine._decrypt``); anything else is a failure the channel does not back.
    """
    history = io.history
    posted = history.failure_posted(r)
    cut = history.cut(r)
    if cut is None or posted is None:
        verdict.problems.append("RoundFailed before any PhaseClosed of the submit phase")
        return
    quorum = io.ctx.quorum
    candidates = history.submissions(r, before=cut)
    if len(candidates) < quorum:  # below quorum whatever verifies (no key needed to see it)
        return
    scheme.prepare(r, io)
    accepted: dict[str, Any] = {}
    for name, sub in sorted(candidates.items()):
        try:
            accepted[name] = verify_submission(scheme, r, sub.message, io)  # type: ignore[arg-type]
        except UpdateRejected as exc:
            verdict.rejected[name] = exc.reason
    verdict.accepted = sorted(accepted)
    if len(accepted) < quorum:
        return
    needed = scheme.shares_needed
    if needed == 0:
        verdict.problems.append(
            f"RoundFailed, but {len(accepted)} updates verify and the quorum is {quorum}"
        )
        return
    scheme.sum(r, accepted, io)
    valid = 0
    for share in history.decryption_shares(r):
        if share.seq > posted.seq:
            break
        try:
            scheme.check_share(r, share.message, io)  # type: ignore[arg-type]
            valid += 1
        except UpdateRejected:
            continue
    if valid >= needed:
        verdict.problems.append(
            f"RoundFailed, but {valid} valid decryption shares (t = {needed}) precede it"
        )


def _audit_round(
    r: int,
    verdict: RoundVerdict,
    io: _ObserverIO,
    scheme: UpdateScheme,
    strategy: Any,
    vector: Any,
    momentum: Any,
) -> tuple[Any, Any]:
    history = io.history
    scheme.prepare(r, io)
    cut = history.cut(r)
    if cut is None:
        verdict.problems.append("no PhaseClosed for the submit phase")
        return vector, momentum
    accepted: dict[str, Any] = {}
    for name, posted in sorted(history.submissions(r, before=cut).items()):
        try:
            accepted[name] = verify_submission(scheme, r, posted.message, io)  # type: ignore[arg-type]
        except UpdateRejected as exc:
            verdict.rejected[name] = exc.reason
    verdict.accepted = sorted(accepted)
    done = history.round_done(r)
    announced = sorted({tuple(m.accepted) for m in done.values()})
    if announced != [tuple(verdict.accepted)]:
        why = "; ".join(f"{p}: {reason}" for p, reason in sorted(verdict.rejected.items()))
        verdict.problems.append(
            f"parties announced accepted {' / '.join(','.join(a) for a in announced)} but the "
            f"audit accepts {','.join(verdict.accepted)}" + (f" ({why})" if why else "")
        )
    if verdict.problems:
        return vector, momentum
    posted_before = len(io.would_post)
    try:
        mean = mean_from_channel(scheme, r, accepted, io)
    finally:
        on_channel = {(rej.party, rej.reason) for _, rej in history.rejections(r)}
        for message in io.would_post[posted_before:]:
            if isinstance(message, Rejected):
                verdict.rejected[message.party] = message.reason
                if (message.party, message.reason) not in on_channel:  # not what parties saw
                    verdict.problems.append(f"{message.party}'s stored {message.reason}")
    vector, momentum = strategy.outer_step(vector, mean, momentum)
    verdict.digest = state_digest(io.codec.unflatten(vector))
    for party, message in sorted(done.items()):
        if message.model_sha256 != verdict.digest:
            verdict.problems.append(
                f"{party}'s G({r}) digest {message.model_sha256[:12]} differs from the "
                f"recomputed {verdict.digest[:12]}"
            )
    return vector, momentum


def format_report(report: AuditReport) -> str:
    """A per-round verdict table (plain text) and the channel findings."""
    lines = [
        f"channel: {report.ledger_entries} entries, signatures and hash chain "
        + ("OK" if not report.problems else "FAILED")
    ]
    lines += [f"  - {p}" for p in report.problems]
    lines.append(f"{'round':>5}  {'verdict':7}  {'accepted':24}  {'G(r) sha256':14}  details")
    for v in report.rounds:
        rejected = "; ".join(f"{p}: {why}" for p, why in sorted(v.rejected.items()))
        details = "; ".join(v.problems) or (f"rejected {rejected}" if rejected else "")
        if v.failure is not None and not v.problems:
            details = f"round failed: {v.failure}" + (f"; {details}" if details else "")
        lines.append(
            f"{v.round:>5}  {'OK' if v.ok else 'FAILED':7}  {','.join(v.accepted):24}  "
            f"{v.digest[:12]:14}  {details}"
        )
    if report.planned_rounds:
        failed = f" ({len(report.failed)} failed)" if report.failed else ""
        lines.append(
            f"rounds: {report.completed} of {report.planned_rounds} planned completed{failed}"
            + (" (partial audit)" if report.partial and report.incomplete else "")
        )
    if report.failed:
        lines.append("failed rounds (G(r) = G(r-1), checked against the channel):")
        lines += [f"  - {line}" for line in report.failed]
    if report.incomplete:
        lines.append(f"INCOMPLETE: {report.completed} of {report.planned_rounds} rounds")
    lines += [f"  - {line}" for line in report.incomplete]
    if report.named:
        lines.append("parties named by others:")
        for party, reasons in sorted(report.named.items()):
            lines += [f"  - {party}: {reason}" for reason in reasons]
    lines.append("audit: PASSED" if report.ok else "audit: FAILED")
    return "\n".join(lines)


def audit_from_files(
    config: SessionConfig,
    *,
    out_dir: Path,
    data_root: Path,
    only_round: int | None = None,
    partial: bool = False,
) -> AuditReport:
    """Open the session's channel and store under ``out_dir`` and audit them."""
    from zkadapt.assembly import (
        learner_for,
        make_scheme,
        make_strategy_for,
        open_party_store,
        open_session_channel,
    )

    store = open_party_store(config, None, out_dir)
    channel = open_session_channel(config, out_dir)
    learner = learner_for(config, config.party_names[0], data_root=data_root)
    strategy = make_strategy_for(config)
    scheme = make_scheme(config, strategy, n_samples=1, timeout_s=0.0)
    try:
        return audit_session(
            config,
            channel=channel,
            store=store,
            learner=learner,
            scheme=scheme,
            strategy=strategy,
            only_round=only_round,
            partial=partial,
        )
    finally:
        channel.close()
