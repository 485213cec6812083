"""HTML of the dashboard: one page made of sections, each re-rendered on the server.

:func:`render_sections` turns a :class:`~zkadapt.dashboard.view.Snapshot` into
``{section id: HTML}``; :func:`render_page` wraps them in the document, and the event stream
sends the same fragments when they change. Every value that comes from a session file or the
channel is HTML-escaped here (party names, reasons, URIs, error messages).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from zkadapt import __version__
from zkadapt import formatting as fmt
from zkadapt.dashboard.actions import ActionsView
from zkadapt.dashboard.assets import CSS, JS
from zkadapt.dashboard.svg import (
    GLOBAL_COLOR,
    Chart,
    Reference,
    Series,
    bar_chart,
    color_for,
    line_chart,
)
from zkadapt.dashboard.view import (
    DROPPED,
    FAILED,
    FOREIGN,
    HEAD_EVENT,
    REFUSED,
    VERIFIED,
    PartyCard,
    Snapshot,
)
from zkadapt.session_report import Rejection, RoundReport

_TIMELINE_BADGES = {
    VERIFIED: "ok",
    DROPPED: "bad",
    FAILED: "bad",
    FOREIGN: "idle",
    HEAD_EVENT: "busy",
    REFUSED: "bad",
}

#: Most timeline rows shown (newest first); the count of older ones is stated.
TIMELINE_LIMIT = 300

_BADGES = {
    "RoundDone": "ok",
    "Joined": "idle",
    "not joined": "idle",
    "Submitted": "busy",
    "PhaseClosed": "busy",
    "DecryptionShare": "busy",
    "Rejected": "bad",
    "RoundFailed": "bad",
}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Sequence[str], *, numeric: Sequence[int] = ()) -> str:
    cells = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _td(value: Any, *, numeric: bool = False) -> str:
    return f'<td class="num">{_e(value)}</td>' if numeric else f"<td>{_e(value)}</td>"


# -- sections -----------------------------------------------------------------------------


def render_status(snap: Snapshot) -> str:
    """Header line: progress of the session."""
    done = len(snap.session_report.rounds)
    state = "complete" if snap.completed else f"round {done} of {snap.rounds_total} done"
    if snap.in_progress and snap.in_progress.get("failed"):
        state = f"round {snap.in_progress['round']} failed"
    if snap.replay:
        state = f"replay: {state}"
    return (
        f'<span id="progress">{_e(state)}</span> · {len(snap.parties)} parties · '
        f"{snap.channel.entries} channel entries"
    )


def render_alerts(snap: Snapshot) -> str:
    """Problems first: an unreadable or tampered channel, a failed round, a missing ledger."""
    parts = []
    if snap.channel.error:
        parts.append(
            '<div class="alert" role="alert">The channel could not be read or did not verify: '
            f"{_e(snap.channel.error)}. Only entries verified before this was detected are "
            "shown; nothing after it is trusted. <code>zkadapt audit</code> checks the whole "
            "session.</div>"
        )
    if snap.in_progress and snap.in_progress.get("failed"):
        parts.append(
            f'<div class="alert" role="alert">Round {snap.in_progress["round"]} failed: '
            f"{_e(snap.in_progress['failed'])}</div>"
        )
    if snap.channel.waiting:
        parts.append(
            '<p class="note">Waiting for the session to start: no ledger yet at '
            f"<code>{_e(snap.channel.location)}</code>. This page updates by itself.</p>"
        )
    return "".join(parts)


def render_cards(snap: Snapshot) -> str:
    """One status card per party."""
    if not snap.cards:
        return '<p class="note">no parties</p>'
    return f'<div class="cards">{"".join(_card(c) for c in snap.cards)}</div>'


def _card(card: PartyCard) -> str:
    badge = _BADGES.get(card.phase, "idle")
    joined = (
        f"joined, {card.n_samples:,} samples"
        if card.n_samples
        else ("joined" if card.joined else "not joined yet")
    )
    where = f"round {card.round}" if card.round else "before round 1"
    scores = " · ".join(f"{_e(k)} {_e(fmt.metric(k, v))}" for k, v in sorted(card.metrics.items()))
    rejections = "".join(f"<li>rejected in {_e(r)}</li>" for r in card.rejections)
    return (
        f'<div class="card" data-party="{_e(card.name)}" data-phase="{_e(card.phase)}" '
        f'data-round="{card.round}"><h3><span>{_e(card.name)}</span>'
        f'<span class="badge {badge}">{_e(card.phase)}</span></h3>'
        f"<div>{_e(where)} · {card.rounds_done} rounds done</div>"
        f'<div class="detail">{_e(card.detail)}</div>'
        f'<div class="detail">{_e(joined)} · last seen {_e(fmt.clock(card.last_seen))}</div>'
        + (f'<div class="detail">own split: {scores}</div>' if scores else "")
        + (f"<ul>{rejections}</ul>" if rejections else "")
        + "</div>"
    )


def render_metrics(snap: Snapshot) -> str:
    """Per-round metric charts (primary metric and loss), per party and global, as SVG.

    The headline metric is the report's (:attr:`SessionReport.primary_metric`), the one
    ``report.py`` plots; before any metric exists the chart is a neutral "Metric" one.
    """
    report = snap.session_report
    key = report.primary_metric
    centralized = (report.baselines.centralized if report.baselines else None) or {}
    charts = []
    for name, title in ((key, fmt.metric_title(key) if key else "Metric"), ("loss", "Loss")):
        series = [_global_series(report.rounds, name)] + [
            _party_series(report.rounds, party, name, i) for i, party in enumerate(snap.parties)
        ]
        value = fmt.finite(centralized.get(name)) if name else None
        refs = [Reference("centralized baseline", value)] if value is not None else []
        largest = max((y for s in series for _, y in s.points), default=1.0)
        if value is not None:
            largest = max(largest, value)
        tick = fmt.axis_metric(name or "", largest)
        chart = Chart(f"{title} per round", y_label=name or "metric", fmt=tick)
        charts.append(line_chart(chart, series, refs))
    note = (
        '<p class="note">global: G(r) on the whole test set; parties: G(r) on their own test '
        "split, as each posted it in RoundDone.</p>"
    )
    return f'<div class="charts">{"".join(charts)}</div>{note}'


def _global_series(rounds: Sequence[RoundReport], key: str | None) -> Series:
    points = tuple(
        (float(r.round), v)
        for r in rounds
        if key and (v := fmt.finite(r.global_metrics.get(key))) is not None
    )
    return Series("global", points, GLOBAL_COLOR, width=3.0)


def _party_series(rounds: Sequence[RoundReport], party: str, key: str | None, i: int) -> Series:
    points = []
    for r in rounds:
        v = fmt.finite((r.per_party.get(party) or {}).get(key)) if key else None
        if v is not None:
            points.append((float(r.round), v))
    return Series(party, tuple(points), color_for(i), width=1.5)


def render_rounds(snap: Snapshot) -> str:
    """Bytes and time per round: a table (with the round in progress) and two bar charts."""
    rounds = snap.session_report.rounds
    shares = any(r.bytes_decryption_shares for r in rounds)
    members = any(r.members is not None for r in rounds)  # [membership]: who was a member
    rows = [_round_row(r, shares=shares, members=members) for r in rounds]
    if snap.in_progress:
        rows.append(
            _progress_row(snap.in_progress, len(snap.parties), shares=shares, members=members)
        )
    head = ["round", *(["members"] if members else []), "accepted", "rejected", "uploaded"]
    head += ["decryption shares"] if shares else []
    head += ["duration", "where the time went"]
    first = 4 if members else 3  # the first numeric column
    table = (
        _table(head, rows, numeric=tuple(range(first, first + (3 if shares else 2))))
        if rows
        else '<p class="note">no round started yet</p>'
    )
    uploaded = [(r.round, float(r.bytes_uploaded or 0)) for r in rounds]
    unit, scale = fmt.size_unit(max((v for _, v in uploaded), default=0.0))
    bytes_chart = bar_chart(
        Chart("Bytes uploaded per round", y_label=unit, fmt=lambda v: f"{v:.4g} {unit}"),
        [(r, v / scale) for r, v in uploaded],
    )
    time_chart = bar_chart(
        Chart("Duration per round (slowest party)", y_label="seconds", fmt=_tick_seconds),
        [(r.round, r.duration_s or 0.0) for r in rounds],
    )
    return f'{table}{_joined_note(snap)}<div class="charts">{bytes_chart}{time_chart}</div>'


def _joined_note(snap: Snapshot) -> str:
    """When each newcomer joined (docs/membership.md), under the rounds table."""
    joined = [
        f"{p.name} joined: member from round {p.joined_round}"
        for p in snap.session_report.parties
        if p.joined_round is not None and p.joined_round > 1
    ]
    return f'<p class="note joined">{_e("; ".join(joined))}</p>' if joined else ""


def _tick_seconds(value: float) -> str:
    """A duration tick; an axis may start below zero, a duration never does."""
    return fmt.duration(max(value, 0.0))


def _rejected_text(rejected: Sequence[Rejection]) -> str:
    """``party: reason (by a, b)`` per rejected update; the same verdict is posted by many."""
    by: dict[tuple[str, str], list[str]] = {}
    for r in rejected:
        by.setdefault((r.party, r.reason), []).append(str(r.by))
    return "; ".join(f"{p}: {why} (by {', '.join(s)})" for (p, why), s in by.items()) or "none"


def _time_text(r: RoundReport) -> str:
    """Train / evaluate / private aggregation (share of the round) when the round has its
    split (``RoundReport.split``), else the four slowest phases."""
    if r.split is not None:
        s = r.split
        return (
            f"train {fmt.duration(s.train_s)}, evaluate {fmt.duration(s.evaluate_s)}, "
            f"private aggregation {fmt.duration(s.aggregation_s)} "
            f"({fmt.share(s.aggregation_share)}), other {fmt.duration(s.other_s)}"
        )
    return ", ".join(
        f"{k.removesuffix('_s')} {fmt.duration(v)}"
        for k, v in sorted(r.timing_s.items(), key=lambda kv: -kv[1])[:4]
    )


def _members_text(r: RoundReport) -> str:
    """The round's members; a newcomer's first round names it (docs/membership.md)."""
    return ", ".join(r.members or ())


def _round_row(r: RoundReport, *, shares: bool, members: bool = False) -> str:
    phases = _time_text(r)
    cls = ' class="rejected"' if r.rejected else ""
    return (
        f'<tr{cls} data-round="{_e(r.round)}">{_td(r.round)}'
        + (_td(_members_text(r)) if members else "")
        + f"{_td(', '.join(r.accepted))}{_td(_rejected_text(r.rejected))}"
        f"{_td(fmt.size(r.bytes_uploaded), numeric=True)}"
        + (_td(fmt.size(r.bytes_decryption_shares), numeric=True) if shares else "")
        + f"{_td(fmt.duration(r.duration_s), numeric=True)}{_td(phases or fmt.MISSING)}</tr>"
    )


def _progress_row(
    p: Mapping[str, Any], n_parties: int, *, shares: bool, members: bool = False
) -> str:
    if p.get("failed"):
        state = f"failed: {p['failed']}"
    elif p.get("closed"):
        state = f"submit phase closed; {len(p['done'])} of {n_parties} parties done"
    else:
        state = f"collecting: {len(p['submitted'])} of {n_parties} submitted"
    span = 4 if shares else 3
    rejected = [Rejection.from_json(item) for item in p.get("rejected", [])]
    return (
        f'<tr class="progress" data-round="{_e(p["round"])}">{_td(p["round"])}'
        + (_td(", ".join(p.get("members", ()))) if members else "")
        + f"{_td('submitted: ' + (', '.join(p['submitted']) or 'none'))}"
        f"{_td(_rejected_text(rejected))}"
        f'<td colspan="{span}">{_e(state)}</td></tr>'
    )


def render_channel(snap: Snapshot) -> str:
    """The channel's state: backend, location, entry count, whether every entry verified."""
    c = snap.channel
    hydra = c.backend == "hydra"
    checked = (
        "every entry's signature and transaction witness checked, in confirmed-snapshot order"
        if hydra
        else "every entry's signature and hash-chain link checked"
    )
    if c.waiting:
        chain = '<span class="badge idle">waiting for the ledger</span>'
    elif c.chain_ok:
        chain = f'<span class="badge ok">verified</span> {_e(checked)}'
    else:
        chain = f'<span class="badge bad">FAILED</span> {_e(c.error or "")}'
    rows = [
        f"<tr><th>backend</th>{_td(c.backend)}</tr>",
        f"<tr><th>{'hydra-node' if hydra else 'ledger'}</th>"
        f"<td><code>{_e(c.location)}</code></td></tr>",
        f'<tr><th>entries</th><td id="entry-count">{c.entries}</td></tr>',
        f"<tr><th>{'verification' if hydra else 'hash chain'}</th><td>{chain}</td></tr>",
    ]
    if c.head is not None:
        head = c.head.head_id or "none yet"
        deadline = (
            f"; contestation until {c.head.contestation_deadline}"
            if c.head.status == "Closed" and c.head.contestation_deadline
            else ""
        )
        rows.append(
            f'<tr><th>head</th><td id="head-status" data-status="{_e(c.head.status)}">'
            f'<span class="badge busy">{_e(c.head.status)}</span> <code>{_e(head)}</code>'
            f"{_e(deadline)}</td></tr>"
        )
    rows.append(f"<tr><th>session</th><td><code>{_e(snap.session_id)}</code></td></tr>")
    return f"<table><tbody>{''.join(rows)}</tbody></table>"


