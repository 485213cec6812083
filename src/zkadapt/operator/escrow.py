"""The escrow terms a session file fixes, for ``zkadapt escrow status`` and the dashboard."""

from __future__ import annotations

from zkadapt.config import SessionConfig
from zkadapt.escrow.rules import EscrowTerms


def terms_of(config: SessionConfig) -> EscrowTerms:
    """The escrow terms a session file fixes (``[escrow]``, rounds, parties, quorum)."""
    return EscrowTerms(
        session=config.session_id,
        parties=tuple(config.party_names),
        deposit=config.escrow.deposit_lovelace,
        rounds=config.session.rounds,
        quorum=config.quorum,
        silent_rounds=config.escrow.silent_rounds,
    )
