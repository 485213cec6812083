"""Server-rendered SVG charts for the dashboard (no JavaScript chart library, no network).

Two small, dependency-free renderers: :func:`line_chart` (one line per series over rounds,
optional dashed reference lines) and :func:`bar_chart` (one bar per round). Every label
and name is XML-escaped; numbers are formatted by a caller-supplied function so that
accuracy shows as a percentage and bytes as KiB/MiB.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

#: Distinct colours for parties (colour-blind friendly, Okabe–Ito order).
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#999999",
)
#: Colour of the global model's line.
GLOBAL_COLOR = "#111111"

#: Longer series are drawn as lines only (no point markers).
MAX_DOTS = 60

Formatter = Callable[[float], str]

_WIDTH, _HEIGHT = 460, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 12, 30, 62


@dataclass(frozen=True)
class Series:
    """One line: a name, its ``(x, y)`` points, and how to draw it."""

    name: str
    points: tuple[tuple[float, float], ...]
    color: str = GLOBAL_COLOR
    width: float = 2.0
    dashed: bool = False


@dataclass(frozen=True)
class Reference:
    """A horizontal dashed line across the plot (e.g. a baseline)."""

    name: str
    value: float
    color: str = "#777777"


@dataclass(frozen=True)
class Chart:
    """What a chart shows besides its data."""

    title: str
    y_label: str = ""
    fmt: Formatter = field(default=lambda v: f"{v:.4g}")
    css_class: str = "chart"


def color_for(index: int) -> str:
    """The palette colour of the ``index``-th party (cycling)."""
    return PALETTE[index % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]`` (1, 2, 2.5 or 5 steps).

    Raises:
        ValueError: a bound is not finite or ``count`` < 2.
    """
    if not (math.isfinite(low) and math.isfinite(high)) or count < 2:
        raise ValueError(f"need finite bounds and count >= 2, got {low}, {high}, {count}")
    if high < low:
        low, high = high, low
    if high == low:
        pad = abs(low) * 0.05 or 1.0
        low, high = low - pad, high + pad
    raw = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def empty_chart(chart: Chart, message: str) -> str:
    """A chart frame that says why there is nothing to plot yet."""
    return (
        f'<svg class="{escape(chart.css_class)}" role="img" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(chart.title)}</title>'
        f'<text x="{_WIDTH / 2}" y="20" class="ct">{escape(chart.title)}</text>'
        f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" class="empty">{escape(message)}</text></svg>'
    )


def line_chart(chart: Chart, series: Sequence[Series], references: Sequence[Reference] = ()) -> str:
    """An SVG line chart of ``series`` over integer rounds, with a legend below it.

    Points with a non-finite ``y`` are skipped. With no finite point at all the result is
    :func:`empty_chart`.
    """
    finite = [(x, y) for s in series for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    if not finite:
        return empty_chart(chart, "no completed round yet")
    refs = [r for r in references if math.isfinite(r.value)]
    xs = [x for x, _ in finite]
    ys = [y for _, y in finite] + [r.value for r in refs]
    x_lo, x_hi = min(xs), max(xs)
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_ticks = nice_ticks(min(ys), max(ys))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return _TOP + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    parts = [_frame_open(chart)]
    for tick in y_ticks:
        y = py(tick)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" class="yt">{escape(chart.fmt(tick))}</text>'
        )
    for x in _round_ticks(x_lo, x_hi):
        parts.append(f'<text x="{px(x):.1f}" y="{_TOP + plot_h + 16}" class="xt">{x}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h + 30}" class="xl">round</text>')
    for ref in refs:
        y = py(ref.value)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{escape(ref.color)}" class="ref"><title>{escape(ref.name)}: '
            f"{escape(chart.fmt(ref.value))}</title></line>"
        )
    for s in series:
        parts.append(_series_svg(s, chart.fmt, px, py))
    legend = [(s.name, s.color, s.dashed) for s in series] + [(r.name, r.color, True) for r in refs]
    parts.append(_legend(legend, _TOP + plot_h + 42))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(chart: Chart, bars: Sequence[tuple[int, float]]) -> str:
    """An SVG bar chart: one bar per ``(round, value)``, value labels on top."""
    values = [(r, v) for r, v in bars if math.isfinite(v) and v >= 0]
    if not values:
        return empty_chart(chart, "no completed round yet")
    ticks = nice_ticks(0.0, max(v for _, v in values) or 1.0)
    top = ticks[-1]
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM + 30
    slot = plot_w / len(values)
    bar_w = max(2.0, min(48.0, slot * 0.7))
    parts = [_frame_open(chart)]
    for tick in ticks:
        y = _TOP + (1 - tick / top) * plot_h
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" class="yt">{escape(chart.fmt(tick))}</text>'
        )
    label_every = max(1, math.ceil(len(values) / 20))
    for i, (round_, value) in enumerate(values):
        cx = _LEFT + slot * (i + 0.5)
        h = value / top * plot_h
        y = _TOP + plot_h - h
        parts.append(
            f'<rect x="{cx - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'class="bar"><title>round {round_}: {escape(chart.fmt(value))}</title></rect>'
        )
        if i % label_every == 0:
            parts.append(f'<text x="{cx:.1f}" y="{_TOP + plot_h + 16}" class="xt">{round_}</text>')
    parts.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h + 30}" class="xl">round</text></svg>'
    )
    return "".join(parts)


def _frame_open(chart: Chart) -> str:
    title = escape(chart.title)
    label = escape(chart.y_label)
    return (
        f'<svg class="{escape(chart.css_class)}" role="img" aria-label="{title}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{title}</title><text x="{_WIDTH / 2}" y="18" class="ct">{title}</text>'
        f'<text x="12" y="{_TOP + (_HEIGHT - _TOP - _BOTTOM) / 2}" class="yl" '
        f'transform="rotate(-90 12 {_TOP + (_HEIGHT - _TOP - _BOTTOM) / 2})">{label}</text>'
    )


def _round_ticks(lo: float, hi: float) -> list[int]:
    first, last = math.ceil(lo), math.floor(hi)
    step = max(1, math.ceil((last - first + 1) / 12))
    return list(range(first, last + 1, step))


def _series_svg(
    s: Series, fmt: Formatter, px: Callable[[float], float], py: Callable[[float], float]
) -> str:
    points = [(x, y) for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return ""
    name = escape(s.name)
    color = escape(s.color)
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
    dots = "".join(
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
        f"<title>{name}, round {x:g}: {escape(fmt(y))}</title></circle>"
        for x, y in (points if len(points) <= MAX_DOTS else ())
    )
    return (
        f'<g class="series" data-series="{name}"><polyline points="{coords}" fill="none" '
        f'stroke="{color}" stroke-width="{s.width}"{dash}/>{dots}</g>'
    )


def _legend(entries: Sequence[tuple[str, str, bool]], y: float) -> str:
    parts = ['<g class="legend">']
    x = float(_LEFT)
    row = 0
    for name, color, dashed in entries:
        width = 28 + 7 * len(name)
        if x + width > _WIDTH - _RIGHT and x > _LEFT:
            x, row = float(_LEFT), row + 1
        ly = y + row * 14
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<line x1="{x:.0f}" x2="{x + 18:.0f}" y1="{ly:.0f}" y2="{ly:.0f}" '
            f'stroke="{escape(color)}" stroke-width="2"{dash}/>'
            f'<text x="{x + 22:.0f}" y="{ly + 4:.0f}" class="lg">{escape(name)}</text>'
        )
        x += width
    parts.append("</g>")
    return "".join(parts)
