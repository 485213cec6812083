"""Helpers for end-to-end tests: run the real ``zkadapt`` CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from zkadapt.config import tomllib

#: Small enough for CI (2 cores), large enough that FedAvg beats chance clearly.
SMALL = {"max_train": 3000, "max_test": 1000}


def zkadapt(
    *args: str, cwd: Path, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m zkadapt ARGS`` and return the finished process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "zkadapt", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"zkadapt {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
        )
    return proc


def spawn_party(session: Path, party: str, out: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``zkadapt party`` in the background, output to ``log``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zkadapt",
                "party",
                str(session),
                "--party",
                party,
                "--out",
                str(out),
                "--quiet",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )


def edit_session(path: Path, **sections: dict[str, object]) -> None:
    """Change settings of a session file in place (e.g. ``data={"max_train": 3000}``)."""
    raw = tomllib.loads(path.read_text())
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    path.write_text(tomli_w.dumps(raw))


@pytest.fixture
def small_session(tmp_path: Path) -> Path:
    """A 3-party MNIST session made by ``zkadapt init``, shrunk for CI."""
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, data=SMALL, session={"rounds": 2}, protocol={"submit_timeout_s": 60})
    return session
