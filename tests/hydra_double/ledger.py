"""The double's ledger: the subset of Conway ledger rules a head applies to plain payments.

Checked, with the error names the Cardano ledger uses (ledger spec, UTXO/UTXOW rules):
inputs exist and are unspent (``BadInputsUTxO``), no empty input set (``InputSetEmptyUTxO``),
value is preserved: consumed = produced + fee (``ValueNotConservedUTxO``), the fee covers
``txFeeFixed + txFeePerByte * size`` (``FeeTooSmallUTxO``), the size is within ``maxTxSize``
(``MaxTxSizeUTxO``), each output holds ``utxoCostPerByte * (160 + size)`` lovelace
(``BabbageOutputTooSmallUTxO``), every key-locked input has a valid witness of that key
(``MissingVKeyWitnessesUTXOW``), every witness verifies (``InvalidWitnessesUTXOW``), and the
auxiliary data matches its hash (``ConflictingMetadataHash`` / ``MissingTxMetadata``).
Key hashes and addresses are computed with PyCardano; signatures are checked with PyNaCl
(PyCardano's signing backend).

Not modelled (the channel never uses them): scripts and datums, minting, certificates,
withdrawals, validity intervals, collateral, reference inputs, governance.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pycardano import Address, PaymentVerificationKey

from zkadapt.channel.hydra.txread import DecodedTx, MalformedTransaction, TxOutput, decode_tx

#: Constant overhead per output in the Babbage/Conway min-UTxO rule.
OUTPUT_OVERHEAD = 160


class LedgerError(Exception):
    """A transaction that the ledger rejects; ``reason`` reads like the real node's."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Applied:
    """A transaction applied to a UTxO set: its id and the resulting set."""

    tx_id: str
    utxo: dict[str, dict[str, Any]]


def txout_json(output: TxOutput) -> dict[str, Any]:
    """api.yaml ``TxOut`` of a decoded output (datum and scripts never set by the double)."""
    value: dict[str, Any] = {"lovelace": output.lovelace}
    for policy, name, quantity in output.assets:
        value.setdefault(policy.hex(), {})[name.hex()] = quantity
    return {
        "address": Address.from_primitive(output.address).encode(),
        "value": value,
        "datum": None,
        "datumhash": None,
        "inlineDatum": None,
        "inlineDatumRaw": None,
        "referenceScript": None,
    }


