"""Plutus V3 script contexts derived from a real (PyCardano) transaction, and running a script.

:mod:`zkadapt.escrow.script_context` builds contexts from hand-made parts; this module
derives them from a :class:`pycardano.Transaction` and the outputs its inputs and reference
inputs spend, the way a node does in phase 2 (``PlutusLedgerApi.V3``, Conway ledger
``TxInfo`` translation), so that what a script sees is what the transaction says:

* inputs and reference inputs in ledger order (by out-ref), each with its resolved
  ``TxOut address value datum referenceScript``; outputs in transaction order;
* fee (lovelace), mint (no ada entry in V3), withdrawals, the validity interval as POSIX
  milliseconds (``[start, end)``, from the slots through ``slot_to_posix_ms``), the required
  signers sorted, every redeemer keyed by its purpose, the witness datums by hash, the id;
* one context per redeemer: ``ScriptContext TxInfo Redeemer ScriptInfo`` with
  ``SpendingScript ref (Maybe Datum)`` (inline datum, or the witness datum of the output's
  hash), ``MintingScript policy`` or ``RewardingScript credential``.

Certificates, votes and proposals are not translated: a transaction with scripts and any of
them raises :class:`ScriptContextError` (nothing in this project builds one).

:func:`run_script` runs a compiled Plutus V3 script on a context with ``uplc`` within a
budget, the way :meth:`zkadapt.escrow.onchain.EscrowScript.evaluate` runs the escrow.
Used by the layer-1 ledger double (``tests/layer1_double``) and the escrow's transactions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cbor2

from zkadapt.escrow.onchain import EscrowError, Evaluation, _deep_recursion, _uplc
from zkadapt.escrow.script_context import NOTHING, constr, just, tx_out_ref

#: Redeemer tags (Conway CDDL ``redeemer_tag``) and the names Ogmios gives their purposes.
SPEND, MINT, CERT, REWARD, VOTE, PROPOSE = range(6)
PURPOSE_NAMES = {
    SPEND: "spend",
    MINT: "mint",
    CERT: "publish",
    REWARD: "withdraw",
    VOTE: "vote",
    PROPOSE: "propose",
}
#: ``OutputDatum``: no datum, a datum hash, an inline datum.
NO_OUTPUT_DATUM = constr(0)


class ScriptContextError(EscrowError):
    """A transaction whose script context cannot be derived (a missing input, a stray
    redeemer, a purpose this module does not translate)."""


@dataclass(frozen=True)
class ScriptRun:
    """One script execution a transaction asks for: a redeemer, its script and its context.

    Attributes:
        tag: the redeemer tag (:data:`SPEND`, :data:`MINT`, :data:`REWARD`).
        index: the redeemer index (into sorted inputs, policies or reward accounts).
        script_hash: the 28-byte hash of the script that must run.
        redeemer: the redeemer, as Plutus data (cbor2 objects).
        budget: the declared execution units ``(memory, cpu)``.
        context: the CBOR ``ScriptContext`` the script runs on.
    """

    tag: int
    index: int
    script_hash: bytes
    redeemer: Any
    budget: tuple[int, int]
    context: bytes

    @property
    def purpose(self) -> str:
        """Ogmios' name of the purpose (``spend``, ``mint``, ``withdraw`` ...)."""
        return PURPOSE_NAMES[self.tag]


def as_data(value: Any) -> Any:
    """A PyCardano datum or redeemer (PlutusData, RawPlutusData, RawCBOR, primitive) as
    cbor2 objects, ready to embed in a context."""
    from pycardano.serialization import RawCBOR, default_encoder

    if isinstance(value, RawCBOR):
        return cbor2.loads(value.cbor)
    if hasattr(value, "to_cbor"):
        raw = value.to_cbor()
        return cbor2.loads(raw if isinstance(raw, bytes) else bytes.fromhex(raw))
    return cbor2.loads(cbor2.dumps(value, default=default_encoder))


def datum_hash_of(datum: Any) -> bytes:
    """blake2b-256 of a datum's CBOR (as PyCardano encodes it)."""
    return hashlib.blake2b(cbor2.dumps(as_data(datum)), digest_size=32).digest()


