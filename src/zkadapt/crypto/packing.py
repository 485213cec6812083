"""Packing quantized update values into Paillier plaintexts (CRYPTO.md §3; BatchCrypt, ATC'20).

A party's update (a flat float vector) becomes a few large integers, each holding K values, so
one ciphertext carries K values and the homomorphic sum of the parties' ciphertexts is the
slot-wise sum of their quantized values. Everything after quantization is exact integer
arithmetic.

For party i with weight ω_i (:func:`fedavg_weights`), clip bound B and k bits:

* scale and clip: ``x̃ = clip(ω_i · x, −B, B)`` (clipping comes *after* scaling, so a weight
  ω_i > 1 can never push a value out of range; a party with weight ω_i effectively clips its
  raw values at B/ω_i, so pick B ≥ max_i ω_i · max|x|);
* quantize: ``q = round(x̃ · (2^{k−1} − 1) / B) ∈ [−(2^{k−1} − 1), 2^{k−1} − 1]``;
* offset: ``u = q + 2^{k−1} ∈ [1, 2^k − 1]``;
* pack: slot width ``w = k + ⌈log₂ n⌉ + 1``, ``K = ⌊(|N| − 1)/w⌋`` slots per plaintext,
  ``P = Σ_{j<K} u_j · 2^{wj}``. The last plaintext is padded with q = 0 (u = 2^{k−1}).

Overflow bound (why no slot ever carries into the next, and no sum wraps mod N): a slot of the
sum of n' ≤ n plaintexts holds ``Σ u ≤ n'(2^k − 1) < 2^{k + ⌈log₂ n⌉} = 2^{w−1}``, and the whole
sum is below ``2^{Kw − 1} < 2^{|N| − 1} < N``. :class:`PackingSpec` refuses parameters with
K < 1 and :meth:`PackingSpec.unpack` refuses n' > n (ValueError); a decrypted slot outside
[n', n'(2^k − 1)] can only come from a contribution that was not a valid packing
(:class:`~zkadapt.errors.CryptoError`).

Unpacking: ``Σ q = S_j − n' · 2^{k−1}`` per slot, and the value is
``Σ q · B/(2^{k−1} − 1) / Σ_{accepted} ω_i`` (the weighted mean of the clipped, scaled values;
the denominator renormalizes when a party dropped out).

Quantization error: ``|q − x̃ · (2^{k−1} − 1)/B| ≤ 1/2``, i.e. ``|q · step − x̃| ≤ step/2`` with
``step = B/(2^{k−1} − 1)`` (the bound B/(2^{k−1} − 1)/2 per value), so the decoded mean is within
``n' · step / (2 Σω)`` of the exact mean of the clipped scaled values (``step/2`` for equal
weights).

Everything in a :class:`PackingSpec` is public; the values and plaintexts are secret.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from zkadapt.errors import CryptoError

DEFAULT_QUANT_BITS = 16
"""k used when the session config gives none (CRYPTO.md §3)."""

_CHUNK = 1024  # plaintexts per numpy batch: bounds temporary memory to a few MB


def fedavg_weights(sample_counts: Sequence[int]) -> list[float]:
    """FedAvg weights ``ω_i = n · n_i / Σ_j n_j`` from declared sample counts (CRYPTO.md §3).

    They average to 1, so equal counts give ω_i = 1 and Σ ω_i = n.
    """
    if not sample_counts or any(c <= 0 for c in sample_counts):
        raise ValueError("sample counts must be positive and non-empty")
    total = sum(sample_counts)
    return [len(sample_counts) * c / total for c in sample_counts]


@dataclass(frozen=True)
class PackingSpec:
    """Public packing parameters for one session and key size.

    Attributes:
        k: quantization bits, 2 ≤ k ≤ 52 (default :data:`DEFAULT_QUANT_BITS`).
        clip: the clip bound B > 0, applied after weighting.
        n_parties: n, the most contributions that will ever be summed.
        key_bits: |N| of the Paillier key.
    """

    k: int
    clip: float
    n_parties: int
    key_bits: int

    def __post_init__(self) -> None:
        if not 2 <= self.k <= 52:
            raise ValueError(f"k must be in 2..52 (float64 rounding is exact there), got {self.k}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip bound must be positive and finite, got {self.clip}")
        if self.n_parties < 1:
            raise ValueError(f"n_parties must be at least 1, got {self.n_parties}")
        if self.slot_bits > 63:
            raise ValueError(f"slot width {self.slot_bits} exceeds 63 bits; lower k or n")
        if self.slots_per_plaintext < 1:
            raise ValueError(
                f"a {self.key_bits}-bit key cannot hold one {self.slot_bits}-bit slot "
                f"(need |N| − 1 ≥ w): the sum could overflow"
            )

    @property
    def slot_bits(self) -> int:
        """w = k + ⌈log₂ n⌉ + 1."""
        return self.k + (self.n_parties - 1).bit_length() + 1

    @property
    def slots_per_plaintext(self) -> int:
        """K = ⌊(|N| − 1)/w⌋."""
        return (self.key_bits - 1) // self.slot_bits

    @property
    def offset(self) -> int:
        """2^{k−1}, added to each q so that u ≥ 1."""
        return 1 << (self.k - 1)

    @property
    def qmax(self) -> int:
        """2^{k−1} − 1, the largest |q|."""
        return (1 << (self.k - 1)) - 1

    @property
    def step(self) -> float:
        """Quantization step B/(2^{k−1} − 1) in value units."""
        return self.clip / self.qmax

    @property
    def quantization_error_bound(self) -> float:
        """Largest |q·step − x̃| for one value of one party: B/(2^{k−1} − 1)/2."""
        return self.step / 2

    def aggregate_error_bound(self, n_accepted: int, total_weight: float) -> float:
        """Largest error of :meth:`unpack` against the exact weighted mean of clipped values:
        ``n' · step / (2 Σω)``."""
        return n_accepted * self.quantization_error_bound / total_weight

    def num_plaintexts(self, length: int) -> int:
        """⌈length / K⌉ plaintexts (hence ciphertexts) per update of ``length`` values."""
        return -(-length // self.slots_per_plaintext)

    def ciphertext_bytes_per_value(self) -> float:
        """Bytes of ciphertext (2|N| bits each) per packed value, with full plaintexts."""
        return 2 * math.ceil(self.key_bits / 8) / self.slots_per_plaintext

    # -- party side --------------------------------------------------------------------------
    def quantize(self, values: np.ndarray, weight: float) -> np.ndarray:
        """``q = round(clip(ω·x, −B, B) · (2^{k−1} − 1)/B)`` as int64 (round half to even).

        Raises:
            ValueError: not a 1-D array of finite numbers, or a weight that is not positive and
                finite.
        """
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError(f"expected a flat vector, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("update contains NaN or infinite values")
        if not (math.isfinite(weight) and weight > 0):
            raise ValueError(f"weight must be positive and finite, got {weight}")
        scaled = np.clip(x * weight, -self.clip, self.clip)
        q = np.rint(scaled * (self.qmax / self.clip))
        return np.clip(q, -self.qmax, self.qmax).astype(np.int64)

    def pack(self, values: np.ndarray, weight: float) -> list[int]:
        """Quantize a party's update and pack it: ⌈len/K⌉ plaintexts, each 0 ≤ P < 2^{Kw} < N."""
        u = (self.quantize(values, weight) + self.offset).astype(np.uint64)
        slots = self.slots_per_plaintext
        padded = np.full(self.num_plaintexts(u.size) * slots, self.offset, dtype=np.uint64)
        padded[: u.size] = u
        grid = padded.reshape(-1, slots)
        out: list[int] = []
        for start in range(0, grid.shape[0], _CHUNK):
            out.extend(_slots_to_ints(grid[start : start + _CHUNK], self.slot_bits))
        return out

    # -- after decryption --------------------------------------------------------------------
    def unpack(
        self, plaintexts: list[int], n_accepted: int, total_weight: float, length: int
    ) -> np.ndarray:
        """Decode the decrypted sum of ``n_accepted`` packed updates into the weighted mean.

        Args:
            plaintexts: the decrypted aggregate, ⌈length/K⌉ integers.
            n_accepted: n', how many contributions were summed (1 ≤ n' ≤ n).
            total_weight: Σ ω_i over the accepted parties.
            length: the update length.

        Returns:
            float64 vector ``(S_j − n'·2^{k−1}) · step / Σω``.

        Raises:
            ValueError: inconsistent arguments (n' > n could overflow; wrong count).
            CryptoError: a plaintext or slot outside what n' valid packings can sum to.
        """
        if not 1 <= n_accepted <= self.n_parties:
            raise ValueError(f"n_accepted must be in 1..{self.n_parties}, got {n_accepted}")
        if not (math.isfinite(total_weight) and total_weight > 0):
            raise ValueError(f"total weight must be positive and finite, got {total_weight}")
        if length < 0 or len(plaintexts) != self.num_plaintexts(length):
            raise ValueError(
                f"{length} values need {self.num_plaintexts(length)} plaintexts, "
                f"got {len(plaintexts)}"
            )
        limit = 1 << (self.slots_per_plaintext * self.slot_bits)
        if any(not 0 <= int(p) < limit for p in plaintexts):
            raise CryptoError("aggregate plaintext exceeds K·w bits: not a sum of valid packings")
        parts = [
            _ints_to_slots(plaintexts[i : i + _CHUNK], self.slots_per_plaintext, self.slot_bits)
            for i in range(0, len(plaintexts), _CHUNK)
        ]
        sums = np.concatenate(parts).reshape(-1) if parts else np.zeros(0, dtype=np.uint64)
        low, high = n_accepted, n_accepted * ((1 << self.k) - 1)
        if sums.size and (int(sums.min()) < low or int(sums.max()) > high):
            raise CryptoError(f"a slot sum is outside [{low}, {high}]: not {n_accepted} packings")
        q_sum = sums[:length].astype(np.int64) - n_accepted * self.offset
        return q_sum.astype(np.float64) * (self.step / total_weight)


def clipped_weighted_mean(
    updates: Sequence[np.ndarray], weights: Sequence[float], clip: float
) -> np.ndarray:
    """The exact value :meth:`PackingSpec.unpack` approximates: ``Σ clip(ω_i x_i, ±B) / Σ ω_i``."""
    total = np.zeros_like(np.asarray(updates[0], dtype=np.float64))
    for x, w in zip(updates, weights, strict=True):
        total += np.clip(np.asarray(x, dtype=np.float64) * w, -clip, clip)
    return total / sum(weights)


def measured_error(expected: np.ndarray, decoded: np.ndarray) -> float:
    """Largest absolute difference between two vectors (0.0 for empty ones)."""
    a, b = np.asarray(expected, dtype=np.float64), np.asarray(decoded, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _slots_to_ints(grid: np.ndarray, width: int) -> list[int]:
    """Rows of uint64 slots (each < 2^width) to integers ``Σ_j slot_j · 2^{width·j}``."""
    rows, slots = grid.shape
    bits = np.unpackbits(
        grid.astype("<u8").view(np.uint8).reshape(rows, slots, 8), axis=2, bitorder="little"
    )
    packed = np.packbits(bits[:, :, :width].reshape(rows, slots * width), axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _ints_to_slots(values: Sequence[int], slots: int, width: int) -> np.ndarray:
    """Inverse of :func:`_slots_to_ints` for integers below 2^{slots·width}: shape (len, slots)."""
    nbytes = -(-slots * width // 8)
    raw = np.frombuffer(b"".join(int(v).to_bytes(nbytes, "little") for v in values), np.uint8)
    bits = np.unpackbits(raw.reshape(len(values), nbytes), axis=1, bitorder="little")
    bits = bits[:, : slots * width].reshape(len(values), slots, width)
    wide = np.zeros((len(values), slots, 64), dtype=np.uint8)
    wide[:, :, :width] = bits
    return np.packbits(wide, axis=2, bitorder="little").view("<u8").reshape(len(values), slots)


#: Public names of the slot codecs (the masked scheme packs seed coefficients with them).
slots_to_ints = _slots_to_ints
ints_to_slots = _ints_to_slots
