"""Operator actions on the page: which buttons a head's state allows, and what happened.

The page is read-only unless the dashboard runs with ``--allow-actions``. Even then a button
appears only for an action that makes sense in the head's current status
(:func:`zkadapt.operator.head.offered_actions`), and the server runs it with
:func:`zkadapt.operator.head.perform_action` — the function ``zkadapt head ...`` calls.
A local-ledger session has no head, so nothing to operate. Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkadapt.channel.hydra.view import HeadEvent
from zkadapt.operator.head import NO_HEAD, offered_actions

#: Shown instead of buttons when the dashboard runs without ``--allow-actions``.
READ_ONLY = "read-only: start the dashboard with --allow-actions to operate the head"


@dataclass(frozen=True)
class HeadState:
    """The followed Hydra head as the dashboard's channel client sees it.

    Attributes:
        api: the hydra-node the dashboard talks to.
        status: api.yaml ``HeadStatus`` (``Unknown`` before the node's Greetings).
        head_id: the followed head, once there is one.
        contestation_deadline: when a closed head's contestation period ends.
        events: its lifecycle (HeadIsOpen, HeadIsClosed, ...) and refused commands.
    """

    api: str
    status: str
    head_id: str | None
    contestation_deadline: str | None
    events: tuple[HeadEvent, ...]


@dataclass(frozen=True)
class Action:
    """A button: an action the head's state allows now."""

    name: str
    label: str
    command: str
    effect: str


@dataclass(frozen=True)
class ActionRecord:
    """One action the page asked for, and the node's answer (or that it is still running)."""

    at: float
    action: str
    ok: bool | None
    message: str


@dataclass(frozen=True)
class ActionsView:
    """Whether actions are allowed, which ones the head offers now, a note, and the log."""

    allowed: bool
    actions: tuple[Action, ...]
    note: str
    log: tuple[ActionRecord, ...] = ()

    @property
    def running(self) -> bool:
        """Whether an action is waiting for the node."""
        return any(r.ok is None for r in self.log)


def actions_view(
    backend: str,
    head: HeadState | None,
    *,
    allow_actions: bool,
    log: tuple[ActionRecord, ...] = (),
) -> ActionsView:
    """The actions section for a session on ``backend`` whose head is ``head``."""
    if backend != "hydra":
        return ActionsView(allow_actions, (), NO_HEAD, log)
    if head is None or head.status == "Unknown":
        return ActionsView(allow_actions, (), "waiting for the hydra-node's head status", log)
    offered = tuple(
        Action(a.name, a.label, a.command, a.effect)
        for a in offered_actions(head.status, head.head_id)
    )
    return ActionsView(allow_actions, offered, _state_note(head, offered, allow_actions), log)


_STATE_NOTES = {
    "Idle": "no head yet: Init opens one with every party of the session",
    "Open": "the head is open: the parties post through it",
    "FanoutPossible": "the contestation period is over: the head can be fanned out",
    "FanningOut": "the head is fanning out",
}


def _state_note(head: HeadState, offered: tuple[Action, ...], allowed: bool) -> str:
    if head.status == "Closed":
        until = head.contestation_deadline or "its deadline"
        state = (
            f"the head is closed; fanout becomes possible after the contestation period ({until})"
        )
    elif head.status == "Idle" and head.head_id is not None:
        state = "the head is finalized: its funds are back on layer 1; nothing more to do"
    else:
        state = _STATE_NOTES.get(head.status, f"the head is {head.status}")
    if offered and not allowed:
        return f"{state}; {READ_ONLY}"
    return state
