"""Rendering of a finished session's report: ``report.json``, ``metrics.png`` and ``report.html``.

This module holds no protocol logic. The session runner builds the typed report once
(:func:`zkadapt.summary.build_report`, a :class:`~zkadapt.session_report.SessionReport`)
and hands it here; this module writes its JSON form and renders it. Every public function
also takes a ``report.json`` document (a mapping), read as
:meth:`SessionReport.from_json <zkadapt.session_report.SessionReport.from_json>` reads it.

Numbers are formatted by :mod:`zkadapt.formatting`, the rules the dashboard shows them by;
the headline metric is the report's :attr:`~zkadapt.session_report.SessionReport.primary_metric`.
Plots use the Agg canvas directly, so neither ``pyplot`` nor the global matplotlib backend is
touched.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from zkadapt import formatting as fmt
from zkadapt.atomic_file import write_atomic
from zkadapt.session_report import Metrics, Rejection, RoundReport, RoundSplit, SessionReport

REPORT_JSON = "report.json"
METRICS_PNG = "metrics.png"
REPORT_HTML = "report.html"

_PNG_DPI = 110

#: What the public functions accept: the typed report, or its ``report.json`` document.
ReportLike = SessionReport | Mapping[str, Any]


def as_report(report: ReportLike) -> SessionReport:
    """``report`` as a :class:`SessionReport` (a mapping is read as a ``report.json`` document).

    Raises:
        ValueError: The mapping is not a report (see :meth:`SessionReport.from_json`).
    """
    return report if isinstance(report, SessionReport) else SessionReport.from_json(report)


def write_report(report: ReportLike, out_dir: Path) -> list[Path]:
    """Write ``report.json``, ``metrics.png`` and ``report.html`` into ``out_dir``.

    Each file is written atomically (:func:`zkadapt.atomic_file.write_atomic`, mode 0644), so
    a reader never sees a half-written file. ``out_dir`` is created if needed.

    Args:
        report: The session report. A mapping is written to ``report.json`` exactly as given
            (so a document read back is written back unchanged) and rendered as the report it
            describes. It is not modified.
        out_dir: Directory that receives the three files.

    Returns:
        The written paths, in the order JSON, PNG, HTML.

    Raises:
        TypeError: If ``report`` holds a value JSON cannot encode (nothing is written).
    """
    out_dir = Path(out_dir)
    document = report.to_json() if isinstance(report, SessionReport) else report
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    typed = as_report(report)
    png = render_metrics_png(typed)
    page = render_html(typed, png)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / REPORT_JSON, out_dir / METRICS_PNG, out_dir / REPORT_HTML]
    for path, data in zip(paths, (text.encode("utf-8"), png, page.encode("utf-8")), strict=True):
        write_atomic(path, data, mode=0o644)  # a report is meant to be shared
    return paths


def markdown_summary(report: ReportLike) -> str:
    """Return a compact markdown table of the federated result against the baselines.

    Rows: the federated model's final metrics, the centralized baseline, the base model (causal
    LMs) and each party's local-only baseline (baselines that were skipped are left out).
    Columns: the primary metric and the loss.

    Args:
        report: The session report.

    Returns:
        The table as markdown text, ending with a newline.
    """
    typed = as_report(report)
    keys = _final_metric_keys(typed)
    header = ["Model", *(fmt.metric_title(key) for key in keys)]
    lines = [_md_row(header), _md_row(["---"] + ["---:"] * len(keys))]
    for label, metrics in _comparison_rows(typed):
        lines.append(_md_row([label, *(fmt.metric(key, metrics.get(key)) for key in keys)]))
    return "\n".join(lines) + "\n"


def markdown_time_split(report: ReportLike) -> str:
    """Return a compact markdown table of where each round's time went, or ``""``.

    One row per timed round (:class:`~zkadapt.session_report.RoundSplit`, the party whose
    private aggregation took the largest share of its round): the round, training,
    evaluation, private aggregation (the privacy scheme's own work), the rest (uploads,
    waiting for the others, key set-up, checkpoints) and aggregation's share of the round.
    Empty when no round was timed that way (a report from before the split existed).

    Args:
        report: The session report.
    """
    rows = _split_rows(as_report(report))
    if not rows:
        return ""
    lines = [_md_row(list(_SPLIT_HEAD)), _md_row(["---:", "---"] + ["---:"] * 6)]
    lines += [_md_row(_split_cells(r, split)) for r, split in rows]
    return "\n".join(lines) + "\n"


def primary_metric(report: ReportLike) -> str | None:
    """The report's headline metric (:func:`zkadapt.formatting.primary_metric`), or None.

    Args:
        report: The session report.
    """
    return as_report(report).primary_metric


# ---------------------------------------------------------------------------------- reading


def _final_metric_keys(report: SessionReport) -> list[str]:
    """Columns of the final-vs-baselines table: the primary metric and the loss."""
    return [key for key in (report.primary_metric, "loss") if key is not None]


def _comparison_rows(report: SessionReport) -> list[tuple[str, Metrics]]:
    """(label, metrics) rows: federated final, centralized, base model, each party's local-only."""
    final = report.final
    label = "Federated (final" + (f", round {final.round})" if final.round is not None else ")")
    rows: list[tuple[str, Metrics]] = [(label, final.metrics)]
    baselines = report.baselines
    if baselines is None:
        return rows
    if baselines.centralized:
        rows.append(("Centralized", baselines.centralized))
    if baselines.base_model:
        rows.append(("Base model (G(0))", baselines.base_model))
    for name in report.party_names():
        local = baselines.local(name)
        if local:
            rows.append((f"Local-only ({name})", local))
    return rows


