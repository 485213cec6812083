"""One console line per failed round, with the reasons the updates were rejected.

A failed round's ``RoundFailed`` only says "only 0 of 3 updates accepted"; the cause (a
learning rate of 1e30 gives "malformed object: non-finite values") sits in the ``Rejected``
entries beside it, which used to reach nobody but the ledger (issue 17). ``zkadapt run``
and ``zkadapt party`` feed the channel's entries through :class:`RoundFailureNotes` and
print what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable

from zkadapt.protocol.history import Posted
from zkadapt.protocol.messages import Rejected, RoundFailed


class RoundFailureNotes:
    """Collects rejections per round and describes each failed round once."""

    def __init__(self, votes: int = 1) -> None:
        self._votes = votes  # distinct RoundFailed posters that fail a round (close_votes)
        self._rejected: dict[int, dict[str, str]] = {}
        self._voters: dict[int, set[str]] = {}
        self._told: set[int] = set()

    def add(self, posted: Posted) -> str | None:
        """Take one channel message; returns a line when it is the ``votes``-th distinct
        ``RoundFailed`` of its round (one party's vote alone fails nothing)."""
        message = posted.message
        if isinstance(message, Rejected):
            self._rejected.setdefault(message.round, {}).setdefault(message.party, message.reason)
            return None
        if not isinstance(message, RoundFailed) or message.round in self._told:
            return None
        voters = self._voters.setdefault(message.round, set())
        voters.add(posted.sender)
        if len(voters) < self._votes:
            return None
        self._told.add(message.round)
        return self.describe(message.round, message.reason)

    def decided(self, round_: int, reason: str) -> str | None:
        """The line of a round this party decided failed (its own outcome, which it knows
        before the other votes arrive), unless that round was described already."""
        if round_ in self._told:
            return None
        self._told.add(round_)
        return self.describe(round_, reason)

    def add_all(self, posted: Iterable[Posted]) -> list[str]:
        """:meth:`add` for each message; the lines of every newly seen failed round."""
        return [line for line in map(self.add, posted) if line is not None]

    def describe(self, round_: int, reason: str) -> str:
        """``round N failed: REASON (rejected: alice: WHY; bob: WHY)``."""
        rejected = self._rejected.get(round_, {})
        why = "; ".join(f"{party}: {text}" for party, text in sorted(rejected.items()))
        return f"round {round_} failed: {reason}" + (f" (rejected: {why})" if why else "")
