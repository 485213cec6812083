"""Exhaustive exploration of the round protocol: the Python twin of specs/RoundProtocol.tla.

TLC cannot be installed here, so CI checks the same model by breadth-first search over
every interleaving of the actions of ``specs/RoundProtocol.tla``:

``Deliver(p)``  the next channel entry reaches party p (its view may lag the channel)
``Act(p)``      p does what :func:`zkadapt.protocol.machine.next_action` says — the
                *project's* state machine, not a copy — with the work abstracted (training
                posts ``Submitted``, verification accepts honest updates, ...)
``Timeout(p)``  p's local deadline (submissions, or decryption shares) passes
``Crash(p)``    p dies, losing everything but its checkpoints (bounded by ``crashes``)
``Restart(p)``  p starts again from its last checkpoint and replays the whole channel
``Admit(p)``    with ``Model.admission = "vote"``: member p votes to admit a pending newcomer
                (a person's decision, not the machine's: any time, once per request)
``Malicious(p)`` with ``Model.malicious = p``: p runs no machine and posts any message the
                channel accepts, for any round, at any time (:func:`_malicious_moves`:
                submissions that verify or not, early and duplicate ``PhaseClosed`` and
                ``RoundFailed`` votes, shares that verify or not, ``RoundDone`` with a right
                or a wrong digest), up to ``Model.malicious_posts`` that change a view

The machines' rules: the cut falls at the ``close_votes``-th distinct ``PhaseClosed``
(``Model.close_votes``, default t), a decryption fails at the ``close_votes``-th
``RoundFailed``, key holders decrypt only accepted sets of ``min_accepted`` or more.

States are hashed (a visited set prunes repeats); the first violation found is reached by
a shortest trace, printed by :func:`format_trace`. Invariants, named as in the .tla; with a
malicious party they are about the honest parties (what it posts or decides is its own):

* ``Agreement``        every party that decides round r decides the same: Done with one
                       digest of G(r) for all, or Failed for all
* ``ThresholdSafety``  no sum is decrypted from fewer than t valid shares, and decryption
                       shares exist only for sums of at least max(q, 2) updates (so no
                       individual update is ever decrypted)
* ``QuorumSafety``     no round completes with fewer than q accepted updates
* ``MinAcceptedSafety`` no honest party posts a decryption share of, or decrypts, a sum of
                       fewer than ``min_accepted`` accepted updates
* ``HonestBlameless``  no honest party's entry is impossible at its place (a recorded
                       violation), and no honest party names another faulty for its digest
* ``Progress``         with fair deadlines (a deadline passes only once every live honest
                       party's post has arrived; the malicious party is never waited for)
                       and at least max(q, close_votes) live honest parties, every terminal
                       state (no honest step left; the malicious party owes none) has every
                       live honest party past every round, each ended Done or Failed (Done,
                       with ``Model.all_done``); the graph is acyclic, so every maximal run
                       ends in a terminal state

States are counted up to a renaming of the parties with ``--symmetry`` (TLC's
``SYMMETRY``; :func:`canonical_key`), which the tests check against the full search.

Newcomers (``Model.newcomers``, docs/membership.md): parties no session file lists. Each runs
the same machine with a ``Candidacy``: its ``RequestJoin`` is a step like any other, so the
search puts its ``JoinRequest`` at every position of every round (before, between and after
every submission, vote, share and announcement), with crashes and restarts of anyone, the
newcomer included. Until its admission it follows the rounds (recomputing each G(r), posting
nothing); from it, it submits, votes and shares like a listed party. The invariants cover it:
its digests must agree, its entries must never be violations.

Run it: ``python -m zkadapt.protocol.model_check [--parties 3 --t 2 --q 2 --rounds 2]``;
with a malicious party: ``--malicious carol --malicious-posts 2``; with a newcomer:
``--newcomers 1 [--admission vote --votes 2]`` (``--help``).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from zkadapt.protocol import machine
from zkadapt.protocol.key_rules import KeyPlan
from zkadapt.protocol.machine import (
    Advance,
    Announce,
    Apply,
    ChannelMessage,
    CheckShare,
    CloseSubmissions,
    Combine,
    DeadlinePassed,
    DealKey,
    Done,
    FailRound,
    Finish,
    Halt,
    Join,
    KeygenStep,
    MachineSpec,
    OpenKey,
    PartyState,
    PostShare,
    Prepare,
    Reject,
    RequestJoin,
    Sum,
    TrainAndSubmit,
    Verify,
    Wait,
    evolve,
)
from zkadapt.protocol.membership import Candidacy, MembershipRules
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

SESSION = "model"
GENESIS = "G0"
#: What a malicious ``Submitted`` may carry (``Model.malicious_updates``).
MALICIOUS_UPDATES = ("good", "bad", "overflow")
#: The digest a malicious ``RoundDone`` carries when it is not one an honest party computed.
EVIL = "evil"
#: The actions and invariants of specs/RoundProtocol.tla (tests keep the two in step).
ACTIONS = ("Deliver", "Act", "Timeout", "Crash", "Restart", "Admit", "Malicious")
INVARIANTS = (
    "Agreement",
    "ThresholdSafety",
    "QuorumSafety",
    "MinAcceptedSafety",
    "HonestBlameless",
    "Progress",
)


@dataclass(frozen=True)
class Model:
    """The constants of the model (the .cfg of the TLA+ module)."""

    parties: tuple[str, ...] = ("alice", "bob", "carol")
    threshold: int = 2  # t: valid decryption shares that decrypt
    quorum: int = 2  # q: accepted updates a round needs
    rounds: int = 2
    crashes: int = 1  # crash budget over the whole run
    fair_deadlines: bool = False  # Progress is checked with fair deadlines
    bad_updates: frozenset[tuple[str, int]] = frozenset()  # (party, round) rejected updates
    bad_shares: frozenset[str] = frozenset()  # parties whose decryption shares fail
    #: The broken variant: parties decrypt with t - share_slack shares (ShareSlack in .tla).
    share_slack: int = 0
    #: With unfair deadlines, decryption-share deadlines pass at any time too (not only the
    #: submission deadline): a party may give up on shares that are about to arrive.
    unfair_shares: bool = False
    #: Parties decide on a lagging view: ``Deliver(p)`` reads one entry, ``Act(p)`` acts on
    #: what p has read so far (the spec's granularity), instead of reading everything first.
    lagging: bool = False
    #: Count states up to a renaming of the parties (TLC's ``SYMMETRY``): every party runs
    #: the same machine, so a state and its renamings have the same runs, renamed.
    #: Needs a model that names no party (no ``bad_updates``/``bad_shares``).
    symmetry: bool = False
    #: Key epochs (``MachineSpec.keys``): the machine's ``Join``, ``DealKey`` (``"dealer"``,
    #: ``"additive"``) or ``KeygenStep`` (``"distributed"``, ``dkg_rounds`` message rounds),
    #: ``OpenKey``, ``Wait(r, "key")`` and ``Halt`` at the key deadline, as the parties run
    #: them. ``None``: keys abstracted away (``Prepare`` is local).
    keygen: str | None = None
    dealer: str = "alice"
    refresh_every: int | None = None
    #: The dealer never deals (a silent key-generation centre or dealing party).
    dealer_silent: bool = False
    #: Message rounds of a distributed key generation (the real one's count depends on
    #: the key; the model fixes it).
    dkg_rounds: int = 2
    #: Distinct ``PhaseClosed`` votes that close the submit phase, and ``RoundFailed`` votes
    #: that fail a decryption (``MachineSpec.close_votes``, THREATS.md 2). None: the
    #: product's default, t for encrypted sessions (a majority of the parties when t = 0).
    close_votes: int | None = None
    #: Key holders decrypt only sums of at least this many accepted updates
    #: (``MachineSpec.min_accepted``); 0: no floor (the product's default is 3 for n >= 3).
    min_accepted: int = 0
    #: A malicious party (THREATS.md): it runs no machine; at any step it may post any
    #: message for any round (:func:`_malicious_moves`), up to ``malicious_posts`` that
    #: change what the channel says (posts that every machine ignores or records as a
    #: violation are free: they cannot change a run, only show that they do not).
    malicious: str | None = None
    malicious_posts: int = 2
    #: What the malicious party's ``Submitted`` may carry: an update that verifies
    #: (``"good"``), one that fails verification (``"bad"``), or one that verifies but
    #: takes the decrypted aggregate out of range (``"overflow"``: no range proofs yet).
    malicious_updates: tuple[str, ...] = ("good", "bad", "overflow")
    #: Progress demands more: every live honest party ended every round *Done*, none
    #: Failed (for models where the honest parties alone can finish every round).
    all_done: bool = False
    #: Parties the session file does not list (the last names of ``parties``): each asks to
    #: join with its machine's ``RequestJoin`` (docs/membership.md). Empty: membership is
    #: fixed and the machines run without ``[membership]``, exactly as before.
    newcomers: tuple[str, ...] = ()
    #: ``membership.admission`` with newcomers: ``"open"`` or ``"vote"`` (``Admit`` steps).
    admission: str = "open"
    #: ``membership.votes`` (``"vote"``) and ``membership.absent_rounds`` (None: never).
    admit_votes: int = 1
    absent_rounds: int | None = None

    @property
    def listed(self) -> tuple[str, ...]:
        """The parties the session file lists (every party but the newcomers)."""
        return tuple(p for p in self.parties if p not in self.newcomers)

    def __post_init__(self) -> None:
        if self.keygen is not None and self.symmetry:
            raise ValueError("symmetry needs a model that names no party (the dealer is named)")
        if self.symmetry and (self.bad_updates or self.bad_shares or self.malicious):
            raise ValueError(
                "symmetry needs a model that names no party (no bad updates/shares, no "
                "malicious party)"
            )
        if self.malicious is not None and self.malicious not in self.parties:
            raise ValueError(f"the malicious party {self.malicious!r} is not a party")
        if self.malicious is not None and self.keygen is not None:
            raise ValueError("a malicious party is modelled with keys abstracted (keygen=None)")
        if not set(self.newcomers) <= set(self.parties) or self.malicious in self.newcomers:
            raise ValueError("newcomers must be honest parties of the model")
        if self.newcomers and (self.symmetry or self.keygen is not None):
            raise ValueError("newcomers are modelled without symmetry and with keys abstracted")
        if self.admission not in ("open", "vote"):
            raise ValueError("admission must be 'open' or 'vote'")
        if not set(self.malicious_updates) <= set(MALICIOUS_UPDATES):
            raise ValueError(f"malicious_updates must be among {MALICIOUS_UPDATES}")
        needed = self.threshold - self.share_slack
        keygen = self.keygen or "dealer"
        plan = KeyPlan(self.listed, keygen, self.dealer, self.threshold, 0, self.refresh_every)
        object.__setattr__(self, "_plan", plan)
        keys = plan if self.keygen is not None else None
        votes = self.close_votes
        if votes is None:
            votes = self.threshold if self.threshold else len(self.parties) // 2 + 1
        object.__setattr__(self, "_votes", votes)
        rules: dict[str, Any] = {"close_votes": votes, "min_accepted": self.min_accepted}
        if self.newcomers or self.absent_rounds:  # q and k as given: the invariants check them
            rules["membership"] = MembershipRules(
                admission=self.admission,  # type: ignore[arg-type]
                votes=self.admit_votes,
                max_parties=len(self.parties),
                absent_rounds=self.absent_rounds,
                quorum=self.quorum,
                close_votes=votes,
                threshold=self.threshold,
            )
        specs = {
            p: MachineSpec(
                p,
                self.listed,
                self.rounds,
                self.quorum,
                needed,
                keys=keys,
                candidacy=Candidacy(newcomer_key(p), 1) if p in self.newcomers else None,
                **rules,
            )
            for p in (*self.parties, "")  # "": the observer, who is no party
        }
        object.__setattr__(self, "_specs", specs)  # built once: asked for millions of times

    @property
    def plan(self) -> KeyPlan:
        """The key settings the machines decide with (when ``keygen`` is set)."""
        return self._plan  # type: ignore[attr-defined,no-any-return]

    @property
    def votes(self) -> int:
        """``close_votes`` as the machines use it (the default resolved)."""
        return self._votes  # type: ignore[attr-defined,no-any-return]

    def spec(self, party: str) -> MachineSpec:
        """The machine spec of ``party`` (``""``: the observer's, :attr:`World.observer`)."""
        return self._specs[party]  # type: ignore[attr-defined,no-any-return]


# A channel entry: (kind, sender, round, payload) — hashable, turned into a real message on
# delivery. Payloads: submitted/closed/failed: (); rejected: (party, reason);
# share: accepted parties of the sum; done: (digest, accepted). The malicious party's:
# submitted: one of MALICIOUS_UPDATES; share: "valid" or "invalid"; done: (digest, ()).
Entry = tuple[str, str, int, Any]


@dataclass(frozen=True)
class Node:
    """One party in the model: its machine state, or None while crashed."""

    state: PartyState | None
    delivered: int = 0  # channel entries folded into ``state``
    checkpoint: tuple[int, str] | None = None  # survives crashes
    stopped: str | None = None  # Halt: the process exited
    training: bool = False  # TrainAndSubmit decided; its Submitted not yet posted


@dataclass(frozen=True)
class World:
    """A global state: the channel, every party, and ghost variables for the invariants."""

    channel: tuple[Entry, ...]
    nodes: tuple[Node, ...]
    crashes_left: int
    # ghost: (party, round, parties whose shares were combined, all of them valid?,
    # the accepted set whose sum was decrypted)
    combines: frozenset[tuple[str, int, tuple[str, ...], bool, tuple[str, ...]]] = frozenset()
    # ghost: (party, round, digest, accepted) for every checkpointed round
    applied: frozenset[tuple[str, int, str, tuple[str, ...]]] = frozenset()
    # ghost: (party, round) for every round a party decided failed
    failed: frozenset[tuple[str, int]] = frozenset()
    #: The whole channel folded by a machine that is no party (``Model.spec("")``): what
    #: every party's views say once it has read everything (the views depend on the
    #: reader only through its own ``Rejected`` entries). A function of ``channel``.
    observer: PartyState | None = None
    #: What is left of the malicious party's budget of posts that change a view.
    malicious_left: int = 0
    #: ``(kind, round, payload)`` of the malicious party's ``Submitted`` and
    #: ``DecryptionShare`` that count (the first of each that no machine finds impossible).
    malicious_counted: frozenset[tuple[str, int, str]] = frozenset()


@dataclass
class Result:
    """What an exploration found."""

    states: int
    transitions: int
    seconds: float
    violation: str | None = None
    trace: list[tuple[str, World]] = field(default_factory=list)
    terminal: int = 0
    #: Hashes each state's fingerprint is the least of (n! with ``Model.symmetry``).
    hashes_per_state: int = 1
    #: The fingerprints of every state reached (kept only when asked: tests compare them).
    visited: frozenset[int] = frozenset()

    @property
    def collision_probability(self) -> float:
        """Chance that two of the states explored share a 64-bit fingerprint (birthday).

        With symmetry a fingerprint is the least of up to n! hashes of a state's renamings,
        so two states collide when any of their hashes do: h² times the plain bound.
        """
        pairs = self.states * (self.states - 1) / 2
        return min(1.0, pairs * self.hashes_per_state**2 / 2**64)


def newcomer_key(name: str) -> str:
    """The identity key (hex) a newcomer of the model asks with: one per name."""
    return name.encode().hex().ljust(64, "0")[:64]


def _channel_message(entry: Entry) -> ChannelMessage:
    """The channel event of an entry (a ``"forged"`` request's signature does not verify)."""
    return ChannelMessage(entry[1], _message(entry), entry[0] != "join" or entry[3] != "forged")


@cache
def _message(entry: Entry) -> Any:
    """The real protocol message an abstract channel entry stands for."""
    kind, sender, r, payload = entry
    if kind == "join":  # round 0, like the key epochs: admission is decided at the cuts
        return JoinRequest(SESSION, 0, sender, newcomer_key(sender), 1)
    if kind == "admit":  # payload: the candidate
        return Admit(SESSION, 0, sender, payload)
    if kind == "submitted":
        return Submitted(SESSION, r, sender, f"mem://{sender}/{r}", "0" * 64, 1, 1)
    if kind == "closed":
        return PhaseClosed(SESSION, r, SUBMIT_PHASE, "closed")
    if kind == "rejected":
        return Rejected(SESSION, r, payload[0], payload[1])
    if kind == "failed":
        return RoundFailed(SESSION, r, "below quorum")
    if kind == "share":
        return DecryptionShare(SESSION, r, sender, f"mem://{sender}/{r}/share", "0" * 64, 1, "k")
    if kind == "done":
        return RoundDone(SESSION, r, sender, payload[0], payload[1])
    if kind == "joined":  # round 0: the round machine ignores it; key epochs read it
        return Joined(SESSION, 0, sender, 1)
    if kind == "key":
        return KeyDealt(SESSION, 0, sender, payload[0], "k", {}, {})
    if kind == "keygen":  # payload: (epoch, message round)
        return KeyGenStep(SESSION, 0, sender, payload[0], payload[1], {})
    raise ValueError(kind)


def _digest(previous: str, r: int, accepted: Sequence[str]) -> str:
    """G(r) abstracted: a function of G(r-1) and the accepted set (what real digests are).

    Spelled out rather than hashed (``G0|1:alice+bob|2:bob+carol``), like the spec's
    ``Digest(prev, r, acc) == Append(prev, acc)``: injective as a hash would be, readable in
    traces, and a renaming of the parties maps it to the digest of the renamed run
    (:func:`_renamed_digest`).
    """
    return f"{previous}|{r}:{'+'.join(sorted(accepted))}"


# -- transitions --------------------------------------------------------------------------


#: ``Node.stopped`` of the malicious party: it runs no machine (:func:`_malicious_moves`).
MALICIOUS = "malicious: runs no machine"


def initial(model: Model) -> World:
    """Every party at round 1 with an empty channel (settled: prepared, about to train)."""
    nodes = tuple(
        Node(None, stopped=MALICIOUS)
        if p == model.malicious
        else Node(machine.start(model.spec(p)))
        for p in model.parties
    )
    budget = model.malicious_posts if model.malicious is not None else 0
    observer = machine.start(model.spec(""))
    world = World((), nodes, model.crashes, observer=observer, malicious_left=budget)
    for i in range(len(model.parties)):
        world = _settle(model, world, i)
    return _read_everywhere(model, world)


def _with_node(world: World, i: int, node: Node, **changes: Any) -> World:
    return evolve(world, nodes=(*world.nodes[:i], node, *world.nodes[i + 1 :]), **changes)


def _deliver_all(
    spec: MachineSpec, state: PartyState, channel: Sequence[Entry], start: int
) -> PartyState:
    for entry in channel[start:]:
        state = machine.apply(spec, state, _channel_message(entry))
    return state


#: Actions whose effect stays inside the party and leaves nothing durable: they run
#: eagerly (``Apply`` writes a checkpoint, so it is a step of its own).
LOCAL_ACTIONS = (OpenKey, Prepare, Verify, Sum, CheckShare, Combine, Advance)


def _settle(model: Model, world: World, i: int) -> World:
    """Run party i's local actions until it must post, checkpoint, wait or stop.

    A partial-order reduction: a local action commutes with every other party's steps and
    leaves nothing a crash would keep, so running it at once loses no behaviour.
    """
    while True:
        node = world.nodes[i]
        if node.state is None or node.stopped is not None or node.training:
            return world
        action = machine.next_action(model.spec(model.parties[i]), node.state)
        if not isinstance(action, LOCAL_ACTIONS):
            return world
        world = _act(model, world, i, action)


def _read(model: Model, world: World, i: int, count: int | None = None) -> World:
    """Deliver(p): party i reads ``count`` more entries (default: all unread, as ``sync``
    does; one at a time is the spec's granularity, ``Model.lagging``), then settles."""
    node = world.nodes[i]
    upto = len(world.channel) if count is None else node.delivered + count
    spec = model.spec(model.parties[i])
    channel = world.channel if count is None else world.channel[:upto]
    state = _deliver_all(spec, node.state, channel, node.delivered)  # type: ignore[arg-type]
    world = _with_node(world, i, evolve(node, state=state, delivered=upto))
    return _settle(model, world, i)


def successors(model: Model, world: World) -> Iterator[tuple[str, World]]:
    """Every ``(label, next world)`` one step away.

    A step of party p is ``Deliver(p)`` (read the channel) followed by the one action its
    machine then names, as in ``RoundProtocol``'s loop (sync, decide, act). Training takes
    time: ``TrainAndSubmit`` makes p busy, and its ``Submitted`` lands later (``Submit``), so
    the cut may pass it by — a late submission. Reading alone is invisible to every other
    party, so reads are explored only where they end in an action.
    """
    for label, after in _moves(model, world):
        yield label, after if model.lagging else _read_everywhere(model, after)


def _read_everywhere(model: Model, world: World) -> World:
    """Normal form: every idle live party has read the whole channel (and settled).

    Reading is invisible to the other parties and a party reads everything before it
    acts, so whether it read an entry early or just before its next step makes no
    difference to any run; only the state with everything read is kept. A training
    party reads nothing until its update is posted (``RoundProtocol`` blocks in training).
    """
    for i, node in enumerate(world.nodes):
        idle = node.state is not None and node.stopped is None and not node.training
        if idle and node.delivered < len(world.channel):
            world = _read(model, world, i)
    return world


def _moves(model: Model, world: World) -> Iterator[tuple[str, World]]:
    for i, party in enumerate(model.parties):
        node = world.nodes[i]
        spec = model.spec(party)
        if node.stopped is not None:
            continue
        if node.state is None:  # crashed: replay the whole channel from the checkpoint
            state = machine.start(spec, node.checkpoint)
            restarted = evolve(node, state=state, delivered=0)
            yield f"Restart({party})", _read(model, _with_node(world, i, restarted), i)
            continue
        if node.training:
            yield f"Act({party}: Submitted r{node.state.round})", _submit(model, world, i)
        elif model.lagging:
            yield from _lagging_steps(model, world, i)
        else:
            yield from _step(model, world, i)
        if world.crashes_left > 0:
            crashed = evolve(node, state=None, delivered=0, training=False)
            yield (
                f"Crash({party})",
                _with_node(world, i, crashed, crashes_left=world.crashes_left - 1),
            )
    if model.admission == "vote" and model.newcomers:
        yield from _admit_moves(model, world)
    if model.malicious is not None and world.malicious_left > 0:
        yield from _malicious_moves(model, world)


def _admit_moves(model: Model, world: World) -> Iterator[tuple[str, World]]:
    """``Admit(p)``: a live member p votes for a pending request it has not voted for (a
    person's decision at any time; the machine only counts the votes)."""
    assert world.observer is not None
    roster = world.observer.roster
    members = machine.members_of(model.spec(""), world.observer, roster.in_progress)
    for i, party in enumerate(model.parties):
        node = world.nodes[i]
        if node.state is None or node.stopped is not None or party not in members:
            continue
        for request in roster.pending:
            if not request.approved and party not in request.approvals:
                entry: Entry = ("admit", party, 0, request.name)
                after = evolve(world, **_post(model, world, (entry,)))
                yield f"Admit({party}: {request.name})", after


def _malicious_moves(model: Model, world: World) -> Iterator[tuple[str, World]]:
    """``Malicious(p)``: the malicious party posts any message for any round, at any time.

    For each round: ``Submitted`` with each of ``Model.malicious_updates``, a
    ``PhaseClosed`` vote, a ``RoundFailed`` vote, a ``DecryptionShare`` that verifies or
    one that does not, and a ``RoundDone`` with a digest some honest party computed for the
    round or a wrong one (``EVIL``) — early, late, twice, for a future round. Its
    ``Rejected`` entries are not generated: a party reads only its own
    (``machine._absorb``), so every machine ignores them (they are inert).

    A post that every machine ignores (a duplicate) is left out; one that machines record
    only as a violation (``machine._impossible``) is posted without spending the budget
    (the parties read it, and the state key, which holds no malicious violations, shows
    whether it changed anything); every other post spends one of ``malicious_posts``.
    """
    bad = model.malicious
    assert bad is not None and world.observer is not None
    for r in range(1, model.rounds + 1):
        right = sorted({d for _, k, d, _ in world.applied if k == r})
        options: list[tuple[str, Any]] = [
            *(("submitted", quality) for quality in model.malicious_updates),
            ("closed", ()),
            ("failed", ()),
            ("share", "valid"),
            ("share", "invalid"),
            *(("done", (digest, ())) for digest in (EVIL, *right)),
        ]
        before = world.observer.view(r)
        for kind, payload in options:
            entry: Entry = (kind, bad, r, payload)
            observer = _observe(model, world.observer, entry)
            view = observer.view(r)
            if view == before:
                continue  # every machine ignores it
            changes: dict[str, Any] = {"channel": (*world.channel, entry), "observer": observer}
            if evolve(view, violations=()) != evolve(before, violations=()):
                changes["malicious_left"] = world.malicious_left - 1
                counted = view.submitted if kind == "submitted" else view.shares
                if kind in ("submitted", "share") and bad in counted:
                    changes["malicious_counted"] = world.malicious_counted | {(kind, r, payload)}
            label = f"Malicious({bad}: {kind} r{r}" + (f" {payload})" if payload else ")")
            yield label, evolve(world, **changes)


def _lagging_steps(model: Model, world: World, i: int) -> Iterator[tuple[str, World]]:
    """``Deliver(p)`` k times, then ``Act(p)`` or ``Timeout(p)``, for every k up to the unread.

    A partial-order reduction of the spec's one-entry ``Deliver``: reading changes only p's
    own state, which no other party sees, and the entries stay in the channel, so every
    interleaving of p's reads with the others' steps reaches what reading just before p's
    next decision reaches. Reading everything without acting is a step too (it ends runs).
    """
    party = model.parties[i]
    unread = len(world.channel) - world.nodes[i].delivered
    for k in range(unread + 1):
        prefix = f"Deliver({party}) x{k}; " if k else ""
        for label, after in _step(model, world, i):
            yield prefix + label, after
        if k < unread:
            world = _read(model, world, i, 1)
    if unread:
        yield f"Deliver({party}) x{unread}", world


def _step(model: Model, world: World, i: int) -> Iterator[tuple[str, World]]:
    party = model.parties[i]
    if not model.lagging:
        world = _read(model, world, i)
    node = world.nodes[i]
    if node.state is None or node.stopped is not None:
        yield f"Deliver({party}); stopped: {node.stopped}", world
        return
    spec = model.spec(party)
    action = machine.next_action(spec, node.state)
    if isinstance(action, DealKey) and model.dealer_silent:
        action = Wait(action.round, "key")  # its deal never comes; its key deadline passes
        if node.state.key_deadline_passed:
            return
    if isinstance(action, Wait):
        if _deadline_passed(node.state, action):
            return  # it passed: nothing but the channel moves this party now
        if _deadline_may_pass(model, world, i, action):
            after = machine.apply(spec, node.state, DeadlinePassed(action.round, action.deadline))
            timed_out = _with_node(world, i, evolve(node, state=after))
            label = f"Timeout({party}, {action.deadline} r{action.round})"
            yield label, _settle(model, timed_out, i)
    elif not isinstance(action, Finish):
        yield f"Act({party}: {_describe(action)})", _settle(model, _act(model, world, i, action), i)


def _deadline_passed(state: PartyState, wait: Wait) -> bool:
    """Whether the deadline ``wait`` names has passed already (another ``Timeout`` would
    change nothing: a step to the same state, which would hide a stuck state from
    :func:`progress`)."""
    passed = {
        "cut": state.deadline_passed,
        "shares": state.shares_deadline_passed,
        "key": state.key_deadline_passed,
    }
    return passed.get(wait.deadline, False)


def _key_deadline_may_pass(model: Model, world: World, i: int) -> bool:
    """Fair key deadlines: once nothing party i waits for is still to come — every live party
    has joined, the dealer (for the others) is down, stopped or silent, and with distributed
    keys every party that has not posted the message round i waits for is down, stopped,
    without a key for the round (its key generation was cut off by a restart), or done with
    the epoch."""
    if world.nodes[i].delivered < len(world.channel):
        return False
    joined = {e[1] for e in world.channel if e[0] == "joined"}
    state: PartyState = world.nodes[i].state  # type: ignore[assignment]
    awaited = model.plan.distributed and state.dkg is not None
    r = state.round
    for p, other in zip(model.parties, world.nodes, strict=True):
        # gone, or it gave up on this round's key: it posts nothing more for it
        gone = (
            other.state is None
            or other.stopped is not None
            or _without_key(model, world, p, r)
            or _past_epoch(model, other.state, r)
        )
        if p not in joined and not gone:
            return False
        dealer = not model.plan.distributed and p == model.dealer != model.parties[i]
        if dealer and not gone and not model.dealer_silent:
            return False
        if awaited and not gone and (*state.dkg, p) not in state.keygen:  # type: ignore[misc]
            return False
    return True


def _submit(model: Model, world: World, i: int) -> World:
    """The end of training: ``Submitted`` lands in the channel now."""
    node = world.nodes[i]
    state: PartyState = node.state  # type: ignore[assignment]
    entry: Entry = ("submitted", model.parties[i], state.round, ())
    after = machine.apply(model.spec(model.parties[i]), state, Done(TrainAndSubmit(state.round)))
    posted = _post(model, world, (entry,))
    return _with_node(world, i, evolve(node, state=after, training=False), **posted)


def _describe(action: machine.Action) -> str:
    fields = {k: v for k, v in action.__dict__.items() if k != "round"}
    args = ", ".join(f"{k}={v}" for k, v in fields.items())
    return f"{type(action).__name__} r{action.round}" + (f" {args}" if args else "")


def _deadline_may_pass(model: Model, world: World, i: int, wait: Wait) -> bool:
    """Whether party i's deadline may pass now.

    Unfair submission deadlines pass at any time (premature cuts, late submissions). A
    decryption-share deadline only makes the waiting party give up (``Halt``), which for
    safety is a crash without restart, so it is explored fair: once every party that has
    not posted its share is down or stopped. Fair deadlines pass once every live party's
    post has arrived.
    """
    if not model.fair_deadlines and (wait.deadline in ("cut", "key") or model.unfair_shares):
        return True
    if wait.deadline == "key":
        return _key_deadline_may_pass(model, world, i)
    if wait.deadline in ("outcome", "follow"):
        return False  # no deadline: our RoundFailed is read back, or the members decide
    node = world.nodes[i]
    if node.delivered < len(world.channel):
        return False
    view = node.state.view(wait.round)  # type: ignore[union-attr]
    posted = view.submitted if wait.deadline == "cut" else view.shares
    members = machine.members_of(model.spec(""), node.state, wait.round)  # type: ignore[arg-type]
    return all(
        other.state is None
        or other.stopped is not None
        or (wait.deadline == "cut" and _without_key(model, world, p, wait.round))
        for p, other in zip(model.parties, world.nodes, strict=True)
        if p not in posted and p in members
    )


def _past_epoch(model: Model, state: PartyState, r: int) -> bool:
    """Whether a party in ``state`` is done with round r's key epoch: past the last round,
    or in a later round of another epoch (it posts nothing more for this one)."""
    later = state.round > r and model.plan.epoch_of(state.round) != model.plan.epoch_of(r)
    return state.round > model.rounds or later


def _without_key(model: Model, world: World, party: str, r: int) -> bool:
    """Whether ``party`` will submit nothing in round r for want of a key: it gave up on the
    key (:func:`machine.lacks_key`), or it is the silent dealer (it never deals)."""
    if model.keygen is None:
        return False
    state: PartyState = world.nodes[model.parties.index(party)].state  # type: ignore[assignment]
    if state.round != r or state.key_open == model.plan.epoch_of(r):
        return False
    silent = model.dealer_silent and party == model.dealer
    return silent or machine.lacks_key(model.spec(party), state) is not None


def _act(model: Model, world: World, i: int, action: machine.Action) -> World:
    """Execute ``action`` for party i with the work abstracted; fold the result back in."""
    party = model.parties[i]
    node = world.nodes[i]
    spec = model.spec(party)
    state: PartyState = node.state  # type: ignore[assignment]
    r = action.round
    posts: list[Entry] = []
    result: Any = None
    changes: dict[str, Any] = {}
    match action:
        case RequestJoin():
            posts.append(("join", party, 0, "good"))
        case Advance():
            pass
        case Join():
            posts.append(("joined", party, 0, ()))
        case DealKey(epoch=epoch):
            posts.append(("key", party, 0, (epoch,)))
        case KeygenStep(epoch=epoch, step=step):
            if step < model.dkg_rounds:
                posts.append(("keygen", party, 0, (epoch, step)))
                result = step
            else:  # the key is done: our KeyDealt with our own share
                posts.append(("key", party, 0, (epoch,)))
        case OpenKey() | Prepare():
            pass
        case TrainAndSubmit():  # busy until _submit posts it
            return _with_node(world, i, evolve(node, training=True))
        case CloseSubmissions():
            posts.append(("closed", party, r, ()))
        case Verify(candidates=candidates):
            result = tuple((c, _update_verdict(model, world, c, r)) for c in sorted(candidates))
        case Reject(party=target, reason=reason):
            posts.append(("rejected", party, r, (target, reason)))
        case FailRound(post=post, decided=decided):
            if post:
                posts.append(("failed", party, r, ()))
            if decided:  # G(r) = G(r-1): the party goes on with round r + 1
                changes["failed"] = world.failed | {(party, r)}
        case Halt(reason=reason):
            return _with_node(world, i, evolve(node, stopped=reason))
        case Sum():
            pass
        case PostShare():
            posts.append(("share", party, r, state.accepted))
        case CheckShare(party=sender):
            result = _share_verdict(model, world, state, r, sender)
        case Combine(parties=parties):
            valid = all(_share_verdict(model, world, state, r, p) is None for p in parties)
            changes["combines"] = world.combines | {(party, r, parties, valid, state.accepted)}
            overflow = ("submitted", r, "overflow") in world.malicious_counted
            if overflow and model.malicious in state.accepted:
                result = "decrypted aggregate out of range: no accepted set could have sent it"
        case Apply(accepted=accepted):
            result = _digest(_previous_digest(state, r), r, accepted)
            node = evolve(node, checkpoint=(r, result))
            changes["applied"] = world.applied | {(party, r, result, accepted)}
        case Announce(digest=digest, accepted=accepted):
            posts.append(("done", party, r, (digest, accepted)))
        case _:
            raise TypeError(f"the model has no effect for {action!r}")
    state = machine.apply(spec, state, Done(action, result))
    return _with_node(world, i, evolve(node, state=state), **_post(model, world, posts), **changes)


def _previous_digest(state: PartyState, r: int) -> str:
    """Our digest of G(r-1): that of the last round before r that ended Done (a failed
    round leaves G unchanged), or G0."""
    done = [(k, d) for k, d in state.digests if k < r]
    return max(done)[1] if done else GENESIS


def _observe(model: Model, observer: PartyState, entry: Entry) -> PartyState:
    """The observer (:attr:`World.observer`) after reading ``entry``."""
    return machine.apply(model.spec(""), observer, _channel_message(entry))


def _post(model: Model, world: World, entries: Sequence[Entry]) -> dict[str, Any]:
    """``channel`` and ``observer`` after posting ``entries``, leaving out inert ones."""
    channel, observer = world.channel, world.observer
    assert observer is not None
    for entry in entries:
        after = _observe(model, observer, entry)
        if not _inert(model, observer, after, entry):
            channel, observer = (*channel, entry), after
    return {"channel": channel, "observer": observer}


def _inert(model: Model, before: PartyState, after: PartyState, entry: Entry) -> bool:
    """Whether every party, whatever its state, ignores ``entry`` (the observer read it:
    ``before`` -> ``after``).

    Parties read the channel in order and fold it into views by the same rules
    (``machine._absorb``), which depend on the reader only through its own ``Rejected``
    entries and its pending announce (cleared by the first of its ``RoundDone``). So an
    entry that leaves the observer's views as they were — a ``PhaseClosed`` after the cut
    or a second one of a party, a ``Submitted`` after the cut, a party's second share,
    ``RoundFailed`` or ``RoundDone`` of a round — never changes a machine, and leaving it out
    of the model's channel merges states that differ only by such entries. A ``Rejected``
    counts only for its poster, so the malicious party's are inert; key-epoch entries
    (round 0) never are. An entry that a machine records as a violation is *not* inert.
    """
    kind, sender, r, _ = entry
    if kind == "rejected":
        return sender == model.malicious
    return r != 0 and after.views == before.views


def _update_verdict(model: Model, world: World, party: str, r: int) -> str | None:
    """An update verifies unless it is one of ``bad_updates`` or the malicious party's
    counted ``Submitted`` carries a ``"bad"`` one."""
    if party == model.malicious:
        bad = ("submitted", r, "bad") in world.malicious_counted
    else:
        bad = (party, r) in model.bad_updates
    return "invalid update" if bad else None


def _share_verdict(
    model: Model, world: World, state: PartyState, r: int, sender: str
) -> str | None:
    """A share verifies iff its sender is honest and it is a share of *our* sum; the
    malicious party's counted share verifies iff it posted a ``"valid"`` one."""
    if sender in model.bad_shares:
        return "decryption share: proof failed"
    if sender == model.malicious:
        valid = ("share", r, "valid") in world.malicious_counted
        return None if valid else "decryption share: proof failed"
    for kind, who, round_, accepted in world.channel:
        if kind == "share" and who == sender and round_ == r:
            return None if accepted == state.accepted else "decryption share: proof failed"
    return "decryption share: object unavailable"


# -- invariants ---------------------------------------------------------------------------


def agreement(model: Model, world: World) -> str | None:
    """All parties that decide round r decide the same: one digest of G(r), or Failed."""
    seen: dict[int, str] = {}
    for party, r, digest, _ in sorted(world.applied):
        if seen.setdefault(r, digest) != digest:
            return f"Agreement: round {r} finished with digests {seen[r]} and {digest} ({party})"
    for party, r in sorted(world.failed):
        if r in seen:
            return f"Agreement: round {r} failed for {party} and finished with {seen[r]}"
    return None


def threshold_safety(model: Model, world: World) -> str | None:
    """No decryption from fewer than t valid shares; honest shares only of sums of
    >= max(q, 2) (what the malicious party posts is its own business)."""
    for party, r, parties, valid, _ in sorted(world.combines):
        if len(set(parties)) < model.threshold or not valid:
            return (
                f"ThresholdSafety: {party} decrypted round {r} from shares of "
                f"{list(parties)} ({'valid' if valid else 'not all valid'}), t = {model.threshold}"
            )
    for kind, sender, _, accepted in world.channel:
        if kind == "share" and sender != model.malicious and len(accepted) < max(model.quorum, 2):
            return f"ThresholdSafety: {sender} posted a decryption share of {list(accepted)}"
    return None


def min_accepted_safety(model: Model, world: World) -> str | None:
    """No honest party posts a decryption share of, or decrypts, the sum of fewer than
    ``min_accepted`` accepted updates (THREATS.md 2: a coalition that learns the sum of
    the others' updates learns one update when only one other is in it)."""
    if not model.min_accepted or not model.threshold:
        return None  # no floor, or updates in the clear (nothing is decrypted)
    for kind, sender, r, accepted in world.channel:
        if kind == "share" and sender != model.malicious and len(accepted) < model.min_accepted:
            return (
                f"MinAcceptedSafety: {sender} posted a decryption share of round {r}'s sum of "
                f"{list(accepted)}, min_accepted = {model.min_accepted}"
            )
    for party, r, _, _, accepted in sorted(world.combines):
        if len(accepted) < model.min_accepted:
            return (
                f"MinAcceptedSafety: {party} decrypted round {r}'s sum of {list(accepted)}, "
                f"min_accepted = {model.min_accepted}"
            )
    return None


def honest_blameless(model: Model, world: World) -> str | None:
    """No honest party is named faulty by an honest one: no entry an honest party posts is
    impossible at its place (``machine._impossible``: the views record it as a violation),
    and no honest party finds another's ``RoundDone`` contradicting its outcome
    (``machine.digest_faults``, which it would post as a ``Rejected``)."""
    assert world.observer is not None
    for r, view in enumerate(world.observer.views, 1):
        for sender, what in view.violations:
            if sender != model.malicious:
                return f"HonestBlameless: {sender}'s entry is a violation (round {r}): {what}"
    for party, node in zip(model.parties, world.nodes, strict=True):
        if node.state is None:
            continue
        for r, accused, why in machine.digest_faults(model.spec(party), node.state):
            if accused != model.malicious:
                return f"HonestBlameless: {party} names {accused} faulty (round {r}): {why}"
    return None


def quorum_safety(model: Model, world: World) -> str | None:
    """No round completes with fewer than q accepted updates."""
    for party, r, _, accepted in sorted(world.applied):
        if len(accepted) < model.quorum:
            return f"QuorumSafety: {party} completed round {r} with {list(accepted)}"
    return None


#: Steps that are no honest party's: a state with only these left is terminal (the
#: malicious party owes nobody a step, so Progress may not rely on its posts).
NOT_HONEST_STEPS = ("Restart", "Crash", "Malicious")


def terminal(successors_: list[tuple[str, World]]) -> bool:
    """Whether no honest party can take a step (only crashes, restarts, malicious posts)."""
    return all(label.startswith(NOT_HONEST_STEPS) for label, _ in successors_)


def progress(model: Model, world: World, successors_: list[tuple[str, World]]) -> str | None:
    """In a terminal state (:func:`terminal`), every live honest party is done — with
    ``Model.all_done``, every round of it ended Done.

    The premise: at least max(q, close_votes) live honest parties (fewer cannot close a
    submit phase, or fail a decryption, without the malicious party's votes).
    """
    if not terminal(successors_):
        return None
    live = [(p, n) for p, n in zip(model.parties, world.nodes, strict=True) if n.state is not None]
    if sum(p in model.listed for p, _ in live) < max(model.quorum, model.votes):
        return None  # the property's premise does not hold
    for party, node in live:
        refused = party in model.newcomers and str(node.stopped).startswith("join request refused")
        if node.stopped is not None and not refused:
            return f"Progress: {party} stopped: {node.stopped}"
        if refused:
            continue
        if node.state.round <= model.rounds:  # type: ignore[union-attr]
            return f"Progress: {party} is stuck in round {node.state.round}"  # type: ignore[union-attr]
        failed = sorted(r for p, r in world.failed if p == party)
        if model.all_done and failed:
            return f"Progress: round {failed[0]} failed for {party} (all rounds must be Done)"
    return None


SAFETY: tuple[Callable[[Model, World], str | None], ...] = (
    agreement,
    threshold_safety,
    quorum_safety,
    min_accepted_safety,
    honest_blameless,
)


# -- the search ---------------------------------------------------------------------------


def state_key(model: Model, world: World) -> Hashable:
    """What of a world decides its future: worlds with equal keys have the same runs.

    * The channel as every party's views fold it (:attr:`World.observer`), per round:
      before the cut the submitters and the ``PhaseClosed`` voters as sets, after it the cut
      as a set; the ``RoundFailed`` voters as a set and where the ``close_votes``-th fell
      among the decryption shares (``failed_at``); the shares in channel order (the first t
      valid ones decrypt) until every party is past the round; the first ``RoundDone`` of
      each party and the honest ``Rejected`` entries as sets. ``machine._absorb`` and
      ``machine._impossible`` read nothing else of a view (membership, counts, the cut,
      ``failed_at``, the share order, whether a sender finished round r - 1), so a later
      entry does the same after two channels with the same summary. Violations change no
      decision: only honest senders' are kept (for ``HonestBlameless``).
    * Each party without its views: an idle live party has read the whole channel (the
      normal form), so its views are a function of the channel; a training party reads it
      all before it acts again; a crashed one replays it.
    * The malicious party's budget and its counted posts' payloads.
    """
    if model.lagging:  # a party's views are a function of the channel prefix it has read
        nodes = tuple(
            evolve(n, state=_viewless(n.state)) if n.state is not None else n for n in world.nodes
        )
        return (
            world.channel,
            nodes,
            world.crashes_left,
            world.combines,
            world.applied,
            world.failed,
            world.malicious_left,
            world.malicious_counted,
        )
    assert world.observer is not None
    rounds = []
    for r, view in enumerate(world.observer.views, 1):
        # before the cut: who submitted and who voted; after it, only the cut counts
        phase: Hashable = (
            (frozenset(view.submitted), frozenset(view.closers))
            if view.cut is None
            else frozenset(view.cut)
        )
        payloads: dict[str, Any] = {}  # the malicious party's: Model.malicious_counted
        rejected: set[tuple[str, Any]] = set()
        for kind, sender, round_, payload in world.channel:
            if round_ == r and kind == "share" and sender != model.malicious:
                payloads.setdefault(sender, payload)
            elif round_ == r and kind == "rejected":
                rejected.add((sender, payload))
        shares = tuple((p, payloads.get(p)) for p in view.shares)
        ordered: Hashable = frozenset(shares) if _past(model, world, r) else shares
        failers = frozenset(view.failers)
        rounds.append(
            (phase, failers, view.failed_at, ordered, frozenset(view.done), frozenset(rejected))
        )
    nodes = tuple(
        (
            None if n.state is None or n.stopped else _viewless(n.state),
            n.checkpoint,
            n.stopped,
            n.training,
        )
        for n in world.nodes
    )
    ghosts = (world.combines, world.applied, world.failed, _blamed(model, world))
    malicious = (world.malicious_left, world.malicious_counted)
    ghosts = (*ghosts, world.observer.roster)  # who joined when: a function of the channel
    if model.keygen is not None:  # joins and dealt keys sit outside the rounds (round 0)
        keys = frozenset(e for e in world.channel if e[2] == 0)
        return (tuple(rounds), keys, nodes, world.crashes_left, *ghosts, *malicious)
    return (tuple(rounds), nodes, world.crashes_left, *ghosts, *malicious)


def _blamed(model: Model, world: World) -> frozenset[tuple[int, str, str]]:
    """``(round, sender, what)`` of the violations by honest senders (``HonestBlameless``;
    the malicious party's change nothing, so the key leaves them out)."""
    assert world.observer is not None
    return frozenset(
        (r, sender, what)
        for r, view in enumerate(world.observer.views, 1)
        for sender, what in view.violations
        if sender != model.malicious
    )


_NO_KEY_VIEWS: dict[str, Any] = {
    "joined": frozenset(),
    "dealt": frozenset(),
    "keygen": frozenset(),
    "posted_keys": frozenset(),
    "roster": machine.membership.NO_ROSTER,
}


def _viewless(state: PartyState) -> PartyState:
    """``state`` without what it read off the channel (its views and key-epoch entries): a
    function of the channel prefix it read, which the key holds otherwise."""
    return evolve(state, views=(), **_NO_KEY_VIEWS)


def _past(model: Model, world: World, r: int) -> bool:
    """Whether no party will look at round r's shares again."""
    for node in world.nodes:
        if node.stopped is not None:
            continue
        if node.state is None:
            if node.checkpoint is None or node.checkpoint[0] < r:
                return False
        elif node.state.round <= r:
            return False
    return True


# -- symmetry ------------------------------------------------------------------------------


class _Unrenamable(Exception):
    """A state whose text names a party (a disagreement's halt reason): kept as it is."""


def canonical_key(model: Model, world: World) -> Hashable:
    """The least :func:`state_key` hash over the renamings that could be canonical.

    The parties run the same machine and the model names none of them (``Model.symmetry``
    demands it), so renaming the parties of a state gives a state with the renamed runs:
    one representative per orbit is enough (TLC's symmetry reduction). A renaming is a
    candidate when it lists the parties in the order of :func:`_signature` (a summary that
    names nobody); only ties are tried both ways, so most states need one or two renamings
    instead of n!. A renaming σ·w of w has the same candidates composed with σ⁻¹, so w and
    σ·w get the same key. ``tests/protocol/test_model_check.py`` checks that a reduced
    search reaches exactly the orbits of the full one.
    """
    bare = tuple(_bare(node) for node in world.nodes)
    try:
        return min(
            hash(state_key(model, _renamed(world, bare, _renaming(model.parties, order))))
            for order in _candidate_orders(model, world)
        )
    except _Unrenamable:
        return ("as is", state_key(model, world))


def _bare(node: Node) -> Node:
    """The node without its views (no key looks at them; a renaming need not rename them)."""
    if node.state is None or not node.state.views:
        return node
    return evolve(node, state=evolve(node.state, views=()))


def _signature(model: Model, world: World, i: int, sent: int) -> tuple[int, ...]:
    """Party i's part of :func:`state_key` with the names left out.

    Equal for a party and its renamed self, and a function of the key alone (a stopped
    party is only its checkpoint and reason; ``delivered`` counts only with lagging views),
    so worlds with equal keys get the same candidates. ``sent``: distinct entries i posted.
    """
    node = world.nodes[i]
    ticked = node.checkpoint[0] if node.checkpoint else 0
    if node.state is None or node.stopped is not None:
        return (node.state is not None, sent, ticked)
    s = node.state
    return (
        2 + node.training,
        sent,
        ticked,
        s.round,
        node.delivered if model.lagging else 0,
        s.pending_announce is None,
        s.prepared + 2 * s.submit_posted + 4 * s.close_posted + 8 * s.deadline_passed,
        s.verdicts is None,
        s.summed + 2 * s.share_posted + 4 * s.shares_deadline_passed,
        len(s.share_verdicts),
        s.combined is None,
        s.applied is None,
    )


def _candidate_orders(model: Model, world: World) -> Iterator[tuple[int, ...]]:
    """Orders of the parties' indices sorted by signature, every order within a tie."""
    # who posted a ``closed`` is not in the non-lagging key (only that the cut passed)
    posted = Counter(e[1] for e in set(world.channel) if model.lagging or e[0] != "closed")
    signatures = [
        _signature(model, world, i, posted[party]) for i, party in enumerate(model.parties)
    ]
    ranked = sorted(range(len(signatures)), key=signatures.__getitem__)
    groups = [list(g) for _, g in itertools.groupby(ranked, key=signatures.__getitem__)]
    for choice in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield tuple(i for group in choice for i in group)


@dataclass(frozen=True, eq=False)  # one instance per renaming (_renaming): identity is equality
class Renaming:
    """Party ``parties[order[j]]`` becomes ``parties[j]``."""

    parties: tuple[str, ...]
    order: tuple[int, ...]

    def __post_init__(self) -> None:
        names = {self.parties[old]: self.parties[new] for new, old in enumerate(self.order)}
        object.__setattr__(self, "names", names)

    def __call__(self, party: str) -> str:
        return self.names[party]  # type: ignore[attr-defined,no-any-return]


@cache
def _renaming(parties: tuple[str, ...], order: tuple[int, ...]) -> Renaming:
    return Renaming(parties, order)


def _renamed(world: World, bare: tuple[Node, ...], renaming: Renaming) -> World:
    """``world`` (with its nodes ``bare`` of views) under ``renaming``.

    Tuples that the work sorts by name (verdicts, accepted sets) are sorted again, so the
    result is the state the renamed run reaches, not only a relabelled one. The pieces are
    cached: a search meets the same entries, digests and nodes again and again.
    """
    if renaming.order == tuple(range(len(renaming.order))):
        return evolve(world, nodes=bare)
    new = renaming
    channel = tuple(_renamed_entry(entry, new) for entry in world.channel)
    nodes = tuple(_renamed_node(bare[old], new) for old in renaming.order)
    combines = frozenset(
        (new(p), r, tuple(new(x) for x in shares), valid, _renamed_set(accepted, new))
        for p, r, shares, valid, accepted in world.combines
    )
    applied = frozenset(
        (new(p), r, _renamed_digest(d, new), _renamed_set(accepted, new))
        for p, r, d, accepted in world.applied
    )
    failed = frozenset((new(p), r) for p, r in world.failed)
    observer = world.observer
    if observer is not None:
        observer = evolve(observer, views=tuple(_renamed_view(v, new) for v in observer.views))
    return evolve(
        world,
        channel=channel,
        nodes=nodes,
        combines=combines,
        applied=applied,
        failed=failed,
        observer=observer,
    )


@lru_cache(maxsize=1 << 16)
def _renamed_view(view: machine.RoundView, renaming: Renaming) -> machine.RoundView:
    """The observer's view of a round in the renamed run (entries keep their order)."""
    new = renaming

    def names(parties: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(map(new, parties))

    return evolve(
        view,
        submitted=names(view.submitted),
        closers=names(view.closers),
        cut=None if view.cut is None else names(view.cut),
        my_rejections=frozenset((new(p), why) for p, why in view.my_rejections),
        failers=names(view.failers),
        shares=names(view.shares),
        done=tuple((new(p), _renamed_digest(d, new)) for p, d in view.done),
        violations=tuple((new(p), what) for p, what in view.violations),
    )


@cache
def _renamed_set(parties: tuple[str, ...], renaming: Renaming) -> tuple[str, ...]:
    return tuple(sorted(map(renaming, parties)))


@cache
def _renamed_digest(digest: str, renaming: Renaming) -> str:
    """``G0|1:alice+bob`` under alice -> bob, bob -> carol: ``G0|1:bob+carol``."""
    genesis, *rounds = digest.split("|")
    parts = [genesis]
    for part in rounds:
        r, accepted = part.split(":")
        parts.append(f"{r}:{'+'.join(_renamed_set(tuple(accepted.split('+')), renaming))}")
    return "|".join(parts)


@cache
def _renamed_entry(entry: Entry, renaming: Renaming) -> Entry:
    kind, sender, r, payload = entry
    if kind == "rejected":
        payload = (renaming(payload[0]), payload[1])
    elif kind == "share":
        payload = _renamed_set(payload, renaming)
    elif kind == "done":
        payload = (_renamed_digest(payload[0], renaming), _renamed_set(payload[1], renaming))
    return (kind, renaming(sender), r, payload)


def _renamed_text(text: str | None, renaming: Renaming) -> str | None:
    if text is not None and any(p in text for p in renaming.parties):
        raise _Unrenamable(text)
    return text


@lru_cache(maxsize=1 << 17)
def _renamed_node(node: Node, renaming: Renaming) -> Node:
    new = renaming
    checkpoint = node.checkpoint
    if checkpoint is not None:
        checkpoint = (checkpoint[0], _renamed_digest(checkpoint[1], new))
    stopped = _renamed_text(node.stopped, new)
    s = node.state
    if s is None:
        return evolve(node, checkpoint=checkpoint, stopped=stopped)
    pending = s.pending_announce
    state = evolve(
        s,
        digests=tuple((r, _renamed_digest(d, new)) for r, d in s.digests),
        pending_announce=pending and (pending[0], _renamed_digest(pending[1], new)),
        halted=_renamed_text(s.halted, new),
        accused=frozenset((r, new(p), _renamed_text(why, new)) for r, p, why in s.accused),
        verdicts=None
        if s.verdicts is None
        else tuple(sorted(((new(p), why) for p, why in s.verdicts), key=lambda v: v[0])),
        rejections_posted=frozenset((new(p), why) for p, why in s.rejections_posted),
        share_verdicts=tuple((new(p), why) for p, why in s.share_verdicts),
        combined=None if s.combined is None else tuple(map(new, s.combined)),
        applied=s.applied and _renamed_digest(s.applied, new),
    )
    return evolve(node, state=state, checkpoint=checkpoint, stopped=stopped)


def fingerprint(model: Model, world: World) -> int:
    """64 bits of :func:`state_key`, as TLC keeps: the visited set holds only these.

    Two distinct states share a fingerprint with probability about ``states**2 / 2**65``
    (:attr:`Result.collision_probability`); a collision would prune a state unexplored, so
    the report prints that bound, as TLC does. Full keys took ~2 KB a state, fingerprints
    with their parent links ~150 bytes, which is what lets millions of states fit.
    """
    if model.symmetry:
        return hash(canonical_key(model, world))
    return hash(state_key(model, world))


def explore(
    model: Model,
    *,
    max_states: int = 20_000_000,
    check_progress: bool | None = None,
    keep_visited: bool = False,
) -> Result:
    """Breadth-first search of every reachable state; stops at the first violation.

    Distinct states are counted by :func:`fingerprint`; the search keeps only fingerprints
    and the step that first reached each, and rebuilds a counterexample by replaying those
    steps.
    """
    check_progress = model.fair_deadlines if check_progress is None else check_progress
    hashes = math.factorial(len(model.parties)) if model.symmetry else 1
    started = time.perf_counter()
    first = initial(model)
    first_key = fingerprint(model, first)
    parent: dict[int, tuple[int, str] | None] = {first_key: None}
    queue: deque[tuple[int, World]] = deque([(first_key, first)])
    transitions = terminals = 0
    while queue:
        key, world = queue.popleft()
        nexts = list(successors(model, world))
        violation = _violation(model, world, nexts, check_progress)
        if terminal(nexts):
            terminals += 1
        if violation is not None:
            trace = _trace(model, parent, key)
            if trace and model.symmetry:  # the replay may end in a renaming of ``world``
                last = trace[-1][1]
                nexts = list(successors(model, last))
                violation = _violation(model, last, nexts, check_progress) or violation
            seconds = time.perf_counter() - started
            return Result(len(parent), transitions, seconds, violation, trace, terminals, hashes)
        for label, after in nexts:
            transitions += 1
            after_key = fingerprint(model, after)
            if after_key not in parent:
                parent[after_key] = (key, sys.intern(label))  # labels repeat: store each once
                queue.append((after_key, after))
                if len(parent) > max_states:
                    raise RuntimeError(f"more than {max_states} states; shrink the model")
    seconds = time.perf_counter() - started
    visited = frozenset(parent) if keep_visited else frozenset()
    return Result(
        len(parent),
        transitions,
        seconds,
        terminal=terminals,
        hashes_per_state=hashes,
        visited=visited,
    )


def _violation(
    model: Model, world: World, nexts: list[tuple[str, World]], check_progress: bool
) -> str | None:
    """The first invariant ``world`` breaks (Progress only where asked), or None."""
    violation = next((v for check in SAFETY if (v := check(model, world))), None)
    if violation is None and check_progress:
        violation = progress(model, world, nexts)
    return violation


def _trace(
    model: Model, parent: dict[int, tuple[int, str] | None], key: int
) -> list[tuple[str, World]]:
    """Replay the recorded steps from the initial state to ``key``."""
    labels: list[tuple[str, int]] = []
    current = key
    while (link := parent[current]) is not None:
        labels.append((link[1], current))
        current = link[0]
    world = initial(model)
    steps: list[tuple[str, World]] = []
    for label, want in reversed(labels):
        # With symmetry the recorded step may be a renamed one: any step into the orbit does.
        label, world = next(
            (got, after)
            for got, after in successors(model, world)
            if (got == label or model.symmetry) and fingerprint(model, after) == want
        )
        steps.append((label, world))
    return steps


def format_trace(result: Result, model: Model | None = None) -> str:
    """The counterexample as numbered steps (the shortest one: the search is breadth-first).

    Each step also lists the local actions that ran with it (see ``_settle``), read off the
    parties' states before and after.
    """
    lines = [f"counterexample ({len(result.trace)} steps): {result.violation}"]
    before = initial(model) if model is not None else None
    for n, (label, world) in enumerate(result.trace, 1):
        notes = _local_notes(model, before, world) if model and before else []
        lines.append(f"{n:3d}. {label}" + (f"  [then {'; '.join(notes)}]" if notes else ""))
        before = world
    return "\n".join(lines)


def _local_notes(model: Model, before: World, after: World) -> list[str]:
    notes = []
    for name, b, a in zip(model.parties, before.nodes, after.nodes, strict=True):
        if a.state is None or b.state is None or a.state.round != b.state.round:
            continue
        who = a.state.round
        if b.state.verdicts is None and a.state.verdicts is not None:
            notes.append(f"{name}: Verify r{who} -> accepted {list(a.state.accepted)}")
        for party, reason in a.state.share_verdicts[len(b.state.share_verdicts) :]:
            notes.append(f"{name}: CheckShare r{who} {party}: {reason or 'valid'}")
        if b.state.combined is None and a.state.combined is not None:
            notes.append(f"{name}: Combine r{who} shares of {list(a.state.combined)}")
        if b.stopped is None and a.stopped is not None:
            notes.append(f"{name} stopped: {a.stopped}")
    return notes


#: The names ``--parties N`` takes the first N of.
PARTY_NAMES = ("alice", "bob", "carol", "dave", "erin")


def main(argv: Sequence[str] | None = None) -> int:
    """Explore one model given on the command line; print the states and any counterexample."""
    parser = argparse.ArgumentParser(prog="python -m zkadapt.protocol.model_check")
    parser.add_argument(
        "--parties",
        type=int,
        default=3,
        choices=range(1, len(PARTY_NAMES) + 1),
        metavar="N",
        help=f"parties, 1-{len(PARTY_NAMES)} [3]",
    )
    parser.add_argument("--t", type=int, default=2, help="decryption threshold, 0-N [2]")
    parser.add_argument("--q", type=int, default=2, help="quorum, 1-N [2]")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, at least 1 [2]")
    parser.add_argument("--crashes", type=int, default=1, help="crash budget [1]")
    parser.add_argument(
        "--unfair", action="store_true", help="submission deadlines may pass at any time"
    )
    parser.add_argument(
        "--unfair-shares",
        action="store_true",
        help="with --unfair, decryption-share deadlines may pass at any time too",
    )
    parser.add_argument(
        "--lagging",
        action="store_true",
        help="parties act on a lagging view (read one entry per Deliver step)",
    )
    parser.add_argument(
        "--symmetry",
        action="store_true",
        help="count states up to a renaming of the parties (TLC's SYMMETRY; ~n! fewer)",
    )
    parser.add_argument("--share-slack", type=int, default=0, help="broken variant: t - slack")
    parser.add_argument(
        "--close-votes",
        type=int,
        default=None,
        metavar="K",
        help="distinct PhaseClosed (RoundFailed) votes that close a submit phase (fail a "
        "decryption), 1-N [t; a majority when t = 0]",
    )
    parser.add_argument(
        "--min-accepted",
        type=int,
        default=0,
        metavar="M",
        help="key holders decrypt only sums of at least M accepted updates, 0-N [0: no floor]",
    )
    parser.add_argument(
        "--malicious",
        metavar="PARTY",
        help="this party runs no machine and posts any message for any round (one of the "
        "--parties names: alice, bob, ...) [none]",
    )
    parser.add_argument(
        "--malicious-posts",
        type=int,
        default=2,
        metavar="M",
        help="the malicious party's posts that change a view, at least 0 [2]",
    )
    parser.add_argument(
        "--malicious-updates",
        default=",".join(MALICIOUS_UPDATES),
        metavar="KINDS",
        help="what its Submitted may carry, comma-separated among "
        f"{', '.join(MALICIOUS_UPDATES)} [all]",
    )
    parser.add_argument(
        "--newcomers",
        type=int,
        default=0,
        metavar="K",
        help="parties in no session file that ask to join (named after the N listed ones; "
        "N + K at most 5) [0]",
    )
    parser.add_argument(
        "--admission",
        choices=("open", "vote"),
        default="open",
        help="membership.admission with newcomers [open]",
    )
    parser.add_argument(
        "--votes", type=int, default=1, metavar="V", help="membership.votes for 'vote' [1]"
    )
    parser.add_argument(
        "--absent-rounds",
        type=int,
        default=None,
        metavar="A",
        help="membership.absent_rounds: mark a member absent after A silent rounds [never]",
    )
    parser.add_argument(
        "--all-done",
        action="store_true",
        help="Progress demands every round Done for every live honest party (none Failed)",
    )
    args = parser.parse_args(argv)
    if args.unfair_shares and not args.unfair:
        parser.error("--unfair-shares needs --unfair")
    n = args.parties
    if not 0 <= args.newcomers <= len(PARTY_NAMES) - n:
        parser.error(f"--newcomers {args.newcomers} is out of range (0..{len(PARTY_NAMES) - n})")
    names = PARTY_NAMES[:n]
    newcomers = PARTY_NAMES[n : n + args.newcomers]
    for flag, value, low, high, bounds in (
        ("--t", args.t, 0, n, f"0..{n} with {n} parties"),
        ("--q", args.q, 1, n, f"1..{n} with {n} parties"),
        ("--rounds", args.rounds, 1, None, "at least 1"),
        ("--crashes", args.crashes, 0, None, "at least 0"),
        ("--share-slack", args.share_slack, 0, args.t, f"0..{args.t}, at most t"),
        ("--close-votes", args.close_votes, 1, n, f"1..{n} with {n} parties"),
        ("--min-accepted", args.min_accepted, 0, n, f"0..{n} with {n} parties"),
        ("--malicious-posts", args.malicious_posts, 0, None, "at least 0"),
        ("--votes", args.votes, 1, n, f"1..{n} with {n} parties"),
        ("--absent-rounds", args.absent_rounds, 1, None, "at least 1"),
    ):
        if value is not None and (value < low or (high is not None and value > high)):
            parser.error(f"{flag} {value} is out of range ({bounds})")
    if args.malicious is not None and args.malicious not in names:
        parser.error(f"--malicious {args.malicious} is not one of {', '.join(names)}")
    if args.malicious is not None and args.symmetry:
        parser.error("--symmetry needs a model that names no party (no --malicious)")
    updates = tuple(kind for kind in args.malicious_updates.split(",") if kind)
    if not set(updates) <= set(MALICIOUS_UPDATES):
        parser.error(
            f"--malicious-updates {args.malicious_updates}: each one of "
            f"{', '.join(MALICIOUS_UPDATES)}"
        )
    if newcomers and (args.symmetry or args.malicious is not None):
        parser.error("--newcomers needs a model without --symmetry and --malicious")
    model = Model(
        (*names, *newcomers),
        args.t,
        args.q,
        args.rounds,
        args.crashes,
        fair_deadlines=not args.unfair,
        share_slack=args.share_slack,
        unfair_shares=args.unfair_shares,
        lagging=args.lagging,
        symmetry=args.symmetry,
        close_votes=args.close_votes,
        min_accepted=args.min_accepted,
        malicious=args.malicious,
        malicious_posts=args.malicious_posts,
        malicious_updates=updates,
        all_done=args.all_done,
        newcomers=newcomers,
        admission=args.admission,
        admit_votes=args.votes,
        absent_rounds=args.absent_rounds,
    )
    result = explore(model)
    checked = "safety" if args.unfair else "safety and Progress"
    deadlines = (
        "fair" if not args.unfair else "unfair" + (" (shares too)" if args.unfair_shares else "")
    )
    rules = f"k={model.votes}" + (f" min_accepted={args.min_accepted}" if args.min_accepted else "")
    if args.malicious is not None:
        rules += f" malicious={args.malicious} (<={args.malicious_posts} posts)"
    if args.all_done:
        rules += " all-done"
    if newcomers:
        votes = f" votes={args.votes}" if args.admission == "vote" else ""
        rules += f" newcomers={','.join(newcomers)} ({args.admission}{votes})"
    if args.absent_rounds:
        rules += f" absent-rounds={args.absent_rounds}"
    print(
        f"n={args.parties} t={args.t} q={args.q} {rules} rounds={args.rounds} "
        f"crashes<={args.crashes} "
        f"{deadlines} deadlines{', lagging views' if args.lagging else ''} ({checked}): "
        f"{result.states} distinct states{' up to symmetry' if args.symmetry else ''}, "
        f"{result.transitions} transitions, {result.terminal} terminal, "
        f"{result.seconds:.1f} s; fingerprint collision probability "
        f"{result.collision_probability:.1e}"
    )
    if result.violation:
        print(format_trace(result, model))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
