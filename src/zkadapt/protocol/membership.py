"""Who is a member of each round: admission and absence as pure rules over channel order.

docs/membership.md is the user's page; this module is the rules, and the round machine
(:mod:`zkadapt.protocol.machine`) is their only caller: it folds every ``JoinRequest`` and
``Admit`` into a :class:`Roster` in channel order and calls :func:`at_boundary` at each
round's *boundary*, so every party, observer and the model checker derive the same
membership of every round from the channel alone.

The boundary of round r is the channel entry where its submit phase is cut (the
``close_votes``-th distinct ``PhaseClosed`` vote, ``RoundView.cut``). Cuts come in round
order (an honest party posts nothing of round r + 1 before its own outcome of round r, which
needs r's cut; anything else is a recorded violation), so the entries between the boundary
of round r - 1 and that of round r are "during round r", the round in progress.

Admission (``membership.admission``):

``"fixed"``  every ``JoinRequest`` is refused (the session file's parties only).
``"open"``   a valid request made during round r is admitted at r's boundary: its sender is
             a member from round r + 1 on.
``"vote"``   a valid request is approved at the entry of the ``votes``-th distinct ``Admit``
             for it by a member of the round in progress; approved during round r, it is
             admitted at r's boundary (member from r + 1).

A request is refused, in channel order and with a reason every party derives the same way
(:class:`Refusal`), when its signature does not verify against the key it carries, its name
is a listed party's, a member's or a pending request's, its key is one already used, the
round in progress is the last, too many requests are pending, its deposit is below
``min_deposit`` (or, with a layer-1 escrow, it names no lock), or the membership would exceed
``max_parties`` (checked when it arrives and again when it is approved).

Absence: at the boundary of round r, a member that has been one for at least
``absent_rounds`` rounds and has no counted entry of any of the last ``absent_rounds`` rounds
(up to r, as far as the channel shows at the boundary) is marked absent from round r + 1: it
no longer counts for quorum, close votes or the "everyone submitted" close, its entries of
later rounds are violations, and later key epochs leave it out. Absence is final.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

Admission = Literal["fixed", "open", "vote"]

#: Pending requests a roster holds at most (a bound on what hostile requests can make
#: every party remember; a request beyond it is refused).
MAX_PENDING = 32


@dataclass(frozen=True)
class MembershipRules:
    """The ``[membership]`` section as the machine decides with it (fixed for a session)."""

    admission: Admission = "fixed"
    votes: int = 1
    max_parties: int = 16
    #: Rounds without an entry after which a member is marked absent; None: never.
    absent_rounds: int | None = 3
    #: Public keys (hex) of the session file's parties: a newcomer may not reuse one.
    listed_keys: frozenset[str] = frozenset()
    #: ``protocol.quorum`` / ``protocol.close_votes`` when the session file sets them;
    #: None: a majority of the round's active members (close votes: at most t or that).
    quorum: int | None = None
    close_votes: int | None = None
    #: The decryption threshold t (0: updates in the clear); the default close votes.
    threshold: int = 0
    #: The smallest deposit a request must declare (lovelace; 0: none needed):
    #: ``escrow.deposit_lovelace`` when the escrow is on layer 1.
    min_deposit: int = 0
    #: Whether a request must name its layer-1 lock (the escrow is on layer 1): the members
    #: who vote to admit it check that lock first (docs/membership.md, "Escrow").
    lock_required: bool = False


@dataclass(frozen=True)
class Candidacy:
    """What a party that is not in the session file asks with (``zkadapt join``)."""

    public_key: str
    n_samples: int
    deposit: int = 0
    #: The out-ref of its layer-1 lock (``txid#index``); empty without a layer-1 escrow.
    lock: str = ""


@dataclass(frozen=True)
class Request:
    """A valid ``JoinRequest`` waiting for its boundary."""

    name: str
    key: str
    n_samples: int
    deposit: int
    lock: str = ""
    #: Distinct members whose ``Admit`` counted, in channel order (``"vote"``).
    approvals: tuple[str, ...] = ()
    approved: bool = False


@dataclass(frozen=True)
class Newcomer:
    """An admitted party: its key and declared size, its first round as a member, and the
    escrow deposit (and layer-1 lock) its request declared."""

    name: str
    key: str
    n_samples: int
    round: int
    deposit: int = 0
    lock: str = ""


@dataclass(frozen=True)
class Refusal:
    """A refused ``JoinRequest``. ``key`` is empty when the signature did not verify (the
    key it carries proves nothing then, so the refusal is nobody's)."""

    name: str
    key: str
    reason: str


@dataclass(frozen=True)
class Roster:
    """What the channel has said about membership so far (hashable; channel order)."""

    pending: tuple[Request, ...] = ()
    admitted: tuple[Newcomer, ...] = ()
    refused: tuple[Refusal, ...] = ()
    absent: tuple[tuple[str, int], ...] = ()  # (party, first round it is absent from)
    #: The last round whose boundary has passed (0: round 1 is in progress).
    settled: int = 0

    @property
    def in_progress(self) -> int:
        """The round in progress: the first whose boundary has not passed."""
        return self.settled + 1

    def admitted_in(self, r: int) -> tuple[str, ...]:
        """Newcomers whose first round as members is ``r``."""
        return tuple(n.name for n in self.admitted if n.round == r)

    def newcomer(self, name: str) -> Newcomer | None:
        return next((n for n in self.admitted if n.name == name), None)

    def absent_from(self, name: str) -> int | None:
        return next((r for p, r in self.absent if p == name), None)


#: The roster of a channel that has said nothing about membership yet (frozen: shared).
NO_ROSTER = Roster()


def members(listed: Iterable[str], roster: Roster, r: int) -> tuple[str, ...]:
    """The active members of round ``r``, in name order: the listed parties and the
    newcomers admitted by then, less those marked absent by then."""
    names = set(listed) | {n.name for n in roster.admitted if n.round <= r}
    return tuple(sorted(p for p in names if (roster.absent_from(p) or r + 1) > r))


def first_round(roster: Roster, party: str) -> int:
    """The first round ``party`` is a member of (1 for a listed party)."""
    newcomer = roster.newcomer(party)
    return newcomer.round if newcomer is not None else 1


def quorum(rules: MembershipRules, active: int) -> int:
    """Accepted updates a round with ``active`` members needs."""
    return rules.quorum if rules.quorum is not None else active // 2 + 1


def close_votes(rules: MembershipRules, active: int) -> int:
    """Distinct ``PhaseClosed`` (``RoundFailed``) votes that cut (fail) such a round: the
    setting, else t (encrypted) or a majority, never more than the quorum
    (``SessionConfig.close_votes`` with the round's members)."""
    if rules.close_votes is not None:
        return rules.close_votes
    default = rules.threshold if rules.threshold else active // 2 + 1
    return min(default, quorum(rules, active))


def status(roster: Roster, name: str, key: str) -> tuple[str, int | str] | None:
    """A candidate's own standing: ``("admitted", round)``, ``("pending", 0)``,
    ``("refused", reason)``, or None before its request is on the channel.

    Only requests signed with ``key`` are the candidate's: someone else's request under
    the same name (refused, or admitted first) is not, and makes ours refused."""
    for n in roster.admitted:
        if n.name == name:
            return ("admitted", n.round) if n.key == key else ("refused", _taken(name))
    if any(q.name == name and q.key == key for q in roster.pending):
        return ("pending", 0)
    for refusal in roster.refused:
        if refusal.name == name and refusal.key == key:
            return ("refused", refusal.reason)
    if any(q.name == name for q in roster.pending):
        return ("refused", _taken(name))
    return None


# -- folding entries in -------------------------------------------------------------------


def request(
    rules: MembershipRules,
    roster: Roster,
    listed: Sequence[str],
    rounds: int,
    candidate: Request,
    *,
    authentic: bool,
) -> Roster:
    """Fold a ``JoinRequest`` in: pending (approved at once with ``"open"``) or refused."""
    why = _refusal(rules, roster, listed, rounds, candidate, authentic=authentic)
    if why is not None:
        key = candidate.key if authentic else ""
        return replace(roster, refused=(*roster.refused, Refusal(candidate.name, key, why)))
    approved = replace(candidate, approved=rules.admission == "open", approvals=())
    return replace(roster, pending=(*roster.pending, approved))


def would_refuse(
    rules: MembershipRules,
    roster: Roster,
    listed: Sequence[str],
    rounds: int,
    candidate: Request,
) -> str | None:
    """Why a self-signed request by ``candidate`` would be refused if it were the next
    entry of the channel (``zkadapt join`` asks before posting), or None."""
    return _refusal(rules, roster, listed, rounds, candidate, authentic=True)


def _taken(name: str) -> str:
    return f"the name {name} is taken"


def _refusal(
    rules: MembershipRules,
    roster: Roster,
    listed: Sequence[str],
    rounds: int,
    candidate: Request,
    *,
    authentic: bool,
) -> str | None:
    """Why a request is refused, or None (the reasons in the module docstring, in order)."""
    if not authentic:
        return "bad signature: the request is not signed by the key it carries"
    if rules.admission == "fixed":
        return 'membership is fixed (membership.admission = "fixed")'
    name, key = candidate.name, candidate.key
    taken = {*listed, *(n.name for n in roster.admitted), *(q.name for q in roster.pending)}
    if name in taken:
        return _taken(name)
    used = {*rules.listed_keys, *(n.key for n in roster.admitted)}
    if key in used or any(q.key == key for q in roster.pending):
        return "its public key is already used in this session"
    if roster.in_progress >= rounds:
        return f"no round left to join (round {roster.in_progress} of {rounds} in progress)"
    if len(roster.pending) >= MAX_PENDING:
        return f"too many pending requests (at most {MAX_PENDING})"
    if candidate.deposit < rules.min_deposit:
        return f"deposit {candidate.deposit} is below the required {rules.min_deposit}"
    if rules.lock_required and not candidate.lock:
        return "no escrow lock named (the escrow is on layer 1: lock the deposit first)"
    counted = [q for q in roster.pending if q.approved or rules.admission == "open"]
    if _size(listed, roster) + len(counted) + 1 > rules.max_parties:
        return f"over membership.max_parties ({rules.max_parties})"
    return None


def _size(listed: Sequence[str], roster: Roster) -> int:
    """Members now and from the next boundary on (absent ones no longer count)."""
    return len(members(listed, roster, roster.in_progress + 1))


def admit(
    rules: MembershipRules, roster: Roster, listed: Sequence[str], voter: str, candidate: str
) -> Roster:
    """Fold an ``Admit`` in: it counts once per member of the round in progress, for a
    pending request; the ``votes``-th approves it (or refuses it over the cap)."""
    if rules.admission != "vote" or voter not in members(listed, roster, roster.in_progress):
        return roster
    found = next((q for q in roster.pending if q.name == candidate), None)
    if found is None or found.approved or voter in found.approvals:
        return roster
    voted = replace(found, approvals=(*found.approvals, voter))
    if len(voted.approvals) >= rules.votes:
        approved = sum(1 for q in roster.pending if q.approved)
        if _size(listed, roster) + approved + 1 > rules.max_parties:
            refusal = Refusal(
                found.name, found.key, f"over membership.max_parties ({rules.max_parties})"
            )
            pending = tuple(q for q in roster.pending if q is not found)
            return replace(roster, pending=pending, refused=(*roster.refused, refusal))
        voted = replace(voted, approved=True)
    pending = tuple(voted if q is found else q for q in roster.pending)
    return replace(roster, pending=pending)


def at_boundary(
    rules: MembershipRules,
    roster: Roster,
    listed: Sequence[str],
    r: int,
    posted: Sequence[frozenset[str]],
) -> Roster:
    """Round ``r``'s boundary (its cut): admit the approved requests from round r + 1 and
    mark absent the members silent for ``absent_rounds`` rounds.

    Args:
        posted: ``posted[j - 1]``: who has a counted entry of round j (j = 1..r) so far.
    """
    if r <= roster.settled:
        return roster
    admitted = tuple(
        Newcomer(q.name, q.key, q.n_samples, r + 1, q.deposit, q.lock)
        for q in roster.pending
        if q.approved
    )
    pending = tuple(q for q in roster.pending if not q.approved)
    absent = roster.absent
    k = rules.absent_rounds
    if k is not None and r >= k:
        window = posted[r - k : r]
        for p in members(listed, roster, r):
            if first_round(roster, p) <= r - k + 1 and not any(p in seen for seen in window):
                absent = (*absent, (p, r + 1))
    return replace(
        roster,
        pending=pending,
        admitted=(*roster.admitted, *admitted),
        absent=absent,
        settled=r,
    )


def membership_changes(roster: Roster) -> tuple[int, ...]:
    """Rounds from which newcomers are members: each starts a new key epoch."""
    return tuple(sorted({n.round for n in roster.admitted}))
