"""Where a round's time went: train / evaluate / private aggregation / other (issue 18).

The split is computed from what each party posted in ``RoundDone`` (``duration_s`` and its
phase ``timing``), carried in ``report.json`` as ``rounds[].split`` (an additive key: older
reports read without it) and rendered as a compact table by ``report.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_report import make_report
from zkadapt.protocol.messages import RoundDone
from zkadapt.protocol.schemes import StepTimings
from zkadapt.report import REPORT_HTML, markdown_time_split, write_report
from zkadapt.session_report import RoundSplit, SessionReport
from zkadapt.summary import AGGREGATION_PHASES, phase_split, round_split

#: A masked round as one party times it (seconds).
TIMING = {
    "prepare_s": 3.0,  # key set-up: not aggregation
    "train_s": 60.0,
    "seal_s": 0.5,
    "store_s": 0.1,
    "collect_s": 9.0,  # waiting for the others and verifying: verify_s is the verifying
    "verify_s": 0.25,
    "aggregate_s": 4.0,  # sum, shares, combine and waiting for shares
    "sum_s": 0.05,
    "share_s": 1.0,
    "check_share_s": 0.2,
    "combine_s": 0.5,
    "decrypt_s": 3.5,  # a span, waiting included: not aggregation work
    "evaluate_s": 20.0,
    "checkpoint_s": 0.1,
}


def _done(party: str, duration_s: float, timing: dict[str, float]) -> RoundDone:
    return RoundDone("s" * 64, 1, party, "ab" * 32, ("alice", "bob"), {}, duration_s, timing)


def test_aggregation_is_the_schemes_own_work_and_other_is_the_rest() -> None:
    split = phase_split("alice", 100.0, TIMING)
    assert AGGREGATION_PHASES == (
        "seal_s",
        "verify_s",
        "sum_s",
        "share_s",
        "check_share_s",
        "combine_s",
    )
    assert split.train_s == 60.0 and split.evaluate_s == 20.0
    assert split.aggregation_s == pytest.approx(0.5 + 0.25 + 0.05 + 1.0 + 0.2 + 0.5)
    assert split.other_s == pytest.approx(100.0 - 60.0 - 20.0 - 2.5)
    assert split.aggregation_share == pytest.approx(2.5 / 100.0)
    parts = split.train_s + split.evaluate_s + split.aggregation_s + split.other_s
    assert parts == pytest.approx(split.round_s)


def test_a_plaintext_round_has_only_the_phases_it_timed() -> None:
    timing = {"train_s": 40.0, "seal_s": 0.01, "verify_s": 0.02, "evaluate_s": 10.0}
    split = phase_split("bob", 55.0, timing)
    assert split.aggregation_s == pytest.approx(0.03)
    assert split.other_s == pytest.approx(55.0 - 50.03)


def test_other_never_goes_below_zero() -> None:
    split = phase_split("alice", 10.0, {"train_s": 8.0, "evaluate_s": 2.5})
    assert split.other_s == 0.0


def test_the_round_is_told_by_the_party_with_the_largest_aggregation_share() -> None:
    done = {
        "alice": _done("alice", 100.0, TIMING),  # 2.5 %
        "bob": _done("bob", 50.0, {**TIMING, "train_s": 20.0, "evaluate_s": 10.0}),  # 5 %
        "carol": _done("carol", 90.0, TIMING),  # 2.8 %
    }
    split = round_split(done)
    assert split is not None and split.party == "bob"
    assert split.aggregation_share == pytest.approx(0.05)


def test_a_round_timed_before_evaluation_was_timed_has_no_split() -> None:
    old = {k: v for k, v in TIMING.items() if k != "evaluate_s"}
    assert round_split({"alice": _done("alice", 100.0, old)}) is None
    assert round_split({}) is None


def test_the_split_round_trips_through_report_json() -> None:
    split = phase_split("alice", 100.0, TIMING)
    doc = split.to_json()
    assert doc["aggregation_share"] == pytest.approx(0.025)
    assert RoundSplit.from_json(doc) == split
    assert RoundSplit.from_json({}) is None and RoundSplit.from_json(None) is None


def _with_splits(report: dict[str, Any]) -> dict[str, Any]:
    for entry in report["rounds"]:
        seconds = {**TIMING, "train_s": 50.0 + entry["round"]}
        entry["split"] = phase_split("carol", 100.0, seconds).to_json()
    return report


def test_a_report_with_splits_reads_back_and_an_older_one_without() -> None:
    report = SessionReport.from_json(_with_splits(make_report(n_rounds=2)))
    assert [entry.split.party for entry in report.rounds if entry.split] == ["carol", "carol"]
    assert SessionReport.from_json(report.to_json()) == report
    older = SessionReport.from_json(make_report(n_rounds=2))
    assert all(entry.split is None for entry in older.rounds)
    assert all("split" not in entry for entry in older.to_json()["rounds"])


def test_a_malformed_split_is_refused_with_its_path() -> None:
    doc = _with_splits(make_report(n_rounds=1))
    doc["rounds"][0]["split"]["train_s"] = -1.0
    with pytest.raises(ValueError, match=r"rounds\[0\]\.split\.train_s"):
        SessionReport.from_json(doc)


def test_markdown_table_has_one_row_per_timed_round() -> None:
    table = markdown_time_split(_with_splits(make_report(n_rounds=2)))
    lines = table.strip().splitlines()
    assert lines[0] == (
        "| Round | Party | Round time | Train | Evaluate | Private aggregation | Other "
        "| Aggregation share |"
    )
    assert lines[2] == "| 1 | carol | 100.0 s | 51.0 s | 20.0 s | 2.50 s | 26.5 s | 2.5 % |"
    assert len(lines) == 4
    assert markdown_time_split(make_report()) == ""


def test_html_report_shows_the_split_table_only_when_timed(tmp_path: Path) -> None:
    write_report(_with_splits(make_report(n_rounds=3)), tmp_path / "timed")
    page = (tmp_path / "timed" / REPORT_HTML).read_text(encoding="utf-8")
    body = re.search(r'<table id="time-split">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body is not None and body.group(1).count("<tr>") == 3
    assert "2.5 %" in body.group(1)
    write_report(make_report(n_rounds=3), tmp_path / "untimed")
    assert "time-split" not in (tmp_path / "untimed" / REPORT_HTML).read_text(encoding="utf-8")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_step_timings_add_up_per_round_and_count_a_nested_step_once() -> None:
    clock = _Clock()
    steps = StepTimings(clock)
    for _ in range(2):
        with steps.step(1, "verify_s"):
            clock.now += 0.5
    with steps.step(1, "sum_s"), steps.step(1, "sum_s"):  # an override calling its base
        clock.now += 1.0
    steps.record(1, "decrypt_s", 3.0)
    assert steps.seconds == {"verify_s": 1.0, "sum_s": 1.0, "decrypt_s": 3.0}
    with steps.step(2, "verify_s"):
        clock.now += 0.25
    assert steps.seconds == {"verify_s": 0.25}


def test_the_dashboard_shows_the_split_and_falls_back_to_the_slowest_phases() -> None:
    from zkadapt.dashboard.page import _time_text

    timed = SessionReport.from_json(_with_splits(make_report(n_rounds=1))).rounds[0]
    assert _time_text(timed) == (
        "train 51.0 s, evaluate 20.0 s, private aggregation 2.50 s (2.5 %), other 26.5 s"
    )
    doc = make_report(n_rounds=1)
    doc["rounds"][0]["timing_s"] = {"train_s": 40.0, "collect_s": 2.0}
    assert _time_text(SessionReport.from_json(doc).rounds[0]) == "train 40.0 s, collect 2.00 s"
