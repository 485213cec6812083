"""Escrow and dropout (DESIGN.md section 7): deposits, signal, claim and kill.

Settlement rules are pure functions over the channel history (:mod:`~zkadapt.escrow.rules`),
shared by both channel backends; the on-chain validator is OpShin source compiled to
Plutus V3 (``contract/``), evaluated with ``uplc`` (:mod:`~zkadapt.escrow.onchain`, which
needs the ``cardano`` extra).
"""

from zkadapt.escrow.messages import Claim, EscrowDeposit, KillVote, read_payload
from zkadapt.escrow.rules import (
    COMPLETED,
    PENDING,
    SLASHED,
    EscrowTerms,
    EscrowView,
    Settlement,
    settle,
    settlement_of,
)
from zkadapt.escrow.status import status_lines

__all__ = [
    "COMPLETED",
    "PENDING",
    "SLASHED",
    "Claim",
    "EscrowDeposit",
    "EscrowTerms",
    "EscrowView",
    "KillVote",
    "Settlement",
    "read_payload",
    "settle",
    "settlement_of",
    "status_lines",
]
