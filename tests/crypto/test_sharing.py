"""Tests for zkadapt.crypto.sharing: Shamir and additive shares, integer Lagrange coefficients."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from zkadapt.crypto.sharing import (
    additive_share,
    factorial_delta,
    interpolate_at_zero,
    lagrange_coefficients,
    shamir_share,
)

# A composite modulus like N·m (no field structure): 2^61 − 1 times a 64-bit safe prime.
MODULUS = (2**61 - 1) * 14115498260086950263


@pytest.mark.parametrize(("t", "n"), [(1, 1), (2, 3), (3, 5), (4, 7), (5, 5)])
def test_every_t_subset_recovers_delta_times_secret(t: int, n: int) -> None:
    secret = 123456789123456789 % MODULUS
    shares = shamir_share(secret, t, n, MODULUS)
    assert sorted(shares) == list(range(1, n + 1))
    delta = factorial_delta(n)
    for subset in itertools.combinations(shares, t):
        picked = {i: shares[i] for i in subset}
        assert interpolate_at_zero(picked, delta, MODULUS) == delta * secret % MODULUS


def test_more_than_t_shares_also_interpolate() -> None:
    shares = shamir_share(42, 2, 5, MODULUS)
    assert interpolate_at_zero(shares, math.factorial(5), MODULUS) == 42 * 120


def test_fewer_than_t_shares_give_garbage() -> None:
    shares = shamir_share(42, 3, 5, MODULUS)
    picked = {1: shares[1], 2: shares[2]}
    assert interpolate_at_zero(picked, 120, MODULUS) != 42 * 120


def test_additive_shares_sum_to_secret() -> None:
    shares = additive_share(99, 4, MODULUS)
    assert sorted(shares) == [1, 2, 3, 4]
    assert sum(shares.values()) % MODULUS == 99
    assert all(0 <= s < MODULUS for s in shares.values())


@pytest.mark.parametrize("n", range(1, 8))
def test_lagrange_coefficients_are_integers_matching_fractions(n: int) -> None:
    delta = math.factorial(n)
    for size in range(1, n + 1):
        for subset in itertools.combinations(range(1, n + 1), size):
            mu = lagrange_coefficients(subset, delta)
            for i in subset:
                exact = delta * math.prod(Fraction(j, j - i) for j in subset if j != i)
                assert exact.denominator == 1 and mu[i] == exact.numerator
            assert sum(mu.values()) == delta  # interpolating the constant 1


def test_lagrange_rejects_a_delta_that_does_not_divide() -> None:
    with pytest.raises(ValueError, match="integer"):
        lagrange_coefficients([1, 3], 1)  # μ_1 = 3/2


@pytest.mark.parametrize("indices", [[], [0, 1], [1, 1], [-1, 2]])
def test_lagrange_rejects_bad_indices(indices: list[int]) -> None:
    with pytest.raises(ValueError, match="distinct positive"):
        lagrange_coefficients(indices, 6)


def test_bad_sharing_parameters() -> None:
    with pytest.raises(ValueError):
        shamir_share(1, 4, 3, MODULUS)
    with pytest.raises(ValueError):
        shamir_share(1, 0, 3, MODULUS)
    with pytest.raises(ValueError):
        shamir_share(MODULUS, 2, 3, MODULUS)
    with pytest.raises(ValueError):
        additive_share(-1, 3, MODULUS)
    with pytest.raises(ValueError):
        factorial_delta(0)