#: Columns of the time-split table (Markdown and HTML).
_SPLIT_HEAD = (
    "Round",
    "Party",
    "Round time",
    "Train",
    "Evaluate",
    "Private aggregation",
    "Other",
    "Aggregation share",
)


def _split_rows(report: SessionReport) -> list[tuple[int, RoundSplit]]:
    """(round, split) of every round that has a time split."""
    return [(entry.round, entry.split) for entry in report.rounds if entry.split is not None]


def _split_cells(round_: int, split: RoundSplit) -> list[str]:
    """The cells of one time-split row, formatted."""
    seconds = (split.round_s, split.train_s, split.evaluate_s, split.aggregation_s, split.other_s)
    return [
        str(round_),
        split.party,
        *(fmt.duration(value) for value in seconds),
        fmt.share(split.aggregation_share),
    ]


def _md_row(cells: Sequence[str]) -> str:
    """One markdown table row, with ``|`` in cells escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


# ------------------------------------------------------------------------------------- plot


def render_metrics_png(report: ReportLike) -> bytes:
    """Render the two-panel metrics figure (primary metric and loss per round) as PNG bytes.

    One thin line per party, a thick line for the global model, a dashed line for the
    centralized baseline and a dotted line per party for its local-only baseline.

    Args:
        report: The session report.

    Returns:
        The PNG file's bytes.
    """
    typed = as_report(report)
    figure = Figure(figsize=(12.5, 5.0), layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg canvas to this figure only
    metric_axes, loss_axes = figure.subplots(1, 2)
    names = typed.party_names()
    colors = _party_colors(names)
    _plot_panel(metric_axes, typed, typed.primary_metric, colors)
    _plot_panel(loss_axes, typed, "loss", colors)
    handles, labels = _legend_entries((metric_axes, loss_axes), names)
    if handles:
        rows = 2 if any(label.endswith(" local-only") for label in labels) else 1
        figure.legend(
            handles,
            labels,
            loc="outside lower center",
            frameon=False,
            ncol=min(math.ceil(len(labels) / rows), 6),
            fontsize="small",
        )
    figure.suptitle(_plain_text(f"ZK-ADAPT session {typed.session_id}"), fontsize="medium")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_PNG_DPI)
    return buffer.getvalue()


def _plot_panel(
    axes: Axes, report: SessionReport, key: str | None, colors: Mapping[str, Any]
) -> None:
    """Draw one metric's per-round lines and baselines on ``axes``."""
    title = fmt.metric_title(key) if key else "Metric"
    axes.set_title(f"{title} per round")
    axes.set_xlabel("Round")
    axes.set_ylabel(title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    drawn = _plot_rounds(axes, report, key, colors) if key else 0
    drawn += _plot_baselines(axes, report, key, colors) if key else 0
    if not drawn or key is None:
        axes.text(
            0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes, color="gray"
        )
        return
    values = [fmt.finite(y) for line in axes.get_lines() for y in line.get_ydata()]
    largest = max((v for v in values if v is not None), default=1.0)
    tick = fmt.axis_metric(key, largest)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: tick(value)))


