"""Starting and watching the party processes of ``zkadapt run``: report, restart, stop.

A party that died used to go unreported and was never restarted: the others waited out
``submit_timeout_s`` every round, and ``failed_parties`` named a party that a later rerun had
finished (issue 17). :class:`PartySupervisor` prints each death at once (name, exit code,
last log line), restarts the party up to ``max_restarts`` times (it resumes from its
checkpoint and the channel), and stops every other party when one fails for a reason a
restart cannot fix (exit code 2: a usage, configuration or data error; 3: it cannot write
its own files), rather than letting them wait out their deadlines.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.process
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rich.console import Console

from zkadapt.errors import UsageError

#: Exit codes that a restart cannot fix: 2 (usage, configuration, data) and 3 (OutputError).
FATAL_EXIT_CODES = frozenset({2, 3})
#: Exit codes of a party that reached the session's end: 0, or 4 (some rounds failed).
FINISHED_EXIT_CODES = frozenset({0, 4})
#: Exit codes of a party whose session ended early for everyone (5: its hydra head was
#: closed mid-session): not restarted, and the others are not stopped (each meets the same
#: end and wraps up its own part of the escrow).
ENDED_EXIT_CODES = frozenset({5})
#: How often ``zkadapt run`` restarts one party by default (``--max-restarts``).
DEFAULT_MAX_RESTARTS = 2
#: Seconds a stopped party gets to exit after SIGTERM before it is killed.
_STOP_GRACE_S = 10.0


class PartyProcess(Protocol):
    """What the supervisor needs of a started party (``subprocess.Popen`` has it)."""

    pid: int

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


#: Starts one party from its ``zkadapt`` arguments, writing its output to the log file.
Launcher = Callable[[list[str], Path], PartyProcess]
#: Environment switch for how ``zkadapt run`` starts parties: ``fork`` (default) or
#: ``subprocess`` (a fresh interpreter per party, as before; bench/startup.py compares them).
START_ENV = "ZKADAPT_PARTY_START"
START_METHODS = ("fork", "subprocess")


def start_subprocess(args: list[str], log: Path) -> PartyProcess:
    """A fresh ``python -m zkadapt ARGS`` process (imports torch and loads data itself)."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "zkadapt", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


#: The ``zkadapt`` command's entry point (``zkadapt.cli.main``), which a forked party runs.
Entry = Callable[[list[str]], None]


def launcher_from_env(entry: Entry | None, *, close_in_child: Sequence[int] = ()) -> Launcher:
    """The launcher ``$ZKADAPT_PARTY_START`` names (``fork`` when unset).

    Args:
        entry: the CLI's entry point, run by a forked party as ``entry(["party", ...])``;
            None (or a system without ``fork``) starts fresh interpreters instead. The CLI
            passes it in, so this module never imports the CLI that imports it.
        close_in_child: descriptors a forked party must not keep (the runner's ``--out``
            lock: a party that outlives the runner must not keep ``--out`` locked).

    Raises:
        UsageError: the variable names no start method.
    """
    method = os.environ.get(START_ENV, "").strip() or "fork"
    if method not in START_METHODS:
        raise UsageError(f"{START_ENV}={method!r}: expected one of {', '.join(START_METHODS)}")
    if entry is None or method == "subprocess":
        return start_subprocess
    if "fork" not in multiprocessing.get_all_start_methods():
        return start_subprocess
    return lambda args, log: _ForkedParty.start(entry, args, log, tuple(close_in_child))


class _ForkedParty:
    """A party forked from the runner, which has already imported torch and the learner.

    Start-up dominated a small session: each fresh interpreter spent seconds importing
    torch before its first round (issue 17). The child is still its own OS process with
    its own log, pid, locks and exit code; it runs exactly what ``zkadapt party`` runs.
    """

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process = process
        self.pid = process.pid or 0

    @classmethod
    def start(
        cls, entry: Entry, args: list[str], log: Path, close: tuple[int, ...]
    ) -> _ForkedParty:
        context = multiprocessing.get_context("fork")
        process = context.Process(
            target=_party_main, args=(entry, args, str(log), close), daemon=False
        )
        process.start()
        return cls(process)

    def poll(self) -> int | None:
        return self._process.exitcode

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(f"party {self.pid}", timeout or 0.0)
        return code


