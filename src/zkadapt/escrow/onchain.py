"""The compiled escrow validator: its blueprint, datums, redeemers and evaluation with uplc.

``contract/escrow.py`` is the OpShin source; ``contract/plutus.json`` the CIP-57 blueprint it
compiles to (``opshin build contract/escrow.py``, Plutus V3), committed so that using the
escrow needs no compiler. :meth:`EscrowScript.evaluate` runs the script on a script context
with the ``uplc`` CEK machine and the Plutus V3 cost model, as a node would in phase 2.
The settlement transaction the validator accepts is the one the pure rules
(:mod:`zkadapt.escrow.rules`) describe: :func:`settlement_context` builds it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cbor2

from zkadapt.errors import ZkAdaptError
from zkadapt.escrow.rules import Settlement
from zkadapt.escrow.script_context import (
    SpendInput,
    constr,
    key_address,
    script_address,
    spending_context,
    tx_out,
    tx_out_ref,
)

CONTRACT_DIR = Path(__file__).resolve().parent / "contract"
BLUEPRINT = CONTRACT_DIR / "plutus.json"
SOURCE = CONTRACT_DIR / "escrow.py"
#: Script language tag prefixed before hashing (Conway: 3 = Plutus V3).
PLUTUS_V3_TAG = b"\x03"
#: Python recursion depth uplc needs for this script (its default of 1000 is too low).
RECURSION_LIMIT = 20_000


class EscrowError(ZkAdaptError):
    """The escrow contract cannot be loaded or evaluated."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of running the validator once.

    Attributes:
        accepted: the script returned without error (phase-2 validation passes).
        error: why it failed (the OpShin assertion message is in ``logs``), else None.
        logs: trace messages.
        cpu: CPU steps spent (Plutus V3 cost model).
        memory: memory units spent.
    """

    accepted: bool
    error: str | None
    logs: tuple[str, ...]
    cpu: int
    memory: int


@contextmanager
def _deep_recursion(limit: int = RECURSION_LIMIT) -> Iterator[None]:
    """uplc walks the AST recursively; raise Python's limit for the call, then restore it."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def escrow_datum(session: bytes, parties: list[bytes], deposit: int) -> cbor2.CBORTag:
    """``EscrowDatum(session, parties, deposit)``: constructor 0."""
    return constr(0, session, list(parties), deposit)


CLAIM = constr(0)


def slash(targets: list[int]) -> cbor2.CBORTag:
    """``Slash(targets)``: constructor 1 with the slashed parties' indices."""
    return constr(1, list(targets))


class EscrowScript:
    """The committed Plutus V3 escrow validator."""

    def __init__(self, blueprint: Path = BLUEPRINT) -> None:
        try:
            document = json.loads(blueprint.read_text())
            (validator,) = document["validators"]
            self.compiled = bytes.fromhex(validator["compiledCode"])
            self.blueprint_hash = validator.get("hash")
            self.plutus_version = document["preamble"]["plutusVersion"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EscrowError(f"{blueprint}: not a single-validator blueprint ({exc})") from None
        if self.plutus_version != "v3":
            raise EscrowError(f"{blueprint}: expected a Plutus V3 script")

    @property
    def script_hash(self) -> bytes:
        """blake2b-224 of ``0x03 || script`` (the script credential, CIP-19)."""
        return hashlib.blake2b(PLUTUS_V3_TAG + self.compiled, digest_size=28).digest()

    @cached_property
    def _program(self) -> object:
        from uplc.tools import unflatten

        with _deep_recursion():
            return unflatten(self.compiled)

    def evaluate(self, context: bytes) -> Evaluation:
        """Run the validator on a script context (CBOR Plutus data).

        Raises:
            EscrowError: ``uplc`` is not installed (``pip install zkadapt[cardano]``).
        """
        try:
            from uplc.ast import data_from_cbor
            from uplc.tools import eval as uplc_eval
        except ImportError:  # pragma: no cover - uplc is in the cardano extra
            raise EscrowError("evaluating the escrow needs uplc (zkadapt[cardano])") from None
        with _deep_recursion():
            result = uplc_eval(self._program, data_from_cbor(context))
        failed = isinstance(result.result, Exception)
        return Evaluation(
            accepted=not failed,
            error=f"{type(result.result).__name__}: {result.result}" if failed else None,
            logs=tuple(result.logs),
            cpu=result.cost.cpu,
            memory=result.cost.memory,
        )


def settlement_context(
    script: EscrowScript,
    *,
    session: bytes,
    members: dict[str, bytes],
    deposit: int,
    redeemer: cbor2.CBORTag,
    paid: dict[str, int],
    signers: list[str],
    datum: object | None = None,
) -> bytes:
    """A script context spending the escrow pool (``len(members) * deposit``).

    Args:
        members: depositor name -> payment key hash, the datum's order is name order.
        redeemer: :data:`CLAIM` or :func:`slash`.
        paid: lovelace paid to each member's key address by the transaction.
        signers: members whose keys sign the transaction.
        datum: override the datum (to test a wrong one).
    """
    names = sorted(members)
    if datum is None:
        datum = escrow_datum(session, [members[n] for n in names], deposit)
    own = SpendInput(
        tx_out_ref(b"\x22" * 32, 0),
        tx_out(script_address(script.script_hash), deposit * len(names), datum),
    )
    outputs = [tx_out(key_address(members[n]), paid[n]) for n in names if paid.get(n)]
    return spending_context(
        own=own,
        datum=datum,
        redeemer=redeemer,
        outputs=outputs,
        signatories=[members[n] for n in signers],
    )


def redeemer_for(settlement: Settlement) -> cbor2.CBORTag:
    """The redeemer that spends the escrow as ``settlement`` says.

    Raises:
        EscrowError: the settlement is still pending.
    """
    if not settlement.final:
        raise EscrowError("the settlement is pending: nothing can be claimed yet")
    if not settlement.slashed:
        return CLAIM
    return slash([settlement.depositors.index(p) for p in settlement.slashed])
