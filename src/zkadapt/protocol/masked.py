"""``privacy.scheme = "masked"``: seed-homomorphic masks, threshold Paillier only for the seeds.

docs/masking.md section 2, on top of the Paillier scheme's key epochs, share and proof code:

SEAL     weight, clip and quantize the delta exactly as the Paillier scheme does (u in
         [1, 2^k - 1], CRYPTO.md section 3); draw a fresh seed s (N = 2048 coefficients mod
         2^32 from the OS CSPRNG); y = (u * 2^g + G(s)) mod p, bit-packed at P bits a value;
         pack the seed's coefficients into ~40 plaintexts, DJN-encrypt them and prove
         knowledge of their plaintexts with the batched proof, its transcript bound to
         session, round, party **and sha256(y)** (so a copied, re-randomized or combined seed
         ciphertext, or a seed moved onto another y, is rejected).
OPEN     binding, parameters, sizes, the proof; y is kept for the sum.
SUM      the seed ciphertexts multiply (the Paillier scheme's sum, ~40 ciphertexts whatever the
         model size); the masked vectors add mod p.
DECRYPT  t key holders post decryption shares of the seed sum with proofs (unchanged).
COMBINE  the shares give S' = sum of the accepted seeds; z = (sum y - G(S' mod q)) mod p and
         sum u = round(z / 2^g), exactly; then the weighted mean as the Paillier scheme
         decodes it. A sum outside what the accepted parties could have sent fails the round.

Object layout: the ciphertext object of :mod:`zkadapt.protocol.ciphertexts` (magic, JSON
header, fixed-width integers, tail) whose integers are the seed ciphertexts and whose tail is
the proof followed by the packed y (the header gives both lengths).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from zkadapt.crypto import ring_lwr
from zkadapt.crypto.packing import ints_to_slots, slots_to_ints
from zkadapt.crypto.paillier import Ciphertext, encrypt_many
from zkadapt.crypto.proofs import (
    PlaintextProof,
    ProofContext,
    prove_plaintext_knowledge,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.threshold import ThresholdPublicKey, combine
from zkadapt.errors import CryptoError, ProtocolError
from zkadapt.protocol.ciphertexts import _dict, _int, _str, decode_object, encode_object
from zkadapt.protocol.messages import Submitted
from zkadapt.protocol.paillier_ops import packing_doc
from zkadapt.protocol.publishing import OBJECT_SLACK_BYTES
from zkadapt.protocol.schemes import RoundIO
from zkadapt.protocol.secure_aggregation import PaillierScheme, _RoundSum
from zkadapt.protocol.update import UpdateRejected

MASKED_FORMAT = "zkadapt-update/masked-v1"


@dataclass(frozen=True)
class SeedPacking:
    """How N seed coefficients (each < 2^32) fill Paillier plaintexts so that the sum of n
    of them never carries between slots: width 32 + ceil(log2 n) + 1 bits."""

    n_parties: int
    key_bits: int

    @property
    def slot_bits(self) -> int:
        return ring_lwr.Q_BITS + (self.n_parties - 1).bit_length() + 1

    @property
    def slots(self) -> int:
        return (self.key_bits - 1) // self.slot_bits

    @property
    def count(self) -> int:
        """Plaintexts (ciphertexts) per seed: ceil(N / slots)."""
        return -(-ring_lwr.RING_N // self.slots)

    def pack(self, seed: np.ndarray) -> list[int]:
        padded = np.zeros(self.count * self.slots, dtype=np.uint64)
        padded[: seed.size] = seed
        return slots_to_ints(padded.reshape(self.count, self.slots), self.slot_bits)

    def unpack_sum(self, plaintexts: list[int], n_accepted: int) -> np.ndarray:
        """The seed sum mod q from the decrypted plaintexts.

        Raises:
            CryptoError: a slot holds more than ``n_accepted`` seed coefficients could sum to.
        """
        limit = 1 << (self.slots * self.slot_bits)
        if any(not 0 <= p < limit for p in plaintexts):
            raise CryptoError("the seed sum exceeds its packing: not a sum of valid seeds")
        slots = ints_to_slots(plaintexts, self.slots, self.slot_bits).reshape(-1)
        coefficients = slots[: ring_lwr.RING_N]
        if int(coefficients.max(initial=0)) >= n_accepted << ring_lwr.Q_BITS:
            raise CryptoError(f"a seed-sum coefficient is too large for {n_accepted} seeds")
        return coefficients & np.uint64((1 << ring_lwr.Q_BITS) - 1)


@dataclass(frozen=True)
class MaskedUpdate:
    """The parsed object: binding, seed ciphertexts, proof and the masked vector."""

    session: str
    round: int
    party: str
    key_id: str
    packing: dict[str, Any]
    length: int
    n_samples: int
    p_bits: int
    seed_ciphertexts: tuple[int, ...]
    proof: bytes
    masked: bytes

    def to_bytes(self, width: int) -> bytes:
        header = {
            "format": MASKED_FORMAT,
            "session": self.session,
            "round": self.round,
            "party": self.party,
            "key_id": self.key_id,
            "packing": self.packing,
            "length": self.length,
            "n_samples": self.n_samples,
            "p_bits": self.p_bits,
            "proof_bytes": len(self.proof),
        }
        return encode_object(header, self.seed_ciphertexts, width, self.proof + self.masked)

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskedUpdate:
        """Parse; raises UpdateRejected (``malformed object``)."""
        header, values, tail = decode_object(data, MASKED_FORMAT)
        try:
            cut = _int(header, "proof_bytes")
            update = cls(
                _str(header, "session"),
                _int(header, "round"),
                _str(header, "party"),
                _str(header, "key_id"),
                _dict(header, "packing"),
                _int(header, "length"),
                _int(header, "n_samples"),
                _int(header, "p_bits"),
                tuple(values),
                tail[:cut],
                tail[cut:],
            )
        except (KeyError, TypeError):
            raise UpdateRejected("malformed object: incomplete header") from None
        if not 0 <= cut <= len(tail):
            raise UpdateRejected("malformed object: proof longer than the object")
        return update


@dataclass
class _MaskedSum:
    round: int
    names: tuple[str, ...]
    masked_total: np.ndarray


class MaskedScheme(PaillierScheme):
    """The Paillier scheme's keys, shares and proofs around Ring-LWR masks (module docstring)."""

    name = "masked"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        n = self.spec.n_parties
        self.params = ring_lwr.MaskParams(k=self.spec.k, n=n)
        self.seeds = SeedPacking(n, self.spec.key_bits)
        self._masked: _MaskedSum | None = None

    # -- SEAL and OPEN -------------------------------------------------------------------

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        """Quantize, mask with a fresh seed, encrypt the seed with a proof bound to y."""
        me, session = io.ctx.party, io.ctx.session_id
        public, _ = self.epochs.of_round(round_, io)
        weights = self.epochs.weights_of(round_, io)
        if me not in weights:
            raise ProtocolError(
                "this party joined after the key was dealt; it cannot contribute",
                round=round_,
                party=me,
            )
        u = (self.spec.quantize(delta, weights[me]) + self.spec.offset).astype(np.uint64)
        seed = ring_lwr.random_seed()
        masked = ring_lwr.pack_bits(
            ring_lwr.mask(session, self.params, u, seed), self.params.p_bits
        )
        ctx = ProofContext(session, round_, me, hashlib.sha256(masked).digest())
        plaintexts = self.seeds.pack(seed)
        cts, randomness = encrypt_many(
            public.paillier, plaintexts, self.workers, textbook=self.textbook
        )
        proof = prove_plaintext_knowledge(public.paillier, ctx, cts, plaintexts, randomness)
        update = MaskedUpdate(
            session,
            round_,
            me,
            public.key_id,
            packing_doc(self.spec),
            int(delta.size),
            self.epochs.declared_of(io)[me],
            self.params.p_bits,
            tuple(c.value for c in cts),
            proof.to_bytes(),
            masked,
        )
        return update.to_bytes(public.paillier.ciphertext_bytes)

    def max_object_bytes(self, round_: int, io: RoundIO) -> int:
        """Seed ciphertexts, the packed y, header and proof."""
        public, _ = self.epochs.of_round(round_, io)
        masked = ring_lwr.packed_size(io.codec.size, self.params.p_bits)
        return self.seeds.count * public.paillier.ciphertext_bytes + masked + OBJECT_SLACK_BYTES

    def open(
        self, round_: int, sub: Submitted, data: bytes, io: RoundIO
    ) -> tuple[list[Ciphertext], np.ndarray]:
        """Check binding, parameters and the seed proof bound to y; (seed cts, y)."""
        with self.steps.step(round_, "verify_s"):
            return self._open(round_, sub, data, io)

    def _open(
        self, round_: int, sub: Submitted, data: bytes, io: RoundIO
    ) -> tuple[list[Ciphertext], np.ndarray]:
        public, _ = self.epochs.of_round(round_, io)
        update = MaskedUpdate.from_bytes(data)
        _check_binding(update, public, io.ctx.session_id, round_, sub.party)
        declared = self.epochs.declared_of(io).get(sub.party)
        if declared is None:
            raise UpdateRejected("party did not join before the key was dealt")
        if update.n_samples != declared or sub.n_samples != update.n_samples:
            raise UpdateRejected("malformed object: n_samples differs from the declared count")
        if (
            update.packing != packing_doc(self.spec)
            or update.length != io.codec.size
            or update.p_bits != self.params.p_bits
        ):
            raise UpdateRejected("malformed object: packing parameters or length differ")
        if len(update.seed_ciphertexts) != self.seeds.count:
            raise UpdateRejected("malformed object: wrong number of seed ciphertexts")
        try:
            y = ring_lwr.unpack_bits(update.masked, update.p_bits, update.length)
        except ValueError as exc:
            raise UpdateRejected(f"malformed object: {exc}") from None
        ctx = ProofContext(
            io.ctx.session_id, round_, sub.party, hashlib.sha256(update.masked).digest()
        )
        try:
            cts = [public.paillier.ciphertext(v) for v in update.seed_ciphertexts]
            verify_plaintext_knowledge(
                public.paillier, ctx, cts, PlaintextProof.from_bytes(update.proof)
            )
        except (CryptoError, ValueError) as exc:
            raise UpdateRejected(f"proof failed: {exc}") from None
        return cts, y

    # -- SUM and COMBINE -----------------------------------------------------------------

    def sum(self, round_: int, accepted: dict[str, Any], io: RoundIO) -> None:
        """Multiply the seed ciphertexts (the Paillier sum) and add the masked vectors mod p."""
        with self.steps.step(round_, "sum_s"):
            super().sum(round_, {name: cts for name, (cts, _) in accepted.items()}, io)
            below_p = np.uint64((1 << self.params.p_bits) - 1)  # mod p, p a power of two
            names = tuple(sorted(accepted))
            total = np.zeros(len(accepted[names[0]][1]), dtype=np.uint64)
            for name in names:
                total = (total + accepted[name][1]) & below_p
            self._masked = _MaskedSum(round_, names, total)

    def combine(self, round_: int, parties: tuple[str, ...], io: RoundIO) -> np.ndarray:
        """Decrypt the seed sum from t parties' shares, unmask, decode the weighted mean.

        Raises:
            ProtocolError: fewer than t shares.
            CryptoError: the seed sum or a coordinate sum is outside what the accepted parties
                could have sent (the round fails with that reason; docs/masking.md section 3).
        """
        rs = self._sum_of(round_)
        held = self._masked
        if held is None or held.round != round_:
            raise ProtocolError("no masked sum for this round yet", round=round_)
        if len(parties) < self.threshold:
            raise ProtocolError(
                f"{len(parties)} decryption shares cannot decrypt; {self.threshold} needed",
                round=round_,
            )
        with self.steps.step(round_, "combine_s"):
            mean = self._unmask_mean(rs, held, parties, io)
        self.steps.record(round_, "decrypt_s", time.monotonic() - rs.summed_at)
        self._sum, self._masked = None, None
        return mean

    def _unmask_mean(
        self, rs: _RoundSum, held: _MaskedSum, parties: tuple[str, ...], io: RoundIO
    ) -> np.ndarray:
        """Combine the chosen shares into the seed sum, unmask the masked sum, decode."""
        shares = {self.index_of(p, rs.round, io): rs.valid[p] for p in parties}
        plaintexts = [
            combine(rs.public, {i: s[j] for i, s in shares.items()}) for j in range(len(rs.total))
        ]
        n_accepted = len(held.names)
        seeds_total = self.seeds.unpack_sum(plaintexts, n_accepted)
        sums = ring_lwr.unmask_total(io.ctx.session_id, self.params, held.masked_total, seeds_total)
        low, high = n_accepted, n_accepted * ((1 << self.spec.k) - 1)
        if sums.size and (int(sums.min()) < low or int(sums.max()) > high):
            raise CryptoError(
                f"an unmasked sum is outside [{low}, {high}]: some accepted party sent values "
                "outside its quantization range (no range proofs: it cannot be named)"
            )
        weight = sum(self.epochs.weights_of(rs.round, io)[n] for n in held.names)
        q_sum = sums - n_accepted * self.spec.offset
        return (q_sum.astype(np.float64) * (self.spec.step / weight)).astype(np.float32)


def _check_binding(
    update: MaskedUpdate, public: ThresholdPublicKey, session: str, round_: int, party: str
) -> None:
    if update.session != session:
        raise UpdateRejected("wrong session")
    if update.round != round_:
        raise UpdateRejected(f"replay: object is for round {update.round}")
    if update.party != party:
        raise UpdateRejected(f"copied object: it belongs to {update.party}")
    if update.key_id != public.key_id:
        raise UpdateRejected("key id mismatch")
