"""Tests for zkadapt.crypto.packing: geometry, exact sums, error bounds, overflow guards."""

from __future__ import annotations

import numpy as np
import pytest

from zkadapt.crypto.packing import (
    DEFAULT_QUANT_BITS,
    PackingSpec,
    clipped_weighted_mean,
    fedavg_weights,
    measured_error,
)
from zkadapt.crypto.paillier import PaillierPrivateKey, PaillierPublicKey, generate_keypair
from zkadapt.errors import CryptoError


def _aggregate(packed: list[list[int]]) -> list[int]:
    """Plaintext-side stand-in for the homomorphic sum (exact integers)."""
    return [sum(column) for column in zip(*packed, strict=True)]


@pytest.mark.parametrize(
    ("n_parties", "key_bits", "width", "slots"),
    [(3, 2048, 19, 107), (10, 2048, 21, 97), (1, 2048, 17, 120), (2, 3072, 18, 170)],
)
def test_slot_geometry(n_parties: int, key_bits: int, width: int, slots: int) -> None:
    spec = PackingSpec(DEFAULT_QUANT_BITS, 1.0, n_parties, key_bits)
    assert spec.slot_bits == width
    assert spec.slots_per_plaintext == slots
    assert spec.slots_per_plaintext * spec.slot_bits <= key_bits - 1
    assert spec.ciphertext_bytes_per_value() == pytest.approx(2 * key_bits / 8 / slots)


def test_quantization_error_bound_formula() -> None:
    spec = PackingSpec(16, 0.5, 4, 512)
    assert spec.quantization_error_bound == 0.5 / (2**15 - 1) / 2
    assert spec.aggregate_error_bound(4, 4.0) == spec.quantization_error_bound


@pytest.mark.parametrize("n_parties", range(2, 11))
def test_weighted_sum_round_trip_is_exact(n_parties: int) -> None:
    rng = np.random.default_rng(n_parties)
    spec = PackingSpec(16, 0.25, n_parties, 512)
    length = 3 * spec.slots_per_plaintext + 5  # a partial last plaintext
    weights = fedavg_weights(rng.integers(1, 1000, n_parties).tolist())
    updates = []
    for w in weights:
        x = rng.uniform(-0.3, 0.3, length) / w
        x[:4] = np.array([spec.clip, -spec.clip, 10.0, -10.0]) / w  # at and past the bounds
        updates.append(x)
    packed = [spec.pack(x, w) for x, w in zip(updates, weights, strict=True)]
    decoded = spec.unpack(_aggregate(packed), n_parties, sum(weights), length)
    # Exact: the slot sums are exactly the sums of the quantized integers.
    q_sum = sum(spec.quantize(x, w) for x, w in zip(updates, weights, strict=True))
    assert np.array_equal(np.rint(decoded * sum(weights) / spec.step).astype(np.int64), q_sum)
    # Within the documented bound of the exact weighted mean of the clipped values.
    expected = clipped_weighted_mean(updates, weights, spec.clip)
    bound = spec.aggregate_error_bound(n_parties, sum(weights))
    assert measured_error(expected, decoded) <= bound * (1 + 1e-9)
    assert decoded[0] == pytest.approx(n_parties * spec.clip / sum(weights))


def test_extreme_values_in_every_slot_never_overflow() -> None:
    n = 10
    spec = PackingSpec(16, 1.0, n, 256)
    length = 2 * spec.slots_per_plaintext
    top = [spec.pack(np.full(length, 5.0), 1.0) for _ in range(n)]
    bottom = [spec.pack(np.full(length, -5.0), 1.0) for _ in range(n)]
    assert all(p < 2 ** (spec.slots_per_plaintext * spec.slot_bits) for p in _aggregate(top))
    np.testing.assert_array_equal(spec.unpack(_aggregate(top), n, n, length), 1.0)
    np.testing.assert_array_equal(spec.unpack(_aggregate(bottom), n, n, length), -1.0)


def test_large_weight_is_clipped_after_scaling() -> None:
    spec = PackingSpec(8, 1.0, 2, 128)
    q = spec.quantize(np.array([0.4, -0.4, 0.05]), 5.0)
    assert q.tolist() == [spec.qmax, -spec.qmax, round(0.25 * spec.qmax)]


