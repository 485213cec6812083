"""How much each accepted update counts: FedAvg weights, bounded against a lying party.

FedAvg weighs party i by its declared training-set size n_i (McMahan et al. 2017). A party
that declares ``n_samples = 10**12`` would then drive every honest weight to ~0 and own the
global model (docs/threats.md section 3). ``aggregation.weighting = "declared"`` keeps the
FedAvg shares but caps each at ``max_share`` (default 1/2 with three or more parties),
giving the excess to the others in proportion to their own declared sizes ("water
filling"); ``"equal"`` ignores the declared sizes altogether.

Pure functions over plain floats, evaluated in a fixed order, so every party and the audit
get the same bits.
"""

from __future__ import annotations

from collections.abc import Sequence

#: ``aggregation.weighting`` values.
WEIGHTINGS = ("declared", "equal")


def bounded_shares(
    counts: Sequence[float], *, weighting: str = "declared", max_share: float | None = None
) -> list[float] | None:
    """Each party's share of the mean (summing to 1), or None when plain FedAvg holds.

    None means: no cap binds and the weighting is ``"declared"``, so the caller keeps the
    raw counts as weights (bit-for-bit what sessions recorded before the cap computed).

    Args:
        counts: declared sizes, positive, in the caller's (party-name) order.
        weighting: ``"declared"`` (FedAvg, capped) or ``"equal"``.
        max_share: the largest share one party may have; below ``1/len(counts)`` no
            allocation fits, so every share becomes equal.

    Raises:
        ValueError: no counts, a non-positive count, an unknown weighting or a cap outside
            (0, 1].
    """
    n = len(counts)
    if n == 0 or any(not c > 0 for c in counts):
        raise ValueError("declared sizes must be positive and non-empty")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")
    if max_share is not None and not 0 < max_share <= 1:
        raise ValueError(f"max_share must lie in (0, 1], got {max_share}")
    if weighting == "equal" or (max_share is not None and max_share * n <= 1):
        return [1.0 / n] * n
    total = float(sum(counts))
    if max_share is None or all(c / total <= max_share for c in counts):
        return None
    capped: set[int] = set()
    while True:
        free = [i for i in range(n) if i not in capped]
        rest = 1.0 - max_share * len(capped)
        free_total = float(sum(counts[i] for i in free))
        over = [i for i in free if rest * counts[i] / free_total > max_share]
        if not over:
            break
        capped.update(over)
    return [max_share if i in capped else rest * counts[i] / free_total for i in range(n)]
