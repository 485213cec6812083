"""Paillier encryption with g = N + 1 and Damgård–Jurik–Nielsen fast encryption.

This is the single-key core that the threshold scheme (:mod:`zkadapt.crypto.threshold`) and the
proofs (:mod:`zkadapt.crypto.proofs`) build on. Equations follow CRYPTO.md §1–§2.

* Paillier (EUROCRYPT 1999) with g = 1 + N: ``Enc(m; r) = (1 + N)^m · r^N = (1 + mN) · r^N mod N²``
  for 0 ≤ m < N and r ∈ Z*_N. ``(1 + N)^m = 1 + mN mod N²`` is why g = N + 1 is cheap.
* Homomorphism: ``Enc(a) · Enc(b) = Enc(a + b mod N)`` and ``Enc(a)^k = Enc(k·a mod N)``.
* Fast encryption (CRYPTO.md §2; Damgård–Jurik–Nielsen 2010, the short-exponent variant of
  Damgård–Jurik PKC 2001): per key, h = −x² mod N for a random x ∈ Z*_N and hN = h^N mod N².
  ``Enc(m) = (1 + mN) · hN^α mod N²`` with α uniform in [0, 2^⌈|N|/2⌉). It is the textbook
  ciphertext for r = h^α mod N, since (h^α + jN)^N ≡ h^{αN} (mod N²); r is returned because the
  proofs need it. hN^α and h^α are computed from fixed-base window tables (no squarings), built
  lazily once per key and cached. Its security rests on the extra assumption that a short
  exponent α hides hN^α as well as a full one does (DJN 2010, §4); textbook mode (r uniform in
  Z*_N) needs only Paillier's decisional composite residuosity assumption.

Everything on :class:`PaillierPublicKey` is public: N and h (h reveals nothing, finding x
means taking square roots mod N, i.e. factoring). Secret: p, q (only in
:class:`PaillierPrivateKey`, for tests and single-party use), and the randomness r or α of each
ciphertext (r opens the ciphertext: ``(1 + mN) = c · r^{−N}``).

Ranges are checked at the primitive: a plaintext must satisfy 0 ≤ m < N (``ValueError``, never a
silent wrap), and a ciphertext received from elsewhere must be a unit in (0, N²)
(:class:`~zkadapt.errors.CryptoError`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import gmpy2

from zkadapt.bounded_json import JsonLimitError, loads_bounded
from zkadapt.errors import CryptoError

DEFAULT_KEY_BITS = 2048
"""Modulus size used when none is given (DESIGN.md §4; 3072 is selectable)."""

MIN_KEY_BITS = 64
"""Smallest modulus accepted at all; anything under 2048 bits is for tests only."""

WINDOW_BITS = 8
"""Window width of the fixed-base tables: ⌈L/8⌉ multiplications per exponentiation."""

_SIEVE_BOUND = 1 << 15
_SIEVE_LENGTH = 1 << 16


def _nbytes(value: int) -> int:
    return (int(value).bit_length() + 7) // 8


def _mpz(value: Any) -> gmpy2.mpz:
    """Convert an integer (``int`` or ``mpz``, not ``bool``) to ``mpz`` or raise TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, gmpy2.mpz)):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return gmpy2.mpz(value)


#: Largest crypto object (key, share, proof) parsed from JSON; big numbers are hex strings.
MAX_OBJECT_JSON_BYTES = 64 * 1024 * 1024


