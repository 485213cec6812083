"""What ``zkadapt escrow status SESSION.toml`` shows: deposits, votes and each settlement.

Pure formatting over :mod:`zkadapt.escrow.rules`. :func:`escrow_status` computes one
:class:`EscrowStatus` (a headline and one :class:`PartyEscrow` row per party, every cell
already worded); :func:`status_lines` prints it for the CLI and the dashboard renders the
same rows as a table, so both always say the same thing for the same history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zkadapt.channel.base import Entry
from zkadapt.escrow.rules import (
    EscrowTerms,
    EscrowView,
    kill_votes,
    progress,
    settle,
    silent,
)

#: Shown for a party that has posted no ``EscrowDeposit`` yet.
NO_DEPOSIT = "no deposit yet"


@dataclass(frozen=True)
class PartyEscrow:
    """One party's escrow position, each field worded as the CLI prints it.

    Attributes:
        party: the party's name.
        deposit: ``"no deposit yet"``, ``"deposited N"`` (plus a note for a wrong amount).
        signal: the last round it signalled progress in (``Submitted``/``RoundDone``).
        kill_votes: who voted to slash it (``"none"``).
        settlement: its payout in lovelace once final, else ``"pending"``.
        flags: ``silent``, ``slashed``, ``claimed`` as they apply.
    """

    party: str
    deposit: str
    signal: int
    kill_votes: str
    settlement: str
    flags: tuple[str, ...]

    def line(self) -> str:
        """The CLI's line for this party."""
        flags = f" [{', '.join(self.flags)}]" if self.flags else ""
        return (
            f"  {self.party}: {self.deposit}; last signal round {self.signal}; "
            f"kill votes: {self.kill_votes}; settlement: {self.settlement}{flags}"
        )


@dataclass(frozen=True)
class EscrowStatus:
    """The escrow of one session as of some history: a headline and a row per party."""

    headline: str
    status: str
    parties: tuple[PartyEscrow, ...]


def escrow_status(entries: Iterable[Entry], terms: EscrowTerms) -> EscrowStatus:
    """Deposits, signals, kill votes and payouts per party, from verified channel entries."""
    view = EscrowView.from_entries(entries, terms)
    settlement = settle(view, terms)
    quiet = set(silent(view, terms))
    tally = kill_votes(view, terms)
    headline = (
        f"escrow {terms.session[:16]}…: {settlement.status}; progress round "
        f"{progress(view, terms)} of {terms.rounds}; deposit {terms.deposit} lovelace each"
    )
    rows = []
    for party in terms.everyone:
        deposit = view.deposits.get(party)
        shown = NO_DEPOSIT if deposit is None else f"deposited {deposit}"
        if party in terms.newcomers:
            shown += f" (joined: member from round {terms.newcomers[party].first_round})"
        if deposit is not None and deposit != terms.deposit:
            shown += " (wrong amount: not in the escrow)"
        payout = settlement.payouts.get(party)
        flags = tuple(
            flag
            for flag, on in (
                ("silent", party in quiet),
                ("slashed", party in settlement.slashed),
                ("claimed", party in settlement.claims),
            )
            if on
        )
        rows.append(
            PartyEscrow(
                party=party,
                deposit=shown,
                signal=view.last_signal.get(party, 0),
                kill_votes=", ".join(tally.get(party, ())) or "none",
                settlement="pending" if payout is None else str(payout),
                flags=flags,
            )
        )
    return EscrowStatus(headline, settlement.status, tuple(rows))


def status_lines(entries: Iterable[Entry], terms: EscrowTerms) -> list[str]:
    """One line per fact: progress, then per party deposit, signal, votes and payout."""
    status = escrow_status(entries, terms)
    return [status.headline, *(row.line() for row in status.parties)]
