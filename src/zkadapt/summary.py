"""The session report, built once from the channel history (pure; no I/O).

Everything a round report says — who was accepted or rejected and why, how many bytes
were uploaded, how long the round took, how each party evaluated G(r) — was posted on the
channel by the parties themselves, so any party (or an auditor) rebuilds the same report
from the same history. What the channel cannot know (baselines trained off the channel, the
runner's wall time, which party processes failed) is passed in, so :func:`build_report` is
a function of its arguments alone and returns a new :class:`SessionReport` each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zkadapt import __version__
from zkadapt.config import SessionConfig
from zkadapt.protocol import machine
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import RoundDone, RoundFailed
from zkadapt.protocol.schemes import SCHEME_STEPS
from zkadapt.session_report import (
    Baselines,
    FinalResult,
    PartyInfo,
    Rejection,
    RoundReport,
    RoundSplit,
    SessionReport,
    Timing,
)

_GLOBAL = "global_"

#: The ``RoundDone.timing`` phases that make up private aggregation, the privacy scheme's own
#: work: ``seal_s`` (quantize, mask or encrypt, prove), ``verify_s`` (open and verify every
#: submission), ``sum_s``, ``share_s`` (make and prove decryption shares), ``check_share_s``
#: (verify others' shares), ``combine_s`` (combine shares, unmask, decode the mean). Waiting
#: for the other parties, uploads and downloads are not in it (they are ``other_s``).
AGGREGATION_PHASES = ("seal_s", *SCHEME_STEPS)


@dataclass(frozen=True)
class ReportFacts:
    """What the report takes from the session file: identity, the config itself, the roster."""

    session_id: str
    config: Mapping[str, Any]
    rounds_total: int
    parties: tuple[tuple[str, str | None], ...]  # (name, public key), sorted by name
    zkadapt_version: str = __version__

    @classmethod
    def of(cls, config: SessionConfig) -> ReportFacts:
        """The facts of ``config`` (its JSON dump is what ``report.json`` shows as ``config``)."""
        return cls(
            session_id=config.session_id,
            config=config.model_dump(mode="json"),
            rounds_total=config.session.rounds,
            parties=tuple((p.name, p.public_key) for p in sorted(config.parties, key=_name)),
        )


def _name(party: Any) -> str:
    return str(party.name)


def split_metrics(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Split a ``RoundDone.metrics`` dict into (global-test metrics, the party's own metrics)."""
    global_ = {k[len(_GLOBAL) :]: v for k, v in metrics.items() if k.startswith(_GLOBAL)}
    own = {k: v for k, v in metrics.items() if not k.startswith(_GLOBAL)}
    return global_, own


def build_report(
    facts: ReportFacts,
    history: SessionHistory,
    *,
    baselines: Baselines | None = None,
    wall_s: float | None = None,
    failed_parties: Mapping[str, str] | None = None,
    restarts: Mapping[str, int] | None = None,
) -> SessionReport:
    """The session's report (its JSON form is README "Reading the report").

    Args:
        facts: What the session file says (:meth:`ReportFacts.of`).
        history: The verified channel history.
        baselines: Baselines computed off the channel, or None when skipped.
        wall_s: The runner's wall time; None when no run was timed (then ``timing`` is empty).
        failed_parties: Party -> last log line of each failed process, when a runner watched
            the processes; None otherwise.
        restarts: Party -> how often the runner restarted it; None when no runner watched.
    """
    rounds = round_reports(facts.rounds_total, history)
    timing = None
    if wall_s is not None:
        timing = Timing(wall_s, tuple(entry.duration_s or 0.0 for entry in rounds))
    return SessionReport(
        session_id=facts.session_id,
        zkadapt_version=facts.zkadapt_version,
        config=dict(facts.config),
        parties=party_infos(facts, history),
        rounds=rounds,
        completed=len(rounds) == facts.rounds_total,
        final=FinalResult.of(rounds),
        baselines=baselines,
        timing=timing,
        failed_parties=None if failed_parties is None else dict(failed_parties),
        restarts=None if restarts is None else dict(restarts),
    )


def round_reports(rounds_total: int, history: SessionHistory) -> tuple[RoundReport, ...]:
    """One report per round with an outcome: done, or failed (the session went on from
    G(r) = G(r-1), so a failed round may sit in the middle).

    The outcome is what the most parties announced (:func:`machine.announced_outcome`, on
    the history read by the parties' own channel rules; a history without rules takes every
    party's first ``RoundDone`` or ``RoundFailed``): a malicious minority's digest does not
    speak for the round. Entries the rules find impossible are listed as rejections of their
    sender ``by`` ``"channel rules"`` (THREATS.md section 4: everyone named is listed).
    """
    observed = history.observed
    rounds: list[RoundReport] = []
    for r in range(1, rounds_total + 1):
        done = history.round_done(r)
        failure = history.failure(r)
        violations: tuple[Rejection, ...] = ()
        if observed is not None:
            view = observed.view(r)
            violations = tuple(
                Rejection(party=sender, reason=f"protocol violation: {why}", by=CHANNEL_RULES)
                for sender, why in view.violations
            )
            outcome = machine.announced_outcome(view)
            if outcome is None:
                break
            digest, who = outcome
            done = {p: m for p, m in done.items() if digest is not None and p in who}
            failure = _first_failure(history, r, who) if digest is None else None
        if done:
            rounds.append(_round_report(r, done, history, violations))
        elif failure is not None:
            previous = next((x.model_sha256 for x in reversed(rounds) if x.model_sha256), None)
            rounds.append(
                RoundReport(
                    round=r,
                    accepted=(),
                    rejected=_rejections(history, r) + violations,
                    duration_s=None,
                    bytes_uploaded=sum(p.message.size for p in history.submissions(r).values()),  # type: ignore[attr-defined]
                    bytes_decryption_shares=None,
                    timing_s={},
                    global_metrics={},
                    per_party={},
                    model_sha256=previous,
                    failure=failure.reason,
                    members=history.members(r),
                )
            )
        else:
            break
    return tuple(rounds)


