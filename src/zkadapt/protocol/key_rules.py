"""Key epochs as pure decisions: which key a round uses, and what a party does about it.

Kept free of any cryptography or I/O so that the round machine
(:mod:`zkadapt.protocol.machine`) can import it and the model checker explores it: the
machine asks :func:`decide_key` whenever the round's key epoch is not open yet (DESIGN.md
section 4, CRYPTO.md section 1). :mod:`zkadapt.protocol.key_epochs` carries the decisions out
against the store and channel; :mod:`zkadapt.kgc` asks the same function as an external dealer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class KeyPlan:
    """The session's key settings (``[privacy]``), fixed for the whole session."""

    names: tuple[str, ...]  # the parties, in name order (Shamir index = position + 1)
    keygen: str  # "dealer" | "additive" | "distributed"
    dealer: str  # who deals (a party, or the key-generation centre's channel name)
    threshold: int
    key_bits: int
    refresh_every: int | None = None

    @property
    def distributed(self) -> bool:
        return self.keygen == "distributed"

    def epoch_of(self, round_: int, joins: Collection[int] = ()) -> int:
        """Key epoch of ``round_`` (0 unless keys are refreshed every R rounds).

        ``joins``: rounds from which newcomers are members (docs/membership.md); each starts
        a new epoch too, so epochs are numbered by the rounds that start one: round 1, every
        R-th round after it, and every membership change.
        """
        if not joins:
            return (round_ - 1) // self.refresh_every if self.refresh_every else 0
        return sum(1 for s in range(2, round_ + 1) if self._starts(s, joins))

    def first_round(self, epoch: int, joins: Collection[int] = ()) -> int:
        """The first round of key epoch ``epoch`` (the inverse of :meth:`epoch_of`).

        Raises:
            ValueError: no round starts that epoch (without refreshes, only ``len(joins)``
                epochs follow epoch 0).
        """
        if epoch > 0 and not self.refresh_every and epoch > len(set(joins)):
            raise ValueError(f"no round starts key epoch {epoch}")
        round_, count = 1, 0
        while count < epoch:
            round_ += 1
            count += self._starts(round_, joins)
        return round_

    def _starts(self, round_: int, joins: Collection[int]) -> bool:
        refresh = bool(self.refresh_every) and (round_ - 1) % self.refresh_every == 0  # type: ignore[operator]
        return refresh or round_ in joins

    def with_names(self, names: Collection[str]) -> KeyPlan:
        """This plan for an epoch whose key holders are ``names`` (a membership change); an
        additive key is n-of-n of them."""
        ordered = tuple(sorted(names))
        threshold = len(ordered) if self.keygen == "additive" else self.threshold
        return replace(self, names=ordered, threshold=threshold)

    def index_of(self, party: str) -> int:
        """Shamir index (1..n) of ``party``: its position in name order."""
        return self.names.index(party) + 1

    def source(self, me: str | None) -> str | None:
        """Whose ``KeyDealt`` carries the key for ``me``: the dealer's; with distributed keys
        each party's own (it holds that party's sealed share), any party's for an observer."""
        return me if self.distributed else self.dealer


# -- the decision -------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyWait:
    """Nothing to do until the channel moves or the key deadline passes."""


@dataclass(frozen=True)
class KeyDeal:
    """Deal the epoch's key now (or, distributed, run the key generation with the others)."""


@dataclass(frozen=True)
class KeyOpen:
    """The ``KeyDealt`` this party reads is posted: fetch the key and open our share."""


@dataclass(frozen=True)
class KeyFail:
    """No usable key will come: stop with ``reason``."""

    reason: str


KeyStep = KeyWait | KeyDeal | KeyOpen | KeyFail


def decide_key(
    plan: KeyPlan,
    epoch: int,
    me: str | None,
    *,
    joined: Collection[str],
    dealt: bool,
    deadline_passed: bool,
) -> KeyStep:
    """What a party (``me``; None for an observer) does about key epoch ``epoch`` now (pure).

    The dealer deals epoch 0 once every party has joined (so the declared sizes before its
    ``KeyDealt`` fix every weight), or at its deadline with whoever joined; later epochs at
    once. Distributed key generation needs every party, deadline or not.

    Args:
        joined: parties whose ``Joined`` is on the channel.
        dealt: whether the ``KeyDealt`` of :meth:`KeyPlan.source` for ``epoch`` is posted.
        deadline_passed: this party's key deadline passed (on the injected clock).
    """
    if dealt:
        return KeyOpen()
    source = plan.source(me)
    everyone = set(joined) >= set(plan.names)
    may_deal = epoch > 0 or everyone or (deadline_passed and not plan.distributed)
    if me is not None and me == source and may_deal:
        return KeyDeal()
    if not deadline_passed:
        return KeyWait()
    missing = sorted(set(plan.names) - set(joined))
    if plan.distributed and missing and source is not None:
        return KeyFail(
            "distributed key generation needs every party; not joined: " + ", ".join(missing)
        )
    return KeyFail(f"no threshold key for epoch {epoch} from dealer {source or 'any party'}")
