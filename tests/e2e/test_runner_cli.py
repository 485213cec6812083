"""The local runner and its parties under duplicates, deaths and file-system faults (issue 17)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import edit_session, spawn_party, zkadapt
from zkadapt.channel import open_channel
from zkadapt.config import load_config
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import Rejected, RoundFailed

pytestmark = pytest.mark.e2e

NAMES = ["alice", "bob", "carol"]


def _spawn_run(session: Path, out: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``zkadapt run SESSION --out OUT --no-baselines`` in the background."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "zkadapt", "run", str(session), "--out", str(out)]
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*cmd, "--no-baselines", *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )


def _wait_for(predicate: Callable[[], bool], what: str, limit: float = 180) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _log_has(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.exists() and text in path.read_text(errors="replace")


def _history(out: Path, session: Path) -> SessionHistory:
    config = load_config(session)
    channel = open_channel("local", keyring=keyring_of(config), path=out / "ledger.sqlite")
    try:
        history = SessionHistory(config.session_id, config.party_names)
        history.extend(channel.history(0))
    finally:
        channel.close()
    return history


def _final_digest(out: Path, party: str) -> str:
    return json.loads((out / "parties" / party / "result.json").read_text())["final_model_sha256"]


def _undisturbed_digest(session: Path, tmp_path: Path) -> str:
    zkadapt("run", str(session), "--out", "undisturbed", "--no-baselines", cwd=tmp_path)
    report = json.loads((tmp_path / "undisturbed" / "report.json").read_text())
    return str(report["final"]["model_sha256"])


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_party_started_twice_is_refused_and_the_first_finishes(
    small_session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    logs = {n: tmp_path / f"{n}.log" for n in NAMES}
    procs = {n: spawn_party(small_session, n, out, logs[n]) for n in NAMES}
    _wait_for(_log_has(logs["alice"], "alice round 1 "), "alice's first round")

    second = zkadapt(
        "party", str(small_session), "--party", "alice", "--out", str(out), "--quiet",
        cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip

    assert second.returncode == 2, second.stdout + second.stderr
    line = _one_line(second.stderr)
    assert line.startswith("error: party alice of session ") and f"pid {procs['alice'].pid}" in line
    for name, proc in procs.items():
        assert proc.wait(timeout=300) == 0, logs[name].read_text()[-2000:]
    assert {_final_digest(out, n) for n in NAMES} == {_undisturbed_digest(small_session, tmp_path)}


def test_a_second_run_on_one_out_is_refused_and_the_first_finishes(
    small_session: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = _spawn_run(small_session, out, tmp_path / "first.log")
    _wait_for(_log_has(out / "parties" / "alice" / "party.log", "alice round 1 "), "round 1")

    second = zkadapt(
        "run", str(small_session), "--out", str(out), "--no-baselines",
        cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip

    assert second.returncode == 2, second.stdout + second.stderr
    line = _one_line(second.stderr)
    assert line.startswith(f"error: zkadapt run on {out} is already running (pid {first.pid} ")
    assert first.wait(timeout=300) == 0, (tmp_path / "first.log").read_text()[-2000:]
    history = _history(out, small_session)
    assert not [p for p in history.posted if isinstance(p.message, (RoundFailed, Rejected))]
    assert json.loads((out / "report.json").read_text())["completed"] is True


def test_a_failed_round_is_explained_on_the_run_console(
    small_session: Path, tmp_path: Path
) -> None:
    edit_session(small_session, training={"lr": 1e30}, session={"rounds": 1})

    proc = zkadapt("run", str(small_session), "--out", "out", "--no-baselines", cwd=tmp_path,
                   check=False)  # fmt: skip

    assert proc.returncode == 4, proc.stderr  # finished, with a failed round
    assert "round 1 failed: only 0 of 3 updates accepted" in proc.stderr, proc.stderr
    assert "alice: malformed object: non-finite values" in proc.stderr, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert set(report["restarts"].values()) == {0}  # a failed round is no death to restart


def test_a_failed_round_is_explained_by_a_party_on_its_console(
    small_session: Path, tmp_path: Path
) -> None:
    edit_session(small_session, training={"lr": 1e30}, session={"rounds": 1})
    out = tmp_path / "out"
    others = [spawn_party(small_session, n, out, tmp_path / f"{n}.log") for n in NAMES[1:]]

    proc = zkadapt("party", str(small_session), "--party", "alice", "--out", str(out),
                   cwd=tmp_path, check=False)  # fmt: skip

    for other in others:
        other.wait(timeout=120)
    assert proc.returncode == 4, proc.stderr
    assert "round 1 failed: only 0 of 3 updates accepted" in proc.stderr, proc.stderr
    assert "non-finite values" in proc.stderr


@pytest.mark.parametrize("override", [["--rounds", "5"], ["--parties", "2"]])
def test_an_override_on_an_existing_out_says_it_changed_the_session_id(
    small_session: Path, tmp_path: Path, override: list[str]
) -> None:
    config = load_config(small_session)
    out = tmp_path / "out"
    out.mkdir()
    (out / "session.toml").write_text(config.to_toml())  # what an earlier run left there

    proc = zkadapt("run", str(small_session), "--out", str(out), *override, cwd=tmp_path,
                   check=False)  # fmt: skip

    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert f"already holds session {config.session_id[:12]}, but {override[0]} changed" in line
    assert f"drop {override[0]} to resume" in line and "another --out" in line


def _holder_pid(lock: Path) -> int:
    """The pid a party recorded in its lock file (0 while there is none)."""
    try:
        return int(json.loads(lock.read_text() or "{}").get("pid", 0))
    except (OSError, ValueError):
        return 0


def test_a_party_killed_under_run_is_reported_restarted_and_the_session_completes(
    small_session: Path, tmp_path: Path
) -> None:
    edit_session(small_session, session={"rounds": 3})
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    run = _spawn_run(small_session, out, log)
    carol = out / "parties" / "carol"
    _wait_for(_log_has(carol / "party.log", "carol round 2 "), "carol's round 2", limit=120)
    pid = _holder_pid(carol / "party.lock")
    assert pid > 0 and pid != run.pid

    os.kill(pid, signal.SIGKILL)

    assert run.wait(timeout=300) == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "carol died (killed by SIGKILL): " in text
    assert "restarting carol (1 of at most 2)" in text
    report = json.loads((out / "report.json").read_text())
    assert report["completed"] is True
    assert report["failed_parties"] == {}
    assert report["restarts"] == {"alice": 0, "bob": 0, "carol": 1}
    assert report["final"]["model_sha256"] == _undisturbed_digest(small_session, tmp_path)


@pytest.mark.parametrize("command", ["run", "party"])
def test_an_out_under_a_file_is_one_line(small_session: Path, tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"
    extra = ["--party", "alice"] if command == "party" else []

    proc = zkadapt(command, str(small_session), "--out", str(out), *extra, cwd=tmp_path,
                   check=False, timeout=120)  # fmt: skip

    assert proc.returncode == 2, proc.stderr
    line = _one_line(proc.stderr)
    assert line == f"error: --out {out} is under {blocker}, which is a file; give a directory"
    assert blocker.read_text() == "not a folder"


def test_a_party_that_cannot_write_mid_round_stops_the_run_at_once(
    small_session: Path, tmp_path: Path
) -> None:
    """Alice's checkpoint folder turns into a file after round 1 (a file, not a read-only
    folder: this test runs as root in CI, and root writes into read-only folders)."""
    edit_session(small_session, session={"rounds": 6}, protocol={"submit_timeout_s": 120})
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    run = _spawn_run(small_session, out, log)
    alice = out / "parties" / "alice"
    _wait_for(_log_has(alice / "party.log", "alice round 2 train"), "round 2", limit=120)
    shutil.rmtree(alice / "checkpoints")
    (alice / "checkpoints").write_text("in the way")
    broken = time.monotonic()

    code = run.wait(timeout=300)

    assert time.monotonic() - broken < 60, "the runner waited out a deadline"
    text = log.read_text()
    assert code == 1 and "Traceback" not in text, text
    assert f"alice died (exit code 3): error: cannot write {alice / 'checkpoints'}" in text, text
    assert "stopping bob, carol: a restart cannot fix alice's error" in text
    last = [line for line in text.splitlines() if line.strip()][-1]
    assert last.startswith("error: party alice: session did not complete; alice failed: ")
    assert "Traceback" not in (alice / "party.log").read_text()
    report = json.loads((out / "report.json").read_text())
    assert set(report["failed_parties"]) == {"alice", "bob", "carol"}
    assert report["failed_parties"]["alice"].startswith("error: cannot write ")
