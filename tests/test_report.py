"""Tests for zkadapt.report: the files are written, valid, self-contained and escaped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from zkadapt.report import (
    METRICS_PNG,
    REPORT_HTML,
    REPORT_JSON,
    markdown_summary,
    primary_metric,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_report(
    parties: tuple[str, ...] = ("alice", "bob", "carol"),
    n_rounds: int = 5,
    metric: str = "accuracy",
    with_baseline: bool = True,
) -> dict[str, Any]:
    """A realistic fake report: metric improves per round, carol is rejected in round 2."""

    def metrics(step: int, offset: float) -> dict[str, float]:
        if metric == "accuracy":
            return {"accuracy": 0.70 + 0.05 * step - offset, "loss": 0.9 - 0.12 * step + offset}
        return {"perplexity": 30.0 - 3.0 * step + 10 * offset, "loss": 3.4 - 0.1 * step + offset}

    rounds = []
    for step in range(1, n_rounds + 1):
        rejected = [{"party": parties[-1], "reason": "digest mismatch", "by": parties[0]}]
        per_party = {
            name: {**metrics(step, 0.01 * i), "train_loss": 0.5} for i, name in enumerate(parties)
        }
        rounds.append(
            {
                "round": step,
                "accepted": list(parties[:-1]) if step == 2 else list(parties),
                "rejected": rejected if step == 2 else [],
                "duration_s": 1.0 + 0.1 * step,
                "bytes_uploaded": 407080,
                "metrics": {"global": metrics(step, 0.0), "per_party": per_party},
            }
        )
    report: dict[str, Any] = {
        "session_id": "sess-1234",
        "zkadapt_version": "0.1.0",
        "config": {"rounds": n_rounds, "aggregator": "fedavg"},
        "parties": [
            {"name": name, "public_key": f"pk-{name}", "n_train": 6000} for name in parties
        ],
        "rounds": rounds,
        "final": {
            "round": n_rounds,
            "metrics": metrics(n_rounds, 0.0),
            "per_party": {name: metrics(n_rounds, 0.0) for name in parties},
            "model_sha256": "ab" * 32,
        },
        "timing": {"wall_s": 30.5, "per_round_s": [r["duration_s"] for r in rounds]},
    }
    if with_baseline:
        report["baseline"] = {
            "local_only": {name: metrics(2, 0.02 * i) for i, name in enumerate(parties)},
            "centralized": metrics(n_rounds + 1, 0.0),
        }
    return report


def rounds_tbody(page: str) -> str:
    """The <tbody> of the rounds table."""
    match = re.search(r'<table id="rounds">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert match is not None
    return match.group(1)


def test_write_report_returns_the_three_written_paths(tmp_path: Path) -> None:
    paths = write_report(make_report(), tmp_path / "out")

    assert [path.name for path in paths] == [REPORT_JSON, METRICS_PNG, REPORT_HTML]
    assert all(path.is_file() for path in paths)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)


def test_report_json_loads_back_equal_with_sorted_keys(tmp_path: Path) -> None:
    report = make_report()
    write_report(report, tmp_path)

    text = (tmp_path / REPORT_JSON).read_text(encoding="utf-8")
    assert json.loads(text) == report
    assert text == json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_write_report_does_not_modify_the_report(tmp_path: Path) -> None:
    report = make_report()
    before = json.dumps(report, sort_keys=True)
    write_report(report, tmp_path)
    assert json.dumps(report, sort_keys=True) == before


def test_metrics_png_has_signature_and_content(tmp_path: Path) -> None:
    write_report(make_report(), tmp_path)

    data = (tmp_path / METRICS_PNG).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000


def test_html_has_session_id_one_row_per_round_and_embedded_png(tmp_path: Path) -> None:
    write_report(make_report(n_rounds=5), tmp_path)

    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    assert "sess-1234" in page
    assert rounds_tbody(page).count("<tr>") == 5
    assert "data:image/png;base64," in page
    assert "digest mismatch" in page


def test_html_is_self_contained(tmp_path: Path) -> None:
    write_report(make_report(), tmp_path)

    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page


def test_html_escapes_hostile_party_names(tmp_path: Path) -> None:
    write_report(make_report(parties=("alice", "<script>", 'x"&y')), tmp_path)

    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "x&quot;&amp;y" in page


def test_report_without_baseline_renders(tmp_path: Path) -> None:
    report = make_report(with_baseline=False)
    paths = write_report(report, tmp_path)

    assert (tmp_path / METRICS_PNG).read_bytes().startswith(PNG_SIGNATURE)
    page = paths[2].read_text(encoding="utf-8")
    assert "Baselines were not run" in page
    assert "Federated (final, round 5)" in markdown_summary(report)


def test_report_with_partial_baseline_renders(tmp_path: Path) -> None:
    report = make_report()
    del report["baseline"]["centralized"]
    del report["baseline"]["local_only"]["bob"]
    write_report(report, tmp_path)

    summary = markdown_summary(report)
    assert "Centralized" not in summary
    assert "Local-only (alice)" in summary and "Local-only (bob)" not in summary


def test_perplexity_only_report_renders(tmp_path: Path) -> None:
    report = make_report(metric="perplexity")
    write_report(report, tmp_path)

    assert primary_metric(report) == "perplexity"
    assert (tmp_path / METRICS_PNG).read_bytes().startswith(PNG_SIGNATURE)
    page = (tmp_path / REPORT_HTML).read_text(encoding="utf-8")
    assert "Global perplexity" in page
    assert "| Model | Perplexity | Loss |" in markdown_summary(report)


def test_report_without_rounds_renders(tmp_path: Path) -> None:
    report = make_report(n_rounds=0, with_baseline=False)
    report["final"] = {}
    paths = write_report(report, tmp_path)

    assert (tmp_path / METRICS_PNG).read_bytes().startswith(PNG_SIGNATURE)
    assert "No round completed" in paths[2].read_text(encoding="utf-8")


def test_markdown_summary_has_a_row_per_party(tmp_path: Path) -> None:
    summary = markdown_summary(make_report())

    lines = summary.strip().splitlines()
    assert lines[0] == "| Model | Accuracy | Loss |"
    assert lines[1].startswith("| ---")
    for name in ("alice", "bob", "carol"):
        assert sum(f"Local-only ({name})" in line for line in lines) == 1
    assert any(line.startswith("| Centralized |") for line in lines)
    assert "| Federated (final, round 5) | 95.00 % | 0.3000 |" in lines


def test_markdown_summary_escapes_pipes() -> None:
    summary = markdown_summary(make_report(parties=("a|b", "c")))
    assert "Local-only (a\\|b)" in summary


def test_write_report_leaves_no_temporary_files(tmp_path: Path) -> None:
    write_report(make_report(), tmp_path)
    write_report(make_report(n_rounds=3), tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [REPORT_JSON, METRICS_PNG, REPORT_HTML]
    )
    assert json.loads((tmp_path / REPORT_JSON).read_text())["config"]["rounds"] == 3


def test_unserializable_report_raises_and_writes_nothing(tmp_path: Path) -> None:
    report = make_report()
    report["config"]["path"] = object()

    with pytest.raises(TypeError):
        write_report(report, tmp_path)
    assert list(tmp_path.iterdir()) == []
