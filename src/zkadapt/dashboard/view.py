"""The dashboard's view of one session, derived from channel entries alone (pure; no I/O).

:class:`SessionView` is fed verified channel entries in order (by the live watcher, or step
by step for a replay) and produces a :class:`Snapshot`: per-party status cards, a timeline
of messages with their verification status, and the typed report that
:func:`zkadapt.summary.build_report` builds from the same history — so the dashboard shows
exactly what the report (and any auditor) would say, formatted by the same rules
(:mod:`zkadapt.formatting`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from zkadapt import formatting as fmt
from zkadapt.channel.base import Entry
from zkadapt.config import SessionConfig
from zkadapt.dashboard.actions import ActionRecord, ActionsView, HeadState, actions_view
from zkadapt.dashboard.escrow import EscrowView, escrow_view
from zkadapt.protocol.history import Posted, SessionHistory
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    DecryptionShare,
    Joined,
    KeyDealt,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
)
from zkadapt.session_report import Baselines, SessionReport
from zkadapt.summary import ReportFacts, build_report, split_metrics

#: Verification status of a timeline row.
VERIFIED, DROPPED, FOREIGN, FAILED = "verified", "dropped", "other session", "failed"
#: Status of a Hydra head event in the timeline (the node announced it; ``REFUSED``: the
#: node refused or failed a command: ``CommandFailed``, ``PostTxOnChainFailed`` ...).
HEAD_EVENT, REFUSED = "head event", "refused"
#: Who a head event's timeline row names as its sender.
HYDRA_NODE = "hydra-node"


@dataclass(frozen=True)
class TimelineRow:
    """One channel entry as the timeline shows it."""

    seq: int | None
    timestamp: float | None
    sender: str
    kind: str
    round: int | None
    summary: str
    status: str
    note: str = ""


@dataclass(frozen=True)
class PartyCard:
    """One party's state as far as the channel shows it."""

    name: str
    joined: bool
    n_samples: int | None
    round: int
    phase: str
    detail: str
    rounds_done: int
    rejections: tuple[str, ...]
    metrics: dict[str, float]
    last_seen: float | None


