"""Escrow settlement as pure functions over the channel history (DESIGN.md section 7).

Every party reads the same ordered history (either channel backend), so every party computes
the same settlement; the on-chain validator (``contract/escrow.py``) enforces the same
arithmetic on the layer-1 settlement transaction.

Rules, for the depositors ``D`` (parties whose first ``EscrowDeposit`` is exactly
:attr:`EscrowTerms.deposit`), ``n = |D|``:

* **progress**: the highest round ``r`` with ``RoundDone`` from at least ``quorum`` parties;
  the session is **complete** when ``r`` is the last round.
* **silent**: a depositor whose last signal (``Submitted`` or ``RoundDone``) is at least
  ``silent_rounds`` rounds behind the progress; informative, it justifies a kill vote.
* **slashed**: a depositor ``t`` with kill votes from more than ``(n - 1) / 2`` distinct other
  depositors (a strict majority of the others). Fewer votes: the vote fails, nothing happens.
  Votes count in channel order, and only while the voter is not slashed itself: the vote
  that slashes a party comes from one who stays, so the last depositor is never slashed and
  the pool always has someone to go to (without this, three parties voting against each
  other slashed everyone and left the pool to nobody).
* **payouts** (once complete, or once someone is slashed): a slashed party gets 0; each of
  the ``h`` remaining depositors gets ``deposit + floor(deposit * |slashed| / h)``, and the
  ``deposit * |slashed| mod h`` lovelace left over go one each to the first remaining parties
  in name order, so the pool ``n * deposit`` is paid out exactly.
* **kill votes** count only between depositors: a vote cast before the voter's or the
  target's deposit is ignored (otherwise a party could be slashed by the vote that was
  waiting for it the moment it deposited).
* **claim**: a remaining depositor may claim once the settlement is final (an earlier claim
  is ignored, not held over). The first valid claim **fixes** the settlement (status,
  depositors, slashed, payouts): deposits and kill votes after it are ignored, so no one is
  paid by one settlement and then judged by another (a kill vote after a refund used to take
  that refund back on paper).
* **refund** (layer 1): a pool nobody settled before the session's deadline returns every
  depositor its own deposit (:func:`refunds`); slashing is possible only before the deadline.

``tests/escrow/test_settlement_properties.py`` checks these rules over every history of up
to eight messages, ten in the slow run (the seed's escrow-balance spec, as properties): the
payouts are the pool exactly, only depositors are paid, the slashed get nothing, someone is
always paid, a claimed settlement never changes, and the validator accepts every final one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from zkadapt.channel.base import Entry
from zkadapt.escrow.messages import (
    Claim,
    EscrowDeposit,
    KillVote,
    MalformedEscrowMessage,
    Signal,
    read_payload,
)

PENDING = "pending"
COMPLETED = "completed"
SLASHED = "slashed"


@dataclass(frozen=True)
class EscrowTerms:
    """What the parties agreed to in the session file.

    Attributes:
        session: the session id (64 hex).
        parties: party names.
        deposit: lovelace each party locks.
        rounds: rounds of the session (the last one completes it).
        quorum: ``RoundDone`` messages a round needs to count as progress.
        silent_rounds: rounds without a signal after which a party counts as silent.
    """

    session: str
    parties: tuple[str, ...]
    deposit: int
    rounds: int
    quorum: int
    silent_rounds: int = 1

    def __post_init__(self) -> None:
        if self.deposit < 1 or self.rounds < 1 or self.quorum < 1 or self.silent_rounds < 1:
            raise ValueError("deposit, rounds, quorum and silent_rounds must be >= 1")
        object.__setattr__(self, "parties", tuple(sorted(self.parties)))


@dataclass
class EscrowView:
    """The escrow-relevant facts of one session's history, in channel order."""

    deposits: dict[str, int] = field(default_factory=dict)
    last_signal: dict[str, int] = field(default_factory=dict)
    done: dict[int, set[str]] = field(default_factory=dict)
    #: (voter, target) in channel order, first vote per pair: the order decides slashing.
    vote_order: list[tuple[str, str]] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    ignored: list[tuple[int, str]] = field(default_factory=list)
    #: (status, depositors, slashed) fixed by the first valid claim; None before it.
    fixed: tuple[str, tuple[str, ...], tuple[str, ...]] | None = None

    @property
    def votes(self) -> dict[str, set[str]]:
        """Target -> the parties who voted to kill it (any order)."""
        tally: dict[str, set[str]] = {}
        for voter, target in self.vote_order:
            tally.setdefault(target, set()).add(voter)
        return tally

    @classmethod
    def from_entries(cls, entries: Iterable[Entry], terms: EscrowTerms) -> EscrowView:
        """Fold verified channel entries into the view (others' sessions are skipped)."""
        view = cls()
        for entry in entries:
            view._add(entry, terms)
        return view

    def _add(self, entry: Entry, terms: EscrowTerms) -> None:
        sender = entry.envelope.sender
        try:
            item = read_payload(entry.envelope.payload)
        except MalformedEscrowMessage as exc:
            self.ignored.append((entry.seq, f"malformed escrow message: {exc}"))
            return
        if item is None or item.session != terms.session:
            return
        if item.party != sender or sender not in terms.parties:
            self.ignored.append((entry.seq, "signer does not match party"))
            return
        if isinstance(item, Signal):
            self.last_signal[sender] = max(self.last_signal.get(sender, 0), item.round)
            if item.kind == "RoundDone":
                self.done.setdefault(item.round, set()).add(sender)
        elif isinstance(item, EscrowDeposit | KillVote) and self.fixed is not None:
            self.ignored.append((entry.seq, f"{item.TYPE} after the first claim: settled"))
        elif isinstance(item, EscrowDeposit):
            self.deposits.setdefault(sender, item.amount)
        elif isinstance(item, KillVote):
            members = depositors(self, terms)
            if sender not in members or item.target not in members:
                self.ignored.append((entry.seq, "kill vote before both parties deposited"))
                return
            if (sender, item.target) not in self.vote_order:
                self.vote_order.append((sender, item.target))
        elif isinstance(item, Claim) and sender not in self.claims:
            now = settle(self, terms)
            if not now.final or sender not in now.payouts or sender in now.slashed:
                self.ignored.append((entry.seq, "claim before a settlement pays this party"))
                return
            self.claims.append(sender)
            if self.fixed is None:  # the first valid claim fixes the settlement
                self.fixed = (now.status, now.depositors, now.slashed)


