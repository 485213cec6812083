"""The round protocol of one party as a pure state machine (DESIGN.md section 3).

Every decision of the protocol lives here, apart from the work itself (training, sealing,
verifying, summing, decrypting, evaluating): :func:`next_action` says what the party does
next from what it knows, and :func:`apply` folds what happened — a channel entry, a local
deadline, the result of an action — into what it knows. Both are pure functions of frozen,
hashable values, so

* :class:`zkadapt.protocol.round.RoundProtocol` drives them with the real channel, store
  and learner (sync, ask, execute, fold the result back in), and
* :mod:`zkadapt.protocol.model_check` drives the *same* functions through every
  interleaving of deliveries, timeouts, crashes and restarts and checks the invariants of
  ``specs/RoundProtocol.tla`` on every reachable state.

The phases of round r, as decisions:

``Join``             (key epochs) post ``Joined`` with our declared training-set size, once
``DealKey``          (key epochs) the dealer deals the round's key epoch and posts ``KeyDealt``
``KeygenStep``       (distributed keys) the next message round of the key generation, once
                     every party's previous one is on the channel
``OpenKey``          (key epochs) the source's ``KeyDealt`` is posted: open our share
                     (``Wait(r, "key")`` in between). When the key deadline passes and
                     :func:`~zkadapt.protocol.key_rules.decide_key` gives up, the party
                     goes without a key for round r: it submits nothing and lets the cut
                     decide (:func:`lacks_key`); the next round tries the key again
``Prepare``          the privacy scheme's own preparation, once the round's key is open
``TrainAndSubmit``   unless the submit phase already closed or our ``Submitted`` is posted
``CloseSubmissions`` when every party submitted, or this party's deadline passed: our
                     vote; the submit phase closes at the entry where ``close_votes``
                     distinct parties have voted (the cut), so no single party decides it
``Verify``           the submissions before the cut, then ``Reject`` each bad one once
``FailRound``        fewer than q accepted, or (encrypted) fewer than ``min_accepted``, or
                     a decrypted aggregate no accepted set could have sent: post
                     ``RoundFailed`` (once); round r failed, G(r) = G(r-1), and the party
                     goes on with round r+1
``Sum``              the accepted updates (homomorphic sum for paillier)
``PostShare``        our decryption share of that sum (threshold schemes only)
``CheckShare``       the posted shares in channel order until t are valid
``Combine``          exactly the first t valid shares (:func:`shares_to_combine`); at the
                     share deadline without them, post a ``RoundFailed`` vote: the round
                     failed iff fewer than t valid shares precede the ``close_votes``-th
                     ``RoundFailed`` in channel order (every party decides the same)
``Apply``            G(r) = outer_step(G(r-1), mean); evaluate; checkpoint
``Announce``         post ``RoundDone`` with our digest of G(r); then round r+1

A malicious party may post anything (THREATS.md): an entry that no honest party could post
at its place (:func:`_impossible`) is recorded in the round's ``violations`` and changes
nothing; a ``RoundDone`` whose digest contradicts ours names its sender (``Reject``, also
for a past round: :func:`digest_faults`), and a party halts only when a quorum of others,
and at least two, contradicts it.

A failed round is an outcome the session goes on from, decided from the channel alone (the
cut, or where the failing ``RoundFailed`` vote sits among the decryption shares), so every party
that decides round r decides the same: Done with one digest, or Failed. Local deadlines only
decide *when* a party posts; a party's own key deadline never fails a round by itself.

A party that crashes restarts with :func:`start` from its last checkpoint and replays the
channel: a checkpointed round whose ``RoundDone`` never reached the channel is announced
again, a posted submission is not redone, a closed round is followed without training, and a
failed round is decided failed again from the channel (failed rounds leave no checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from zkadapt.protocol import membership
from zkadapt.protocol.key_rules import KeyDeal, KeyFail, KeyOpen, KeyPlan, KeyWait, decide_key
from zkadapt.protocol.membership import Candidacy, MembershipRules, Request, Roster
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    Admit,
    DecryptionShare,
    Joined,
    JoinRequest,
    KeyDealt,
    KeyGenStep,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
)

_Record = TypeVar("_Record")


def evolve(record: _Record, **changes: Any) -> _Record:
    """A copy of a frozen record with ``changes``: :func:`dataclasses.replace` without the
    ``__init__`` call.

    The records here validate nothing in ``__init__``, and the model checker makes millions
    of copies (``dataclasses.replace`` was 40 % of its time), so the copy is a dict update.
    """
    assert changes.keys() <= record.__dataclass_fields__.keys(), changes  # type: ignore[attr-defined]
    copy = object.__new__(type(record))
    copy.__dict__.update(record.__dict__, **changes)
    return copy


#: Verdicts are ``(party, reason)``; ``reason is None`` means accepted / valid.
Verdict = tuple[str, "str | None"]


@dataclass(frozen=True)
class MachineSpec:
    """The fixed facts one party's machine decides with."""

    party: str
    parties: tuple[str, ...]
    rounds: int
    quorum: int
    #: Valid decryption shares that decrypt an aggregate (t); 0 when updates are in the clear.
    shares_needed: int = 0
    #: Whether this party holds a key share and so posts a decryption share.
    holds_share: bool = True
    #: The session's key epochs (DESIGN.md section 4); None when updates need no key.
    keys: KeyPlan | None = None
    #: Distinct parties whose ``PhaseClosed`` (or ``RoundFailed``) votes close the submit
    #: phase (or fail a round's decryption): no single party decides either (THREATS.md 2).
    close_votes: int = 1
    #: The smallest accepted set whose sum key holders decrypt (THREATS.md 2); 0: no floor.
    min_accepted: int = 0
    #: ``[membership]`` (docs/membership.md): None keeps the session file's parties for
    #: every round, with ``quorum`` and ``close_votes`` as given here.
    membership: MembershipRules | None = None
    #: A party that is no listed party asks to join with this (``zkadapt join``).
    candidacy: Candidacy | None = None


