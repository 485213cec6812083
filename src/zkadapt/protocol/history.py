"""The channel history of one session, decoded and indexed (pure; no I/O).

Agreement comes from the channel's order, never from clocks (DESIGN.md section 3): every
honest party feeds the same entries into :class:`SessionHistory` and so answers the same
questions the same way — which submissions precede the cut, who posted which digest.
Entries that are malformed, from another session, or whose signer is not the party they
speak for are set aside in :attr:`SessionHistory.dropped` (a peer's fault is data, not a
crash). A signer that is not a party got past the channel only because the session names its
key (the external key-generation centre, ``privacy.kgc_public_key``): it may post
``KeyDealt`` for itself and nothing else, and the scheme takes keys only from the configured
dealer.

With ``[membership]`` (docs/membership.md) a signer that is no listed party may also post a
``JoinRequest`` for itself: the channel cannot check an outsider's signature, so this reader
checks the envelope against the key the request carries and tells the round machine whether
it verified (a bad signature is a refusal every party records the same way). Once the
machine has admitted it, a newcomer's entries are checked against its admitted key here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zkadapt.channel.base import Entry
from zkadapt.crypto.identity import PublicIdentity
from zkadapt.escrow.messages import is_escrow_payload
from zkadapt.protocol import machine
from zkadapt.protocol.machine import MachineSpec, PartyState
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    DecryptionShare,
    Joined,
    JoinRequest,
    KeyDealt,
    KeyGenStep,
    MalformedMessage,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    decode,
)


@dataclass(frozen=True)
class Posted:
    """A decoded message with its place in the channel."""

    seq: int
    sender: str
    message: Message
    timestamp: float
    #: False only for a ``JoinRequest`` whose signature does not verify against its key.
    authentic: bool = True


@dataclass(frozen=True)
class Dropped:
    """A channel entry that the protocol ignores, and why."""

    seq: int
    sender: str
    reason: str


class SessionHistory:
    """Accumulates channel entries of one session and answers the protocol's questions.

    Given the session's ``rules`` (an observer's :class:`~zkadapt.protocol.machine.MachineSpec`,
    ``SessionConfig.channel_rules()``), it also reads the channel the way every party's
    machine does (:attr:`observed`): where each round's cut falls (the ``close_votes``-th
    ``PhaseClosed`` vote), where its decryption failed by votes, and which entries were
    impossible at their place (violations). Without rules (a reader that only lists
    entries) the first ``PhaseClosed`` / ``RoundFailed`` stands in.
    """

    def __init__(
        self, session_id: str, parties: Iterable[str], rules: MachineSpec | None = None
    ) -> None:
        self.session_id = session_id
        self.parties = frozenset(parties)
        self.last_seq = 0
        self.posted: list[Posted] = []
        self.dropped: list[Dropped] = []
        self.rules = rules
        #: The channel as the parties' machines read it (None without ``rules``).
        self.observed: PartyState | None = machine.start(rules) if rules is not None else None
        self._cut_at: dict[int, int] = {}  # round -> seq of the vote that cut it
        self._failed_at: dict[int, Posted] = {}  # round -> the vote that failed its decryption
        #: Entries the rules find impossible at their place: no question below sees them.
        self.violating: set[int] = set()

    def _observe(self, posted: Posted) -> None:
        """Fold one entry into :attr:`observed`; note where a cut or a failure vote landed."""
        if self.rules is None or self.observed is None:
            return
        r = getattr(posted.message, "round", 0)
        before = self.observed.view(r)
        self.observed = machine.observe_one(
            self.rules, self.observed, posted.sender, posted.message, posted.authentic
        )
        after = self.observed.view(r)
        if len(after.violations) > len(before.violations):
            self.violating.add(posted.seq)
        if before.cut is None and after.cut is not None:
            self._cut_at[r] = posted.seq
        if not before.failed and after.failed:
            self._failed_at[r] = posted

    def extend(self, entries: Iterable[Entry]) -> list[Posted]:
        """Add entries (in channel order); returns the new messages of this session."""
        new: list[Posted] = []
        for entry in entries:
            if entry.seq <= self.last_seq:
                continue
            self.last_seq = entry.seq
            sender = entry.envelope.sender
            try:
                message = decode(entry.envelope.payload)
            except MalformedMessage as exc:
                if not is_escrow_payload(entry.envelope.payload):  # the escrow's, not ours
                    self.dropped.append(Dropped(entry.seq, sender, f"malformed message: {exc}"))
                continue
            if message.session != self.session_id:
                continue  # another session sharing the channel
            speaks_for = getattr(message, "party", sender)
            if not isinstance(message, Rejected) and speaks_for != sender:
                self.dropped.append(Dropped(entry.seq, sender, "signer does not match party"))
                continue
            authentic = True
            if sender not in self.parties and not isinstance(message, KeyDealt):
                why, authentic = self._outsider(entry, message)
                if why is not None:
                    self.dropped.append(Dropped(entry.seq, sender, why))
                    continue
            posted = Posted(entry.seq, sender, message, entry.timestamp, authentic)
            self.posted.append(posted)
            self._observe(posted)
            if posted.seq not in self.violating:
                new.append(posted)
        return new

    def _outsider(self, entry: Entry, message: Message) -> tuple[str | None, bool]:
        """An entry whose signer the session file does not list (the channel checked no
        signature): ``(why it is dropped or None, whether its signature verified)``.

        A ``JoinRequest`` is kept either way (the machine refuses a forged one, with the same
        reason in every party); a newcomer's other entries only once it is admitted and
        signed with its admitted key.
        """
        sender, envelope = entry.envelope.sender, entry.envelope
        membership_on = self.rules is not None and self.rules.membership is not None
        if not membership_on or self.observed is None:
            return "signer does not match party", True
        if isinstance(message, JoinRequest):
            key = PublicIdentity.from_hex(message.public_key)  # validated: 64 hex
            return None, key.verify(envelope.payload, envelope.signature)
        newcomer = self.observed.roster.newcomer(sender)
        if newcomer is None:
            return "signer is no listed party and was not admitted", True
        if not PublicIdentity.from_hex(newcomer.key).verify(envelope.payload, envelope.signature):
            return "bad signature: not the key the newcomer was admitted with", True
        return None, True

    @property
    def roster(self) -> machine.Roster | None:
        """Who joined, was refused, or was marked absent, as the machines decide it (None
        without rules)."""
        return self.observed.roster if self.observed is not None else None

    def members(self, round_: int) -> tuple[str, ...] | None:
        """The active members of ``round_`` as the machines derive them from the channel so
        far (docs/membership.md); None without ``[membership]`` (the listed parties)."""
        if self.rules is None or self.rules.membership is None or self.observed is None:
            return None
        return machine.members_of(self.rules, self.observed, round_)

    @property
    def admitted(self) -> list[Posted]:
        """The decoded entries the rules do not find impossible, in channel order."""
        return [p for p in self.posted if p.seq not in self.violating]

    def _of(self, kind: type[Message], round_: int) -> list[Posted]:
        return [
            p
            for p in self.posted
            if isinstance(p.message, kind)
            and p.message.round == round_
            and p.seq not in self.violating
        ]

    def cut(self, round_: int, phase: str = SUBMIT_PHASE) -> int | None:
        """Sequence number of the entry that closed ``round_``'s submit phase, if any: the
        ``close_votes``-th distinct vote by the rules (without rules, the first
        ``PhaseClosed``)."""
        if self.rules is not None:
            return self._cut_at.get(round_) if phase == SUBMIT_PHASE else None
        for p in self._of(PhaseClosed, round_):
            if p.message.phase == phase:  # type: ignore[attr-defined]
                return p.seq
        return None

    def submissions(self, round_: int, before: int | None = None) -> dict[str, Posted]:
        """Each party's first ``Submitted`` for ``round_`` (optionally only before ``before``)."""
        first: dict[str, Posted] = {}
        for p in self._of(Submitted, round_):
            if before is not None and p.seq >= before:
                break
            first.setdefault(p.sender, p)
        return first

    def round_done(self, round_: int) -> dict[str, RoundDone]:
        """Each party's first ``RoundDone`` for ``round_``."""
        done: dict[str, RoundDone] = {}
        for p in self._of(RoundDone, round_):
            done.setdefault(p.sender, p.message)  # type: ignore[arg-type]
        return done

    def rejections(self, round_: int) -> list[tuple[str, Rejected]]:
        """``(sender, Rejected)`` pairs for ``round_`` in channel order."""
        return [(p.sender, p.message) for p in self._of(Rejected, round_)]  # type: ignore[misc]

    def failure(self, round_: int) -> RoundFailed | None:
        """The first ``RoundFailed`` for ``round_``, if any."""
        failed = self._of(RoundFailed, round_)
        return failed[0].message if failed else None  # type: ignore[return-value]

    def failures(self, round_: int) -> list[tuple[str, RoundFailed]]:
        """``(sender, RoundFailed)`` pairs for ``round_`` in channel order."""
        return [(p.sender, p.message) for p in self._of(RoundFailed, round_)]  # type: ignore[misc]

    def failure_posted(self, round_: int) -> Posted | None:
        """The ``RoundFailed`` vote that failed ``round_``'s decryption, with its place in the
        channel (only the decryption shares before it count, as in ``machine._decrypt``);
        without rules, the first ``RoundFailed``."""
        if self.rules is not None:
            return self._failed_at.get(round_)
        failed = self._of(RoundFailed, round_)
        return failed[0] if failed else None

    def joined(self, before: int | None = None) -> dict[str, int]:
        """Declared training-set sizes: each party's first ``Joined`` (before ``before``)."""
        sizes: dict[str, int] = {}
        for p in self.posted:
            if before is not None and p.seq >= before:
                break
            if isinstance(p.message, Joined):
                sizes.setdefault(p.sender, p.message.n_samples)
        return sizes

    def key_dealt(self, epoch: int, dealer: str | None) -> Posted | None:
        """The first ``KeyDealt`` for ``epoch`` posted by ``dealer`` (others are ignored).

        ``dealer=None`` takes the first one by any party (distributed keys: every party
        announces the same public key; an observer reads any of them).
        """
        for p in self.posted:
            if (
                isinstance(p.message, KeyDealt)
                and p.message.epoch == epoch
                and (p.sender == dealer or (dealer is None and p.sender in self.parties))
            ):
                return p
        return None

    def keygen_steps(self, epoch: int, step: int) -> dict[str, KeyGenStep]:
        """Each party's first ``KeyGenStep`` for distributed key generation ``epoch``/``step``."""
        found: dict[str, KeyGenStep] = {}
        for p in self.posted:
            m = p.message
            if isinstance(m, KeyGenStep) and m.epoch == epoch and m.step == step:
                found.setdefault(p.sender, m)
        return found

    def decryption_shares(self, round_: int) -> list[Posted]:
        """Each party's first ``DecryptionShare`` for ``round_``, in channel order."""
        seen: set[str] = set()
        first = []
        for p in self._of(DecryptionShare, round_):
            if p.sender not in seen:
                seen.add(p.sender)
                first.append(p)
        return first

    def counted_shares(self, round_: int) -> list[Posted]:
        """The decryption shares of ``round_`` that count, in channel order: each party's
        first, no violation, and before the failing ``RoundFailed`` votes (by the rules)."""
        first = self.decryption_shares(round_)
        if self.observed is None:
            return first
        view = self.observed.view(round_)
        counted = view.shares if view.failed_at is None else view.shares[: view.failed_at]
        return [p for p in first if p.sender in counted]

    def last_round_started(self) -> int:
        """Highest round any message of this session mentions (0 when none)."""
        return max((p.message.round for p in self.posted), default=0)


