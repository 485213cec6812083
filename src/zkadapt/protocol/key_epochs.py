"""Key epochs of a threshold-Paillier session: which key a round uses, and how it comes to be.

A session's rounds are cut into key epochs (one, or one per ``refresh_every`` rounds). Each
epoch's key comes from one of the sources of DESIGN.md section 4 / CRYPTO.md section 1:

``dealer``       a party (``privacy.dealer``) or an external key-generation centre
                 (:mod:`zkadapt.kgc`) deals a t-of-n key and posts ``KeyDealt``;
``additive``     the same, with n-of-n additive shares;
``distributed``  no dealer: once every party has joined, the parties generate the key
                 together (:mod:`zkadapt.protocol.distributed_keys`) and each posts its own
                 ``KeyDealt`` holding its share sealed to itself.

:func:`decide_key` (:mod:`zkadapt.protocol.key_rules`, re-exported here) is the decision,
pure over what the channel shows and whether the party's key deadline has passed; the round
machine asks it and names the action (``Join``, ``DealKey``, ``KeygenStep``, ``OpenKey``, a
``Wait`` for the key, a ``Halt`` with the reason), so the model checker explores it.
:class:`KeyEpochs` carries those actions out against the store and channel, one at a time and
without waiting, and holds the opened keys, the declared training-set sizes and the FedAvg
weights they fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zkadapt.aggregation.weights import bounded_shares
from zkadapt.crypto.distributed_keygen import DkgParams
from zkadapt.crypto.identity import Keyring, PublicIdentity
from zkadapt.crypto.packing import fedavg_weights
from zkadapt.crypto.sealing import open_sealed
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, deal_threshold_key
from zkadapt.errors import CryptoError, ProtocolError
from zkadapt.protocol.distributed_keys import DkgRunner
from zkadapt.protocol.key_delivery import as_ref, publish_key, share_context
from zkadapt.protocol.key_rules import (
    KeyDeal,
    KeyFail,
    KeyOpen,
    KeyPlan,
    KeyStep,
    KeyWait,
    decide_key,
)
from zkadapt.protocol.membership import Roster, members, membership_changes
from zkadapt.protocol.messages import Joined, KeyDealt
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.publishing import fetch_bytes
from zkadapt.protocol.schemes import RoundIO
from zkadapt.protocol.update import UpdateRejected

__all__ = [
    "EpochKey",
    "KeyDeal",
    "KeyEpochs",
    "KeyFail",
    "KeyOpen",
    "KeyPlan",
    "KeyStep",
    "KeyWait",
    "decide_key",
]

#: An opened key epoch: the public key and this party's share (None for an observer).
EpochKey = tuple[ThresholdPublicKey, "KeyShare | None"]


# -- carrying it out ----------------------------------------------------------------------


@dataclass
class KeyEpochs:
    """One party's key epochs: the machine's key actions carried out, the opened keys, the
    weights.

    Every decision (join, deal, run the next key-generation step, open, wait, give up) is
    the round machine's (:mod:`zkadapt.protocol.machine`, DESIGN.md section 3); these methods
    only do the work one action names, and never wait.
    """

    plan: KeyPlan
    keyring: Keyring
    #: How long a party waits for a key step (its key deadline, on the driver's clock).
    timeout_s: float
    #: This party's declared training-set size (posted in ``Joined``).
    n_samples: int = 0
    keys: dict[int, EpochKey] = field(default_factory=dict)
    #: Declared training-set sizes before the first key (the public n_i of CRYPTO.md §3).
    declared: dict[str, int] = field(default_factory=dict)
    #: FedAvg weights ω_i = n·n_i / Σ n_j of the declared parties (n times the bounded shares
    #: when ``max_share`` binds or ``weighting`` is "equal").
    weights: dict[str, float] = field(default_factory=dict)
    #: ``aggregation.weighting`` and the cap on one party's share (aggregation/weights.py).
    weighting: str = "declared"
    max_share: float | None = None
    #: The distributed key generation in progress in this process (its secrets live here).
    _dkg: DkgRunner | None = None
    #: Weights of the key epochs after a membership change (docs/membership.md).
    _epoch_weights: dict[int, dict[str, float]] = field(default_factory=dict)

    # -- membership: the machine decides it; these read the same roster off the history ----

    def _roster(self, io: RoundIO | None) -> Roster | None:
        """The roster the parties' machines derive, or None without ``[membership]``."""
        history = getattr(io, "history", None) if io is not None else None
        rules = getattr(history, "rules", None)
        if history is None or rules is None or rules.membership is None:
            return None
        return history.roster  # type: ignore[no-any-return]

    def epoch_of(self, round_: int, io: RoundIO | None = None) -> int:
        """Key epoch of ``round_``: refreshes, and with ``[membership]`` every admission
        (:meth:`KeyPlan.epoch_of`; the machine's ``key_plan_of``)."""
        roster = self._roster(io)
        joins = membership_changes(roster) if roster is not None else ()
        return self.plan.epoch_of(round_, joins)

    def plan_of(self, epoch: int, io: RoundIO | None = None) -> KeyPlan:
        """The key plan of ``epoch``: its holders are the active members of its first round."""
        roster = self._roster(io)
        if roster is None:
            return self.plan
        joins = membership_changes(roster)
        first = self.plan.first_round(epoch, joins)
        return self.plan.with_names(members(self.plan.names, roster, first))

    def keyring_of(self, io: RoundIO | None = None) -> Keyring:
        """The listed parties' identities and the admitted newcomers' (from their requests):
        whom shares are sealed to."""
        roster = self._roster(io)
        if roster is None or not roster.admitted:
            return self.keyring
        keys = dict(self.keyring)
        keys.update({n.name: PublicIdentity.from_hex(n.key) for n in roster.admitted})
        return Keyring(keys)

    def of_round(self, round_: int, io: RoundIO | None = None) -> EpochKey:
        """The opened key of ``round_``'s epoch."""
        return self.keys[self.epoch_of(round_, io)]

    def index_of(self, party: str, round_: int, io: RoundIO | None = None) -> int:
        """Shamir index of ``party`` in ``round_``'s key epoch."""
        return self.plan_of(self.epoch_of(round_, io), io).index_of(party)

    def declared_of(self, io: RoundIO | None = None) -> dict[str, int]:
        """Declared training-set sizes: before the first key, and each newcomer's request."""
        roster = self._roster(io)
        if roster is None or not roster.admitted:
            return self.declared
        return {**self.declared, **{n.name: n.n_samples for n in roster.admitted}}

    def weights_of(self, round_: int, io: RoundIO | None = None) -> dict[str, float]:
        """FedAvg weights of ``round_``'s key epoch: the declared sizes of its key holders
        (without membership changes, the weights fixed by the first key)."""
        epoch = self.epoch_of(round_, io)
        roster = self._roster(io)
        if roster is None or not roster.admitted or epoch == 0:
            return self.weights
        if epoch not in self._epoch_weights:
            declared = self.declared_of(io)
            holders = [n for n in self.plan_of(epoch, io).names if n in declared]
            self._epoch_weights[epoch] = self._weights_for({n: declared[n] for n in holders})
        return self._epoch_weights[epoch]

    def join(self, io: RoundIO) -> None:
        """``Join``: post ``Joined`` with our declared size (it fixes our FedAvg weight)."""
        io.post(Joined(io.ctx.session_id, 0, io.ctx.party, self.n_samples))

    def open(self, epoch: int, round_: int, io: RoundIO) -> EpochKey:
        """``OpenKey``: fetch the posted key of ``epoch``, check it, open our share.

        Raises:
            ProtocolError: the ``KeyDealt`` the machine saw is not in the history, or the
                posted key is unusable.
        """
        posted = io.history.key_dealt(epoch, self._source(self.plan_of(epoch, io), io))
        if posted is None:
            raise ProtocolError(f"no KeyDealt for key epoch {epoch}", round=round_)
        self.keys[epoch] = self._open(epoch, round_, posted.message, io)  # type: ignore[arg-type]
        if epoch == 0:
            self._fix_weights(posted.seq, io)
        return self.keys[epoch]

    def open_posted(self, round_: int, io: RoundIO) -> EpochKey:
        """An observer's (the audit's) key of ``round_``: the posted one, or the reason why
        none will come (:func:`decide_key` with the deadline passed: an observer waits for
        nothing, it reads a recorded channel).

        Raises:
            ProtocolError: no key is posted for the epoch, or it is unusable.
        """
        epoch = self.epoch_of(round_, io)
        if epoch in self.keys:
            return self.keys[epoch]
        plan = self.plan_of(epoch, io)
        dealt = io.history.key_dealt(epoch, self._source(plan, io)) is not None
        joined = {*io.history.joined(), *self.declared_of(io)}
        step = decide_key(plan, epoch, None, joined=joined, dealt=dealt, deadline_passed=True)
        if isinstance(step, KeyFail):
            raise ProtocolError(step.reason, round=round_)
        return self.open(epoch, round_, io)

    def _source(self, plan: KeyPlan, io: RoundIO) -> str | None:
        """Whose ``KeyDealt`` of an epoch we open: ours with distributed keys when we hold a
        share of it, the dealer's, or (an observer, a newcomer before its epoch) anyone's."""
        me = io.ctx.party if io.identity is not None else None
        return plan.source(me if me in plan.names else None)

    def deal(self, epoch: int, round_: int, io: RoundIO) -> None:
        """``DealKey``: deal a t-of-n (or n-of-n additive) key, store it, post ``KeyDealt``.

        The dealer stores every party's share sealed to that party and keeps nothing
        (CRYPTO.md section 1): the shares die with this frame.
        """
        plan = self.plan_of(epoch, io)
        io.emit(round_, Phase.KEYS, f"{plan.keygen} key epoch {epoch} ({plan.key_bits} bits)")
        public, dealt = deal_threshold_key(
            plan.key_bits, plan.threshold, len(plan.names), plan.keygen
        )
        shares = dict(zip(plan.names, dealt, strict=True))
        self._publish(epoch, round_, io, public, shares, "public")

    def keygen_step(self, epoch: int, step: int, round_: int, io: RoundIO) -> int | None:
        """``KeygenStep``: the next message round of a distributed key generation.

        Step 0 starts it; step s > 0 reads every party's step s - 1 messages (the machine saw
        them all on the channel) and advances. When the key is done, stores our share sealed
        to ourselves and our copy of the public key and posts ``KeyDealt``.

        Returns:
            The message round posted, or None once ``KeyDealt`` is posted.

        Raises:
            ProtocolError: a message is unusable, or the generation was not started in this
                process (its secrets died with a crash).
        """
        plan, me = self.plan_of(epoch, io), io.ctx.party
        if step == 0:
            io.emit(round_, Phase.KEYS, f"distributed key epoch {epoch} ({plan.key_bits} bits)")
            params = DkgParams(
                plan.key_bits,
                len(plan.names),
                plan.threshold,
                context=f"{io.ctx.session_id}/key-epoch-{epoch}".encode(),
            )
            self._dkg = DkgRunner(
                io,
                keyring=self.keyring_of(io),
                names=plan.names,
                epoch=epoch,
                round_=round_,
                params=params,
            )
            return self._dkg.start()
        runner = self._dkg
        if runner is None or runner.epoch != epoch:
            raise ProtocolError(
                f"distributed key generation of epoch {epoch} is not running here", round=round_
            )
        sent = runner.advance(step - 1)
        if sent is not None:
            return sent
        public, own = runner.result()
        self._dkg = None
        self._publish(epoch, round_, io, public, {me: own}, f"public-{me}")
        return None

    def _publish(
        self,
        epoch: int,
        round_: int,
        io: RoundIO,
        public: ThresholdPublicKey,
        shares: dict[str, KeyShare],
        public_name: str,
    ) -> None:
        publish_key(
            io.store,
            io.post,
            self.keyring_of(io),
            session=io.ctx.session_id,
            epoch=epoch,
            round_=round_,
            sender=io.ctx.party,
            public=public,
            shares=shares,
            public_name=public_name,
        )

    def _fix_weights(self, seq: int, io: RoundIO) -> None:
        """The sizes declared before the first ``KeyDealt`` fix the weights (CRYPTO.md §3)."""
        first = io.history.key_dealt(0, None) if self.plan.distributed else None
        self.declared = io.history.joined(before=(first.seq if first else seq))
        self.weights = self._weights_for(self.declared)

    def _weights_for(self, declared: dict[str, int]) -> dict[str, float]:
        """ω_i = n·n_i / Σ n_j over ``declared`` (bounded: aggregation/weights.py)."""
        names = sorted(declared)
        sizes = [declared[n] for n in names]
        shares = bounded_shares(sizes, weighting=self.weighting, max_share=self.max_share)
        weights = fedavg_weights(sizes) if shares is None else [len(sizes) * w for w in shares]
        return dict(zip(names, weights, strict=True))

    def _open(self, epoch: int, round_: int, dealt: KeyDealt, io: RoundIO) -> EpochKey:
        """Fetch the public key, check it is the configured one, open our sealed share."""
        try:
            public = ThresholdPublicKey.from_bytes(fetch_bytes(io.store, as_ref(dealt.public)))
            plan = self.plan_of(epoch, io)
            if public.key_id != dealt.key_id or public.n != len(plan.names):
                raise CryptoError("public key does not match the KeyDealt message")
            if public.mode != plan.keygen or public.t != plan.threshold:
                raise CryptoError(
                    f"key is {public.mode} {public.t}-of-{public.n}, not as configured"
                )
            share = self._open_share(dealt, public, plan, io)
        except UpdateRejected as exc:
            raise ProtocolError(
                f"key epoch {epoch} is unusable: {exc.reason}", round=round_
            ) from None
        except (CryptoError, ValueError) as exc:
            raise ProtocolError(f"key epoch {epoch} is unusable: {exc}", round=round_) from None
        return public, share

    def _open_share(
        self, dealt: KeyDealt, public: ThresholdPublicKey, plan: KeyPlan, io: RoundIO
    ) -> KeyShare | None:
        me = io.ctx.party
        if me not in dealt.shares:
            return None
        sealed = fetch_bytes(io.store, as_ref(dealt.shares[me]))
        context = share_context(io.ctx.session_id, dealt.epoch, me)
        share = KeyShare.from_bytes(open_sealed(io.identity, sealed, context=context), public)
        if share.index != plan.index_of(me):
            raise CryptoError(f"the share sealed to {me} has index {share.index}")
        return share