def render_timeline(snap: Snapshot) -> str:
    """Channel messages, newest first, each with its verification status."""
    rows = list(reversed(snap.timeline))
    older = max(0, len(rows) - TIMELINE_LIMIT)
    body = []
    for row in rows[:TIMELINE_LIMIT]:
        badge = _TIMELINE_BADGES[row.status]
        cls = row.status.replace(" ", "-")
        if row.kind == "Rejected":
            cls += " rejected"
        body.append(
            f'<tr class="{_e(cls)}" data-kind="{_e(row.kind)}">'
            f"{_td(row.seq if row.seq is not None else fmt.MISSING, numeric=True)}"
            f"{_td(fmt.clock(row.timestamp))}{_td(row.sender)}{_td(row.kind)}"
            f"{_td(row.summary)}"
            f'<td><span class="badge {badge}" title="{_e(row.note)}">{_e(row.status)}</span>'
            + (f'<div class="note">{_e(row.note)}</div>' if row.status != VERIFIED else "")
            + "</td></tr>"
        )
    if not body:
        return '<p class="note">no channel messages yet</p>'
    more = f'<p class="note">{older} older entries not shown</p>' if older else ""
    table = _table(
        ["seq", "time", "sender", "message", "details", "verification"], body, numeric=(0,)
    )
    return f'<div class="timeline">{table}</div>{more}'


