"""The compiled escrow validator: one script per session, its datum, redeemers and evaluation.

``contract/escrow.py`` is the OpShin source; ``contract/plutus.json`` the CIP-57 blueprint it
compiles to, still waiting for its one parameter (``python -m zkadapt.escrow.blueprint``,
Plutus V3), committed so that using the escrow needs no compiler. :class:`EscrowScript`
applies a session id to it: every session gets its own script hash and address.
:meth:`EscrowScript.evaluate` runs the script on a script context with the ``uplc`` CEK
machine and the Plutus V3 cost model, as a node would in phase 2; :meth:`EscrowScript.explain`
runs the traced build (``plutus-traced.json``) to say why a context is rejected.

:class:`EscrowLock` describes one party's lock at the session's address, :func:`redeemer_for`
the redeemer that settles it as the pure rules (:mod:`zkadapt.escrow.rules`) say, and
:func:`settlement_tx` a transaction description (``script_context.Transaction``) that pays
it, every payout tagged with the lock's out-ref (the contract's defence against double
satisfaction). The layer-1 transactions themselves are built in :mod:`zkadapt.escrow.txs`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import cbor2

from zkadapt.errors import ZkAdaptError
from zkadapt.escrow.blueprint import CONTRACT_DIR
from zkadapt.escrow.rules import (
    MIN_KILL_VOTES,
    Settlement,
    enough_to_slash,
    lock_payouts,
    majority,
)
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
from zkadapt.escrow.votes import SignedKillVote, SignedReleaseVote

BLUEPRINT = CONTRACT_DIR / "plutus.json"
TRACED_BLUEPRINT = CONTRACT_DIR / "plutus-traced.json"
#: Script language tag prefixed before hashing (Conway: 3 = Plutus V3).
PLUTUS_V3_TAG = b"\x03"
#: Python recursion depth uplc needs for this script (its default of 1000 is too low).
RECURSION_LIMIT = 20_000
SESSION_BYTES = 32
#: A placeholder out-ref for a lock described before it is on chain (tests, examples).
EXAMPLE_REF = tx_out_ref(b"\x22" * 32, 0)


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


_RECURSION = threading.Lock()
_raised: list[int] = []  # the limit before the first caller raised it, once per caller inside


@contextmanager
def _deep_recursion(limit: int = RECURSION_LIMIT) -> Iterator[None]:
    """uplc walks the AST recursively; raise Python's limit for the call, then restore it.

    The limit is process-wide: with two threads evaluating at once, the first to finish used
    to restore the low limit under the other (a RecursionError there), so it is restored
    only when the last caller leaves.
    """
    with _RECURSION:
        previous = sys.getrecursionlimit()
        _raised.append(_raised[0] if _raised else previous)
        sys.setrecursionlimit(max(previous, limit))
    try:
        yield
    finally:
        with _RECURSION:
            first = _raised.pop()
            if not _raised:
                sys.setrecursionlimit(first)


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


def lock_datum(
    parties: Sequence[bytes], owner: int, deposit: int, rounds: int, deadline: int
) -> cbor2.CBORTag:
    """``LockDatum(parties, owner, deposit, rounds, deadline)``: constructor 0.

    Args:
        parties: payment key hashes, in party name order.
        owner: the index in ``parties`` of the party whose deposit the lock holds.
        deposit: lovelace the owner locked.
        rounds: rounds of the session (a kill vote names one of them).
        deadline: POSIX time in milliseconds: slashing before, refunds from then on.
    """
    return constr(0, list(parties), owner, deposit, rounds, deadline)


REFUND = constr(2)

#: A kill vote as a redeemer carries it: (voter index, round, vkey, signature).
KillEntry = tuple[int, int, bytes, bytes]
#: The kill votes proving one party slashed: (target index, its votes).
Proof = tuple[int, Sequence[KillEntry]]


def _evidence(proofs: Sequence[Proof]) -> list[cbor2.CBORTag]:
    return [
        constr(0, target, [constr(0, v, r, vkey, sig) for v, r, vkey, sig in votes])
        for target, votes in proofs
    ]


#: A release vote as a redeemer carries it: (voter index, vkey, signature).
ReleaseEntry = tuple[int, bytes, bytes]


def _release_votes(votes: Sequence[ReleaseEntry]) -> list[cbor2.CBORTag]:
    return [constr(0, v, vkey, sig) for v, vkey, sig in votes]


def slash(
    proofs: Sequence[Proof], released: Sequence[Sequence[ReleaseEntry]] = ()
) -> cbor2.CBORTag:
    """``Slash(evidence, released)``: for each slashed target index, its kill votes; for each
    remaining party in datum order, ``Recipient(votes)``: its release votes."""
    recipients = [constr(0, _release_votes(votes)) for votes in released]
    return constr(1, _evidence(proofs), recipients)


def release(proofs: Sequence[Proof] = (), votes: Sequence[ReleaseEntry] = ()) -> cbor2.CBORTag:
    """``Release(slashed, votes)``: who was slashed, and release votes (voter, vkey, sig)."""
    return constr(0, _evidence(proofs), _release_votes(votes))


@dataclass(frozen=True)
class EscrowLock:
    """One party's deposit: one output at the session's script address.

    Attributes:
        script: the session's validator.
        members: party name -> payment key hash; the datum lists them in name order.
        owner: whose deposit this lock holds.
        deposit: lovelace the owner locked.
        rounds: rounds of the session.
        deadline: POSIX milliseconds: slashing before, refunds from then on.
        ref: where the lock is (its ``TxOutRef``), the tag every payout carries.
    """

    script: EscrowScript
    members: Mapping[str, bytes]
    owner: str
    deposit: int
    rounds: int
    deadline: int
    ref: cbor2.CBORTag = EXAMPLE_REF

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.members))

    def index(self, name: str) -> int:
        return self.names.index(name)

    def datum(self) -> cbor2.CBORTag:
        parties = [self.members[n] for n in self.names]
        owner = self.index(self.owner)
        return lock_datum(parties, owner, self.deposit, self.rounds, self.deadline)

    def spend(self, redeemer: object, datum: object | None = None) -> SpendInput:
        """The lock as a transaction input spent with ``redeemer`` (and maybe a wrong datum)."""
        datum = self.datum() if datum is None else datum
        locked = tx_out(script_address(self.script.script_hash), self.deposit, datum)
        return SpendInput(self.ref, locked, redeemer=redeemer, datum=datum)

    def payouts(self, paid: Mapping[str, int], tag: object | None = None) -> list[cbor2.CBORTag]:
        """One output per paid member, tagged with the lock's out-ref (or ``tag``)."""
        tag = self.ref if tag is None else tag
        return [
            tx_out(key_address(self.members[n]), paid[n], tag) for n in self.names if paid.get(n)
        ]


