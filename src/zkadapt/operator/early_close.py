"""A party whose session's hydra head is closed before the last round is done (issue 19,
"a premature close"; docs/escrow.md, "A premature close").

A closed head takes no message, so the round protocol's next post fails with a
:class:`~zkadapt.errors.ChannelError`. Restarting cannot help (the head stays closed), so
instead of that channel error the party stops with :class:`HeadClosedEarly`: one line that
says what happened, how far the session got, and what became of the escrow, with exit
code 2 so that ``zkadapt run`` stops every party instead of restarting them.

Only a head that the party's own node reports closed (or fanned out) counts: a post that
fails on an open head stays the channel error it is.
"""

from __future__ import annotations

from typing import Any

from zkadapt.errors import ChannelError

#: api.yaml ``HeadStatus`` values of a head that takes no more messages.
CLOSED_STATUSES = frozenset({"Closed", "FanoutPossible", "Final"})


class HeadClosedEarly(ChannelError):
    """The session's head was closed before its last round was done (exit code 2: a
    restart cannot reopen it)."""

    exit_code = 2


def head_closed(channel: Any) -> bool:
    """Whether ``channel`` is a hydra channel whose node reports the head closed.

    A channel without a head (the local ledger) is never closed this way.
    """
    try:
        return str(getattr(channel, "head_status", "")) in CLOSED_STATUSES
    except ChannelError:  # the node cannot be asked: nothing shows the head closed
        return False


def closed_early_line(party: str, done: int, rounds: int, escrow: str = "") -> str:
    """``alice: the head was closed before round 2 of 3 was done (...)``.

    Args:
        party: this party.
        done: the last round this party applied (0: none).
        rounds: the session's rounds.
        escrow: what the escrow did about it (empty without an escrow).
    """
    line = (
        f"{party}: the session's hydra head was closed before round {done + 1} of {rounds} "
        "was done: the session stopped (a closed head takes no message; restarting cannot "
        "reopen it)"
    )
    return f"{line}; escrow: {escrow}" if escrow else line
