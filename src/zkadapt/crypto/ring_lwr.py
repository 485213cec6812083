"""A seed-homomorphic PRG from Ring-LWR, for masking LLM-size updates (docs/masking.md).

The masked scheme hides a party's quantized update u behind ``G(s)`` for a fresh seed s and
encrypts only s under the threshold-Paillier key; the parties decrypt the *sum* of the
accepted seeds and anyone unmasks the exact sum of the updates, because G is almost additive
in its seed (SASH, Liu et al., UAI 2022; key-homomorphic PRFs, Boneh et al., CRYPTO 2013)::

    G(s) = ( round((p/q) * (a_j * s mod q)) mod p )_j        over the ring R_q = Z_q[X]/(X^N + 1)
    G(s) + G(s') - G(s + s')  in {-1, 0, 1}   per coordinate
    | sum_{j in A} G(s_j) - G(sum_j s_j) |  <=  ceil((|A| + 1) / 2)

with N = 2048, q = 2^32, p = 2^P (docs/masking.md section 1). Everything here is pure:

* the public ring elements ``a_1 .. a_L`` are expanded from ChaCha20 keyed by
  SHA-256("zkadapt/masked/a" || session id), never from numpy's generators; row j is the
  keystream at block ``128 j``, so any row can be produced on its own;
* ring products are exact: a and s are split into 16-bit limbs and the negacyclic
  convolutions run as float64 FFTs with the twist by the 2N-th roots of unity; every
  coefficient is checked to lie within 1/4 of an integer before rounding (measured error
  ~0.002), and the product falls back to exact integer arithmetic if one does not;
* :func:`mask` / :func:`unmask_sum` implement steps 1 and 6 of docs/masking.md section 2, with
  ``g`` guard bits below each value so the rounding error of the seed sum never reaches it.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

#: Ring degree and modulus of R_q = Z_q[X]/(X^N + 1).
RING_N = 2048
Q_BITS = 32
_Q = 1 << Q_BITS
#: ChaCha20 blocks (64 bytes) per ring element of N 32-bit coefficients.
_BLOCKS_PER_ROW = RING_N * 4 // 64
#: Rows per FFT batch: bounds temporary memory (~4 complex arrays of rows x N).
_ROWS_PER_BATCH = 256
#: Values per bit-packing batch (a multiple of 8, so every full batch ends on a byte).
_PACK_CHUNK = 1 << 16
_TWIST = np.exp(1j * np.pi * np.arange(RING_N) / RING_N)
_UNTWIST = np.conj(_TWIST)


@dataclass(frozen=True)
class MaskParams:
    """The masking parameters of one session (docs/masking.md section 2).

    Attributes:
        k: quantization bits of each update value (``privacy.quant_bits``).
        n: the number of parties (bounds the accepted set).
    """

    k: int
    n: int

    def __post_init__(self) -> None:
        if not 2 <= self.k <= 24 or self.n < 1:
            raise ValueError(f"masking needs 2 <= k <= 24 and n >= 1, got k={self.k} n={self.n}")
        if self.p_bits >= Q_BITS:
            raise ValueError(f"P = {self.p_bits} must stay below log2 q = {Q_BITS}")

    @property
    def guard_bits(self) -> int:
        """g = ceil(log2(n + 1)) + 1: 2^(g-1) > the seed sum's rounding error bound."""
        return math.ceil(math.log2(self.n + 1)) + 1

    @property
    def p_bits(self) -> int:
        """P = k + ceil(log2 n) + g + 1 (the last bit lets z be read in (-p/2, p/2])."""
        return self.k + math.ceil(math.log2(self.n)) + self.guard_bits + 1


def public_rows(session_id: str, first: int, count: int) -> np.ndarray:
    """Rows ``first .. first+count-1`` of the public ring elements, as ``uint64 [count, N]``.

    ChaCha20 under SHA-256("zkadapt/masked/a" || session id), the 32-bit block counter set to
    row * 128 (its little-endian first nonce word), so rows are independent of how many were
    drawn before. Every party and the audit expand the same elements.
    """
    if first < 0 or count < 0 or (first + count) * _BLOCKS_PER_ROW >= 1 << 32:
        raise ValueError(f"rows {first}..{first + count} are out of range")
    key = hashlib.sha256(b"zkadapt/masked/a" + session_id.encode()).digest()
    nonce = (first * _BLOCKS_PER_ROW).to_bytes(4, "little") + bytes(12)
    stream = Cipher(algorithms.ChaCha20(key, nonce), mode=None).encryptor()
    raw = stream.update(bytes(count * RING_N * 4))
    return np.frombuffer(raw, dtype="<u4").reshape(count, RING_N).astype(np.uint64)


