"""Phase-1 ledger rules of the double: each failure is the Ogmios v6 error a node would give.

Checked, in this order (Conway ledger UTXO/UTXOW/UTXOS rules; the code is Ogmios'
``SubmitTransactionFailure``): a non-empty input set (3121), inputs, reference inputs and
collateral exist and are unspent (3117, the message says which were spent and by what), the
validity interval holds the current slot (3118), the size (3119), the fee covers
``a * size + b + script prices * declared units + reference-script fee`` (3122), value is
conserved: inputs + withdrawals + mint = outputs + fee + donation (3123), every output holds
its minimum ada ``(160 + size) * coinsPerUTxOByte`` (3125), addresses are on the ledger's
network (3124), every vkey witness verifies over the body hash (3100), every key-locked
input, collateral, key withdrawal and required signer has a witness (3101), every script
that must run is present (3102) with a redeemer (3109) and its datum (3111), declared units
within the per-transaction maximum (3134), and collateral (3132, 3129, 3128).

Not modelled (rejected with 3997 and the reason, never accepted unchecked): certificates,
governance, native scripts, bootstrap witnesses, Plutus V1/V2 scripts, ``isValid = false``.
The script integrity hash is not recomputed (it needs the node's language views).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pycardano import Address, Network, TransactionInput, TransactionOutput
from pycardano.hash import ScriptHash, VerificationKeyHash
from pycardano.plutus import PlutusV3Script, script_hash

from tests.layer1_double.network import Fees
from tests.layer1_double.ogmios_json import (
    LOVELACE,
    Bag,
    ada_json,
    add,
    add_assets,
    bag_of,
    normal,
    output_json,
    ref_json,
    ref_text,
    value_json,
)
from zkadapt.channel.hydra.cbor import blake2b_224
from zkadapt.escrow.tx_context import MINT, REWARD, SPEND, datum_hash_of, redeemers_of

#: Constant overhead per output in the Babbage/Conway min-UTxO rule.
OUTPUT_OVERHEAD = 160


class Rejected(Exception):
    """A transaction the ledger refuses, as the Ogmios error object a client receives.

    Attributes:
        code: the Ogmios error code (``SubmitTransactionFailure`` / ``EvaluateTransactionFailure``).
        message: Ogmios' message, ending with this double's one-line reason.
        data: the error's ``data`` (schema-valid for ``code``), or None.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    @property
    def error(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def not_modelled(what: str) -> Rejected:
    return Rejected(
        3997,
        "The transaction couldn't be added to the mempool. A justification is given as "
        "'data.error'.",
        {"error": f"the layer-1 double does not model {what}"},
    )


@dataclass(frozen=True)
class Candidate:
    """A decoded transaction and what the ledger knows about it.

    Attributes:
        tx: the PyCardano transaction.
        tx_id: blake2b-256 of the body as sent.
        size: bytes as sent.
        resolved: the outputs every known input, reference input and collateral spends.
        spent_by: input -> the id of the transaction that spent it (for the message).
        slot: the current slot.
        network: the ledger's network (PyCardano).
    """

    tx: Any
    tx_id: bytes
    size: int
    resolved: Mapping[TransactionInput, TransactionOutput]
    spent_by: Mapping[TransactionInput, str]
    slot: int
    network: Network

    @property
    def body(self) -> Any:
        return self.tx.transaction_body

    @property
    def witness(self) -> Any:
        return self.tx.transaction_witness_set


def check_structure(c: Candidate) -> None:
    """What the double refuses to judge, and an empty input set."""
    body, witness = c.body, c.witness
    if not body.inputs:
        raise Rejected(3121, "Transaction must have at least one input.")
    if body.certificates:
        raise not_modelled("certificates")
    if body.voting_procedures or body.proposal_procedures or body.update:
        raise not_modelled("governance actions")
    if witness.native_scripts:
        raise not_modelled("native scripts")
    if witness.bootstrap_witness:
        raise not_modelled("bootstrap (Byron) witnesses")
    if witness.plutus_v1_script or witness.plutus_v2_script:
        raise not_modelled("Plutus V1/V2 scripts")
    if c.tx.valid is False:
        raise not_modelled("transactions marked invalid (collateral-only spends)")


def check_inputs(c: Candidate) -> None:
    """Every input, reference input and collateral is unspent (3117)."""
    body = c.body
    refs = [*body.inputs, *(body.reference_inputs or []), *(body.collateral or [])]
    unknown = [r for r in refs if r not in c.resolved]
    if not unknown:
        return
    reasons = [
        f"{ref_text(r)} " + (f"was spent by {c.spent_by[r]}" if r in c.spent_by else "is unknown")
        for r in unknown
    ]
    raise Rejected(
        3117,
        "The transaction contains unknown UTxO references as inputs: " + "; ".join(reasons),
        {"unknownOutputReferences": [ref_json(r) for r in unknown]},
    )


def check_validity(c: Candidate) -> None:
    """``invalidBefore <= slot < invalidHereafter`` (3118)."""
    start, end = c.body.validity_start, c.body.ttl
    if (start is None or start <= c.slot) and (end is None or c.slot < end):
        return
    interval: dict[str, int] = {}
    if start is not None:
        interval["invalidBefore"] = start
    if end is not None:
        interval["invalidAfter"] = end
    when = "too early" if start is not None and c.slot < start else "too late"
    raise Rejected(
        3118,
        f"The transaction is outside of its validity interval ({when}): slot {c.slot} is not "
        f"in [{start if start is not None else '-inf'}, {end if end is not None else '+inf'})",
        {"validityInterval": interval, "currentSlot": c.slot},
    )


def check_size(c: Candidate, params: Mapping[str, Any]) -> None:
    limit = params["maxTransactionSize"]["bytes"]
    if c.size > limit:
        raise Rejected(
            3119,
            f"The transaction is too large: {c.size} bytes, at most {limit}",
            {
                "measuredTransactionSize": {"bytes": c.size},
                "maximumTransactionSize": {"bytes": limit},
            },
        )


def _declared_units(c: Candidate) -> tuple[int, int]:
    units = [budget for _, _, _, budget in redeemers_of(c.witness)]
    return sum(u[0] for u in units), sum(u[1] for u in units)


def _reference_script_bytes(c: Candidate) -> int:
    body = c.body
    size = 0
    for ref in [*body.inputs, *(body.reference_inputs or [])]:
        script = c.resolved[ref].script
        if script is not None:
            size += len(bytes(script))
    return size


def minimum_fee(c: Candidate, fees: Fees) -> int:
    memory, cpu = _declared_units(c)
    return fees.minimum(c.size, memory, cpu, _reference_script_bytes(c))


def check_fee(c: Candidate, fees: Fees) -> None:
    """fee >= the minimum fee (3122)."""
    needed = minimum_fee(c, fees)
    if c.body.fee < needed:
        raise Rejected(
            3122,
            f"Insufficient fee: {c.body.fee} lovelace provided, at least {needed} required",
            {"minimumRequiredFee": ada_json(needed), "providedFee": ada_json(c.body.fee)},
        )


def consumed_and_produced(c: Candidate) -> tuple[Bag, Bag]:
    body = c.body
    consumed: Bag = {}
    for ref in body.inputs:
        add(consumed, bag_of(c.resolved[ref].amount))
    for amount in (body.withdraws or {}).values():
        add(consumed, {LOVELACE: int(amount)})
    add_assets(consumed, body.mint)
    produced: Bag = {LOVELACE: body.fee + (body.donation or 0)}
    for output in body.outputs:
        add(produced, bag_of(output.amount))
    return normal(consumed), normal(produced)


def check_balance(c: Candidate) -> None:
    """consumed == produced (3123)."""
    consumed, produced = consumed_and_produced(c)
    if consumed == produced:
        return
    delta = produced.get(LOVELACE, 0) - consumed.get(LOVELACE, 0)
    raise Rejected(
        3123,
        f"Value not conserved: consumed {consumed.get(LOVELACE, 0)} lovelace, produced "
        f"{produced.get(LOVELACE, 0)} ({delta:+d})" + ("" if delta else " (native assets differ)"),
        {"valueConsumed": value_json(consumed), "valueProduced": value_json(produced)},
    )


def min_ada(output: TransactionOutput, per_byte: int) -> int:
    """``(160 + serialized size) * coinsPerUTxOByte`` (Babbage/Conway)."""
    return (OUTPUT_OVERHEAD + len(output.to_cbor())) * per_byte


def check_outputs(c: Candidate, params: Mapping[str, Any]) -> None:
    """Each output holds its minimum ada (3125) and is on the ledger's network (3124)."""
    per_byte = params["minUtxoDepositCoefficient"]
    short = []
    for output in c.body.outputs:
        if not isinstance(output.address, Address):
            raise not_modelled("Byron outputs")
        if output.address.network != c.network:
            raise Rejected(
                3124,
                f"Some discriminated entities in the transaction are configured for another "
                f"network: {output.address.encode()} is not on {c.network.name.lower()}",
                {
                    "expectedNetwork": c.network.name.lower(),
                    "discriminatedType": "address",
                    "invalidEntities": [output.address.encode()],
                },
            )
        needed = min_ada(output, per_byte)
        coin = bag_of(output.amount)[LOVELACE]
        if coin < needed:
            short.append((output, needed, coin))
    if short:
        output, needed, coin = short[0]
        raise Rejected(
            3125,
            f"Insufficiently funded output: {coin} lovelace, at least {needed} required",
            {
                "insufficientlyFundedOutputs": [
                    {"output": output_json(o), "minimumRequiredValue": ada_json(n)}
                    for o, n, _ in short
                ]
            },
        )


def _vkey_bytes(witness: Any) -> bytes:
    return bytes(witness.vkey.payload)[:32]


def check_signatures(c: Candidate) -> None:
    """Every vkey witness signs the body hash (3100); every needed key signed (3101)."""
    body = c.body
    bad, signed = [], set()
    for witness in c.witness.vkey_witnesses or []:
        vkey = _vkey_bytes(witness)
        try:
            VerifyKey(vkey).verify(c.tx_id, bytes(witness.signature))
        except (BadSignatureError, ValueError):
            bad.append(vkey.hex())
            continue
        signed.add(blake2b_224(vkey))
    if bad:
        raise Rejected(
            3100,
            f"Some signatures are invalid: {len(bad)} witness(es) do not sign the body hash "
            f"{c.tx_id.hex()}",
            {"invalidSignatories": bad},
        )
    needed: dict[bytes, str] = {}
    for ref in [*body.inputs, *(body.collateral or [])]:
        part = c.resolved[ref].address.payment_part
        if isinstance(part, VerificationKeyHash):
            needed.setdefault(bytes(part.payload), f"input {ref_text(ref)}")
    for key in body.required_signers or []:
        needed.setdefault(bytes(key.payload), "required signer")
    for account in body.withdraws or {}:
        raw = bytes(account)
        if raw[0] >> 4 == 0xE:
            needed.setdefault(raw[1:], "withdrawal")
    missing = [k for k in needed if k not in signed]
    if missing:
        first = needed[missing[0]]
        raise Rejected(
            3101,
            f"Some signatures are missing: key {missing[0].hex()} ({first})"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""),
            {"missingSignatories": [k.hex() for k in missing]},
        )


