"""What the dashboard shows of escrow and operator actions, per channel backend.

Escrow (deposits, signal/claim/kill tokens; DESIGN.md section 7) and operator actions
(open/close a Hydra head, fanout) exist only on a Hydra channel, which is not built yet.
These two small functions are the seam a Hydra/escrow backend fills: today they say, for
the ``local`` channel, that there is nothing to show and nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Shown when the session's channel is the local SQLite ledger.
NO_LOCAL_ESCROW = "no escrow on the local channel"
NO_LOCAL_ACTIONS = (
    "no operator actions exist for the local channel "
    "(opening, closing and fanning out a Hydra head arrive with the hydra backend)"
)


@dataclass(frozen=True)
class EscrowRow:
    """One party's escrow position: its deposit and the state of its three tokens."""

    party: str
    deposit: str
    signal: str
    claim: str
    kill: str


@dataclass(frozen=True)
class EscrowView:
    """The escrow table: its rows, and a note when there are none."""

    rows: tuple[EscrowRow, ...]
    note: str


@dataclass(frozen=True)
class Action:
    """An operator action the page may offer (behind ``--allow-actions`` and a confirmation)."""

    name: str
    label: str


@dataclass(frozen=True)
class ActionsView:
    """Whether actions were allowed on the command line, which exist, and a note."""

    allowed: bool
    actions: tuple[Action, ...]
    note: str


def escrow_view(channel_backend: str, parties: list[str]) -> EscrowView:
    """The escrow table for a session whose channel is ``channel_backend``.

    A later Hydra/escrow backend returns one :class:`EscrowRow` per party here (its data
    coming from the channel client, the same one the CLI uses).
    """
    if channel_backend == "local":
        return EscrowView((), NO_LOCAL_ESCROW)
    return EscrowView((), f"escrow for the {channel_backend!r} channel is not implemented yet")


def actions_view(channel_backend: str, *, allow_actions: bool) -> ActionsView:
    """Operator actions for ``channel_backend``; none exist for the local channel."""
    if channel_backend == "local":
        return ActionsView(allow_actions, (), NO_LOCAL_ACTIONS)
    return ActionsView(
        allow_actions, (), f"actions for the {channel_backend!r} channel are not implemented yet"
    )
