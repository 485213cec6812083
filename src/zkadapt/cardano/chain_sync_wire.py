"""Ogmios v6 chain-sync answers (``findIntersection``, ``nextBlock``) as plain values.

Pure readers of hostile JSON, like :mod:`zkadapt.cardano.ogmios_wire`: each takes exactly
the fields of the schema (``cardano.json`` ``Block``, ``Transaction``, ``TransactionOutput``,
``Signatory``) that a reader of a hydra head's close needs, bounds every list, and raises
:class:`~zkadapt.cardano.ogmios_wire.WireError` on anything else. Byron blocks (``ebb``,
``bft``) carry no Plutus outputs or vkey signatories a head could use: they read as blocks
without transactions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zkadapt.cardano.ogmios_wire import WireError

_HEX = re.compile(r"^(?:[0-9a-f]{2})*$")
_ID = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
#: Most transactions read from one block (a Conway block holds a few hundred at most).
MAX_TXS = 5000
#: Most inputs, outputs or signatories read from one transaction.
MAX_ITEMS = 2000
#: Longest inline datum kept (hex characters); a longer one is read as no datum.
MAX_DATUM_HEX = 32 * 1024
#: Longest address text.
MAX_ADDRESS = 256


@dataclass(frozen=True)
class ChainOutput:
    """A transaction output, as much of it as a head's reader needs.

    Attributes:
        address: bech32 (or base58 for Byron) text.
        datum: the inline datum's CBOR (None: none, or only its hash).
        policies: the policy ids (hex) of the native assets it holds.
    """

    address: str
    datum: bytes | None
    policies: frozenset[str]


@dataclass(frozen=True)
class ChainTx:
    """A transaction of a block: id, spent out-refs (``txid#index``), outputs, and the
    verification keys of its vkey witnesses (``signatories``)."""

    id: str
    inputs: tuple[str, ...]
    outputs: tuple[ChainOutput, ...]
    signatories: tuple[bytes, ...]


@dataclass(frozen=True)
class ChainBlock:
    """A block: its point (slot, id), height and the transactions that spent their inputs."""

    id: str
    slot: int
    height: int
    transactions: tuple[ChainTx, ...]


def _str(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str], where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not pattern.match(value):
        raise WireError(f"{where}.{key}: not what the schema says")
    return value


def _uint(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(f"{where}.{key}: not a non-negative integer")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str, limit: int) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise WireError(f"{where}.{key}: not a list")
    if len(value) > limit:
        raise WireError(f"{where}.{key}: more than {limit} items")
    return value


def point(raw: Any, where: str = "point") -> dict[str, Any] | str:
    """``PointOrOrigin``: ``origin`` or ``{slot, id}``."""
    if raw == "origin":
        return "origin"
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}: not a point")
    return {"slot": _uint(raw, "slot", where), "id": _str(raw, "id", _ID, where)}


def tip_id(raw: Any, where: str = "tip") -> str | None:
    """The id of a ``TipOrOrigin`` (None for ``origin``)."""
    if raw == "origin":
        return None
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}: not a tip")
    return _str(raw, "id", _ID, where)


def _output(raw: Any, where: str) -> ChainOutput:
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}: not an output")
    address = raw.get("address")
    if not isinstance(address, str) or not 0 < len(address) <= MAX_ADDRESS:
        raise WireError(f"{where}.address: not an address")
    value = raw.get("value")
    if not isinstance(value, Mapping) or len(value) > MAX_ITEMS:
        raise WireError(f"{where}.value: not a value")
    policies = frozenset(p for p in value if isinstance(p, str) and p != "ada")
    datum_hex = raw.get("datum")
    datum = None
    if isinstance(datum_hex, str) and len(datum_hex) <= MAX_DATUM_HEX and _HEX.match(datum_hex):
        datum = bytes.fromhex(datum_hex)
    elif datum_hex is not None and not isinstance(datum_hex, str):
        raise WireError(f"{where}.datum: not hex")
    return ChainOutput(address, datum, policies)


def _transaction(raw: Any, where: str) -> ChainTx:
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}: not a transaction")
    tx_id = _str(raw, "id", _ID, where)
    inputs = []
    for i, ref in enumerate(_list(raw, "inputs", where, MAX_ITEMS)):
        w = f"{where}.inputs[{i}]"
        tx = ref.get("transaction") if isinstance(ref, Mapping) else None
        if not isinstance(tx, Mapping):
            raise WireError(f"{w}: not an output reference")
        inputs.append(f"{_str(tx, 'id', _ID, w)}#{_uint(ref, 'index', w)}")
    outputs = tuple(
        _output(o, f"{where}.outputs[{i}]")
        for i, o in enumerate(_list(raw, "outputs", where, MAX_ITEMS))
    )
    keys = []
    for i, signatory in enumerate(_list(raw, "signatories", where, MAX_ITEMS)):
        if not isinstance(signatory, Mapping):
            raise WireError(f"{where}.signatories[{i}]: not a signatory")
        keys.append(bytes.fromhex(_str(signatory, "key", _KEY, f"{where}.signatories[{i}]")))
    return ChainTx(tx_id, tuple(inputs), outputs, tuple(keys))


def block(raw: Any, where: str = "block") -> ChainBlock:
    """A ``Block`` (any era); a transaction that failed phase 2 (``spends: collaterals``)
    spent only its collateral and is left out."""
    if not isinstance(raw, Mapping):
        raise WireError(f"{where}: not a block")
    block_id = _str(raw, "id", _ID, where)
    height = _uint(raw, "height", where)
    slot = _uint(raw, "slot", where) if "slot" in raw else 0
    if raw.get("type") != "praos":
        return ChainBlock(block_id, slot, height, ())
    txs = []
    for i, item in enumerate(_list(raw, "transactions", where, MAX_TXS)):
        if isinstance(item, Mapping) and item.get("spends") == "collaterals":
            continue
        txs.append(_transaction(item, f"{where}.transactions[{i}]"))
    return ChainBlock(block_id, slot, height, tuple(txs))


def next_block(raw: Any) -> tuple[str, ChainBlock | dict[str, Any] | str, str | None]:
    """A ``nextBlock`` result: ``("forward", block, tip id)`` or ``("backward", point,
    tip id)``."""
    if not isinstance(raw, Mapping):
        raise WireError("nextBlock: not a result")
    direction = raw.get("direction")
    if direction == "forward":
        return "forward", block(raw.get("block")), tip_id(raw.get("tip"))
    if direction == "backward":
        return "backward", point(raw.get("point")), tip_id(raw.get("tip"))
    raise WireError("nextBlock: no direction")