def scripts_available(c: Candidate) -> dict[bytes, Any]:
    """Script hash -> script, from the witness set and the reference scripts of inputs and
    reference inputs."""
    found: dict[bytes, Any] = {}
    for script in c.witness.plutus_v3_script or []:
        found[bytes(script_hash(PlutusV3Script(bytes(script))).payload)] = PlutusV3Script(
            bytes(script)
        )
    body = c.body
    for ref in [*body.inputs, *(body.reference_inputs or [])]:
        script = c.resolved[ref].script
        if script is not None:
            found[bytes(script_hash(script).payload)] = script
    return found


def _needed_scripts(c: Candidate) -> list[tuple[int, int, bytes, dict[str, Any]]]:
    """``(tag, index, script hash, ScriptPurpose JSON)`` of every script that must run."""
    body = c.body
    needed = []
    for index, ref in enumerate(
        sorted(body.inputs, key=lambda r: (bytes(r.transaction_id.payload), r.index))
    ):
        part = c.resolved[ref].address.payment_part
        if isinstance(part, ScriptHash):
            purpose = {"purpose": "spend", "outputReference": ref_json(ref)}
            needed.append((SPEND, index, bytes(part.payload), purpose))
    for index, policy in enumerate(sorted(bytes(p.payload) for p in (body.mint or {}))):
        needed.append((MINT, index, policy, {"purpose": "mint", "policy": policy.hex()}))
    accounts = sorted(
        (bytes(a) for a in (body.withdraws or {})), key=lambda a: (a[0] >> 4 != 0xF, a[1:])
    )
    for index, account in enumerate(accounts):
        if account[0] >> 4 == 0xF:
            purpose = {
                "purpose": "withdraw",
                "rewardAccount": Address.from_primitive(account).encode(),
            }
            needed.append((REWARD, index, account[1:], purpose))
    return needed


