"""Escrow settlement as pure functions over the channel history (DESIGN.md section 7).

Every party reads the same ordered history (either channel backend), so every party computes
the same settlement; the on-chain validator (``contract/escrow.py``) enforces the same
arithmetic on the layer-1 settlement transaction.

Rules, for the depositors ``D`` (parties whose first ``EscrowDeposit`` is exactly
:attr:`EscrowTerms.deposit`), ``n = |D|``:

* **progress**: the highest round ``r`` with ``RoundDone`` from at least ``quorum`` parties;
  the session is **complete** when ``r`` is the last round.
* **silent**: a depositor whose last signal (``Submitted`` or ``RoundDone``) is at least
  ``silent_rounds`` rounds behind the progress, or that the round machine marked absent;
  informative, it justifies a kill vote.
* **slashed**: a depositor ``t`` with kill votes from at least two and more than
  ``(n - 1) / 2`` distinct other depositors (a strict majority of the others, and never one
  party alone: with two depositors nobody can be slashed). Only the parties ``t``'s lock
  lists (:meth:`EscrowTerms.community`) vote on it and share it: everyone in a session
  without newcomers; a newcomer's lock lists the session file's parties and itself, a
  listed party's lock no newcomer. ``n`` counts the depositors of the largest lock that
  lists ``t``: every such lock must prove ``t`` slashed before it pays out, and the
  validator counts the majority over that lock's own parties, so a listed party's slash
  is judged on a newcomer's lock, one party larger (four listed parties and a newcomer:
  three votes, not two). Fewer votes: the vote fails, nothing happens. When the terms
  name the parties' payment keys (an escrow settled on layer 1), a kill vote counts only
  if it carries a valid signature by the voter's payment key over (session, round,
  target) -- exactly the evidence the validator checks.
  Votes count in channel order, and only while the voter is not slashed itself: the vote
  that slashes a party comes from one who stays, so the last depositor is never slashed and
  the pool always has someone to go to (without this, three parties voting against each
  other slashed everyone and left the pool to nobody).
* **payouts** (once complete, or once someone is slashed): each depositor's deposit is its
  own lock on layer 1 and is settled on its own (:func:`lock_payouts`). A remaining party's
  lock returns its deposit to it; a slashed party's lock is split among the ``h`` remaining
  depositors, ``floor(deposit / h)`` each and the ``deposit mod h`` lovelace left over one
  each to the first remaining parties in name order. :func:`payouts` adds the locks up: the
  ``n * deposit`` locked is paid out exactly, a slashed party gets 0.
* **kill votes** count only between depositors: a vote cast before the voter's or the
  target's deposit is ignored (otherwise a party could be slashed by the vote that was
  waiting for it the moment it deposited).
* **claim**: a remaining depositor may claim once the settlement is final (an earlier claim
  is ignored, not held over). The first valid claim **fixes** the settlement (status,
  depositors, slashed, payouts): deposits and kill votes after it are ignored, so no one is
  paid by one settlement and then judged by another (a kill vote after a refund used to take
  that refund back on paper).
* **refund** (layer 1): a lock nobody settled before the session's deadline returns its
  deposit to its owner (:func:`refunds`); slashing is possible only before the deadline.
* **release votes** (layer 1): once the settlement is final, each remaining party signs a
  ``ReleaseVote`` for every other remaining party; a lock is released to its owner with
  votes from a strict majority of the other remaining parties.

``tests/escrow/test_settlement_properties.py`` checks these rules over every history of up
to eight messages, ten in the slow run (the seed's escrow-balance spec, as properties): the
payouts are the pool exactly, only depositors are paid, the slashed get nothing, someone is
always paid, a claimed settlement never changes, and the validator accepts every final one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from zkadapt.channel.base import Entry
from zkadapt.escrow.messages import (
    Claim,
    EscrowDeposit,
    KillVote,
    MalformedEscrowMessage,
    ReleaseVote,
    Signal,
    read_payload,
)
from zkadapt.escrow.votes import SignedKillVote, SignedReleaseVote

#: Kill votes a slash needs at least, whatever the number of parties: never one party alone.
MIN_KILL_VOTES = 2

PENDING = "pending"
COMPLETED = "completed"
SLASHED = "slashed"


@dataclass(frozen=True)
class AdmittedDeposit:
    """A newcomer's place in the escrow, as its admitted ``JoinRequest`` declared it.

    Attributes:
        key: its identity public key (hex): its escrow entries must verify against it (the
            channel only checked them against a key it introduced itself with).
        deposit: lovelace its request declared (a depositor when it is the agreed amount).
        ref: its layer-1 lock's out-ref (empty without a layer-1 escrow).
        since: the channel seq of the boundary that admitted it: its deposit counts from
            there on, like a listed party's from its ``EscrowDeposit``.
        first_round: its first round as a member: it cannot be silent before (it has no
            round to signal), so its silence counts from there.
    """

    key: str
    deposit: int
    ref: str
    since: int
    first_round: int = 1


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
        payment_keys: party -> payment key hash (28 bytes) for an escrow settled on layer 1,
            where only votes signed with these keys count; empty: votes need no signature.
            Newcomers included.
        newcomers: the parties the round machine admitted (docs/membership.md), read off
            the same channel: each one's deposit is the one its admitted request declared.
        absent: members the round machine marked absent: with escrow they are parties that
            left early (:func:`silent` names them, so the others vote them out).
    """

    session: str
    parties: tuple[str, ...]
    deposit: int
    rounds: int
    quorum: int
    silent_rounds: int = 1
    payment_keys: Mapping[str, bytes] = field(default_factory=dict)
    newcomers: Mapping[str, AdmittedDeposit] = field(default_factory=dict)
    absent: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.deposit < 1 or self.rounds < 1 or self.quorum < 1 or self.silent_rounds < 1:
            raise ValueError("deposit, rounds, quorum and silent_rounds must be >= 1")
        object.__setattr__(self, "parties", tuple(sorted(self.parties)))
        object.__setattr__(self, "newcomers", dict(self.newcomers))
        if set(self.newcomers) & set(self.parties):
            raise ValueError("a newcomer cannot have a listed party's name")
        keys = dict(self.payment_keys)
        if keys and (set(keys) != set(self.everyone) or any(len(k) != 28 for k in keys.values())):
            raise ValueError("payment_keys must map every party to a 28-byte key hash")
        object.__setattr__(self, "payment_keys", keys)

    @property
    def everyone(self) -> tuple[str, ...]:
        """The listed parties and the admitted newcomers, in name order."""
        return tuple(sorted((*self.parties, *self.newcomers)))

    def community(self, owner: str) -> tuple[str, ...]:
        """The parties ``owner``'s lock lists (its datum's ``parties``), in name order: a
        listed party's lock lists the session file's parties, a newcomer's those and itself
        (locks made before it cannot list it). Only they vote on that lock and share it."""
        if owner in self.newcomers:
            return tuple(sorted((*self.parties, owner)))
        return self.parties

    @property
    def on_layer1(self) -> bool:
        """Whether votes must carry payment-key signatures (the layer-1 evidence)."""
        return bool(self.payment_keys)

    @property
    def session_bytes(self) -> bytes:
        return bytes.fromhex(self.session)


