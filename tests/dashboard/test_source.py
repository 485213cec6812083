"""Locating a session's ledger and following it: waiting, growing, unreadable, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.dashboard.scripted import ScriptedSession
from zkadapt.config import example_config, with_overrides
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.errors import ConfigError


def test_the_ledger_beside_the_session_file_is_found(scripted: ScriptedSession) -> None:
    scripted.submit(1, "alice")
    target = locate_session(scripted.session_file)
    assert target.out_dir == scripted.out_dir and target.ledger == scripted.ledger_path


def test_without_a_ledger_beside_it_the_default_is_session_dir_out(tmp_path: Path) -> None:
    scripted = ScriptedSession(tmp_path)
    target = locate_session(scripted.session_file)
    assert target.out_dir == tmp_path / "out"
    explicit = locate_session(scripted.session_file, tmp_path / "elsewhere")
    assert explicit.out_dir == tmp_path / "elsewhere"


def test_a_keyless_example_is_completed_from_the_runs_resolved_file(
    scripted: ScriptedSession, tmp_path: Path
) -> None:
    keyless = tmp_path / "example.toml"
    config = with_overrides(example_config("mnist"), rounds=3, parties=3)
    keyless.write_text(config.to_toml())
    target = locate_session(keyless, scripted.out_dir)
    assert target.config.session_id == scripted.sid


def test_a_keyless_session_without_a_run_is_a_config_error(tmp_path: Path) -> None:
    keyless = tmp_path / "example.toml"
    keyless.write_text(example_config("mnist").to_toml())
    with pytest.raises(ConfigError, match="public_key"):
        locate_session(keyless)


def test_a_run_of_another_session_is_refused(scripted: ScriptedSession, tmp_path: Path) -> None:
    keyless = tmp_path / "example.toml"
    keyless.write_text(with_overrides(example_config("mnist"), rounds=7, parties=3).to_toml())
    with pytest.raises(ConfigError, match="another session"):
        locate_session(keyless, scripted.out_dir)


def test_a_missing_session_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="session file not found"):
        locate_session(tmp_path / "nope.toml")


def test_watcher_waits_for_the_ledger_without_creating_it(scripted: ScriptedSession) -> None:
    watcher = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
    assert watcher.poll() is False
    assert not scripted.ledger_path.exists()
    assert watcher.channel_state().waiting
    scripted.submit(1, "alice")
    assert watcher.poll() is True
    state = watcher.channel_state()
    assert state.entries == 1 and state.chain_ok and not state.waiting
    scripted.submit(1, "bob")
    assert watcher.poll() is True and watcher.channel_state().entries == 2
    assert watcher.poll() is False  # nothing new
    watcher.close()


def test_a_file_that_is_not_a_ledger_is_an_error_not_a_crash(scripted: ScriptedSession) -> None:
    scripted.ledger_path.write_bytes(b"this is not an SQLite database" * 100)
    watcher = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
    watcher.poll()
    assert watcher.error and "ledger" in watcher.error
    snap = watcher.snapshot()
    assert not snap.channel.chain_ok and not snap.channel.waiting
    watcher.close()


def test_baselines_come_from_the_report_of_the_same_session(scripted: ScriptedSession) -> None:
    report = {"session_id": scripted.sid, "baseline": {"centralized": {"accuracy": 0.93}}}
    (scripted.out_dir / "report.json").write_text(json.dumps(report))
    watcher = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
    watcher.poll()
    assert watcher.snapshot().baseline == {"centralized": {"accuracy": 0.93}}
    other = {"session_id": "0" * 64, "baseline": {"centralized": {"accuracy": 0.5}}}
    (scripted.out_dir / "report.json").write_text(json.dumps(other))
    (scripted.out_dir / "report.json").touch()
    fresh = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
    fresh.poll()
    assert fresh.snapshot().baseline == {}