@dataclass(frozen=True)
class RoundView:
    """What the channel has said about one round, as far as this party has read it."""

    submitted: tuple[str, ...] = ()  # first Submitted per party, in channel order
    closers: tuple[str, ...] = ()  # distinct PhaseClosed(submit) voters, in channel order
    cut: tuple[str, ...] | None = None  # submitters before the close_votes-th vote
    my_rejections: frozenset[tuple[str, str]] = frozenset()  # (party, reason) we posted
    failers: tuple[str, ...] = ()  # distinct RoundFailed posters, in channel order
    #: Decryption shares before the close_votes-th ``RoundFailed`` (None: fewer votes yet).
    #: Only the shares before it count: a round with t valid ones there is decrypted anyway.
    failed_at: int | None = None
    shares: tuple[str, ...] = ()  # first DecryptionShare per party, in channel order
    done: tuple[tuple[str, str], ...] = ()  # (party, digest): first RoundDone per party
    #: ``(sender, what)``: entries impossible at their place, recorded and otherwise ignored.
    violations: tuple[tuple[str, str], ...] = ()

    @property
    def failed(self) -> bool:
        """Enough ``RoundFailed`` votes are in the channel to fail the decryption."""
        return self.failed_at is not None

    def finished_by(self, party: str) -> bool:
        """Whether the channel shows ``party`` done with this round: its ``RoundDone`` or
        ``RoundFailed`` is there, or the round failed by votes (an honest party posts nothing
        of the next round before one of these)."""
        return self.failed or party in self.failers or any(p == party for p, _ in self.done)


@dataclass(frozen=True)
class PartyState:
    """Everything one party's protocol knows; hashable (the model checker stores it)."""

    round: int  # the round in progress; rounds + 1 once all are done
    views: tuple[RoundView, ...]  # index r - 1
    digests: tuple[tuple[int, str], ...] = ()  # our digest of G(r) for finished rounds
    failed_rounds: tuple[int, ...] = ()  # rounds this process decided failed
    pending_announce: tuple[int, str] | None = None  # checkpointed, RoundDone maybe unposted
    halted: str | None = None  # why the party stopped (disagreement, missing shares)
    accused: frozenset[tuple[int, str, str]] = frozenset()  # (round, party, why) we posted
    # -- progress within ``round`` in this process (reset by a restart) --
    prepared: bool = False
    submit_posted: bool = False
    close_posted: bool = False
    deadline_passed: bool = False
    verdicts: tuple[Verdict, ...] | None = None
    rejections_posted: frozenset[tuple[str, str]] = frozenset()
    failure_posted: bool = False
    summed: bool = False
    share_posted: bool = False
    share_verdicts: tuple[Verdict, ...] = ()
    shares_deadline_passed: bool = False
    combined: tuple[str, ...] | None = None
    aggregate_failure: str | None = None  # the decrypted aggregate is out of range: why
    applied: str | None = None  # our digest of G(round) once checkpointed
    key_deadline_passed: bool = False  # our key deadline, since the last key step
    # -- key epochs, read off the channel (like ``views``; no round of their own) --
    joined: frozenset[str] = frozenset()  # parties whose Joined is on the channel
    dealt: frozenset[int] = frozenset()  # epochs whose KeyDealt from our source is on it
    #: Epochs with a KeyDealt from the dealer or a key holder on it (what a party that holds
    #: no share of the epoch opens: a newcomer before its admission).
    posted_keys: frozenset[int] = frozenset()
    #: Admission and absence as the channel decided them so far (docs/membership.md).
    roster: Roster = membership.NO_ROSTER
    keygen: frozenset[tuple[int, int, str]] = frozenset()  # (epoch, step, sender) KeyGenSteps
    # -- key epochs in this process (reset by a restart, kept from round to round) --
    key_open: int | None = None  # the last key epoch opened
    join_pending: bool = False  # our Joined is posted but not read back yet
    key_pending: int | None = None  # the epoch whose KeyDealt we posted, not read back yet
    dkg: tuple[int, int] | None = None  # (epoch, message round) of our last KeyGenStep
    request_pending: bool = False  # our JoinRequest is posted but not read back yet

    def view(self, round_: int) -> RoundView:
        """The channel's view of ``round_`` (an empty one outside the session's rounds)."""
        return self.views[round_ - 1] if 1 <= round_ <= len(self.views) else RoundView()

    @property
    def accepted(self) -> tuple[str, ...]:
        """Parties whose update for ``round`` verified (empty until verified)."""
        return tuple(p for p, reason in self.verdicts or () if reason is None)


# -- actions: what the party does next ----------------------------------------------------


@dataclass(frozen=True)
class Action:
    """Base of every action; ``round`` is the round it belongs to."""

    round: int


@dataclass(frozen=True)
class Join(Action):
    """Post ``Joined`` with this party's declared training-set size (key epochs only)."""


@dataclass(frozen=True)
class DealKey(Action):
    """Deal key epoch ``epoch`` (t-of-n or additive), store it sealed, post ``KeyDealt``."""

    epoch: int


@dataclass(frozen=True)
class KeygenStep(Action):
    """Distributed keys: post message round ``step`` of epoch ``epoch``'s key generation
    (step > 0 reads every party's round ``step - 1`` first); when the key is done, post our
    ``KeyDealt`` instead. ``Done.result``: the message round posted, or None."""

    epoch: int
    step: int


