"""Operator actions on a Hydra head from the dashboard, in headless Chromium (Playwright).

The head is the hydra-node double (tests/hydra_double; no real hydra-node can be installed
here), started in this process; ``zkadapt dashboard`` runs as a subprocess, as a user would
start it. Without ``--allow-actions`` the page has no action button and the action endpoint
answers 403. With it, the page offers exactly the action the head's status allows: Init on an
idle node, Close on an open head, nothing while the closed head is in its contestation
period, then Fanout. Each click asks for a confirmation in a dialog naming the command; the
result and the head's new state appear without a reload, and the timeline shows HeadIsOpen,
HeadIsClosed, ReadyToFanout and HeadIsFinalized. A wrong token answers 403. The escrow table
equals ``zkadapt escrow status``. Screenshots: ``dashboard-hydra-confirm.png`` (the dialog)
and ``dashboard-hydra.png`` in the test's tmp dir, copied to SCREENSHOT and beside it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dashboard.hydra_scripted import HydraScripted
from tests.dashboard.test_hydra import escrow_cli, escrow_table
from tests.e2e.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, _start_dashboard, procs
from zkadapt.escrow.messages import EscrowDeposit

pytestmark = pytest.mark.e2e

__all__ = ["procs"]  # the fixture, shared with the live-session browser test

SCREENSHOT = Path("/tmp/zkadapt-dashboard-hydra.png")
WAIT_MS = 30_000


def _head_status(page) -> str:  # type: ignore[no-untyped-def]
    return page.get_attribute("#head-status", "data-status") or ""


def _offered(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all(
        "#actions button[data-action]", "buttons => buttons.map(b => b.dataset.action)"
    )


def _confirm(page, command: str, *, cancel_first: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Click the ``command`` button and confirm in the dialog (optionally cancel once)."""
    button = f'#actions button[data-command="{command}"]'
    if cancel_first:
        page.click(button)
        page.click("#confirm-no")
        assert not page.is_visible("#confirm")
    page.click(button)
    assert page.is_visible("#confirm")
    assert page.inner_text("#confirm-yes") == f"Confirm {command}"
    assert f"Send {command} to the head" in page.inner_text("#confirm-text")
    page.click("#confirm-yes")


def test_operator_actions_open_close_and_fan_out_the_head(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    session = HydraScripted(tmp_path / "out", rounds=2, contestation_s=2.0)
    try:
        readonly, readonly_url = _start_dashboard(session.session_file, session.out_dir)
        procs.append(readonly)
        live, url = _start_dashboard(session.session_file, session.out_dir, "--allow-actions")
        procs.append(live)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                # read-only: no buttons, and the endpoint refuses
                page.goto(readonly_url)
                page.wait_for_selector('#head-status[data-status="Idle"]', timeout=WAIT_MS)
                assert page.locator("button").count() == 0
                assert "--allow-actions to operate the head" in page.inner_text("#actions")
                refused = page.request.post(f"{readonly_url}api/actions/init")
                assert refused.status == 403 and "read-only" in refused.json()["message"]

                # with --allow-actions: Init (cancelled once, then confirmed)
                page.goto(url)
                page.wait_for_function(
                    "() => document.getElementById('live').textContent === 'live'"
                )
                page.evaluate("() => { window.notReloaded = true; }")
                assert _head_status(page) == "Idle" and _offered(page) == ["init"]
                _confirm(page, "Init", cancel_first=True)
                page.wait_for_selector("#action-result.ok", timeout=WAIT_MS)
                assert page.inner_text("#action-result").startswith("Init: head ")
                page.wait_for_selector('#head-status[data-status="Open"]', timeout=WAIT_MS)
                assert _offered(page) == ["close"]
                assert [p for p, m in session.double.inputs] == ["alice"]  # one Init only

                # the parties deposit and play a round through the head
                for name in ("alice", "bob"):
                    deposit = EscrowDeposit(session.sid, 0, name, 10_000_000, f"{name}#0")
                    session.post_escrow(name, deposit)
                session.play_round(1)
                page.wait_for_function(
                    "() => document.getElementById('entry-count').textContent === '10'",
                    timeout=WAIT_MS,
                )
                assert page.locator("#timeline tr[data-kind='Submitted']").count() == 3
                assert escrow_table(page.inner_html("#escrow")) == escrow_cli(session.session_file)

                # a wrong token is refused, whatever the action
                token = page.get_attribute('meta[name="zkadapt-action-token"]', "content")
                assert token
                wrong = page.request.post(
                    f"{url}api/actions/close", headers={"X-ZKAdapt-Token": token[::-1]}
                )
                assert wrong.status == 403 and "wrong action token" in wrong.json()["message"]
                assert session.double.head.status == "Open"

                # Close: confirmed; the head closes; nothing offered until ReadyToFanout
                _confirm(page, "Close")
                page.wait_for_selector('#head-status[data-status="Closed"]', timeout=WAIT_MS)
                page.wait_for_function(
                    "() => document.getElementById('action-result').textContent"
                    ".startsWith('Close: head ')",
                    timeout=WAIT_MS,
                )
                assert _offered(page) == []
                assert "contestation period" in page.inner_text("#actions")
                assert page.locator("#timeline tr[data-kind='HeadIsClosed']").count() == 1

                # Fanout once the contestation period is over
                page.wait_for_selector('#actions button[data-command="Fanout"]', timeout=WAIT_MS)
                page.click('#actions button[data-command="Fanout"]')
                page.screenshot(path=str(tmp_path / "dashboard-hydra-confirm.png"))
                page.click("#confirm-no")
                _confirm(page, "Fanout")
                page.wait_for_function(
                    "() => document.getElementById('action-result').textContent"
                    ".startsWith('Fanout: head ')",
                    timeout=WAIT_MS,
                )
                page.wait_for_selector("#timeline tr[data-kind='HeadIsFinalized']", timeout=WAIT_MS)
                assert "lovelace back on layer 1" in page.inner_text("#action-result")
                assert _offered(page) == [] and "finalized" in page.inner_text("#actions")
                kinds = page.eval_on_selector_all(
                    "#timeline tr[data-kind^='Head'], #timeline tr[data-kind='ReadyToFanout']",
                    "rows => rows.map(r => r.dataset.kind)",
                )
                assert kinds[::-1] == [
                    "HeadIsOpen",
                    "HeadIsClosed",
                    "ReadyToFanout",
                    "HeadIsFinalized",
                ]
                assert page.evaluate("() => window.notReloaded") is True
                assert session.double.head.status == "Idle"
                assert session.double.violations == [] and errors == []

                shot = tmp_path / "dashboard-hydra.png"
                page.screenshot(path=str(shot), full_page=True)
                shutil.copyfile(shot, SCREENSHOT)
                shutil.copyfile(
                    tmp_path / "dashboard-hydra-confirm.png",
                    SCREENSHOT.with_stem(SCREENSHOT.stem + "-confirm"),
                )
            finally:
                browser.close()
    finally:
        session.close()