#: Escrow table columns, in the order of the ``zkadapt escrow status`` line.
ESCROW_COLUMNS = ("party", "deposit", "last signal round", "kill votes", "settlement", "flags")


def render_escrow(snap: Snapshot) -> str:
    """The escrow table: the same headline and per-party facts as ``zkadapt escrow status``."""
    e = snap.escrow
    rows = [
        f'<tr data-party="{_e(r.party)}">{_td(r.party)}{_td(r.deposit)}'
        f"{_td(r.signal, numeric=True)}{_td(r.kill_votes)}{_td(r.settlement)}"
        f"{_td(', '.join(r.flags))}</tr>"
        for r in e.rows
    ]
    return (
        f'<p id="escrow-headline" data-status="{_e(e.status)}">{_e(e.headline)}</p>'
        + _table(ESCROW_COLUMNS, rows, numeric=(2,))
        + f'<p class="note">{_e(e.note)}</p>'
    )


def render_actions(snap: Snapshot) -> str:
    """Operator actions: buttons only with ``--allow-actions``, only where the head allows."""
    a = snap.actions
    mode = (
        '<span class="badge busy">actions allowed (--allow-actions)</span>'
        if a.allowed
        else '<span class="badge idle">read-only</span>'
    )
    buttons = _action_buttons(a) if a.allowed else ""
    log = "".join(
        f'<li class="{"ok" if r.ok else ("bad" if r.ok is False else "busy")}" '
        f'data-action="{_e(r.action)}">{_e(fmt.clock(r.at))} {_e(r.message)}</li>'
        for r in reversed(a.log)
    )
    return (
        f"<p>{mode}</p>"
        + (f'<p class="note" id="actions-note">{_e(a.note)}</p>' if a.note else "")
        + buttons
        + (f'<ul class="action-log">{log}</ul>' if log else "")
    )