def depositors(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Parties whose first deposit is exactly the agreed amount, in name order."""
    return tuple(p for p in terms.parties if view.deposits.get(p) == terms.deposit)


def progress(view: EscrowView, terms: EscrowTerms) -> int:
    """The highest round that at least ``quorum`` parties reported done (0 if none)."""
    return max((r for r, who in view.done.items() if len(who) >= terms.quorum), default=0)


def completed(view: EscrowView, terms: EscrowTerms) -> bool:
    """Whether the last round is done by a quorum."""
    return progress(view, terms) >= terms.rounds


def silent(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Depositors at least ``silent_rounds`` rounds behind the session's progress."""
    reached = progress(view, terms)
    return tuple(
        p
        for p in depositors(view, terms)
        if reached - view.last_signal.get(p, 0) >= terms.silent_rounds
    )


def kill_votes(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """For each depositor, the distinct other depositors who voted to kill it."""
    members = set(depositors(view, terms))
    return {
        target: tuple(sorted(v for v in view.votes.get(target, ()) if v in members))
        for target in sorted(members)
    }


def majority(votes: int, members: int) -> bool:
    """A strict majority of the other ``members - 1`` parties: ``2 * votes > members - 1``."""
    return 2 * votes > members - 1


def _count_votes(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """The slashed depositors, each with the votes that counted against it.

    Votes are counted in channel order, each only if its voter is not slashed when it is
    counted (see the module docstring): the vote that slashes a party comes from one who
    stays, so at least one depositor always remains.
    """
    members = depositors(view, terms)
    counted: dict[str, list[str]] = {}
    lost: dict[str, tuple[str, ...]] = {}
    for voter, target in view.vote_order:
        if voter not in members or target not in members or voter in lost or target in lost:
            continue
        counted.setdefault(target, []).append(voter)
        if majority(len(counted[target]), len(members)):
            lost[target] = tuple(sorted(counted[target]))
    return {p: lost[p] for p in members if p in lost}


def slashed(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Depositors with kill votes from a strict majority of the other depositors."""
    return tuple(_count_votes(view, terms))


def slash_voters(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """For each slashed depositor, the voters whose votes counted against it (name order).

    On layer 1 the ``Slash`` redeemer carries, for each slashed party, these voters' kill
    votes signed with their payment keys (``contract/escrow.py`` checks each signature and
    a strict majority of the other parties), so the settlement the rules computed is one
    the validator accepts.
    """
    return _count_votes(view, terms)


@dataclass(frozen=True)
class Settlement:
    """What the escrow pays, and why.

    Attributes:
        status: ``pending`` (nothing claimable yet), ``completed`` or ``slashed``.
        depositors: parties in the escrow, name order (the on-chain datum order).
        slashed: parties who lose their deposit.
        payouts: lovelace per depositor (empty while pending).
        claims: who has claimed so far (only remaining depositors count).
    """

    status: str
    depositors: tuple[str, ...]
    slashed: tuple[str, ...]
    payouts: dict[str, int]
    claims: tuple[str, ...]

    @property
    def final(self) -> bool:
        return self.status != PENDING


def payouts(members: tuple[str, ...], lost: tuple[str, ...], deposit: int) -> dict[str, int]:
    """Split the pool: slashed get 0, the others their deposit plus an equal share.

    Raises:
        ValueError: everyone is slashed (no one to pay).
    """
    honest = [p for p in members if p not in lost]
    if not honest:
        raise ValueError("every depositor is slashed; nobody to pay")
    forfeited = deposit * len(lost)
    share, extra = divmod(forfeited, len(honest))
    paid = {p: 0 for p in lost}
    for i, p in enumerate(honest):
        paid[p] = deposit + share + (1 if i < extra else 0)
    return dict(sorted(paid.items()))


def refunds(members: tuple[str, ...], deposit: int) -> dict[str, int]:
    """What the layer-1 refund after the deadline pays: every depositor its own deposit.

    The refund needs no vote and no settlement; it is what is left when nobody settled the
    pool before the deadline, and it is :func:`payouts` with nobody slashed.
    """
    return payouts(members, (), deposit)


def settle(view: EscrowView, terms: EscrowTerms) -> Settlement:
    """The settlement the history implies (see the module docstring)."""
    if view.fixed is not None:
        status, members, lost = view.fixed
    else:
        members = depositors(view, terms)
        lost = slashed(view, terms)
        status = COMPLETED if completed(view, terms) else SLASHED if lost else PENDING
    paid = payouts(members, lost, terms.deposit) if status != PENDING and members else {}
    valid_claims = tuple(c for c in view.claims if c in members and c not in lost)
    return Settlement(status, members, lost, paid, valid_claims if status != PENDING else ())


def settlement_of(entries: Iterable[Entry], terms: EscrowTerms) -> Settlement:
    """:func:`settle` straight from channel entries."""
    return settle(EscrowView.from_entries(entries, terms), terms)