def _credential(part: Any) -> Any:
    from pycardano.hash import ScriptHash, VerificationKeyHash

    if isinstance(part, VerificationKeyHash):
        return constr(0, bytes(part.payload))
    if isinstance(part, ScriptHash):
        return constr(1, bytes(part.payload))
    raise ScriptContextError(f"not a credential: {type(part).__name__}")


def address_data(address: Any) -> Any:
    """``Address credential (Maybe StakingCredential)`` of a Shelley address.

    Raises:
        ScriptContextError: a Byron address (scripts cannot see one) or no payment part.
    """
    from pycardano.address import Address, PointerAddress

    if not isinstance(address, Address) or address.payment_part is None:
        raise ScriptContextError("a script input or output needs a Shelley payment address")
    stake = address.staking_part
    if stake is None:
        staking = NOTHING
    elif isinstance(stake, PointerAddress):
        staking = just(constr(1, stake.slot, stake.tx_index, stake.cert_index))
    else:
        staking = just(constr(0, _credential(stake)))
    return constr(0, _credential(address.payment_part), staking)


def value_data(coin: int, multi_asset: Any, *, with_ada: bool = True) -> dict[bytes, Any]:
    """A ``Value``: currency symbol -> token name -> amount, ada under ``b""`` when asked."""
    value: dict[bytes, dict[bytes, int]] = {b"": {b"": coin}} if with_ada else {}
    for policy in sorted(multi_asset or {}, key=lambda p: bytes(p.payload)):
        assets = multi_asset[policy]
        tokens = {bytes(n.payload): int(q) for n, q in assets.items() if int(q) != 0}
        if tokens:
            value[bytes(policy.payload)] = dict(sorted(tokens.items()))
    return value


def _output_datum(output: Any) -> Any:
    if output.datum is not None:
        return constr(2, as_data(output.datum))
    if output.datum_hash is not None:
        return constr(1, bytes(output.datum_hash.payload))
    return NO_OUTPUT_DATUM


def tx_out_data(output: Any) -> Any:
    """``TxOut address value datum (Maybe ScriptHash)`` of a PyCardano output."""
    from pycardano.plutus import script_hash

    amount = output.amount
    coin = amount if isinstance(amount, int) else amount.coin
    assets = None if isinstance(amount, int) else amount.multi_asset
    script = NOTHING if output.script is None else just(bytes(script_hash(output.script).payload))
    return constr(
        0, address_data(output.address), value_data(coin, assets), _output_datum(output), script
    )


def _ref_key(tx_in: Any) -> tuple[bytes, int]:
    return bytes(tx_in.transaction_id.payload), int(tx_in.index)


def _ref_data(tx_in: Any) -> Any:
    tx_id, index = _ref_key(tx_in)
    return tx_out_ref(tx_id, index)


def _resolved(tx_in: Any, resolved: Mapping[Any, Any]) -> Any:
    output = resolved.get(tx_in)
    if output is None:
        tx_id, index = _ref_key(tx_in)
        raise ScriptContextError(f"input {tx_id.hex()}#{index} is not resolved")
    return output


def validity_data(body: Any, slot_to_posix_ms: Callable[[int], int]) -> Any:
    """``POSIXTimeRange`` of the body's validity interval: ``[start, end)`` in milliseconds."""
    start, end = body.validity_start, body.ttl
    low = (
        constr(0, constr(0), constr(1))
        if start is None
        else constr(0, constr(1, slot_to_posix_ms(start)), constr(1))
    )
    high = (
        constr(0, constr(2), constr(1))
        if end is None
        else constr(0, constr(1, slot_to_posix_ms(end)), constr(0))
    )
    return constr(0, low, high)


def _reward_credential(account: bytes) -> Any:
    """The staking credential of a raw reward address (header 0xe_: key, 0xf_: script)."""
    if len(account) != 29 or account[0] >> 4 not in (0xE, 0xF):
        raise ScriptContextError("a withdrawal's reward address is malformed")
    return constr(1 if account[0] >> 4 == 0xF else 0, account[1:])


def _sorted_withdrawals(body: Any) -> list[tuple[bytes, int]]:
    """Withdrawals in ledger order (script credentials before key credentials, then hash)."""
    items = [(bytes(account), int(amount)) for account, amount in (body.withdraws or {}).items()]
    return sorted(items, key=lambda kv: (kv[0][0] >> 4 != 0xF, kv[0][1:]))


