"""A party's escrow steps during ``zkadapt run`` / ``zkadapt party`` when the escrow is on
layer 1 (``escrow.deadline`` and ``[cardano]`` set; docs/escrow.md, "During a run").

The round machine decides nothing here and this module decides nothing in it: it is the
escrow's bookkeeping around the rounds, every decision taken with the pure rules of
:mod:`zkadapt.escrow.rules` over the channel that every party reads the same way.

* :meth:`PartyEscrow.start` (before round 1): lock the party's deposit (once: a restart
  finds its posted ``EscrowDeposit``, or its lock at the session's address), post
  ``EscrowDeposit{amount, ref}``, then check every other party's lock from its ref (a lock
  not in the UTxO yet is asked for again until the wait ends). A
  missing deposit or a lock that is not the agreed one stops the session before round 1
  (:class:`EscrowRefused`): the lock datum names every party, so without every lock no
  settlement on layer 1 is possible, only the refunds after the deadline.
* :meth:`PartyEscrow.after_round` (between rounds, and after the last): one signed
  ``KillVote`` against each depositor the rules find silent.
* :meth:`PartyEscrow.finish` (after the last round): ``ReleaseVote`` for every other
  remaining depositor it did not vote against, then the settlement: the first remaining
  party in name order settles at once; the k-th waits ``k`` grace periods, watching layer
  1, and settles itself only if the locks are still unspent, so no single absent party
  blocks it. A lock whose votes stay short is left for the refund after the deadline.
* :meth:`PartyEscrow.closed_early` (the head was closed mid-session): find the close on
  layer 1 by chain-sync from the tip read in :meth:`PartyEscrow.start`, name the closer from
  its signatory, vote it out and release the others in a ballot in the store, read the
  others' ballots and settle as above (docs/escrow.md, "A premature close").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zkadapt.cardano.errors import LayerOneError
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.errors import ChannelError, ConfigError, StorageError
from zkadapt.escrow.messages import EscrowDeposit, EscrowMessage
from zkadapt.escrow.onchain import EscrowError
from zkadapt.escrow.rules import (
    EscrowView,
    Settlement,
    depositors,
    last_signal,
    progress,
    settle,
    silent,
    slash_voters,
)
from zkadapt.formatting import ada
from zkadapt.operator.escrow import membership_reader
from zkadapt.operator.escrow_layer1 import (
    PaymentKey,
    check_deposit,
    kill_vote,
    layer1_terms,
    lock_deposit,
    missing_evidence,
    refundable_locks,
    release_targets,
    release_votes,
    settle_locks,
    settlement_plan,
)

if TYPE_CHECKING:
    from zkadapt.config import SessionConfig


class EscrowRefused(EscrowError):
    """The session does not start: a party's deposit is missing or its lock is not the
    agreed one. Every party derives this from public data (the channel and layer 1), so
    every party stops the same way before round 1; a restart cannot fix it (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class EscrowTimes:
    """How long each escrow step waits (derived from the session file, never fixed).

    Attributes:
        deposits_s: for the others' deposits before round 1: a lock's confirmation
            (``cardano.confirm_timeout_s``) plus the phase deadline a late party has anyway
            (``protocol.submit_timeout_s``).
        votes_s: for the release votes after the last round (``protocol.submit_timeout_s``).
        grace_s: how long each later settler gives each earlier one
            (``cardano.confirm_timeout_s``: time for its transaction to show).
        poll_s: how often layer 1 is asked while waiting for another settler.
    """

    deposits_s: float
    votes_s: float
    grace_s: float
    poll_s: float

    @classmethod
    def of(cls, config: SessionConfig) -> EscrowTimes:
        confirm = config.cardano.confirm_timeout_s if config.cardano else 600.0
        phase = config.protocol.submit_timeout_s
        return cls(confirm + phase, phase, confirm, min(5.0, max(0.5, confirm / 10)))


@dataclass
class EscrowOutcome:
    """What the escrow did for this party (``result.json``'s ``escrow``)."""

    lock: str = ""
    status: str = "pending"
    slashed: tuple[str, ...] = ()
    payouts: dict[str, int] = field(default_factory=dict)
    settled_in: list[str] = field(default_factory=list)
    settled_by: str = ""
    unsettled: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "lock": self.lock,
            "status": self.status,
            "slashed": list(self.slashed),
            "payouts": dict(self.payouts),
            "settled_in": list(self.settled_in),
            "settled_by": self.settled_by,
            "unsettled": dict(self.unsettled),
        }