def check_scripts(c: Candidate, params: Mapping[str, Any]) -> None:
    """Scripts (3102), redeemers (3109), datums (3111), units (3134), collateral."""
    needed = _needed_scripts(c)
    available = scripts_available(c)
    missing = [h for _, _, h, _ in needed if h not in available]
    if missing:
        raise Rejected(
            3102,
            f"Some script witnesses are missing: {', '.join(h.hex() for h in missing)}",
            {"missingScripts": [h.hex() for h in missing]},
        )
    for h in {h for _, _, h, _ in needed}:
        if not isinstance(available[h], PlutusV3Script):
            raise not_modelled("Plutus V1/V2 scripts")
    redeemed = {(tag, index) for tag, index, _, _ in redeemers_of(c.witness)}
    unredeemed = [p for tag, index, _, p in needed if (tag, index) not in redeemed]
    if unredeemed:
        raise Rejected(
            3109,
            f"Missing required redeemer(s) for Plutus scripts: {unredeemed[0]['purpose']}",
            {"missingRedeemers": unredeemed},
        )
    check_datums(c)
    memory, cpu = _declared_units(c)
    limit = params["maxExecutionUnitsPerTransaction"]
    if memory > limit["memory"] or cpu > limit["cpu"]:
        raise Rejected(
            3134,
            f"The declared execution units ({memory} memory, {cpu} cpu) exceed the maximum",
            {
                "providedExecutionUnits": {"memory": memory, "cpu": cpu},
                "maximumExecutionUnits": dict(limit),
            },
        )
    if redeemed:
        check_collateral(c, params)


