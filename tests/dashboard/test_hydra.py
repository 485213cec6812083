"""The dashboard of a Hydra session (the hydra-node double): head state, actions, escrow.

Operator actions: read-only without ``--allow-actions`` (no buttons, POST answers 403), a
per-process token (a wrong one answers 403), buttons only where the head's status allows,
and the node's refusal (``CommandFailed``) shown as one line. The escrow table must say
exactly what ``zkadapt escrow status`` prints, on a local ledger and on a head.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from tests.dashboard.hydra_scripted import HydraScripted
from tests.dashboard.scripted import ScriptedSession
from zkadapt.cli import cli
from zkadapt.dashboard.page import render_sections
from zkadapt.dashboard.server import TOKEN_HEADER, Dashboard, create_app
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.escrow.messages import Claim, EscrowDeposit, KillVote
from zkadapt.operator.head import NO_HEAD

Scenario = Callable[[TestClient, Dashboard], Awaitable[None]]


@pytest.fixture
def hydra(tmp_path: Path) -> Iterator[HydraScripted]:
    session = HydraScripted(tmp_path / "out")
    yield session
    session.close()


def _serve(scripted: ScriptedSession, scenario: Scenario, *, allow_actions: bool) -> None:
    async def main() -> None:
        target = locate_session(scripted.session_file, scripted.out_dir)
        watcher = LedgerWatcher(target, allow_actions=allow_actions)
        dashboard = Dashboard(watcher, poll_interval=0.05)
        async with TestClient(TestServer(create_app(dashboard), host="127.0.0.1")) as client:
            await scenario(client, dashboard)
        watcher.close()

    asyncio.run(asyncio.wait_for(main(), 60))


async def _act(client: TestClient, name: str, token: str) -> tuple[int, dict[str, object]]:
    response = await client.post(f"/api/actions/{name}", headers={TOKEN_HEADER: token})
    return response.status, await response.json()


async def _until(dashboard: Dashboard, check: Callable[[Dashboard], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while not check(dashboard):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _offered(dashboard: Dashboard) -> list[str]:
    return re.findall(r'data-action="(\w+)" data-command', dashboard.sections["actions"])


def test_actions_follow_the_head_from_init_to_fanout(hydra: HydraScripted) -> None:
    async def scenario(client: TestClient, dashboard: Dashboard) -> None:
        page = await (await client.get("/")).text()
        assert f'<meta name="zkadapt-action-token" content="{dashboard.token}">' in page
        assert '<dialog id="confirm"' in page and _offered(dashboard) == ["init"]

        status, body = await _act(client, "init", dashboard.token)
        assert status == 200 and body == {
            "ok": True,
            "message": f"Init: head {hydra.double.head.head_id} is open",
        }
        assert _offered(dashboard) == ["close"]
        await asyncio.to_thread(hydra.play_round, 1)
        await _until(dashboard, lambda d: d.snapshot.channel.entries == 8, "round 1")

        status, body = await _act(client, "close", dashboard.token)
        assert status == 200 and "closed at snapshot" in str(body["message"])
        assert 'data-status="Closed"' in dashboard.sections["channel"]
        assert _offered(dashboard) == []  # nothing until the contestation period ends
        assert (
            "fanout becomes possible after the contestation period"
            in (dashboard.sections["actions"])
        )
        status, body = await _act(client, "close", dashboard.token)  # the node decides
        assert status == 502 and body["ok"] is False
        assert str(body["message"]).endswith(
            "Close refused by the node (CommandFailed: head is Closed)"
        )
        await _until(dashboard, lambda d: _offered(d) == ["fanout"], "ReadyToFanout")

        status, body = await _act(client, "fanout", dashboard.token)
        assert status == 200 and "30,000,000 lovelace back on layer 1" in str(body["message"])
        await _until(dashboard, lambda d: "finalized" in d.sections["actions"], "the fanout")
        assert _offered(dashboard) == []
        timeline = dashboard.sections["timeline"]
        kinds = re.findall(r'data-kind="(\w+)"', timeline)[::-1]  # oldest first
        assert kinds[0] == "HeadIsOpen" and kinds[1] == "Submitted"
        assert kinds[-5:] == [
            "RoundDone",
            "HeadIsClosed",
            "CommandFailed",
            "ReadyToFanout",
            "HeadIsFinalized",
        ]
        log = dashboard.sections["actions"]
        assert log.count('<li class="ok"') == 3 and log.count('<li class="bad"') == 1
        assert hydra.double.violations == []

    _serve(hydra, scenario, allow_actions=True)


def test_a_read_only_dashboard_offers_nothing_and_refuses_actions(hydra: HydraScripted) -> None:
    async def scenario(client: TestClient, dashboard: Dashboard) -> None:
        page = await (await client.get("/")).text()
        assert 'class="action"' not in page and "<dialog" not in page
        assert '<meta name="zkadapt-action-token"' not in page
        assert "--allow-actions to operate the head" in dashboard.sections["actions"]
        status, body = await _act(client, "init", dashboard.token)
        assert status == 403 and "read-only" in str(body["message"])
        assert hydra.double.head.status == "Idle"  # nothing was sent

    _serve(hydra, scenario, allow_actions=False)


def test_a_wrong_token_or_a_foreign_origin_is_refused(hydra: HydraScripted) -> None:
    async def scenario(client: TestClient, dashboard: Dashboard) -> None:
        for token in ("", "x" * 43, dashboard.token[:-1]):
            status, body = await _act(client, "init", token)
            assert status == 403 and "wrong action token" in str(body["message"])
        evil = await client.post(
            "/api/actions/init",
            headers={TOKEN_HEADER: dashboard.token, "Origin": "http://attacker.example"},
        )
        assert evil.status == 403
        status, body = await _act(client, "abort", dashboard.token)
        assert status == 404 and "valid: init, close, fanout" in str(body["message"])
        assert hydra.double.head.status == "Idle" and hydra.double.inputs == []

    _serve(hydra, scenario, allow_actions=True)


def test_a_local_session_has_no_head_to_operate(scripted: ScriptedSession) -> None:
    scripted.play_round(1)

    async def scenario(client: TestClient, dashboard: Dashboard) -> None:
        assert NO_HEAD in dashboard.sections["actions"] and _offered(dashboard) == []
        status, body = await _act(client, "close", dashboard.token)
        assert status == 409 and body["message"] == NO_HEAD

    _serve(scripted, scenario, allow_actions=True)


# -- escrow: the table is what `zkadapt escrow status` prints -------------------------------

_CLI_ROW = re.compile(
    r"^  (?P<party>\S+): (?P<deposit>.*); last signal round (?P<signal>\d+); "
    r"kill votes: (?P<votes>.*); settlement: (?P<settlement>\S+)(?: \[(?P<flags>.*)\])?$"
)


class _Cells(HTMLParser):
    """The escrow section's headline and table body cells."""

    def __init__(self) -> None:
        super().__init__()
        self.headline = ""
        self.rows: list[list[str]] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p" and ("id", "escrow-headline") in attrs:
            self._in = "headline"
        elif tag == "tr" and any(k == "data-party" for k, _ in attrs):
            self.rows.append([])
        elif tag == "td" and self.rows:
            self.rows[-1].append("")
            self._in = "td"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "headline":
            self.headline += data
        elif self._in == "td":
            self.rows[-1][-1] += data


