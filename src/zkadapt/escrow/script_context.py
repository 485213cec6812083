"""Plutus V3 script contexts as Plutus data, built by hand for evaluating the escrow.

Layouts follow the ledger's ``PlutusLedgerApi.V3`` (CIP-69 / Conway): a script receives one
argument, ``ScriptContext = Constr 0 [TxInfo, Redeemer, ScriptInfo]``; ``TxInfo`` has sixteen
fields; ``TxId`` is plain bytes (no wrapper, unlike V1/V2); spending is
``ScriptInfo = SpendingScript = Constr 1 [TxOutRef, Maybe Datum]``. Plutus data is CBOR:
constructor ``i`` is tag ``121 + i`` (``i < 7``) or ``1280 + i - 7``; ``Just x = Constr 0 [x]``,
``Nothing = Constr 1 []``, ``True = Constr 1 []``; a ``Value`` maps currency symbols to maps of
token names to amounts, ada under ``b""``/``b""``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cbor2

Data = object


def constr(index: int, *fields: Data) -> cbor2.CBORTag:
    """Plutus ``Constr index fields`` (hashable, so it can key a map)."""
    if not 0 <= index < 128:
        raise ValueError("constructor index must be in 0..127")
    tag = 121 + index if index < 7 else 1280 + index - 7
    return cbor2.CBORTag(tag, tuple(fields))


TRUE = constr(1)
NOTHING = constr(1)
NO_OUTPUT_DATUM = constr(0)
NO_STAKING = NOTHING


def just(value: Data) -> cbor2.CBORTag:
    return constr(0, value)


def tx_out_ref(tx_id: bytes, index: int) -> cbor2.CBORTag:
    return constr(0, tx_id, index)


def key_address(key_hash: bytes) -> cbor2.CBORTag:
    """``Address (PubKeyCredential h) Nothing``."""
    return constr(0, constr(0, key_hash), NO_STAKING)


def script_address(script_hash: bytes) -> cbor2.CBORTag:
    """``Address (ScriptCredential h) Nothing``."""
    return constr(0, constr(1, script_hash), NO_STAKING)


def ada(lovelace: int) -> dict[bytes, dict[bytes, int]]:
    return {b"": {b"": lovelace}}


def tx_out(address: Data, lovelace: int, datum: Data | None = None) -> cbor2.CBORTag:
    """``TxOut address value datum Nothing`` with an inline datum if given."""
    output_datum = constr(2, datum) if datum is not None else NO_OUTPUT_DATUM
    return constr(0, address, ada(lovelace), output_datum, NOTHING)


ALWAYS = constr(0, constr(0, constr(0), TRUE), constr(0, constr(2), TRUE))  # (-inf, +inf)


@dataclass(frozen=True)
class SpendInput:
    """An input of the transaction: where it comes from and what it holds."""

    ref: cbor2.CBORTag
    output: cbor2.CBORTag


def spending_context(
    *,
    own: SpendInput,
    datum: Data,
    redeemer: Data,
    inputs: Sequence[SpendInput] = (),
    outputs: Sequence[cbor2.CBORTag],
    signatories: Sequence[bytes],
    tx_id: bytes = b"\x11" * 32,
    fee: int = 0,
) -> bytes:
    """The CBOR of a V3 ``ScriptContext`` for spending ``own`` with ``redeemer``."""
    all_inputs = [constr(0, own.ref, own.output)] + [constr(0, i.ref, i.output) for i in inputs]
    purpose = constr(1, own.ref)  # ScriptPurpose: Spending TxOutRef
    tx_info = constr(
        0,
        all_inputs,  # inputs
        [],  # reference inputs
        list(outputs),
        fee,
        {},  # mint
        [],  # certificates
        {},  # withdrawals
        ALWAYS,  # validity range
        sorted(signatories),
        {purpose: redeemer},  # redeemers
        {},  # datums (the escrow's datum is inline)
        tx_id,
        {},  # votes
        [],  # proposal procedures
        NOTHING,  # current treasury amount
        NOTHING,  # treasury donation
    )
    script_info = constr(1, own.ref, just(datum))
    return cbor2.dumps(constr(0, tx_info, redeemer, script_info))
