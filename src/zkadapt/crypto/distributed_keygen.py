"""Threshold Paillier key generation without a dealer (``privacy.keygen = "distributed"``).

Pure math, one :class:`DkgParty` per participant, driven by messages: every step takes the
messages the party received in the previous message round and returns what it sends next
(:class:`Outbox`: one public value list for everybody, or one secret list per recipient).
Transport (sealing, the object store, the channel) is the caller's business
(:mod:`zkadapt.protocol.distributed_keys`); :func:`run_in_process` runs the parties in one
process for tests and benchmarks.

Model and assumptions: semi-honest (honest-but-curious) parties, n ≥ 2(t − 1) + 1 where t is
the number of shares that decrypt (degree-(t−1) sharings are multiplied once, BGW 1988), all n
parties online for the whole key generation, secret messages on private channels. Any t − 1
colluding parties learn nothing about p, q, φ or d beyond N, θ and the public key.

1. Modulus (Boneh–Franklin, CRYPTO'97 / J. ACM 2001). For a batch of candidates, party i picks
   p_i, q_i with p_1 ≡ 3 (mod 4) and p_i ≡ 0 (mod 4) for i > 1 (p = Σ p_i ≡ 3 mod 4; party 1
   also adds the public offset 3·2^{|N|/2−2} so that N has exactly |N| bits), Shamir-shares
   them with degree t − 1 over the prime field F_{P1} (P1 > N), and a random degree-2(t−1)
   sharing of zero. Party j multiplies locally, N(j) = (Σ_i p_i(j))·(Σ_i q_i(j)) + Σ_i z_i(j),
   a random degree-2(t−1) sharing of N = pq, and publishes it; everyone interpolates N.
2. Public trial division of N by the primes below 2^15, and N not a square.
3. Biprimality (Boneh–Franklin §4): for public bases g with Jacobi symbol (g|N) = 1, party 1
   publishes g^{(N−p_1−q_1+1)/4} and party i > 1 publishes g^{(p_i+q_i)/4} mod N; N = pq
   with p, q prime passes when v_1 · Π_{i>1} v_i^{−1} ≡ ±1 (mod N) for every base, and any
   other N fails each base with probability ≥ 1/2. One base screens the whole batch; the
   survivors are confirmed with :data:`CONFIRM_BASES` bases. The remaining case of
   Boneh–Franklin's test, gcd(N, p + q − 1) = 1, is checked in step 4: θ is a unit mod N.
4. Secret key (Nishide–Sakurai, WISA 2010; Veugen–Attema–Spini, TNO 2019). φ = Σ φ_i with
   φ_1 = N − p_1 − q_1 + 1 and φ_i = −(p_i + q_i); party i draws β_i < 2^{|N|+σ} and
   R_i < 2^{|N|+2σ+L}; over a larger field F_{P2} the parties open θ' = φβ + N·R (one BGW
   multiplication) and set θ = θ' mod N. N·R hides the integer φβ statistically; only θ is
   meaningful. The secret key is d = φβ = θ' − N·R: d ≡ 0 (mod φ) and d ≡ θ (mod N), so
   c^{4Δ²d} = (1 + N)^{4Δ²θM} and combination divides by θ (:func:`threshold.combine`).
   Additive shares d_1 = θ' − N·R_1, d_i = −N·R_i are re-shared by each party with an
   integer polynomial of degree t − 1 whose coefficients are σ bits longer than Δ²·|d_i|
   (statistically hiding), so party j's share s_j = Σ_i f_i(j) is an integer Shamir share
   and Σ_{i∈S} μ_i s_i = Δ·d for the existing integer Lagrange coefficients.
5. Verification keys: v = H(N)² mod N² (public coin), v_j = v^{Δ s_j}; the DJN base h is
   −H(N)² mod N. Everyone builds the same :class:`ThresholdPublicKey` (mode "distributed").

p and q are random primes, not safe primes; docs/crypto.md says what that changes for the
share proofs. Secret: p_i, q_i, φ_i, β_i, R_i, d_i, the polynomials, every private message and
s_j. No party ever holds p, q, φ or d.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import gmpy2

from zkadapt.crypto.paillier import MIN_KEY_BITS, PaillierPublicKey
from zkadapt.crypto.sharing import factorial_delta
from zkadapt.crypto.threshold import (
    STAT_BITS,
    KeyShare,
    ThresholdPublicKey,
    distributed_bounds,
)
from zkadapt.errors import CryptoError

CONFIRM_BASES = 64
"""Biprimality bases for a candidate that passed the screening base (error ≤ 2^−64)."""

TRIAL_DIVISION_BOUND = 1 << 15
"""N is divided publicly by every prime below this bound."""

MAX_BATCH = 4096
"""Most candidate pairs per message round (keeps one message at a few MB for 2048 bits)."""

Values = tuple[int, ...]


def min_parties(t: int) -> int:
    """Smallest n for t-of-n distributed key generation: 2(t − 1) + 1 (one BGW product)."""
    return 2 * (t - 1) + 1


@lru_cache(maxsize=8)
def _prime_above(bits: int) -> gmpy2.mpz:
    """The smallest prime above 2^bits: a public field modulus every party derives alike."""
    return gmpy2.next_prime(gmpy2.mpz(1) << bits)


@lru_cache(maxsize=1)
def _primorial() -> gmpy2.mpz:
    product, p = gmpy2.mpz(1), gmpy2.mpz(3)
    while p < TRIAL_DIVISION_BOUND:
        product *= p
        p = gmpy2.next_prime(p)
    return product


def default_batch(bits: int) -> int:
    """Candidate pairs per batch: about half the expected number until both sums are prime.

    An odd h-bit number ≡ 3 (mod 4) is prime with probability about 2/(h ln 2), so a pair
    needs about (h ln 2 / 2)² candidates (h = |N|/2).
    """
    expected = (bits / 2 * 0.6931 / 2) ** 2
    return max(64, min(MAX_BATCH, int(expected / 2)))


@dataclass(frozen=True)
class DkgParams:
    """Public parameters of one distributed key generation.

    Args:
        bits: |N|, even, at least ``MIN_KEY_BITS``.
        n: number of parties (indices 1..n).
        t: shares that decrypt (Shamir degree t − 1); n ≥ 2t − 1.
        context: public bytes binding the run (session, key epoch): the public-coin bases,
            v and h are derived from it and N.
        batch: candidate pairs per batch (default :func:`default_batch`).
    """

    bits: int
    n: int
    t: int
    context: bytes
    batch: int = 0

    def __post_init__(self) -> None:
        if self.bits % 2 or self.bits < MIN_KEY_BITS:
            raise ValueError(f"key size must be even and at least {MIN_KEY_BITS} bits")
        if not 1 <= self.t <= self.n:
            raise ValueError(f"need 1 ≤ t ≤ n, got t={self.t}, n={self.n}")
        if self.n < min_parties(self.t):
            raise ValueError(f"distributed keys need n ≥ 2t − 1 = {min_parties(self.t)}")
        if self.batch <= 0:
            object.__setattr__(self, "batch", default_batch(self.bits))

    @property
    def degree(self) -> int:
        """Degree of every Shamir polynomial: t − 1."""
        return self.t - 1

    @property
    def field1(self) -> gmpy2.mpz:
        """F_{P1} for the candidate sharings: P1 > 2^{|N|+1} > N."""
        return _prime_above(self.bits + 1)

    @property
    def field2(self) -> gmpy2.mpz:
        """F_{P2} for θ' = φβ + N·R, which is below 2^{D} (:func:`distributed_bounds`)."""
        return _prime_above(distributed_bounds(self.bits, self.n, self.t)["secret"] + 1)

    @property
    def random_bits(self) -> int:
        """Bits of each party's random part r_i of a prime share: p_i = 4 r_i (+ offset)."""
        return self.bits // 2 - 4 - (self.n - 1).bit_length()


