"""Split one data set's indices among parties: IID or label-skewed (Dirichlet).

Every party runs the same pure function on the same labels and seed, so every party derives
the same partition without talking to the others. Randomness comes only from numpy's
``Generator(PCG64)``, whose bit stream numpy keeps stable across versions and machines.
"""

from __future__ import annotations

import numpy as np

from zkadapt.errors import DataError

SCHEMES = ("iid", "dirichlet")
MAX_DIRICHLET_ATTEMPTS = 100


class TooFewExamples(DataError, ValueError):
    """The data cannot give every party an example: the user's data or settings, not a bug
    (a :class:`DataError`, so the CLI prints one line; a ``ValueError`` for older callers)."""


def partition(
    labels: np.ndarray,
    n_parties: int,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """Assign every example to exactly one party.

    Args:
        labels: 1-D integer class labels, one per example.
        n_parties: number of parties, at least 1 and at most ``len(labels)``.
        scheme: ``"iid"`` (a seeded permutation cut into near-equal parts, sizes differing by
            at most one) or ``"dirichlet"`` (per-class proportions drawn from
            ``Dirichlet(alpha)``, Hsu, Qi and Brown 2019, "Measuring the Effects of
            Non-Identical Data Distribution for Federated Visual Classification",
            arXiv:1909.06335; smaller ``alpha`` means more label skew).
        alpha: Dirichlet concentration, > 0; ignored for ``"iid"``.
        seed: non-negative integer; the same seed always gives the same partition.

    Returns:
        ``n_parties`` sorted int64 index arrays, pairwise disjoint, together covering
        ``range(len(labels))``, none of them empty.

    Raises:
        ValueError: bad arguments.
        TooFewExamples: fewer examples than parties, or (``"dirichlet"``) no draw in
            ``MAX_DIRICHLET_ATTEMPTS`` gave every party at least one example.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or not (y.size == 0 or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    if isinstance(n_parties, bool) or not isinstance(n_parties, int) or n_parties < 1:
        raise ValueError(f"n_parties must be a positive integer, got {n_parties!r}")
    if n_parties > len(y):
        raise TooFewExamples(
            f"cannot give {n_parties} parties a sample each from {len(y)} examples; "
            "use more data (data.max_train/max_test) or fewer parties"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if scheme == "iid":
        return _iid(len(y), n_parties, seed)
    if scheme == "dirichlet":
        if not alpha > 0.0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        return _dirichlet(y, n_parties, float(alpha), seed)
    raise ValueError(f"unknown partition scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")


def _iid(n: int, n_parties: int, seed: int) -> list[np.ndarray]:
    """A seeded permutation cut into ``n_parties`` parts whose sizes differ by at most one."""
    order = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, n_parties)]


def _dirichlet(y: np.ndarray, n_parties: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Hsu et al. (2019): for each class, split its shuffled examples by Dirichlet proportions.

    A draw that leaves a party empty is retried with the derived seed ``[seed, attempt]``
    (a ``SeedSequence`` of both), so the outcome is still a pure function of ``seed``.
    """
    for attempt in range(MAX_DIRICHLET_ATTEMPTS):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, attempt])))
        parts = _dirichlet_draw(y, n_parties, alpha, rng)
        if all(len(part) > 0 for part in parts):
            return parts
    raise TooFewExamples(
        f"no Dirichlet(alpha={alpha}) draw in {MAX_DIRICHLET_ATTEMPTS} attempts gave each of "
        f"{n_parties} parties a sample from {len(y)} examples; raise alpha or use fewer parties"
    )


def _dirichlet_draw(
    y: np.ndarray, n_parties: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """One draw: classes in ascending order, each cut at its cumulative proportions."""
    buckets: list[list[np.ndarray]] = [[] for _ in range(n_parties)]
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        proportions = rng.dirichlet(np.full(n_parties, alpha))
        cuts = (np.cumsum(proportions)[:-1] * len(members)).astype(np.int64)
        for bucket, chunk in zip(buckets, np.split(members, cuts), strict=True):
            bucket.append(chunk)
    return [np.sort(np.concatenate(chunks)).astype(np.int64) for chunks in buckets]