def _bare_majority(members: int) -> int:
    """The fewest votes that are a strict majority of the other ``members - 1`` parties: a
    redeemer carries no more (each signature costs about 0.1 G steps on chain)."""
    return (members - 1) // 2 + 1 if members > 1 else 0


def _proofs(
    members: tuple[str, ...], slashed: Sequence[str], kills: Iterable[SignedKillVote]
) -> list[Proof]:
    """For each slashed party, kill votes from distinct other members (one per voter, the
    first given), voters in datum order, as many as a slash needs.

    Raises:
        EscrowError: a slashed party lacks votes from two and a strict majority of the others.
    """
    chosen: dict[str, dict[str, SignedKillVote]] = {t: {} for t in slashed}
    for vote in kills:
        if vote.target in chosen and vote.voter in members and vote.voter != vote.target:
            chosen[vote.target].setdefault(vote.voter, vote)
    proofs = []
    for target in sorted(slashed, key=members.index):
        against = chosen[target]
        if not enough_to_slash(len(against), len(members)):
            raise EscrowError(
                f"slashing {target} needs signed kill votes from two and more than"
                f" {(len(members) - 1) / 2} other depositors, got {len(against)}"
            )
        ordered = sorted(against.values(), key=lambda v: members.index(v.voter))
        ordered = ordered[: max(MIN_KILL_VOTES, _bare_majority(len(members)))]
        entries = [(members.index(v.voter), v.round, v.vkey, v.signature) for v in ordered]
        proofs.append((members.index(target), entries))
    return proofs


