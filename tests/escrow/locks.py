"""Escrow locks, payment keys and signed votes for evaluating the validator with uplc."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

import pytest

pytest.importorskip("uplc")
from pycardano import PaymentSigningKey

from tests.escrow.helpers import DEPOSIT, SESSION
from zkadapt.escrow.onchain import EscrowLock, EscrowScript, Evaluation
from zkadapt.escrow.script_context import Transaction, tx_out_ref, validity_range
from zkadapt.escrow.votes import (
    SignedKillVote,
    SignedReleaseVote,
    sign_kill_vote,
    sign_release_vote,
)

SESSION_ID = bytes.fromhex(SESSION)
OTHER_SESSION = hashlib.sha256(b"another session").digest()
ROUNDS = 3
#: The locks' deadline (POSIX ms): slashing must end before it, refunds start at it.
DEADLINE = 1_750_000_000_000
BEFORE = validity_range(DEADLINE - 60_000, DEADLINE)  # upper bound open at the deadline
AFTER = validity_range(DEADLINE)  # from the deadline on (closed lower bound)
PARTIES = ("alice", "bob", "carol", "dave", "erin")
PAYMENT_KEYS = {
    n: PaymentSigningKey(hashlib.sha256(b"payment key of " + n.encode()).digest())
    for n in (*PARTIES, "mallory")
}


def key_hash(name: str) -> bytes:
    return PAYMENT_KEYS[name].to_verification_key().hash().payload


def payment_keys(names: Iterable[str]) -> dict[str, bytes]:
    return {n: key_hash(n) for n in names}


@lru_cache(maxsize=8)
def script_for(session: bytes) -> EscrowScript:
    return EscrowScript(session)


def lock_ref(owner: str, index: int = 0):
    """A distinct out-ref for each party's lock (its own lock transaction)."""
    return tx_out_ref(hashlib.sha256(b"lock of " + owner.encode()).digest(), index)


def make_lock(
    owner: str,
    names: Iterable[str] = ("alice", "bob", "carol"),
    *,
    session: bytes = SESSION_ID,
    deposit: int = DEPOSIT,
    rounds: int = ROUNDS,
    ref=None,
) -> EscrowLock:
    members = payment_keys(names)
    ref = lock_ref(owner) if ref is None else ref
    return EscrowLock(script_for(session), members, owner, deposit, rounds, DEADLINE, ref)


def second_ref(index: int = 1):
    """Another output's out-ref (a different transaction)."""
    return tx_out_ref(bytes([0x30 + index]) * 32, index)


def vote(
    voter: str,
    target: str,
    *,
    session: bytes = SESSION_ID,
    round_: int = 2,
    signer: str | None = None,
    victim: str | None = None,
) -> SignedKillVote:
    """``voter``'s kill vote against ``target``; ``signer``/``victim`` forge a bad one."""
    return sign_kill_vote(
        PAYMENT_KEYS[signer or voter],
        session=session,
        voter=voter,
        target=target,
        victim=key_hash(victim or target),
        round_=round_,
    )


def release_vote(
    voter: str,
    target: str,
    *,
    session: bytes = SESSION_ID,
    signer: str | None = None,
    owner: str | None = None,
) -> SignedReleaseVote:
    """``voter``'s release vote for ``target``; ``signer``/``owner`` forge a bad one."""
    return sign_release_vote(
        PAYMENT_KEYS[signer or voter],
        session=session,
        voter=voter,
        target=target,
        owner=key_hash(owner or target),
    )


def run(lock: EscrowLock, tx: Transaction) -> Evaluation:
    """Evaluate the lock's own input of ``tx`` with the on-chain (untraced) script."""
    return lock.script.evaluate(tx.script_context(lock.ref))


def assert_rejected(lock: EscrowLock, tx: Transaction, reason: str) -> None:
    """The on-chain script rejects ``tx``, and the traced build says ``reason``."""
    outcome = run(lock, tx)
    assert not outcome.accepted, outcome
    explained = lock.script.explain(tx.script_context(lock.ref))
    assert not explained.accepted
    assert reason in explained.logs, explained.logs
