"""The double's nodes: one WebSocket + HTTP server per party on 127.0.0.1, one shared head.

Each node keeps its own history of timed server outputs (``seq`` counts per node, as on a
real node) and serves, like ``Hydra.API.WSServer``: the history when ``history=yes``, then
``Greetings``, then live outputs; ``snapshot-utxo=no`` strips ``snapshot.utxo``. HTTP on the
same port: ``GET /snapshot/utxo`` (404 before a head opened), ``GET /protocol-parameters``,
``POST /commit`` and ``POST /cardano-transaction``. Every client input and HTTP request body
is validated against api.yaml, and so is every output before it is sent; violations are kept
in :attr:`HydraDouble.violations` for the tests to assert on.

Faults for tests: :meth:`HydraDouble.drop` closes a node's WebSocket connections;
:meth:`HydraDouble.pause_snapshots` holds confirmations back; :meth:`HydraDouble.arm` makes
the node answer the next matching request with one of its error outputs
(:class:`~tests.hydra_double.head.Fault`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.hydra_double.head import Fault, Head, Out, utc
from tests.hydra_double.ledger import LedgerError
from tests.hydra_double.schema import api_schema, hydra_data

NODE_VERSION = "2.3.0-zkadapt-double"


@dataclass
class Client:
    """A WebSocket client: its query options and the outputs queued for it."""

    with_utxo: bool
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


@dataclass
class Node:
    """One party's node: history, live WebSocket clients, HTTP+WS site."""

    party: str
    history: list[dict[str, Any]] = field(default_factory=list)
    clients: dict[web.WebSocketResponse, Client] = field(default_factory=dict)
    port: int = 0
    runner: web.AppRunner | None = None


