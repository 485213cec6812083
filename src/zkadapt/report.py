"""Rendering of a finished session's report: ``report.json``, ``metrics.png`` and ``report.html``.

This module holds no protocol logic. The session runner builds the report dict and hands it
here; this module only writes it out. The dict is plain JSON data shaped like this (every
``baseline`` key may be missing when baselines were skipped, and ``rejected`` may be empty)::

    {"session_id": str, "zkadapt_version": str, "config": {...},
     "parties": [{"name": str, "public_key": str, "n_train": int}],
     "rounds": [{"round": 1, "accepted": ["alice"], "rejected": [{"party": "carol",
                 "reason": "digest mismatch", "by": "alice"}], "duration_s": 1.2,
                 "bytes_uploaded": 407080,
                 "metrics": {"global": {"accuracy": 0.91, "loss": 0.3},
                             "per_party": {"alice": {"accuracy": 0.9, "loss": 0.31}}}}],
     "baseline": {"local_only": {"alice": {"accuracy": 0.88, "loss": 0.4}},
                  "centralized": {"accuracy": 0.95, "loss": 0.2}},
     "final": {"round": 5, "metrics": {...}, "per_party": {...}, "model_sha256": "ab..."},
     "timing": {"wall_s": 30.5, "per_round_s": [...]}}

The primary metric is ``accuracy`` (a fraction in [0, 1], shown as a percentage) when any
metric dict has it, else ``perplexity`` (QLoRA sessions). Plots use the Agg canvas directly,
so neither ``pyplot`` nor the global matplotlib backend is touched.
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
from matplotlib.ticker import MaxNLocator, PercentFormatter

from zkadapt.atomic_file import write_atomic

REPORT_JSON = "report.json"
METRICS_PNG = "metrics.png"
REPORT_HTML = "report.html"

_PRIMARY_METRICS = ("accuracy", "perplexity")
_MISSING = "—"
_PNG_DPI = 110

Metrics = Mapping[str, Any]


def write_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write ``report.json``, ``metrics.png`` and ``report.html`` into ``out_dir``.

    Each file is written atomically (:func:`zkadapt.atomic_file.write_atomic`, mode 0644), so
    a reader never sees a half-written file. ``out_dir`` is created if needed.

    Args:
        report: The session report (see the module docstring); it must be JSON-serializable.
            It is not modified.
        out_dir: Directory that receives the three files.

    Returns:
        The written paths, in the order JSON, PNG, HTML.

    Raises:
        TypeError: If ``report`` holds a value JSON cannot encode.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    png = render_metrics_png(report)
    page = render_html(report, png)
    paths = [out_dir / REPORT_JSON, out_dir / METRICS_PNG, out_dir / REPORT_HTML]
    for path, data in zip(paths, (text.encode("utf-8"), png, page.encode("utf-8")), strict=True):
        write_atomic(path, data, mode=0o644)  # a report is meant to be shared
    return paths


def markdown_summary(report: Mapping[str, Any]) -> str:
    """Return a compact markdown table of the federated result against the baselines.

    Rows: the federated model's final metrics, the centralized baseline and each party's
    local-only baseline (baselines that were skipped are left out). Columns: the primary
    metric and the loss.

    Args:
        report: The session report (see the module docstring).

    Returns:
        The table as markdown text, ending with a newline.
    """
    keys = _final_metric_keys(report)
    header = ["Model", *(_metric_title(key) for key in keys)]
    lines = [_md_row(header), _md_row(["---"] + ["---:"] * len(keys))]
    for label, metrics in _comparison_rows(report):
        lines.append(_md_row([label, *(_format_metric(key, metrics.get(key)) for key in keys)]))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- reading


def primary_metric(report: Mapping[str, Any]) -> str | None:
    """Return ``"accuracy"`` if any metric dict in the report has it, else ``"perplexity"``.

    Args:
        report: The session report.

    Returns:
        The primary metric's key, or None when the report has neither.
    """
    present = set().union(*(metrics.keys() for metrics in _all_metric_dicts(report)))
    return next((key for key in _PRIMARY_METRICS if key in present), None)


def _all_metric_dicts(report: Mapping[str, Any]) -> list[Metrics]:
    """Every metric dict of the report: per round, final and baselines."""
    found: list[Metrics] = []
    for entry in _rounds(report):
        metrics = entry.get("metrics") or {}
        found.append(metrics.get("global") or {})
        found.extend((metrics.get("per_party") or {}).values())
    final = report.get("final") or {}
    found.append(final.get("metrics") or {})
    found.extend((final.get("per_party") or {}).values())
    baseline = report.get("baseline") or {}
    found.append(baseline.get("centralized") or {})
    found.extend((baseline.get("local_only") or {}).values())
    return [item for item in found if isinstance(item, Mapping)]


def _rounds(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The report's rounds, sorted by round number."""
    return sorted(report.get("rounds") or [], key=lambda entry: entry.get("round", 0))