def check_datums(c: Candidate) -> None:
    """Every spent script output with a datum hash has its datum in the witness set (3111)."""
    witnessed = {datum_hash_of(d) for d in (c.witness.plutus_data or [])}
    missing = []
    for ref in c.body.inputs:
        output = c.resolved[ref]
        if isinstance(output.address.payment_part, ScriptHash) and output.datum_hash is not None:
            digest = bytes(output.datum_hash.payload)
            if digest not in witnessed:
                missing.append(digest.hex())
    if missing:
        raise Rejected(
            3111,
            f"Missing datum(s) for script inputs: {', '.join(missing)}",
            {"missingDatums": missing},
        )


def check_collateral(c: Candidate, params: Mapping[str, Any]) -> None:
    """Key-locked, enough for ``collateralPercentage`` of the fee (3132, 3129, 3128)."""
    body = c.body
    collateral = list(body.collateral or [])
    if not collateral:
        raise Rejected(3132, "The transaction runs scripts but provides no collateral inputs.")
    if len(collateral) > params["maxCollateralInputs"]:
        raise Rejected(
            3131,
            "Too many collateral inputs",
            {
                "maximumCollateralInputs": params["maxCollateralInputs"],
                "countedCollateralInputs": len(collateral),
            },
        )
    locked = [
        r
        for r in collateral
        if not isinstance(c.resolved[r].address.payment_part, VerificationKeyHash)
    ]
    if locked:
        raise Rejected(
            3129,
            f"Collateral input {ref_text(locked[0])} is locked by a script",
            {"unsuitableCollateralInputs": [ref_json(r) for r in locked]},
        )
    provided = sum(bag_of(c.resolved[r].amount)[LOVELACE] for r in collateral)
    if body.collateral_return is not None:
        provided -= bag_of(body.collateral_return.amount)[LOVELACE]
    required = math.ceil(body.fee * params["collateralPercentage"] / 100)
    if provided < required:
        raise Rejected(
            3128,
            f"Insufficient collateral: {provided} lovelace, at least {required} required",
            {
                "providedCollateral": ada_json(provided),
                "minimumRequiredCollateral": ada_json(required),
            },
        )


def phase_one(c: Candidate, params: Mapping[str, Any], fees: Fees) -> None:
    """Every phase-1 rule, first failure raised (:class:`Rejected`)."""
    check_structure(c)
    check_inputs(c)
    check_validity(c)
    check_size(c, params)
    check_fee(c, fees)
    check_balance(c)
    check_outputs(c, params)
    check_signatures(c)
    check_scripts(c, params)
