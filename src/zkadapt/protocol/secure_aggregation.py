"""``privacy.scheme = "paillier"``: threshold-Paillier secure aggregation inside a round.

What each party does, on top of the round protocol (DESIGN.md sections 3-4, CRYPTO.md):

KEYS     Every party posts ``Joined{n_samples}`` once. The dealer (a party, or an external
         key-generation centre: ``zkadapt keygen``) waits for everyone (or its deadline),
         deals a t-of-n key (or n-of-n additive shares), stores the public key and each
         share *sealed to that party's identity key*, and posts ``KeyDealt``. The declared
         sizes before that entry fix the FedAvg weights w_i = n*n_i/sum(n_j). With
         ``keygen = "distributed"`` there is no dealer: once everyone has joined, the parties
         generate the key together (:mod:`zkadapt.protocol.distributed_keys`) and each posts
         ``KeyDealt`` with the public key and its own share sealed to itself.
         A fresh key is made every ``refresh_every`` rounds (key epochs).
SEAL     delta -> weight, clip, quantize, pack (CRYPTO.md section 3) -> DJN-encrypt ->
         batched proof of plaintext knowledge bound to (session, round, party) (section 5).
OPEN     header binding (replay, copy, key id, packing), ciphertext ranges, the proof.
SUM      every party multiplies the accepted ciphertexts in party-name order.
DECRYPT  every key holder posts its decryption shares of the sum with a batched proof that
         they match its verification key (section 6); any t valid shares, taken in channel
         order, combine to the packed sum; unpacking divides by the accepted weights.

No party ever holds the private key; fewer than t parties learn nothing about any single
update. Any t valid shares give the same plaintext, so every honest party computes the
same mean delta and hence the same G(r).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zkadapt.crypto.identity import Keyring
from zkadapt.crypto.packing import PackingSpec
from zkadapt.crypto.paillier import Ciphertext
from zkadapt.crypto.proofs import ProofContext
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey
from zkadapt.errors import ProtocolError
from zkadapt.protocol import paillier_ops as ops
from zkadapt.protocol.key_epochs import EpochKey, KeyEpochs, KeyPlan
from zkadapt.protocol.messages import DecryptionShare, Submitted
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.publishing import OBJECT_SLACK_BYTES, fetch_checked, publish
from zkadapt.protocol.schemes import RoundIO, StepTimings
from zkadapt.protocol.update import UpdateRejected, party_location
from zkadapt.storage.base import ObjectRef, is_key_of, object_key


@dataclass
class _RoundSum:
    """The homomorphic sum of one round's accepted updates and the shares checked so far."""

    round: int
    public: ThresholdPublicKey
    share: KeyShare | None
    names: tuple[str, ...]
    total: list[Ciphertext]
    summed_at: float
    valid: dict[str, list[int]] = field(default_factory=dict)


