"""An Ogmios v6 double: JSON-RPC 2.0 over a WebSocket on 127.0.0.1, backed by the ledger double.

Like Ogmios, every WebSocket text frame is one request and gets one answer carrying the
request's ``id``. Served methods (what PyCardano's chain contexts and this project ask):
``queryNetwork/tip``, ``queryLedgerState/tip``, ``queryLedgerState/epoch``,
``queryLedgerState/protocolParameters``, ``queryLedgerState/eraSummaries``,
``queryNetwork/startTime``, ``queryNetwork/genesisConfiguration`` (``shelley``),
``queryNetwork/blockHeight``, ``queryLedgerState/utxo`` (by addresses, by output references,
or whole), ``submitTransaction`` and ``evaluateTransaction`` (with ``additionalUtxo``), and
chain-sync's ``findIntersection`` and ``nextBlock`` (one cursor per connection;
:mod:`tests.ogmios_double.chain_sync`).
Anything else is a ``-32601`` RpcError.

Every request is validated against its schema in ``ogmios.json`` before it is served, and
every answer (results, errors, RpcErrors) before it is sent; violations are kept in
:attr:`OgmiosDouble.violations` for tests to assert on. A request that violates its schema
is answered with RpcError ``-32602`` naming the first violation, as Ogmios answers
``Invalid params``. :attr:`OgmiosDouble.requests` records the methods asked, in order.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import WSMsgType, web
from pycardano import TransactionInput

from tests.layer1_double.ledger import Ledger
from tests.layer1_double.ogmios_json import utxo_json
from tests.layer1_double.rules import Rejected
from tests.ogmios_double.chain_sync import (
    ChainCursor,
    ChainSyncError,
    find_intersection,
    next_block,
)
from tests.ogmios_double.schema import ogmios_schema

#: Largest request frame accepted (a transaction is at most 16 KiB; room for evaluation).
MAX_FRAME = 1 << 20


class RpcFault(Exception):
    """A JSON-RPC level error (``RpcError``): code in -32700..-32000."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OgmiosDouble:
    """An Ogmios v6 server double in a background thread.

    Args:
        ledger: the layer-1 ledger it answers for (a new preprod ledger by default).
    """

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or Ledger()
        self.schema = ogmios_schema()
        self.violations: list[str] = []
        self.requests: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> OgmiosDouble:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> OgmiosDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        cursor = ChainCursor()  # chain-sync state lives as long as the connection
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                answer = await asyncio.get_running_loop().run_in_executor(
                    None, self.answer, frame.data, cursor
                )
                await ws.send_str(json.dumps(answer))
        return ws

    # ---- JSON-RPC --------------------------------------------------------------------------------

    def answer(self, text: str, cursor: ChainCursor | None = None) -> dict[str, Any]:
        """The answer to one request frame (also callable directly, without a socket;
        ``cursor``: the connection's chain-sync cursor)."""
        try:
            request = json.loads(text)
        except ValueError:
            return self._rpc_error(None, RpcFault(-32700, "Parse error: the request is not JSON."))
        if not isinstance(request, dict):
            return self._rpc_error(None, RpcFault(-32600, "Invalid request: not an object."))
        method, rid = request.get("method"), request.get("id")
        self.requests.append(str(method))
        problems = self.schema.request_errors(request)
        if problems:
            self.violations.append(f"request {method}: {problems[:3]}")
            code = -32601 if method not in self.schema.names else -32602
            return self._rpc_error(rid, RpcFault(code, f"Invalid request: {problems[0]}"))
        try:
            params = request.get("params") or {}
            if method in ("findIntersection", "nextBlock"):
                body = {"result": self._chain_sync(method, params, cursor or ChainCursor())}
            else:
                body = {"result": self._dispatch(method, params)}
        except ChainSyncError as exc:
            if exc.args[1] is None:
                return self._rpc_error(rid, RpcFault(-32000, str(exc.args[0])))
            tip = exc.args[1]
            body = {"error": {"code": 1000, "message": exc.args[0], "data": {"tip": tip}}}
        except Rejected as exc:
            body = {"error": exc.error}
        except RpcFault as exc:
            return self._rpc_error(rid, exc)
        response = {"jsonrpc": "2.0", "method": method, **body, "id": rid}
        problems = self.schema.response_errors(method, response)
        if problems:
            self.violations.append(f"response {method}: {problems[:3]}")
        return response

    def _rpc_error(self, rid: Any, fault: RpcFault) -> dict[str, Any]:
        response = {
            "jsonrpc": "2.0",
            "error": {"code": fault.code, "message": fault.message},
            "id": rid,
        }
        problems = self.schema.errors("/properties/RpcError", response)
        if problems:
            self.violations.append(f"RpcError: {problems[:3]}")
        return response

    def _dispatch(self, method: str, params: dict[str, Any]) -> Any:
        ledger = self.ledger
        simple = {
            "queryNetwork/tip": ledger.tip,
            "queryLedgerState/tip": ledger.tip,
            "queryLedgerState/epoch": lambda: ledger.slot // ledger.genesis["epochLength"],
            "queryLedgerState/protocolParameters": lambda: ledger.params,
            "queryLedgerState/eraSummaries": ledger.era_summaries,
            "queryNetwork/startTime": lambda: ledger.genesis["startTime"],
            "queryNetwork/blockHeight": lambda: len(ledger.applied),
        }
        if method in simple:
            return simple[method]()
        if method == "queryNetwork/genesisConfiguration":
            if params.get("era") != "shelley":
                raise RpcFault(
                    -32602, f"the double serves the shelley genesis only, not {params.get('era')}"
                )
            return ledger.genesis
        if method == "queryLedgerState/utxo":
            return self._utxo(params)
        if method == "submitTransaction":
            return {"transaction": {"id": ledger.submit(_hex(params["transaction"]["cbor"]))}}
        if method == "evaluateTransaction":
            return self._evaluate(params)
        raise RpcFault(-32601, f"Method not found: the double does not serve {method}")

    def _chain_sync(self, method: str, params: dict[str, Any], cursor: ChainCursor) -> Any:
        if method == "findIntersection":
            return find_intersection(self.ledger, cursor, list(params.get("points") or []))
        return next_block(self.ledger, cursor)

    def _utxo(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        ledger = self.ledger
        if "addresses" in params:
            wanted = set(params["addresses"])
            found = {r: o for r, o in ledger.utxo.items() if o.address.encode() in wanted}
        elif "outputReferences" in params:
            refs = [
                TransactionInput.from_primitive([r["transaction"]["id"], r["index"]])
                for r in params["outputReferences"]
            ]
            found = ledger.lookup(refs)
        else:
            found = dict(ledger.utxo)
        return [
            utxo_json(r, o)
            for r, o in sorted(
                found.items(), key=lambda kv: (str(kv[0].transaction_id), kv[0].index)
            )
        ]

    def _evaluate(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        from ogmios.datatypes import Utxo
        from pycardano.backend.ogmios_v6 import OgmiosV6ChainContext

        additional = {}
        for item in params.get("additionalUtxo") or []:
            utxo = Utxo(
                tx_id=item["transaction"]["id"],
                index=item["index"],
                address=item["address"],
                value=item["value"],
                datum_hash=item.get("datumHash"),
                datum=item.get("datum"),
                script=item.get("script"),
            )
            converted = OgmiosV6ChainContext._utxo_from_ogmios_result(None, utxo)  # type: ignore[arg-type]
            additional[converted.input] = converted.output
        runs = self.ledger.evaluate(_hex(params["transaction"]["cbor"]), additional)
        return [
            {
                "validator": {"purpose": e.run.purpose, "index": e.run.index},
                "budget": {"memory": e.result.memory, "cpu": e.result.cpu},
            }
            for e in runs
        ]


def _hex(text: str) -> bytes:
    """Schema-valid hex can still be odd-length: that is a deserialisation failure."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise Rejected(
            -32602,
            "Invalid transaction; It looks like the given transaction wasn't well-formed.",
            {"conway": "odd-length base16"},
        ) from None
