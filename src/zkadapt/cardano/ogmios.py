"""PyCardano's Ogmios v6 chain context, with bounded requests and answers read by the schema.

:class:`OgmiosContext` is :class:`pycardano.backend.ogmios_v6.OgmiosV6ChainContext` (its UTxO
conversion, caches and ``utxo_by_tx_id`` are used as they are) with the transport and the
readers replaced, because the ``ogmios`` 1.4.3 client it rides on does not speak the
current Ogmios v6 schema (``tests/data/ogmios``):

* ``queryLedgerState/protocolParameters``: it raises ``TypeError`` on
  ``maxReferenceScriptsSizePerTransaction`` (every current answer, and every one of the
  server's own test vectors), and PyCardano ``eval``-s the ratio strings it returns;
* ``evaluateTransaction``: it sends ``"additionalUtxo": null``, which the schema forbids;
* errors come back as the text of a Python dict, and a silent server blocks forever.

Here each call is one JSON-RPC request built to the schema, sent over a WebSocket
(``websockets``) with a connect and answer timeout, and its answer read by
:mod:`zkadapt.cardano.ogmios_wire`. Failures are one-line :class:`LayerOneError`\\ s naming
``ogmios URL``: :class:`ChainUnreachable`, :class:`TransactionRejected`,
:class:`ChainResponseError`.

JSON-RPC methods used (Ogmios v6): ``queryNetwork/tip``, ``queryLedgerState/epoch``,
``queryLedgerState/protocolParameters``, ``queryNetwork/genesisConfiguration`` (shelley),
``queryNetwork/startTime``, ``queryLedgerState/eraSummaries``, ``queryLedgerState/utxo`` (by
address and by output reference), ``submitTransaction``, ``evaluateTransaction``; and
chain-sync (``findIntersection``, then ``nextBlock`` on the same connection) in
:meth:`OgmiosContext.follow`, bounded in blocks and time.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from pycardano.backend.ogmios_v6 import OgmiosV6ChainContext
from pycardano.network import Network

from zkadapt.cardano.chain_sync_wire import ChainBlock, next_block, point
from zkadapt.cardano.errors import (
    ChainRefused,
    ChainResponseError,
    ChainUnreachable,
    TransactionRejected,
    one_line,
)
from zkadapt.cardano.ogmios_wire import (
    WireError,
    era_bounds,
    error_reason,
    genesis_parameters,
    posix_seconds,
    protocol_parameters,
    utxo_entries,
)

#: Largest answer accepted (a UTxO query of a busy address can be large).
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: Seconds to wait for the connection and for each answer.
DEFAULT_TIMEOUT_S = 30.0


class OgmiosContext(OgmiosV6ChainContext):
    """A PyCardano chain context on an Ogmios v6 server.

    Args:
        url: ``ws://host:port[/path]`` or ``wss://...``.
        network: PyCardano's network (address prefix).
        timeout_s: seconds to connect and to wait for each answer.
    """

    def __init__(
        self, url: str, network: Network = Network.TESTNET, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not an Ogmios ws(s):// URL: {url!r}")
        super().__init__(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "wss" else 1337),
            path=parts.path.lstrip("/"),
            secure=parts.scheme == "wss",
            network=network,
            refetch_chain_tip_interval=1.0,
        )
        self.url = url
        self.timeout_s = timeout_s
        self.backend = f"ogmios {url}"
        self._ids = itertools.count()
        self._era_bounds: list[tuple[int, int, int]] | None = None
        self._system_start_ms: int | None = None

    def __repr__(self) -> str:
        return f"OgmiosContext({self.url!r}, {self.network})"

    # ---- transport --------------------------------------------------------------------------

    def rpc(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        refused: type[ChainRefused] = ChainRefused,
    ) -> Any:
        """One JSON-RPC request; returns its ``result``.

        Raises:
            ChainUnreachable: no connection, or no answer within ``timeout_s``.
            ChainRefused: the answer is an ``error`` (its code and one-line reason), as
                ``refused`` (:class:`TransactionRejected` for a transaction).
            ChainResponseError: the answer is not JSON-RPC for ``method``.
        """
        with self._connection(f"no answer to {method} within", method) as socket:
            return self._ask(socket, method, params, self.timeout_s, refused)

    def follow(
        self, since: dict[str, Any] | str, *, max_blocks: int, budget_s: float
    ) -> Iterator[ChainBlock]:
        """The blocks after ``since`` (a ``{slot, id}`` point, e.g. an earlier
        ``queryNetwork/tip``, or ``origin``), oldest first, up to the tip: Ogmios chain-sync on
        one connection (``findIntersection`` then ``nextBlock``). Stops at the tip, after
        ``max_blocks`` blocks, or after ``budget_s`` seconds, whichever comes first (a
        consumer that wants more asks again from the last block's point). A roll-back is
        followed: the blocks after its point come again.

        Raises:
            ChainRefused: ``since`` is not on the chain (``IntersectionNotFound``).
            ChainUnreachable, ChainResponseError: as :meth:`rpc`.
        """
        deadline = time.monotonic() + budget_s
        with self._connection("chain-sync: no answer within", "chain-sync") as socket:

            def ask(method: str, params: dict[str, Any] | None = None) -> Any:
                wait = min(self.timeout_s, max(0.1, deadline - time.monotonic()))
                return self._ask(socket, method, params, wait, ChainRefused)

            found = ask("findIntersection", {"points": [since]})
            tip = found.get("tip") if isinstance(found, dict) else None
            if tip == "origin" or (isinstance(since, dict) and _same(tip, since)):
                return  # nothing after ``since``
            seen = 0
            while seen < max_blocks and time.monotonic() < deadline:
                raw = ask("nextBlock")
                direction, item, tip_id = self._read("nextBlock", next_block, raw)
                if direction == "backward":
                    if isinstance(item, dict) and item.get("id") == tip_id:
                        return
                    continue
                assert isinstance(item, ChainBlock)
                seen += 1
                yield item
                if item.id == tip_id:
                    return

    @contextmanager
    def _connection(self, silent: str, failing: str) -> Iterator[Any]:
        """One WebSocket connection to Ogmios, bounded like every answer on it; silence
        becomes ``ChainUnreachable("<silent> <timeout> s")``, a failed connection
        ``ChainUnreachable("<failing>: <error>")``."""
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        try:
            with connect(
                self.url,
                open_timeout=self.timeout_s,
                close_timeout=1,
                max_size=MAX_ANSWER_BYTES,
                additional_headers=self.additional_headers or None,
            ) as socket:
                yield socket
        except TimeoutError:
            raise ChainUnreachable(self.backend, f"{silent} {self.timeout_s:g} s") from None
        except (OSError, WebSocketException) as exc:
            raise ChainUnreachable(
                self.backend, f"{failing}: {type(exc).__name__}: {one_line(exc)}"
            ) from None

    def _ask(
        self,
        socket: Any,
        method: str,
        params: dict[str, Any] | None,
        timeout: float,
        refused: type[ChainRefused],
    ) -> Any:
        """Send one JSON-RPC request on ``socket`` and read its ``result`` (:meth:`_result`)."""
        request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": next(self._ids)}
        if params is not None:
            request["params"] = params
        socket.send(json.dumps(request))
        return self._result(method, socket.recv(timeout=timeout), refused)

    def _result(self, method: str, text: Any, refused: type[ChainRefused]) -> Any:
        try:
            answer = json.loads(text)
        except (TypeError, ValueError):
            raise ChainResponseError(self.backend, f"{method}: the answer is not JSON") from None
        if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
            raise ChainResponseError(self.backend, f"{method}: the answer is not JSON-RPC 2.0")
        if "error" in answer:
            code, reason = error_reason(answer["error"])
            shown = f" ({code})" if code is not None else ""
            raise refused(self.backend, f"{method} refused{shown}: {reason}", code)
        if answer.get("method") not in (None, method) or "result" not in answer:
            raise ChainResponseError(self.backend, f"{method}: the answer has no result")
        return answer["result"]

    def _read(self, what: str, reader: Any, raw: Any) -> Any:
        try:
            return reader(raw)
        except WireError as exc:
            raise ChainResponseError(self.backend, f"{what}: {exc}") from None

    # ---- what PyCardano's context asks -------------------------------------------------------

    def _query_chain_tip(self) -> Any:
        from ogmios.datatypes import Point

        tip = self.rpc("queryNetwork/tip")
        if tip == "origin":
            return Point(0, "0" * 64)
        if not isinstance(tip, dict) or not isinstance(tip.get("slot"), int):
            raise ChainResponseError(self.backend, "queryNetwork/tip: not a point")
        return Point(tip["slot"], str(tip.get("id", "")))

    def _query_current_epoch(self) -> int:
        epoch = self.rpc("queryLedgerState/epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool):
            raise ChainResponseError(self.backend, "queryLedgerState/epoch: not an epoch")
        return epoch

    def _query_utxos_by_address(self, address: Any) -> list[Any]:
        text = getattr(address, "address", address)
        raw = self.rpc("queryLedgerState/utxo", {"addresses": [str(text)]})
        return self._read("queryLedgerState/utxo", utxo_entries, raw)

    def _query_utxos_by_tx_id(self, tx_id: str, index: int) -> list[Any]:
        reference = {"transaction": {"id": tx_id}, "index": index}
        raw = self.rpc("queryLedgerState/utxo", {"outputReferences": [reference]})
        return self._read("queryLedgerState/utxo", utxo_entries, raw)

    def _fetch_protocol_param(self) -> Any:
        raw = self.rpc("queryLedgerState/protocolParameters")
        return self._read("queryLedgerState/protocolParameters", protocol_parameters, raw)

    @property
    def genesis_param(self) -> Any:
        """The Shelley genesis (PyCardano's form); fetched once."""
        if self._genesis_param is None:
            raw = self.rpc("queryNetwork/genesisConfiguration", {"era": "shelley"})
            self._genesis_param = self._read("genesisConfiguration", genesis_parameters, raw)
        return self._genesis_param

    def submit_tx_cbor(self, cbor: bytes | str) -> str:
        """Submit a signed transaction; returns its id (Ogmios ``submitTransaction``)."""
        text = cbor.hex() if isinstance(cbor, bytes) else cbor
        result = self.rpc("submitTransaction", {"transaction": {"cbor": text}}, TransactionRejected)
        tx_id = result.get("transaction", {}).get("id") if isinstance(result, dict) else None
        if not isinstance(tx_id, str):
            raise ChainResponseError(self.backend, "submitTransaction: no transaction id")
        return tx_id

    def evaluate_tx_cbor(self, cbor: bytes | str) -> dict[str, Any]:
        """Execution units per redeemer (``spend:0`` ...), as PyCardano's builder wants."""
        from pycardano.plutus import ExecutionUnits

        text = cbor.hex() if isinstance(cbor, bytes) else cbor
        result = self.rpc(
            "evaluateTransaction", {"transaction": {"cbor": text}}, TransactionRejected
        )
        if not isinstance(result, list):
            raise ChainResponseError(self.backend, "evaluateTransaction: not a list")
        units = {}
        for item in result:
            try:
                validator, budget = item["validator"], item["budget"]
                purpose = {"withdraw": "withdrawal"}.get(validator["purpose"], validator["purpose"])
                units[f"{purpose}:{int(validator['index'])}"] = ExecutionUnits(
                    mem=int(budget["memory"]), steps=int(budget["cpu"])
                )
            except (KeyError, TypeError, ValueError):
                raise ChainResponseError(
                    self.backend, "evaluateTransaction: malformed budget"
                ) from None
        return units

    # ---- time ---------------------------------------------------------------------------------

    def _time_base(self) -> tuple[int, list[tuple[int, int, int]]]:
        if self._system_start_ms is None:
            start = self.rpc("queryNetwork/startTime")
            self._system_start_ms = int(self._read("startTime", posix_seconds, start) * 1000)
        if self._era_bounds is None:
            raw = self.rpc("queryLedgerState/eraSummaries")
            self._era_bounds = self._read("eraSummaries", era_bounds, raw)
        return self._system_start_ms, self._era_bounds

    def slot_to_posix_ms(self, slot: int) -> int:
        """When ``slot`` starts (POSIX ms), from the era summaries (Byron's 20 s slots too)."""
        start, bounds = self._time_base()
        era = [b for b in bounds if b[0] <= slot][-1:] or bounds[:1]
        era_start, era_ms, slot_ms = era[0]
        return start + era_ms + (slot - era_start) * slot_ms

    def posix_ms_to_slot(self, ms: int) -> int:
        """The slot that holds POSIX time ``ms``."""
        start, bounds = self._time_base()
        relative = ms - start
        era = [b for b in bounds if b[1] <= relative][-1:] or bounds[:1]
        era_start, era_ms, slot_ms = era[0]
        return era_start + max(0, relative - era_ms) // slot_ms


def _same(tip: Any, since: dict[str, Any]) -> bool:
    """Whether a ``TipOrOrigin`` is the point ``since`` (nothing to follow after it)."""
    try:
        return point(tip) == point(since)
    except WireError:
        return False