def canonical_json(doc: dict[str, Any]) -> bytes:
    """Encode ``doc`` as canonical JSON: sorted keys, no spaces, ASCII only (STYLE.md rule 6)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def parse_canonical_json(data: bytes, domain: str) -> dict[str, Any]:
    """Parse bytes written by :func:`canonical_json` and check the ``domain`` tag.

    Raises:
        CryptoError: the bytes are not canonical JSON for an object of this domain.
    """
    try:
        doc = loads_bounded(data, max_bytes=MAX_OBJECT_JSON_BYTES)
    except JsonLimitError as exc:
        raise CryptoError(f"{domain}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("domain") != domain:
        raise CryptoError(f"expected an object with domain {domain!r}")
    if canonical_json(doc) != bytes(data):
        raise CryptoError(f"{domain}: encoding is not canonical")
    return doc


def int_to_hex(value: int) -> str:
    """The one big-integer encoding on the wire: lowercase hex, no prefix, no leading zeros."""
    if value < 0:
        raise ValueError("only non-negative integers are encoded")
    return format(int(value), "x")


def hex_to_int(text: Any, field: str) -> int:
    """Inverse of :func:`int_to_hex`; rejects any other spelling with CryptoError."""
    if not isinstance(text, str) or not text or any(ch not in "0123456789abcdef" for ch in text):
        raise CryptoError(f"{field}: expected lowercase hex")
    if len(text) > 1 and text[0] == "0":
        raise CryptoError(f"{field}: leading zeros are not canonical")
    return int(text, 16)


class FixedBaseTable:
    """Fixed-base windowed exponentiation: ``base^e mod modulus`` for 0 ≤ e < 2^exp_bits.

    ``rows[i][j] = base^(j · 2^(w·i))``, so ``base^e = Π_i rows[i][e_i]`` over the base-2^w
    digits e_i of e: ⌈exp_bits/w⌉ multiplications and no squarings. Building costs
    ⌈exp_bits/w⌉ · 2^w multiplications and as many stored residues (CRYPTO.md §2).
    """

    def __init__(self, base: int, modulus: int, exp_bits: int, window: int = WINDOW_BITS) -> None:
        self.modulus = gmpy2.mpz(modulus)
        self.exp_bits = exp_bits
        self.window = window
        self._mask = (1 << window) - 1
        rows: list[list[gmpy2.mpz]] = []
        step = gmpy2.mpz(base) % self.modulus
        for _ in range(-(-exp_bits // window)):
            row = [gmpy2.mpz(1), step]
            for _ in range(2, 1 << window):
                row.append(row[-1] * step % self.modulus)
            rows.append(row)
            step = row[-1] * step % self.modulus
        self.rows = rows

    def pow(self, exponent: int) -> gmpy2.mpz:
        """Return ``base^exponent mod modulus`` for 0 ≤ exponent < 2^exp_bits."""
        if not 0 <= exponent < (1 << self.exp_bits):
            raise ValueError(f"exponent outside [0, 2^{self.exp_bits})")
        acc = gmpy2.mpz(1)
        e = int(exponent)
        for row in self.rows:
            digit = e & self._mask
            if digit:
                acc = acc * row[digit] % self.modulus
            e >>= self.window
        return acc


@dataclass(frozen=True)
class Ciphertext:
    """A Paillier ciphertext ``value`` ∈ Z*_{N²} under the key whose id is ``key_id``.

    A plain value object: arithmetic goes through the key (:meth:`PaillierPublicKey.add`,
    :meth:`PaillierPublicKey.mul`), which refuses ciphertexts of another key.
    """

    value: int
    key_id: str

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            object.__setattr__(self, "value", int(_mpz(self.value)))
        if self.value <= 0:
            raise ValueError("a ciphertext is a positive integer")

    def to_bytes(self, width: int) -> bytes:
        """Fixed-width big-endian bytes (``width`` = byte length of N², from the key)."""
        return self.value.to_bytes(width, "big")


class PaillierPublicKey:
    """Public Paillier key: N (g = N + 1 implicit) and the DJN base h (CRYPTO.md §1–§2).

    Args:
        n: the modulus N = pq (odd, at least ``MIN_KEY_BITS`` bits).
        h: the DJN base h = −x² mod N. When ``None``, a fresh one is drawn; every valid h gives
            ciphertexts that decrypt under the same N (equality and the key id depend on N
            only), and a published key carries one fixed h (``to_bytes``). A given h is checked
            publicly (CryptoError): a unit with Jacobi symbol 1, and gcd(h ± 1, N) = 1 so that
            its order is a multiple of p'q'. A small-order h such as −1 would make hN^α take
            two values and DJN ciphertexts would not hide anything.

    Attributes:
        n, nsquare: N and N².
        h: the public DJN base; ``h_n = h^N mod N²`` (computed once).
        key_id: SHA-256 (hex) of N as ⌈|N|/8⌉ big-endian bytes; it names the key everywhere.
        exp_bits: ⌈|N|/2⌉, the bit length of the DJN exponent α.
    """

    domain = "zkadapt/paillier-public-key/v1"

    def __init__(self, n: int, h: int | None = None) -> None:
        n_ = _mpz(n)
        if n_ < (1 << (MIN_KEY_BITS - 1)) or n_ % 2 == 0:
            raise ValueError(f"N must be odd and at least {MIN_KEY_BITS} bits")
        self.n = n_
        self.nsquare = n_ * n_
        self.bits = int(n_.bit_length())
        self.exp_bits = -(-self.bits // 2)
        self.ciphertext_bytes = _nbytes(self.nsquare)
        if h is None:
            x = random_unit(n_)
            h_ = (-x * x) % n_
        else:
            h_ = _mpz(h)
            if not _is_large_order_base(h_, n_):
                raise CryptoError("DJN base h must be a unit mod N of large order, Jacobi symbol 1")
        self.h = h_
        self.h_n = gmpy2.powmod(h_, n_, self.nsquare)
        self.key_id = hashlib.sha256(int(n_).to_bytes(_nbytes(n_), "big")).hexdigest()
        self._tables: tuple[FixedBaseTable, FixedBaseTable] | None = None

    # -- value semantics, pickling (tables are a cache and never travel) --------------------
    def __eq__(self, other: object) -> bool:
        """Keys are equal when N is: h only speeds up encryption, any valid h gives ciphertexts
        that decrypt, combine and prove alike under N."""
        if not isinstance(other, PaillierPublicKey):
            return NotImplemented
        return self.n == other.n

    def __hash__(self) -> int:
        return hash(int(self.n))

    def __repr__(self) -> str:
        return f"PaillierPublicKey(bits={self.bits}, key_id={self.key_id[:16]}…)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PaillierPublicKey, (int(self.n), int(self.h)))

    # -- serialization ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, str]:
        """The key's fields, for embedding in a larger canonical document."""
        return {"n": int_to_hex(self.n), "h": int_to_hex(self.h)}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PaillierPublicKey:
        """Inverse of :meth:`to_dict`; validates N and h (CryptoError if unusable)."""
        try:
            return cls(hex_to_int(doc.get("n"), "n"), hex_to_int(doc.get("h"), "h"))
        except ValueError as exc:
            raise CryptoError(f"unusable Paillier key: {exc}") from exc

    def to_bytes(self) -> bytes:
        """Canonical JSON ``{"domain", "n", "h"}`` with hex integers."""
        return canonical_json({"domain": self.domain, **self.to_dict()})

    @classmethod
    def from_bytes(cls, data: bytes) -> PaillierPublicKey:
        """Inverse of :meth:`to_bytes`; validates before returning."""
        doc = parse_canonical_json(data, cls.domain)
        if set(doc) != {"domain", "n", "h"}:
            raise CryptoError(f"{cls.domain}: unexpected fields {sorted(doc)}")
        return cls.from_dict(doc)

    # -- encryption --------------------------------------------------------------------------
    @property
    def tables(self) -> tuple[FixedBaseTable, FixedBaseTable]:
        """(table for hN mod N², table for h mod N), built on first use and cached."""
        if self._tables is None:
            self._tables = (
                FixedBaseTable(self.h_n, self.nsquare, self.exp_bits),
                FixedBaseTable(self.h, self.n, self.exp_bits),
            )
        return self._tables

    def check_plaintext(self, m: int) -> gmpy2.mpz:
        """Return m as mpz after checking 0 ≤ m < N (ValueError otherwise; no wrapping)."""
        m_ = _mpz(m)
        if not 0 <= m_ < self.n:
            raise ValueError(f"plaintext outside [0, N) for key {self.key_id[:16]}")
        return m_

    def raw_encrypt_djn(self, m: int, alpha: int) -> tuple[int, int]:
        """DJN encryption with a given exponent: ``c = (1 + mN) · hN^α mod N²``, ``r = h^α mod N``.

        Deterministic; ``alpha`` must be fresh and uniform in [0, 2^exp_bits) and stays secret.
        Exposed for known-answer tests; use :meth:`raw_encrypt` otherwise.
        """
        m_ = self.check_plaintext(m)
        hn_table, h_table = self.tables
        c = (1 + m_ * self.n) * hn_table.pow(alpha) % self.nsquare
        return int(c), int(h_table.pow(alpha))

    def raw_encrypt_textbook(self, m: int, r: int) -> int:
        """Textbook encryption ``c = (1 + mN) · r^N mod N²`` for r ∈ Z*_N (secret, fresh)."""
        m_ = self.check_plaintext(m)
        r_ = _mpz(r)
        if not 0 < r_ < self.n or gmpy2.gcd(r_, self.n) != 1:
            raise ValueError("randomness r must be a unit in (0, N)")
        return int((1 + m_ * self.n) * gmpy2.powmod(r_, self.n, self.nsquare) % self.nsquare)

    def raw_encrypt(self, m: int, *, textbook: bool = False) -> tuple[int, int]:
        """Encrypt 0 ≤ m < N with fresh randomness; return ``(c, r)`` with c = (1+N)^m r^N mod N².

        Args:
            m: the plaintext, 0 ≤ m < N (ValueError otherwise).
            textbook: draw r uniformly from Z*_N (one full exponentiation mod N²) instead of the
                DJN short exponent (a table lookup per 8 bits of α; see the module docstring).

        Returns:
            The ciphertext c ∈ Z*_{N²} and its randomness r ∈ Z*_N (secret: it opens c).
        """
        if textbook:
            r = random_unit(self.n)
            return self.raw_encrypt_textbook(m, r), int(r)
        return self.raw_encrypt_djn(m, secrets.randbits(self.exp_bits))

    def encrypt(self, m: int, *, textbook: bool = False) -> Ciphertext:
        """Encrypt 0 ≤ m < N and wrap it as a :class:`Ciphertext` (randomness discarded)."""
        return Ciphertext(self.raw_encrypt(m, textbook=textbook)[0], self.key_id)

    # -- ciphertexts from elsewhere, homomorphic operations ----------------------------------
    def ciphertext(self, value: int) -> Ciphertext:
        """Validate a received ciphertext integer: 0 < c < N² and gcd(c, N) = 1.

        Raises:
            CryptoError: c is out of range or not a unit (it would leak or break decryption).
        """
        c = _mpz(value)
        if not 0 < c < self.nsquare or gmpy2.gcd(c, self.n) != 1:
            raise CryptoError(f"ciphertext is not a unit mod N² for key {self.key_id[:16]}")
        return Ciphertext(int(c), self.key_id)

    def ciphertext_from_bytes(self, data: bytes) -> Ciphertext:
        """Inverse of :meth:`Ciphertext.to_bytes` with this key's fixed width; validated."""
        if len(data) != self.ciphertext_bytes:
            raise CryptoError(f"ciphertext must be {self.ciphertext_bytes} bytes, got {len(data)}")
        return self.ciphertext(int.from_bytes(data, "big"))

    def _own(self, c: Ciphertext) -> gmpy2.mpz:
        if not isinstance(c, Ciphertext):
            raise TypeError(f"expected a Ciphertext, got {type(c).__name__}")
        if c.key_id != self.key_id:
            raise ValueError(f"ciphertext is under key {c.key_id}, not {self.key_id}")
        return gmpy2.mpz(c.value)

    def add(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """``Enc(x) · Enc(y) = Enc(x + y mod N)``. ValueError names both ids on a key mismatch."""
        if a.key_id != b.key_id:
            raise ValueError(f"cannot combine ciphertexts under keys {a.key_id} and {b.key_id}")
        return Ciphertext(int(self._own(a) * self._own(b) % self.nsquare), self.key_id)

    def sum(self, ciphertexts: Iterable[Ciphertext]) -> Ciphertext:
        """Homomorphic sum of one or more ciphertexts (iterated once, in order)."""
        acc: gmpy2.mpz | None = None
        for c in ciphertexts:
            v = self._own(c)
            acc = v if acc is None else acc * v % self.nsquare
        if acc is None:
            raise ValueError("cannot sum an empty sequence of ciphertexts")
        return Ciphertext(int(acc), self.key_id)

    def mul(self, a: Ciphertext, k: int) -> Ciphertext:
        """``Enc(x)^k = Enc(k·x mod N)`` for a public scalar 0 ≤ k < N (use N − k to negate)."""
        k_ = _mpz(k)
        if not 0 <= k_ < self.n:
            raise ValueError("scalar outside [0, N)")
        return Ciphertext(int(gmpy2.powmod(self._own(a), k_, self.nsquare)), self.key_id)

    def rerandomize(self, a: Ciphertext) -> Ciphertext:
        """Multiply by a fresh ``hN^α``: same plaintext, unlinkable ciphertext."""
        alpha = secrets.randbits(self.exp_bits)
        fresh = self.tables[0].pow(alpha)
        return Ciphertext(int(self._own(a) * fresh % self.nsquare), self.key_id)


class PaillierPrivateKey:
    """Secret key (p, q) with CRT decryption, for tests and single-party use (Paillier 1999 §7).

    With g = N + 1: ``m_p = L_p(c^{p−1} mod p²) · h_p mod p`` with ``L_p(u) = (u − 1)/p`` and
    ``h_p = L_p(g^{p−1} mod p²)^{−1} mod p`` (likewise for q), then m = CRT(m_p, m_q). The
    threshold scheme never builds this object. Secret: p, q and everything derived from them.
    """

    def __init__(self, public: PaillierPublicKey, p: int, q: int) -> None:
        p_, q_ = _mpz(p), _mpz(q)
        if p_ == q_ or p_ * q_ != public.n:
            raise ValueError("p and q must be distinct factors with p·q = N")
        self.public = public
        self._p, self._q = p_, q_
        self._psq, self._qsq = p_ * p_, q_ * q_
        g = public.n + 1
        self._hp = gmpy2.invert((gmpy2.powmod(g, p_ - 1, self._psq) - 1) // p_, p_)
        self._hq = gmpy2.invert((gmpy2.powmod(g, q_ - 1, self._qsq) - 1) // q_, q_)
        self._p_inv_q = gmpy2.invert(p_, q_)

    def __repr__(self) -> str:
        return f"PaillierPrivateKey(key_id={self.public.key_id[:16]}…, <redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("private keys are not picklable; keep them in one process")

    def raw_decrypt(self, c: int) -> int:
        """Decrypt a ciphertext integer c ∈ Z*_{N²}; returns 0 ≤ m < N."""
        c_ = gmpy2.mpz(self.public.ciphertext(c).value)
        mp = (gmpy2.powmod(c_, self._p - 1, self._psq) - 1) // self._p * self._hp % self._p
        mq = (gmpy2.powmod(c_, self._q - 1, self._qsq) - 1) // self._q * self._hq % self._q
        return int(mp + (mq - mp) * self._p_inv_q % self._q * self._p)

    def decrypt(self, c: Ciphertext) -> int:
        """Decrypt a :class:`Ciphertext` of this key (ValueError on a key mismatch)."""
        return self.raw_decrypt(int(self.public._own(c)))


# -- key generation ---------------------------------------------------------------------------
def _is_large_order_base(h: gmpy2.mpz, n: gmpy2.mpz) -> bool:
    """Public check of a DJN base: 0 < h < N, gcd(h, N) = 1, (h|N) = 1 and gcd(h ± 1, N) = 1.

    For N = pq with safe primes, Z*_N ≅ Z_2² × Z_{p'} × Z_{q'}; h ≢ ±1 modulo p and modulo q
    means its order is divisible by p'q', so hN^α for α < 2^⌈|N|/2⌉ is spread over a large group.
    """
    return (
        0 < h < n
        and gmpy2.gcd(h, n) == 1
        and gmpy2.jacobi(h, n) == 1
        and gmpy2.gcd(h - 1, n) == 1
        and gmpy2.gcd(h + 1, n) == 1
    )


def random_unit(modulus: gmpy2.mpz) -> gmpy2.mpz:
    """Uniform element of Z*_modulus from ``secrets``."""
    while True:
        x = gmpy2.mpz(secrets.randbelow(int(modulus)))
        if x > 0 and gmpy2.gcd(x, modulus) == 1:
            return x


def _small_primes() -> list[int]:
    sieve = bytearray([1]) * _SIEVE_BOUND
    sieve[0:2] = b"\x00\x00"
    for i in range(2, math.isqrt(_SIEVE_BOUND) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, _SIEVE_BOUND, i)))
    return [i for i in range(3, _SIEVE_BOUND) if sieve[i]]


def _sieved_offsets(start: int, primes: Sequence[int]) -> list[int]:
    """Offsets i of the candidates p' = start + 2i for which neither p' nor 2p' + 1 has a factor
    in ``primes`` (both conditions are linear congruences in i)."""
    alive = bytearray([1]) * _SIEVE_LENGTH
    for r in primes:
        inv2 = (r + 1) // 2
        s = start % r
        for bad in ((-s * inv2) % r, ((-inv2 - s) * inv2) % r):
            alive[bad::r] = bytes(len(range(bad, _SIEVE_LENGTH, r)))
    return [i for i, ok in enumerate(alive) if ok]


def generate_safe_prime(bits: int) -> int:
    """Return a random safe prime p = 2p' + 1 (p' prime) of exactly ``bits`` bits, top two set.

    Candidates p' are drawn with ``secrets`` in [3·2^(bits−3), 2^(bits−1)); an interval of them is
    sieved for small factors of p' and 2p' + 1 together, and survivors go to ``gmpy2.is_prime``
    (BPSW plus Miller–Rabin). The top two bits make a product of two such primes exactly
    2·bits long. Small sizes (< 64 bits, tests only) use ``gmpy2.next_prime`` directly.
    """
    if bits < 8:
        raise ValueError("safe primes need at least 8 bits")
    low, high = 3 << (bits - 3), 1 << (bits - 1)
    if bits < 64:
        while True:
            sg = gmpy2.next_prime(low + secrets.randbelow(high - low))
            if sg < high and gmpy2.is_prime(2 * sg + 1):
                return int(2 * sg + 1)
    primes = _small_primes()
    while True:
        start = low + secrets.randbelow(high - low - 2 * _SIEVE_LENGTH) | 1
        for i in _sieved_offsets(start, primes):
            sg = gmpy2.mpz(start + 2 * i)
            if gmpy2.is_prime(sg, 30) and gmpy2.is_prime(2 * sg + 1, 30):
                return int(2 * sg + 1)


def generate_safe_primes(bits: int) -> tuple[int, int]:
    """Two distinct safe primes of ``bits // 2`` bits each; their product has ``bits`` bits."""
    if bits % 2 or bits < MIN_KEY_BITS:
        raise ValueError(f"key size must be even and at least {MIN_KEY_BITS} bits")
    p = generate_safe_prime(bits // 2)
    while (q := generate_safe_prime(bits // 2)) == p:
        pass
    return p, q


def generate_keypair(bits: int = DEFAULT_KEY_BITS) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """Generate (public, private) for N = pq with safe primes p = 2p' + 1, q = 2q' + 1 (§1)."""
    p, q = generate_safe_primes(bits)
    public = PaillierPublicKey(p * q)
    return public, PaillierPrivateKey(public, p, q)


# -- parallel encryption ----------------------------------------------------------------------
_worker_key: PaillierPublicKey | None = None


def _init_worker(key: PaillierPublicKey) -> None:
    global _worker_key
    _worker_key = key


def _encrypt_chunk(plaintexts: list[int], textbook: bool) -> list[tuple[int, int]]:
    key = _worker_key
    if key is None:  # pragma: no cover - only if the initializer did not run
        raise RuntimeError("worker has no key")
    return [key.raw_encrypt(m, textbook=textbook) for m in plaintexts]


def encrypt_many(
    pub: PaillierPublicKey,
    plaintexts: Sequence[int],
    workers: int | None = None,
    *,
    textbook: bool = False,
) -> tuple[list[Ciphertext], list[int]]:
    """Encrypt a vector of plaintexts, in parallel across processes.

    Plaintexts are checked (0 ≤ m < N) before any work starts, split into contiguous chunks and
    encrypted by a ``ProcessPoolExecutor``. The key's fixed-base tables are built here first, so
    forked workers inherit them (under ``spawn`` each worker rebuilds them once).
    ``workers=1`` (or fewer than 4 plaintexts per worker) stays in this process. Randomness comes
    from ``secrets`` (the OS generator), so forked workers never share a random state.

    Args:
        pub: the public key.
        plaintexts: integers 0 ≤ m < N.
        workers: process count; ``None`` means ``os.cpu_count()``.
        textbook: use textbook r^N encryption instead of DJN.

    Returns:
        The ciphertexts, in input order, and their randomness r (secret; keep it for proofs or
        drop it).
    """
    checked = [int(pub.check_plaintext(m)) for m in plaintexts]
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count < 1:
        raise ValueError("workers must be at least 1")
    if count == 1 or len(checked) < 4 * count:
        pairs = [pub.raw_encrypt(m, textbook=textbook) for m in checked]
    else:
        _ = pub.tables
        size = -(-len(checked) // (4 * count))
        chunks = [checked[i : i + size] for i in range(0, len(checked), size)]
        with ProcessPoolExecutor(count, initializer=_init_worker, initargs=(pub,)) as pool:
            results = pool.map(_encrypt_chunk, chunks, [textbook] * len(chunks))
            pairs = [pair for chunk in results for pair in chunk]
    return [Ciphertext(c, pub.key_id) for c, _ in pairs], [r for _, r in pairs]