@dataclass(frozen=True)
class OpenKey(Action):
    """Fetch the posted key of ``epoch``, check it, open our sealed share."""

    epoch: int


@dataclass(frozen=True)
class Prepare(Action):
    """Let the privacy scheme get ready for the round (the key, if any, is open)."""


@dataclass(frozen=True)
class TrainAndSubmit(Action):
    """Train from G(r-1), seal, store and post ``Submitted``."""


@dataclass(frozen=True)
class CloseSubmissions(Action):
    """Post ``PhaseClosed(r, submit)``."""

    reason: str


@dataclass(frozen=True)
class Verify(Action):
    """Fetch and check each candidate (the submissions before the cut)."""

    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Reject(Action):
    """Post ``Rejected`` for one party's update or decryption share."""

    party: str
    reason: str


@dataclass(frozen=True)
class FailRound(Action):
    """Post ``RoundFailed`` (when ``post``); when ``decided``, round r failed: G(r) = G(r-1)
    and the party goes on with round r+1.

    ``decided`` is False only at our decryption-share deadline: our ``RoundFailed`` may land
    after the t-th valid share, so the channel decides once we read it back.
    """

    reason: str
    post: bool
    decided: bool = True


@dataclass(frozen=True)
class Sum(Action):
    """Aggregate the accepted updates (homomorphic sum for encrypted ones)."""

    accepted: tuple[str, ...]


@dataclass(frozen=True)
class PostShare(Action):
    """Compute, prove, store and post our decryption share of the round's sum."""


@dataclass(frozen=True)
class CheckShare(Action):
    """Fetch and verify one party's posted decryption share."""

    party: str


@dataclass(frozen=True)
class Combine(Action):
    """Decrypt the sum from exactly these valid shares (none for plain updates)."""

    parties: tuple[str, ...]


@dataclass(frozen=True)
class Apply(Action):
    """G(r) = outer_step(G(r-1), mean); evaluate; checkpoint."""

    accepted: tuple[str, ...]


@dataclass(frozen=True)
class Announce(Action):
    """Post ``RoundDone`` with our digest of G(r)."""

    digest: str
    accepted: tuple[str, ...]


@dataclass(frozen=True)
class RequestJoin(Action):
    """Post our ``JoinRequest`` (a party the session file does not list)."""


@dataclass(frozen=True)
class Advance(Action):
    """A round this party is no member of is applied (``digest``): go on to the next one,
    posting nothing (a newcomer before its admission, a party marked absent)."""

    digest: str
    accepted: tuple[str, ...]


@dataclass(frozen=True)
class Halt(Action):
    """Stop the session for this party (digests disagree, or it cannot follow a round)."""

    reason: str


@dataclass(frozen=True)
class Wait(Action):
    """Nothing to do until the channel moves or a deadline passes (``"key"``, ``"cut"``,
    ``"shares"``); ``"outcome"`` has no deadline: our ``RoundFailed`` is posted and not read
    back yet."""

    deadline: str


@dataclass(frozen=True)
class Finish(Action):
    """Every round is done."""


# -- events: what happened ----------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of every event."""


@dataclass(frozen=True)
class ChannelMessage(Event):
    """The next entry of the channel, in channel order (already authenticated).

    ``authentic`` is False only for a ``JoinRequest`` whose envelope signature does not
    verify against the key it carries (the channel cannot check an outsider's signature).
    """

    sender: str
    message: Any
    authentic: bool = True


@dataclass(frozen=True)
class DeadlinePassed(Event):
    """This party's local deadline for ``kind`` (``"key"``, ``"cut"`` or ``"shares"``)."""

    round: int
    kind: str


@dataclass(frozen=True)
class Done(Event):
    """An action finished (its channel posts, if any, arrive later as ChannelMessage)."""

    action: Action
    #: ``Verify``/``CheckShare``: the verdicts; ``Apply``: the digest of G(r).
    result: Any = None


def start(spec: MachineSpec, checkpoint: tuple[int, str] | None = None) -> PartyState:
    """A (re)started party: at round 1, or after its last checkpointed round.

    The checkpoint's ``RoundDone`` may never have reached the channel (a crash between
    checkpoint and post): it is announced again unless the replayed channel shows it.
    """
    views = tuple(RoundView() for _ in range(spec.rounds))
    if checkpoint is None:
        return PartyState(round=1, views=views)
    round_, digest = checkpoint
    return PartyState(
        round=round_ + 1,
        views=views,
        digests=((round_, digest),),
        pending_announce=(round_, digest),
    )


# -- folding events in --------------------------------------------------------------------


def apply(spec: MachineSpec, state: PartyState, event: Event) -> PartyState:
    """The state after ``event`` (pure)."""
    if isinstance(event, ChannelMessage):
        return _absorb(spec, state, event.sender, event.message, event.authentic)
    if isinstance(event, DeadlinePassed):
        if event.round != state.round:
            return state
        if event.kind == "key":
            return evolve(state, key_deadline_passed=True)
        if event.kind == "cut":
            return evolve(state, deadline_passed=True)
        return evolve(state, shares_deadline_passed=True)
    if isinstance(event, Done):
        return _done(spec, state, event.action, event.result)
    raise TypeError(f"unknown event {event!r}")


