"""How ``zkadapt run``'s supervisor treats each exit code (:mod:`zkadapt.party_processes`):
fatal codes stop the others, an ended session (5: the head was closed mid-session) stops
only its own party, other deaths are restarted."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from zkadapt.party_processes import PartyRun, PartySupervisor


class _Process:
    """A party process that exits with ``code`` (None: still running) and obeys SIGTERM."""

    def __init__(self, code: int | None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        return self.code if self.code is not None else -15

    def terminate(self) -> None:
        self.code = -15

    def kill(self) -> None:
        self.code = -9


def _supervisor(tmp_path: Path, codes: dict[str, int | None]) -> tuple[PartySupervisor, list]:
    launched: list[str] = []

    def launch(args: list[str], log: Path) -> _Process:
        launched.append(args[0])
        return _Process(None)  # a restarted party runs on

    runs = []
    for name, code in codes.items():
        log = tmp_path / f"{name}.log"
        log.write_text(f"{name}: last words\n")
        runs.append(PartyRun(name, [name], log, process=_Process(code)))
    console = Console(file=io.StringIO(), width=200)
    return PartySupervisor(runs, launch, console, max_restarts=2), launched


@pytest.mark.parametrize("code", [2, 3])
def test_a_fatal_exit_stops_every_other_party(tmp_path: Path, code: int) -> None:
    supervisor, launched = _supervisor(tmp_path, {"alice": code, "bob": None, "carol": None})
    assert supervisor.poll() is False
    assert launched == []
    failures = {run.name: run.failure for run in supervisor.runs}
    assert failures["alice"] == "alice: last words"
    assert failures["bob"] is not None and "stopped by the runner" in failures["bob"]


def test_an_ended_session_stops_only_its_own_party(tmp_path: Path) -> None:
    supervisor, launched = _supervisor(tmp_path, {"alice": 5, "bob": None, "carol": None})
    assert supervisor.poll() is True  # bob and carol go on wrapping up their escrow
    assert launched == []  # nobody restarted: a restart cannot reopen a closed head
    assert [run.name for run in supervisor.runs if run.done] == ["alice"]
    assert supervisor.runs[0].failure == "alice: last words"
    assert supervisor.runs[1].failure is None and supervisor.runs[2].failure is None


def test_another_death_is_restarted(tmp_path: Path) -> None:
    supervisor, launched = _supervisor(tmp_path, {"alice": 1, "bob": None})
    assert supervisor.poll() is True
    assert launched == ["alice"] and supervisor.runs[0].restarts == 1
