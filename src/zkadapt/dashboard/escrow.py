"""The dashboard's escrow table: exactly what ``zkadapt escrow status`` says, as a table.

Both read the same verified channel entries and call the same function,
:func:`zkadapt.escrow.status.escrow_status`, with the same terms
(:func:`zkadapt.operator.escrow.terms_of`), so the table and the command agree row by row on
either channel backend (DESIGN.md section 7; docs/escrow.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zkadapt.channel.base import Entry
from zkadapt.config import SessionConfig
from zkadapt.escrow.status import PartyEscrow, escrow_status
from zkadapt.operator.escrow import on_layer1, terms_of
from zkadapt.protocol.history import SessionHistory

#: Under the table, per channel backend: where the numbers come from.
ESCROW_NOTES = {
    "local": (
        "escrow messages on the local ledger, settled by the same rules as on Hydra; "
        "no funds are locked without a layer 1"
    ),
    "hydra": (
        "escrow messages confirmed in the Hydra head; deposits are announced there, "
        "no funds are locked on layer 1 (escrow.deadline unset)"
    ),
    "layer1": (
        "each deposit is a lock on Cardano layer 1 named by its EscrowDeposit (`zkadapt escrow "
        "check` verifies them); only votes signed with the payment keys count"
    ),
}


@dataclass(frozen=True)
class EscrowView:
    """The escrow table: the headline, one row per party, and a note on the source."""

    headline: str
    status: str
    rows: tuple[PartyEscrow, ...]
    note: str


def escrow_view(
    config: SessionConfig, entries: Iterable[Entry], history: SessionHistory | None = None
) -> EscrowView:
    """The escrow of ``config``'s session as of ``entries`` (verified, in channel order);
    ``history``: the same entries already read by the parties' rules (the dashboard keeps
    one), so the membership roster is not replayed on every refresh."""
    entries = list(entries)
    terms = terms_of(config, entries) if history is None else terms_of(config, history=history)
    status = escrow_status(entries, terms)
    backend = "layer1" if on_layer1(config) else config.channel.backend
    note = ESCROW_NOTES.get(backend, "")
    note += "; the same as `zkadapt escrow status`" if note else "as `zkadapt escrow status`"
    return EscrowView(status.headline, status.status, status.parties, note)