def redeemers_of(witness: Any) -> list[tuple[int, int, Any, tuple[int, int]]]:
    """Every redeemer as ``(tag, index, data, (mem, steps))``, in ``(tag, index)`` order."""
    from pycardano.plutus import RedeemerMap

    found = []
    redeemers = witness.redeemer
    if isinstance(redeemers, (RedeemerMap, dict)):
        for key, value in redeemers.items():
            units = value.ex_units
            found.append((int(key.tag.value), key.index, value.data, (units.mem, units.steps)))
    else:
        for r in redeemers or []:
            units = r.ex_units
            budget = (units.mem, units.steps) if units is not None else (0, 0)
            found.append((int(r.tag.value), r.index, r.data, budget))
    return sorted(found, key=lambda r: (r[0], r[1]))


@dataclass(frozen=True)
class _Parts:
    """What a redeemer points at: its purpose as data, script info, and script hash."""

    purpose: Any
    info: Any
    script_hash: bytes


def _spend_parts(
    index: int, inputs: list[Any], resolved: Mapping[Any, Any], datums: Mapping[bytes, Any]
) -> _Parts:
    from pycardano.hash import ScriptHash

    if index >= len(inputs):
        raise ScriptContextError(f"spend redeemer {index} points past the {len(inputs)} inputs")
    tx_in = inputs[index]
    output = _resolved(tx_in, resolved)
    part = output.address.payment_part
    if not isinstance(part, ScriptHash):
        raise ScriptContextError(f"spend redeemer {index} points at an input locked by a key")
    if output.datum is not None:
        datum = just(as_data(output.datum))
    elif output.datum_hash is not None:
        found = datums.get(bytes(output.datum_hash.payload))
        if found is None:
            raise ScriptContextError(f"the datum of input {index} is not in the witness set")
        datum = just(found)
    else:
        datum = NOTHING
    ref = _ref_data(tx_in)
    return _Parts(constr(1, ref), constr(1, ref, datum), bytes(part.payload))


def _parts(
    tag: int,
    index: int,
    body: Any,
    inputs: list[Any],
    resolved: Mapping[Any, Any],
    datums: Mapping[bytes, Any],
) -> _Parts:
    if tag == SPEND:
        return _spend_parts(index, inputs, resolved, datums)
    if tag == MINT:
        policies = sorted(bytes(p.payload) for p in (body.mint or {}))
        if index >= len(policies):
            raise ScriptContextError(f"mint redeemer {index} points past the minted policies")
        policy = policies[index]
        return _Parts(constr(0, policy), constr(0, policy), policy)
    if tag == REWARD:
        accounts = _sorted_withdrawals(body)
        if index >= len(accounts):
            raise ScriptContextError(f"withdraw redeemer {index} points past the withdrawals")
        credential = _reward_credential(accounts[index][0])
        if credential.tag != 122:  # constr(1): a script credential
            raise ScriptContextError(f"withdraw redeemer {index} points at a key credential")
        return _Parts(constr(2, credential), constr(2, credential), accounts[index][0][1:])
    raise ScriptContextError(f"redeemers for {PURPOSE_NAMES.get(tag, tag)} are not translated")


def tx_id_of(tx: Any) -> bytes:
    """The transaction id PyCardano computes (blake2b-256 of its body's CBOR)."""
    return bytes(tx.transaction_body.id.payload)


