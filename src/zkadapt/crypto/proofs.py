"""Non-interactive zero-knowledge proofs for threshold Paillier (CRYPTO.md §5 and §6).

Two Σ-protocols made non-interactive with Fiat–Shamir, each batched over a party's K values by
a hash-derived random linear combination:

* :func:`prove_plaintext_knowledge` (§5): the party knows (M_k, r_k) with
  c_k = (1 + N)^{M_k} r_k^N for each of its ciphertexts. The Σ-protocol for Paillier
  N-th residuosity with plaintext (Cramer–Damgård–Nielsen, EUROCRYPT 2001; Damgård–Jurik,
  PKC 2001 §5). It stops copied, re-randomized, scaled or replayed ciphertexts: a prover cannot
  open another party's ciphertext, and session, round and party are hashed into every challenge.
* :func:`prove_decryption_shares` (§6): each c_{i,k} = c_k^{2Δ s_i} uses the Δ s_i fixed by the
  verification key v_i = v^{Δ s_i} (Shoup, EUROCRYPT 2000: equality of discrete logs).

Batching (Bellare–Garay–Rabin, EUROCRYPT 1998, small-exponent test): ``γ_k = H(tag, context,
all statements, k) mod 2^λ`` and the proof is for ``C = Π c_k^{γ_k}``. Openings for C under
hash-derived γ for K independent γ vectors give every opening (rewinding), and for shares a wrong
c_{i,k} survives with probability about 2^{−λ}, because squaring keeps everything in the
subgroup of squares, which has no small-order elements. The products are computed with a
bucket multi-exponentiation (Pippenger), about K·λ/c + λ·2^{c+1}/c multiplications.

Transcripts: SHAKE-256 over length-prefixed items (8-byte big-endian length, then the bytes),
starting with a domain tag and then session id, round, party and key id; integers are fixed-width
big-endian (the byte length of their modulus). λ = 128. Verification uses public data only.

Secret: plaintexts, randomness, key shares and the provers' nonces (x, s, ρ). Proofs are
public.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gmpy2

from zkadapt.crypto.paillier import (
    Ciphertext,
    PaillierPublicKey,
    canonical_json,
    hex_to_int,
    int_to_hex,
    parse_canonical_json,
    random_unit,
)
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey
from zkadapt.errors import CryptoError

LAMBDA = 128
"""Challenge and batching bits λ (soundness error about 2^−λ)."""

POK_TAG = b"zkadapt/pok/v1"
POK_BATCH_TAG = b"zkadapt/pok-batch/v1"
SHARE_TAG = b"zkadapt/share/v1"
SHARE_BATCH_TAG = b"zkadapt/share-batch/v1"


@dataclass(frozen=True)
class ProofContext:
    """What every challenge is bound to: the session, the round and the proving party.

    ``bound`` is extra data the proof must stick to (the masked scheme binds its seed
    ciphertexts' proof to the SHA-256 of the masked vector, docs/masking.md section 2); it
    enters the transcript only when non-empty, so proofs without it are unchanged.
    """

    session: str
    round: int
    party: str
    bound: bytes = b""


class Transcript:
    """Fiat–Shamir transcript: SHAKE-256 over length-prefixed items, domain tag first."""

    def __init__(self, tag: bytes, ctx: ProofContext, key_id: str) -> None:
        self._shake = hashlib.shake_256()
        self._item(tag)
        self.append_bytes("session", ctx.session.encode())
        self.append_int("round", ctx.round, 8)
        self.append_bytes("party", ctx.party.encode())
        if ctx.bound:
            self.append_bytes("bound", ctx.bound)
        self.append_bytes("key_id", key_id.encode())

    def _item(self, data: bytes) -> None:
        self._shake.update(len(data).to_bytes(8, "big"))
        self._shake.update(data)

    def append_bytes(self, label: str, data: bytes) -> None:
        """Append a labelled byte string."""
        self._item(label.encode())
        self._item(data)

    def append_int(self, label: str, value: int, width: int) -> None:
        """Append a labelled non-negative integer as ``width`` big-endian bytes."""
        self.append_bytes(label, int(value).to_bytes(width, "big"))

    def copy(self) -> Transcript:
        """An independent transcript with the same items so far."""
        clone = Transcript.__new__(Transcript)
        clone._shake = self._shake.copy()
        return clone

    def challenge(self, bits: int = LAMBDA) -> int:
        """The challenge: the first ⌈bits/8⌉ output bytes, big-endian, mod 2^bits."""
        digest = self._shake.digest(-(-bits // 8))
        return int.from_bytes(digest, "big") % (1 << bits)


def multi_exp(bases: Sequence[int], exponents: Sequence[int], modulus: int) -> gmpy2.mpz:
    """``Π bases[k]^exponents[k] mod modulus`` for non-negative exponents (Pippenger buckets)."""
    if len(bases) != len(exponents):
        raise ValueError("bases and exponents differ in length")
    mod = gmpy2.mpz(modulus)
    bits = max((int(e).bit_length() for e in exponents), default=0)
    if bits == 0:
        return gmpy2.mpz(1)
    count = len(bases)
    window = min(range(1, 17), key=lambda c: -(-bits // c) * (count + 2 ** (c + 1) + c))
    mask = (1 << window) - 1
    acc = gmpy2.mpz(1)
    for shift in range(-(-bits // window) * window - window, -1, -window):
        for _ in range(window):
            acc = acc * acc % mod
        buckets: list[gmpy2.mpz | None] = [None] * (mask + 1)
        for base, e in zip(bases, exponents, strict=True):
            digit = (int(e) >> shift) & mask
            if digit:
                held = buckets[digit]
                buckets[digit] = gmpy2.mpz(base) if held is None else held * base % mod
        running, total = gmpy2.mpz(1), gmpy2.mpz(1)
        for digit in range(mask, 0, -1):
            held = buckets[digit]
            if held is not None:
                running = running * held % mod
            total = total * running % mod
        acc = acc * total % mod
    return acc


def _batch_coefficients(transcript: Transcript, count: int) -> list[int]:
    """γ_k = H(transcript so far, k) mod 2^λ for k = 0..count−1 (one hash state, copied)."""
    out = []
    for k in range(count):
        branch = transcript.copy()
        branch.append_int("k", k, 8)
        out.append(branch.challenge())
    return out


def _units(values: Sequence[int], pub: PaillierPublicKey, what: str) -> list[gmpy2.mpz]:
    out = []
    for value in values:
        v = gmpy2.mpz(value)
        if not 0 < v < pub.nsquare or gmpy2.gcd(v, pub.n) != 1:
            raise CryptoError(f"{what} is not a unit mod N²")
        out.append(v)
    return out


def _ciphertext_values(pub: PaillierPublicKey, ciphertexts: Sequence[Ciphertext]) -> list[int]:
    if not ciphertexts:
        raise ValueError("nothing to prove: no ciphertexts")
    for c in ciphertexts:
        if c.key_id != pub.key_id:
            raise ValueError(f"ciphertext is under key {c.key_id}, not {pub.key_id}")
    return [int(v) for v in _units([c.value for c in ciphertexts], pub, "ciphertext")]


def _parse(data: bytes, domain: str, fields: tuple[str, ...]) -> dict[str, int]:
    doc = parse_canonical_json(data, domain)
    if set(doc) != {"domain", *fields}:
        raise CryptoError(f"{domain}: unexpected fields {sorted(doc)}")
    return {f: hex_to_int(doc[f], f) for f in fields}


# -- §5: proof of plaintext knowledge -------------------------------------------------------------
@dataclass(frozen=True)
class PlaintextProof:
    """Batched proof of plaintext knowledge: commitment a ∈ Z*_{N²}, z₁ ∈ [0, N), z₂ ∈ Z*_N."""

    a: int
    z1: int
    z2: int

    domain: ClassVar[str] = "zkadapt/pok-proof/v1"

    def to_bytes(self) -> bytes:
        """Canonical JSON with hex integers."""
        doc: dict[str, Any] = {"domain": self.domain}
        doc.update({f: int_to_hex(getattr(self, f)) for f in ("a", "z1", "z2")})
        return canonical_json(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> PlaintextProof:
        """Inverse of :meth:`to_bytes` (ranges are checked by the verifier, which knows N)."""
        return cls(**_parse(data, cls.domain, ("a", "z1", "z2")))


def _pok_batch(
    pub: PaillierPublicKey, ctx: ProofContext, values: Sequence[int]
) -> tuple[list[int], gmpy2.mpz]:
    """γ_k = H(pok-batch tag, context, all c, k) and C = Π c_k^{γ_k} mod N²."""
    transcript = Transcript(POK_BATCH_TAG, ctx, pub.key_id)
    transcript.append_int("count", len(values), 8)
    for c in values:
        transcript.append_int("c", c, pub.ciphertext_bytes)
    gammas = _batch_coefficients(transcript, len(values))
    return gammas, multi_exp(values, gammas, pub.nsquare)


def _pok_challenge(pub: PaillierPublicKey, ctx: ProofContext, big_c: int, a: int) -> int:
    transcript = Transcript(POK_TAG, ctx, pub.key_id)
    transcript.append_int("c", big_c, pub.ciphertext_bytes)
    transcript.append_int("a", a, pub.ciphertext_bytes)
    return transcript.challenge()


def prove_plaintext_knowledge(
    pub: PaillierPublicKey,
    ctx: ProofContext,
    ciphertexts: Sequence[Ciphertext],
    plaintexts: Sequence[int],
    randomness: Sequence[int],
) -> PlaintextProof:
    """Prove knowledge of (M_k, r_k) with c_k = (1 + N)^{M_k} r_k^N for all k (CRYPTO.md §5).

    Batch: γ from the transcript, C = Π c_k^{γ_k}, M* = Σ γ_k M_k mod N, r* = Π r_k^{γ_k} mod N.
    Then x ← Z_N, s ← Z*_N, a = (1 + N)^x s^N mod N², e = H(tag, context, C, a) mod 2^λ,
    z₁ = (x + e·M*) mod N, z₂ = s · r*^e mod N. Perfect honest-verifier zero knowledge: z₁ is
    uniform in Z_N and z₂ uniform in Z*_N.

    Args:
        pub: the Paillier public key.
        ctx: session, round and proving party.
        ciphertexts: c_1..c_K under ``pub``.
        plaintexts: M_k, 0 ≤ M_k < N (secret).
        randomness: r_k from :meth:`PaillierPublicKey.raw_encrypt` (secret).
    """
    values = _ciphertext_values(pub, ciphertexts)
    if not len(values) == len(plaintexts) == len(randomness):
        raise ValueError("ciphertexts, plaintexts and randomness differ in length")
    gammas, big_c = _pok_batch(pub, ctx, values)
    checked = [int(pub.check_plaintext(m)) for m in plaintexts]
    m_star = sum(g * m for g, m in zip(gammas, checked, strict=True)) % pub.n
    r_star = multi_exp(randomness, gammas, pub.n)
    x = gmpy2.mpz(secrets.randbelow(int(pub.n)))
    s = random_unit(pub.n)
    a = (1 + x * pub.n) * gmpy2.powmod(s, pub.n, pub.nsquare) % pub.nsquare
    e = _pok_challenge(pub, ctx, int(big_c), int(a))
    z1 = (x + e * m_star) % pub.n
    z2 = s * gmpy2.powmod(r_star, e, pub.n) % pub.n
    return PlaintextProof(int(a), int(z1), int(z2))


def verify_plaintext_knowledge(
    pub: PaillierPublicKey,
    ctx: ProofContext,
    ciphertexts: Sequence[Ciphertext],
    proof: PlaintextProof,
) -> None:
    """Check a :class:`PlaintextProof` (CRYPTO.md §5); public data only.

    Checks 0 ≤ z₁ < N, 0 < z₂ < N with gcd(z₂, N) = 1, a and every c_k units in (0, N²), then
    ``(1 + N)^{z₁} · z₂^N ≡ a · C^e (mod N²)`` with γ, C and e recomputed.

    Raises:
        CryptoError: the proof does not verify (the message says which check failed).
        ValueError: ciphertexts under another key, or none.
    """
    values = _ciphertext_values(pub, ciphertexts)
    if not 0 <= proof.z1 < pub.n:
        raise CryptoError("plaintext proof: z1 out of range")
    if not 0 < proof.z2 < pub.n or gmpy2.gcd(proof.z2, pub.n) != 1:
        raise CryptoError("plaintext proof: z2 is not a unit mod N")
    a = _units([proof.a], pub, "plaintext proof commitment")[0]
    _, big_c = _pok_batch(pub, ctx, values)
    e = _pok_challenge(pub, ctx, int(big_c), int(a))
    left = (1 + proof.z1 * pub.n) * gmpy2.powmod(proof.z2, pub.n, pub.nsquare) % pub.nsquare
    right = a * gmpy2.powmod(big_c, e, pub.nsquare) % pub.nsquare
    if left != right:
        raise CryptoError("plaintext proof: verification equation fails")


# -- §6: proof of correct decryption shares ------------------------------------------------------
@dataclass(frozen=True)
class ShareProof:
    """Batched equality-of-discrete-logs proof: a = c*^{4ρ}, b = v^ρ, z = ρ + e·Δ s_i."""

    a: int
    b: int
    z: int

    domain: ClassVar[str] = "zkadapt/share-proof/v1"

    def to_bytes(self) -> bytes:
        """Canonical JSON with hex integers."""
        doc: dict[str, Any] = {"domain": self.domain}
        doc.update({f: int_to_hex(getattr(self, f)) for f in ("a", "b", "z")})
        return canonical_json(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareProof:
        """Inverse of :meth:`to_bytes` (ranges are checked by the verifier)."""
        return cls(**_parse(data, cls.domain, ("a", "b", "z")))


def _nonce_bits(public: ThresholdPublicKey) -> int:
    """|ρ| = |s| + 2λ + ⌈log₂ Δ⌉ with |s| = ``public.share_bits`` (2|N| for dealt keys, where
    s_i < N²), so that ρ statistically hides e·Δ·s_i."""
    return public.share_bits + 2 * LAMBDA + (public.delta - 1).bit_length()


def _share_batch(
    public: ThresholdPublicKey,
    index: int,
    ctx: ProofContext,
    values: Sequence[int],
    shares: Sequence[int],
) -> tuple[gmpy2.mpz, gmpy2.mpz]:
    """γ_k = H(share-batch tag, context, i, all c, all c_i, k); returns (c*, c_i*)."""
    pub = public.paillier
    transcript = Transcript(SHARE_BATCH_TAG, ctx, pub.key_id)
    transcript.append_int("index", index, 8)
    transcript.append_int("count", len(values), 8)
    for label, column in (("c", values), ("c_i", shares)):
        for value in column:
            transcript.append_int(label, value, pub.ciphertext_bytes)
    gammas = _batch_coefficients(transcript, len(values))
    return multi_exp(values, gammas, pub.nsquare), multi_exp(shares, gammas, pub.nsquare)


def _share_challenge(
    public: ThresholdPublicKey, index: int, ctx: ProofContext, items: Sequence[int]
) -> int:
    """e = H(share tag, context, i, c*⁴, c_i*², v, v_i, a, b) mod 2^λ."""
    pub = public.paillier
    transcript = Transcript(SHARE_TAG, ctx, pub.key_id)
    transcript.append_int("index", index, 8)
    for label, value in zip(("c4", "ci2", "v", "v_i", "a", "b"), items, strict=True):
        transcript.append_int(label, value, pub.ciphertext_bytes)
    return transcript.challenge()


def prove_decryption_shares(
    key_share: KeyShare,
    ctx: ProofContext,
    ciphertexts: Sequence[Ciphertext],
    shares: Sequence[int],
) -> ShareProof:
    """Prove ``log_{c*⁴}(c_i*²) = log_v(v_i)`` (= Δ s_i) for the batch (CRYPTO.md §6).

    ρ uniform in [0, 2^{|s| + 2λ + ⌈log₂ Δ⌉}) (|s| = 2|N| for dealt keys), a = c*^{4ρ}, b = v^ρ,
    e = H(tag, context, c*⁴, c_i*², v, v_i, a, b) mod 2^λ and z = ρ + e·Δ s_i over the integers.

    Args:
        key_share: party i's share (secret).
        ctx: session, round and proving party.
        ciphertexts: the aggregate ciphertexts c_k.
        shares: c_{i,k} = ``key_share.decryption_share(c_k)``.
    """
    public = key_share.public
    pub = public.paillier
    values = _ciphertext_values(pub, ciphertexts)
    share_values = [int(v) for v in _units(shares, pub, "decryption share")]
    if len(share_values) != len(values):
        raise ValueError("ciphertexts and shares differ in length")
    c_star, ci_star = _share_batch(public, key_share.index, ctx, values, share_values)
    c4, ci2 = gmpy2.powmod(c_star, 4, pub.nsquare), gmpy2.powmod(ci_star, 2, pub.nsquare)
    rho = gmpy2.mpz(secrets.randbits(_nonce_bits(public)))
    a = gmpy2.powmod(c4, rho, pub.nsquare)
    b = gmpy2.powmod(public.v, rho, pub.nsquare)
    v_i = public.verification_key(key_share.index)
    e = _share_challenge(public, key_share.index, ctx, (c4, ci2, public.v, v_i, a, b))
    return ShareProof(int(a), int(b), int(rho + e * key_share.exponent))


def decrypt_and_prove(
    key_share: KeyShare, ctx: ProofContext, ciphertexts: Sequence[Ciphertext]
) -> tuple[list[int], ShareProof]:
    """Party i's decryption shares of every ciphertext and one batched proof for them."""
    shares = [key_share.decryption_share(c) for c in ciphertexts]
    return shares, prove_decryption_shares(key_share, ctx, ciphertexts, shares)


def verify_decryption_shares(
    public: ThresholdPublicKey,
    index: int,
    ctx: ProofContext,
    ciphertexts: Sequence[Ciphertext],
    shares: Sequence[int],
    proof: ShareProof,
) -> None:
    """Check party ``index``'s shares against its verification key (CRYPTO.md §6).

    Checks that a, b and every c_k, c_{i,k} are units in (0, N²), 0 ≤ z < 2^{|ρ|} + 2^λ·Δ·2^{|s|},
    then ``c*^{4z} ≡ a · (c_i*²)^e`` and ``v^z ≡ b · v_i^e (mod N²)`` with γ, c*, c_i* and e
    recomputed. A failure means at least one share is wrong; reject all of this party's shares.

    Raises:
        CryptoError: the proof does not verify (the message says which check failed).
        ValueError: ciphertexts under another key, none, or mismatched lengths.
    """
    pub = public.paillier
    values = _ciphertext_values(pub, ciphertexts)
    share_values = [int(v) for v in _units(shares, pub, "decryption share")]
    if len(share_values) != len(values):
        raise ValueError("ciphertexts and shares differ in length")
    v_i = public.verification_key(index)
    a, b = _units([proof.a, proof.b], pub, "share proof commitment")
    bound = (1 << _nonce_bits(public)) + ((public.delta << LAMBDA) << public.share_bits)
    if not 0 <= proof.z < bound:
        raise CryptoError("share proof: z out of range")
    c_star, ci_star = _share_batch(public, index, ctx, values, share_values)
    c4, ci2 = gmpy2.powmod(c_star, 4, pub.nsquare), gmpy2.powmod(ci_star, 2, pub.nsquare)
    e = _share_challenge(public, index, ctx, (c4, ci2, public.v, v_i, a, b))
    n2 = pub.nsquare
    if gmpy2.powmod(c4, proof.z, n2) != a * gmpy2.powmod(ci2, e, n2) % n2:
        raise CryptoError(f"share proof of party {index}: ciphertext equation fails")
    if gmpy2.powmod(public.v, proof.z, n2) != b * gmpy2.powmod(v_i, e, n2) % n2:
        raise CryptoError(f"share proof of party {index}: verification-key equation fails")


def proof_size_bytes(proof: PlaintextProof | ShareProof) -> int:
    """Size of the proof's canonical encoding, for benchmarks and reports."""
    return len(proof.to_bytes())
