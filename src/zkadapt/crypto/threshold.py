"""Threshold Paillier: dealing, decryption shares and combination (CRYPTO.md §1 and §4).

The construction is Shoup's threshold RSA (EUROCRYPT 2000) as adapted to Paillier by
Damgård–Jurik (PKC 2001, §4), with safe primes p = 2p' + 1, q = 2q' + 1, N = pq, m = p'q':

* d ≡ 0 (mod m) and d ≡ 1 (mod N), i.e. ``d = m · (m^{−1} mod N)``. For any c ∈ Z*_{N²},
  ``c^{4d} = (1 + N)^{4M}`` where M is the plaintext: the r^N part has order dividing 2Nm.
* ``dealer`` (t-of-n): Shamir shares s_i = f(i) mod Nm of d, degree t − 1, Δ = n!.
  ``additive`` (n-of-n): d = Σ s_i mod Nm, Δ = 1, μ_i = 1 (every party must take part).
* Verification keys: v = x² mod N² for a random x, ``v_i = v^{Δ s_i} mod N²`` (public; the
  proofs of :mod:`zkadapt.crypto.proofs` show a share uses the same Δ s_i as v_i).
* Party i's decryption share of c: ``c_i = c^{2Δ s_i} mod N²``.
* Any set S of t shares: ``c' = Π_{i∈S} c_i^{2μ_i} = (1 + N)^{4Δ²θ M}`` with the integer
  Lagrange coefficients μ_i of :func:`zkadapt.crypto.sharing.lagrange_coefficients`, and
  ``M = L(c') · (4Δ²θ)^{−1} mod N`` with L(u) = (u − 1)/N. θ = d mod N is public: 1 for dealt
  keys (d ≡ 1 mod N), and the opened θ = φβ mod N for ``distributed`` keys
  (:mod:`zkadapt.crypto.distributed_keygen`, Nishide–Sakurai 2010 / Veugen et al. 2019), whose
  d = φβ is shared over the integers (shares below 2^share_bits, not reduced mod anything).

No private key is ever reconstructed: d, p, q and m exist only inside
:func:`deal_threshold_key`, which returns the shares and keeps nothing. Fewer than t shares
reveal nothing about M beyond what their holders already know.

Key refresh (``privacy.refresh_every``) is dealing again: a new N, new shares and a new key id;
ciphertexts under the old key stay decryptable only by the old shares.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gmpy2

from zkadapt.crypto.paillier import (
    Ciphertext,
    PaillierPublicKey,
    canonical_json,
    generate_safe_primes,
    hex_to_int,
    int_to_hex,
    parse_canonical_json,
    random_unit,
)
from zkadapt.crypto.sharing import (
    additive_share,
    factorial_delta,
    lagrange_coefficients,
    shamir_share,
)
from zkadapt.errors import CryptoError

KEYGEN_MODES = ("dealer", "additive")
"""Dealt key-generation modes (``privacy.keygen``) that :func:`deal_threshold_key` makes."""

KEY_MODES = (*KEYGEN_MODES, "distributed")
"""Every mode a :class:`ThresholdPublicKey` can have; ``distributed`` keys have no dealer."""

STAT_BITS = 80
"""σ: statistical hiding of the integer sharings of a ``distributed`` key (distance 2^−σ)."""


def distributed_bounds(bits: int, n: int, t: int) -> dict[str, int]:
    """Bit bounds of the integer values of a ``distributed`` key (|N| = ``bits``, t-of-n).

    With L = ⌈log₂ n⌉ + 1 and σ = :data:`STAT_BITS`: β_i < 2^{|N|+σ}, R_i < 2^{|N|+2σ+L},
    |d_i| < 2^D with D = 2|N| + 2σ + 2L + 1, polynomial coefficients < 2^A with
    A = D + σ + 2⌈log₂ Δ⌉ (Rabin 1998: integer sharing hides a Δ-scaled secret), and every
    final share 0 < s_j < 2^share (s_j = d + Σ_m A_m j^m with all A_m ≥ 0 and d > 0).
    """
    log_n = (n - 1).bit_length() + 1
    log_delta = (factorial_delta(n) - 1).bit_length()
    beta = bits + STAT_BITS
    mask = bits + 2 * STAT_BITS + log_n
    secret = 2 * bits + 2 * STAT_BITS + 2 * log_n + 1
    coefficient = secret + STAT_BITS + 2 * log_delta
    spread = (t - 1) * n * n ** (t - 1) + 1
    share = coefficient + log_n + spread.bit_length() + 1
    return {
        "beta": beta,
        "mask": mask,
        "secret": secret,
        "coefficient": coefficient,
        "share": share,
    }


def pow_signed(base: int, exponent: int, modulus: int) -> gmpy2.mpz:
    """``base^exponent mod modulus``; a negative exponent inverts the base first."""
    if exponent < 0:
        return gmpy2.powmod(gmpy2.invert(base, modulus), -exponent, modulus)
    return gmpy2.powmod(base, exponent, modulus)


def _is_unit(value: int, public: PaillierPublicKey) -> bool:
    return 0 < value < public.nsquare and gmpy2.gcd(value, public.n) == 1


@dataclass(frozen=True)
class ThresholdPublicKey:
    """Everything public about a threshold key: (N, h, v, v_1..v_n, t, n, mode) (CRYPTO.md §1).

    Attributes:
        paillier: the Paillier public key (N and the DJN base h); it encrypts.
        t: the number of shares that decrypt (t = n for ``additive``).
        n: the number of parties; party indices are 1..n.
        mode: ``"dealer"`` (Shamir, Δ = n!), ``"additive"`` (Δ = 1) or ``"distributed"``
            (integer Shamir shares of d = φβ made without a dealer, Δ = n!).
        v: a random square mod N²; ``verification_keys[i − 1] = v^{Δ s_i} mod N²``. Checked
            publicly: a unit with (v|N) = 1 and gcd(v − 1, N) = 1 (so v mod N is not of small
            order and v_i does not leak s_i mod N).
        theta: θ = d mod N, a unit mod N: 1 for dealt keys (d ≡ 1 mod N), the opened φβ mod N
            for distributed keys; combination multiplies by θ^{−1} (CRYPTO.md §4).
    """

    paillier: PaillierPublicKey
    t: int
    n: int
    mode: str
    v: int
    verification_keys: tuple[int, ...] = field(repr=False)
    theta: int = 1

    domain: ClassVar[str] = "zkadapt/threshold-public-key/v1"

    def __post_init__(self) -> None:
        if self.mode not in KEY_MODES:
            raise ValueError(f"mode must be one of {KEY_MODES}, got {self.mode!r}")
        if not 1 <= self.t <= self.n:
            raise ValueError(f"need 1 ≤ t ≤ n, got t={self.t}, n={self.n}")
        if self.mode == "additive" and self.t != self.n:
            raise ValueError("additive keys are n-of-n: t must equal n")
        keys = tuple(int(k) for k in self.verification_keys)
        object.__setattr__(self, "verification_keys", keys)
        object.__setattr__(self, "v", int(self.v))
        if len(keys) != self.n:
            raise CryptoError(f"expected {self.n} verification keys, got {len(keys)}")
        pub = self.paillier
        v_mod_n = self.v % pub.n
        if (
            not _is_unit(self.v, pub)
            or gmpy2.jacobi(v_mod_n, pub.n) != 1
            or gmpy2.gcd(v_mod_n - 1, pub.n) != 1
        ):
            raise CryptoError("v must be a unit square mod N² of large order")
        if not all(_is_unit(k, pub) for k in keys):
            raise CryptoError("every verification key must be a unit mod N²")
        object.__setattr__(self, "theta", int(self.theta))
        if self.mode != "distributed" and self.theta != 1:
            raise CryptoError("only distributed keys have θ ≠ 1")
        if not 0 < self.theta < pub.n or gmpy2.gcd(self.theta, pub.n) != 1:
            raise CryptoError("θ must be a unit mod N")

    @property
    def key_id(self) -> str:
        """SHA-256 (hex) of N, the same id as the Paillier key's."""
        return self.paillier.key_id

    @property
    def delta(self) -> int:
        """Δ = n! for ``dealer`` and ``distributed`` keys and 1 for ``additive`` keys."""
        return 1 if self.mode == "additive" else factorial_delta(self.n)

    @property
    def share_bits(self) -> int:
        """Public bound on the key shares: 0 ≤ s_i < 2^share_bits (proof nonces hide Δ·s_i).

        Dealt shares are reduced mod Nm < N², so 2|N|; distributed shares are integers bounded
        by :func:`distributed_bounds`.
        """
        if self.mode == "distributed":
            return distributed_bounds(self.paillier.bits, self.n, self.t)["share"]
        return 2 * self.paillier.bits

    def verification_key(self, index: int) -> int:
        """v_i for party index 1 ≤ i ≤ n."""
        if not 1 <= index <= self.n:
            raise ValueError(f"party index must be in 1..{self.n}, got {index}")
        return self.verification_keys[index - 1]

    def lagrange(self, indices: list[int]) -> dict[int, int]:
        """μ_i for the set ``indices`` (all 1 for ``additive`` keys, which need every index)."""
        if self.mode == "additive":
            return dict.fromkeys(indices, 1)
        return lagrange_coefficients(indices, self.delta)

    def to_bytes(self) -> bytes:
        """Canonical JSON with hex integers and the domain tag (the one wire form).

        ``theta`` is written only for distributed keys (dealt keys keep their old encoding).
        """
        doc: dict[str, Any] = {
            "domain": self.domain,
            "key_id": self.key_id,
            "paillier": self.paillier.to_dict(),
            "t": self.t,
            "n": self.n,
            "mode": self.mode,
            "v": int_to_hex(self.v),
            "verification_keys": [int_to_hex(k) for k in self.verification_keys],
        }
        if self.mode == "distributed":
            doc["theta"] = int_to_hex(self.theta)
        return canonical_json(doc)

    @classmethod
    def from_bytes(cls, data: bytes) -> ThresholdPublicKey:
        """Inverse of :meth:`to_bytes`; every field is validated (CryptoError if unusable)."""
        doc = parse_canonical_json(data, cls.domain)
        expected = {"domain", "key_id", "paillier", "t", "n", "mode", "v", "verification_keys"}
        if doc.get("mode") == "distributed":
            expected.add("theta")
        if set(doc) != expected:
            raise CryptoError(f"{cls.domain}: unexpected fields {sorted(doc)}")
        if not isinstance(doc["paillier"], dict) or not isinstance(doc["verification_keys"], list):
            raise CryptoError(f"{cls.domain}: malformed key")
        if any(isinstance(doc[k], bool) or not isinstance(doc[k], int) for k in ("t", "n")):
            raise CryptoError(f"{cls.domain}: t and n must be integers")
        paillier = PaillierPublicKey.from_dict(doc["paillier"])
        if paillier.key_id != doc["key_id"]:
            raise CryptoError(f"key id {doc['key_id']} does not match N ({paillier.key_id})")
        try:
            return cls(
                paillier=paillier,
                t=doc["t"],
                n=doc["n"],
                mode=doc["mode"],
                v=hex_to_int(doc["v"], "v"),
                verification_keys=tuple(
                    hex_to_int(k, "verification_keys") for k in doc["verification_keys"]
                ),
                theta=hex_to_int(doc["theta"], "theta") if "theta" in doc else 1,
            )
        except ValueError as exc:
            raise CryptoError(f"unusable threshold key: {exc}") from exc


