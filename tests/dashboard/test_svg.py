"""Server-rendered SVG charts: scales, escaping, empty and non-finite data."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest

from zkadapt.dashboard.svg import Chart, Reference, Series, bar_chart, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_nice_ticks_cover_the_range_with_round_steps() -> None:
    ticks = nice_ticks(0.37, 0.93)
    assert ticks[0] <= 0.37 and ticks[-1] >= 0.93
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.25)


def test_nice_ticks_widen_a_single_value_and_refuse_non_finite_bounds() -> None:
    ticks = nice_ticks(2.0, 2.0)
    assert ticks[0] < 2.0 < ticks[-1]
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0.0, math.inf)


def test_line_chart_draws_one_polyline_per_series_and_a_dashed_reference() -> None:
    svg = line_chart(
        Chart("Accuracy per round", y_label="accuracy"),
        [
            Series("global", ((1, 0.5), (2, 0.7), (3, 0.8))),
            Series("alice", ((1, 0.4), (2, 0.6)), "#0072b2"),
        ],
        [Reference("centralized baseline", 0.9)],
    )
    root = ET.fromstring(svg)  # well-formed XML
    polylines = root.findall(f".//{SVG}polyline")
    assert len(polylines) == 2
    assert len(polylines[0].get("points", "").split()) == 3
    assert len(root.findall(f".//{SVG}circle")) == 5
    assert any(line.get("class") == "ref" for line in root.iter(f"{SVG}line"))
    assert "centralized baseline" in svg and "Accuracy per round" in svg


def test_line_chart_puts_higher_values_higher_on_the_page() -> None:
    svg = line_chart(Chart("t"), [Series("s", ((1, 0.1), (2, 0.9)))])
    points = ET.fromstring(svg).find(f".//{SVG}polyline").get("points")  # type: ignore[union-attr]
    (x1, y1), (x2, y2) = (tuple(map(float, p.split(","))) for p in points.split())
    assert x2 > x1 and y2 < y1  # SVG's y axis points down


def test_line_chart_escapes_names_and_titles() -> None:
    evil = '<script>alert("x")</script>'
    svg = line_chart(Chart(evil, y_label=evil), [Series(evil, ((1, 1.0), (2, 2.0)))])
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    ET.fromstring(svg)


def test_line_chart_without_finite_points_says_so() -> None:
    svg = line_chart(Chart("Loss"), [Series("global", ((1, math.nan),))])
    assert "no completed round yet" in svg
    assert "polyline" not in svg


def test_line_chart_skips_non_finite_points() -> None:
    svg = line_chart(Chart("Loss"), [Series("g", ((1, 1.0), (2, math.inf), (3, 0.5)))])
    points = ET.fromstring(svg).find(f".//{SVG}polyline").get("points")  # type: ignore[union-attr]
    assert len(points.split()) == 2


def test_bar_chart_has_one_bar_per_round_with_a_tooltip() -> None:
    svg = bar_chart(Chart("Bytes", fmt=lambda v: f"{v:.0f} B"), [(1, 100.0), (2, 250.0)])
    root = ET.fromstring(svg)
    bars = root.findall(f".//{SVG}rect")
    assert len(bars) == 2
    heights = [float(b.get("height", "0")) for b in bars]
    assert heights[1] > heights[0] > 0
    assert re.search(r"round 2: 250 B", svg)


def test_bar_chart_without_rounds_is_an_empty_frame() -> None:
    assert "no completed round yet" in bar_chart(Chart("Bytes"), [])