def _absorb(
    spec: MachineSpec, state: PartyState, sender: str, message: Any, authentic: bool = True
) -> PartyState:
    if isinstance(message, (Joined, KeyDealt, KeyGenStep)):
        return _absorb_key(spec, state, sender, message)
    if isinstance(message, (JoinRequest, Admit)):
        return _absorb_membership(spec, state, sender, message, authentic)
    r = getattr(message, "round", 0)
    if not 1 <= r <= spec.rounds:
        return state
    view = state.view(r)
    impossible = _impossible(spec, state, view, sender, message)
    if impossible is not None:
        view = evolve(view, violations=(*view.violations, (sender, impossible)))
        return _with_view(state, r, view)
    if isinstance(message, Submitted):
        if view.cut is not None:
            return state  # a late submission is not a candidate
        view = evolve(view, submitted=(*view.submitted, sender))
    elif isinstance(message, PhaseClosed):
        if message.phase != SUBMIT_PHASE or view.cut is not None or sender in view.closers:
            return state
        closers = (*view.closers, sender)
        cut = view.submitted if len(closers) >= close_votes_of(spec, state, r) else None
        view = evolve(view, closers=closers, cut=cut)
        if cut is not None:
            state = _boundary(spec, _with_view(state, r, view), r)
    elif isinstance(message, Rejected):
        if sender != spec.party:
            return state
        view = evolve(view, my_rejections=view.my_rejections | {(message.party, message.reason)})
    elif isinstance(message, RoundFailed):
        if sender in view.failers:
            return state
        failers = (*view.failers, sender)
        failed_at = view.failed_at
        if failed_at is None and len(failers) >= close_votes_of(spec, state, r):
            failed_at = len(view.shares)
        view = evolve(view, failers=failers, failed_at=failed_at)
    elif isinstance(message, DecryptionShare):
        view = evolve(view, shares=(*view.shares, sender))
    elif isinstance(message, RoundDone):
        if any(p == sender for p, _ in view.done):
            return state
        view = evolve(view, done=(*view.done, (sender, message.model_sha256)))
        if sender == spec.party and state.pending_announce and state.pending_announce[0] == r:
            state = evolve(state, pending_announce=None)  # replayed: it did reach the channel
    else:
        return state
    return _check_agreement(spec, _with_view(state, r, view))


def _with_view(state: PartyState, r: int, view: RoundView) -> PartyState:
    return evolve(state, views=(*state.views[: r - 1], view, *state.views[r:]))


def _impossible(
    spec: MachineSpec, state: PartyState, view: RoundView, sender: str, message: Any
) -> str | None:
    """Why ``message`` from ``sender`` cannot come from an honest party at its place in the
    channel, or None (THREATS.md section 2: such entries are recorded as violations by their
    sender and change nothing).

    An honest party posts nothing of round r before its ``RoundDone`` or ``RoundFailed`` of
    round r - 1 (or r - 1 failed by votes), submits once, posts decryption shares, failures
    and digests only after the cut, and a ``RoundDone`` only once t shares can decrypt.
    """
    if isinstance(message, Rejected):
        return None  # only our own rejections count, and those are honest
    kind, r = type(message).__name__, message.round
    if spec.membership is not None and not is_member(spec, state, r, sender):
        return f"{kind} for round {r} from {sender}, no member of round {r}"
    if isinstance(message, (Submitted, DecryptionShare)) and (
        sender in (view.submitted if isinstance(message, Submitted) else view.shares)
        or any(p == sender and why.startswith(f"{kind} ") for p, why in view.violations)
    ):
        return f"{kind} again for round {r} (only a party's first one counts)"
    first = membership.first_round(state.roster, sender)
    if r > first and not state.view(r - 1).finished_by(sender):
        return f"{kind} for round {r} before its own outcome of round {r - 1}"
    if isinstance(message, (DecryptionShare, RoundFailed, RoundDone)) and view.cut is None:
        return f"{kind} for round {r} before its submit phase closed"
    needed = shares_needed_of(spec, state, r)
    if isinstance(message, RoundDone) and len(view.shares) < needed:
        return f"RoundDone for round {r} before {needed} decryption shares"
    return None


def announced_outcome(view: RoundView) -> tuple[str | None, tuple[str, ...]] | None:
    """What the channel announces for a round, for readers that do not recompute it (the
    report, the dashboard; the audit recomputes): ``(digest, announcers)`` of the digest the
    most parties announced, ``(None, failers)`` when more parties posted ``RoundFailed``, or
    None when the round has no outcome on the channel yet (ties go to the earlier digest,
    and a digest over a failure). Honest parties agree, so a minority is the faulty one."""
    by_digest: dict[str, list[str]] = {}
    for party, digest in view.done:
        by_digest.setdefault(digest, []).append(party)
    best = max(by_digest.items(), key=lambda item: len(item[1]), default=None)
    if best is not None and len(best[1]) >= len(view.failers):
        return best[0], tuple(best[1])
    return (None, view.failers) if view.failers else None


def observe(spec: MachineSpec, posted: Iterable[tuple[str, Any]]) -> PartyState:
    """What the channel says, for someone who is no party (the audit, the dashboard): fold
    ``(sender, message)`` entries, in channel order, into a fresh state of ``spec`` (whose
    ``party`` should name no party). Its views hold each round's cut, votes, shares, digests
    and violations by exactly the rules every party applies."""
    state = start(spec)
    for sender, message in posted:
        state = _absorb(spec, state, sender, message)
    return state


def observe_one(
    spec: MachineSpec, state: PartyState, sender: str, message: Any, authentic: bool = True
) -> PartyState:
    """:func:`observe`, one entry at a time (a reader that follows a live channel)."""
    return _absorb(spec, state, sender, message, authentic)


# -- membership (docs/membership.md; the rules are protocol/membership.py) ---------------


def members_of(spec: MachineSpec, state: PartyState, r: int) -> tuple[str, ...]:
    """The active members of round ``r`` as far as the channel has decided them."""
    if spec.membership is None:
        return spec.parties
    return membership.members(spec.parties, state.roster, r)


