"""MNIST sessions through the CLI: run, party-by-party, crash and resume (issue 2)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt
from zkadapt.channel import open_channel
from zkadapt.config import load_config
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import Submitted

pytestmark = pytest.mark.e2e

NAMES = ["alice", "bob", "carol"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mnist.toml"


def _history(out: Path, session: Path) -> SessionHistory:
    config = load_config(session)
    channel = open_channel("local", keyring=keyring_of(config), path=out / "ledger.sqlite")
    try:
        channel.verify_all()
        history = SessionHistory(config.session_id, config.party_names)
        history.extend(channel.history(0))
    finally:
        channel.close()
    return history


def _final_digest(out: Path, party: str) -> str:
    return json.loads((out / "parties" / party / "result.json").read_text())["final_model_sha256"]


def test_run_embedded_example_writes_a_complete_report(tmp_path: Path) -> None:
    session = tmp_path / "small.toml"
    session.write_text(EXAMPLE.read_text())  # the packaged example, without keys: `run` makes them
    edit_session(session, data=SMALL, session={"rounds": 2})

    proc = zkadapt(
        "run", str(session), "--out", "out", "--parties", "2", "--rounds", "3", cwd=tmp_path
    )
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())

    assert "Federated (final, round 3)" in proc.stdout
    assert [p["name"] for p in report["parties"]] == ["alice", "bob"]
    assert len(report["session_id"]) == 64 and report["completed"] is True
    assert [r["round"] for r in report["rounds"]] == [1, 2, 3]
    for r in report["rounds"]:
        assert r["accepted"] == ["alice", "bob"] and r["rejected"] == []
        assert r["bytes_uploaded"] > 2 * 101_770 * 4  # two float32 deltas of the 784-128-10 MLP
        assert r["duration_s"] > 0
        assert set(r["metrics"]["per_party"]) == {"alice", "bob"}
    acc = [r["metrics"]["global"]["accuracy"] for r in report["rounds"]]
    assert acc[-1] > 0.6 and acc[-1] >= acc[0]  # 3,000 samples, 3 rounds: far above chance
    assert set(report["baseline"]["local_only"]) == {"alice", "bob"}
    assert report["baseline"]["centralized"]["accuracy"] > 0.6
    assert report["final"]["metrics"]["accuracy"] == acc[-1]
    assert (
        report["final"]["model_sha256"] == _final_digest(out, "alice") == _final_digest(out, "bob")
    )
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["session_id"] in (out / "report.html").read_text()


def test_parties_started_separately_match_run(small_session: Path, tmp_path: Path) -> None:
    zkadapt("run", str(small_session), "--out", "together", "--no-baselines", cwd=tmp_path)
    together = json.loads((tmp_path / "together" / "report.json").read_text())

    out = tmp_path / "apart"
    out.mkdir()
    procs = []
    for i, name in enumerate(["carol", "alice", "bob"]):  # any order, at different times
        procs.append(spawn_party(small_session, name, out, tmp_path / f"{name}.log"))
        time.sleep(1.5 * i)
    for p in procs:
        assert p.wait(timeout=300) == 0, (tmp_path / "alice.log").read_text()[-2000:]

    digests = {_final_digest(out, n) for n in NAMES}
    assert digests == {together["final"]["model_sha256"]}


def test_sigkilled_party_resumes_from_history_and_checkpoint(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(
        session,
        data={"max_train": 6000, "max_test": 1000},
        session={"rounds": 4},
        protocol={"submit_timeout_s": 4, "quorum": 2},
    )
    out = tmp_path / "out"
    out.mkdir()
    logs = {n: tmp_path / f"{n}.log" for n in NAMES}
    procs = {n: spawn_party(session, n, out, logs[n]) for n in NAMES}

    def wait_for(predicate, what: str, limit: float = 180) -> SessionHistory:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            if (out / "ledger.sqlite").exists():
                history = _history(out, session)
                if predicate(history):
                    return history
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    wait_for(lambda h: "carol" in h.round_done(1), "carol's RoundDone(1)")
    os.kill(procs["carol"].pid, signal.SIGKILL)
    procs["carol"].wait()

    def others_left_carol_out(h: SessionHistory) -> bool:
        return any(
            "alice" in h.round_done(r) and "carol" not in h.round_done(r)["alice"].accepted
            for r in range(2, 5)
        )

    wait_for(others_left_carol_out, "a round completed without carol")
    procs["carol"] = spawn_party(session, "carol", out, logs["carol"])
    for name, p in procs.items():
        assert p.wait(timeout=300) == 0, logs[name].read_text()[-2000:]

    history = _history(out, session)
    assert {_final_digest(out, n) for n in NAMES} == {history.round_done(4)["alice"].model_sha256}
    for r in range(1, 5):
        carol_subs = [
            p
            for p in history.posted
            if isinstance(p.message, Submitted) and p.sender == "carol" and p.message.round == r
        ]
        assert len(carol_subs) <= 1, f"carol submitted round {r} twice"
        done = history.round_done(r)
        assert len({d.model_sha256 for d in done.values()}) == 1
    assert "resumed from checkpoint of round" in logs["carol"].read_text()