#: ``Rejection.by`` for an entry the channel rules find impossible (no party posted it).
CHANNEL_RULES = "channel rules"


def _first_failure(history: SessionHistory, r: int, who: tuple[str, ...]) -> RoundFailed | None:
    """The first ``RoundFailed`` of round ``r`` by one of ``who``."""
    for sender, message in history.failures(r):
        if sender in who:
            return message
    return None


def _rejections(history: SessionHistory, r: int) -> tuple[Rejection, ...]:
    return tuple(
        Rejection(party=rej.party, reason=rej.reason, by=sender)
        for sender, rej in history.rejections(r)
    )


def _round_report(
    r: int, done: dict[str, RoundDone], history: SessionHistory, violations: tuple[Rejection, ...]
) -> RoundReport:
    """Round ``r`` as its first ``RoundDone`` (by sender name) and the channel tell it."""
    first = done[sorted(done)[0]]
    return RoundReport(
        round=r,
        accepted=tuple(first.accepted),
        rejected=_rejections(history, r) + violations,
        duration_s=max(d.duration_s for d in done.values()),
        bytes_uploaded=sum(p.message.size for p in history.submissions(r).values()),  # type: ignore[attr-defined]
        bytes_decryption_shares=sum(
            p.message.size  # type: ignore[attr-defined]
            for p in history.decryption_shares(r)
        ),
        timing_s=_slowest_phases(done),
        global_metrics=split_metrics(first.metrics)[0],
        per_party={name: split_metrics(d.metrics)[1] for name, d in sorted(done.items())},
        model_sha256=first.model_sha256,
        split=round_split(done),
        members=history.members(r),
    )


def phase_split(party: str, round_s: float, timing: Mapping[str, float]) -> RoundSplit:
    """One party's round as train / evaluate / private aggregation / other (pure).

    ``other_s`` is what the three named parts leave of ``round_s`` (never below 0: phases
    timed with another clock may add up to a little more than the round).
    """
    train = timing.get("train_s", 0.0)
    evaluate = timing.get("evaluate_s", 0.0)
    aggregation = sum(timing.get(phase, 0.0) for phase in AGGREGATION_PHASES)
    other = max(0.0, round_s - train - evaluate - aggregation)
    return RoundSplit(party, round_s, train, evaluate, aggregation, other)


def round_split(done: Mapping[str, RoundDone]) -> RoundSplit | None:
    """The split of the party whose private aggregation took the largest share of its round.

    None when no party timed its evaluation (``evaluate_s``): such a ``RoundDone`` was
    written before the split existed, and its evaluation would hide in ``other_s``.
    """
    splits = [
        phase_split(name, message.duration_s, message.timing)
        for name, message in sorted(done.items())
        if "evaluate_s" in message.timing and message.duration_s > 0
    ]
    return max(splits, key=lambda split: split.aggregation_share or 0.0, default=None)


def _slowest_phases(done: dict[str, RoundDone]) -> dict[str, float]:
    """Per phase (train, seal, collect, aggregate incl. decrypt, ...): the slowest party."""
    phases: dict[str, float] = {}
    for message in done.values():
        for phase, seconds in message.timing.items():
            phases[phase] = max(phases.get(phase, 0.0), seconds)
    return dict(sorted(phases.items()))


def party_infos(facts: ReportFacts, history: SessionHistory) -> tuple[PartyInfo, ...]:
    """Name, public key and declared training-set size (from its first update) of every party:
    the listed ones, then (with ``[membership]``) each newcomer the channel admitted, with the
    round it joined from (docs/membership.md)."""
    sizes: dict[str, int] = {}
    for r in range(1, facts.rounds_total + 1):
        for name, posted in history.submissions(r).items():
            sizes.setdefault(name, posted.message.n_samples)  # type: ignore[attr-defined]
    roster = history.roster
    first = 1 if roster is not None and history.members(1) is not None else None
    listed = tuple(
        PartyInfo(name=name, public_key=key, n_train=sizes.get(name), joined_round=first)
        for name, key in facts.parties
    )
    newcomers = tuple(
        PartyInfo(name=n.name, public_key=n.key, n_train=sizes.get(n.name), joined_round=n.round)
        for n in (roster.admitted if first is not None and roster is not None else ())
    )
    return listed + newcomers
