"""IID and Dirichlet partitions in zkadapt.learning.partition."""

from __future__ import annotations

import numpy as np
import pytest

from zkadapt.learning.partition import partition

LABELS = np.repeat(np.arange(10), 200)


def _check_is_partition(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    for part in parts:
        assert part.dtype == np.int64
        assert len(part) > 0
        assert np.all(np.diff(part) > 0)


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_parts_are_sorted_disjoint_and_cover_everything(scheme: str) -> None:
    parts = partition(LABELS, 7, scheme, alpha=0.5, seed=3)
    assert len(parts) == 7
    _check_is_partition(parts, len(LABELS))


@pytest.mark.parametrize("scheme", ["iid", "dirichlet"])
def test_same_seed_same_parts_other_seed_other_parts(scheme: str) -> None:
    first = partition(LABELS, 4, scheme, seed=11)
    again = partition(LABELS, 4, scheme, seed=11)
    other = partition(LABELS, 4, scheme, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(
        len(a) == len(b) and np.array_equal(a, b) for a, b in zip(first, other, strict=True)
    )


def test_iid_sizes_differ_by_at_most_one() -> None:
    sizes = [len(p) for p in partition(np.zeros(1003, np.int64), 10)]
    assert max(sizes) - min(sizes) <= 1


def _mean_top_class_share(parts: list[np.ndarray]) -> float:
    shares = [np.bincount(LABELS[p], minlength=10).max() / len(p) for p in parts]
    return float(np.mean(shares))


def test_dirichlet_with_small_alpha_is_label_skewed() -> None:
    iid = _mean_top_class_share(partition(LABELS, 5, "iid", seed=0))
    skewed = _mean_top_class_share(partition(LABELS, 5, "dirichlet", alpha=0.05, seed=0))
    assert iid < 0.2
    assert skewed > 0.5


def test_dirichlet_that_cannot_feed_every_party_fails_clearly() -> None:
    with pytest.raises(ValueError, match="attempts"):
        partition(np.zeros(3, np.int64), 3, "dirichlet", alpha=1e-4, seed=0)


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="valid schemes: iid, dirichlet"):
        partition(LABELS, 2, "shards")
    with pytest.raises(ValueError, match="cannot give 5 parties"):
        partition(np.arange(4), 5)
    with pytest.raises(ValueError, match="alpha"):
        partition(LABELS, 2, "dirichlet", alpha=0.0)
    with pytest.raises(ValueError, match="seed"):
        partition(LABELS, 2, seed=-1)
    with pytest.raises(ValueError, match="labels"):
        partition(LABELS.astype(np.float32), 2)