def _plot_rounds(axes: Axes, report: SessionReport, key: str, colors: Mapping[str, Any]) -> int:
    """Draw the per-party and global lines; return how many lines were drawn."""
    drawn = 0
    for name, color in colors.items():
        xs, ys = _series(report.rounds, key, name)
        if xs:
            axes.plot(
                xs,
                ys,
                color=color,
                linewidth=1.4,
                alpha=0.85,
                marker="o",
                markersize=3,
                label=_plain_text(name),
            )
            drawn += 1
    xs, ys = _series(report.rounds, key, None)
    if xs:
        axes.plot(
            xs,
            ys,
            color="black",
            linewidth=3.0,
            marker="o",
            markersize=5,
            label="Federated (global)",
            zorder=3,
        )
        drawn += 1
    return drawn


def _plot_baselines(axes: Axes, report: SessionReport, key: str, colors: Mapping[str, Any]) -> int:
    """Draw the centralized and local-only reference lines; return how many were drawn."""
    baselines = report.baselines
    if baselines is None:
        return 0
    drawn = 0
    value = fmt.finite((baselines.centralized or {}).get(key))
    if value is not None:
        axes.axhline(
            value,
            color="black",
            linestyle="--",
            linewidth=1.4,
            alpha=0.8,
            label="Centralized baseline",
        )
        drawn += 1
    for name, color in colors.items():
        value = fmt.finite((baselines.local(name) or {}).get(key))
        if value is not None:
            axes.axhline(
                value,
                color=color,
                linestyle=":",
                linewidth=1.1,
                label=_plain_text(f"{name} local-only"),
            )
            drawn += 1
    return drawn


def _series(
    rounds: Sequence[RoundReport], key: str, party: str | None
) -> tuple[list[int], list[float]]:
    """(round numbers, finite values) of ``key`` for one party, or the global model when None."""
    xs: list[int] = []
    ys: list[float] = []
    for entry in rounds:
        scope = entry.global_metrics if party is None else entry.per_party.get(party) or {}
        value = fmt.finite(scope.get(key))
        if value is not None:
            xs.append(entry.round)
            ys.append(value)
    return xs, ys


def _party_colors(names: Sequence[str]) -> dict[str, Any]:
    """A stable color per party from the tab10 (or tab20) palette."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: palette(index % palette.N) for index, name in enumerate(names)}


def _legend_entries(axes_list: Iterable[Axes], names: Sequence[str]) -> tuple[list[Any], list[str]]:
    """Legend handles and labels of several axes, each label once.

    Each party's line is followed by its local-only baseline, so that with two legend rows
    every column holds one party; the global model and the centralized baseline come last.
    """
    entries: dict[str, Any] = {}
    for axes in axes_list:
        handles, labels = axes.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    order = [_plain_text(label) for name in names for label in (name, f"{name} local-only")]
    order += ["Federated (global)", "Centralized baseline"]
    labels = [label for label in order if label in entries]
    labels += [label for label in entries if label not in labels]
    return [entries[label] for label in labels], labels


def _plain_text(text: str) -> str:
    """Text that matplotlib shows verbatim: no mathtext, not hidden from the legend."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