class HydraDouble:
    """A faithful hydra-node double for ``parties``, each node on its own loopback port.

    Args:
        parties: party names (one node each).
        initial_utxo: UTxO the head opens with (like hydra's offline mode ``initial-utxo``).
        l1_utxo: layer-1 UTxO available for deposits (``POST /commit``).
        snapshot_delay_s: how long the leader collects transactions before a snapshot.
        contestation_s: contestation period after ``Close``.
        deposit_period_s: the node's deposit period (a deposit's deadline is two away).
        layer1: the layer 1 deposits spend from (default: a plain ledger holding
            ``l1_utxo``; tests.layer1_double.hydra.HydraLayer1 for the layer-1 double).
    """

    def __init__(
        self,
        parties: list[str],
        *,
        initial_utxo: dict[str, Any] | None = None,
        l1_utxo: dict[str, Any] | None = None,
        snapshot_delay_s: float = 0.02,
        contestation_s: float = 0.1,
        deposit_period_s: float = 60.0,
        data: Path | None = None,
        layer1: Any = None,
    ) -> None:
        root = data or hydra_data()
        self.params = json.loads((root / "protocol-parameters.json").read_text())
        self.schema = api_schema(root)
        self.head = Head(
            parties,
            self.params,
            initial_utxo=initial_utxo,
            l1_utxo=l1_utxo,
            contestation_s=contestation_s,
            deposit_period_s=deposit_period_s,
            layer1=layer1,
        )
        self.nodes = {p: Node(p) for p in parties}
        observe = getattr(layer1, "observe", None)
        if observe is not None:  # a layer 1 that others write to: follow it like a node
            observe(self._observed_on_layer1)
        self.snapshot_delay_s = snapshot_delay_s
        self.violations: list[str] = []
        self.inputs: list[tuple[str, dict[str, Any]]] = []
        self._paused = False
        self._scheduled = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # ---- lifecycle (called from the test thread) ----------------------------------------

    def start(self) -> HydraDouble:
        self._thread.start()
        for node in self.nodes.values():
            self._call(self._serve(node))
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        for node in self.nodes.values():
            self._call(self._shutdown(node))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> HydraDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def api(self, party: str) -> str:
        """``host:port`` of ``party``'s node."""
        return f"127.0.0.1:{self.nodes[party].port}"

    def drop(self, party: str | None = None) -> None:
        """Close the WebSocket connections of one node (or all): clients must reconnect."""
        targets = [self.nodes[party]] if party else list(self.nodes.values())
        for node in targets:
            self._call(self._close_clients(node))

    def pause_snapshots(self, paused: bool) -> None:
        """Hold back (True) or resume (False) snapshot confirmation."""

        def flip() -> None:
            self._paused = paused
            if not paused:
                self._schedule_snapshot()

        self._loop.call_soon_threadsafe(flip)

    def arm(self, fault: Fault) -> None:
        """Answer the next request ``fault`` concerns with that error output."""

        async def arm() -> None:
            self.head.arm(fault)

        self._call(arm())

    def submit(self, party: str, message: dict[str, Any]) -> None:
        """Inject a client input at ``party``'s node, as a second client would."""
        self._call(self._input(party, message))

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the double's loop (for reading the head consistently)."""

        async def call() -> Any:
            return fn()

        return self._call(call())

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ---- servers ----------------------------------------------------------------------

    async def _serve(self, node: Node) -> None:
        app = web.Application()
        app.router.add_get("/", functools.partial(self._ws, node))
        app.router.add_get("/snapshot/utxo", self._snapshot_utxo)
        app.router.add_get("/protocol-parameters", self._protocol_parameters)
        app.router.add_post("/commit", self._commit)
        app.router.add_post("/cardano-transaction", self._l1_submit)
        node.runner = web.AppRunner(app)
        await node.runner.setup()
        site = web.TCPSite(node.runner, "127.0.0.1", 0)
        await site.start()
        node.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _shutdown(self, node: Node) -> None:
        await self._close_clients(node)
        if node.runner is not None:
            await node.runner.cleanup()

    async def _close_clients(self, node: Node) -> None:
        for ws in list(node.clients):
            await ws.close()
        node.clients.clear()

    async def _ws(self, node: Node, request: web.Request) -> web.StreamResponse:
        """Like ``wsApp``: subscribe first, replay history, greet, then stream and receive."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = Client(request.query.get("snapshot-utxo") != "no")
        node.clients[ws] = client  # outputs from now on queue up (real node: dupTChan)
        replay = list(node.history) if request.query.get("history") == "yes" else []
        pump = asyncio.ensure_future(self._pump(ws, client, replay, node))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_frame(node, ws, frame.data)
        finally:
            node.clients.pop(ws, None)
            pump.cancel()
        return ws

    async def _pump(
        self, ws: web.WebSocketResponse, client: Client, replay: list[dict[str, Any]], node: Node
    ) -> None:
        try:
            for message in replay:
                await ws.send_str(self._shape(message, client.with_utxo))
            greetings = self._greetings(node, client.with_utxo)
            self._check(greetings)
            await ws.send_str(self._shape(greetings, client.with_utxo))
            while not ws.closed:
                message = await client.queue.get()
                await ws.send_str(self._shape(message, client.with_utxo))
        except (ConnectionError, RuntimeError):
            pass  # the client went away; its handler cleans up

    async def _on_frame(self, node: Node, ws: web.WebSocketResponse, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError as exc:
            message = None
            errors = [f"not JSON: {exc}"]
        else:
            errors = self.schema.input_errors(message)
        if not errors and Fault.INVALID_INPUT in self.head.faults:
            self.head.faults.remove(Fault.INVALID_INPUT)
            errors = ['Error in $: parsing ClientInput failed (fault: "InvalidInput")']
            reply = {"tag": "InvalidInput", "reason": errors[0], "input": text}
            self._check(reply)
            node.clients[ws].queue.put_nowait(reply)
            return
        if errors:
            self.violations.append(f"client input to {node.party}: {errors[:3]}")
            reply = {"tag": "InvalidInput", "reason": "; ".join(errors[:3]), "input": text}
            self._check(reply)
            node.clients[ws].queue.put_nowait(reply)
            return
        await self._input(node.party, message)

    async def _input(self, party: str, message: dict[str, Any]) -> None:
        self.inputs.append((party, message))
        self._emit(self.head.on_input(party, message))
        tag = message.get("tag")
        if tag == "NewTx":
            self._schedule_snapshot()
        elif tag == "Close" and self.head.status == "Closed":
            self._loop.call_later(
                self.head.contestation_s, self._later, self.head.contestation_over
            )

    def _schedule_snapshot(self) -> None:
        if not self._scheduled and not self._paused and self.head.pending:
            self._scheduled = True
            self._loop.call_later(self.snapshot_delay_s, self._later, self._take_snapshot)

    def _take_snapshot(self) -> list[Out]:
        self._scheduled = False
        return [] if self._paused else self.head.snapshot()

    def _later(self, step: Callable[[], list[Out]]) -> None:
        self._emit(step())

    # ---- output -------------------------------------------------------------------------

    def _emit(self, outs: list[Out]) -> None:
        for out in outs:
            targets = [self.nodes[out.to]] if out.to else list(self.nodes.values())
            for position, node in enumerate(targets):
                message = dict(out.message)
                if out.timed:
                    message["seq"] = len(node.history)
                    message["timestamp"] = utc()
                    node.history.append(message)
                if position == 0:
                    self._check(message)
                for ws, client in list(node.clients.items()):
                    if not ws.closed:
                        client.queue.put_nowait(message)

    def _shape(self, message: dict[str, Any], with_utxo: bool) -> str:
        """Validate the full output, then apply ``snapshot-utxo=no`` (as ``WSServer`` does).

        The schema requires ``snapshot.utxo`` although the node strips it on request, so
        validation happens before stripping (once, in :meth:`_emit` or :meth:`_pump`).
        """
        if not with_utxo and message.get("tag") == "SnapshotConfirmed":
            snapshot = {k: v for k, v in message["snapshot"].items() if k != "utxo"}
            message = {**message, "snapshot": snapshot}
        if not with_utxo and message.get("tag") == "Greetings":
            message = {k: v for k, v in message.items() if k != "snapshotUtxo"}
        return json.dumps(message)

    def _check(self, message: dict[str, Any]) -> None:
        errors = self.schema.output_errors(message)
        if errors:
            short = [e[:300] for e in errors[:3]]
            self.violations.append(f"server output {message.get('tag')}: {short}")

    def _greetings(self, node: Node, with_utxo: bool) -> dict[str, Any]:
        keys = self.head.keys
        others = [{"vkey": keys[p].vkey} for p in self.nodes if p != node.party]
        message: dict[str, Any] = {
            "tag": "Greetings",
            "me": {"vkey": keys[node.party].vkey},
            "headStatus": self.head.status,
            "hydraNodeVersion": NODE_VERSION,
            "env": {
                "party": {"vkey": keys[node.party].vkey},
                "otherParties": others,
                "participants": [keys[p].on_chain_id for p in self.nodes],
                "contestationPeriod": max(1, round(self.head.contestation_s)),
                "depositPeriod": max(1, round(self.head.deposit_period_s)),
                "depositActivation": 0,
                "unsyncedPeriod": 21600,
                "configuredPeers": ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values()),
            },
            "networkInfo": {
                "networkConnected": True,
                "peersInfo": {
                    f"127.0.0.1:{n.port}": True for n in self.nodes.values() if n is not node
                },
            },
            "chainSyncedStatus": "InSync",
            "currentSlot": 1000,
            "timestamp": utc(),
        }
        if self.head.head_id is not None:
            message["hydraHeadId"] = self.head.head_id
            if with_utxo:
                message["snapshotUtxo"] = self.head.confirmed.utxo
        return message

    # ---- HTTP ---------------------------------------------------------------------------

    def _json(
        self, body: Any, request: web.Request, pointer: str | None, status: int = 200
    ) -> web.Response:
        if pointer is not None and status == 200:
            errors = self.schema.errors(pointer, body)
            if errors:
                self.violations.append(f"HTTP {request.path}: {errors[:3]}")
        return web.json_response(body, status=status)

    async def _protocol_parameters(self, request: web.Request) -> web.Response:
        return self._json(self.params, request, "/components/schemas/ProtocolParameters")

    async def _snapshot_utxo(self, request: web.Request) -> web.Response:
        if self.head.head_id is None and self.head.status == "Idle":
            return web.json_response({"tag": "NoHeadOpen"}, status=404)
        return self._json(self.head.confirmed.utxo, request, "/components/schemas/UTxO")

    def _check_error(self, error: dict[str, Any]) -> None:
        errors = self.schema.errors("/components/schemas/PostTxError", error)
        if errors:
            self.violations.append(f"HTTP error body {error.get('tag')}: {errors[:3]}")

    async def _body(self, request: web.Request, pointer: str) -> Any:
        body = await request.json()
        errors = self.schema.errors(pointer, body)
        if errors:
            self.violations.append(f"HTTP body of {request.path}: {errors[:3]}")
        return body

    async def _commit(self, request: web.Request) -> web.Response:
        body = await self._body(request, "/components/schemas/DraftCommitTxRequest")
        utxo = body.get("utxoToCommit") if isinstance(body, dict) else None
        if not isinstance(utxo, dict) or self.schema.errors("/components/schemas/UTxO", utxo):
            return web.json_response({"tag": "InvalidRequest"}, status=400)
        amount = body.get("amount")
        if self.head.status != "Open":
            return web.json_response({"tag": "FailedToDraftTxNotInitializing"}, status=400)
        try:
            draft = self.head.draft_deposit(utxo, amount if isinstance(amount, int) else None)
        except LedgerError as exc:
            error = {"tag": "FailedToConstructDepositTx", "failureReason": exc.reason}
            self._check_error(error)
            return web.json_response(error, status=400)
        return self._json(draft, request, "/components/schemas/Transaction")

    async def _l1_submit(self, request: web.Request) -> web.Response:
        tx = await self._body(request, "/components/schemas/Transaction")
        try:
            tx_id, deposit = self.head.submit_l1(tx)
        except LedgerError as exc:
            error = {"tag": "FailedToPostTx", "failureReason": exc.reason, "failingTx": tx}
            self._check_error(error)
            return web.json_response(error, status=400)
        if deposit is not None:
            task = asyncio.ensure_future(self._deposit(tx_id, deposit))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response({"tag": "TransactionSubmitted"})

    def _observed_on_layer1(self, tx_id: str) -> None:
        """A transaction applied on layer 1 (any thread): if it is a drafted deposit that
        did not come through ``POST /cardano-transaction``, take it in."""

        def take() -> None:
            deposit = self.head.drafts.pop(tx_id, None)
            if deposit is not None:
                task = asyncio.ensure_future(self._deposit(tx_id, deposit))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        self._loop.call_soon_threadsafe(take)

    async def _deposit(self, tx_id: str, utxo: dict[str, Any]) -> None:
        for step in self.head.deposit_steps(tx_id, utxo):
            await asyncio.sleep(self.snapshot_delay_s)
            self._emit(step())