class KeyShare:
    """Party ``index``'s share s_i of d (secret), bound to its :class:`ThresholdPublicKey`.

    The share is the only secret a party holds; its ``__repr__`` is redacted and it never
    appears in an exception. It is sealed to the party's X25519 key for transport.
    """

    domain: ClassVar[str] = "zkadapt/threshold-key-share/v1"

    def __init__(self, public: ThresholdPublicKey, index: int, share: int) -> None:
        if not 1 <= index <= public.n:
            raise ValueError(f"party index must be in 1..{public.n}, got {index}")
        if not 0 <= share < (1 << public.share_bits):
            raise ValueError("share out of range")
        self.public = public
        self.index = index
        self._share = gmpy2.mpz(share)

    def __repr__(self) -> str:
        return f"KeyShare(index={self.index}, key_id={self.public.key_id[:16]}…, <redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("key shares are not picklable; use to_bytes and seal the result")

    @property
    def exponent(self) -> gmpy2.mpz:
        """Δ·s_i, the discrete log of v_i to the base v (secret; used by the share proof)."""
        return self.public.delta * self._share

    def check(self) -> None:
        """Check ``v^{Δ s_i} = v_i`` (CryptoError if the share does not match the public key)."""
        pub = self.public
        if gmpy2.powmod(pub.v, self.exponent, pub.paillier.nsquare) != pub.verification_key(
            self.index
        ):
            raise CryptoError(f"key share {self.index} does not match its verification key")

    def decryption_share(self, c: Ciphertext) -> int:
        """Party i's decryption share ``c_i = c^{2Δ s_i} mod N²`` (CRYPTO.md §4).

        Args:
            c: a ciphertext under this key (ValueError on a key mismatch, CryptoError if it is
                not a unit mod N²).

        Returns:
            c_i ∈ Z*_{N²}, public once posted (with its proof, :mod:`zkadapt.crypto.proofs`).
        """
        pub = self.public.paillier
        if not isinstance(c, Ciphertext):
            raise TypeError(f"expected a Ciphertext, got {type(c).__name__}")
        if c.key_id != pub.key_id:
            raise ValueError(f"ciphertext is under key {c.key_id}, not {pub.key_id}")
        value = pub.ciphertext(c.value).value
        return int(pow_signed(value, 2 * self.exponent, pub.nsquare))

    def to_bytes(self) -> bytes:
        """Canonical JSON ``{domain, key_id, index, share}`` (secret: seal it before it leaves)."""
        return canonical_json(
            {
                "domain": self.domain,
                "key_id": self.public.key_id,
                "index": self.index,
                "share": int_to_hex(self._share),
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, public: ThresholdPublicKey) -> KeyShare:
        """Inverse of :meth:`to_bytes` for the given public key; checks v^{Δ s_i} = v_i.

        Raises:
            CryptoError: malformed bytes, another key's share, or a share that does not match
                its verification key.
        """
        doc = parse_canonical_json(data, cls.domain)
        if set(doc) != {"domain", "key_id", "index", "share"}:
            raise CryptoError(f"{cls.domain}: unexpected fields {sorted(doc)}")
        if doc["key_id"] != public.key_id:
            raise CryptoError(f"key share is for key {doc['key_id']}, not {public.key_id}")
        index = doc["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= public.n:
            raise CryptoError(f"{cls.domain}: bad party index")
        try:
            share = cls(public, index, hex_to_int(doc["share"], "share"))
        except ValueError as exc:
            raise CryptoError(f"{cls.domain}: {exc}") from exc
        share.check()
        return share


def combine(public: ThresholdPublicKey, shares: Mapping[int, int]) -> int:
    """Decrypt from decryption shares ``{party index: c_i}`` (CRYPTO.md §4).

    Uses the t shares with the smallest indices (so every party computes the same thing):
    ``c' = Π c_i^{2μ_i} mod N²`` (negative μ_i invert c_i) and
    ``M = L(c') · (4Δ²θ)^{−1} mod N`` (θ = 1 except for distributed keys).
    Correct shares always give c' ≡ 1 (mod N); anything else means a bad share and raises.
    Shares are not verified individually here: check their proofs first
    (:func:`zkadapt.crypto.proofs.verify_decryption_shares`) so that a wrong share is rejected
    and the others still decrypt.

    Returns:
        The plaintext 0 ≤ M < N.

    Raises:
        CryptoError: fewer than t shares, an index outside 1..n, a share that is not a unit
            mod N², or shares that do not combine to an element of the form (1 + N)^x.
    """
    pub = public.paillier
    if len(shares) < public.t:
        raise CryptoError(f"need {public.t} decryption shares, got {len(shares)}")
    indices = sorted(shares)[: public.t]
    if any(type(i) is not int or not 1 <= i <= public.n for i in indices):
        raise CryptoError(f"decryption share indices must be in 1..{public.n}")
    if not all(_is_unit(shares[i], pub) for i in indices):
        raise CryptoError("a decryption share is not a unit mod N²")
    acc = gmpy2.mpz(1)
    for i, mu in public.lagrange(indices).items():
        acc = acc * pow_signed(shares[i], 2 * mu, pub.nsquare) % pub.nsquare
    if acc % pub.n != 1:
        raise CryptoError("decryption shares are inconsistent (combined value is not 1 mod N)")
    scale = gmpy2.invert(4 * public.delta**2 * public.theta, pub.n)
    return int((acc - 1) // pub.n * scale % pub.n)


def _check_safe_primes(p: int, q: int, n: int) -> None:
    for prime in (p, q):
        if not (gmpy2.is_prime(prime, 30) and gmpy2.is_prime((prime - 1) // 2, 30)):
            raise ValueError("p and q must be safe primes")
    if p == q:
        raise ValueError("p and q must differ")
    if min(p, q) // 2 <= n:
        raise ValueError("p' and q' must exceed the number of parties")


def deal_threshold_key(
    bits: int,
    t: int,
    n: int,
    mode: str = "dealer",
    *,
    primes: tuple[int, int] | None = None,
) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    """Deal a fresh threshold key (CRYPTO.md §1; Shoup 2000, Damgård–Jurik PKC 2001 §4).

    The dealer (a key-generation centre or one party) computes N = pq from fresh safe primes,
    d = m · (m^{−1} mod N) with m = p'q', shares d over Z_{Nm} (Shamir degree t − 1 for
    ``dealer``; additive for ``additive``), draws v = x² mod N² and the DJN base h, and computes
    v_i = v^{Δ s_i}. p, q, m, d and the polynomial are local variables and are dropped on
    return; nothing is kept.

    The caller must seal ``shares[i − 1]`` to party i (X25519) at once, publish only the
    returned public key, and drop the share objects. Refreshing a key is dealing again.

    Args:
        bits: |N| (``DEFAULT_KEY_BITS`` = 2048 in production, 3072 selectable; small sizes
            for tests only).
        t: threshold, 1 ≤ t ≤ n (must equal n for ``additive``).
        n: number of parties.
        mode: ``"dealer"`` or ``"additive"``.
        primes: two distinct safe primes to use instead of fresh ones (tests, known-answer
            vectors); their product must have ``bits`` bits.

    Returns:
        The public key and the n key shares, ``shares[i − 1].index == i`` (secret).
    """
    if mode not in KEYGEN_MODES:
        raise ValueError(f"mode must be one of {KEYGEN_MODES}, got {mode!r}")
    if not 1 <= t <= n or (mode == "additive" and t != n):
        raise ValueError(f"bad threshold t={t} for n={n} in mode {mode!r}")
    p, q = primes if primes is not None else generate_safe_primes(bits)
    _check_safe_primes(p, q, n)
    big_n = gmpy2.mpz(p) * q
    if big_n.bit_length() != bits:
        raise ValueError(f"p·q has {big_n.bit_length()} bits, expected {bits}")
    m = gmpy2.mpz((p - 1) // 2) * ((q - 1) // 2)
    d = int(m * gmpy2.invert(m, big_n))
    modulus = int(big_n * m)
    if mode == "dealer":
        secret_shares, delta = shamir_share(d, t, n, modulus), factorial_delta(n)
    else:
        secret_shares, delta = additive_share(d, n, modulus), 1
    paillier = PaillierPublicKey(int(big_n))
    x = random_unit(paillier.nsquare)
    v = x * x % paillier.nsquare
    verification_keys = tuple(
        int(gmpy2.powmod(v, delta * secret_shares[i], paillier.nsquare)) for i in range(1, n + 1)
    )
    public = ThresholdPublicKey(paillier, t, n, mode, int(v), verification_keys)
    return public, [KeyShare(public, i, secret_shares[i]) for i in range(1, n + 1)]


# -- many shares in parallel -------------------------------------------------------------------

_forked_share: KeyShare | None = None


def _shares_chunk(values: list[int]) -> list[int]:
    share = _forked_share
    if share is None:  # pragma: no cover - only if the pool was not forked from the parent
        raise RuntimeError("worker has no key share")
    key_id = share.public.key_id
    return [share.decryption_share(Ciphertext(v, key_id)) for v in values]


def decryption_shares_many(
    share: KeyShare, ciphertexts: Sequence[Ciphertext], workers: int | None = None
) -> list[int]:
    """``share.decryption_share`` of every ciphertext, spread over worker processes.

    Decryption shares dominate a large round (a 2|N|-bit exponentiation each, CRYPTO.md §7).
    The key share never crosses a pipe: workers are *forked* after it is placed in a module
    global, so they inherit it in memory (it refuses to be pickled), and the global is cleared
    again at once. Where ``fork`` is unavailable, or for small inputs, this stays in-process.

    Args:
        share: this party's key share (secret).
        ciphertexts: the aggregate ciphertexts, under ``share``'s key.
        workers: process count; ``None`` means ``os.cpu_count()``.
    """
    global _forked_share
    count = workers if workers is not None else (os.cpu_count() or 1)
    fork_ok = "fork" in multiprocessing.get_all_start_methods()
    if count <= 1 or len(ciphertexts) < 4 * count or not fork_ok:
        return [share.decryption_share(c) for c in ciphertexts]
    for c in ciphertexts:
        if c.key_id != share.public.key_id:
            raise ValueError(
                f"ciphertext under key {c.key_id[:12]}, share under {share.public.key_id[:12]}"
            )
    values = [c.value for c in ciphertexts]
    size = -(-len(values) // (4 * count))
    chunks = [values[i : i + size] for i in range(0, len(values), size)]
    _forked_share = share
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            return [v for chunk in pool.map(_shares_chunk, chunks) for v in chunk]
    finally:
        _forked_share = None