def is_member(spec: MachineSpec, state: PartyState, r: int, party: str | None = None) -> bool:
    """Whether ``party`` (default: this machine's) is an active member of round ``r``."""
    who = spec.party if party is None else party
    if spec.membership is None:
        return who in spec.parties
    return who in members_of(spec, state, r)


def quorum_of(spec: MachineSpec, state: PartyState, r: int) -> int:
    """Accepted updates round ``r`` needs (with ``[membership]``: of its active members)."""
    if spec.membership is None:
        return spec.quorum
    return membership.quorum(spec.membership, len(members_of(spec, state, r)))


def close_votes_of(spec: MachineSpec, state: PartyState, r: int) -> int:
    """Distinct votes that cut round ``r``'s submit phase (or fail its decryption)."""
    if spec.membership is None:
        return spec.close_votes
    return membership.close_votes(spec.membership, len(members_of(spec, state, r)))


def shares_needed_of(spec: MachineSpec, state: PartyState, r: int) -> int:
    """Valid decryption shares that decrypt round ``r``'s sum: t, or n of the round's key
    holders for an additive key whose holders changed."""
    if spec.keys is None or spec.membership is None or spec.keys.keygen != "additive":
        return spec.shares_needed
    return len(key_plan_of(spec, state, r)[0].names) - (spec.keys.threshold - spec.shares_needed)


def key_plan_of(spec: MachineSpec, state: PartyState, r: int) -> tuple[KeyPlan, int]:
    """The key plan of round ``r``'s epoch and the epoch: its key holders are the active
    members of the epoch's first round (a membership change starts a new epoch)."""
    plan = spec.keys
    assert plan is not None
    if spec.membership is None:
        return plan, plan.epoch_of(r)
    joins = membership.membership_changes(state.roster)
    epoch = plan.epoch_of(r, joins)
    names = membership.members(spec.parties, state.roster, plan.first_round(epoch, joins))
    return plan.with_names(names), epoch


def _joined(state: PartyState) -> frozenset[str]:
    """Parties whose declared size is on the channel: ``Joined``, or an admitted request."""
    return state.joined | {n.name for n in state.roster.admitted}


def _absorb_membership(
    spec: MachineSpec,
    state: PartyState,
    sender: str,
    message: JoinRequest | Admit,
    authentic: bool,
) -> PartyState:
    """Fold a ``JoinRequest`` or ``Admit`` into the roster (without ``[membership]``,
    nothing: the session file's parties are the members of every round)."""
    rules = spec.membership
    if rules is None:
        return state
    if isinstance(message, Admit):
        roster = membership.admit(rules, state.roster, spec.parties, sender, message.candidate)
        return evolve(state, roster=roster)
    candidate = Request(
        message.party, message.public_key, message.n_samples, message.deposit, message.lock
    )
    roster = membership.request(
        rules, state.roster, spec.parties, spec.rounds, candidate, authentic=authentic
    )
    pending = state.request_pending and not (
        sender == spec.party
        and spec.candidacy is not None
        and message.public_key == spec.candidacy.public_key
    )
    return evolve(state, roster=roster, request_pending=pending)


def _boundary(spec: MachineSpec, state: PartyState, r: int) -> PartyState:
    """Round ``r`` was just cut: admit and mark absent by the rules (``at_boundary``)."""
    if spec.membership is None:
        return state
    posted = [_posters(state.view(j)) for j in range(1, r + 1)]
    roster = membership.at_boundary(spec.membership, state.roster, spec.parties, r, posted)
    return evolve(state, roster=roster)


def _posters(view: RoundView) -> frozenset[str]:
    """Who has a counted entry of a round."""
    return frozenset(
        {*view.submitted, *view.closers, *view.failers, *view.shares, *(p for p, _ in view.done)}
    )


def _absorb_key(
    spec: MachineSpec, state: PartyState, sender: str, message: Joined | KeyDealt | KeyGenStep
) -> PartyState:
    """Fold a key-epoch entry in: who joined, which epochs our source dealt, keygen steps.

    Only the first ``Joined`` of a party counts (its declared size fixes its weight), and only
    a ``KeyDealt`` of :meth:`KeyPlan.source` (the configured dealer, or ourselves with
    distributed keys), as :meth:`SessionHistory.key_dealt` reads them.
    """
    plan = spec.keys
    if plan is None:
        return state
    if isinstance(message, Joined):
        if sender in state.joined:
            return state
        pending = state.join_pending and sender != spec.party
        return evolve(state, joined=state.joined | {sender}, join_pending=pending)
    if isinstance(message, KeyDealt):
        holder = sender in spec.parties or state.roster.newcomer(sender) is not None
        if (plan.distributed and holder) or (not plan.distributed and sender == plan.dealer):
            state = evolve(state, posted_keys=state.posted_keys | {message.epoch})
        if sender != plan.source(spec.party) or message.epoch in state.dealt:
            return state
        pending = None if state.key_pending == message.epoch else state.key_pending
        return evolve(state, dealt=state.dealt | {message.epoch}, key_pending=pending)
    return evolve(state, keygen=state.keygen | {(message.epoch, message.step, sender)})


def _outcomes(state: PartyState) -> list[tuple[int, str | None]]:
    """Our outcome of each round we finished: the digest of G(r), or None (failed)."""
    return sorted([*state.digests, *((r, None) for r in state.failed_rounds)])