@dataclass(frozen=True)
class Outbox:
    """What a party sends in message round ``round``: public values or one list per party."""

    round: int
    to_all: Values | None = None
    to_each: Mapping[int, Values] | None = field(default=None, repr=False)

    @property
    def public(self) -> bool:
        """Whether the values go to everybody in the clear."""
        return self.to_all is not None


def _poly_eval(coefficients: Sequence[int], x: int, modulus: int | None) -> int:
    acc = gmpy2.mpz(0)
    for a in reversed(coefficients):  # Horner's rule
        acc = acc * x + a
        if modulus is not None:
            acc %= modulus
    return int(acc)


def _share_mod(secret: int, degree: int, n: int, modulus: int, *, zero_rank: int = 0) -> list[int]:
    """Shamir shares f(1..n) over Z_modulus of a degree-``degree`` f with f(0) = secret."""
    coefficients = [secret % modulus] + [secrets.randbelow(modulus) for _ in range(degree)]
    return [_poly_eval(coefficients, j, modulus) for j in range(1, n + 1)]


def _lagrange_at_zero(n: int, modulus: int) -> list[int]:
    """λ_j = Π_{m≠j} m / (m − j) mod P for the points 1..n (all n shares are used)."""
    out = []
    for j in range(1, n + 1):
        num, den = 1, 1
        for m in range(1, n + 1):
            if m != j:
                num, den = num * m, den * (m - j)
        out.append(int(num * gmpy2.invert(den % modulus, modulus) % modulus))
    return out