# ------------------------------------------------------------------------------------- html

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;
color:#1f2328;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#f6f8fa}
img{max-width:100%;height:auto}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
code{font-size:.85rem;word-break:break-all}
.muted{color:#656d76}
"""


def render_html(report: ReportLike, png: bytes) -> str:
    """Render the self-contained HTML page (no external assets or scripts).

    Args:
        report: The session report.
        png: The metrics figure, embedded as a base64 ``data:`` URI.

    Returns:
        The page's text; every value from the report is HTML-escaped.
    """
    typed = as_report(report)
    session = _esc(typed.session_id)
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ZK-ADAPT report — {session}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>ZK-ADAPT session <code>{session}</code></h1>",
        _html_overview(typed),
        f'<img alt="Metrics per round" src="data:image/png;base64,{image}">',
        "<h2>Rounds</h2>",
        _html_rounds_table(typed),
        _html_time_split(typed),
        "<h2>Final model vs baselines</h2>",
        _html_comparison_table(typed),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _esc(value: Any) -> str:
    """HTML-escape any value's string form, quotes included."""
    return html.escape(str(value), quote=True)


def _html_overview(report: SessionReport) -> str:
    """A definition list: version, parties, rounds, wall time and final model digest."""
    parties = [
        f"{_esc(party.name)} ({_esc(fmt.MISSING if party.n_train is None else party.n_train)} "
        "train examples)"
        for party in report.parties
    ]
    wall = report.timing.wall_s if report.timing else None
    items = [
        ("ZK-ADAPT version", _esc(report.zkadapt_version or fmt.MISSING)),
        ("Parties", ", ".join(parties) or fmt.MISSING),
        ("Rounds", _esc(len(report.rounds))),
        ("Wall time", _esc(fmt.duration(wall))),
        ("Final model SHA-256", f"<code>{_esc(report.final.model_sha256 or fmt.MISSING)}</code>"),
    ]
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f"<dl>{body}</dl>"


def _html_rounds_table(report: SessionReport) -> str:
    """The rounds table: one ``<tr>`` per round in ``<tbody>``."""
    keys = fmt.ordered_metrics(key for entry in report.rounds for key in entry.global_metrics)
    head = ["Round", "Accepted", "Rejected", "Duration", "Uploaded"]
    head += [f"Global {fmt.metric_title(key).lower()}" for key in keys]
    rows = []
    for entry in report.rounds:
        cells = [
            _td(entry.round, numeric=True),
            _td(", ".join(entry.accepted) or fmt.MISSING),
            _html_rejections(entry.rejected),
            _td(fmt.duration(entry.duration_s), numeric=True),
            _td(fmt.size(entry.bytes_uploaded), numeric=True),
            *(_td(fmt.metric(key, entry.global_metrics.get(key)), numeric=True) for key in keys),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        return '<p class="muted">No round completed.</p>'
    return _html_table("rounds", head, rows)


def _html_time_split(report: SessionReport) -> str:
    """The time-split table (:func:`markdown_time_split`), or nothing when no round has one."""
    rows = [
        "<tr>"
        + "".join(_td(cell, numeric=i != 1) for i, cell in enumerate(_split_cells(round_, split)))
        + "</tr>"
        for round_, split in _split_rows(report)
    ]
    if not rows:
        return ""
    note = (
        '<p class="muted">Per round, the party whose private aggregation (the privacy '
        "scheme's own work: seal, verify the others' updates, sum, make and check decryption "
        "shares, combine and unmask) took the largest share of its round. Other: uploads, "
        "downloads, waiting for the other parties, key set-up, checkpoints.</p>"
    )
    return "<h2>Time per round</h2>\n" + _html_table("time-split", _SPLIT_HEAD, rows) + note


def _html_rejections(rejected: Sequence[Rejection]) -> str:
    """A table cell listing each rejection as ``party: reason (by voter)``."""
    if not rejected:
        return _td(fmt.MISSING)
    items = []
    for item in rejected:
        text = f"{item.party}: {item.reason or 'no reason given'}"
        if item.by:
            text += f" (by {item.by})"
        items.append(_esc(text))
    return "<td>" + "<br>".join(items) + "</td>"


def _html_comparison_table(report: SessionReport) -> str:
    """The final-vs-baselines table (skipped baselines are noted, not shown)."""
    keys = _final_metric_keys(report)
    rows = [
        "<tr>"
        + _td(label)
        + "".join(_td(fmt.metric(key, metrics.get(key)), numeric=True) for key in keys)
        + "</tr>"
        for label, metrics in _comparison_rows(report)
    ]
    head = ["Model", *(fmt.metric_title(key) for key in keys)]
    table = _html_table("comparison", head, rows)
    if report.baselines is None:
        table += '\n<p class="muted">Baselines were not run for this session.</p>'
    return table


def _html_table(table_id: str, head: Sequence[str], rows: Sequence[str]) -> str:
    """A table with an escaped header row and pre-rendered body rows."""
    header = "".join(f"<th>{_esc(name)}</th>" for name in head)
    body = "\n".join(rows)
    return (
        f'<table id="{table_id}"><thead><tr>{header}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody></table>"
    )


def _td(value: Any, *, numeric: bool = False) -> str:
    """One escaped table cell, right-aligned when numeric."""
    css = ' class="num"' if numeric else ""
    return f"<td{css}>{_esc(value)}</td>"