def _party_main(entry: Entry, args: list[str], log: str, close: tuple[int, ...]) -> None:
    """The forked child: output to the party's log, then ``zkadapt ARGS`` as from a shell."""
    for fd in close:
        with contextlib.suppress(OSError):
            os.close(fd)  # the parent keeps its lock; only this copy goes
    sink = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    os.close(sink)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.argv = ["zkadapt", *args]
    entry(args)


@dataclass
class PartyRun:
    """One party's process across its restarts, and how it ended."""

    name: str
    args: list[str]
    log: Path
    process: PartyProcess | None = None
    restarts: int = 0
    failure: str | None = None  # the line failed_parties records; None if it finished
    done: bool = False


def exit_text(code: int) -> str:
    """``exit code 3``, or ``killed by SIGKILL`` for a negative (signal) return code."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def last_line(path: Path) -> str:
    """The last non-empty line of a log ("" when there is none or it cannot be read)."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


@dataclass
class PartySupervisor:
    """Starts every party, then on each :meth:`poll` handles the ones that exited."""

    runs: list[PartyRun]
    launch: Launcher
    console: Console
    max_restarts: int = DEFAULT_MAX_RESTARTS
    stopped: bool = field(default=False, init=False)

    def start_all(self) -> None:
        """Start every party once."""
        for run in self.runs:
            run.process = self.launch(run.args, run.log)

    def poll(self) -> bool:
        """Handle parties that exited since the last call; True while any party runs."""
        for run in self.runs:
            code = None if run.done or run.process is None else run.process.poll()
            if code is not None:
                self._exited(run, code)
        return any(not run.done for run in self.runs)

    def failed(self) -> dict[str, str]:
        """Party -> why it did not finish; parties restarted and finished are not listed."""
        return {run.name: run.failure for run in self.runs if run.failure is not None}

    def restarts(self) -> dict[str, int]:
        """Party -> how often it was restarted (every party, 0 when never)."""
        return {run.name: run.restarts for run in self.runs}

    def stop_all(self, why: str) -> None:
        """Stop every running party (SIGTERM, then SIGKILL after a grace period)."""
        self.stopped = True
        running = [r for r in self.runs if not r.done]
        for run in running:
            if run.process is not None and run.process.poll() is None:
                run.process.terminate()
        for run in running:
            _wait_or_kill(run.process)
            run.done = True
            run.failure = run.failure or f"stopped by the runner: {why}"

    def _exited(self, run: PartyRun, code: int) -> None:
        if code in FINISHED_EXIT_CODES:  # done, possibly with failed rounds it went past
            run.done = True
            return
        line = last_line(run.log)
        if code in ENDED_EXIT_CODES:
            run.done, run.failure = True, line or exit_text(code)
            self._say(f"{run.name} stopped ({exit_text(code)}): {line or '(empty log)'}")
            return
        self._say(f"{run.name} died ({exit_text(code)}): {line or '(empty log)'}")
        if code in FATAL_EXIT_CODES:
            run.done, run.failure = True, line or exit_text(code)
            others = [r.name for r in self.runs if not r.done]
            if others:
                self._say(f"stopping {', '.join(others)}: a restart cannot fix {run.name}'s error")
                self.stop_all(f"{run.name} failed ({line or exit_text(code)})")
            return
        if run.restarts >= self.max_restarts:
            run.done = True
            run.failure = f"{line or exit_text(code)} (gave up after {run.restarts} restarts)"
            self._say(f"{run.name}: not restarted again (limit {self.max_restarts})")
            return
        run.restarts += 1
        self._say(f"restarting {run.name} ({run.restarts} of at most {self.max_restarts})")
        run.process = self.launch(run.args, run.log)

    def _say(self, line: str) -> None:
        self.console.print(line, style="yellow", markup=False, highlight=False, soft_wrap=True)


def _wait_or_kill(process: PartyProcess | None) -> None:
    """Wait for a terminated party; kill it if it outlives the grace period."""
    if process is None:
        return
    try:
        process.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