def digest_faults(spec: MachineSpec, state: PartyState) -> list[tuple[int, str, str]]:
    """``(round, party, why)`` for each other party whose ``RoundDone`` contradicts our
    outcome of a round we finished (THREATS.md section 3).

    G(r) is a deterministic function of the channel and the stored objects, so an honest
    party knows its own outcome is right: a different digest names its sender as faulty.
    """
    faults = []
    for r, mine in _outcomes(state):
        for party, digest in state.view(r).done:
            if party == spec.party or digest == mine:
                continue
            if mine is None:
                why = f"announced round {r} done ({digest[:12]}), but it failed"
            else:
                why = f"announced G({r}) digest {digest[:12]}, the channel gives {mine[:12]}"
            faults.append((r, party, why))
    return faults


def _check_agreement(spec: MachineSpec, state: PartyState) -> PartyState:
    """Halt only when a quorum of other parties, and never a single one, contradicts our
    outcome of a round: then we are the odd one out (THREATS.md section 3: no single party
    stops the session, also with a quorum of 1); fewer are named faulty and ignored."""
    if state.halted:
        return state
    against: dict[int, list[str]] = {}
    for r, party, _ in digest_faults(spec, state):
        against.setdefault(r, []).append(party)
    for r, parties in sorted(against.items()):
        needed = max(quorum_of(spec, state, r), 2)
        if len(parties) >= needed:
            mine = dict(_outcomes(state))[r]
            ours = "failed" if mine is None else f"digest {mine[:12]}"
            reason = (
                f"round {r}: our outcome ({ours}) disagrees with {', '.join(sorted(parties))} "
                f"(at least {needed}: a quorum of others, never one alone); stopping the session"
            )
            return evolve(state, halted=reason)
    return state


def _done(spec: MachineSpec, state: PartyState, action: Action, result: Any) -> PartyState:
    if isinstance(action, Reject):
        fault = (action.round, action.party, action.reason)
        if action.round != state.round or fault in digest_faults(spec, state):
            # a digest fault, of a past round or of the round we just applied: remembered
            # whether or not our Rejected has been read back (else we would post it again)
            return evolve(state, accused=state.accused | {fault})
    if action.round != state.round and not isinstance(action, Announce):
        return state
    match action:
        case RequestJoin():
            return evolve(state, request_pending=True)
        case Advance():
            return _check_agreement(spec, _next_round(state))
        case Join():
            return evolve(state, join_pending=True)
        case DealKey(epoch=epoch):
            return evolve(state, key_pending=epoch)
        case KeygenStep(epoch=epoch):
            if result is None:  # the key is done: our KeyDealt is posted
                return evolve(state, key_pending=epoch, dkg=None, key_deadline_passed=False)
            return evolve(state, dkg=(epoch, int(result)), key_deadline_passed=False)
        case OpenKey(epoch=epoch):
            return evolve(state, key_open=epoch, key_deadline_passed=False)
        case Prepare():
            return evolve(state, prepared=True)
        case TrainAndSubmit():
            return evolve(state, submit_posted=True)
        case CloseSubmissions():
            return evolve(state, close_posted=True)
        case Verify():
            return evolve(state, verdicts=tuple(result))
        case Reject(party=party, reason=reason):
            return evolve(state, rejections_posted=state.rejections_posted | {(party, reason)})
        case FailRound(decided=decided):
            if not decided:
                return evolve(state, failure_posted=True)
            failed = evolve(state, failed_rounds=(*state.failed_rounds, state.round))
            return _check_agreement(spec, _next_round(failed))
        case Sum():
            return evolve(state, summed=True)
        case PostShare():
            return evolve(state, share_posted=True)
        case CheckShare(party=party):
            return evolve(state, share_verdicts=(*state.share_verdicts, (party, result)))
        case Combine(parties=parties):
            return evolve(state, combined=parties, aggregate_failure=result)
        case Apply():
            digests = (*state.digests, (state.round, str(result)))
            return _check_agreement(spec, evolve(state, applied=str(result), digests=digests))
        case Announce(round=r):
            if state.pending_announce is not None and state.pending_announce[0] == r:
                return evolve(state, pending_announce=None)
            return _next_round(state)
    raise TypeError(f"unknown action {action!r}")


def _next_round(state: PartyState) -> PartyState:
    return PartyState(
        round=state.round + 1,
        views=state.views,
        digests=state.digests,
        failed_rounds=state.failed_rounds,
        halted=state.halted,
        accused=state.accused,
        joined=state.joined,
        dealt=state.dealt,
        posted_keys=state.posted_keys,
        roster=state.roster,
        keygen=state.keygen,
        key_open=state.key_open,
        join_pending=state.join_pending,
        key_pending=state.key_pending,
        dkg=state.dkg,
        request_pending=state.request_pending,
    )


# -- deciding -----------------------------------------------------------------------------


def shares_to_combine(valid: tuple[str, ...], needed: int) -> tuple[str, ...] | None:
    """The shares that decrypt: exactly the first ``needed`` valid ones in channel order.

    Every honest party sees the same channel order, so all combine the same shares (the
    result is the same either way; the choice keeps the audit reproducible).
    """
    return valid[:needed] if len(valid) >= needed else None


