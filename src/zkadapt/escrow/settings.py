"""``[escrow]``: the deposit terms that keep parties honest (docs/escrow.md)."""

from __future__ import annotations

from pydantic import Field

from zkadapt.sections import Section


class EscrowConfig(Section):
    """Deposits that keep parties honest (DESIGN.md section 7; docs/escrow.md)."""

    deposit_lovelace: int = Field(10_000_000, ge=1, description="Each party's fixed deposit.")
    silent_rounds: int = Field(1, ge=1, description="Rounds without a signal before a kill vote.")