def script_runs(
    tx: Any,
    resolved: Mapping[Any, Any],
    slot_to_posix_ms: Callable[[int], int],
    *,
    tx_id: bytes | None = None,
) -> list[ScriptRun]:
    """Every script execution ``tx`` asks for, each with the context derived from ``tx``.

    Args:
        tx: a :class:`pycardano.Transaction`.
        resolved: ``TransactionInput -> TransactionOutput`` for every input and reference
            input (what the ledger's UTxO holds for them).
        slot_to_posix_ms: the network's slot-to-time conversion (Shelley genesis
            ``systemStart`` and ``slotLength``), for the validity interval.
        tx_id: the id over the body's bytes as sent (default: PyCardano's re-encoding).

    Raises:
        ScriptContextError: an input is not resolved, a redeemer points nowhere or at a
            key-locked input, or the transaction has certificates, votes or proposals.
    """
    body, witness = tx.transaction_body, tx.transaction_witness_set
    redeemers = redeemers_of(witness)
    if not redeemers:
        return []
    if body.certificates or body.voting_procedures or body.proposal_procedures:
        raise ScriptContextError("certificates, votes and proposals are not translated")
    inputs = sorted(body.inputs, key=_ref_key)
    datums = {datum_hash_of(d): as_data(d) for d in (witness.plutus_data or [])}
    parts = [_parts(tag, i, body, inputs, resolved, datums) for tag, i, _, _ in redeemers]
    info = _tx_info(
        body, inputs, resolved, redeemers, parts, datums, slot_to_posix_ms, tx_id or tx_id_of(tx)
    )
    runs = []
    for (tag, index, data, budget), part in zip(redeemers, parts, strict=True):
        context = cbor2.dumps(constr(0, info, as_data(data), part.info))
        runs.append(ScriptRun(tag, index, part.script_hash, as_data(data), budget, context))
    return runs


def _tx_info(
    body: Any,
    inputs: list[Any],
    resolved: Mapping[Any, Any],
    redeemers: list[tuple[int, int, Any, tuple[int, int]]],
    parts: list[_Parts],
    datums: Mapping[bytes, Any],
    slot_to_posix_ms: Callable[[int], int],
    tx_id: bytes,
) -> Any:
    """``TxInfo`` (V3): the sixteen fields."""
    references = sorted(body.reference_inputs or [], key=_ref_key)
    mint = body.mint
    withdrawals = {
        _reward_credential(account): amount for account, amount in _sorted_withdrawals(body)
    }
    signers = sorted(bytes(k.payload) for k in (body.required_signers or []))
    return constr(
        0,
        [constr(0, _ref_data(i), tx_out_data(_resolved(i, resolved))) for i in inputs],
        [constr(0, _ref_data(i), tx_out_data(_resolved(i, resolved))) for i in references],
        [tx_out_data(o) for o in body.outputs],
        int(body.fee),
        value_data(0, mint, with_ada=False) if mint else {},
        [],  # certificates (refused above when scripts run)
        withdrawals,
        validity_data(body, slot_to_posix_ms),
        signers,
        {part.purpose: as_data(r[2]) for r, part in zip(redeemers, parts, strict=True)},
        dict(sorted(datums.items())),
        tx_id,
        {},  # votes
        [],  # proposal procedures
        NOTHING if body.current_treasury_value is None else just(body.current_treasury_value),
        NOTHING if body.donation is None else just(body.donation),
    )


def run_script(
    compiled: bytes, context: bytes, budget: tuple[int, int] | None = None
) -> Evaluation:
    """Run a compiled Plutus V3 script (CBOR-wrapped flat, as in a witness set) on ``context``.

    Args:
        compiled: the script bytes whose ``blake2b_224(0x03 || compiled)`` is its hash.
        context: the CBOR ``ScriptContext``.
        budget: ``(memory, cpu)`` the script may spend (its redeemer's execution units);
            None: uplc's default budget. Spending more fails the script, as on a node.

    Raises:
        EscrowError: ``compiled`` is not a flat-encoded script, or uplc is missing.
    """
    uplc = _uplc()
    from uplc.cost_model import Budget

    with _deep_recursion():
        try:
            program = uplc.tools.unflatten(compiled)
        except Exception as exc:
            raise EscrowError(f"not a flat-encoded Plutus script ({type(exc).__name__})") from None
        args: dict[str, Any] = {}
        if budget is not None:
            args["budget"] = Budget(cpu=budget[1], memory=budget[0])
        try:
            result = uplc.tools.eval(program, uplc.ast.data_from_cbor(context), **args)
        except RuntimeError as exc:  # uplc raises, not returns, when the budget runs out
            return Evaluation(False, f"RuntimeError: {exc}", (), 0, 0)
    failed = isinstance(result.result, Exception)
    return Evaluation(
        accepted=not failed,
        error=f"{type(result.result).__name__}: {result.result}" if failed else None,
        logs=tuple(result.logs),
        cpu=result.cost.cpu,
        memory=result.cost.memory,
    )