def _party_names(report: Mapping[str, Any]) -> list[str]:
    """Party names in report order, then any name seen only in metrics or baselines."""
    names = [str(party.get("name")) for party in report.get("parties") or []]
    extra: set[str] = set()
    for entry in _rounds(report):
        extra.update((entry.get("metrics") or {}).get("per_party") or {})
    extra.update((report.get("baseline") or {}).get("local_only") or {})
    return names + sorted(str(name) for name in extra - set(names))


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _ordered_keys(keys: Iterable[str]) -> list[str]:
    """Metric keys with the primary metrics first, then ``loss``, then the rest sorted."""
    order = {key: rank for rank, key in enumerate((*_PRIMARY_METRICS, "loss"))}
    return sorted(set(keys), key=lambda key: (order.get(key, len(order)), key))


def _final_metric_keys(report: Mapping[str, Any]) -> list[str]:
    """Columns of the final-vs-baselines table: the primary metric and the loss."""
    primary = primary_metric(report)
    return [key for key in (primary, "loss") if key is not None]


def _comparison_rows(report: Mapping[str, Any]) -> list[tuple[str, Metrics]]:
    """(label, metrics) rows: federated final, centralized, base model, each party's local-only."""
    final = report.get("final") or {}
    label = "Federated (final"
    label += f", round {final['round']})" if final.get("round") is not None else ")"
    rows: list[tuple[str, Metrics]] = [(label, final.get("metrics") or {})]
    baseline = report.get("baseline") or {}
    if baseline.get("centralized"):
        rows.append(("Centralized", baseline["centralized"]))
    if baseline.get("base_model"):
        rows.append(("Base model (G(0))", baseline["base_model"]))
    local_only = baseline.get("local_only") or {}
    for name in _party_names(report):
        if local_only.get(name):
            rows.append((f"Local-only ({name})", local_only[name]))
    return rows


# ------------------------------------------------------------------------------- formatting


def _metric_title(key: str) -> str:
    """``"train_loss"`` -> ``"Train loss"``."""
    return key.replace("_", " ").capitalize()


def _format_metric(key: str, value: Any) -> str:
    """A metric value for a table: accuracy as a percentage, perplexity with 2 decimals."""
    number = _number(value)
    if number is None:
        return _MISSING if value is None else str(value)
    if math.isnan(number):
        return "nan"
    if key == "accuracy":
        return f"{number * 100:.2f} %" if number <= 1.0 else f"{number:.2f} %"
    if key == "perplexity":
        return f"{number:.2f}"
    return f"{number:.4f}"


def _format_bytes(value: Any) -> str:
    """A byte count in binary units (``397.5 KiB``)."""
    number = _number(value)
    if number is None:
        return _MISSING
    if abs(number) < 1024:
        return f"{number:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        number /= 1024
        if abs(number) < 1024 or unit == "GiB":
            break
    return f"{number:.1f} {unit}"


def _format_seconds(value: Any) -> str:
    """Seconds with two decimals, or the missing marker."""
    number = _number(value)
    return _MISSING if number is None else f"{number:.2f}"


def _md_row(cells: Sequence[str]) -> str:
    """One markdown table row, with ``|`` in cells escaped."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


# ------------------------------------------------------------------------------------- plot


def render_metrics_png(report: Mapping[str, Any]) -> bytes:
    """Render the two-panel metrics figure (primary metric and loss per round) as PNG bytes.

    One thin line per party, a thick line for the global model, a dashed line for the
    centralized baseline and a dotted line per party for its local-only baseline.

    Args:
        report: The session report.

    Returns:
        The PNG file's bytes.
    """
    figure = Figure(figsize=(12.5, 5.0), layout="constrained")
    FigureCanvasAgg(figure)  # attaches the Agg canvas to this figure only
    metric_axes, loss_axes = figure.subplots(1, 2)
    names = _party_names(report)
    colors = _party_colors(names)
    _plot_panel(metric_axes, report, primary_metric(report), colors)
    _plot_panel(loss_axes, report, "loss", colors)
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
    session = report.get("session_id", "")
    figure.suptitle(_plain_text(f"ZK-ADAPT session {session}"), fontsize="medium")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_PNG_DPI)
    return buffer.getvalue()


def _plot_panel(
    axes: Axes, report: Mapping[str, Any], key: str | None, colors: Mapping[str, Any]
) -> None:
    """Draw one metric's per-round lines and baselines on ``axes``."""
    title = _metric_title(key) if key else "Metric"
    axes.set_title(f"{title} per round")
    axes.set_xlabel("Round")
    axes.set_ylabel(title)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(True, alpha=0.3)
    drawn = _plot_rounds(axes, report, key, colors) if key else 0
    drawn += _plot_baselines(axes, report, key, colors) if key else 0
    if not drawn:
        axes.text(
            0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes, color="gray"
        )
        return
    if key == "accuracy":
        values = [line.get_ydata() for line in axes.get_lines()]
        top = max((float(y) for ys in values for y in ys if _number(y) is not None), default=1.0)
        axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0 if top <= 1.0 else 100.0))


def _plot_rounds(axes: Axes, report: Mapping[str, Any], key: str, colors: Mapping[str, Any]) -> int:
    """Draw the per-party and global lines; return how many lines were drawn."""
    rounds = _rounds(report)
    drawn = 0
    for name, color in colors.items():
        xs, ys = _series(rounds, key, name)
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
    xs, ys = _series(rounds, key, None)
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