@dataclass(frozen=True)
class ChannelState:
    """Where the channel is and whether everything read from it verified."""

    backend: str
    location: str
    entries: int
    chain_ok: bool
    waiting: bool
    error: str | None
    head: HeadState | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything one rendering of the page needs."""

    session_id: str
    session_name: str
    rounds_total: int
    parties: tuple[str, ...]
    cards: tuple[PartyCard, ...]
    timeline: tuple[TimelineRow, ...]
    session_report: SessionReport
    in_progress: dict[str, Any] | None
    channel: ChannelState
    escrow: EscrowView
    actions: ActionsView
    replay: bool = False
    taken_at: float = field(default_factory=time.time)

    @property
    def completed(self) -> bool:
        """Whether every round of the session is done."""
        return self.session_report.completed

    @property
    def report(self) -> dict[str, Any]:
        """The report as ``report.json`` would hold it (the page's JSON API serves its rounds)."""
        return self.session_report.to_json()

    @property
    def baseline(self) -> dict[str, Any]:
        """The baselines of the finished run's ``report.json`` in its JSON form (``{}``: none)."""
        baselines = self.session_report.baselines
        return baselines.to_json() if baselines else {}


class SessionView:
    """Channel entries of one session, accumulated in order, and what they mean."""

    def __init__(self, config: SessionConfig, *, allow_actions: bool = False) -> None:
        self.config = config
        self.allow_actions = allow_actions
        self.history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
        self.entries: list[Entry] = []

    @property
    def last_seq(self) -> int:
        """Sequence number of the last entry fed in (0 when none)."""
        return self.history.last_seq

    def extend(self, entries: Iterable[Entry]) -> int:
        """Add verified entries in channel order; returns how many were new."""
        new = [e for e in entries if e.seq > self.history.last_seq]
        self.entries.extend(new)
        self.history.extend(new)
        return len(new)

    def snapshot(
        self,
        channel: ChannelState,
        *,
        baselines: Baselines | None = None,
        replay: bool = False,
        actions: tuple[ActionRecord, ...] = (),
    ) -> Snapshot:
        """The page's data as of the entries fed so far (``actions``: the operator's log).

        A replay never offers actions: it shows the past. ``baselines`` (from the finished
        run's ``report.json``) are drawn as reference lines.
        """
        config = self.config
        report = build_report(ReportFacts.of(config), self.history, baselines=baselines)
        return Snapshot(
            session_id=config.session_id,
            session_name=config.session.name,
            rounds_total=config.session.rounds,
            parties=tuple(config.party_names),
            cards=tuple(self._card(name) for name in config.party_names),
            timeline=tuple(self._timeline(channel)),
            session_report=report,
            in_progress=self._in_progress(len(report.rounds)),
            channel=channel,
            escrow=escrow_view(config, self.entries, self.history),
            actions=actions_view(
                config.channel.backend,
                channel.head,
                allow_actions=self.allow_actions and not replay,
                log=() if replay else actions,
            ),
            replay=replay,
        )

    # -- timeline ------------------------------------------------------------------------

    def _timeline(self, channel: ChannelState) -> list[TimelineRow]:
        posted = {p.seq: p for p in self.history.posted}
        dropped = {d.seq: d for d in self.history.dropped}
        rows = []
        for entry in self.entries:
            sender = entry.envelope.sender
            if entry.seq in posted:
                p = posted[entry.seq]
                rows.append(
                    TimelineRow(
                        entry.seq,
                        entry.timestamp,
                        sender,
                        p.message.TYPE,
                        p.message.round,
                        self._describe(p),
                        VERIFIED,
                        _VERIFIED_NOTE.get(channel.backend, "signature verified"),
                    )
                )
            elif entry.seq in dropped:
                rows.append(
                    TimelineRow(
                        entry.seq,
                        entry.timestamp,
                        sender,
                        "—",
                        None,
                        "ignored by the protocol",
                        DROPPED,
                        dropped[entry.seq].reason,
                    )
                )
            else:
                rows.append(
                    TimelineRow(
                        entry.seq,
                        entry.timestamp,
                        sender,
                        "—",
                        None,
                        "",
                        FOREIGN,
                        "a message of another session sharing this channel",
                    )
                )
        rows = _with_head_events(rows, channel.head)
        if channel.error:
            rows.append(
                TimelineRow(
                    None, None, "—", "—", None, "channel read failed", FAILED, channel.error
                )
            )
        return rows

    def _describe(self, posted: Posted) -> str:
        """:func:`describe`, noting what a ``PhaseClosed`` vote did: counted toward the cut,
        closed the phase, or came after the cut (no effect)."""
        text = describe(posted.message)
        message = posted.message
        if isinstance(message, PhaseClosed):
            cut = self.history.cut(message.round, message.phase)
            needed = self.config.close_votes
            if cut is not None and cut < posted.seq:
                text += f"; already closed at seq {cut}, no effect"
            elif cut == posted.seq:
                text += f"; vote {needed} of {needed}: the phase closes here"
            else:
                votes = {
                    p.sender
                    for p in self.history.posted
                    if isinstance(p.message, PhaseClosed)
                    and p.message.round == message.round
                    and p.seq <= posted.seq
                }
                text += f"; vote {len(votes)} of {needed} to close"
        return text

    # -- party cards ---------------------------------------------------------------------

    def _card(self, name: str) -> PartyCard:
        own = [p for p in self.history.posted if p.sender == name]
        joined = bool(own)
        n_samples = next(
            (p.message.n_samples for p in own if isinstance(p.message, (Joined, Submitted))), None
        )
        done = [p.message for p in own if isinstance(p.message, RoundDone)]
        by: dict[tuple[int, str], list[str]] = {}
        for p in self.history.posted:
            if isinstance(p.message, Rejected) and p.message.party == name:
                by.setdefault((p.message.round, p.message.reason), []).append(p.sender)
        rejections = tuple(
            f"round {r}: {reason} (by {', '.join(senders)})" for (r, reason), senders in by.items()
        )
        metrics = split_metrics(done[-1].metrics)[1] if done else {}
        round_, phase, detail = self._phase(name, own)
        return PartyCard(
            name=name,
            joined=joined,
            n_samples=n_samples,
            round=round_,
            phase=phase,
            detail=detail,
            rounds_done=len({m.round for m in done}),
            rejections=rejections,
            metrics=metrics,
            last_seen=own[-1].timestamp if own else None,
        )

    def _phase(self, name: str, own: list[Posted]) -> tuple[int, str, str]:
        """``(round, phase, detail)``: the latest channel event that concerns ``name``."""
        if not own:
            return 0, "not joined", "no message from this party yet"
        round_ = max(p.message.round for p in own)
        if round_ == 0:
            return 0, "Joined", "declared its training set; waiting for round 1"
        events = [
            p
            for p in self.history.posted
            if p.message.round == round_
            and (
                p.sender == name
                or isinstance(p.message, (PhaseClosed, RoundFailed))
                or (isinstance(p.message, Rejected) and p.message.party == name)
            )
        ]
        done = self.history.round_done(round_).get(name)
        last = events[-1]
        message = done if done is not None else last.message  # its own RoundDone wins
        cut = self.history.cut(round_)
        submitted = name in self.history.submissions(round_, before=cut)
        if isinstance(message, RoundDone):
            total = self.config.session.rounds
            after = "session complete" if round_ >= total else f"next: round {round_ + 1}"
            return round_, "RoundDone", f"G({round_}) {message.model_sha256[:12]}; {after}"
        if isinstance(message, RoundFailed):
            return round_, "RoundFailed", message.reason
        if isinstance(message, Rejected):
            return round_, "Rejected", f"by {last.sender}: {message.reason}"
        if isinstance(message, DecryptionShare):
            return round_, "DecryptionShare", "posted its decryption share"
        if isinstance(message, PhaseClosed) and cut is None:  # a vote, not the cut yet
            needed = self.config.close_votes
            if submitted:
                return round_, "Submitted", f"update uploaded; the phase closes at {needed} votes"
            return round_, "PhaseClosed", f"vote to close posted; the phase closes at {needed}"
        if isinstance(message, PhaseClosed):
            if not submitted:
                return round_, "PhaseClosed", "left out: no update before the cut"
            return round_, "PhaseClosed", f"{message.phase} phase closed; aggregating"
        if isinstance(message, Submitted):
            if cut is not None and last.seq > cut:
                return round_, "PhaseClosed", "left out: its update came after the cut"
            return round_, "Submitted", "update uploaded; waiting for the others"
        return round_, message.TYPE, describe(message)

    # -- the round in progress -----------------------------------------------------------

    def _in_progress(self, completed: int) -> dict[str, Any] | None:
        """The round after the last completed one, if the channel mentions it yet; a failed
        last round stays in view (with its reason) until the channel mentions the next one,
        since the session goes on from it (G(r) = G(r-1))."""
        r = completed + 1
        failed_last = completed and self.history.failure(completed) is not None
        if (
            failed_last
            and not self.history.round_done(completed)
            and self.history.last_round_started() < r
        ):
            r = completed
        if r > self.config.session.rounds or self.history.last_round_started() < r:
            return None
        failure = self.history.failure(r)
        members = self.history.members(r)  # [membership] only: who is a member of it
        return ({"members": list(members)} if members is not None else {}) | {
            "round": r,
            "submitted": sorted(self.history.submissions(r)),
            "closed": self.history.cut(r, SUBMIT_PHASE) is not None,
            "rejected": [
                {"party": m.party, "reason": m.reason, "by": s}
                for s, m in self.history.rejections(r)
            ],
            "done": sorted(self.history.round_done(r)),
            "failed": failure.reason if failure else None,
        }


_VERIFIED_NOTE = {
    "local": "signature and hash chain verified",
    "hydra": "signature and transaction witness verified; order of a confirmed snapshot",
}


def _with_head_events(rows: list[TimelineRow], head: HeadState | None) -> list[TimelineRow]:
    """Entry rows with the head's lifecycle events placed after the entry they followed."""
    if head is None or not head.events:
        return rows
    keyed = [((row.seq or 0, 0, i), row) for i, row in enumerate(rows)]
    for i, event in enumerate(head.events):
        status = REFUSED if event.failure else HEAD_EVENT
        row = TimelineRow(
            None,
            event.timestamp,
            HYDRA_NODE,
            event.tag,
            None,
            event.detail,
            status,
            f"announced by the hydra-node at {head.api}",
        )
        keyed.append(((event.after_seq, 1, i), row))
    return [row for _, row in sorted(keyed, key=lambda kr: kr[0])]


def describe(message: Message) -> str:
    """A one-line human summary of a channel message."""
    r = message.round
    if isinstance(message, Submitted):
        return (
            f"round {r}: update of {message.size:,} bytes, {message.n_samples:,} samples, "
            f"sha256 {message.sha256[:12]}"
        )
    if isinstance(message, PhaseClosed):
        return f"round {r}: {message.phase} phase closed ({message.reason})"
    if isinstance(message, Rejected):
        return f"round {r}: rejected {message.party}'s update: {message.reason}"
    if isinstance(message, RoundDone):
        scores = split_metrics(message.metrics)[0]
        shown = ", ".join(f"{k} {fmt.metric(k, v)}" for k, v in sorted(scores.items()))
        accepted = ", ".join(message.accepted) or "none"
        return f"round {r} done: G({r}) {message.model_sha256[:12]}, accepted {accepted}; {shown}"
    if isinstance(message, RoundFailed):
        return f"round {r} failed: {message.reason}"
    if isinstance(message, Joined):
        return f"joined with {message.n_samples:,} training samples"
    if isinstance(message, KeyDealt):
        return f"dealt threshold key epoch {message.epoch} ({message.key_id[:12]}) from round {r}"
    if isinstance(message, DecryptionShare):
        return f"round {r}: decryption share of {message.size:,} bytes"
    return f"round {r}: {message.TYPE}"