def payout_line(settlement: Settlement) -> str:
    """``alice 15 ADA, bob 15 ADA, carol 0 ADA (slashed)``."""
    lost = settlement.slashed
    return ", ".join(
        f"{p} {ada(settlement.payouts.get(p, 0))}" + (" (slashed)" if p in lost else "")
        for p in settlement.depositors
    )


class PartyEscrow:
    """One party's escrow steps on the session's channel and layer 1.

    Args:
        config: the session (its escrow on layer 1).
        party: this party.
        channel: the session's channel, as this party (its identity key signs).
        identity: this party's identity key (signs the channel entries).
        context: the layer-1 chain context (``zkadapt.cardano.chain.chain_context``).
        key: this party's payment key (signs the votes, pays the fees).
        say: gets one line per step, for the party's console.
        times: the waits (default :meth:`EscrowTimes.of` the session).
    """

    def __init__(
        self,
        config: SessionConfig,
        party: str,
        *,
        channel: Any,
        identity: Any,
        context: Any,
        key: PaymentKey,
        say: Callable[[str], None],
        times: EscrowTimes | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        store: Any = None,
        newcomer_hash: bytes | None = None,
    ) -> None:
        self.config, self.party = config, party
        self.terms = layer1_terms(config)
        #: This party's payment key hash when it is a newcomer (``zkadapt join``): its lock
        #: lists the session file's parties and itself (docs/membership.md, "Escrow").
        self.newcomer_hash = newcomer_hash
        self.channel, self.identity, self.context, self.key = channel, identity, context, key
        self.say = say
        self.times = times or EscrowTimes.of(config)
        self._clock, self._sleep = clock, sleep
        self._entries: list[Entry] = []
        #: The channel read by the parties' rules, extended as it grows (``[membership]``).
        self._roster = membership_reader(config) if config.membership is not None else None
        self._voted: set[str] = set()  # kill votes this process posted (before they show)
        self.outcome = EscrowOutcome()
        #: The session's store (ballots after a premature close), the chain point read
        #: before round 1 and the head's id (where a reader of its close starts, and what).
        self.store = store
        self.since: dict[str, Any] | str | None = None
        self.head_id: str | None = None
        self._ballots: list[Entry] = []  # out-of-band votes folded after the channel's

    # -- the channel -------------------------------------------------------------------------

    def _view(self, wait: float = 0.0) -> EscrowView:
        """Read what is new on the channel (waiting up to ``wait`` s for it); the view."""
        since = self._entries[-1].seq if self._entries else 0
        new = [
            e
            for e in (self.channel.wait(since, wait) if wait > 0 else self.channel.history(since))
            if e.seq > since
        ]
        self._entries.extend(new)
        if self._roster is not None:  # newcomers and absences: the roster so far
            self._roster.extend(new)
            self.terms = layer1_terms(self.config, history=self._roster)
        return EscrowView.from_entries(self._entries, self.terms)

    def _post(self, message: EscrowMessage) -> None:
        payload = message.to_bytes()
        self.channel.post(SignedEnvelope(self.party, payload, self.identity.sign(payload)))

    # -- before round 1 ------------------------------------------------------------------------

    def start(self) -> None:
        """Deposit, then check every other party's lock (before round 1).

        Raises:
            EscrowRefused: a deposit did not come within ``times.deposits_s``, or a lock is
                not the agreed one.
            EscrowError, LayerOneError: this party's own lock cannot be made.
        """
        self._mark_chain()
        view = self._view()
        if self.newcomer_hash is not None:  # locked before its request (lock_as_newcomer)
            self._check_others()
            return
        if progress(view, self.terms) > 0:  # resumed past round 1: the locks were checked
            self.outcome.lock = view.refs.get(self.party, "")
            return
        self.outcome.lock = self._deposit(view)
        self._check_others()

    def lock_as_newcomer(self) -> str:
        """A newcomer locks its deposit before it asks to join (the lock's out-ref goes in
        its ``JoinRequest``, and the members check it before they vote to admit it); a
        rerun finds the lock it made before. Returns the out-ref.

        Raises:
            EscrowError, LayerOneError: the lock cannot be made.
        """
        from zkadapt.escrow.txs import ref_text

        assert self.newcomer_hash is not None  # only a newcomer locks this way
        mine = {self.party: self.newcomer_hash}
        found = refundable_locks(self.config, self.context, mine).get(self.party)
        if found is not None:
            ref = ref_text(found.input)
            self.say(f"found its lock at {ref} (made before a restart)")
        else:
            ref = lock_deposit(self.config, self.context, self.key, newcomers=mine)
            self.say(f"locked {ada(self.terms.deposit)} at {ref}")
        self.outcome.lock = ref
        return ref

    def _mark_chain(self) -> None:
        """Remember the chain's tip and the head's id: a close comes after both."""
        from zkadapt.cardano.chain_sync_wire import point
        from zkadapt.cardano.ogmios_wire import WireError

        rpc = getattr(self.context, "rpc", None)
        try:  # a ``PointOrOrigin``, exactly (findIntersection takes nothing else)
            self.since = point(rpc("queryNetwork/tip")) if rpc is not None else None
        except (LayerOneError, WireError):
            self.since = None
        try:
            head = getattr(self.channel, "head_id", None)
        except ChannelError:
            head = None
        self.head_id = head if isinstance(head, str) else None

    def _deposit(self, view: EscrowView) -> str:
        """Lock once and post ``EscrowDeposit``; a restart finds what it did before."""
        if self.party in view.deposits:
            ref = view.refs.get(self.party, "")
            self.say(f"deposit already posted (lock {ref})")
            return ref
        found = refundable_locks(self.config, self.context).get(self.party)
        if found is not None:
            from zkadapt.escrow.txs import ref_text

            ref = ref_text(found.input)
            self.say(f"found its lock at {ref} (made before a restart)")
        else:
            ref = lock_deposit(self.config, self.context, self.key)
            self.say(f"locked {ada(self.terms.deposit)} at {ref}")
        self._post(EscrowDeposit(self.terms.session, 0, self.party, self.terms.deposit, ref))
        self.say(f"posted EscrowDeposit {ref}")
        return ref

    def _check_others(self) -> None:
        from zkadapt.escrow.txs import LockInvalid

        pending = [p for p in self.terms.parties if p != self.party]
        deadline = self._clock() + self.times.deposits_s
        view = self._view()
        while True:
            left = deadline - self._clock()
            for owner in list(pending):
                if owner not in view.deposits:
                    continue
                amount, ref = view.deposits[owner], view.refs.get(owner, "")
                if amount != self.terms.deposit:
                    raise EscrowRefused(
                        f"{owner} deposited {amount} lovelace, not the agreed "
                        f"{self.terms.deposit}: the session does not start"
                    )
                try:
                    check_deposit(self.config, self.context, owner, ref)
                except LockInvalid as exc:
                    if "not in the UTxO" in str(exc) and left > 0:
                        continue  # this party's node may lag behind the owner's: ask again
                    raise EscrowRefused(f"{exc}: the session does not start") from None
                self.say(f"checked {owner}'s lock at {ref}")
                pending.remove(owner)
            if not pending:
                return
            if left <= 0:
                raise EscrowRefused(
                    f"no EscrowDeposit from {', '.join(pending)} within "
                    f"{self.times.deposits_s:g} s: the session does not start (the locks made "
                    "are refunded after the deadline: zkadapt escrow refund)"
                )
            view = self._view(wait=min(self.times.poll_s, left))

    # -- between rounds ------------------------------------------------------------------------

    def after_round(self, round_: int) -> None:
        """One signed kill vote against each depositor the rules find silent (once each)."""
        view = self._view()
        lost = set(slash_voters(view, self.terms))
        mine = {t for v, t in view.vote_order if v == self.party} | self._voted
        for target in silent(view, self.terms):
            if target == self.party or target in mine or target in lost:
                continue
            if self.party not in self.terms.community(target):
                continue  # its lock does not list this party: the vote would not count
            missed = min(last_signal(view, self.terms, target) + 1, self.terms.rounds)
            keys = self.terms.payment_keys
            self._post(kill_vote(self.config, self.key, target, missed, "silent", keys))
            self._voted.add(target)
            self.say(f"voted to slash {target} (silent since round {missed})")

    # -- after the last round ------------------------------------------------------------------

    def finish(self) -> EscrowOutcome:
        """Release the others, then settle on layer 1 (or see another party settle).

        Raises:
            LayerOneError, EscrowError: layer 1 or the settlement fails (one line).
        """
        view = self._view()
        settlement = settle(view, self.terms)
        self._record(settlement)
        if not settlement.final:
            self.say(
                "the session did not complete: nothing to settle; the locks are refunded "
                "after the deadline (zkadapt escrow refund)"
            )
            return self.outcome
        if self.party in settlement.slashed:
            voters = ", ".join(slash_voters(view, self.terms)[self.party])
            self.say(f"slashed by the votes of {voters}: the deposit goes to the others")
            return self.outcome
        self._release(view, settlement)
        self._settle(self._await_votes())
        return self.outcome

    # -- a premature close -----------------------------------------------------------------

    def closed_early(self) -> str:
        """The head was closed before the last round was done: attribute the closer from
        layer 1, vote it out in a ballot, settle (docs/escrow.md, "A premature close");
        returns the escrow's account in one line (the party's stop line carries it).

        Without an attribution (no chain-sync, the close signed by no party's payment key,
        no store that reads ballots) nobody is voted against and every lock stays for
        ``zkadapt escrow refund`` after the deadline.
        """
        try:
            view = self._view()  # the channel's history up to the close stays readable
        except (ChannelError, LayerOneError):
            view = EscrowView.from_entries(self._entries, self.terms)
        self.outcome.status = "closed-early"
        self.outcome.settled_by = ""
        done = progress(view, self.terms)
        head = f"the head was closed after round {done} (done by a quorum)"
        refund = "every lock comes back with `zkadapt escrow refund` after the deadline"
        try:
            line = self._slash_closer(view, min(done + 1, self.terms.rounds), head)
        except LayerOneError as exc:
            line = f"{head}: the closer is not attributed ({exc}), so nobody is slashed; {refund}"
        except (EscrowError, StorageError, ConfigError) as exc:
            line = f"{head}: the closer is not voted out ({exc}), so nobody is slashed; {refund}"
        self.say(line)
        return line

    def _slash_closer(self, view: EscrowView, cut: int, head: str) -> str:
        from zkadapt.cardano.head_close import find_close
        from zkadapt.operator.escrow import payment_key_hashes

        if self.since is None or self.head_id is None:
            raise LayerOneError("layer 1", "no chain point or head id was read before round 1")
        close = find_close(self.context, self.since, self.head_id, payment_key_hashes(self.config))
        closer, tx = close.closer, close.tx_id[:16]
        refund = "every lock comes back with `zkadapt escrow refund` after the deadline"
        if closer is None:
            return (
                f"{head}: the closer is not attributed (close {tx} is signed by no party's "
                f"payment key, or by several), so nobody is slashed; {refund}"
            )
        if closer == self.party:
            return f"{head} by this party (close {tx}): it casts no vote"
        members = depositors(view, self.terms)
        if closer not in members or self.party not in members:
            return (
                f"{head} by {closer} (close {tx}): not both depositors, nothing to vote; {refund}"
            )
        self._publish_ballot(closer, cut, [p for p in members if p not in (closer, self.party)])
        settlement = self._await_ballots(closer, cut, members)
        self._record(settlement)
        if not settlement.final or closer not in settlement.slashed:
            return (
                f"{head} by {closer} (close {tx}): voted to slash it, but the votes stayed "
                f"short; {refund}"
            )
        self._settle(settlement)
        how = (
            f"settled: {payout_line(settlement)}"
            if self.outcome.settled_by
            else "not settled yet; the locks wait for another settler or the refund"
        )
        return f"{head} by {closer} (close {tx}, signed by its payment key): slashed; {how}"

    def _publish_ballot(self, closer: str, cut: int, others: list[str]) -> None:
        """This party's ballot: kill ``closer`` (closed-early, round ``cut``), release
        ``others``; written once under its fixed key in the store."""
        from zkadapt.escrow.ballot import ballot_key, encode_ballot

        if self.store is None:
            raise StorageError("store", "no store to publish the ballot in")
        keys = self.terms.payment_keys
        others = [p for p in others if self.party in self.terms.community(p)]
        votes = []
        if self.party in self.terms.community(closer):  # else its vote would not count
            votes.append(kill_vote(self.config, self.key, closer, cut, "closed-early", keys))
        votes += release_votes(self.config, self.key, others, keys)
        data = encode_ballot(self.identity, self.terms.session, self.party, votes)
        self.store.put(ballot_key(self.terms.session, self.party), data)
        released = f", released {', '.join(others)}" if others else ""
        self.say(f"voted to slash {closer} (closed the head in round {cut}){released} (ballot)")

    def _await_ballots(self, closer: str, cut: int, members: tuple[str, ...]) -> Settlement:
        """Read the honest parties' ballots (at most ``times.deposits_s``) until every lock
        has its votes; the settlement they imply with the channel's history."""
        from zkadapt.escrow.ballot import as_entries
        from zkadapt.keyfiles import keyring_of
        from zkadapt.operator.early_close import closer_votes, read_ballots

        keyring = keyring_of(self.config)
        honest = [p for p in members if p != closer]
        after = self._entries[-1].seq if self._entries else 0
        deadline = self._clock() + self.times.deposits_s
        while True:
            found = read_ballots(self.store, keyring, self.terms.session, honest, self.say)
            kept = {
                voter: closer_votes(envelopes, closer, cut, [p for p in honest if p != voter])
                for voter, envelopes in found.items()
            }
            self._ballots = as_entries(after, kept)
            view = EscrowView.from_entries(self._entries + self._ballots, self.terms)
            settlement = settle(view, self.terms)
            missing = missing_evidence(settlement, view) if settlement.final else {"": ""}
            if not missing or self._clock() >= deadline:
                return settlement
            self._sleep(self.times.poll_s)

    def _record(self, settlement: Settlement) -> None:
        self.outcome.status = settlement.status
        self.outcome.slashed = settlement.slashed
        self.outcome.payouts = dict(settlement.payouts)

    def _release(self, view: EscrowView, settlement: Settlement) -> None:
        """Release votes for every other remaining depositor not voted against, once."""
        against = {t for v, t in view.vote_order if v == self.party} | self._voted
        done = {t for v, t in view.release_evidence if v == self.party}
        targets = [p for p in release_targets(settlement, self.party) if p not in against | done]
        for vote in release_votes(self.config, self.key, targets, self.terms.payment_keys):
            self._post(vote)
        if targets:
            self.say(f"released {', '.join(targets)}")

    def _await_votes(self) -> Settlement:
        """Wait (at most ``times.votes_s``) until every lock has the votes it needs."""
        deadline = self._clock() + self.times.votes_s
        view = self._view()
        while True:
            settlement = settle(view, self.terms)
            missing = missing_evidence(settlement, view)
            left = deadline - self._clock()
            if not missing or left <= 0:
                self._record(settlement)
                return settlement
            view = self._view(wait=min(self.times.poll_s, left))

    def _plan(self) -> Any:
        entries = self._entries + self._ballots
        return settlement_plan(self.config, self.context, entries, partial=True, terms=self.terms)

    def _settle(self, settlement: Settlement) -> None:
        """Settle what has its votes: at once if first in line, else after the grace
        periods of the earlier settlers, unless layer 1 shows their settlement first."""
        remaining = [p for p in settlement.depositors if p not in settlement.slashed]
        if self.party not in remaining:
            self.say("not a depositor of this settlement: nothing to settle")
            return
        turn = self._clock() + remaining.index(self.party) * self.times.grace_s
        while True:
            plan = self._plan()
            self.outcome.unsettled = dict(plan.missing)
            if not plan.spends:
                if plan.done:
                    self.outcome.settled_by = self.outcome.settled_by or "another party"
                    self.say(f"settled on layer 1: {payout_line(settlement)}")
                break
            if self._clock() >= turn:
                try:
                    tx_ids = settle_locks(
                        self.config, self.context, plan.spends, self.key, plan.newcomers
                    )
                except (LayerOneError, EscrowError):
                    if self._plan().spends:
                        raise
                    continue  # another settler was first: its result is read above
                self.outcome.settled_in += tx_ids
                self.outcome.settled_by = self.party
                txs = ", ".join(t[:16] for t in tx_ids)
                self.say(f"settled: {payout_line(settlement)} (in {txs})")
                break
            self._sleep(self.times.poll_s)
        for owner, why in sorted(self.outcome.unsettled.items()):
            self.say(f"{owner}'s lock is left for the refund after the deadline: {why}")


