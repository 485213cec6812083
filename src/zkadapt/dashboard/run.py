"""Start the dashboard server for one session and serve until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable

from aiohttp import web

from zkadapt.dashboard.server import Dashboard, create_app
from zkadapt.dashboard.source import LedgerWatcher, SessionTarget
from zkadapt.errors import UsageError

#: Seconds the server waits for open streams when it stops.
SHUTDOWN_TIMEOUT_S = 2.0


def url_for(host: str, port: int) -> str:
    """The page's address (IPv6 hosts in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def serve_dashboard(
    target: SessionTarget,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_actions: bool = False,
    announce: Callable[[str], None] = print,
    poll_interval: float | None = None,
) -> None:
    """Serve the live dashboard of ``target`` on ``host:port`` until Ctrl-C.

    ``port`` 0 picks a free port; the address actually bound is announced. A ledger that
    cannot be read or does not verify is announced as a warning and shown on the page.

    Raises:
        UsageError: the address cannot be bound (in use, not this machine's, no permission).
    """
    _quiet_server_logs()
    watcher = LedgerWatcher(target, allow_actions=allow_actions)
    try:
        watcher.poll()  # once before serving: a bad ledger is announced on the terminal too
        if watcher.error:
            announce(f"warning: {watcher.error}")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(watcher, host, port, announce, poll_interval))
    finally:
        watcher.close()


async def _serve(
    watcher: LedgerWatcher,
    host: str,
    port: int,
    announce: Callable[[str], None],
    poll_interval: float | None,
) -> None:
    dashboard = (
        Dashboard(watcher)
        if poll_interval is None
        else Dashboard(watcher, poll_interval=poll_interval)
    )
    runner = web.AppRunner(
        create_app(dashboard, host=host), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host=host, port=port)
        try:
            await site.start()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError(f"--host/--port: cannot listen on {host}:{port}: {reason}") from None
        bound = runner.addresses[0]
        config = watcher.target.config
        mode = "actions allowed" if dashboard.snapshot.actions.allowed else "read-only"
        announce(
            f"dashboard of session {config.session_id[:12]} ({mode}) on "
            f"{url_for(host, bound[1])}  (Ctrl-C stops)"
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


class _OneLine(logging.Handler):
    """Server-side problems as one line on stderr (no traceback)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"dashboard: {record.getMessage()}", file=sys.stderr, flush=True)


def _quiet_server_logs() -> None:
    for name in ("aiohttp", "zkadapt.dashboard"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _OneLine) for h in logger.handlers):
            logger.addHandler(_OneLine(level=logging.ERROR))
        logger.propagate = False
