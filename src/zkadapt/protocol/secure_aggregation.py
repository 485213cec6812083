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

from zkadapt.crypto.distributed_keygen import DkgParams
from zkadapt.crypto.identity import Keyring
from zkadapt.crypto.packing import PackingSpec, fedavg_weights
from zkadapt.crypto.paillier import Ciphertext, encrypt_many
from zkadapt.crypto.proofs import (
    PlaintextProof,
    ProofContext,
    ShareProof,
    prove_decryption_shares,
    prove_plaintext_knowledge,
    verify_decryption_shares,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.sealing import open_sealed
from zkadapt.crypto.threshold import (
    KeyShare,
    ThresholdPublicKey,
    combine,
    deal_threshold_key,
    decryption_shares_many,
)
from zkadapt.errors import CryptoError, IntegrityError, ProtocolError, StorageError
from zkadapt.protocol.ciphertexts import EncryptedUpdate, ShareBundle
from zkadapt.protocol.distributed_keys import DkgRunner
from zkadapt.protocol.key_delivery import as_ref, publish_key, share_context
from zkadapt.protocol.messages import DecryptionShare, Joined, KeyDealt, Submitted
from zkadapt.protocol.phases import Phase
from zkadapt.protocol.schemes import RoundIO
from zkadapt.protocol.update import UpdateRejected
from zkadapt.storage.base import ObjectRef, object_key


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
    """Seal, open and aggregate updates under a dealt threshold Paillier key."""

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
    ) -> None:
        self.keyring = keyring
        self.names = sorted(keyring)
        self.n_samples = n_samples
        self.key_bits, self.threshold, self.keygen, self.dealer = (
            key_bits,
            threshold,
            keygen,
            dealer,
        )
        self.spec = PackingSpec(quant_bits, clip, len(self.names), key_bits)
        self.refresh_every = refresh_every
        self.timeout_s = timeout_s
        self.textbook, self.workers = textbook, workers
        self._keys: dict[int, tuple[ThresholdPublicKey, KeyShare | None]] = {}
        self.declared: dict[str, int] = {}
        self.weights: dict[str, float] = {}
        self.timings: dict[str, float] = {}
        self._sum: _RoundSum | None = None

    # -- KEYS ----------------------------------------------------------------------------

    def epoch_of(self, round_: int) -> int:
        """Key epoch of ``round_`` (0 unless keys are refreshed every R rounds)."""
        return (round_ - 1) // self.refresh_every if self.refresh_every else 0

    def index_of(self, party: str) -> int:
        """Shamir index (1..n) of ``party``: its position in name order."""
        return self.names.index(party) + 1

    def prepare(self, round_: int, io: RoundIO) -> None:
        """Join (once), then make sure this round's key epoch is dealt and our share opened."""
        session, me = io.ctx.session_id, io.ctx.party
        if io.identity is not None and me not in io.history.joined():  # auditors only observe
            io.post(Joined(session, 0, me, self.n_samples))
        epoch = self.epoch_of(round_)
        if epoch not in self._keys:
            self._keys[epoch] = self._obtain_key(epoch, round_, io)

    def _obtain_key(
        self, epoch: int, round_: int, io: RoundIO
    ) -> tuple[ThresholdPublicKey, KeyShare | None]:
        deadline = time.monotonic() + self.timeout_s
        distributed = self.keygen == "distributed"
        # whose KeyDealt carries the key: the dealer's; with distributed keys each party's own
        # (it holds that party's sealed share), and any party's for an observer
        dealer = (io.ctx.party if io.identity is not None else None) if distributed else self.dealer
        while (posted := io.history.key_dealt(epoch, dealer)) is None:
            everyone = set(io.history.joined()) >= set(self.names)
            late = time.monotonic() > deadline
            if io.ctx.party == dealer and (epoch > 0 or everyone or (late and not distributed)):
                io.emit(
                    round_, Phase.KEYS, f"{self.keygen} key epoch {epoch} ({self.key_bits} bits)"
                )
                self._deal(epoch, round_, io)
                continue
            if late:
                missing = sorted(set(self.names) - set(io.history.joined()))
                why = (
                    "distributed key generation needs every party; not joined: "
                    + ", ".join(missing)
                    if distributed and missing and dealer is not None
                    else f"no threshold key for epoch {epoch} from dealer {dealer or 'any party'}"
                )
                raise ProtocolError(why, round=round_)
            io.sync(wait=io.ctx.poll_interval_s)
        dealt: KeyDealt = posted.message  # type: ignore[assignment]
        try:
            public = ThresholdPublicKey.from_bytes(io.store.get(as_ref(dealt.public)))
            if public.key_id != dealt.key_id or public.n != len(self.names):
                raise CryptoError("public key does not match the KeyDealt message")
            if public.mode != self.keygen or public.t != self.threshold:
                raise CryptoError(
                    f"key is {public.mode} {public.t}-of-{public.n}, not as configured"
                )
            share = self._open_share(dealt, public, io)
        except (StorageError, CryptoError, ValueError) as exc:
            raise ProtocolError(f"key epoch {epoch} is unusable: {exc}", round=round_) from None
        if epoch == 0:
            first = io.history.key_dealt(epoch, None) if distributed else posted
            self.declared = io.history.joined(before=(first or posted).seq)
            names = sorted(self.declared)
            self.weights = dict(
                zip(names, fedavg_weights([self.declared[n] for n in names]), strict=True)
            )
        return public, share

    def _open_share(
        self, dealt: KeyDealt, public: ThresholdPublicKey, io: RoundIO
    ) -> KeyShare | None:
        me = io.ctx.party
        if me not in dealt.shares:
            return None
        sealed = io.store.get(as_ref(dealt.shares[me]))
        context = share_context(io.ctx.session_id, dealt.epoch, me)
        share = KeyShare.from_bytes(open_sealed(io.identity, sealed, context=context), public)
        if share.index != self.index_of(me):
            raise CryptoError(f"the share sealed to {me} has index {share.index}")
        return share

    def _deal(self, epoch: int, round_: int, io: RoundIO) -> None:
        """Make a key (deal it, or generate it with the others), store it, post ``KeyDealt``.

        A dealer stores every party's share sealed to that party; with distributed keys each
        party stores only its own share, sealed to itself, and its copy of the public key.
        """
        me = io.ctx.party
        if self.keygen == "distributed":
            params = DkgParams(
                self.key_bits,
                len(self.names),
                self.threshold,
                context=f"{io.ctx.session_id}/key-epoch-{epoch}".encode(),
            )
            runner = DkgRunner(
                io,
                keyring=self.keyring,
                names=self.names,
                epoch=epoch,
                round_=round_,
                params=params,
                timeout_s=self.timeout_s,
            )
            public, own = runner.run()
            shares, public_name = {me: own}, f"public-{me}"
        else:
            public, dealt = deal_threshold_key(
                self.key_bits, self.threshold, len(self.names), self.keygen
            )
            shares, public_name = dict(zip(self.names, dealt, strict=True)), "public"
        message = publish_key(
            io.store,
            self.keyring,
            session=io.ctx.session_id,
            epoch=epoch,
            round_=round_,
            sender=me,
            public=public,
            shares=shares,
            public_name=public_name,
        )
        del shares  # the dealer keeps nothing (CRYPTO.md section 1)
        io.post(message)

    # -- SEAL and OPEN -------------------------------------------------------------------

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """Pack, encrypt and prove this party's weighted update."""
        me = io.ctx.party
        public, _ = self._keys[self.epoch_of(round_)]
        if me not in self.weights:
            raise ProtocolError(
                "this party joined after the key was dealt; it cannot contribute",
                round=round_,
                party=me,
            )
        plaintexts = self.spec.pack(np.asarray(delta, dtype=np.float64), self.weights[me])
        cts, randomness = encrypt_many(
            public.paillier, plaintexts, self.workers, textbook=self.textbook
        )
        ctx = ProofContext(io.ctx.session_id, round_, me)
        proof = prove_plaintext_knowledge(public.paillier, ctx, cts, plaintexts, randomness)
        update = EncryptedUpdate(
            io.ctx.session_id,
            round_,
            me,
            public.key_id,
            self._packing(),
            int(delta.size),
            self.declared[me],
            tuple(c.value for c in cts),
            proof.to_bytes(),
        )
        return update.to_bytes(public.paillier.ciphertext_bytes)

    def _packing(self) -> dict[str, Any]:
        return {"k": self.spec.k, "clip": self.spec.clip, "n": self.spec.n_parties}

    def open(self, round_: int, sub: Submitted, data: bytes, io: RoundIO) -> list[Ciphertext]:
        """Check binding, parameters, ranges and the proof of plaintext knowledge."""
        public, _ = self._keys[self.epoch_of(round_)]
        update = EncryptedUpdate.from_bytes(data)
        if update.session != io.ctx.session_id:
            raise UpdateRejected("wrong session")
        if update.round != round_:
            raise UpdateRejected(f"replay: object is for round {update.round}")
        if update.party != sub.party:
            raise UpdateRejected(f"copied object: it belongs to {update.party}")
        if update.key_id != public.key_id:
            raise UpdateRejected("key id mismatch")
        if sub.party not in self.declared:
            raise UpdateRejected("party did not join before the key was dealt")
        if update.n_samples != self.declared[sub.party] or sub.n_samples != update.n_samples:
            raise UpdateRejected("malformed object: n_samples differs from the declared count")
        if update.packing != self._packing() or update.length != io.codec.size:
            raise UpdateRejected("malformed object: packing parameters or length differ")
        if len(update.ciphertexts) != self.spec.num_plaintexts(update.length):
            raise UpdateRejected("malformed object: wrong number of ciphertexts")
        try:
            cts = [public.paillier.ciphertext(v) for v in update.ciphertexts]
            proof = PlaintextProof.from_bytes(update.proof)
            verify_plaintext_knowledge(
                public.paillier, ProofContext(update.session, round_, sub.party), cts, proof
            )
        except (CryptoError, ValueError) as exc:
            raise UpdateRejected(f"proof failed: {exc}") from None
        return cts

    # -- SUM and DECRYPT (the round machine decides when; see protocol/machine.py) ------

    @property
    def shares_needed(self) -> int:
        """Valid decryption shares that decrypt a sum: the threshold t."""
        return self.threshold

    def sum(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> None:
        """Multiply the accepted ciphertexts in party-name order (the same in every party)."""
        started = time.monotonic()
        public, share = self._keys[self.epoch_of(round_)]
        names = sorted(accepted)
        total = [
            public.paillier.sum(accepted[n][j] for n in names)
            for j in range(len(accepted[names[0]]))
        ]
        self._sum = _RoundSum(round_, public, share, tuple(names), total, time.monotonic())
        self.timings = {"sum_s": self._sum.summed_at - started}

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
        ctx = ProofContext(io.ctx.session_id, round_, io.ctx.party)
        values = decryption_shares_many(rs.share, rs.total, self.workers)
        proof = prove_decryption_shares(rs.share, ctx, rs.total, values)
        bundle = ShareBundle(
            io.ctx.session_id,
            round_,
            io.ctx.party,
            rs.public.key_id,
            rs.share.index,
            tuple(values),
            proof.to_bytes(),
        )
        ref = io.store.put(
            object_key(io.ctx.session_id, round_, "share", io.ctx.party),
            bundle.to_bytes(rs.public.paillier.ciphertext_bytes),
        )
        io.post(
            DecryptionShare(
                io.ctx.session_id,
                round_,
                io.ctx.party,
                ref.uri,
                ref.sha256,
                ref.size,
                rs.public.key_id,
            )
        )

    def check_share(self, round_: int, msg: DecryptionShare, io: RoundIO) -> None:
        """Verify one party's posted shares of the sum; keep them when valid.

        Raises:
            UpdateRejected: ``decryption share: <reason>``.
        """
        rs = self._sum_of(round_)
        try:
            rs.valid[msg.party] = self._verify_shares(round_, msg, rs.public, rs.total, io)
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
        shares = {self.index_of(p): rs.valid[p] for p in parties}
        plaintexts = [
            combine(rs.public, {i: s[j] for i, s in shares.items()}) for j in range(len(rs.total))
        ]
        self.timings["decrypt_s"] = time.monotonic() - rs.summed_at
        weight = sum(self.weights[n] for n in rs.names)
        mean = self.spec.unpack(plaintexts, len(rs.names), weight, io.codec.size)
        self._sum = None
        return mean.astype(np.float32)

    def _verify_shares(
        self,
        round_: int,
        msg: DecryptionShare,
        public: ThresholdPublicKey,
        total: list[Ciphertext],
        io: RoundIO,
    ) -> list[int]:
        if msg.key_id != public.key_id:
            raise UpdateRejected("key id mismatch")
        try:
            bundle = ShareBundle.from_bytes(io.store.get(ObjectRef(msg.uri, msg.sha256, msg.size)))
        except IntegrityError:
            raise UpdateRejected("digest mismatch") from None
        except StorageError as exc:
            raise UpdateRejected(f"object unavailable: {exc}") from None
        index = self.index_of(msg.party)
        binding = (bundle.session, bundle.round, bundle.party, bundle.key_id, bundle.index)
        if binding != (io.ctx.session_id, round_, msg.party, public.key_id, index):
            raise UpdateRejected("share object is bound to another session, round, party or key")
        if len(bundle.shares) != len(total):
            raise UpdateRejected("malformed object: wrong number of shares")
        try:
            proof = ShareProof.from_bytes(bundle.proof)
            verify_decryption_shares(
                public,
                index,
                ProofContext(io.ctx.session_id, round_, msg.party),
                total,
                list(bundle.shares),
                proof,
            )
        except (CryptoError, ValueError) as exc:
            raise UpdateRejected(f"proof failed: {exc}") from None
        return list(bundle.shares)