def _action_buttons(a: ActionsView) -> str:
    if a.running:
        return '<p class="note">an action is waiting for the hydra-node…</p>'
    return "".join(
        f'<button type="button" class="action" data-action="{_e(x.name)}" '
        f'data-command="{_e(x.command)}" data-label="{_e(x.label)}" '
        f'data-effect="{_e(x.effect)}">{_e(x.label)}…</button>'
        for x in a.actions
    )


#: Section id -> (title, renderer, wide). The page and the event stream use the same table.
SECTIONS: dict[str, tuple[str, Callable[[Snapshot], str], bool]] = {
    "alerts": ("", render_alerts, True),
    "cards": ("Parties", render_cards, True),
    "metrics": ("Metrics per round", render_metrics, True),
    "rounds": ("Bytes and time per round", render_rounds, True),
    "timeline": ("Channel timeline", render_timeline, True),
    "channel": ("Channel", render_channel, False),
    "escrow": ("Escrow", render_escrow, False),
    "actions": ("Operator actions", render_actions, False),
}


def render_sections(snap: Snapshot) -> dict[str, str]:
    """``{section id: inner HTML}`` for every section, plus the header's ``status``."""
    sections = {key: render(snap) for key, (_, render, _) in SECTIONS.items()}
    sections["status"] = render_status(snap)
    return sections