def next_action(spec: MachineSpec, state: PartyState) -> Action:
    """What the party does next (pure). ``Wait`` means: sync the channel, mind deadlines."""
    r = state.round
    if state.halted:
        return Halt(r, state.halted)
    pending = state.pending_announce
    if pending is not None and is_member(spec, state, pending[0]):
        return Announce(*pending, ())  # (a round we only followed is never announced)
    for fault_round, party, why in digest_faults(spec, state):
        posted = (party, why) in state.view(fault_round).my_rejections
        member = is_member(spec, state, fault_round)
        if member and not posted and (fault_round, party, why) not in state.accused:
            return Reject(fault_round, party, why)
    if r > spec.rounds:
        return Finish(spec.rounds)
    if spec.candidacy is not None and spec.membership is not None:
        asking = _candidacy_step(spec, state)
        if asking is not None:
            return asking
    member = is_member(spec, state, r)
    if spec.keys is not None and state.key_open != key_plan_of(spec, state, r)[1]:
        if not member:
            return _follow_key(spec, state)
        missing = lacks_key(spec, state)
        if missing is None:
            return _key_action(spec, spec.keys, state)
        return _without_key(spec, state, missing)
    if not state.prepared:
        return Prepare(r)
    view = state.view(r)
    if view.cut is None:
        return _before_cut(spec, state, view) if member else Wait(r, "follow")
    if state.verdicts is None:
        return Verify(r, view.cut)
    for party, reason in state.verdicts:
        if member and reason is not None and not _rejected(state, view, party, reason):
            return Reject(r, party, reason)
    accepted = state.accepted
    quorum = quorum_of(spec, state, r)
    if len(accepted) < quorum:
        reason = (
            f"only {len(accepted)} of {len(members_of(spec, state, r))} updates accepted, "
            f"quorum is {quorum}"
        )
        return FailRound(r, reason, post=_may_post_failure(spec, state, view))
    if spec.shares_needed and len(accepted) < spec.min_accepted:
        reason = (
            f"only {len(accepted)} updates accepted; privacy.min_accepted is {spec.min_accepted} "
            "(decrypting a smaller sum would expose too few parties' updates)"
        )
        return FailRound(r, reason, post=_may_post_failure(spec, state, view))
    if not state.summed:
        return Sum(r, accepted)
    if state.combined is None:
        return _decrypt(spec, state, view)
    if state.aggregate_failure is not None:
        return FailRound(r, state.aggregate_failure, post=_may_post_failure(spec, state, view))
    if state.applied is None:
        return Apply(r, accepted)
    if not member:
        return Advance(r, state.applied, accepted)
    return Announce(r, state.applied, accepted)


def _candidacy_step(spec: MachineSpec, state: PartyState) -> Action | None:
    """A party the session file does not list: post its ``JoinRequest`` once (then follow
    the rounds until admitted), or stop when the channel refused it."""
    candidacy = spec.candidacy
    assert candidacy is not None
    standing = membership.status(state.roster, spec.party, candidacy.public_key)
    if standing is None:
        return None if state.request_pending else RequestJoin(state.round)
    if standing[0] == "refused":
        return Halt(state.round, f"join request refused: {standing[1]}")
    return None


def _follow_key(spec: MachineSpec, state: PartyState) -> Action:
    """The key of a round this party holds no share of: open the posted one (to check the
    members' updates and shares), or follow the members failing the round without it."""
    r = state.round
    _, epoch = key_plan_of(spec, state, r)
    if epoch in state.posted_keys:
        return OpenKey(r, epoch)
    view = state.view(r)
    quorum = quorum_of(spec, state, r)
    if view.cut is not None and len(view.cut) < quorum:
        reason = f"only {len(view.cut)} updates submitted, quorum is {quorum} (no key posted)"
        return FailRound(r, reason, post=False)
    return Wait(r, "follow")


def lacks_key(spec: MachineSpec, state: PartyState) -> str | None:
    """Why this party goes without a key for its round, or None while it may still get one.

    A key deadline is this party's own, local decision, not something the channel shows,
    so it must not fail the round for everyone: a party without a key submits nothing and
    follows the round from the channel (:func:`_without_key`; the cut decides), and tries
    the key again in the next round (a dealer that was down may deal then).
    """
    if spec.keys is None:
        return None
    r, me = state.round, spec.party
    plan, epoch = key_plan_of(spec, state, r)
    joined = _joined(state)
    if state.key_open == epoch or me not in joined:
        return None
    step = decide_key(
        plan,
        epoch,
        me,
        joined=joined,
        dealt=epoch in state.dealt,
        deadline_passed=state.key_deadline_passed,
    )
    if isinstance(step, KeyFail):
        return step.reason
    if isinstance(step, KeyDeal) and plan.distributed and state.key_pending != epoch:
        return _keygen_stuck(plan, state, me, epoch)
    return None


def _keygen_stuck(plan: KeyPlan, state: PartyState, me: str, epoch: int) -> str | None:
    """Distributed keys: why our key generation of ``epoch`` cannot go on, if it cannot.

    A key generation keeps its secrets in memory, so one that our own earlier process began
    (our step 0 is on the channel, this process posted none) cannot go on; nor one whose
    message round some party never posted by our key deadline.
    """
    if state.dkg is None or state.dkg[0] != epoch:
        if (epoch, 0, me) in state.keygen:
            return (
                f"distributed key generation (epoch {epoch}) was cut off by a restart of {me}: "
                "its secrets are gone; every party must stay online"
            )
        return None
    sent = state.dkg[1]
    missing = sorted(p for p in plan.names if (epoch, sent, p) not in state.keygen)
    if missing and state.key_deadline_passed:
        return (
            f"distributed key generation (epoch {epoch}) stalled at step {sent}: no message "
            f"from {', '.join(missing)}; every party must stay online"
        )
    return None


def _key_action(spec: MachineSpec, plan: KeyPlan, state: PartyState) -> Action:
    """Key epochs (DESIGN.md section 4): join once, then what :func:`decide_key` says about
    the round's epoch, on what the channel shows and our key deadline (giving up is
    :func:`lacks_key`'s, asked first)."""
    r, me = state.round, spec.party
    plan, epoch = key_plan_of(spec, state, r)
    joined = _joined(state)
    if me not in joined:
        return Wait(r, "key") if state.join_pending else Join(r)
    step = decide_key(
        plan,
        epoch,
        me,
        joined=joined,
        dealt=epoch in state.dealt,
        deadline_passed=state.key_deadline_passed,
    )
    match step:
        case KeyOpen():
            return OpenKey(r, epoch)
        case KeyDeal() if state.key_pending == epoch:
            return Wait(r, "key")  # posted, not read back yet
        case KeyDeal() if plan.distributed:
            return _keygen_action(plan, state, epoch)
        case KeyDeal():
            return DealKey(r, epoch)
        case KeyWait():
            return Wait(r, "key")
    raise TypeError(f"unexpected key step {step!r}")


