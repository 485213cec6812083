"""PyCardano values in Ogmios v6 JSON form (``cardano.json``: Value, TransactionOutput, Utxo)."""

from __future__ import annotations

from typing import Any

import cbor2
from pycardano import Address, TransactionInput, TransactionOutput
from pycardano.plutus import PlutusV1Script, PlutusV2Script, PlutusV3Script

from zkadapt.escrow.tx_context import as_data, datum_hash_of  # noqa: F401 - re-exported

#: ``(policy hex, asset name hex) -> quantity``; lovelace under ``("", "")``.
Bag = dict[tuple[str, str], int]

LOVELACE = ("", "")


def bag_of(amount: Any) -> Bag:
    """A PyCardano amount (int or Value) as a bag of quantities."""
    if isinstance(amount, int):
        return {LOVELACE: amount}
    bag: Bag = {LOVELACE: amount.coin}
    add_assets(bag, amount.multi_asset)
    return bag


def add_assets(bag: Bag, multi_asset: Any, sign: int = 1) -> None:
    """Add (or subtract, ``sign=-1``) a MultiAsset into ``bag``."""
    for policy, assets in (multi_asset or {}).items():
        for name, quantity in assets.items():
            key = (bytes(policy.payload).hex(), bytes(name.payload).hex())
            bag[key] = bag.get(key, 0) + sign * int(quantity)


def add(bag: Bag, other: Bag, sign: int = 1) -> None:
    for key, quantity in other.items():
        bag[key] = bag.get(key, 0) + sign * quantity


def normal(bag: Bag) -> Bag:
    """Without zero entries, lovelace always present."""
    out = {k: v for k, v in bag.items() if v != 0}
    out.setdefault(LOVELACE, 0)
    return out


def value_json(bag: Bag) -> dict[str, Any]:
    """``cardano.json`` ``Value``."""
    value: dict[str, Any] = {"ada": {"lovelace": bag.get(LOVELACE, 0)}}
    for (policy, name), quantity in sorted(bag.items()):
        if (policy, name) != LOVELACE and quantity:
            value.setdefault(policy, {})[name] = quantity
    return value


def ada_json(lovelace: int) -> dict[str, Any]:
    """``cardano.json`` ``Value<AdaOnly>``."""
    return {"ada": {"lovelace": lovelace}}


def ref_json(ref: TransactionInput) -> dict[str, Any]:
    """``TransactionOutputReference``."""
    return {"transaction": {"id": bytes(ref.transaction_id.payload).hex()}, "index": ref.index}


def ref_text(ref: TransactionInput) -> str:
    return f"{bytes(ref.transaction_id.payload).hex()}#{ref.index}"


def _script_json(script: Any) -> dict[str, Any]:
    for version, kind in ((1, PlutusV1Script), (2, PlutusV2Script), (3, PlutusV3Script)):
        if isinstance(script, kind):
            return {"language": f"plutus:v{version}", "cbor": bytes(script).hex()}
    raise ValueError(f"the double serves Plutus scripts only, not {type(script).__name__}")


def output_json(output: TransactionOutput) -> dict[str, Any]:
    """``TransactionOutput``: address, value, and datum hash or inline datum, script."""
    address = output.address
    entry: dict[str, Any] = {
        "address": address.encode() if isinstance(address, Address) else str(address),
        "value": value_json(bag_of(output.amount)),
    }
    if output.datum is not None:
        entry["datum"] = cbor2.dumps(as_data(output.datum)).hex()
    elif output.datum_hash is not None:
        entry["datumHash"] = bytes(output.datum_hash.payload).hex()
    if output.script is not None:
        entry["script"] = _script_json(output.script)
    return entry


def utxo_json(ref: TransactionInput, output: TransactionOutput) -> dict[str, Any]:
    """One item of ``cardano.json`` ``Utxo``."""
    return {**ref_json(ref), **output_json(output)}
