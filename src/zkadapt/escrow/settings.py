"""``[escrow]``: the deposit terms that keep parties honest (docs/escrow.md)."""

from __future__ import annotations

from pydantic import Field

from zkadapt.sections import Section, added_later


class EscrowConfig(Section):
    """Deposits that keep parties honest (DESIGN.md section 7; docs/escrow.md)."""

    deposit_lovelace: int = Field(10_000_000, ge=1, description="Each party's fixed deposit.")
    silent_rounds: int = Field(1, ge=1, description="Rounds without a signal before a kill vote.")
    deadline: int | None = added_later(
        None,
        ge=0,
        lt=2**40,
        description="POSIX seconds (UTC): the escrow is on layer 1 (needs [cardano]); "
        "slashing only before it, refunds from it on.",
    )

    @property
    def deadline_ms(self) -> int | None:
        """The deadline as the lock datum holds it (POSIX milliseconds)."""
        return None if self.deadline is None else self.deadline * 1000