@dataclass
class EscrowView:
    """The escrow-relevant facts of one session's history, in channel order."""

    deposits: dict[str, int] = field(default_factory=dict)
    #: party -> the out-ref of its layer-1 lock its first deposit names (may be empty).
    refs: dict[str, str] = field(default_factory=dict)
    last_signal: dict[str, int] = field(default_factory=dict)
    done: dict[int, set[str]] = field(default_factory=dict)
    #: (voter, target) in channel order, first vote per pair: the order decides slashing.
    vote_order: list[tuple[str, str]] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    ignored: list[tuple[int, str]] = field(default_factory=list)
    #: (voter, target) -> the vote signed with the voter's payment key (layer-1 evidence).
    kill_evidence: dict[tuple[str, str], SignedKillVote] = field(default_factory=dict)
    #: (voter, target) -> the release vote signed with the voter's payment key.
    release_evidence: dict[tuple[str, str], SignedReleaseVote] = field(default_factory=dict)
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
        last = 0
        for entry in entries:
            view._admit(entry.seq, terms)
            view._add(entry, terms)
            last = max(last, entry.seq)
        view._admit(last, terms)  # admitted by the last entry itself
        return view

    def _admit(self, seq: int, terms: EscrowTerms) -> None:
        """Newcomers admitted at or before channel entry ``seq`` become depositors with
        their requests' deposits (after the first claim, no one does)."""
        for name, joined in terms.newcomers.items():
            if name in self.deposits or joined.since > seq:
                continue
            if self.fixed is None:
                self.deposits[name] = joined.deposit
                self.refs[name] = joined.ref

    def _add(self, entry: Entry, terms: EscrowTerms) -> None:
        sender = entry.envelope.sender
        try:
            item = read_payload(entry.envelope.payload)
        except MalformedEscrowMessage as exc:
            self.ignored.append((entry.seq, f"malformed escrow message: {exc}"))
            return
        if item is None or item.session != terms.session:
            return
        if item.party != sender or sender not in terms.everyone:
            self.ignored.append((entry.seq, "signer does not match party"))
            return
        joined = terms.newcomers.get(sender)
        if joined is not None and not _signed_by(entry, joined.key):
            why = "bad signature: not the key the newcomer was admitted with"
            self.ignored.append((entry.seq, why))
            return
        if isinstance(item, Signal):
            self.last_signal[sender] = max(self.last_signal.get(sender, 0), item.round)
            if item.kind == "RoundDone":
                self.done.setdefault(item.round, set()).add(sender)
        elif isinstance(item, EscrowDeposit | KillVote) and self.fixed is not None:
            self.ignored.append((entry.seq, f"{item.TYPE} after the first claim: settled"))
        elif isinstance(item, EscrowDeposit):
            if joined is not None:
                self.ignored.append(
                    (entry.seq, "a newcomer's deposit is the one its admitted request declared")
                )
            elif sender not in self.deposits:
                self.deposits[sender] = item.amount
                self.refs[sender] = item.ref
        elif isinstance(item, KillVote):
            members = depositors(self, terms)
            if sender not in members or item.target not in members:
                self.ignored.append((entry.seq, "kill vote before both parties deposited"))
                return
            if sender not in terms.community(item.target):
                self.ignored.append((entry.seq, f"{item.target}'s lock does not list the voter"))
                return
            if (sender, item.target) in self.vote_order:
                return
            if terms.on_layer1:
                signed = _signed_kill(item, terms)
                if signed is None:
                    self.ignored.append((entry.seq, "kill vote without a valid payment signature"))
                    return
                self.kill_evidence[(sender, item.target)] = signed
            self.vote_order.append((sender, item.target))
        elif isinstance(item, ReleaseVote):
            signed_release = _signed_release(item, terms)
            if signed_release is None:
                self.ignored.append((entry.seq, "release vote without a valid payment signature"))
                return
            self.release_evidence.setdefault((sender, item.target), signed_release)
        elif isinstance(item, Claim) and sender not in self.claims:
            now = settle(self, terms)
            if not now.final or sender not in now.payouts or sender in now.slashed:
                self.ignored.append((entry.seq, "claim before a settlement pays this party"))
                return
            self.claims.append(sender)
            if self.fixed is None:  # the first valid claim fixes the settlement
                self.fixed = (now.status, now.depositors, now.slashed)


