"""The live dashboard in a real browser (Debian's headless chromium, driven by Playwright).

A 3-round MNIST session runs in the background while the page is open: alice and bob start
first (the page shows them submitted and waiting), then carol joins and replays her
round-1 update in rounds 2 and 3, which everyone rejects. The page must follow all of it by
itself — cards, rounds, the rejection, the plot — without a reload. A screenshot is saved
as a test artifact (``dashboard.png`` and, midway, ``dashboard-waiting.png`` in the test's
tmp dir, copied to SCREENSHOT and beside it).
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Where the final screenshot is copied for people to look at (the midway one beside it).
SCREENSHOT = Path("/tmp/zkadapt-dashboard.png")
REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 240_000  # a 3-round session with 3 party processes on a loaded 2-core machine
_ZKADAPT = (sys.executable, "-m", "zkadapt")
_REPLAYING = (sys.executable, "-m", "tests.e2e.replaying_party")


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes] | subprocess.Popen[str]]]:
    """Background processes, stopped (Ctrl-C, then kill) when the test ends."""
    started: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in started:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_dashboard(session: Path, out: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*_ZKADAPT, "dashboard", str(session), "--out", str(out), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=0.5):
            match = re.search(r"http://\S+", proc.stdout.readline())
            if match:
                return proc, match.group(0)
    raise AssertionError("the dashboard did not announce its URL")


def _replaying_party(session: Path, party: str, out: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [*_REPLAYING, str(session), "--party", party, "--out", str(out)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(),
        )


def test_dashboard_follows_a_live_session_in_chromium(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, data=SMALL, session={"rounds": 3}, protocol={"submit_timeout_s": 150})
    out = tmp_path / "out"
    dashboard, url = _start_dashboard(session, out)
    procs.append(dashboard)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url)
            page.wait_for_function("() => document.getElementById('live').textContent === 'live'")
            page.evaluate("() => { window.notReloaded = true; }")
            assert page.locator(".card").count() == 3
            assert page.locator('.card[data-phase="not joined"]').count() == 3
            assert "Waiting for the session to start" in page.inner_text("#alerts")

            # alice and bob start: they submit round 1 and wait for carol
            for name in ("alice", "bob"):
                procs.append(spawn_party(session, name, out, tmp_path / f"{name}.log"))
            page.wait_for_function(
                "() => document.querySelectorAll('.card[data-phase=\"Submitted\"]').length === 2",
                timeout=WAIT_MS,
            )
            assert page.get_attribute('.card[data-party="carol"]', "data-phase") == "not joined"
            assert "collecting: 2 of 3 submitted" in page.inner_text("#rounds")
            assert page.locator("#timeline tr[data-kind='Submitted']").count() == 2
            assert "no completed round yet" in page.inner_text("#metrics")
            page.screenshot(path=str(tmp_path / "dashboard-waiting.png"), full_page=True)

            # carol joins, replays her round-1 update later and is rejected
            procs.append(_replaying_party(session, "carol", out, tmp_path / "carol.log"))
            page.wait_for_function(
                "() => document.querySelectorAll("
                '\'.card[data-phase="RoundDone"][data-round="3"]\').length === 3',
                timeout=WAIT_MS,
            )
            rounds = page.inner_text("#rounds")
            assert "carol: replay: object is for round 1 (by " in rounds
            assert page.locator("#rounds tr.rejected").count() == 2  # rounds 2 and 3
            assert page.locator("#timeline tr[data-kind='Rejected']").count() >= 4
            carol = page.inner_text('.card[data-party="carol"]')
            assert "rejected in round 2" in carol and "rejected in round 3" in carol
            assert page.locator("#metrics svg polyline").count() == 8  # global + 3, two charts
            points = page.get_attribute('#metrics g[data-series="global"] polyline', "points")
            assert points is not None and len(points.split()) == 3
            assert "complete" in page.inner_text("#status")
            assert "verified" in page.inner_text("#channel")
            assert (
                page.evaluate("() => window.notReloaded") is True
            )  # followed by events, no reload
            assert int(page.evaluate("() => document.body.dataset.updates")) >= 3
            assert errors == []

            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            shutil.copyfile(shot, SCREENSHOT)
            shutil.copyfile(
                tmp_path / "dashboard-waiting.png",
                SCREENSHOT.with_stem(SCREENSHOT.stem + "-waiting"),
            )
        finally:
            browser.close()
    for proc in procs[1:]:
        assert proc.wait(60) == 0, (tmp_path / "carol.log").read_text()[-2000:]
