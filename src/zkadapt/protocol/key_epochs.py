"""Key epochs of a threshold-Paillier session: which key a round uses, and how it comes to be.

A session's rounds are cut into key epochs (one, or one per ``refresh_every`` rounds). Each
epoch's key comes from one of the sources of DESIGN.md section 4 / CRYPTO.md section 1:

``dealer``       a party (``privacy.dealer``) or an external key-generation centre
                 (:mod:`zkadapt.kgc`) deals a t-of-n key and posts ``KeyDealt``;
``additive``     the same, with n-of-n additive shares;
``distributed``  no dealer: once every party has joined, the parties generate the key
                 together (:mod:`zkadapt.protocol.distributed_keys`) and each posts its own
                 ``KeyDealt`` holding its share sealed to itself.

:func:`decide_key` is the decision, pure over what the channel shows and whether the
party's key deadline (on the round driver's injected clock) has passed: wait, deal now,
open the posted key, or give up with a named reason. :class:`KeyEpochs` carries the
decisions out against the store and channel and holds the opened keys, the declared
training-set sizes and the FedAvg weights they fix.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from zkadapt.crypto.distributed_keygen import DkgParams
from zkadapt.crypto.identity import Keyring
from zkadapt.crypto.packing import fedavg_weights
from zkadapt.crypto.sealing import open_sealed
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, deal_threshold_key
from zkadapt.errors import CryptoError, ProtocolError
from zkadapt.protocol.distributed_keys import DkgRunner
from zkadapt.protocol.key_delivery import as_ref, publish_key, share_context
from zkadapt.protocol.messages import KeyDealt
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.publishing import fetch_bytes
from zkadapt.protocol.schemes import RoundIO
from zkadapt.protocol.update import UpdateRejected

#: An opened key epoch: the public key and this party's share (None for an observer).
EpochKey = tuple[ThresholdPublicKey, "KeyShare | None"]


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

    def epoch_of(self, round_: int) -> int:
        """Key epoch of ``round_`` (0 unless keys are refreshed every R rounds)."""
        return (round_ - 1) // self.refresh_every if self.refresh_every else 0

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


# -- carrying it out ----------------------------------------------------------------------


@dataclass
class KeyEpochs:
    """One party's key epochs: the decisions carried out, the opened keys and the weights."""

    plan: KeyPlan
    keyring: Keyring
    timeout_s: float
    keys: dict[int, EpochKey] = field(default_factory=dict)
    #: Declared training-set sizes before the first key (the public n_i of CRYPTO.md §3).
    declared: dict[str, int] = field(default_factory=dict)
    #: FedAvg weights ω_i = n·n_i / Σ n_j of the declared parties.
    weights: dict[str, float] = field(default_factory=dict)

    def of_round(self, round_: int) -> EpochKey:
        """The opened key of ``round_``'s epoch."""
        return self.keys[self.plan.epoch_of(round_)]

    def ensure(self, round_: int, io: RoundIO, clock: Callable[[], float]) -> EpochKey:
        """Make sure ``round_``'s key epoch is dealt and opened, syncing until it is.

        ``clock`` is the round driver's injected clock: the key deadline is
        ``timeout_s`` after this call on it (an observer passes ``timeout_s = 0``).

        Raises:
            ProtocolError: :func:`decide_key` gave up, or the posted key is unusable.
        """
        epoch = self.plan.epoch_of(round_)
        if epoch in self.keys:
            return self.keys[epoch]
        me = io.ctx.party if io.identity is not None else None
        source = self.plan.source(me)
        expires = clock() + self.timeout_s
        while True:
            posted = io.history.key_dealt(epoch, source)
            step = decide_key(
                self.plan,
                epoch,
                me,
                joined=io.history.joined(),
                dealt=posted is not None,
                deadline_passed=clock() > expires,
            )
            match step:
                case KeyOpen() if posted is not None:
                    self.keys[epoch] = self._open(epoch, round_, posted.message, io)  # type: ignore[arg-type]
                    if epoch == 0:
                        self._fix_weights(posted.seq, io)
                    return self.keys[epoch]
                case KeyDeal():
                    io.emit(
                        round_,
                        Phase.KEYS,
                        f"{self.plan.keygen} key epoch {epoch} ({self.plan.key_bits} bits)",
                    )
                    self._deal(epoch, round_, io, clock)
                case KeyFail(reason=reason):
                    raise ProtocolError(reason, round=round_)
                case KeyWait():
                    io.sync(wait=io.ctx.poll_interval_s)

    def _fix_weights(self, seq: int, io: RoundIO) -> None:
        """The sizes declared before the first ``KeyDealt`` fix the weights (CRYPTO.md §3)."""
        first = io.history.key_dealt(0, None) if self.plan.distributed else None
        self.declared = io.history.joined(before=(first.seq if first else seq))
        names = sorted(self.declared)
        sizes = [self.declared[n] for n in names]
        self.weights = dict(zip(names, fedavg_weights(sizes), strict=True))

    def _open(self, epoch: int, round_: int, dealt: KeyDealt, io: RoundIO) -> EpochKey:
        """Fetch the public key, check it is the configured one, open our sealed share."""
        try:
            public = ThresholdPublicKey.from_bytes(fetch_bytes(io.store, as_ref(dealt.public)))
            if public.key_id != dealt.key_id or public.n != len(self.plan.names):
                raise CryptoError("public key does not match the KeyDealt message")
            if public.mode != self.plan.keygen or public.t != self.plan.threshold:
                raise CryptoError(
                    f"key is {public.mode} {public.t}-of-{public.n}, not as configured"
                )
            share = self._open_share(dealt, public, io)
        except UpdateRejected as exc:
            raise ProtocolError(
                f"key epoch {epoch} is unusable: {exc.reason}", round=round_
            ) from None
        except (CryptoError, ValueError) as exc:
            raise ProtocolError(f"key epoch {epoch} is unusable: {exc}", round=round_) from None
        return public, share

    def _open_share(
        self, dealt: KeyDealt, public: ThresholdPublicKey, io: RoundIO
    ) -> KeyShare | None:
        me = io.ctx.party
        if me not in dealt.shares:
            return None
        sealed = fetch_bytes(io.store, as_ref(dealt.shares[me]))
        context = share_context(io.ctx.session_id, dealt.epoch, me)
        share = KeyShare.from_bytes(open_sealed(io.identity, sealed, context=context), public)
        if share.index != self.plan.index_of(me):
            raise CryptoError(f"the share sealed to {me} has index {share.index}")
        return share

    def _deal(self, epoch: int, round_: int, io: RoundIO, clock: Callable[[], float]) -> None:
        """Make a key (deal it, or generate it with the others), store it, post ``KeyDealt``.

        A dealer stores every party's share sealed to that party; with distributed keys each
        party stores only its own share, sealed to itself, and its copy of the public key.
        The dealer keeps nothing (CRYPTO.md section 1): the shares die with this frame.
        """
        me, plan = io.ctx.party, self.plan
        if plan.distributed:
            params = DkgParams(
                plan.key_bits,
                len(plan.names),
                plan.threshold,
                context=f"{io.ctx.session_id}/key-epoch-{epoch}".encode(),
            )
            runner = DkgRunner(
                io,
                keyring=self.keyring,
                names=plan.names,
                epoch=epoch,
                round_=round_,
                params=params,
                timeout_s=self.timeout_s,
                clock=clock,
            )
            public, own = runner.run()
            shares, public_name = {me: own}, f"public-{me}"
        else:
            public, dealt = deal_threshold_key(
                plan.key_bits, plan.threshold, len(plan.names), plan.keygen
            )
            shares, public_name = dict(zip(plan.names, dealt, strict=True)), "public"
        publish_key(
            io.store,
            io.post,
            self.keyring,
            session=io.ctx.session_id,
            epoch=epoch,
            round_=round_,
            sender=me,
            public=public,
            shares=shares,
            public_name=public_name,
        )