class ChannelContradiction(ValueError):
    """The channel contradicts itself about a round (a ledger edited behind the parties)."""


def checkpoint_standing(history: SessionHistory, round_: int, digest: str) -> str | None:
    """Whether the channel backs a party's checkpoint of G(``round_``) = ``digest``.

    A party resumes from its own checkpoint only where the channel shows that round (issue 17:
    a rerun on a deleted or cut-off ledger re-posted RoundDone from local files, writing
    orphan entries the audit then failed on). The channel backs a checkpoint when every round
    up to it has its cut (or its failure) on the channel, and no party announced another
    G(``round_``) without anyone announcing this one. A round whose RoundDone the party's
    crash cut off has its cut but no RoundDone yet: backed (the party announces it again).

    Returns:
        None when backed, else why not (the party then resumes from an earlier checkpoint, or
        from G(0), and follows the channel).

    Raises:
        ChannelContradiction: a ``RoundDone`` of ``round_`` names an accepted party with no
            submission before the cut: the channel was edited.
    """
    for r in range(1, round_ + 1):
        if history.cut(r) is None and history.failure(r) is None:
            return f"the channel holds no round {r}"
    done = history.round_done(round_)
    if done and all(m.model_sha256 != digest for m in done.values()):
        return f"the channel announces another G({round_})"
    submitted = set(history.submissions(round_, before=history.cut(round_)))
    for sender, message in sorted(done.items()):
        missing = sorted(set(message.accepted) - submitted)
        if missing:
            raise ChannelContradiction(
                f"round {round_}: {sender}'s RoundDone accepts {', '.join(missing)}, but the "
                "channel holds no such submission before the cut (was the ledger edited?)"
            )
    return None
