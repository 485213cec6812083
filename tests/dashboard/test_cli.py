"""``zkadapt dashboard`` as a user runs it: announce, bind, stop, and one-line errors."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dashboard.scripted import ScriptedSession

STARTUP_S = 60.0
#: How long Ctrl-C may take to stop it.
STOP_S = 15.0


def _default_sigint() -> None:
    """Give the dashboard the default Ctrl-C: a shell's background job (``pytest &``)
    ignores SIGINT, a child inherits that, and it would then ignore the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _dashboard(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "zkadapt", "dashboard", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=_default_sigint,
    )


@contextmanager
def serving(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start the dashboard on a free port; yield its announced URL; stop it with Ctrl-C."""
    proc = _dashboard(*args, "--port", "0")
    try:
        url = _announced_url(proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _announced_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            match = re.search(r"http://\S+", line)
            if match:
                return match.group(0)
            if not line and proc.poll() is not None:
                break
    raise AssertionError(
        f"dashboard did not announce its URL: {proc.stderr.read() if proc.stderr else ''}"
    )


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (Linux /proc)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_serves_the_page_on_loopback_only_and_stops_on_ctrl_c(scripted: ScriptedSession) -> None:
    scripted.play_round(1)
    with serving(str(scripted.session_file)) as (url, proc):
        assert url.startswith("http://127.0.0.1:")
        page = _get(url)
        assert 'data-party="alice"' in page and "read-only" in page
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        if os.path.exists("/proc/net/tcp"):
            assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
    assert proc.returncode == 0
    assert "dashboard stopped" in (proc.stdout.read() if proc.stdout else "")
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_allow_actions_is_accepted_and_shown(scripted: ScriptedSession) -> None:
    with serving(str(scripted.session_file), "--allow-actions") as (url, _):
        page = _get(url)
    assert "actions allowed (--allow-actions)" in page
    assert "there is no Hydra head to operate" in page


def test_a_tampered_ledger_is_a_warning_and_an_error_on_the_page(
    scripted: ScriptedSession,
) -> None:
    import sqlite3

    scripted.play_round(1)
    scripted.close()
    conn = sqlite3.connect(scripted.ledger_path)
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("UPDATE entries SET payload = replace(payload, 'bob', 'bxb') WHERE seq = 2")
    conn.commit()
    conn.close()
    with serving(str(scripted.session_file)) as (url, proc):
        page = _get(url)
    assert 'role="alert"' in page and "seq 2" in page and "FAILED" in page
    stderr = proc.stderr.read() if proc.stderr else ""
    assert re.search(r"^warning: .*seq 2", stderr, re.M) and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.toml"], "session file not found"),
        (["--port", "70000", "x.toml"], "70000"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _dashboard(*args)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_a_port_in_use_is_one_error_line(scripted: ScriptedSession) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _dashboard(str(scripted.session_file), "--port", str(port))
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen on 127.0.0.1" in lines[0]