def escrow_table(html: str) -> tuple[str, list[tuple[str, ...]]]:
    """(headline, rows) of the dashboard's escrow section."""
    cells = _Cells()
    cells.feed(html)
    return cells.headline, [tuple(r) for r in cells.rows]


def escrow_cli(session: Path) -> tuple[str, list[tuple[str, ...]]]:
    """(headline, rows) of ``zkadapt escrow status``, parsed into the table's columns."""
    result = CliRunner().invoke(cli, ["escrow", "status", str(session)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    headline, *lines = result.output.strip("\n").splitlines()
    rows = []
    for line in lines:
        match = _CLI_ROW.match(line)
        assert match, line
        keys = ("party", "deposit", "signal", "votes", "settlement", "flags")
        rows.append(tuple(match[k] or "" for k in keys))
    return headline, rows


def _escrow_story(scripted: ScriptedSession) -> None:
    """alice and bob deposit, carol deposits a wrong amount, alice votes to kill bob."""
    sid = scripted.sid
    for name in ("alice", "bob"):
        scripted.post_escrow(name, EscrowDeposit(sid, 0, name, 10_000_000, f"{name}#0"))
    scripted.play_round(1)
    scripted.post_escrow("carol", EscrowDeposit(sid, 0, "carol", 5, "carol#0"))  # wrong amount
    scripted.post_escrow("alice", KillVote(sid, 1, "alice", "bob", "silent"))
    scripted.post_escrow("bob", Claim(sid, 1, "bob"))


@pytest.mark.parametrize("backend", ["local", "hydra"])
def test_the_escrow_table_equals_zkadapt_escrow_status(backend: str, tmp_path: Path) -> None:
    if backend == "hydra":
        scripted: ScriptedSession = HydraScripted(tmp_path)
        scripted.open_head()  # type: ignore[attr-defined]
    else:
        scripted = ScriptedSession(tmp_path)
    try:
        watcher = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
        watcher.poll()
        empty = escrow_table(render_sections(watcher.snapshot())["escrow"])
        assert empty == escrow_cli(scripted.session_file)
        assert [r[1] for r in empty[1]] == ["no deposit yet"] * 3
        _escrow_story(scripted)
        deadline = time.monotonic() + 10
        while watcher.snapshot().channel.entries < 13 and time.monotonic() < deadline:
            watcher.poll()
            time.sleep(0.05)
        assert watcher.snapshot().channel.entries == 13
        table = escrow_table(render_sections(watcher.snapshot())["escrow"])
        watcher.close()
        assert table == escrow_cli(scripted.session_file)
        headline, rows = table
        assert ": pending; progress round 1 of 3" in headline
        # two depositors: alice's vote is a majority of bob's one peer, but no single party
        # slashes another (docs/escrow.md), so bob stays and nothing is claimable yet
        assert rows[0] == ("alice", "deposited 10000000", "1", "none", "pending", "")
        assert rows[1] == ("bob", "deposited 10000000", "1", "alice", "pending", "")
        assert rows[2][1] == "deposited 5 (wrong amount: not in the escrow)"
    finally:
        scripted.close()
