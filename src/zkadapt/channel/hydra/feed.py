"""The hydra-node connection: a WebSocket feed that reconnects, and the HTTP endpoints.

The WebSocket (api.yaml channel ``/``) is opened with ``history=yes``: the node first
replays every stored server output, then sends ``Greetings`` (``Hydra.API.WSServer``), then
streams new outputs. ``snapshot-utxo=no`` leaves the UTxO out of snapshots; the client asks
``GET /snapshot/utxo`` when it needs it. After a dropped connection the feed reconnects with
capped exponential backoff and the history is replayed again; the consumer
(:class:`~zkadapt.channel.hydra.view.HeadView`) deduplicates it. HTTP uses the same host
and port (api.yaml servers ``localhost-ws`` / ``localhost-http``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from zkadapt.channel.hydra.wire import (
    Greetings,
    HydraNodeError,
    HydraProtocolError,
    ServerOutput,
    error_reason,
    one_line,
    parse_output,
)
from zkadapt.errors import ChannelError

log = logging.getLogger(__name__)

#: Query of the WebSocket URL: full history, no UTxO in snapshots, JSON frames.
WS_QUERY = "history=yes&snapshot-utxo=no"
MAX_BACKOFF_S = 2.0


def endpoints(api: str) -> tuple[str, str]:
    """``(ws_url, http_base)`` for a node API given as ``host:port`` or a ws/http(s) URL.

    Raises:
        ValueError: ``api`` has no host or port.
    """
    parts = urlsplit(api if "://" in api else f"ws://{api}")
    if not parts.hostname or not parts.port:
        raise ValueError(f"hydra-node API must be host:port or a URL with a port, got {api!r}")
    secure = parts.scheme in ("wss", "https")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    where = f"{host}:{parts.port}"
    ws = f"{'wss' if secure else 'ws'}://{where}/?{WS_QUERY}"
    return ws, f"{'https' if secure else 'http'}://{where}"


class HydraHttp:
    """JSON over the node's HTTP endpoints (``GET /snapshot/utxo``, ``POST /commit``, ...)."""

    def __init__(self, base: str, timeout_s: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.timeout_s = timeout_s

    def get(self, path: str) -> Any:
        """``GET path`` and decode the JSON answer.

        Raises:
            ChannelError: the node is unreachable or answers with an error status.
        """
        return self._call(urllib.request.Request(self.base + path, method="GET"))

    def post(self, path: str, body: object) -> Any:
        """``POST path`` with a JSON body and decode the JSON answer.

        Raises:
            ChannelError: as :meth:`get`.
        """
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        return self._call(request)

    def _call(self, request: urllib.request.Request) -> Any:
        what = f"{request.get_method()} {request.full_url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _refusal(self.base, request, exc.code, exc.read()[:4000]) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ChannelError(f"{what}: hydra-node unreachable ({exc})") from None
        try:
            return json.loads(raw) if raw else None
        except json.JSONDecodeError:
            raise ChannelError(f"{what}: answer is not JSON") from None


def _refusal(base: str, request: urllib.request.Request, status: int, body: bytes) -> ChannelError:
    """An HTTP error answer as one line: the node's error tag and reason when it sent one.

    The node answers a refused request with a JSON body tagged like api.yaml ``PostTxError``
    (``FailedToPostTx``, ``DepositTooLow`` ...); anything else is quoted as text.
    """
    command = f"{request.get_method()} {urlsplit(request.full_url).path}"
    try:
        detail = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        detail = None
    if isinstance(detail, dict) and isinstance(detail.get("tag"), str):
        reason = error_reason(detail) or "no reason given"
        return HydraNodeError(base, command, detail["tag"], f"{reason} (HTTP {status})")
    text = one_line(body.decode("utf-8", "replace")) or "no reason given"
    return ChannelError(f"{base}: {command}: HTTP {status}: {text}")


class HeadFeed:
    """A background thread holding the WebSocket open, reconnecting after every drop.

    Args:
        ws_url: from :func:`endpoints`.
        on_output: called (on the feed thread) with every parsed server output, in order.
        reconnect_delay_s: first delay before reconnecting, doubled up to 2 s.
    """

    def __init__(
        self,
        ws_url: str,
        on_output: Callable[[ServerOutput], None],
        *,
        reconnect_delay_s: float = 0.1,
        open_timeout_s: float = 10.0,
    ) -> None:
        self.ws_url = ws_url
        self._on_output = on_output
        self._delay = reconnect_delay_s
        self._open_timeout = open_timeout_s
        self._ws: ClientConnection | None = None
        self._ready = threading.Condition()
        self._greeted = False  # the current connection has finished its history replay
        self._closed = False
        self.connections = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="hydra-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, frame: str, timeout: float) -> None:
        """Send one client input once a connection has replayed its history.

        A send that fails because the connection just dropped is retried on the next
        connection (the caller deduplicates by transaction id).

        Raises:
            ChannelError: no live connection within ``timeout`` s, or the feed is closed.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._ready:
                ready = self._ready.wait_for(
                    lambda: self._closed or self._greeted, max(deadline - time.monotonic(), 0)
                )
                if self._closed:
                    raise ChannelError(f"{self.ws_url}: channel closed")
                if not ready or self._ws is None:
                    raise ChannelError(f"{self.ws_url}: not connected ({self.last_error})")
                ws, connection = self._ws, self.connections
            try:
                ws.send(frame)
                return
            except (WebSocketException, OSError) as exc:
                self.last_error = f"send failed: {exc}"
            with self._ready:  # wait for the next connection before trying again
                self._ready.wait_for(
                    lambda c=connection: self._closed or self.connections != c,
                    max(deadline - time.monotonic(), 0),
                )

    def drop(self) -> None:
        """Close the current connection (the feed reconnects); for fault tests."""
        ws = self._ws
        if ws is not None:
            ws.close()

    def close(self) -> None:
        """Stop reconnecting and close the connection. Idempotent."""
        with self._ready:
            self._closed = True
            ws, self._ws = self._ws, None
            self._ready.notify_all()
        if ws is not None:
            ws.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        delay = self._delay
        while not self._closed:
            try:
                with connect(self.ws_url, open_timeout=self._open_timeout, max_size=None) as ws:
                    delay = self._delay
                    self._serve(ws)
            except (WebSocketException, OSError, TimeoutError) as exc:
                self.last_error = f"connect failed: {exc}"
            with self._ready:
                if self._closed:
                    return
                self._ready.wait(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)

    def _serve(self, ws: ClientConnection) -> None:
        with self._ready:
            if self._closed:
                ws.close()
                return
            self._ws, self._greeted = ws, False
            self.connections += 1
            self._ready.notify_all()
        try:
            for frame in ws:
                try:
                    output = parse_output(frame)
                except HydraProtocolError as exc:
                    log.warning("%s: ignoring output: %s", self.ws_url, exc)
                    continue
                self._on_output(output)
                if isinstance(output, Greetings):
                    with self._ready:
                        self._greeted = True
                        self._ready.notify_all()
        except (WebSocketException, OSError) as exc:
            self.last_error = f"connection lost: {exc}"
        finally:
            with self._ready:
                if self._ws is ws:
                    self._ws, self._greeted = None, False
            ws.close()
        if self.last_error is None:
            self.last_error = "connection closed by the node"
