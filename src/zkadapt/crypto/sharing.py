"""Secret sharing over Z_M and integer Lagrange coefficients (CRYPTO.md §1 and §4).

The threshold key (:mod:`zkadapt.crypto.threshold`) shares d over Z_M with M = N·m, where
m = p'q' is secret. Z_M is not a field and M's factorization is secret, so nobody can invert
the Lagrange denominators mod M. Shoup (EUROCRYPT 2000) avoids the inversion by scaling with
Δ = n!: for any set S ⊆ {1..n}

    μ_i = Δ · Π_{j∈S, j≠i} j / (j − i)        (an integer, possibly negative)

and ``Σ_{i∈S} μ_i · f(i) = Δ · f(0)`` holds over the integers for every polynomial f of degree
< |S| with integer coefficients. Reducing the shares mod M only adds multiples of M, which
vanish in the exponent. Everything here is exact integer arithmetic with no fractions.

Secret: the shared value and every share. The coefficients μ_i and Δ are public.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping


def _check_counts(t: int, n: int, modulus: int) -> None:
    if n < 1 or not 1 <= t <= n:
        raise ValueError(f"need 1 ≤ t ≤ n, got t={t}, n={n}")
    if modulus < 2:
        raise ValueError("modulus must be at least 2")


def shamir_share(secret: int, t: int, n: int, modulus: int) -> dict[int, int]:
    """Shamir t-of-n sharing over Z_M (Shamir 1979; CRYPTO.md §1 ``dealer``).

    ``f(X) = secret + a_1 X + … + a_{t−1} X^{t−1}`` with each a_j uniform in [0, M) from
    ``secrets``; the share of party i is ``s_i = f(i) mod M`` for i = 1..n.

    Args:
        secret: the value to share, 0 ≤ secret < M.
        t: threshold (the polynomial has degree t − 1); 1 ≤ t ≤ n.
        n: number of parties.
        modulus: M.

    Returns:
        ``{i: s_i}`` for i = 1..n (secret; each goes to one party only).
    """
    _check_counts(t, n, modulus)
    if not 0 <= secret < modulus:
        raise ValueError("secret outside [0, M)")
    coefficients = [secret] + [secrets.randbelow(modulus) for _ in range(t - 1)]
    shares: dict[int, int] = {}
    for i in range(1, n + 1):
        acc = 0
        for a in reversed(coefficients):  # Horner's rule
            acc = (acc * i + a) % modulus
        shares[i] = acc
    return shares


def additive_share(secret: int, n: int, modulus: int) -> dict[int, int]:
    """Additive n-of-n sharing over Z_M (CRYPTO.md §1 ``additive``).

    d_1..d_{n−1} uniform in [0, M), ``d_n = (secret − Σ d_i) mod M``; any n − 1 shares are
    uniform and independent of the secret.

    Returns:
        ``{i: d_i}`` for i = 1..n, summing to the secret mod M (secret).
    """
    _check_counts(n, n, modulus)
    if not 0 <= secret < modulus:
        raise ValueError("secret outside [0, M)")
    shares = {i: secrets.randbelow(modulus) for i in range(1, n)}
    shares[n] = (secret - sum(shares.values())) % modulus
    return shares


def lagrange_coefficients(indices: Iterable[int], delta: int) -> dict[int, int]:
    """Integer Lagrange coefficients at 0, scaled by Δ (CRYPTO.md §4).

    ``μ_i = Δ · Π_{j≠i} j / (j − i)`` over the distinct positive ``indices``, computed as one
    exact division of integers. For S ⊆ {1..n} and Δ = n! the division is always exact: the
    denominator's absolute value divides (i−1)!·(n−i)!, which divides n!.

    Args:
        indices: the party indices in S (distinct, ≥ 1).
        delta: the scale Δ (n! for Shamir shares).

    Returns:
        ``{i: μ_i}``; the μ_i may be negative.

    Raises:
        ValueError: repeated or non-positive indices, or a Δ that does not make some μ_i an
            integer (the set does not fit the Δ the shares were dealt with).
    """
    s = sorted(indices)
    if not s or s[0] < 1 or len(set(s)) != len(s):
        raise ValueError(f"indices must be distinct positive integers, got {s}")
    coefficients: dict[int, int] = {}
    for i in s:
        numerator, denominator = delta, 1
        for j in s:
            if j != i:
                numerator *= j
                denominator *= j - i
        mu, remainder = divmod(numerator, denominator)
        if remainder:
            raise ValueError(f"Δ={delta} does not make μ_{i} an integer for indices {s}")
        coefficients[i] = mu
    return coefficients


def interpolate_at_zero(shares: Mapping[int, int], delta: int, modulus: int) -> int:
    """Return ``Σ μ_i s_i mod M = Δ · f(0) mod M`` from |S| ≥ t shares ``{i: s_i}``.

    For tests and for values that may be reconstructed; the threshold key never uses this (its
    secret is only ever used in the exponent).
    """
    mu = lagrange_coefficients(shares, delta)
    return sum(mu[i] * s for i, s in shares.items()) % modulus


def factorial_delta(n: int) -> int:
    """Shoup's Δ = n! for n parties."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return math.factorial(n)
