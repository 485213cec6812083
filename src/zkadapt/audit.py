"""Public audit of a session: re-derive every round from the channel and the store alone.

``zkadapt audit SESSION.toml`` needs no secret. It checks (issue 5):

* the channel: every signature and the order (the local ledger's hash chain via
  ``verify_all``; a Hydra head's confirmed snapshots);
* per round: the accepted set — the submissions before the cut (the ``close_votes``-th
  ``PhaseClosed`` vote, by the parties' own channel rules), each re-fetched and re-verified
  (digest, binding, proofs) exactly as a party does it — equals what the parties announced
  in ``RoundDone``;
* the aggregate: recomputed from the accepted updates (the homomorphic sum of the accepted
  ciphertexts when encrypted); each posted decryption share is checked against that sum with
  its proof, and t valid shares are combined;
* the result: G(r) = outer_step(G(r-1), mean delta), replayed from G(0), must hash to the
  digest the most parties posted in ``RoundDone``; a minority that posted another digest
  is named (THREATS.md section 3: one wrong digest does not stop a session);
* failed rounds: a round with ``RoundFailed`` (and no ``RoundDone``) is an outcome, re-checked
  from the channel as the parties' machine decides it: fewer than q updates verify before the
  cut (or, encrypted, fewer than ``min_accepted``), fewer than t valid decryption shares
  precede the failing ``RoundFailed`` votes, or the decrypted aggregate is out of range;
  G(r) = G(r-1) is replayed through it, and failed rounds are listed with their reasons;
* completeness: every round the session file plans must have a checked outcome, done or
  failed (a missing round fails the audit unless ``partial``; a session with no outcome
  always fails), and no signed entry may appear twice (a replayed row);
* membership (docs/membership.md): the members of every round and when each newcomer joined,
  was refused or was marked absent, as the parties' machines derive it from channel order
  (``config.channel_rules()``); each round is recomputed with its own members;
* who was named: every party the others rejected, every entry the channel rules find
  impossible (a protocol violation) and every digest the recomputation contradicts are
  listed with the party and the reason.

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
from zkadapt.errors import ChannelError, CryptoError, ProtocolError, ZkAdaptError
from zkadapt.learning.base import Learner
from zkadapt.learning.checkpoint import state_digest
from zkadapt.protocol import machine
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import Message, Rejected, RoundFailed
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
    #: ``(party, why)``: a party whose announcement the recomputation contradicts.
    named: list[tuple[str, str]] = field(default_factory=list)
    #: The round's active members by the channel rules (empty without ``[membership]``).
    members: list[str] = field(default_factory=list)

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
        source: where the channel was read from, when the backend says (a Hydra head's
            node, or a persisted copy of a finished head and what was checked).
        named: every party a ``Rejected`` entry named -> the reasons, in channel order.
    """

    ledger_entries: int = 0
    source: str = ""
    problems: list[str] = field(default_factory=list)
    rounds: list[RoundVerdict] = field(default_factory=list)
    planned_rounds: int = 0
    completed: int = 0
    incomplete: list[str] = field(default_factory=list)
    partial: bool = False
    named: dict[str, list[str]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    #: One line per membership change (joined, refused, absent), in channel order.
    membership: list[str] = field(default_factory=list)

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
    report.source = str(getattr(channel, "provenance", "") or "")
    try:
        entries = channel.history(0)  # every backend verifies signatures and order on read
        verify_all = getattr(channel, "verify_all", None)  # the local ledger's hash chain
        report.ledger_entries = verify_all() if verify_all else len(entries)
    except ChannelError as exc:
        report.problems.append(f"channel: {exc}")
        return report
    if not entries:  # nothing read is nothing verified: never a pass
        report.problems.append(
            "channel: no entries to audit (nothing was read from "
            + (report.source or "the channel")
            + ")"
        )
        return report
    history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
    history.extend(entries)
    for dropped in history.dropped:  # signed by its sender: that party's fault, not the log's
        report.named.setdefault(dropped.sender, []).append(
            f"seq {dropped.seq}, by the channel rules: entry ignored: {dropped.reason}"
        )
    report.problems += replayed_entries(entries)
    for posted in history.posted:
        if isinstance(posted.message, Rejected):
            rejected = posted.message
            report.named.setdefault(rejected.party, []).append(
                f"round {rejected.round}, by {posted.sender}: {rejected.reason}"
            )
    observed = history.observed
    report.membership = membership_lines(history)
    for r in range(1, config.session.rounds + 1):
        for sender, why in observed.view(r).violations if observed else ():
            report.named.setdefault(sender, []).append(
                f"round {r}, by the channel rules: protocol violation: {why}"
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
        close_votes=config.close_votes,
        min_accepted=config.min_accepted,
    )
    initial = learner.initial_state(derive_seed(config.seed_id, "init"))
    codec = FlatCodec(initial)
    io = _ObserverIO(ctx, codec, history, store)
    vector, momentum = codec.flatten(initial), None
    for r in range(1, config.session.rounds + 1):
        outcome = _announced(history, r)
        if outcome is None:
            break
        failure = _failure_of(history, r, outcome)
        verdict = RoundVerdict(r, members=list(history.members(r) or ()))
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
        for party, why in verdict.named:
            report.named.setdefault(party, []).append(f"round {r}, by the audit: {why}")
        if only_round is None or only_round == r:
            report.rounds.append(verdict)
        if verdict.problems and only_round is None:
            break  # later rounds build on this one
    report.completed = _completed_rounds(history, config.session.rounds)
    report.incomplete = _incomplete_rounds(history, report.completed, config.session.rounds)
    if only_round is not None and only_round > report.completed:
        report.problems.append(f"round {only_round} was not completed")
    return report


def membership_lines(history: SessionHistory) -> list[str]:
    """Who joined (and from which round), who was refused and why, who was marked absent."""
    roster = history.roster
    if roster is None:
        return []
    lines = [f"{n.name} joined: member from round {n.round}" for n in roster.admitted]
    lines += [f"{q.name} asked to join: pending at the end" for q in roster.pending]
    lines += [f"{f.name or '?'} refused: {f.reason}" for f in roster.refused]
    lines += [f"{p} absent from round {r}" for p, r in roster.absent]
    return lines


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


def _announced(history: SessionHistory, r: int) -> tuple[str | None, tuple[str, ...]] | None:
    """What the channel announces for round ``r`` by the parties' rules: the digest most
    parties announced or a failure (:func:`machine.announced_outcome`); None: no outcome."""
    if history.observed is not None:
        return machine.announced_outcome(history.observed.view(r))
    done = history.round_done(r)
    if done:
        return next(iter(done.values())).model_sha256, tuple(done)
    failure = history.failure(r)
    return (None, ()) if failure is not None else None


def _failure_of(
    history: SessionHistory, r: int, outcome: tuple[str | None, tuple[str, ...]]
) -> RoundFailed | None:
    """The announced failure of round ``r`` (the first ``RoundFailed`` of its announcers),
    or None when the round is announced done."""
    digest, who = outcome
    if digest is not None:
        return None
    failures = history.failures(r)
    return next((m for sender, m in failures if sender in who or not who), None)


def _completed_rounds(history: SessionHistory, planned: int) -> int:
    """How many rounds from 1 on have an announced outcome, done or failed (the session's
    completed prefix; the audit checks each outcome against the channel)."""
    done = 0
    while done < planned and _announced(history, done + 1) is not None:
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
    or fewer than t valid decryption shares precede the failing ``RoundFailed`` vote in channel
    order (``machine._decrypt``); anything else is a failure the channel does not back.
    """
    history = io.history
    cut = history.cut(r)
    if cut is None:
        verdict.problems.append("RoundFailed before the submit phase closed")
        return
    quorum = io.ctx.quorum
    if history.rules is not None and history.observed is not None:  # of the round's members
        quorum = machine.quorum_of(history.rules, history.observed, r)
    candidates = _candidates(history, r)
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
    needed = scheme.shares_needed
    if len(accepted) < quorum or (needed and len(accepted) < io.ctx.min_accepted):
        return
    if needed == 0:
        verdict.problems.append(
            f"RoundFailed, but {len(accepted)} updates verify and the quorum is {quorum}"
        )
        return
    try:
        mean_from_channel(scheme, r, accepted, io)
    except ProtocolError:
        return  # fewer than t valid shares before the failing votes: the failure stands
    except CryptoError:
        return  # the decrypted aggregate is out of range: the failure stands
    verdict.problems.append(
        f"RoundFailed, but {needed} valid decryption shares (t = {needed}) decrypt an aggregate "
        "in range"
    )


def _candidates(history: SessionHistory, r: int) -> dict[str, Any]:
    """Each candidate's first ``Submitted`` of round ``r``: the submitters before the cut,
    as the parties' rules read the channel."""
    if history.observed is None:
        return history.submissions(r, before=history.cut(r))
    cut_parties = history.observed.view(r).cut or ()
    every = history.submissions(r)
    return {name: every[name] for name in cut_parties}


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
    for name, posted in sorted(_candidates(history, r).items()):
        try:
            accepted[name] = verify_submission(scheme, r, posted.message, io)  # type: ignore[arg-type]
        except UpdateRejected as exc:
            verdict.rejected[name] = exc.reason
    verdict.accepted = sorted(accepted)
    announcers = (_announced(history, r) or (None, ()))[1]
    everyone = history.round_done(r)
    done = {p: m for p, m in everyone.items() if p in announcers}
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
    for party, message in sorted(everyone.items()):
        if party not in done and message.model_sha256 != verdict.digest:  # a minority's
            verdict.named.append(
                (
                    party,
                    f"announced G({r}) digest {message.model_sha256[:12]}, the audit "
                    f"recomputes {verdict.digest[:12]}",
                )
            )
    return vector, momentum


def format_report(report: AuditReport) -> str:
    """A per-round verdict table (plain text) and the channel findings."""
    lines = [f"source: {report.source}"] if report.source else []
    lines.append(
        f"channel: {report.ledger_entries} entries, signatures and hash chain "
        + ("OK" if not report.problems else "FAILED")
    )
    lines += [f"  - {p}" for p in report.problems]
    lines.append(f"{'round':>5}  {'verdict':7}  {'accepted':24}  {'G(r) sha256':14}  details")
    for v in report.rounds:
        rejected = "; ".join(f"{p}: {why}" for p, why in sorted(v.rejected.items()))
        details = "; ".join(v.problems) or (f"rejected {rejected}" if rejected else "")
        if v.failure is not None and not v.problems:
            details = f"round failed: {v.failure}" + (f"; {details}" if details else "")
        if report.membership and v.members:  # membership changed: who was a member
            members = f"members {','.join(v.members)}"
            details = members + (f"; {details}" if details else "")
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
    if report.membership:
        lines.append("membership (by the channel rules):")
        lines += [f"  - {line}" for line in report.membership]
    if report.failed:
        lines.append("failed rounds (G(r) = G(r-1), checked against the channel):")
        lines += [f"  - {line}" for line in report.failed]
    if report.incomplete:
        lines.append(f"INCOMPLETE: {report.completed} of {report.planned_rounds} rounds")
    lines += [f"  - {line}" for line in report.incomplete]
    if report.named:
        lines.append("parties named (by others, the channel rules or the audit):")
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
