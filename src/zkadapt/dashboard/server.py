"""The dashboard's HTTP server (aiohttp): one page, its event stream, and a JSON snapshot.

Routes:

* ``/`` — the page, rendered on the server; ``/?replay=1`` starts empty and replays.
* ``/events`` — server-sent events: ``sections`` events carry ``{id: html}`` for every
  section whose HTML changed; ``/events?replay=1`` steps through the verified history
  from the start and ends with an ``end`` event.
* ``/api/snapshot`` — the current state as JSON (cards, channel, report rounds).
* ``POST /api/actions/{init,close,fanout}`` — an operator action on the session's Hydra
  head. Refused (403, JSON ``{"ok": false, "message"}``) unless the dashboard runs with
  ``--allow-actions`` and the request carries this process's action token (random per
  process, embedded in the page, sent as ``X-ZKAdapt-Token``) from the page's own origin;
  409 for a session without a head or while another action runs. The action runs through
  :meth:`~zkadapt.dashboard.source.LedgerWatcher.perform` (the CLI's ``zkadapt head`` code)
  and answers 200 or, when the node refused or did not answer, 502 with its one-line reason.

One background task polls the channel (in a worker thread: SQLite blocks) and re-renders
the sections when something changed; every open stream then sends what differs from what
it sent before. The server binds only the requested host; on a loopback host it also
refuses requests whose ``Host`` header names another site (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import ipaddress
import json
import logging
import math
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from aiohttp import web

from zkadapt.dashboard.assets import CONTENT_SECURITY_POLICY
from zkadapt.dashboard.page import render_error_page, render_page, render_sections
from zkadapt.dashboard.source import LedgerWatcher
from zkadapt.dashboard.view import SessionView, Snapshot

#: Seconds between two reads of the channel.
POLL_INTERVAL_S = 0.5
#: Seconds between two steps of a replay, and the most steps a replay takes.
REPLAY_STEP_S = 0.2
REPLAY_STEPS = 100
#: Seconds between keep-alive comments on an idle stream.
HEARTBEAT_S = 15.0
#: The request header that carries the action token.
TOKEN_HEADER = "X-ZKAdapt-Token"

_LOOPBACK_NAMES = {"localhost", "localhost.", "127.0.0.1", "::1"}
_log = logging.getLogger("zkadapt.dashboard")


class Dashboard:
    """The live state shared by all requests: the latest snapshot and its sections."""

    def __init__(self, watcher: LedgerWatcher, *, poll_interval: float = POLL_INTERVAL_S) -> None:
        self.watcher = watcher
        self.poll_interval = poll_interval
        self.version = 0
        watcher.poll()  # the first page already shows what is on the channel
        self.snapshot: Snapshot = watcher.snapshot()
        self.sections: dict[str, str] = render_sections(self.snapshot)
        self.closing = asyncio.Event()
        #: Random per dashboard process; the page sends it with every action request.
        self.token = secrets.token_urlsafe(32)
        self.acting = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkadapt-ledger")

    def refresh(self) -> bool:
        """Poll once and re-render (blocking; runs in the worker thread)."""
        if not self.watcher.poll() and self.version > 0:
            return False
        snapshot = self.watcher.snapshot()
        self.snapshot, self.sections = snapshot, render_sections(snapshot)
        return True

    async def follow(self) -> None:
        """Poll the channel until the server closes; wake the streams on every change."""
        while not self.closing.is_set():
            await self.tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.poll_interval)

    async def tick(self) -> None:
        """Poll once (in the worker thread) and wake the streams if something changed."""
        loop = asyncio.get_running_loop()
        try:
            changed = await loop.run_in_executor(self._executor, self.refresh)
        except Exception as exc:  # a bug must not stop the page from following
            _log.error("dashboard: refresh failed: %s: %s", type(exc).__name__, exc)
            changed = False
        if changed:
            async with self._changed:
                self.version += 1
                self._changed.notify_all()

    async def wait_for_change(self, seen: int, timeout: float) -> int:
        """The version after ``seen`` (or ``seen`` again after ``timeout`` s or on close)."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.version != seen or self.closing.is_set()),
                    timeout,
                )
            return self.version

    async def close(self) -> None:
        """Stop following and release the streams."""
        self.closing.set()
        async with self._changed:
            self._changed.notify_all()
        self._executor.shutdown(wait=False)