def _plot_baselines(
    axes: Axes, report: Mapping[str, Any], key: str, colors: Mapping[str, Any]
) -> int:
    """Draw the centralized and local-only reference lines; return how many were drawn."""
    baseline = report.get("baseline") or {}
    drawn = 0
    value = _number((baseline.get("centralized") or {}).get(key))
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
    local_only = baseline.get("local_only") or {}
    for name, color in colors.items():
        value = _number((local_only.get(name) or {}).get(key))
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
    rounds: Sequence[Mapping[str, Any]], key: str, party: str | None
) -> tuple[list[int], list[float]]:
    """(round numbers, values) of ``key`` for one party, or the global model when None."""
    xs: list[int] = []
    ys: list[float] = []
    for entry in rounds:
        metrics = entry.get("metrics") or {}
        if party is None:
            scope = metrics.get("global") or {}
        else:
            scope = (metrics.get("per_party") or {}).get(party) or {}
        value = _number(scope.get(key))
        if value is not None and _number(entry.get("round")) is not None:
            xs.append(int(entry["round"]))
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


def render_html(report: Mapping[str, Any], png: bytes) -> str:
    """Render the self-contained HTML page (no external assets or scripts).

    Args:
        report: The session report.
        png: The metrics figure, embedded as a base64 ``data:`` URI.

    Returns:
        The page's text; every value from the report is HTML-escaped.
    """
    session = _esc(report.get("session_id", ""))
    image = base64.b64encode(png).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>ZK-ADAPT report — {session}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>ZK-ADAPT session <code>{session}</code></h1>",
        _html_overview(report),
        f'<img alt="Metrics per round" src="data:image/png;base64,{image}">',
        "<h2>Rounds</h2>",
        _html_rounds_table(report),
        "<h2>Final model vs baselines</h2>",
        _html_comparison_table(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _esc(value: Any) -> str:
    """HTML-escape any value's string form, quotes included."""
    return html.escape(str(value), quote=True)


def _html_overview(report: Mapping[str, Any]) -> str:
    """A definition list: version, parties, rounds, wall time and final model digest."""
    parties = [
        f"{_esc(party.get('name'))} ({_esc(party.get('n_train', _MISSING))} train examples)"
        for party in report.get("parties") or []
    ]
    final = report.get("final") or {}
    items = [
        ("ZK-ADAPT version", _esc(report.get("zkadapt_version", _MISSING))),
        ("Parties", ", ".join(parties) or _MISSING),
        ("Rounds", _esc(len(report.get("rounds") or []))),
        ("Wall time (s)", _format_seconds((report.get("timing") or {}).get("wall_s"))),
        ("Final model SHA-256", f"<code>{_esc(final.get('model_sha256', _MISSING))}</code>"),
    ]
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    return f"<dl>{body}</dl>"


def _html_rounds_table(report: Mapping[str, Any]) -> str:
    """The rounds table: one ``<tr>`` per round in ``<tbody>``."""
    rounds = _rounds(report)
    keys = _ordered_keys(
        key for entry in rounds for key in ((entry.get("metrics") or {}).get("global") or {})
    )
    head = ["Round", "Accepted", "Rejected", "Duration (s)", "Uploaded"]
    head += [f"Global {_metric_title(key).lower()}" for key in keys]
    rows = []
    for entry in rounds:
        metrics = (entry.get("metrics") or {}).get("global") or {}
        cells = [
            _td(entry.get("round", _MISSING), numeric=True),
            _td(", ".join(str(name) for name in entry.get("accepted") or []) or _MISSING),
            _html_rejections(entry.get("rejected") or []),
            _td(_format_seconds(entry.get("duration_s")), numeric=True),
            _td(_format_bytes(entry.get("bytes_uploaded")), numeric=True),
            *(_td(_format_metric(key, metrics.get(key)), numeric=True) for key in keys),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        return '<p class="muted">No round completed.</p>'
    return _html_table("rounds", head, rows)


def _html_rejections(rejected: Sequence[Mapping[str, Any]]) -> str:
    """A table cell listing each rejection as ``party: reason (by voter)``."""
    if not rejected:
        return _td(_MISSING)
    items = []
    for item in rejected:
        text = f"{item.get('party', '?')}: {item.get('reason', 'no reason given')}"
        if item.get("by"):
            text += f" (by {item['by']})"
        items.append(_esc(text))
    return "<td>" + "<br>".join(items) + "</td>"


def _html_comparison_table(report: Mapping[str, Any]) -> str:
    """The final-vs-baselines table (skipped baselines are noted, not shown)."""
    keys = _final_metric_keys(report)
    rows = [
        "<tr>"
        + _td(label)
        + "".join(_td(_format_metric(key, metrics.get(key)), numeric=True) for key in keys)
        + "</tr>"
        for label, metrics in _comparison_rows(report)
    ]
    table = _html_table("comparison", ["Model", *(_metric_title(key) for key in keys)], rows)
    if not report.get("baseline"):
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