def _assets(value: dict[str, Any]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for policy, names in value.items():
        if policy != "lovelace":
            for name, quantity in names.items():
                out[(policy, name)] = out.get((policy, name), 0) + int(quantity)
    return out


def _owner(address: str) -> bytes | None:
    part = Address.from_primitive(address).payment_part
    return bytes(part.payload) if type(part).__name__ == "VerificationKeyHash" else None


class Ledger:
    """A UTxO set (api.yaml ``UTxO`` form) and the rules to apply transactions to it.

    Args:
        params: protocol parameters (hydra-cluster's zero-fee ones in the tests).
        utxo: the initial set.
    """

    def __init__(self, params: dict[str, Any], utxo: dict[str, dict[str, Any]] | None = None):
        self.params = params
        self.utxo: dict[str, dict[str, Any]] = copy.deepcopy(utxo or {})

    def check(self, cbor: bytes) -> Applied:
        """Validate ``cbor`` against the current set; return the set it would produce.

        Raises:
            LedgerError: the first rule the transaction breaks.
        """
        try:
            tx = decode_tx(cbor)
        except MalformedTransaction as exc:
            raise LedgerError(f"DecoderFailure: {exc}") from None
        self._structure(tx)
        spent = self._inputs(tx)
        self._witnesses(tx, spent)
        self._balance(tx, spent)
        utxo = {k: v for k, v in self.utxo.items() if k not in spent}
        for index, output in enumerate(tx.outputs):
            utxo[f"{tx.tx_id}#{index}"] = txout_json(output)
        return Applied(tx.tx_id, utxo)

    def apply(self, cbor: bytes) -> str:
        """Apply ``cbor`` (see :meth:`check`) and return its id."""
        applied = self.check(cbor)
        self.utxo = applied.utxo
        return applied.tx_id

    def _structure(self, tx: DecodedTx) -> None:
        if not tx.is_valid:
            raise LedgerError("ValidationTagMismatch: isValid = false without scripts")
        if tx.size > self.params["maxTxSize"]:
            raise LedgerError(f"MaxTxSizeUTxO {tx.size} {self.params['maxTxSize']}")
        if tx.mint or tx.scripts:
            raise LedgerError("the double supports plain payments only (no scripts or minting)")
        if (tx.aux_hash is None) != (tx.aux_raw is None):
            which = "MissingTxMetadata" if tx.aux_raw is None else "MissingTxBodyMetadataHash"
            raise LedgerError(which)
        if tx.aux_raw is not None and hashlib.blake2b(tx.aux_raw, digest_size=32).digest() != (
            tx.aux_hash
        ):
            raise LedgerError("ConflictingMetadataHash")

    def _inputs(self, tx: DecodedTx) -> dict[str, dict[str, Any]]:
        if not tx.inputs:
            raise LedgerError("InputSetEmptyUTxO")
        refs = [f"{tx_id}#{index}" for tx_id, index in tx.inputs]
        missing = [r for r in refs if r not in self.utxo]
        if missing:
            raise LedgerError(f"BadInputsUTxO {sorted(missing)}")
        return {r: self.utxo[r] for r in refs}

    def _witnesses(self, tx: DecodedTx, spent: dict[str, dict[str, Any]]) -> None:
        body_hash = bytes.fromhex(tx.tx_id)
        for witness in tx.witnesses:
            try:
                VerifyKey(witness.vkey).verify(body_hash, witness.signature)
            except (BadSignatureError, ValueError, TypeError):
                raise LedgerError(f"InvalidWitnessesUTXOW [{witness.vkey.hex()}]") from None
        signed = {bytes(PaymentVerificationKey(w.vkey).hash().payload) for w in tx.witnesses}
        needed = {_owner(out["address"]) for out in spent.values()}
        if None in needed:
            raise LedgerError("the double cannot spend script-locked inputs")
        missing = sorted(h.hex() for h in needed - signed if h is not None)
        if missing:
            raise LedgerError(f"MissingVKeyWitnessesUTXOW {missing}")

    def _balance(self, tx: DecodedTx, spent: dict[str, dict[str, Any]]) -> None:
        min_fee = self.params["txFeeFixed"] + self.params["txFeePerByte"] * tx.size
        if tx.fee < min_fee:
            raise LedgerError(f"FeeTooSmallUTxO (supplied {tx.fee}, expected {min_fee})")
        consumed = sum(int(o["value"].get("lovelace", 0)) for o in spent.values())
        produced = sum(o.lovelace for o in tx.outputs) + tx.fee
        in_assets: dict[tuple[str, str], int] = {}
        for out in spent.values():
            for key, q in _assets(out["value"]).items():
                in_assets[key] = in_assets.get(key, 0) + q
        out_assets: dict[tuple[str, str], int] = {}
        for o in tx.outputs:
            for policy, name, q in o.assets:
                key = (policy.hex(), name.hex())
                out_assets[key] = out_assets.get(key, 0) + q
        if consumed != produced or in_assets != out_assets:
            raise LedgerError(f"ValueNotConservedUTxO (consumed {consumed}, produced {produced})")
        per_byte = self.params["utxoCostPerByte"]
        for index, o in enumerate(tx.outputs):
            need = per_byte * (OUTPUT_OVERHEAD + len(o.raw))
            if o.lovelace < need:
                raise LedgerError(
                    f"BabbageOutputTooSmallUTxO output {index}: {o.lovelace} < {need}"
                )