class PaillierScheme:
    """Seal, open and aggregate updates under a threshold Paillier key.

    A thin adapter between the round protocol and its parts: the key epochs
    (:class:`~zkadapt.protocol.key_epochs.KeyEpochs`), the pure operations
    (:mod:`zkadapt.protocol.paillier_ops`) and the one store/channel path
    (:mod:`zkadapt.protocol.publishing`). It remembers only the current round's sum.
    """

    name = "paillier"

    def __init__(
        self,
        *,
        keyring: Keyring,
        n_samples: int,
        key_bits: int,
        threshold: int,
        keygen: str,
        dealer: str,
        quant_bits: int,
        clip: float,
        refresh_every: int | None,
        timeout_s: float,
        textbook: bool = False,
        workers: int | None = None,
        weighting: str = "declared",
        max_share: float | None = None,
        max_parties: int | None = None,
    ) -> None:
        names = tuple(sorted(keyring))
        self.n_samples = n_samples
        self.threshold = threshold
        # sums of up to every party that may ever be a member (newcomers: docs/membership.md)
        most = max(len(names), max_parties or 0)
        self.spec = PackingSpec(quant_bits, clip, most, key_bits)
        self.textbook, self.workers = textbook, workers
        plan = KeyPlan(names, keygen, dealer, threshold, key_bits, refresh_every)
        self.epochs = KeyEpochs(
            plan, keyring, timeout_s, n_samples, weighting=weighting, max_share=max_share
        )
        self.steps = StepTimings()
        self._sum: _RoundSum | None = None

    @property
    def timings(self) -> dict[str, float]:
        """Seconds of the scheme's own steps (``SCHEME_STEPS``, ``decrypt_s``) in its latest
        round."""
        return self.steps.seconds

    # -- KEYS (the round machine decides; key_epochs.py carries out and holds them) --------

    @property
    def key_epochs(self) -> KeyEpochs:
        """The key epochs the round machine's key actions run on (DESIGN.md section 4)."""
        return self.epochs

    @property
    def _keys(self) -> dict[int, EpochKey]:
        """Opened keys by epoch (read by fault-injecting test schemes)."""
        return self.epochs.keys

    @property
    def declared(self) -> dict[str, int]:
        """Training-set sizes declared before the first key."""
        return self.epochs.declared

    @property
    def weights(self) -> dict[str, float]:
        """FedAvg weights of the declared parties (CRYPTO.md section 3)."""
        return self.epochs.weights

    def epoch_of(self, round_: int, io: RoundIO | None = None) -> int:
        """Key epoch of ``round_`` (refreshes; with ``[membership]``, admissions too)."""
        return self.epochs.epoch_of(round_, io)

    def index_of(self, party: str, round_: int = 1, io: RoundIO | None = None) -> int:
        """Shamir index (1..n) of ``party`` in ``round_``'s key: its position in name order."""
        return self.epochs.index_of(party, round_, io)

    def prepare(self, round_: int, io: RoundIO) -> None:
        """Have the round's key open: a party's machine opened it already (``OpenKey``); an
        observer (the audit) opens the posted one or learns why there is none."""
        self.epochs.open_posted(round_, io)

    # -- SEAL and OPEN -------------------------------------------------------------------

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """Pack, encrypt and prove this party's weighted update."""
        me = io.ctx.party
        public, _ = self.epochs.of_round(round_, io)
        weights = self.epochs.weights_of(round_, io)
        if me not in weights:
            raise ProtocolError(
                "this party joined after the key was dealt; it cannot contribute",
                round=round_,
                party=me,
            )
        return ops.seal_update(
            public,
            self.spec,
            ProofContext(io.ctx.session_id, round_, me),
            delta,
            weight=weights[me],
            n_samples=self.epochs.declared_of(io)[me],
            workers=self.workers,
            textbook=self.textbook,
        )

    def max_object_bytes(self, round_: int, io: RoundIO) -> int:
        """The largest honest encrypted update: its fixed-width ciphertexts, header and proof."""
        public, _ = self.epochs.of_round(round_, io)
        count = self.spec.num_plaintexts(io.codec.size)
        return count * public.paillier.ciphertext_bytes + OBJECT_SLACK_BYTES

    def open(self, round_: int, sub: Submitted, data: bytes, io: RoundIO) -> list[Ciphertext]:
        """Check binding, parameters, ranges and the proof of plaintext knowledge."""
        public, _ = self.epochs.of_round(round_, io)
        with self.steps.step(round_, "verify_s"):
            return ops.open_update(
                public,
                self.spec,
                ProofContext(io.ctx.session_id, round_, sub.party),
                data,
                declared=self.epochs.declared_of(io).get(sub.party),
                claimed_samples=sub.n_samples,
                length=io.codec.size,
            )

    # -- SUM and DECRYPT (the round machine decides when; see protocol/machine.py) ------

    @property
    def shares_needed(self) -> int:
        """Valid decryption shares that decrypt a sum: the threshold t."""
        return self.threshold

    def sum(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> None:
        """Multiply the accepted ciphertexts in party-name order (the same in every party)."""
        with self.steps.step(round_, "sum_s"):
            public, share = self.epochs.of_round(round_, io)
            total = ops.sum_updates(public, accepted)
            names = tuple(sorted(accepted))
            self._sum = _RoundSum(round_, public, share, names, total, time.monotonic())

    def _sum_of(self, round_: int) -> _RoundSum:
        if self._sum is None or self._sum.round != round_:
            raise ProtocolError("no homomorphic sum for this round yet", round=round_)
        return self._sum

    def post_share(self, round_: int, io: RoundIO) -> None:
        """Post our decryption shares of the sum with a batched proof (CRYPTO.md section 6)."""
        rs = self._sum_of(round_)
        if rs.share is None:
            return  # an auditor holds no key share
        io.emit(round_, Phase.DECRYPT, f"decryption shares of {len(rs.total)} ciphertexts")
        session, me = io.ctx.session_id, io.ctx.party
        ctx = ProofContext(session, round_, me)
        with self.steps.step(round_, "share_s"):
            data = ops.share_bundle(rs.public, rs.share, ctx, rs.total, workers=self.workers)
        key = object_key(session, round_, "share", me)

        def announce(refs: dict[str, ObjectRef]) -> DecryptionShare:
            ref = refs[key]
            return DecryptionShare(
                session, round_, me, ref.uri, ref.sha256, ref.size, rs.public.key_id
            )

        publish(io.store, io.post, {key: data}, announce)

    def check_share(self, round_: int, msg: DecryptionShare, io: RoundIO) -> None:
        """Verify one party's posted shares of the sum; keep them when valid.

        Raises:
            UpdateRejected: ``decryption share: <reason>``.
        """
        rs = self._sum_of(round_)
        try:
            if msg.key_id != rs.public.key_id:
                raise UpdateRejected("key id mismatch")
            location = party_location(io.store, msg.party)
            own = object_key(io.ctx.session_id, round_, "share", msg.party)
            if not (msg.uri.startswith(location) and is_key_of(msg.uri[len(location) :], own)):
                raise UpdateRejected("object outside the party's own prefix")  # threats.md
            ctx = ProofContext(io.ctx.session_id, round_, msg.party)
            index = self.index_of(msg.party, round_, io)

            def check(data: bytes) -> list[int]:
                with self.steps.step(round_, "check_share_s"):
                    return ops.check_bundle(rs.public, ctx, index, rs.total, data)

            rs.valid[msg.party] = fetch_checked(
                io.store,
                ObjectRef(msg.uri, msg.sha256, msg.size),
                check,
                max_size=ops.max_bundle_bytes(rs.public, rs.total),
            )
        except UpdateRejected as exc:
            raise UpdateRejected(f"decryption share: {exc.reason}") from None

    def combine(self, round_: int, parties: tuple[str, ...], io: RoundIO) -> np.ndarray:
        """Combine exactly these parties' valid shares, unpack, divide by the weights."""
        rs = self._sum_of(round_)
        if len(parties) < self.threshold:
            raise ProtocolError(
                f"{len(parties)} decryption shares cannot decrypt; {self.threshold} needed",
                round=round_,
            )
        with self.steps.step(round_, "combine_s"):
            mean = ops.combine_mean(
                rs.public,
                self.spec,
                {self.index_of(p, round_, io): rs.valid[p] for p in parties},
                n_accepted=len(rs.names),
                weight=sum(self.epochs.weights_of(round_, io)[n] for n in rs.names),
                length=io.codec.size,
            )
        self.steps.record(round_, "decrypt_s", time.monotonic() - rs.summed_at)
        self._sum = None
        return mean