def _open(points: Sequence[int], modulus: int) -> int:
    """The secret of a sharing of degree < n, from the values at 1..n."""
    lam = _lagrange_at_zero(len(points), modulus)
    return int(sum(gmpy2.mpz(a) * b for a, b in zip(lam, points, strict=True)) % modulus)


def _hash_int(tag: bytes, context: bytes, n: int, counter: int, modulus: int) -> gmpy2.mpz:
    """A public-coin integer in [0, modulus): SHAKE-256(tag, context, N, counter)."""
    shake = hashlib.shake_256()
    for item in (tag, context, int(n).to_bytes((int(n).bit_length() + 7) // 8, "big")):
        shake.update(len(item).to_bytes(8, "big") + item)
    shake.update(counter.to_bytes(8, "big"))
    width = (int(modulus).bit_length() + 7) // 8 + 16
    return gmpy2.mpz(int.from_bytes(shake.digest(width), "big")) % modulus


def biprimality_bases(context: bytes, n: int, count: int, start: int = 0) -> list[gmpy2.mpz]:
    """Public bases g ∈ Z*_N with (g|N) = 1, derived from the context and N."""
    bases: list[gmpy2.mpz] = []
    counter = start * 1_000_003
    while len(bases) < count:
        g = _hash_int(b"zkadapt/dkg-base/v1", context, n, counter, n)
        counter += 1
        if g > 1 and gmpy2.jacobi(g, n) == 1:
            bases.append(g)
    return bases


def public_bases(context: bytes, n: int) -> tuple[int, int]:
    """(h, v): the DJN base h = −x² mod N and the verification base v = y² mod N², both with
    x, y derived from the context and N, retried until they pass the public checks."""
    counter = 0
    while True:
        x = _hash_int(b"zkadapt/dkg-h/v1", context, n, counter, n)
        y = _hash_int(b"zkadapt/dkg-v/v1", context, n, counter, n * n)
        h, v = int((-x * x) % n), int(y * y % (n * n))
        try:
            paillier = PaillierPublicKey(int(n), h)
            ThresholdPublicKey(paillier, 1, 1, "distributed", v, (v,))
        except (CryptoError, ValueError):
            counter += 1
            continue
        return h, v


def _passes(values: Sequence[int], n: int) -> bool:
    """v_1 · Π_{i>1} v_i^{−1} ≡ ±1 (mod N)?"""
    acc = gmpy2.mpz(values[0])
    for v in values[1:]:
        if gmpy2.gcd(v, n) != 1:
            return False
        acc = acc * gmpy2.invert(v, n) % n
    return acc == 1 or acc == n - 1


class DkgParty:
    """Party ``index``'s state in a distributed key generation (secret; redacted repr).

    Call :meth:`start` once, deliver each message round's inbox (sender index → values) to
    :meth:`advance` until it returns None, then read :meth:`result`. Every party makes the
    same decisions, because they depend only on public values.
    """

    def __init__(self, params: DkgParams, index: int) -> None:
        if not 1 <= index <= params.n:
            raise ValueError(f"party index must be in 1..{params.n}, got {index}")
        self.params, self.index = params, index
        self.round = 0
        self.batches = 0
        self._state = "idle"
        self._primes: list[tuple[int, int]] = []
        self._candidates: list[int] = []  # N of every candidate in the batch (public)
        self._survivors: list[int] = []  # candidates that passed trial division
        self._screened: list[int] = []  # ... and the screening base
        self._chosen: tuple[int, int, int] = (0, 0, 0)  # N, p_i, q_i
        self._key: dict[str, Any] = {}
        self._result: tuple[ThresholdPublicKey, KeyShare] | None = None

    def __repr__(self) -> str:
        return f"DkgParty(index={self.index}, state={self._state}, <redacted>)"

    def __reduce__(self) -> Any:
        raise TypeError("key generation state is secret and not picklable")

    # -- driving -----------------------------------------------------------------------------
    def start(self) -> Outbox:
        """The first message round: shares of a batch of prime candidates."""
        return self._share_candidates()

    def advance(self, inbox: Mapping[int, Values]) -> Outbox | None:
        """Consume round ``self.round``'s messages from every party 1..n; return the next.

        Raises:
            CryptoError: a sender is missing or a message has the wrong length.
        """
        if set(inbox) != set(range(1, self.params.n + 1)):
            raise CryptoError(f"key generation round {self.round}: need a message from every party")
        step = {
            "candidates": self._multiply,
            "products": self._screen,
            "screen": self._confirm,
            "confirm": self._share_theta,
            "theta": self._open_theta,
            "opened": self._share_key,
            "key": self._verification_key,
            "verify": self._finish,
        }[self._state]
        out = step(inbox)
        if out is not None:
            self.round += 1
            return Outbox(self.round, out.to_all, out.to_each)
        return None

    def result(self) -> tuple[ThresholdPublicKey, KeyShare]:
        """The public key and this party's share, once :meth:`advance` returned None."""
        if self._result is None:
            raise RuntimeError("key generation has not finished")
        return self._result

    # -- 1. candidates and N (Boneh–Franklin with one BGW product) ----------------------------
    def _share_candidates(self) -> Outbox:
        prm, k = self.params, self.params.degree
        p1, half = prm.field1, prm.bits // 2
        offset = 3 * (1 << (half - 2)) + 3 if self.index == 1 else 0
        self._primes = [
            (
                offset + 4 * secrets.randbits(prm.random_bits),
                offset + 4 * secrets.randbits(prm.random_bits),
            )
            for _ in range(prm.batch)
        ]
        to_each: dict[int, list[int]] = {j: [] for j in range(1, prm.n + 1)}
        for p_i, q_i in self._primes:
            zero = [0] + [secrets.randbelow(p1) for _ in range(2 * k)]
            for j, values in zip(
                range(1, prm.n + 1),
                zip(_share_mod(p_i, k, prm.n, p1), _share_mod(q_i, k, prm.n, p1), strict=True),
                strict=True,
            ):
                to_each[j].extend((*values, _poly_eval(zero, j, p1)))
        self.batches += 1
        self._state = "candidates"
        return Outbox(self.round, to_each={j: tuple(v) for j, v in to_each.items()})

    def _multiply(self, inbox: Mapping[int, Values]) -> Outbox:
        p1, batch = self.params.field1, self.params.batch
        self._check_lengths(inbox, 3 * batch)
        products = []
        for b in range(batch):
            p = sum(inbox[i][3 * b] for i in inbox)
            q = sum(inbox[i][3 * b + 1] for i in inbox)
            z = sum(inbox[i][3 * b + 2] for i in inbox)
            products.append(int((gmpy2.mpz(p) * q + z) % p1))
        self._state = "products"
        return Outbox(self.round, to_all=tuple(products))

    # -- 2./3. trial division and biprimality ---------------------------------------------------
    def _screen(self, inbox: Mapping[int, Values]) -> Outbox:
        prm = self.params
        self._check_lengths(inbox, prm.batch)
        moduli = [
            _open([inbox[i][b] for i in range(1, prm.n + 1)], prm.field1) for b in range(prm.batch)
        ]
        primorial = _primorial()
        self._candidates = moduli
        self._survivors = [
            b
            for b, n in enumerate(moduli)
            if n.bit_length() == prm.bits
            and gmpy2.gcd(primorial % n, n) == 1
            and not gmpy2.is_square(n)
        ]
        self._state = "screen"
        values = [v for b in self._survivors for v in self._biprimality(b, 1, 0)]
        return Outbox(self.round, to_all=tuple(values))

    def _biprimality(self, b: int, count: int, start: int) -> Values:
        """This party's values g^{e_i} mod N for ``count`` bases of candidate ``b``."""
        n = gmpy2.mpz(self._candidates[b])
        p_i, q_i = self._primes[b]
        exponent = (n - p_i - q_i + 1) // 4 if self.index == 1 else (p_i + q_i) // 4
        bases = biprimality_bases(self.params.context, n, count, start)
        return tuple(int(gmpy2.powmod(g, exponent, n)) for g in bases)

    def _confirm(self, inbox: Mapping[int, Values]) -> Outbox:
        self._check_lengths(inbox, len(self._survivors))
        self._screened = [
            b
            for pos, b in enumerate(self._survivors)
            if _passes([inbox[i][pos] for i in sorted(inbox)], self._candidates[b])
        ]
        if not self._screened:
            return self._share_candidates()
        values: list[int] = []
        for b in self._screened:
            values.extend(self._biprimality(b, CONFIRM_BASES, 1))
        self._state = "confirm"
        return Outbox(self.round, to_all=tuple(values))

    # -- 4. θ = φβ mod N and the secret key (Nishide–Sakurai) --------------------------------
    def _share_theta(self, inbox: Mapping[int, Values]) -> Outbox:
        self._check_lengths(inbox, CONFIRM_BASES * len(self._screened))
        chosen = None
        for pos, b in enumerate(self._screened):
            n = self._candidates[b]
            rows = [
                inbox[i][pos * CONFIRM_BASES : (pos + 1) * CONFIRM_BASES] for i in sorted(inbox)
            ]
            if all(_passes([row[m] for row in rows], n) for m in range(CONFIRM_BASES)):
                chosen = b
                break
        if chosen is None:
            return self._share_candidates()
        n = self._candidates[chosen]
        p_i, q_i = self._primes[chosen]
        self._chosen = (n, p_i, q_i)
        self._primes, self._candidates = [], []  # drop the other candidates' secrets
        return self._theta_outbox()

    def _theta_outbox(self) -> Outbox:
        prm, k = self.params, self.params.degree
        n, p_i, q_i = self._chosen
        bounds = distributed_bounds(prm.bits, prm.n, prm.t)
        phi_i = n - p_i - q_i + 1 if self.index == 1 else -(p_i + q_i)
        beta_i = secrets.randbits(bounds["beta"])
        r_i = secrets.randbits(bounds["mask"])
        self._key = {"r": r_i}
        p2 = prm.field2
        columns = [
            _share_mod(phi_i, k, prm.n, p2),
            _share_mod(beta_i, k, prm.n, p2),
            _share_mod(r_i, k, prm.n, p2),
            _share_mod(0, 2 * k, prm.n, p2),
        ]
        to_each = {j: tuple(col[j - 1] for col in columns) for j in range(1, prm.n + 1)}
        self._state = "theta"
        return Outbox(self.round, to_each=to_each)

    def _open_theta(self, inbox: Mapping[int, Values]) -> Outbox:
        p2, n = self.params.field2, self._chosen[0]
        self._check_lengths(inbox, 4)
        phi, beta, mask, zero = (sum(inbox[i][c] for i in inbox) for c in range(4))
        value = (gmpy2.mpz(phi) * beta + n * mask + zero) % p2
        self._state = "opened"
        return Outbox(self.round, to_all=(int(value),))

    def _share_key(self, inbox: Mapping[int, Values]) -> Outbox:
        prm, n = self.params, self._chosen[0]
        self._check_lengths(inbox, 1)
        theta_open = _open([inbox[i][0] for i in range(1, prm.n + 1)], prm.field2)
        theta = theta_open % n
        if theta == 0 or gmpy2.gcd(theta, n) != 1:  # gcd(N, φ) ≠ 1, or β = 0: start again
            return self._share_candidates()
        r_i = self._key.pop("r")
        d_i = theta_open - n * r_i if self.index == 1 else -n * r_i
        bound = distributed_bounds(prm.bits, prm.n, prm.t)["coefficient"]
        coefficients = [d_i] + [secrets.randbits(bound) for _ in range(prm.degree)]
        self._key["theta"] = int(theta)
        self._state = "key"
        return Outbox(
            self.round,
            to_each={j: (_poly_eval(coefficients, j, None),) for j in range(1, prm.n + 1)},
        )

    # -- 5. verification keys and the public key -------------------------------------------
    def _verification_key(self, inbox: Mapping[int, Values]) -> Outbox:
        prm, n = self.params, self._chosen[0]
        self._check_lengths(inbox, 1)
        share = sum(inbox[i][0] for i in inbox)
        if not 0 < share < (1 << distributed_bounds(prm.bits, prm.n, prm.t)["share"]):
            raise CryptoError("distributed key share out of range")  # pragma: no cover
        h, v = public_bases(prm.context, n)
        self._key.update(share=share, h=h, v=v)
        v_j = gmpy2.powmod(v, factorial_delta(prm.n) * share, n * n)
        self._state = "verify"
        return Outbox(self.round, to_all=(int(v_j),))

    def _finish(self, inbox: Mapping[int, Values]) -> None:
        prm, n = self.params, self._chosen[0]
        self._check_lengths(inbox, 1)
        key = self._key
        public = ThresholdPublicKey(
            PaillierPublicKey(n, key["h"]),
            prm.t,
            prm.n,
            "distributed",
            key["v"],
            tuple(inbox[i][0] for i in range(1, prm.n + 1)),
            key["theta"],
        )
        share = KeyShare(public, self.index, key["share"])
        share.check()
        self._result = (public, share)
        self._key, self._chosen, self._state = {}, (0, 0, 0), "done"
        return None

    def _check_lengths(self, inbox: Mapping[int, Values], length: int) -> None:
        for sender, values in inbox.items():
            if len(values) != length:
                raise CryptoError(
                    f"key generation round {self.round}: party {sender} sent {len(values)} "
                    f"values, expected {length}"
                )


def deliver(outboxes: Mapping[int, Outbox], recipient: int) -> dict[int, Values]:
    """What ``recipient`` receives from one message round: sender → values."""
    inbox = {}
    for sender, out in outboxes.items():
        if out.to_all is not None:
            inbox[sender] = out.to_all
        elif out.to_each is not None:
            inbox[sender] = out.to_each[recipient]
    return inbox


def run_in_process(params: DkgParams) -> tuple[list[DkgParty], int]:
    """Run every party of ``params`` in this process (tests, benchmarks).

    Returns:
        The finished parties (``party.result()`` gives each one's public key and share) and
        the number of message rounds used.
    """
    parties = [DkgParty(params, i) for i in range(1, params.n + 1)]
    outboxes: dict[int, Outbox] = {p.index: p.start() for p in parties}
    rounds = 1
    while True:
        nxt = {p.index: p.advance(deliver(outboxes, p.index)) for p in parties}
        if all(out is None for out in nxt.values()):
            return parties, rounds
        if any(out is None for out in nxt.values()):
            raise CryptoError("parties of one key generation disagree on when it ends")
        outboxes = {i: out for i, out in nxt.items() if out is not None}
        rounds += 1


__all__ = [
    "CONFIRM_BASES",
    "STAT_BITS",
    "DkgParams",
    "DkgParty",
    "Outbox",
    "biprimality_bases",
    "default_batch",
    "deliver",
    "min_parties",
    "public_bases",
    "run_in_process",
]
