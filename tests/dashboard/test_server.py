"""The aiohttp app: page, server-sent events (live and replay), JSON, errors, host guard."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from tests.dashboard.scripted import ScriptedSession
from zkadapt.dashboard import server
from zkadapt.dashboard.server import Dashboard, create_app
from zkadapt.dashboard.source import LedgerWatcher, locate_session

Scenario = Callable[[TestClient], Awaitable[None]]


def _run(scripted: ScriptedSession, scenario: Scenario) -> None:
    """Serve ``scripted`` on an ephemeral loopback port and run ``scenario`` against it."""

    async def main() -> None:
        watcher = LedgerWatcher(locate_session(scripted.session_file, scripted.out_dir))
        app = create_app(Dashboard(watcher, poll_interval=0.05))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await scenario(client)
        watcher.close()

    asyncio.run(asyncio.wait_for(main(), 30))


async def _next_event(response: ClientResponse) -> tuple[str, Any]:
    """Read one server-sent event (skipping comments and the retry hint)."""
    kind, data = "message", ""
    while True:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line == "" and data:
            return kind, json.loads(data)
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data += line[len("data: ") :]


async def _until(response: ClientResponse, section: str, text: str) -> dict[str, str]:
    """Read ``sections`` events until ``section`` contains ``text``; return that event."""
    while True:
        kind, data = await _next_event(response)
        if kind == "sections" and text in data.get(section, ""):
            return data


def test_page_is_served_with_security_headers(scripted: ScriptedSession) -> None:
    scripted.play_round(1)

    async def scenario(client: TestClient) -> None:
        response = await client.get("/")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        text = await response.text()
        assert 'data-party="alice"' in text and "Channel timeline" in text

    _run(scripted, scenario)


def test_event_stream_pushes_what_changes_on_the_ledger(scripted: ScriptedSession) -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        kind, first = await _next_event(response)
        assert kind == "sections" and set(first) >= {"cards", "timeline", "metrics", "status"}
        assert "Waiting for the session to start" in first["alerts"]

        scripted.submit(1, "alice")
        update = await _until(response, "cards", 'data-party="alice" data-phase="Submitted"')
        assert "actions" not in update  # unchanged sections are not sent again
        assert "last signal round" in update["escrow"]  # a Submitted is a progress signal

        scripted.submit(1, "bob")
        scripted.close_phase(1)
        scripted.reject(1, "bob", "digest mismatch")
        await _until(response, "rounds", "bob: digest mismatch (by alice)")
        response.close()

    _run(scripted, scenario)


def test_replay_steps_through_history_and_ends(scripted: ScriptedSession, monkeypatch: Any) -> None:
    monkeypatch.setattr(server, "REPLAY_STEP_S", 0.0)
    for r in (1, 2, 3):
        scripted.play_round(r, rejected="carol" if r == 2 else None)

    async def scenario(client: TestClient) -> None:
        page = await (await client.get("/?replay=1")).text()
        assert 'data-events="/events?replay=1"' in page and "no channel messages yet" in page
        response = await client.get("/events?replay=1")
        counts = []
        while True:
            kind, data = await _next_event(response)
            if kind == "end":
                break
            if "status" in data:
                counts.append(int(data["status"].split(" channel entries")[0].split()[-1]))
        assert counts == sorted(counts) and counts[-1] == 3 * 8 + 3
        assert len(counts) > 10  # many steps, not one jump

    _run(scripted, scenario)


def test_snapshot_json_has_cards_rounds_and_channel(scripted: ScriptedSession) -> None:
    scripted.play_round(1, rejected="bob")

    async def scenario(client: TestClient) -> None:
        body = await (await client.get("/api/snapshot")).json()
        assert body["session_id"] == scripted.sid
        assert body["channel"]["chain_ok"] and body["channel"]["entries"] == 11
        assert [c["name"] for c in body["cards"]] == ["alice", "bob", "carol"]
        assert body["rounds"][0]["rejected"][0]["party"] == "bob"
        assert body["escrow"]["status"] == "pending"
        assert [r["deposit"] for r in body["escrow"]["rows"]] == ["no deposit yet"] * 3

    _run(scripted, scenario)


def test_unknown_paths_and_methods_get_an_html_error_page(scripted: ScriptedSession) -> None:
    async def scenario(client: TestClient) -> None:
        missing = await client.get("/<nope>")
        assert missing.status == 404
        text = await missing.text()
        assert "Page not found" in text and "<nope>" not in text and "Traceback" not in text
        post = await client.post("/", data=b"x")
        assert post.status == 405 and "Traceback" not in await post.text()

    _run(scripted, scenario)


def test_requests_for_another_host_name_are_refused(scripted: ScriptedSession) -> None:
    async def scenario(client: TestClient) -> None:
        evil = await client.get("/", headers={"Host": "attacker.example:8765"})
        assert evil.status == 403 and "loopback" in await evil.text()
        for host in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765"):
            assert (await client.get("/", headers={"Host": host})).status == 200

    _run(scripted, scenario)