def _backing(
    members: tuple[str, ...],
    remaining: Sequence[str],
    owner: str,
    releases: Iterable[SignedReleaseVote],
    what: str,
) -> list[ReleaseEntry]:
    """Release votes for ``owner`` from a strict majority of the other ``remaining`` parties
    (the first vote per voter, voters in datum order).

    Raises:
        EscrowError: fewer votes than that.
    """
    chosen: dict[str, SignedReleaseVote] = {}
    for vote in releases:
        if vote.target == owner and vote.voter in remaining and vote.voter != owner:
            chosen.setdefault(vote.voter, vote)
    if len(remaining) > 1 and not majority(len(chosen), len(remaining)):
        raise EscrowError(
            f"{what} needs signed release votes for {owner} from more than"
            f" {(len(remaining) - 1) / 2} other remaining parties, got {len(chosen)}"
        )
    ordered = sorted(chosen.values(), key=lambda v: members.index(v.voter))
    ordered = ordered[: _bare_majority(len(remaining))]
    return [(members.index(v.voter), v.vkey, v.signature) for v in ordered]


def redeemer_for(
    settlement: Settlement,
    owner: str,
    kills: Iterable[SignedKillVote] = (),
    releases: Iterable[SignedReleaseVote] = (),
) -> cbor2.CBORTag:
    """The redeemer that settles ``owner``'s lock as ``settlement`` says.

    Only the depositors the lock lists count (:meth:`Settlement.lock_members`: a listed
    party's lock lists no newcomer). Both redeemers prove every slashed party among them
    with its signed kill votes (so the split goes to the right remaining parties). A
    remaining owner's lock is a ``Release`` with release votes for the owner from a strict
    majority of the other remaining parties; a slashed owner's lock is a ``Slash`` with the
    same release votes for **every** remaining party, its recipients: the script pays only
    parties proven released, so a slashed party left out of the proofs cannot share in the
    split (honest parties never release it).

    Raises:
        EscrowError: the settlement is pending, ``owner`` is no depositor, or votes are short.
    """
    if not settlement.final:
        raise EscrowError("the settlement is pending: nothing can be settled yet")
    if owner not in settlement.depositors:
        raise EscrowError(f"{owner} is not a depositor of this settlement")
    members = settlement.lock_members(owner)  # the lock's datum: who votes, who shares
    lost = [p for p in settlement.slashed if p in members]
    proofs = _proofs(members, lost, kills)
    remaining = [p for p in members if p not in settlement.slashed]
    releases = list(releases)
    if owner in settlement.slashed:
        shares = f"paying a share of {owner}'s slashed deposit"
        return slash(proofs, [_backing(members, remaining, r, releases, shares) for r in remaining])
    return release(proofs, _backing(members, remaining, owner, releases, "the release"))


def settlement_payouts(settlement: Settlement, owner: str) -> dict[str, int]:
    """What ``owner``'s lock pays under ``settlement`` (:func:`rules.lock_payouts`)."""
    members = settlement.lock_members(owner)
    return lock_payouts(members, settlement.slashed, settlement.deposit, owner)


def settlement_tx(
    lock: EscrowLock,
    redeemer: object,
    paid: Mapping[str, int],
    *,
    signers: Iterable[str] = (),
    validity: cbor2.CBORTag = ALWAYS,
) -> Transaction:
    """The transaction that spends ``lock`` alone and pays ``paid`` (lovelace per member).

    Args:
        signers: members whose keys sign the transaction (the script needs none).
        validity: the transaction's validity range (POSIX milliseconds).
    """
    return Transaction(
        inputs=[lock.spend(redeemer)],
        outputs=lock.payouts(paid),
        signatories=[lock.members[n] for n in signers],
        validity=validity,
    )
