"""The compiled escrow validator: one script per session, its datum, redeemers and evaluation.

``contract/escrow.py`` is the OpShin source; ``contract/plutus.json`` the CIP-57 blueprint it
compiles to, still waiting for its one parameter (``python -m zkadapt.escrow.blueprint``,
Plutus V3), committed so that using the escrow needs no compiler. :class:`EscrowScript`
applies a session id to it: every session gets its own script hash and address.
:meth:`EscrowScript.evaluate` runs the script on a script context with the ``uplc`` CEK
machine and the Plutus V3 cost model, as a node would in phase 2; :meth:`EscrowScript.explain`
runs the traced build (``plutus-traced.json``) to say why a context is rejected.

:class:`EscrowPool` describes one session's pool at its address; :func:`settlement_tx`
builds the transaction that pays what the pure rules (:mod:`zkadapt.escrow.rules`) computed,
every payout tagged with the pool's out-ref (the contract's defence against double
satisfaction), and :func:`redeemer_for` the redeemer that justifies it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import cbor2

from zkadapt.errors import ZkAdaptError
from zkadapt.escrow.blueprint import CONTRACT_DIR
from zkadapt.escrow.rules import Settlement
from zkadapt.escrow.script_context import (
    ALWAYS,
    SpendInput,
    Transaction,
    constr,
    key_address,
    script_address,
    tx_out,
    tx_out_ref,
)

BLUEPRINT = CONTRACT_DIR / "plutus.json"
TRACED_BLUEPRINT = CONTRACT_DIR / "plutus-traced.json"
#: Script language tag prefixed before hashing (Conway: 3 = Plutus V3).
PLUTUS_V3_TAG = b"\x03"
#: Python recursion depth uplc needs for this script (its default of 1000 is too low).
RECURSION_LIMIT = 20_000
#: Domain tag that starts a kill vote's signed message (``contract/escrow.py``).
KILL_DOMAIN = b"zkadapt/escrow/kill/v1"
SESSION_BYTES = 32
#: A placeholder out-ref for a pool described before it is locked (tests, examples).
EXAMPLE_REF = tx_out_ref(b"\x22" * 32, 0)
KEY_HASH_BYTES = 28


class EscrowError(ZkAdaptError):
    """The escrow contract cannot be loaded, applied or evaluated, or a spend is unjustified."""


@dataclass(frozen=True)
class Evaluation:
    """The outcome of running the validator once.

    Attributes:
        accepted: the script returned without error (phase-2 validation passes).
        error: why it failed (the OpShin assertion message is in ``logs`` of the traced
            build), else None.
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


