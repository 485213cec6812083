"""The typed session report: built once from a history, and its one JSON form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.scripted import ScriptedSession
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.protocol.history import SessionHistory
from zkadapt.session_report import Baselines, SessionReport
from zkadapt.summary import ReportFacts, build_report

#: The keys README "Reading the report" documents (``failed_parties`` after a local run).
TOP_KEYS = {
    "session_id",
    "zkadapt_version",
    "config",
    "parties",
    "rounds",
    "completed",
    "baseline",
    "final",
    "timing",
}
ROUND_KEYS = {
    "round",
    "accepted",
    "rejected",
    "duration_s",
    "bytes_uploaded",
    "bytes_decryption_shares",
    "timing_s",
    "metrics",
    "model_sha256",
}
BASELINES = {
    "local_only": {"alice": {"accuracy": 0.9, "loss": 0.3, "local_accuracy": 0.8}},
    "centralized": {"accuracy": 0.95, "loss": 0.2},
}


@pytest.fixture
def session(tmp_path: Path) -> Iterator[tuple[ReportFacts, SessionHistory]]:
    """Facts and verified history of a 3-party session: 2 of 3 rounds, carol rejected in 2."""
    scripted = ScriptedSession(tmp_path / "out")
    scripted.play_round(1)
    scripted.play_round(2, rejected="carol")
    watcher = LedgerWatcher(locate_session(scripted.session_file))
    try:
        watcher.poll()
        yield ReportFacts.of(scripted.config), watcher.view.history
    finally:
        watcher.close()
        scripted.close()


def _run_report(facts: ReportFacts, history: SessionHistory) -> SessionReport:
    return build_report(
        facts,
        history,
        baselines=Baselines.from_json(BASELINES),
        wall_s=12.5,
        failed_parties={"carol": "error: boom"},
    )


def test_building_twice_gives_equal_reports(session: tuple[ReportFacts, SessionHistory]) -> None:
    facts, history = session
    first, second = _run_report(*session), _run_report(facts, history)
    assert first == second and first is not second
    assert first.to_json() == second.to_json()


def test_report_round_trips_through_json(session: tuple[ReportFacts, SessionHistory]) -> None:
    report = _run_report(*session)
    text = json.dumps(report.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
    back = SessionReport.from_json(json.loads(text))
    assert back == report
    assert json.dumps(back.to_json(), sort_keys=True, indent=2, ensure_ascii=False) == text


def test_json_form_has_the_documented_keys(session: tuple[ReportFacts, SessionHistory]) -> None:
    doc = _run_report(*session).to_json()
    assert set(doc) == TOP_KEYS | {"failed_parties"}
    assert all(set(entry) == ROUND_KEYS for entry in doc["rounds"])
    assert doc["rounds"][1]["rejected"][0] == {
        "party": "carol",
        "reason": "digest mismatch",
        "by": "alice",
    }
    assert doc["rounds"][1]["accepted"] == ["alice", "bob"]
    assert doc["timing"] == {"wall_s": 12.5, "per_round_s": [3.0, 4.0]}
    assert doc["final"]["round"] == 2 and doc["completed"] is False
    assert doc["baseline"] == BASELINES
    assert doc["failed_parties"] == {"carol": "error: boom"}
    assert [p["n_train"] for p in doc["parties"]] == [1000, 1000, 1000]


def test_a_report_without_a_run_leaves_the_run_keys_empty(
    session: tuple[ReportFacts, SessionHistory],
) -> None:
    doc = build_report(*session).to_json()
    assert set(doc) == TOP_KEYS
    assert doc["baseline"] == {} and doc["timing"] == {}
    assert SessionReport.from_json(doc).to_json() == doc


def test_no_round_yet_gives_round_zero_and_no_digest(
    session: tuple[ReportFacts, SessionHistory],
) -> None:
    facts, _ = session
    report = build_report(facts, SessionHistory(facts.session_id, [n for n, _ in facts.parties]))
    assert report.rounds == () and not report.completed
    assert report.final.to_json() == {
        "round": 0,
        "metrics": {},
        "per_party": {},
        "model_sha256": None,
    }
    assert report.primary_metric is None


def test_an_older_report_without_later_keys_reads(
    session: tuple[ReportFacts, SessionHistory],
) -> None:
    doc: dict[str, Any] = _run_report(*session).to_json()
    for entry in doc["rounds"]:
        del entry["bytes_decryption_shares"], entry["timing_s"]
    del doc["failed_parties"]
    report = SessionReport.from_json(doc)
    assert report.rounds[0].bytes_decryption_shares is None
    assert report.failed_parties is None and "failed_parties" not in report.to_json()


def test_partial_baselines_keep_only_what_was_computed() -> None:
    doc = {"centralized": {"accuracy": 0.93}}
    baselines = Baselines.from_json(doc)
    assert baselines is not None and baselines.local_only is None
    assert baselines.to_json() == doc
    assert Baselines.from_json({}) is None


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (("rounds", 0, "duration_s"), -1.0, r"rounds\[0\]\.duration_s"),
        (("rounds", 0, "bytes_uploaded"), -5, r"rounds\[0\]\.bytes_uploaded"),
        (("rounds", 0, "metrics", "global", "accuracy"), "high", "global.accuracy"),
        (("timing", "wall_s"), float("nan"), "timing.wall_s"),
        (("parties",), {"alice": 1}, "parties: expected an array"),
    ],
)
def test_a_malformed_report_is_refused_with_its_path(
    session: tuple[ReportFacts, SessionHistory], path: tuple[Any, ...], value: Any, match: str
) -> None:
    doc: Any = _run_report(*session).to_json()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=match):
        SessionReport.from_json(doc)


def test_a_failed_round_keeps_its_reason_through_json(
    session: tuple[ReportFacts, SessionHistory],
) -> None:
    report = _run_report(*session)
    failed = replace(report.rounds[0], failure="only 1 of 3 updates accepted, quorum is 2")
    report = replace(report, rounds=(failed, *report.rounds[1:]))
    back = SessionReport.from_json(json.loads(json.dumps(report.to_json())))
    assert back.rounds[0].failure == "only 1 of 3 updates accepted, quorum is 2"
    assert back == report