def render_page(
    snap: Snapshot, *, events_url: str, replay: bool = False, token: str | None = None
) -> str:
    """The whole document; the inline script then follows ``events_url``.

    ``token`` (given only when actions are allowed) is the dashboard process's action token:
    the page sends it with every action request, and the confirmation dialog is included.
    """
    sections = render_sections(snap)
    panels = []
    for key, (title, _, wide) in SECTIONS.items():
        heading = f"<h2>{_e(title)}</h2>" if title else ""
        if key == "alerts":
            panels.append(f'<div id="alerts" class="wide">{sections[key]}</div>')
            continue
        cls = "panel wide" if wide else "panel"
        extra = (
            '<p id="action-result" role="status" aria-live="polite"></p>'
            if key == "actions" and token
            else ""
        )
        panels.append(
            f'<section class="{cls}" aria-label="{_e(title)}">{heading}'
            f'<div id="{key}">{sections[key]}</div>{extra}</section>'
        )
    switch = (
        '<a href="/">follow live</a>'
        if replay
        else '<a href="/?replay=1">replay from the start</a>'
    )
    meta = f'<meta name="zkadapt-action-token" content="{_e(token)}">' if token else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,">{meta}'
        f"<title>ZK-ADAPT · {_e(snap.session_name)}</title><style>{CSS}</style></head>"
        f'<body data-events="{_e(events_url)}"' + (' data-replay="1"' if replay else "") + ">"
        f"<header><h1>ZK-ADAPT · {_e(snap.session_name)}</h1>"
        f'<span class="meta">session <code>{_e(snap.session_id[:12])}</code></span>'
        f'<span class="meta" id="status">{sections["status"]}</span>'
        f'<span id="live" class="live off">connecting…</span>'
        f'<span class="meta">{switch}</span></header>'
        f"<main>{''.join(panels)}</main>"
        + (CONFIRM_DIALOG if token else "")
        + f"<script>{JS}</script></body></html>"
    )


#: The confirmation step of every action: the page fills in the action and its effect.
CONFIRM_DIALOG = (
    '<dialog id="confirm" aria-labelledby="confirm-title">'
    '<h2 id="confirm-title"></h2><p id="confirm-text"></p>'
    '<p class="note">The dashboard sends it to the hydra-node and waits for its answer.</p>'
    '<div class="buttons"><button type="button" id="confirm-no">Cancel</button>'
    '<button type="button" id="confirm-yes" class="danger"></button></div></dialog>'
)


def render_error_page(title: str, message: str) -> str:
    """A plain page that states what is wrong (never a stack trace)."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ZK-ADAPT dashboard · {_e(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>ZK-ADAPT dashboard</h1><span class="meta">v{_e(__version__)}</span>'
        f'</header><main><section class="panel wide"><h2>{_e(title)}</h2>'
        f'<div class="alert" role="alert">{_e(message)}</div>'
        '<p class="note"><a href="/">back to the dashboard</a></p></section></main></body></html>'
    )
