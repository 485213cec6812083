"""A newcomer's ``zkadapt join`` during round 2 of a running session, for the join e2e tests
(docs/membership.md; tests/e2e/test_join*_cli.py).

Why the pause: a newcomer that asks "during round 2" must have its ``JoinRequest`` on the
channel before round 2 is cut, and a race against three training processes would make that
a matter of luck. So one listed party (carol) is stopped with SIGSTOP right after her round-1
submission: the other two cut round 1 with their two close votes and then wait for carol's
round-2 submission until their deadline, so round 2 cannot be cut while she is stopped. The
test starts the newcomer, waits for its request (and whatever else must fall in round 2),
and resumes her with SIGCONT. :meth:`JoinScene.close` resumes and kills whatever is left, so
a failed test leaves no stopped process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType

from tests.e2e.conftest import SMALL, spawn_party
from zkadapt.assembly import open_session_channel
from zkadapt.config import load_config
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import JoinRequest

#: How much of a dead party's log a failure shows.
TAIL = 3000


def small_mnist(rounds: int) -> dict[str, dict[str, object]]:
    """``edit_session`` settings for a small MNIST run of ``rounds`` rounds that the pause
    relies on: two close votes let alice and bob cut round 1 without carol, and a 90 s
    deadline keeps them waiting for her in round 2 while the newcomer starts."""
    return {
        "data": dict(SMALL),
        "model": {"hidden": [16]},
        "session": {"rounds": rounds},
        "protocol": {"submit_timeout_s": 90, "close_votes": 2},
    }


class JoinScene:
    """The processes of one session's run (the listed parties and the newcomer), their
    logs (``LOGS/<name>.log``) and a reader of the session's channel (local or hydra)."""

    def __init__(
        self, session: Path, out: Path, logs: Path, *, limit_s: float = 240, poll_s: float = 0.05
    ) -> None:
        self.session = session
        self.out = out
        self.logs = logs
        self.limit_s = limit_s
        self.poll_s = poll_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> JoinScene:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def log(self, name: str) -> Path:
        """Where ``name``'s output goes."""
        return self.logs / f"{name}.log"

    def tail(self, name: str) -> str:
        """The end of ``name``'s log, for a failure message."""
        return self.log(name).read_text()[-TAIL:]

    def history(self) -> SessionHistory | None:
        """The session's channel as a reader sees it (None before a local ledger exists).

        ``open_session_channel`` applies the session's outsider policy, so the newcomer's
        envelopes are carried, and ``channel_rules`` lets the history admit it.
        """
        config = load_config(self.session)
        if config.channel.backend == "local" and not (self.out / config.channel.path).exists():
            return None  # opening it would create it under the parties
        channel = open_session_channel(config, self.out, record=False)
        try:
            history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
            history.extend(channel.history(0))
            return history
        finally:
            channel.close()

    def read(self) -> SessionHistory:
        """The session's channel, which must exist by now."""
        history = self.history()
        assert history is not None, f"no ledger under {self.out}"
        return history

    def wait_for(
        self,
        predicate: Callable[[SessionHistory], bool],
        what: str,
        limit: float | None = None,
    ) -> SessionHistory:
        """Poll the channel until ``predicate`` holds; fail naming a process that exited
        non-zero (with its log's tail) or, after ``limit`` seconds, ``what``."""
        end = time.monotonic() + (self.limit_s if limit is None else limit)
        while time.monotonic() < end:
            history = self.history()
            if history is not None and predicate(history):
                return history
            for name, proc in self.procs.items():
                if proc.poll() not in (None, 0):
                    raise AssertionError(f"{name} died:\n{self.tail(name)}")
            time.sleep(self.poll_s)
        raise AssertionError(f"timed out waiting for {what}")

    def spawn_parties(self, names: Iterable[str]) -> None:
        """Start ``zkadapt party`` for each listed party."""
        for name in names:
            self.procs[name] = spawn_party(self.session, name, self.out, self.log(name))

    def spawn_join(self, name: str, *extra: str) -> None:
        """Start ``zkadapt join SESSION --name NAME --out OUT EXTRA... --quiet``."""
        command = [sys.executable, "-m", "zkadapt", "join", str(self.session), "--name", name]
        with self.log(name).open("ab") as sink:
            self.procs[name] = subprocess.Popen(
                [*command, "--out", str(self.out), *extra, "--quiet"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def pause(self, name: str) -> None:
        """Stop ``name`` (SIGSTOP): it posts nothing until :meth:`resume`."""
        os.kill(self.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """Let ``name`` go on (SIGCONT) from where it stopped."""
        os.kill(self.procs[name].pid, signal.SIGCONT)

    def join_during_round_2(self, paused: str, name: str, *extra: str) -> SessionHistory:
        """Pause ``paused`` after its round-1 submission, start ``name``'s join once round 1
        is cut, and return the channel once its ``JoinRequest`` is there (round 2 cannot be
        cut until ``paused`` is resumed)."""
        self.wait_for(lambda h: paused in h.submissions(1), f"{paused}'s round-1 submission")
        self.pause(paused)
        self.wait_for(lambda h: h.cut(1) is not None, "the cut of round 1")
        self.spawn_join(name, *extra)
        return self.wait_for(
            lambda h: any(isinstance(p.message, JoinRequest) for p in h.posted),
            f"{name}'s JoinRequest",
        )

    def wait_all(self, timeout: float) -> dict[str, int]:
        """Every process's exit code, in the order they started."""
        return {name: proc.wait(timeout=timeout) for name, proc in self.procs.items()}

    def tails(self) -> dict[str, str]:
        """Every process's log tail, for a failure message."""
        return {name: self.tail(name) for name in self.procs}

    def close(self) -> None:
        """Resume and kill whatever still runs (a stopped process ignores all but SIGKILL,
        and a resumed one must not outlive the test)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()
