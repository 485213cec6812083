"""What ``zkadapt escrow status SESSION.toml`` shows: deposits, votes and each settlement.

Pure formatting over :mod:`zkadapt.escrow.rules`; the CLI reads the channel history and the
terms from the session file and prints :func:`status_lines`.
"""

from __future__ import annotations

from collections.abc import Iterable

from zkadapt.channel.base import Entry
from zkadapt.escrow.rules import (
    EscrowTerms,
    EscrowView,
    kill_votes,
    progress,
    settle,
    silent,
)


def status_lines(entries: Iterable[Entry], terms: EscrowTerms) -> list[str]:
    """One line per fact: progress, then per party deposit, signal, votes and payout."""
    view = EscrowView.from_entries(entries, terms)
    settlement = settle(view, terms)
    quiet = set(silent(view, terms))
    tally = kill_votes(view, terms)
    lines = [
        f"escrow {terms.session[:16]}…: {settlement.status}; progress round "
        f"{progress(view, terms)} of {terms.rounds}; deposit {terms.deposit} lovelace each",
    ]
    for party in terms.parties:
        deposit = view.deposits.get(party)
        shown = "no deposit" if deposit is None else f"deposited {deposit}"
        if deposit is not None and deposit != terms.deposit:
            shown += " (wrong amount: not in the escrow)"
        votes = ", ".join(tally.get(party, ())) or "none"
        payout = settlement.payouts.get(party)
        paid = "pending" if payout is None else f"{payout}"
        flags = []
        if party in quiet:
            flags.append("silent")
        if party in settlement.slashed:
            flags.append("slashed")
        if party in settlement.claims:
            flags.append("claimed")
        lines.append(
            f"  {party}: {shown}; last signal round {view.last_signal.get(party, 0)}; "
            f"kill votes: {votes}; settlement: {paid}" + (f" [{', '.join(flags)}]" if flags else "")
        )
    return lines