# -- the runner's account ----------------------------------------------------------------------


def session_escrow(results: dict[str, Any]) -> dict[str, Any] | None:
    """The session's escrow as its parties' ``result.json`` tell it (``zkadapt run``'s report).

    ``results`` maps each party to its ``result.json`` document (absent or unreadable ones
    left out). The account is the settler's when one settled, else the first party's that
    has one; ``locks`` adds each party's lock ref. None when no party wrote an escrow.
    """
    found = {
        name: doc["escrow"]
        for name, doc in sorted(results.items())
        if isinstance(doc, dict) and isinstance(doc.get("escrow"), dict)
    }
    if not found:
        return None
    settler = next((n for n, e in found.items() if e.get("settled_by") == n), None)
    account = dict(found[settler or next(iter(found))])
    account.pop("lock", None)
    account["locks"] = {n: str(e.get("lock", "")) for n, e in found.items()}
    return account


def escrow_line(account: dict[str, Any]) -> str:
    """One console line for :func:`session_escrow`'s account."""
    payouts = account.get("payouts") or {}
    slashed = set(account.get("slashed") or ())
    paid = ", ".join(
        f"{p} {ada(int(v))}" + (" (slashed)" if p in slashed else "")
        for p, v in sorted(payouts.items())
    )
    by, txs = account.get("settled_by") or "", account.get("settled_in") or []
    if by and txs:
        where = f"settled on layer 1 by {by} in {', '.join(str(t)[:16] for t in txs)}"
    elif by:
        where = "settled on layer 1"
    else:
        where = f"not settled ({account.get('status', 'pending')}): refund after the deadline"
    left = account.get("unsettled") or {}
    tail = f"; left for the refund: {', '.join(sorted(left))}" if left else ""
    return f"escrow: {where}: {paid or 'nothing paid'}{tail}"