def _keygen_action(plan: KeyPlan, state: PartyState, epoch: int) -> Action:
    """Distributed keys: the next message round once every party posted the previous one
    (:func:`_keygen_stuck` has ruled out a generation that cannot go on)."""
    r = state.round
    if state.dkg is None or state.dkg[0] != epoch:
        return KeygenStep(r, epoch, 0)
    sent = state.dkg[1]
    if all((epoch, sent, p) in state.keygen for p in plan.names):
        return KeygenStep(r, epoch, sent + 1)
    return Wait(r, "key")


def _without_key(spec: MachineSpec, state: PartyState, missing: str) -> Action:
    """Follow round r without its key (``missing`` says why): submit nothing, close at our
    deadline like everyone else, and let the cut decide.

    Every submitter read the round's ``KeyDealt`` before it submitted, so a cut that we see
    without the key holds no update we could check: below quorum the round fails for
    everyone from the channel; a cut of q or more is one we cannot follow (we stop, posting
    nothing, so nobody else's outcome depends on us).
    """
    r = state.round
    view = state.view(r)
    if view.cut is None:
        if state.close_posted or spec.party in view.closers or not state.deadline_passed:
            return Wait(r, "cut")
        absent = sorted(p for p in members_of(spec, state, r) if p not in view.submitted)
        return CloseSubmissions(r, f"deadline: missing {', '.join(absent)}")
    quorum = quorum_of(spec, state, r)
    if len(view.cut) < quorum:
        reason = (
            f"only {len(view.cut)} of {len(members_of(spec, state, r))} updates submitted, "
            f"quorum is {quorum} ({missing})"
        )
        return FailRound(r, reason, post=_may_post_failure(spec, state, view))
    return Halt(r, f"{missing}; cannot follow round {r} without it")


def _may_post_failure(spec: MachineSpec, state: PartyState, view: RoundView) -> bool:
    """Post our ``RoundFailed`` unless it is posted, the round already failed by votes, or
    we are no member of the round (a member's vote only)."""
    if not is_member(spec, state, state.round):
        return False
    return not (view.failed or state.failure_posted or spec.party in view.failers)


def _before_cut(spec: MachineSpec, state: PartyState, view: RoundView) -> Action:
    r = state.round
    if spec.party not in view.submitted and not state.submit_posted:
        return TrainAndSubmit(r)
    if state.close_posted or spec.party in view.closers:
        return Wait(r, "cut")
    missing = [p for p in members_of(spec, state, r) if p not in view.submitted]
    if not missing:
        return CloseSubmissions(r, "all submitted")
    if state.deadline_passed:
        return CloseSubmissions(r, f"deadline: missing {', '.join(sorted(missing))}")
    return Wait(r, "cut")


def _decrypt(spec: MachineSpec, state: PartyState, view: RoundView) -> Action:
    """Decryption shares until t valid ones decrypt, or the round fails from the channel.

    Only the shares before the ``close_votes``-th ``RoundFailed`` count
    (``RoundView.failed_at``): with t valid ones there the round is decrypted, else it
    failed. Every party reads the same order and checks shares the same way, so all decide
    the same; a party whose share deadline passes posts its ``RoundFailed`` vote and decides
    once the channel does. A party skips its own share only when it has checked t valid
    ones already (a ``RoundDone`` on the channel proves nothing: THREATS.md section 2).
    """
    r = state.round
    needed = shares_needed_of(spec, state, r)
    member = is_member(spec, state, r)
    if needed == 0:
        return Combine(r, ())
    for party, reason in state.share_verdicts:
        if member and reason is not None and not _rejected(state, view, party, reason):
            return Reject(r, party, reason)
    counted = view.shares if view.failed_at is None else view.shares[: view.failed_at]
    valid = tuple(p for p, reason in state.share_verdicts if reason is None and p in counted)
    chosen = shares_to_combine(valid, needed)
    if chosen is not None:
        return Combine(r, chosen)
    checked = {p for p, _ in state.share_verdicts}
    unchecked = [p for p in counted if p not in checked]
    if len(counted) >= needed and unchecked:
        return CheckShare(r, unchecked[0])  # enough posted to decrypt without ours
    if (
        spec.holds_share
        and member
        and not state.share_posted
        and spec.party not in view.shares
        and not view.failed  # the shares after the failure votes never count
    ):
        return PostShare(r)
    if unchecked:
        return CheckShare(r, unchecked[0])
    reason = f"only {len(valid)} of {needed} valid decryption shares"
    if view.failed:
        return FailRound(r, reason, post=False)
    if not member:
        return Wait(r, "follow")  # the members decide; we only read
    if state.failure_posted or spec.party in view.failers:
        return Wait(r, "outcome")
    if state.shares_deadline_passed:
        return FailRound(r, reason, post=True, decided=False)
    return Wait(r, "shares")


def _rejected(state: PartyState, view: RoundView, party: str, reason: str) -> bool:
    return (party, reason) in view.my_rejections or (party, reason) in state.rejections_posted


def step(spec: MachineSpec, state: PartyState, event: Event) -> tuple[PartyState, Action]:
    """``(state, event) -> (state', next action)``: :func:`apply` then :func:`next_action`."""
    state = apply(spec, state, event)
    return state, next_action(spec, state)