_DASHBOARD = web.AppKey("dashboard", Dashboard)
_HOST = web.AppKey("host", str)


def create_app(dashboard: Dashboard, *, host: str = "127.0.0.1") -> web.Application:
    """The aiohttp application serving ``dashboard`` (bound later to ``host``)."""
    app = web.Application(middlewares=[_errors, _host_guard])
    app[_DASHBOARD] = dashboard
    app[_HOST] = host
    app.router.add_get("/", _page)
    app.router.add_get("/events", _events)
    app.router.add_get("/api/snapshot", _snapshot_json)
    app.router.add_post("/api/actions/{name}", _action)
    app.on_response_prepare.append(_security_headers)

    follower: list[asyncio.Task[None]] = []

    async def start(app: web.Application) -> None:
        follower.append(asyncio.ensure_future(dashboard.follow()))

    async def stop(app: web.Application) -> None:
        await dashboard.close()
        for task in follower:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


async def _page(request: web.Request) -> web.Response:
    dashboard = request.app[_DASHBOARD]
    replay = request.query.get("replay") == "1"
    if replay:
        snap = _replay_snapshot(dashboard, dashboard.watcher.replay_view())
        page = render_page(snap, events_url="/events?replay=1", replay=True)
    else:
        token = dashboard.token if dashboard.watcher.view.allow_actions else None
        page = render_page(dashboard.snapshot, events_url="/events", token=token)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def _action(request: web.Request) -> web.Response:
    """Run one operator action on the head (see the module docstring for the checks)."""
    dashboard = request.app[_DASHBOARD]
    name = request.match_info["name"]
    refusal = _action_refusal(request, dashboard, name)
    if refusal is not None:
        return refusal
    if dashboard.acting.locked():
        return _action_reply(409, None, "another action is still waiting for the hydra-node")
    async with dashboard.acting:
        loop = asyncio.get_running_loop()
        # waits as long as the node's parameters allow, showing its progress in the log
        record = await loop.run_in_executor(None, dashboard.watcher.perform, name)
    await dashboard.tick()  # the page shows the answer and the head's new state at once
    return _action_reply(200 if record.ok else 502, record.ok, record.message)


def _action_refusal(request: web.Request, dashboard: Dashboard, name: str) -> web.Response | None:
    """Why this action request is refused, as a JSON reply; None to go ahead."""
    from zkadapt.operator.head import HEAD_ACTIONS, NO_HEAD

    if not dashboard.watcher.view.allow_actions:
        return _action_reply(
            403,
            False,
            "this dashboard is read-only: operator actions need `zkadapt dashboard "
            "--allow-actions`",
        )
    sent = request.headers.get(TOKEN_HEADER, "")
    if not hmac.compare_digest(sent.encode(), dashboard.token.encode()):
        return _action_reply(403, False, "missing or wrong action token: reload the dashboard")
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return _action_reply(403, False, f"actions are accepted only from the page, not {origin}")
    if not dashboard.watcher.target.hydra:
        return _action_reply(409, False, NO_HEAD)
    if name not in HEAD_ACTIONS:
        valid = ", ".join(HEAD_ACTIONS)
        return _action_reply(404, False, f"unknown action {name!r}; valid: {valid}")
    return None


def _action_reply(status: int, ok: bool | None, message: str) -> web.Response:
    return web.json_response({"ok": bool(ok), "message": message}, status=status)


