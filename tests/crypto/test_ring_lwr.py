"""The Ring-LWR seed-homomorphic PRG of the masked scheme (docs/masking.md): exact ring
products, the seed-homomorphism error bound, exact unmasking at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkadapt.crypto.ring_lwr import (
    RING_N,
    MaskParams,
    _schoolbook,
    mask,
    prg,
    public_rows,
    random_seed,
    ring_product,
    seed_sum,
    unmask_sum,
)

SESSION = "5e" * 32


def _uniform(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 1 << 32, size=shape, dtype=np.uint64)


def test_ring_products_equal_the_schoolbook_definition() -> None:
    rng = np.random.default_rng(7)
    a, s = _uniform(rng, 3, RING_N), _uniform(rng, RING_N)
    got = ring_product(a, s)
    for row in range(3):
        np.testing.assert_array_equal(got[row], _schoolbook(a[row], s))
    extreme = np.full(RING_N, (1 << 32) - 1, dtype=np.uint64)  # the largest limbs everywhere
    np.testing.assert_array_equal(ring_product(extreme, extreme), _schoolbook(extreme, extreme))


def test_x_times_x_to_the_n_minus_1_wraps_negatively() -> None:
    """X * X^(N-1) = X^N = -1 in Z_q[X]/(X^N + 1)."""
    x, top = np.zeros(RING_N, np.uint64), np.zeros(RING_N, np.uint64)
    x[1], top[RING_N - 1] = 1, 1
    expected = np.zeros(RING_N, np.uint64)
    expected[0] = (1 << 32) - 1
    np.testing.assert_array_equal(ring_product(x, top), expected)


def test_public_rows_are_seekable_session_bound_and_uniform_looking() -> None:
    whole = public_rows(SESSION, 0, 5)
    np.testing.assert_array_equal(public_rows(SESSION, 3, 2), whole[3:5])
    assert not np.array_equal(public_rows("00" * 32, 0, 1), whole[:1])
    assert abs(float(whole.mean()) / (1 << 32) - 0.5) < 0.01


def test_parameters_follow_the_design() -> None:
    params = MaskParams(k=16, n=10)
    assert (params.guard_bits, params.p_bits) == (5, 26)
    assert MaskParams(k=16, n=3).p_bits == 16 + 2 + 3 + 1
    with pytest.raises(ValueError):
        MaskParams(k=30, n=3)


def _centered(x: np.ndarray, p: int) -> np.ndarray:
    v = x.astype(np.int64) % p
    v[v > p // 2] -= p
    return v


@settings(max_examples=25, deadline=None, derandomize=True)
@given(parties=st.integers(1, 10), seed=st.integers(0, 2**32 - 1), p_bits=st.integers(17, 30))
def test_the_sum_of_prg_outputs_is_the_prg_of_the_seed_sum_up_to_the_bound(
    parties: int, seed: int, p_bits: int
) -> None:
    rng = np.random.default_rng(seed)
    seeds = [_uniform(rng, RING_N) for _ in range(parties)]
    length = RING_N + 77  # two rows, the second one cut
    p = 1 << p_bits
    total = sum((prg(SESSION, s, length, p_bits) for s in seeds), np.zeros(length, np.uint64))
    error = _centered(total % np.uint64(p) - prg(SESSION, seed_sum(seeds), length, p_bits), p)
    assert int(np.abs(error).max()) <= math.ceil((parties + 1) / 2)


@pytest.mark.parametrize("parties", [1, 2, 3, 10])
@pytest.mark.parametrize("case", ["zeros", "maximal", "random"])
def test_unmasking_gives_the_exact_sum(parties: int, case: str) -> None:
    params = MaskParams(k=16, n=parties)
    rng = np.random.default_rng(parties)
    length = 3 * RING_N - 5
    top = (1 << params.k) - 1
    updates = {
        "zeros": [np.zeros(length, np.uint64) for _ in range(parties)],
        "maximal": [np.full(length, top, np.uint64) for _ in range(parties)],
        "random": [rng.integers(0, top + 1, length, dtype=np.uint64) for _ in range(parties)],
    }[case]
    seeds = [random_seed() for _ in range(parties)]
    masked = [mask(SESSION, params, u, s) for u, s in zip(updates, seeds, strict=True)]
    assert all(int(y.max()) < 1 << params.p_bits for y in masked)
    got = unmask_sum(SESSION, params, masked, seed_sum(seeds))
    np.testing.assert_array_equal(got, sum(u.astype(np.int64) for u in updates))


def test_one_accepted_party_short_still_decodes_the_rest_exactly() -> None:
    """The sum over any accepted subset unmasks with that subset's seed sum."""
    params = MaskParams(k=16, n=3)
    rng = np.random.default_rng(3)
    updates = [rng.integers(0, 1 << 16, RING_N, dtype=np.uint64) for _ in range(3)]
    seeds = [random_seed() for _ in range(3)]
    masked = [mask(SESSION, params, u, s) for u, s in zip(updates, seeds, strict=True)]
    got = unmask_sum(SESSION, params, masked[:2], seed_sum(seeds[:2]))
    np.testing.assert_array_equal(got, updates[0].astype(np.int64) + updates[1].astype(np.int64))
    wrong = unmask_sum(SESSION, params, masked[:2], seed_sum(seeds))  # a seed too many
    assert not np.array_equal(wrong, got)


def test_a_masked_vector_hides_the_update() -> None:
    params = MaskParams(k=16, n=3)
    zeros = mask(SESSION, params, np.zeros(4 * RING_N, np.uint64), random_seed())
    p = 1 << params.p_bits
    assert abs(float(zeros.mean()) / p - 0.5) < 0.02  # looks uniform, not like zeros


def test_seeds_are_fresh_and_values_out_of_range_are_refused() -> None:
    assert not np.array_equal(random_seed(), random_seed())
    params = MaskParams(k=8, n=2)
    with pytest.raises(ValueError, match=r"\[0, 2\^8\)"):
        mask(SESSION, params, np.array([256], np.uint64), random_seed())
