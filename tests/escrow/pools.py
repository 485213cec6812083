"""Escrow pools, payment keys and signed kill votes for evaluating the validator with uplc."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

import pytest

pytest.importorskip("uplc")
from pycardano import PaymentSigningKey

from tests.escrow.helpers import DEPOSIT, SESSION
from zkadapt.escrow.onchain import (
    EXAMPLE_REF,
    EscrowPool,
    EscrowScript,
    Evaluation,
    SignedKillVote,
    sign_kill_vote,
)
from zkadapt.escrow.script_context import Transaction, tx_out_ref, validity_range

SESSION_ID = bytes.fromhex(SESSION)
OTHER_SESSION = hashlib.sha256(b"another session").digest()
ROUNDS = 3
#: The pools' deadline (POSIX ms): slashing must end before it, refunds start at it.
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


@lru_cache(maxsize=8)
def script_for(session: bytes) -> EscrowScript:
    return EscrowScript(session)


def make_pool(
    names: Iterable[str] = ("alice", "bob", "carol"),
    *,
    session: bytes = SESSION_ID,
    deposit: int = DEPOSIT,
    rounds: int = ROUNDS,
    ref=EXAMPLE_REF,
) -> EscrowPool:
    members = {n: key_hash(n) for n in names}
    return EscrowPool(script_for(session), members, deposit, rounds, DEADLINE, ref)


def second_ref(index: int = 1):
    """Another pool's out-ref (a different transaction)."""
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


def run(pool: EscrowPool, tx: Transaction) -> Evaluation:
    """Evaluate the pool's own input of ``tx`` with the on-chain (untraced) script."""
    return pool.script.evaluate(tx.script_context(pool.ref))


def assert_rejected(pool: EscrowPool, tx: Transaction, reason: str) -> None:
    """The on-chain script rejects ``tx``, and the traced build says ``reason``."""
    outcome = run(pool, tx)
    assert not outcome.accepted, outcome
    explained = pool.script.explain(tx.script_context(pool.ref))
    assert not explained.accepted
    assert reason in explained.logs, explained.logs