@lru_cache(maxsize=4)
def _blueprint(path: Path) -> tuple[bytes, str | None]:
    """The unapplied compiled code of a one-parameter Plutus V3 blueprint, and its hash."""
    try:
        document = json.loads(path.read_text())
        (validator,) = document["validators"]
        compiled = bytes.fromhex(validator["compiledCode"])
        version = document["preamble"]["plutusVersion"]
        (parameter,) = validator["parameters"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EscrowError(f"{path}: not a one-parameter, one-validator blueprint ({exc})") from None
    if version != "v3":
        raise EscrowError(f"{path}: expected a Plutus V3 script, got {version!r}")
    if parameter.get("schema") != {"dataType": "bytes"}:
        raise EscrowError(f"{path}: the parameter must be the session id (bytes)")
    return compiled, validator.get("hash")


@lru_cache(maxsize=4)
def _unapplied_program(path: Path) -> Any:
    from uplc.tools import unflatten

    with _deep_recursion():
        return unflatten(_blueprint(path)[0])


def _uplc() -> Any:
    try:
        import uplc.ast
        import uplc.tools
    except ImportError:  # pragma: no cover - uplc is in the cardano extra
        raise EscrowError("the escrow script needs uplc (zkadapt[cardano])") from None
    return uplc


def plutus_v3_hash(compiled: bytes) -> bytes:
    """blake2b-224 of ``0x03 || script`` (the script credential, CIP-19)."""
    return hashlib.blake2b(PLUTUS_V3_TAG + compiled, digest_size=28).digest()


class EscrowScript:
    """The escrow validator of one session: the committed blueprint with the session applied.

    Args:
        session: the 32-byte session id (its parameter).
        blueprint: the unapplied blueprint (the traced build to explain rejections).

    Raises:
        EscrowError: a bad session id or blueprint, or uplc is missing.
    """

    def __init__(self, session: bytes, blueprint: Path = BLUEPRINT) -> None:
        if not isinstance(session, bytes) or len(session) != SESSION_BYTES:
            raise EscrowError("the session id must be 32 bytes")
        self.session = session
        self.blueprint = blueprint
        self.unapplied, self.blueprint_hash = _blueprint(blueprint)
        self.plutus_version = "v3"

    @cached_property
    def _program(self) -> Any:
        """The unapplied program applied to the session id (a ``bytes`` Plutus datum)."""
        uplc = _uplc()
        base = _unapplied_program(self.blueprint)
        applied = uplc.ast.Apply(base.term, uplc.ast.PlutusByteString(self.session))
        return uplc.ast.Program(base.version, applied)

    @cached_property
    def compiled(self) -> bytes:
        """The session's script as it goes on chain (CBOR-wrapped flat UPLC)."""
        uplc = _uplc()
        with _deep_recursion():
            return uplc.tools.flatten(self._program)

    @property
    def script_hash(self) -> bytes:
        """The session's script credential: its address differs from every other session's."""
        return plutus_v3_hash(self.compiled)

    def evaluate(self, context: bytes) -> Evaluation:
        """Run the validator on a script context (CBOR Plutus data)."""
        uplc = _uplc()
        with _deep_recursion():
            result = uplc.tools.eval(self._program, uplc.ast.data_from_cbor(context))
        failed = isinstance(result.result, Exception)
        return Evaluation(
            accepted=not failed,
            error=f"{type(result.result).__name__}: {result.result}" if failed else None,
            logs=tuple(result.logs),
            cpu=result.cost.cpu,
            memory=result.cost.memory,
        )

    @cached_property
    def traced(self) -> EscrowScript:
        """The same validator built with its trace messages (never put on chain)."""
        return EscrowScript(self.session, TRACED_BLUEPRINT)

    def explain(self, context: bytes) -> Evaluation:
        """Evaluate with the traced build: a rejection's ``logs`` hold the contract's reason."""
        return self.traced.evaluate(context)


def escrow_datum(
    parties: Sequence[bytes], deposit: int, rounds: int, deadline: int
) -> cbor2.CBORTag:
    """``EscrowDatum(parties, deposit, rounds, deadline)``: constructor 0.

    Args:
        parties: payment key hashes, in party name order.
        deposit: lovelace each party locked.
        rounds: rounds of the session (a kill vote names one of them).
        deadline: POSIX time in milliseconds: slashing before, refunds from then on.
    """
    return constr(0, list(parties), deposit, rounds, deadline)


CLAIM = constr(0)
REFUND = constr(2)


def kill_message(session: bytes, round_: int, victim: bytes) -> bytes:
    """What a kill vote signs: ``KILL_DOMAIN || session || round (8 bytes BE) || victim``.

    Every part has a fixed length, so the message names one session, round and victim.

    Raises:
        ValueError: a field has the wrong length or the round is out of range.
    """
    if len(session) != SESSION_BYTES or len(victim) != KEY_HASH_BYTES:
        raise ValueError("session must be 32 bytes and victim a 28-byte key hash")
    if not 0 <= round_ < 2**64:
        raise ValueError("round must fit in 8 bytes")
    return KILL_DOMAIN + session + round_.to_bytes(8, "big") + victim


@dataclass(frozen=True)
class SignedKillVote:
    """A party's kill vote, signed with its payment key for the layer-1 ``Slash``.

    Attributes:
        voter: the voting party's name.
        target: the party to slash.
        round: the round the voter says the target missed.
        vkey: the voter's 32-byte Ed25519 payment verification key.
        signature: Ed25519 over :func:`kill_message` (session, round, target's key hash).
    """

    voter: str
    target: str
    round: int
    vkey: bytes
    signature: bytes

    def verify(self, session: bytes, voter_key_hash: bytes, victim: bytes) -> bool:
        """What the validator checks of this vote: the key is the voter's, the signature good.

        Args:
            voter_key_hash: the voter's payment key hash (its datum entry).
            victim: the target's payment key hash.
        """
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        if hashlib.blake2b(self.vkey, digest_size=28).digest() != voter_key_hash:
            return False
        try:
            VerifyKey(self.vkey).verify(kill_message(session, self.round, victim), self.signature)
        except (BadSignatureError, ValueError):
            return False
        return True


def sign_kill_vote(
    signing_key: Any, *, session: bytes, voter: str, target: str, victim: bytes, round_: int
) -> SignedKillVote:
    """Sign a kill vote with a PyCardano payment signing key (plain or extended).

    Args:
        victim: the target's payment key hash (its entry in the datum).
    """
    vkey = signing_key.to_verification_key()
    if hasattr(vkey, "to_non_extended"):
        vkey = vkey.to_non_extended()
    signature = signing_key.sign(kill_message(session, round_, victim))
    return SignedKillVote(voter, target, round_, bytes(vkey.payload), signature)


def slash(evidence: Sequence[tuple[int, Sequence[tuple[int, int, bytes, bytes]]]]) -> cbor2.CBORTag:
    """``Slash(evidence)``: for each target index, its votes ``(voter, round, vkey, sig)``."""
    return constr(
        1,
        [
            constr(0, target, [constr(0, v, r, vkey, sig) for v, r, vkey, sig in votes])
            for target, votes in evidence
        ],
    )


def redeemer_for(settlement: Settlement, votes: Iterable[SignedKillVote] = ()) -> cbor2.CBORTag:
    """The redeemer that spends the escrow as ``settlement`` says.

    A completed settlement with nobody slashed is a :data:`CLAIM`; otherwise a ``Slash``
    whose evidence holds, for each slashed party, the signed ``votes`` against it from
    distinct other depositors (one per voter, the first given), voters in datum order.

    Raises:
        EscrowError: the settlement is pending, or a slashed party lacks signed votes from a
            strict majority of the other depositors.
    """
    if not settlement.final:
        raise EscrowError("the settlement is pending: nothing can be claimed yet")
    if not settlement.slashed:
        return CLAIM
    members = settlement.depositors
    chosen: dict[str, dict[str, SignedKillVote]] = {t: {} for t in settlement.slashed}
    for vote in votes:
        if vote.target in chosen and vote.voter in members and vote.voter != vote.target:
            chosen[vote.target].setdefault(vote.voter, vote)
    evidence = []
    for target in settlement.slashed:
        against = chosen[target]
        if not 2 * len(against) > len(members) - 1:
            raise EscrowError(
                f"slashing {target} needs signed votes from more than {(len(members) - 1) / 2}"
                f" other depositors, got {len(against)}"
            )
        ordered = sorted(against.values(), key=lambda v: members.index(v.voter))
        evidence.append(
            (
                members.index(target),
                [(members.index(v.voter), v.round, v.vkey, v.signature) for v in ordered],
            )
        )
    return slash(evidence)


@dataclass(frozen=True)
class EscrowPool:
    """One session's pooled deposits: one output at the session's script address.

    Attributes:
        script: the session's validator.
        members: depositor name -> payment key hash; the datum lists them in name order.
        deposit: lovelace each depositor locked (the pool holds ``len(members) * deposit``).
        rounds: rounds of the session.
        deadline: POSIX milliseconds: slashing before, refunds from then on.
        ref: where the pool is (its ``TxOutRef``), the tag every payout carries.
    """

    script: EscrowScript
    members: Mapping[str, bytes]
    deposit: int
    rounds: int
    deadline: int
    ref: cbor2.CBORTag = EXAMPLE_REF

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.members))

    def datum(self) -> cbor2.CBORTag:
        parties = [self.members[n] for n in self.names]
        return escrow_datum(parties, self.deposit, self.rounds, self.deadline)

    def spend(self, redeemer: object, datum: object | None = None) -> SpendInput:
        """The pool as a transaction input spent with ``redeemer`` (and maybe a wrong datum)."""
        datum = self.datum() if datum is None else datum
        pool = tx_out(
            script_address(self.script.script_hash), self.deposit * len(self.names), datum
        )
        return SpendInput(self.ref, pool, redeemer=redeemer, datum=datum)

    def payouts(self, paid: Mapping[str, int], tag: object | None = None) -> list[cbor2.CBORTag]:
        """One output per paid member, tagged with the pool's out-ref (or ``tag``)."""
        tag = self.ref if tag is None else tag
        return [
            tx_out(key_address(self.members[n]), paid[n], tag) for n in self.names if paid.get(n)
        ]


def settlement_tx(
    pool: EscrowPool,
    redeemer: object,
    paid: Mapping[str, int],
    *,
    signers: Iterable[str] = (),
    validity: cbor2.CBORTag = ALWAYS,
) -> Transaction:
    """The transaction that spends ``pool`` alone and pays ``paid`` (lovelace per member).

    Args:
        signers: members whose keys sign the transaction (a claim needs all of them).
        validity: the transaction's validity range (POSIX milliseconds).
    """
    return Transaction(
        inputs=[pool.spend(redeemer)],
        outputs=pool.payouts(paid),
        signatories=[pool.members[n] for n in signers],
        validity=validity,
    )