def test_dropout_renormalizes_by_accepted_weights() -> None:
    spec = PackingSpec(16, 2.0, 4, 512)
    weights = fedavg_weights([100, 200, 300, 400])
    updates = [np.full(7, v) for v in (0.1, 0.2, 0.3, 0.4)]
    accepted = [0, 2, 3]
    packed = [spec.pack(updates[i], weights[i]) for i in accepted]
    total = sum(weights[i] for i in accepted)
    decoded = spec.unpack(_aggregate(packed), 3, total, 7)
    expected = sum(100 * (i + 1) * 0.1 * (i + 1) for i in accepted) / sum(
        100 * (i + 1) for i in accepted
    )
    assert np.allclose(decoded, expected, atol=spec.aggregate_error_bound(3, total))


def test_packed_sum_survives_paillier_round_trip() -> None:
    pub, priv = generate_keypair(256)
    assert isinstance(pub, PaillierPublicKey) and isinstance(priv, PaillierPrivateKey)
    spec = PackingSpec(16, 1.0, 3, pub.bits)
    rng = np.random.default_rng(7)
    updates = [rng.uniform(-1, 1, 40) for _ in range(3)]
    encrypted = [[pub.encrypt(p) for p in spec.pack(x, 1.0)] for x in updates]
    summed = [pub.sum(column) for column in zip(*encrypted, strict=True)]
    decoded = spec.unpack([priv.decrypt(c) for c in summed], 3, 3.0, 40)
    expected = clipped_weighted_mean(updates, [1.0] * 3, 1.0)
    assert measured_error(expected, decoded) <= spec.aggregate_error_bound(3, 3.0)


def test_parameters_that_could_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="overflow"):
        PackingSpec(16, 1.0, 3, 19)  # |N| − 1 < w
    with pytest.raises(ValueError, match="63"):
        PackingSpec(52, 1.0, 2**12, 4096)
    spec = PackingSpec(16, 1.0, 3, 512)
    with pytest.raises(ValueError, match="n_accepted"):
        spec.unpack([0], 4, 4.0, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 1, "clip": 1.0, "n_parties": 2, "key_bits": 512},
        {"k": 53, "clip": 1.0, "n_parties": 2, "key_bits": 512},
        {"k": 16, "clip": 0.0, "n_parties": 2, "key_bits": 512},
        {"k": 16, "clip": float("inf"), "n_parties": 2, "key_bits": 512},
        {"k": 16, "clip": 1.0, "n_parties": 0, "key_bits": 512},
    ],
)
def test_bad_parameters_are_value_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PackingSpec(**kwargs)  # type: ignore[arg-type]


def test_malformed_aggregate_is_a_crypto_error() -> None:
    spec = PackingSpec(16, 1.0, 3, 512)
    good = _aggregate([spec.pack(np.ones(10), 1.0) for _ in range(3)])
    with pytest.raises(CryptoError, match="slot"):
        spec.unpack([0], 3, 3.0, 10)  # slot sums below n'
    with pytest.raises(CryptoError, match="K·w"):
        spec.unpack([2 ** (spec.slots_per_plaintext * spec.slot_bits)], 3, 3.0, 10)
    with pytest.raises(CryptoError, match="slot"):
        spec.unpack(good, 2, 2.0, 10)  # claimed fewer contributions than summed
    with pytest.raises(ValueError, match="plaintexts"):
        spec.unpack(good + good, 3, 3.0, 10)


def test_bad_inputs_to_pack() -> None:
    spec = PackingSpec(16, 1.0, 3, 512)
    with pytest.raises(ValueError, match="NaN"):
        spec.pack(np.array([0.0, np.nan]), 1.0)
    with pytest.raises(ValueError, match="flat"):
        spec.pack(np.zeros((2, 2)), 1.0)
    for bad_weight in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="weight"):
            spec.pack(np.zeros(3), bad_weight)


def test_empty_update_round_trips() -> None:
    spec = PackingSpec(16, 1.0, 2, 512)
    assert spec.pack(np.zeros(0), 1.0) == []
    assert spec.unpack([], 2, 2.0, 0).shape == (0,)


def test_fedavg_weights_average_to_one() -> None:
    weights = fedavg_weights([1, 1, 2])
    assert weights == [0.75, 0.75, 1.5]
    assert fedavg_weights([5, 5]) == [1.0, 1.0]
    with pytest.raises(ValueError):
        fedavg_weights([1, 0])


def test_measured_error_shapes() -> None:
    assert measured_error(np.array([1.0, 2.0]), np.array([1.5, 2.0])) == 0.5
    with pytest.raises(ValueError):
        measured_error(np.zeros(2), np.zeros(3))