def _signed_by(entry: Entry, key: str) -> bool:
    """Whether ``entry``'s envelope verifies against the identity key ``key`` (hex)."""
    from zkadapt.crypto.identity import PublicIdentity

    envelope = entry.envelope
    return bool(PublicIdentity.from_hex(key).verify(envelope.payload, envelope.signature))


def _signed_kill(item: KillVote, terms: EscrowTerms) -> SignedKillVote | None:
    """The vote's payment-key evidence if it verifies as the validator would, else None."""
    if item.target not in terms.payment_keys or not item.vkey:
        return None
    vote = SignedKillVote(
        item.party, item.target, item.round, bytes.fromhex(item.vkey), bytes.fromhex(item.signature)
    )
    keys = terms.payment_keys
    ok = 1 <= item.round <= terms.rounds
    return (
        vote
        if ok and vote.verify(terms.session_bytes, keys[item.party], keys[item.target])
        else None
    )


def _signed_release(item: ReleaseVote, terms: EscrowTerms) -> SignedReleaseVote | None:
    keys = terms.payment_keys
    if item.target not in keys or item.party not in keys:
        return None
    vote = SignedReleaseVote(
        item.party, item.target, bytes.fromhex(item.vkey), bytes.fromhex(item.signature)
    )
    return vote if vote.verify(terms.session_bytes, keys[item.party], keys[item.target]) else None