def random_seed() -> np.ndarray:
    """A fresh seed: N uniform coefficients mod q from the OS CSPRNG (never reused)."""
    return np.frombuffer(secrets.token_bytes(RING_N * 4), dtype="<u4").astype(np.uint64)


def ring_product(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Negacyclic products ``a_j * s mod (X^N + 1, q)`` for every row a_j of ``a`` (exact).

    Args:
        a: ``[rows, N]`` (or ``[N]``) coefficients in [0, q).
        s: ``[N]`` coefficients in [0, q).

    Returns:
        ``uint64`` coefficients in [0, q), shaped like ``a``.
    """
    single = a.ndim == 1
    rows = a[None, :] if single else a
    s_lo, s_hi = _limb_spectra(s[None, :])
    out = np.empty(rows.shape, dtype=np.uint64)
    for start in range(0, len(rows), _ROWS_PER_BATCH):
        block = rows[start : start + _ROWS_PER_BATCH]
        a_lo, a_hi = _limb_spectra(block)
        low = np.fft.ifft(a_lo * s_lo, axis=1) * _UNTWIST
        mid = np.fft.ifft(a_lo * s_hi + a_hi * s_lo, axis=1) * _UNTWIST
        low_int, mid_int = np.rint(low.real), np.rint(mid.real)
        worst = max(np.abs(low.real - low_int).max(), np.abs(mid.real - mid_int).max())
        if worst > 0.25:  # float error too close to rounding the wrong way: do it exactly
            out[start : start + len(block)] = [_schoolbook(row, s) for row in block]
            continue
        lo = np.mod(low_int.astype(np.int64), _Q).astype(np.uint64)
        hi = np.mod(mid_int.astype(np.int64), 1 << 16).astype(np.uint64) << np.uint64(16)
        out[start : start + len(block)] = (lo + hi) & np.uint64(_Q - 1)
    return out[0] if single else out


def _limb_spectra(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FFTs of the twisted 16-bit limbs of each row (x = lo + 2^16 hi)."""
    lo = (values & np.uint64(0xFFFF)).astype(np.float64) * _TWIST
    hi = (values >> np.uint64(16)).astype(np.float64) * _TWIST
    return np.fft.fft(lo, axis=1), np.fft.fft(hi, axis=1)


def _schoolbook(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The negacyclic product by definition, in Python integers (the exact reference)."""
    n = len(a)
    a_int, s_int = [int(x) for x in a], [int(x) for x in s]
    c = [0] * n
    for i, ai in enumerate(a_int):
        if ai:
            for j, sj in enumerate(s_int):
                if i + j < n:
                    c[i + j] += ai * sj
                else:
                    c[i + j - n] -= ai * sj
    return np.array([x % _Q for x in c], dtype=np.uint64)


def prg(session_id: str, seed: np.ndarray, length: int, p_bits: int) -> np.ndarray:
    """G(s): the first ``length`` values of round((p/q) (a_j s mod q)) mod p, as ``uint64``."""
    rows = math.ceil(length / RING_N)
    out = np.empty(rows * RING_N, dtype=np.uint64)
    shift = np.uint64(Q_BITS - p_bits)
    half = np.uint64(1 << (Q_BITS - p_bits - 1))
    mask_p = np.uint64((1 << p_bits) - 1)
    for first, count in _row_batches(rows):
        product = ring_product(public_rows(session_id, first, count), seed)
        values = ((product + half) >> shift) & mask_p  # round(v * p / q) mod p
        out[first * RING_N : (first + count) * RING_N] = values.reshape(-1)
    return out[:length]


def _row_batches(rows: int) -> Iterator[tuple[int, int]]:
    for first in range(0, rows, _ROWS_PER_BATCH):
        yield first, min(_ROWS_PER_BATCH, rows - first)


def mask(session_id: str, params: MaskParams, u: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """y = (u * 2^g + G(s)) mod p for quantized values u in [0, 2^k) (step 1, SEAL)."""
    if u.ndim != 1 or (u.size and (int(u.min()) < 0 or int(u.max()) >= 1 << params.k)):
        raise ValueError(f"quantized values must be a 1-D array in [0, 2^{params.k})")
    below_p = np.uint64((1 << params.p_bits) - 1)  # p is a power of two: mod p is a mask
    shifted = u.astype(np.uint64) << np.uint64(params.guard_bits)
    return (shifted + prg(session_id, seed, len(u), params.p_bits)) & below_p


def seed_sum(seeds: list[np.ndarray]) -> np.ndarray:
    """S = sum of the seeds mod q (what the parties decrypt, reduced)."""
    total = np.zeros(RING_N, dtype=np.uint64)
    for seed in seeds:
        total = (total + seed) & np.uint64(_Q - 1)
    return total


def unmask_total(
    session_id: str, params: MaskParams, masked_total: np.ndarray, seeds_total: np.ndarray
) -> np.ndarray:
    """:func:`unmask_sum` from the masked vectors' sum mod p (what a scheme keeps per round)."""
    p = 1 << params.p_bits
    g_s = prg(session_id, seeds_total, len(masked_total), params.p_bits)
    below_p = np.uint64(p - 1)  # p is a power of two: mod p is a mask (20x numpy's %)
    z = ((masked_total & below_p) + np.uint64(p) - g_s) & below_p
    signed = z.astype(np.int64)
    signed[signed > p // 2] -= p
    g = params.guard_bits
    return (signed + (1 << (g - 1))) >> g  # round(z / 2^g), ties upward


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Values below 2^bits, ``bits`` bits each, little-endian bit order (the upload of y)."""
    out = []
    for start in range(0, len(values), _PACK_CHUNK):  # _PACK_CHUNK is a multiple of 8
        chunk = values[start : start + _PACK_CHUNK].astype("<u8")
        grid = np.unpackbits(chunk.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        out.append(np.packbits(grid[:, :bits].reshape(-1), bitorder="little").tobytes())
    return b"".join(out)


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`.

    Raises:
        ValueError: ``data`` does not hold exactly ``count`` values of ``bits`` bits.
    """
    if len(data) != packed_size(count, bits):
        raise ValueError(f"{len(data)} bytes do not hold {count} values of {bits} bits")
    out = np.empty(count, dtype=np.uint64)
    per_chunk = _PACK_CHUNK * bits // 8
    for index, start in enumerate(range(0, count, _PACK_CHUNK)):
        n = min(_PACK_CHUNK, count - start)
        raw = np.frombuffer(data, np.uint8, count=-(-n * bits // 8), offset=index * per_chunk)
        grid = np.unpackbits(raw, bitorder="little")[: n * bits].reshape(n, bits)
        wide = np.zeros((n, 64), dtype=np.uint8)
        wide[:, :bits] = grid
        out[start : start + n] = np.packbits(wide, axis=1, bitorder="little").view("<u8")[:, 0]
    return out


def packed_size(count: int, bits: int) -> int:
    """Bytes :func:`pack_bits` writes for ``count`` values: every full chunk is byte-aligned."""
    full, rest = divmod(count, _PACK_CHUNK)
    return full * (_PACK_CHUNK * bits // 8) + -(-rest * bits // 8)


def unmask_sum(
    session_id: str, params: MaskParams, masked: list[np.ndarray], seeds_total: np.ndarray
) -> np.ndarray:
    """The exact sum of the accepted updates from their masked vectors and the seed sum.

    z = (sum y_j - G(S)) mod p, read in (-p/2, p/2]; sum u_j = round(z / 2^g) (step 6).

    Returns:
        ``int64`` sums, each in [0, |A| (2^k - 1)] for honest inputs.

    Raises:
        ValueError: no masked vectors, or vectors of different lengths.
    """
    if not masked or len({len(y) for y in masked}) != 1:
        raise ValueError("unmasking needs one or more masked vectors of equal length")
    below_p = np.uint64((1 << params.p_bits) - 1)
    total = np.zeros(len(masked[0]), dtype=np.uint64)
    for y in masked:
        total = (total + y) & below_p
    return unmask_total(session_id, params, total, seeds_total)
