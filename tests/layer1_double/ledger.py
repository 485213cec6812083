"""The layer-1 ledger double: a UTxO set that validates every transaction it is sent.

A transaction arrives as CBOR (Ogmios ``submitTransaction``), is decoded with PyCardano, its
id taken over the body bytes as sent, and judged by the phase-1 rules
(:mod:`tests.layer1_double.rules`) and then phase 2: every redeemer's Plutus V3 script runs
with ``uplc`` on the script context derived from the transaction itself
(:func:`zkadapt.escrow.tx_context.script_runs`), within the redeemer's declared budget. A
script failure is Ogmios' 3136 (``SpendsMismatch``: submitted as valid, fails in phase 2),
with the script's error and traces as the reason. Only then are the inputs spent and the
outputs added. Rejections are kept in :attr:`Ledger.rejections` for tests.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pycardano import (
    Address,
    Network,
    Transaction,
    TransactionId,
    TransactionInput,
    TransactionOutput,
    Value,
)

from tests.layer1_double.network import (
    Fees,
    SlotClock,
    era_summaries,
    protocol_parameters,
    shelley_genesis,
)
from tests.layer1_double.ogmios_json import LOVELACE, bag_of, ref_text
from tests.layer1_double.rules import Candidate, Rejected, phase_one, scripts_available
from zkadapt.channel.hydra.cbor import blake2b_256, split_array
from zkadapt.escrow.onchain import EscrowError, Evaluation
from zkadapt.escrow.tx_context import ScriptContextError, ScriptRun, run_script, script_runs

#: How far past the tip the era summary's end (the forecast horizon) lies, in slots.
HORIZON_SLOTS = 3 * 432 * 20
#: Ogmios' message for a script that fails (3012).
VALIDATION_FAILURE = "Some of the scripts failed to evaluate to a positive outcome."
#: Longest script error text kept in a rejection's message.
REASON_CHARS = 400


@dataclass(frozen=True)
class Evaluated:
    """One script run of :meth:`Ledger.evaluate`: what ran and how it went."""

    run: ScriptRun
    result: Evaluation


class Ledger:
    """A Conway-era UTxO ledger with a clock, for one network.

    Args:
        network: ``preprod``, ``preview`` or ``mainnet`` (address network and genesis magic).
        params: protocol parameters in Ogmios form (default:
            :func:`~tests.layer1_double.network.protocol_parameters`).
        clock: the slot clock (default: wall clock from the genesis start).
    """

    def __init__(
        self,
        network: str = "preprod",
        *,
        params: dict[str, Any] | None = None,
        clock: SlotClock | None = None,
    ) -> None:
        self.network_name = network
        self.network = Network.MAINNET if network == "mainnet" else Network.TESTNET
        self.params = params or protocol_parameters()
        self.fees = Fees.of(self.params)
        self.clock = clock or SlotClock()
        self.genesis = shelley_genesis(network, self.clock, self.params)
        self.utxo: dict[TransactionInput, TransactionOutput] = {}
        self.spent: dict[TransactionInput, str] = {}
        self.applied: dict[str, Transaction] = {}
        self.rejections: list[Rejected] = []
        self.observers: list[Callable[[str], None]] = []
        self._funded = 0
        self._tip = b"\x00" * 32
        #: One block per applied transaction, in order: (block id hex, slot, tx id hex); a
        #: block's id is the tip after it (what ``tip()`` names), for Ogmios chain-sync.
        self.blocks: list[tuple[str, int, str]] = []
        self._lock = threading.RLock()

    # ---- time ----------------------------------------------------------------------------

    @property
    def slot(self) -> int:
        """The current slot."""
        return self.clock.slot

    def advance(self, seconds: float) -> int:
        """Let ``seconds`` pass; returns the new slot."""
        with self._lock:
            return self.clock.advance(seconds)

    def set_slot(self, slot: int) -> None:
        """Make ``slot`` the current slot (time then stands still until moved)."""
        with self._lock:
            self.clock.set_slot(slot)

    def slot_to_posix_ms(self, slot: int) -> int:
        return self.clock.slot_to_posix_ms(slot)

    def posix_ms_to_slot(self, ms: int) -> int:
        return self.clock.posix_ms_to_slot(ms)

    def tip(self) -> dict[str, Any]:
        """``Point``: the current slot and the id of the last block (a hash of the history)."""
        return {"slot": self.slot, "id": self._tip.hex()}

    def era_summaries(self) -> list[dict[str, Any]]:
        return era_summaries(self.clock, self.slot + HORIZON_SLOTS)

    # ---- the Python API for tests ----------------------------------------------------------

    def fund(
        self,
        address: str | Address,
        lovelace: int,
        *,
        assets: Any = None,
        datum: Any = None,
        script: Any = None,
    ) -> TransactionInput:
        """Create an output at ``address`` out of thin air (a faucet); returns its out-ref."""
        with self._lock:
            self._funded += 1
            tx_id = hashlib.sha256(f"layer1-double-faucet:{self._funded}".encode()).digest()
            ref = TransactionInput(TransactionId(tx_id), 0)
            addr = Address.from_primitive(address) if isinstance(address, str) else address
            amount = Value(lovelace, assets) if assets else lovelace
            self.utxo[ref] = TransactionOutput(addr, amount, datum=datum, script=script)
            return ref

    def utxos_at(self, address: str | Address) -> dict[TransactionInput, TransactionOutput]:
        """Unspent outputs at ``address``."""
        text = address if isinstance(address, str) else address.encode()
        with self._lock:
            return {r: o for r, o in self.utxo.items() if o.address.encode() == text}

    def lookup(self, refs: Iterable[TransactionInput]) -> dict[TransactionInput, TransactionOutput]:
        """The unspent outputs among ``refs``."""
        with self._lock:
            return {r: self.utxo[r] for r in refs if r in self.utxo}

    def balance(self, address: str | Address) -> int:
        """Lovelace held at ``address``."""
        return sum(bag_of(o.amount)[LOVELACE] for o in self.utxos_at(address).values())

    # ---- submission and evaluation -----------------------------------------------------------

    def decode(self, cbor: bytes) -> tuple[Transaction, bytes]:
        """The transaction and its id (over the body bytes as sent).

        Raises:
            Rejected: -32602, the bytes are not a Conway transaction.
        """
        try:
            parts = split_array(cbor)
            if len(parts) != 4:
                raise ValueError("a transaction is a 4-element array")
            tx = Transaction.from_cbor(cbor)
        except Exception as exc:  # PyCardano raises many kinds on bad bytes
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            raise Rejected(
                -32602,
                "Invalid transaction; It looks like the given transaction wasn't well-formed.",
                {"conway": reason},
            ) from None
        return tx, blake2b_256(parts[0])

    def _candidate(
        self,
        tx: Transaction,
        tx_id: bytes,
        size: int,
        extra: dict[TransactionInput, TransactionOutput] | None = None,
    ) -> Candidate:
        return Candidate(
            tx=tx,
            tx_id=tx_id,
            size=size,
            resolved={**(extra or {}), **self.utxo},
            spent_by=dict(self.spent),
            slot=self.slot,
            network=self.network,
        )

    def submit(self, cbor: bytes) -> str:
        """Validate and apply a signed transaction; returns its id.

        Raises:
            Rejected: the first rule it breaks, as Ogmios reports it.
        """
        with self._lock:
            try:
                tx, tx_id = self.decode(cbor)
                candidate = self._candidate(tx, tx_id, len(cbor))
                phase_one(candidate, self.params, self.fees)
                self._phase_two(candidate)
            except Rejected as exc:
                self.rejections.append(exc)
                raise
            return self._apply(tx, tx_id)

    def _runs(self, c: Candidate) -> list[ScriptRun]:
        try:
            return script_runs(c.tx, c.resolved, self.slot_to_posix_ms, tx_id=c.tx_id)
        except ScriptContextError as exc:
            raise Rejected(
                3997,
                "The transaction couldn't be added to the mempool. A justification is given "
                "as 'data.error'.",
                {"error": f"no script context: {exc}"},
            ) from None

    def _phase_two(self, c: Candidate) -> None:
        runs = self._runs(c)
        scripts = scripts_available(c)
        for run in runs:
            result = _run(scripts[run.script_hash], run, run.budget)
            if not result.accepted:
                reason = (result.error or "failed")[:REASON_CHARS]
                traces = " | ".join(result.logs)[:REASON_CHARS]
                raise Rejected(
                    3136,
                    f"The {run.purpose} script at index {run.index} failed: {reason}"
                    + (f" (traces: {traces})" if traces else ""),
                    {"declaredSpending": "inputs", "mismatchReason": f"{reason}; traces: {traces}"},
                )

    def _apply(self, tx: Transaction, tx_id: bytes) -> str:
        hex_id = tx_id.hex()
        body = tx.transaction_body
        for ref in body.inputs:
            del self.utxo[ref]
            self.spent[ref] = hex_id
        for index, output in enumerate(body.outputs):
            self.utxo[TransactionInput(TransactionId(tx_id), index)] = output
        self.applied[hex_id] = tx
        self._tip = blake2b_256(self._tip + tx_id)
        self.blocks.append((self._tip.hex(), self.slot, hex_id))
        for observer in self.observers:
            observer(hex_id)
        return hex_id

    def apply_trusted(self, tx: Transaction) -> str:
        """Apply ``tx`` without judging it; returns its id (over its body as PyCardano
        encodes it).

        For the transactions a double plays on behalf of scripts the ledger does not model
        (the Hydra head's increment and fanout, :mod:`tests.layer1_double.hydra`): its
        inputs must be unspent, nothing else is checked; it is recorded like any other
        (``spent``, ``applied``, observers).

        Raises:
            Rejected: 3117 (``unknownOutputReferences``), an input is not unspent.
        """
        with self._lock:
            body = tx.transaction_body
            unknown = [ref for ref in body.inputs if ref not in self.utxo]
            if unknown:
                from tests.layer1_double.ogmios_json import ref_json

                raise Rejected(
                    3117,
                    "The transaction contains unknown UTxO references as inputs.",
                    {"unknownOutputReferences": [ref_json(r) for r in unknown]},
                )
            return self._apply(tx, blake2b_256(body.to_cbor()))

    def evaluate(
        self, cbor: bytes, additional: dict[TransactionInput, TransactionOutput] | None = None
    ) -> list[Evaluated]:
        """Run every script of a transaction with the maximum budget (Ogmios
        ``evaluateTransaction``); nothing is applied.

        Raises:
            Rejected: 3004 (an input is unknown, no context can be made), 3010 (a script
                failed or is missing), -32602 (not a transaction).
        """
        with self._lock:
            tx, tx_id = self.decode(cbor)
            overlap = [r for r in (additional or {}) if r in self.utxo]
            if overlap:
                from tests.layer1_double.ogmios_json import ref_json

                raise Rejected(
                    3002,
                    "Some output references in the additional UTxO set overlap with the ledger.",
                    {"overlappingOutputReferences": [ref_json(r) for r in overlap]},
                )
            c = self._candidate(tx, tx_id, len(cbor), additional)
            body = tx.transaction_body
            unknown = [
                r for r in [*body.inputs, *(body.reference_inputs or [])] if r not in c.resolved
            ]
            if unknown:
                raise Rejected(
                    3004,
                    "Unable to create the evaluation context from the given transaction.",
                    {"reason": f"unknown input {ref_text(unknown[0])}"},
                )
            try:
                runs = script_runs(tx, c.resolved, self.slot_to_posix_ms, tx_id=tx_id)
            except ScriptContextError as exc:
                raise Rejected(
                    3004,
                    "Unable to create the evaluation context from the given transaction.",
                    {"reason": str(exc)},
                ) from None
            limit = self.params["maxExecutionUnitsPerTransaction"]
            scripts = scripts_available(c)
            results, failures = [], []
            for run in runs:
                pointer = {"purpose": run.purpose, "index": run.index}
                script = scripts.get(run.script_hash)
                if script is None:
                    failures.append(
                        {
                            "validator": pointer,
                            "error": {
                                "code": 3011,
                                "message": "An associated script witness is missing.",
                                "data": {"missingScripts": [pointer]},
                            },
                        }
                    )
                    continue
                result = _run(script, run, (limit["memory"], limit["cpu"]))
                if not result.accepted:
                    failures.append(
                        {
                            "validator": pointer,
                            "error": {
                                "code": 3012,
                                "message": "Some scripts failed to evaluate positively.",
                                "data": {
                                    "validationError": (result.error or "failed")[:REASON_CHARS],
                                    "traces": list(result.logs),
                                },
                            },
                        }
                    )
                results.append(Evaluated(run, result))
            if failures:
                raise Rejected(
                    3010, "Some scripts of the transactions terminated with error(s).", failures
                )
            return results


def _run(script: Any, run: ScriptRun, budget: tuple[int, int]) -> Evaluation:
    try:
        return run_script(bytes(script), run.context, budget)
    except EscrowError as exc:
        return Evaluation(False, str(exc), (), 0, 0)
