"""Ogmios v6 chain-sync (``findIntersection``, ``nextBlock``) over the ledger double.

The ledger double has no blocks of its own: each applied transaction is one block here
(:attr:`~tests.layer1_double.ledger.Ledger.blocks`), whose id is the tip after it (what
``queryNetwork/tip`` names), so a point a client read from the tip is a point it can
intersect at. The ledger double's tip reports the clock's slot rather than its last
block's, so the double intersects by block id alone (Ogmios matches slot and id). Blocks
are ``Block<Praos>`` of ``cardano.json`` with their transactions'
``inputs``, ``outputs`` and ``signatories`` (each vkey witness: key and signature), what a
reader of a hydra head's close needs (docs/escrow.md, "A premature close").

As Ogmios does, the first ``nextBlock`` after an intersection rolls backward to it, and a
``nextBlock`` at the tip waits for the next block (here: at most :data:`WAIT_S` seconds,
then an RpcError, since the double does not mint empty blocks).
"""

from __future__ import annotations

import time
from typing import Any

from tests.layer1_double.ledger import Ledger
from tests.layer1_double.ogmios_json import output_json, ref_json

#: Seconds a ``nextBlock`` at the tip waits for a new block.
WAIT_S = 5.0
GENESIS = "00" * 32
_ISSUER = {
    "verificationKey": "11" * 32,
    "vrfVerificationKey": "22" * 32,
    "operationalCertificate": {"count": 0, "kes": {"period": 0, "verificationKey": "33" * 32}},
    "leaderValue": {},
}


class ChainSyncError(Exception):
    """A chain-sync request the double cannot serve (an RpcError)."""


class ChainCursor:
    """One connection's chain-sync cursor: the index of the last block sent (-1: origin)."""

    def __init__(self) -> None:
        self.at = -1
        self.rollback: dict[str, Any] | str | None = None


def tip_json(ledger: Ledger) -> dict[str, Any] | str:
    """``TipOrOrigin``: the last block (slot, id, height), or ``origin``."""
    if not ledger.blocks:
        return "origin"
    block_id, slot, _ = ledger.blocks[-1]
    return {"slot": slot, "id": block_id, "height": len(ledger.blocks)}


def _point(ledger: Ledger, index: int) -> dict[str, Any] | str:
    if index < 0:
        return "origin"
    block_id, slot, _ = ledger.blocks[index]
    return {"slot": slot, "id": block_id}


def find_intersection(ledger: Ledger, cursor: ChainCursor, points: list[Any]) -> dict[str, Any]:
    """The first of ``points`` on the chain (``origin``, the genesis tip, or a block).

    Raises:
        ChainSyncError: none is (Ogmios' ``IntersectionNotFound``, code 1000).
    """
    with ledger._lock:
        ids = {block_id: i for i, (block_id, _, _) in enumerate(ledger.blocks)}
        for point in points:
            if point == "origin" or (isinstance(point, dict) and point.get("id") == GENESIS):
                index = -1
            elif isinstance(point, dict) and point.get("id") in ids:
                index = ids[point["id"]]  # by id: the ledger's tip reports the clock's slot
            else:
                continue
            cursor.at = index
            cursor.rollback = _point(ledger, index)
            return {"intersection": cursor.rollback, "tip": tip_json(ledger)}
        raise ChainSyncError("No intersection found.", tip_json(ledger))


def next_block(ledger: Ledger, cursor: ChainCursor) -> dict[str, Any]:
    """The next block after the cursor (or the roll-back to a fresh intersection)."""
    if cursor.rollback is not None:
        point, cursor.rollback = cursor.rollback, None
        return {"direction": "backward", "tip": tip_json(ledger), "point": point}
    deadline = time.monotonic() + WAIT_S
    while len(ledger.blocks) <= cursor.at + 1:
        if time.monotonic() > deadline:
            raise ChainSyncError("no new block", None)
        time.sleep(0.05)
    with ledger._lock:
        cursor.at += 1
        return {
            "direction": "forward",
            "tip": tip_json(ledger),
            "block": block_json(ledger, cursor.at),
        }


def block_json(ledger: Ledger, index: int) -> dict[str, Any]:
    """Block ``index`` as ``Block<Praos>``: its one transaction with its signatories."""
    block_id, slot, tx_id = ledger.blocks[index]
    tx = ledger.applied[tx_id]
    body = tx.transaction_body
    witnesses = tx.transaction_witness_set.vkey_witnesses or []
    transaction = {
        "id": tx_id,
        "spends": "inputs",
        "inputs": [ref_json(r) for r in body.inputs],
        "outputs": [output_json(o) for o in body.outputs],
        "fee": {"ada": {"lovelace": int(body.fee)}},
        "signatories": [
            {"key": bytes(w.vkey.payload).hex(), "signature": bytes(w.signature).hex()}
            for w in witnesses
        ],
    }
    return {
        "type": "praos",
        "era": "conway",
        "id": block_id,
        "ancestor": ledger.blocks[index - 1][0] if index > 0 else "genesis",
        "height": index + 1,
        "size": {"bytes": len(tx.to_cbor())},
        "slot": slot,
        "protocol": {"version": {"major": 10, "minor": 0}},
        "issuer": _ISSUER,
        "transactions": [transaction],
    }