async def _snapshot_json(request: web.Request) -> web.Response:
    snap = request.app[_DASHBOARD].snapshot
    body = {
        "session_id": snap.session_id,
        "completed": snap.completed,
        "channel": asdict(snap.channel),
        "cards": [asdict(c) for c in snap.cards],
        "rounds": [entry.to_json() for entry in snap.session_report.rounds],
        "in_progress": snap.in_progress,
        "timeline": [asdict(t) for t in snap.timeline],
        "escrow": asdict(snap.escrow),
        "actions": asdict(snap.actions),
    }
    return web.json_response(body, dumps=functools.partial(json.dumps, allow_nan=False))


async def _events(request: web.Request) -> web.StreamResponse:
    dashboard = request.app[_DASHBOARD]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await response.write(b"retry: 2000\n\n")
        if request.query.get("replay") == "1":
            await _replay(dashboard, response)
        else:
            await _live(dashboard, response)
    return response


async def _live(dashboard: Dashboard, response: web.StreamResponse) -> None:
    sent: dict[str, str] = {}
    seen = -1
    while not dashboard.closing.is_set():
        if seen != dashboard.version:
            seen = dashboard.version
            await _send_changed(response, dashboard.sections, sent)
        version = await dashboard.wait_for_change(seen, HEARTBEAT_S)
        if version == seen:
            await response.write(b": keep-alive\n\n")


async def _replay(dashboard: Dashboard, response: web.StreamResponse) -> None:
    """Feed the verified history into a fresh view in at most ``REPLAY_STEPS`` steps."""
    entries = dashboard.watcher.entries()
    view = dashboard.watcher.replay_view()
    step = max(1, math.ceil(len(entries) / REPLAY_STEPS))
    loop = asyncio.get_running_loop()
    sent: dict[str, str] = {}
    for start in range(0, len(entries), step):
        if dashboard.closing.is_set():
            return
        view.extend(entries[start : start + step])
        snap = await loop.run_in_executor(None, _replay_snapshot, dashboard, view)
        await _send_changed(response, render_sections(snap), sent)
        await asyncio.sleep(REPLAY_STEP_S)
    await response.write(b"event: end\ndata: {}\n\n")


def _replay_snapshot(dashboard: Dashboard, view: SessionView) -> Snapshot:
    state = dashboard.watcher.channel_state(entries=view.last_seq)
    return view.snapshot(state, baselines=dashboard.watcher.baselines, replay=True)


async def _send_changed(
    response: web.StreamResponse, sections: dict[str, str], sent: dict[str, str]
) -> None:
    changed = {k: v for k, v in sections.items() if sent.get(k) != v}
    if not changed:
        return
    sent.update(changed)
    data = json.dumps(changed, ensure_ascii=False)
    await response.write(f"event: sections\ndata: {data}\n\n".encode())


# -- middleware ---------------------------------------------------------------------------

Handler = Callable[[web.Request], Any]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is a short HTML page: never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        title = "Page not found" if exc.status == 404 else exc.reason
        text = (
            f"There is no page at {request.path}."
            if exc.status == 404
            else (exc.text or exc.reason)
        )
        return _error_response(exc.status, title, text)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:
        _log.error(
            "dashboard: %s %s failed: %s: %s", request.method, request.path, type(exc).__name__, exc
        )
        return _error_response(500, "Internal error", f"{type(exc).__name__}: {exc}")


@web.middleware
async def _host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On a loopback host, answer only requests addressed to a loopback name."""
    if _is_loopback(request.app[_HOST]):
        asked = (request.url.host or "").strip("[]").lower()
        if asked not in _LOOPBACK_NAMES and not _is_loopback(asked):
            return _error_response(
                403, "Forbidden", f"this dashboard answers only on loopback, not {asked!r}"
            )
    return await handler(request)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _error_response(status: int, title: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=render_error_page(title, message),
        content_type="text/html",
        charset="utf-8",
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
