"""zkadapt.formatting on edge values, and one rendering of each number in both report views.

The last tests render the same session through ``report.py`` (HTML and Markdown) and the
dashboard page and compare the cells: they fail if the two ever format a metric, a byte
count or a duration by different rules again.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.dashboard.scripted import ScriptedSession
from zkadapt import formatting as fmt
from zkadapt.dashboard.page import render_sections
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.dashboard.view import Snapshot
from zkadapt.report import markdown_summary, render_html
from zkadapt.session_report import Baselines, SessionReport

# -- metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("accuracy", 0.9218, "92.18 %"),
        ("accuracy", 0, "0.00 %"),
        ("accuracy", 1.0, "100.00 %"),
        ("accuracy", 92.18, "92.18 %"),  # already a percentage
        ("perplexity", 45.5, "45.50"),
        ("loss", 0.3, "0.3000"),
        ("loss", 0, "0.0000"),
        ("train_loss", -0.25, "-0.2500"),
        ("loss", math.nan, "nan"),
        ("accuracy", math.inf, "inf"),
        ("loss", -math.inf, "-inf"),
        ("loss", None, fmt.MISSING),
        ("loss", True, fmt.MISSING),  # a bool is not a number
    ],
)
def test_metric_values(key: str, value: float | None, text: str) -> None:
    assert fmt.metric(key, value) == text


def test_primary_metric_prefers_accuracy_then_perplexity() -> None:
    assert fmt.primary_metric(["loss", "perplexity", "accuracy"]) == "accuracy"
    assert fmt.primary_metric(["loss", "perplexity"]) == "perplexity"
    assert fmt.primary_metric(["loss"]) is None
    assert fmt.primary_metric([]) is None


def test_metric_order_and_titles() -> None:
    assert fmt.ordered_metrics(["z", "loss", "accuracy", "a", "loss"]) == [
        "accuracy",
        "loss",
        "a",
        "z",
    ]
    assert fmt.metric_title("train_loss") == "Train loss"


def test_axis_ticks_show_accuracy_as_whole_percents_where_exact() -> None:
    tick = fmt.axis_metric("accuracy")
    assert (tick(0.9), tick(0.925)) == ("90 %", "92.5 %")
    assert fmt.axis_metric("accuracy", largest=95.0)(90.0) == "90 %"
    assert fmt.axis_metric("loss")(0.123456) == "0.1235"


def test_finite_drops_what_no_axis_can_place() -> None:
    assert fmt.finite(3) == 3.0 and isinstance(fmt.finite(3), float)
    assert [fmt.finite(v) for v in (math.nan, math.inf, None, "1", False)] == [None] * 5


# -- bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (407_080, "397.5 KiB"),
        (3 * 407_336, "1.2 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (2**60, "1.0 EiB"),
        (2**70, "1024.0 EiB"),  # past the last unit, the count grows
        (None, fmt.MISSING),
    ],
)
def test_sizes(value: int | None, text: str) -> None:
    assert fmt.size(value) == text


@pytest.mark.parametrize("value", [-1, math.nan, math.inf])
def test_an_impossible_byte_count_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="byte count"):
        fmt.size(value)


def test_size_unit_for_axes() -> None:
    assert fmt.size_unit(0) == ("B", 1.0)
    assert fmt.size_unit(1024**2) == ("MiB", 1024.0**2)


# -- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0.00 s"),
        (1.2, "1.20 s"),
        (30.5, "30.5 s"),
        (119.9, "119.9 s"),
        (120, "2.0 min"),
        (3600, "60.0 min"),
        (None, fmt.MISSING),
    ],
)
def test_durations(value: float | None, text: str) -> None:
    assert fmt.duration(value) == text


@pytest.mark.parametrize("value", [-0.5, math.nan, math.inf])
def test_an_impossible_duration_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        fmt.duration(value)


def test_clock_of_no_timestamp_is_missing() -> None:
    assert fmt.clock(None) == fmt.MISSING
    assert len(fmt.clock(0.25)) == len("00:00:00.2")


# -- the report and the dashboard say the same ----------------------------------------------


class _Rows(HTMLParser):
    """The cell texts of every ``<tr>`` in the table whose ``<table>`` opens after ``marker``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _table(html: str, start: str) -> dict[str, dict[str, str]]:
    """``{round: {column: cell}}`` of the first table at or after ``start`` in ``html``."""
    fragment = html[html.index(start) :]
    fragment = fragment[: fragment.index("</table>")]
    parser = _Rows()
    parser.feed(fragment)
    head, *body = parser.rows
    return {row[0]: dict(zip(head, row, strict=False)) for row in body}


@pytest.fixture
def snapshot(tmp_path: Path) -> Iterator[Snapshot]:
    """A finished three-round session, as the dashboard sees it with the run's baselines."""
    scripted = ScriptedSession(tmp_path / "out")
    for r in (1, 2, 3):
        scripted.play_round(r, rejected="carol" if r == 2 else None)
    watcher = LedgerWatcher(locate_session(scripted.session_file))
    try:
        watcher.poll()
        snap = watcher.snapshot()
        baselines = Baselines(
            local_only={"alice": {"accuracy": 0.71, "loss": 1.23}},
            centralized={"accuracy": 0.955, "loss": 0.4},
        )
        yield watcher.view.snapshot(snap.channel, baselines=baselines)
    finally:
        watcher.close()
        scripted.close()


def test_report_and_dashboard_render_each_rounds_numbers_alike(snapshot: Snapshot) -> None:
    report: SessionReport = snapshot.session_report
    html = render_html(report, b"")
    page = render_sections(snapshot)
    in_report = _table(html, '<table id="rounds">')
    on_page = _table(page["rounds"], "<table>")
    assert set(in_report) == set(on_page) == {"1", "2", "3"}
    for entry in report.rounds:
        mine, theirs = in_report[str(entry.round)], on_page[str(entry.round)]
        assert mine["Duration"] == theirs["duration"] == fmt.duration(entry.duration_s)
        assert mine["Uploaded"] == theirs["uploaded"] == fmt.size(entry.bytes_uploaded)
    assert in_report["1"]["Uploaded"] == "1.2 MiB" and in_report["1"]["Duration"] == "3.00 s"


def test_report_and_dashboard_render_each_metric_alike(snapshot: Snapshot) -> None:
    report = snapshot.session_report
    html = render_html(report, b"")
    timeline = {row.round: row.summary for row in snapshot.timeline if row.kind == "RoundDone"}
    in_report = _table(html, '<table id="rounds">')
    for entry in report.rounds:
        for key in ("accuracy", "loss"):
            text = fmt.metric(key, entry.global_metrics[key])
            assert in_report[str(entry.round)][f"Global {key}"] == text
            assert f"{key} {text}" in timeline[entry.round]
    assert in_report["1"]["Global accuracy"] == "60.00 %"
    assert in_report["1"]["Global loss"] == "1.4000"


def test_both_views_use_the_one_headline_metric(snapshot: Snapshot) -> None:
    report = snapshot.session_report
    assert report.primary_metric == "accuracy"
    page = render_sections(snapshot)
    assert "Accuracy per round" in page["metrics"]
    assert markdown_summary(report).splitlines()[0] == "| Model | Accuracy | Loss |"
    final = fmt.metric("accuracy", report.final.metrics["accuracy"])
    assert f"| Federated (final, round 3) | {final} |" in markdown_summary(report)
    cards = page["cards"]
    own = report.rounds[-1].per_party["alice"]["accuracy"]
    assert f"accuracy {fmt.metric('accuracy', own)}" in cards