def depositors(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Parties (newcomers included) whose first deposit is exactly the agreed amount, in
    name order."""
    return tuple(p for p in terms.everyone if view.deposits.get(p) == terms.deposit)


def progress(view: EscrowView, terms: EscrowTerms) -> int:
    """The highest round that at least ``quorum`` parties reported done (0 if none)."""
    return max((r for r, who in view.done.items() if len(who) >= terms.quorum), default=0)


def completed(view: EscrowView, terms: EscrowTerms) -> bool:
    """Whether the last round is done by a quorum."""
    return progress(view, terms) >= terms.rounds


def silent(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Depositors at least ``silent_rounds`` rounds behind the session's progress, and
    those the round machine marked absent (they left early: docs/membership.md)."""
    reached = progress(view, terms)
    return tuple(
        p
        for p in depositors(view, terms)
        if reached - last_signal(view, terms, p) >= terms.silent_rounds or p in terms.absent
    )


def last_signal(view: EscrowView, terms: EscrowTerms, party: str) -> int:
    """The last round ``party`` signalled; for a newcomer at least the round before its
    first (the rounds before it joined are none of its business)."""
    joined = terms.newcomers.get(party)
    before = joined.first_round - 1 if joined is not None else 0
    return max(view.last_signal.get(party, 0), before)


def kill_votes(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """For each depositor, the distinct other depositors of its lock who voted to kill it."""
    members = set(depositors(view, terms))
    return {
        target: tuple(
            sorted(
                v
                for v in view.votes.get(target, ())
                if v in members and v in terms.community(target)
            )
        )
        for target in sorted(members)
    }


def majority(votes: int, members: int) -> bool:
    """A strict majority of the other ``members - 1`` parties: ``2 * votes > members - 1``."""
    return 2 * votes > members - 1


def enough_to_slash(votes: int, members: int) -> bool:
    """Kill votes that slash: a strict majority of the others and at least two (never one)."""
    return votes >= MIN_KILL_VOTES and majority(votes, members)


def _count_votes(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """The slashed depositors, each with the votes that counted against it.

    Votes are counted in channel order, each only if its voter is not slashed when it is
    counted (see the module docstring): the vote that slashes a party comes from one who
    stays, so at least one depositor always remains.
    """
    members = depositors(view, terms)
    needed = {target: _slash_size(members, terms, target) for target in members}
    counted: dict[str, list[str]] = {}
    lost: dict[str, tuple[str, ...]] = {}
    for voter, target in view.vote_order:
        if voter not in members or target not in members or voter in lost or target in lost:
            continue
        if voter not in terms.community(target):  # only the parties its lock lists vote
            continue
        counted.setdefault(target, []).append(voter)
        if enough_to_slash(len(counted[target]), needed[target]):
            lost[target] = tuple(sorted(counted[target]))
    return {p: lost[p] for p in members if p in lost}


def _slash_size(members: tuple[str, ...], terms: EscrowTerms, target: str) -> int:
    """The ``n`` of a slash of ``target``: the depositors of the largest lock listing it.

    Each lock that lists ``target`` proves it slashed with these votes (its ``Release``
    proves every slashed party it lists, its ``Slash`` must, or the unproven party counts
    as remaining and must be paid), and ``contract/escrow.py`` wants two and a strict
    majority of the others among that lock's parties. A listed party is listed by every
    newcomer's lock too, which has one party more (the newcomer, who cannot vote on it):
    votes short there would leave that lock with no settlement the validator accepts.
    """
    return max(
        sum(1 for p in members if p in terms.community(owner))
        for owner in members
        if target in terms.community(owner)
    )


def slashed(view: EscrowView, terms: EscrowTerms) -> tuple[str, ...]:
    """Depositors with kill votes from two and a strict majority of the other depositors
    of the largest lock that lists them, all from parties their own lock lists."""
    return tuple(_count_votes(view, terms))


def slash_voters(view: EscrowView, terms: EscrowTerms) -> dict[str, tuple[str, ...]]:
    """For each slashed depositor, the voters whose votes counted against it (name order).

    On layer 1 the ``Slash`` and ``Release`` redeemers carry, for each slashed party, these
    voters' kill votes signed with their payment keys (``contract/escrow.py`` checks each
    signature, two votes at least and a strict majority of the other parties), so the
    settlement the rules computed is one the validator accepts.
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
        deposit: each depositor's deposit (each lock's amount on layer 1).
        newcomers: the depositors who joined during the session: a lock of theirs lists
            the listed parties and its owner; a listed party's lists no newcomer.
    """

    status: str
    depositors: tuple[str, ...]
    slashed: tuple[str, ...]
    payouts: dict[str, int]
    claims: tuple[str, ...]
    deposit: int = 0
    newcomers: tuple[str, ...] = ()

    @property
    def final(self) -> bool:
        return self.status != PENDING

    def lock_members(self, owner: str) -> tuple[str, ...]:
        """The depositors ``owner``'s lock lists (:meth:`EscrowTerms.community`): who votes
        on it and who shares it when it is slashed."""
        return lock_members(self.depositors, self.newcomers, owner)


def lock_members(
    depositors: tuple[str, ...], newcomers: Iterable[str], owner: str
) -> tuple[str, ...]:
    """The ``depositors`` that ``owner``'s lock lists: every listed one, and of the
    ``newcomers`` only the owner itself."""
    joined = set(newcomers)
    return tuple(p for p in depositors if p not in joined or p == owner)


def lock_payouts(
    members: tuple[str, ...], lost: tuple[str, ...], deposit: int, owner: str
) -> dict[str, int]:
    """What ``owner``'s lock pays (what the validator enforces for that one lock).

    A remaining owner gets its deposit back (``Release``); a slashed owner's deposit is split
    among the ``h`` remaining members in name order: ``deposit // h`` each, and one more
    lovelace to each of the first ``deposit % h`` (``Slash``). Parties paid 0 are left out.

    Raises:
        ValueError: everyone is slashed (no one to pay) or ``owner`` is no member.
    """
    if owner not in members:
        raise ValueError(f"{owner} has no lock among the depositors")
    if owner not in lost:
        return {owner: deposit}
    honest = [p for p in members if p not in lost]
    if not honest:
        raise ValueError("every depositor is slashed; nobody to pay")
    share, extra = divmod(deposit, len(honest))
    paid = {p: share + (1 if i < extra else 0) for i, p in enumerate(honest)}
    return {p: v for p, v in paid.items() if v}


def payouts(
    members: tuple[str, ...],
    lost: tuple[str, ...],
    deposit: int,
    newcomers: Iterable[str] = (),
) -> dict[str, int]:
    """Every depositor's total over all locks: slashed get 0, the others their deposit plus
    their part of each slashed deposit their lock lists with them (:func:`lock_payouts`
    over :func:`lock_members`: a newcomer shares no other lock).

    Raises:
        ValueError: everyone a slashed lock lists is slashed (no one to pay).
    """
    joined = tuple(newcomers)
    paid = {p: 0 for p in members}
    for owner in members:
        listed = lock_members(members, joined, owner)
        for p, amount in lock_payouts(listed, lost, deposit, owner).items():
            paid[p] += amount
    return dict(sorted(paid.items()))


def refunds(members: tuple[str, ...], deposit: int) -> dict[str, int]:
    """What the layer-1 refunds after the deadline pay: every depositor its own deposit.

    A refund needs no vote and no settlement; it is what is left when nobody settled a lock
    before the deadline, and it is :func:`payouts` with nobody slashed.
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
    joined = tuple(p for p in members if p in terms.newcomers)
    final = status != PENDING and members
    paid = payouts(members, lost, terms.deposit, joined) if final else {}
    valid_claims = tuple(c for c in view.claims if c in members and c not in lost)
    claims = valid_claims if status != PENDING else ()
    return Settlement(status, members, lost, paid, claims, terms.deposit, joined)


def settlement_of(entries: Iterable[Entry], terms: EscrowTerms) -> Settlement:
    """:func:`settle` straight from channel entries."""
    return settle(EscrowView.from_entries(entries, terms), terms)
