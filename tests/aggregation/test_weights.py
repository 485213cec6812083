"""Bounded FedAvg weights: a declared size cannot buy more than max_share of the mean."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkadapt.aggregation.strategy import make_strategy
from zkadapt.aggregation.weights import bounded_shares
from zkadapt.config import config_from_dict, example_config
from zkadapt.protocol.schemes import PlainScheme
from zkadapt.protocol.update import PlainUpdate


def test_fedavg_stays_bit_for_bit_when_no_cap_binds() -> None:
    assert bounded_shares([100, 120, 110], max_share=0.5) is None
    assert bounded_shares([100, 120], max_share=None) is None


def test_a_party_declaring_a_trillion_samples_gets_half_and_the_rest_share_the_other_half() -> None:
    assert bounded_shares([10**12, 1000, 3000], max_share=0.5) == [0.5, 0.125, 0.375]


def test_equal_weighting_and_an_infeasible_cap_give_equal_shares() -> None:
    assert bounded_shares([5, 1, 1], weighting="equal") == [1 / 3] * 3
    assert bounded_shares([5, 1, 1], max_share=0.2) == [1 / 3] * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"counts": []}, "positive"),
        ({"counts": [1, 0]}, "positive"),
        ({"counts": [1], "weighting": "median"}, "weighting"),
        ({"counts": [1], "max_share": 1.5}, "max_share"),
    ],
)
def test_misuse_is_refused(kwargs: dict[str, Any], match: str) -> None:
    counts = kwargs.pop("counts")
    with pytest.raises(ValueError, match=match):
        bounded_shares(counts, **kwargs)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    counts=st.lists(st.integers(1, 10**15), min_size=2, max_size=12),
    cap=st.floats(0.05, 1.0),
)
def test_shares_sum_to_one_respect_the_cap_and_keep_the_order(
    counts: list[int], cap: float
) -> None:
    shares = bounded_shares(counts, max_share=cap)
    if shares is None:
        assert all(c / sum(counts) <= cap for c in counts)
        return
    assert math.isclose(sum(shares), 1.0, rel_tol=1e-9)
    if cap * len(counts) > 1:
        assert max(shares) <= cap * (1 + 1e-12)
    for i, j in itertools.pairwise(range(len(counts))):
        if counts[i] <= counts[j]:  # a smaller declared size never gets a larger share
            assert shares[i] <= shares[j] + 1e-15


class _IO:
    class ctx:
        session_id = "s" * 64


def test_the_plain_mean_bounds_a_lying_party(tmp_path: Any) -> None:
    deltas = [np.full(4, 8.0, np.float32), np.zeros(4, np.float32), np.full(4, 4.0, np.float32)]
    sizes = [10**12, 1000, 1000]
    scheme = PlainScheme(make_strategy("fedavg"), max_share=0.5)
    accepted = {
        name: PlainUpdate("s" * 64, 1, name, n, d)
        for name, n, d in zip(("alice", "bob", "carol"), sizes, deltas, strict=True)
    }
    scheme.sum(1, accepted, _IO())  # type: ignore[arg-type]
    mean = scheme.combine(1, (), _IO())  # type: ignore[arg-type]
    np.testing.assert_allclose(mean, 0.5 * 8 + 0.25 * 0 + 0.25 * 4)
    uncapped = PlainScheme(make_strategy("fedavg"))
    uncapped.sum(1, accepted, _IO())  # type: ignore[arg-type]
    assert uncapped.combine(1, (), _IO())[0] > 7.99  # type: ignore[arg-type]  # today's FedAvg


def test_new_keys_leave_old_session_ids_alone_and_change_them_when_set() -> None:
    base = example_config("mnist")
    assert "weighting" not in base.to_toml() and base.max_weight_share == 0.5
    raw = base.model_dump(mode="json")
    raw["aggregation"]["weighting"] = "equal"
    changed = config_from_dict(raw)
    assert changed.session_id != base.session_id and changed.seed_id != base.seed_id
    assert 'weighting = "equal"' in changed.to_toml()
    assert config_from_dict(base.model_dump(mode="json")).session_id == base.session_id
    raw["aggregation"].update(weighting="declared", max_weight=0.4)
    assert config_from_dict(raw).max_weight_share == 0.4


def test_encrypted_sessions_fix_bounded_weights_at_key_time() -> None:
    """The weights every party seals with come from the declared sizes, capped the same way."""
    from zkadapt.crypto.identity import IdentityKey
    from zkadapt.protocol.secure_aggregation import PaillierScheme

    keyring = {n: IdentityKey.generate().public for n in ("alice", "bob", "carol")}
    common = dict(
        keyring=keyring, n_samples=1, key_bits=512, threshold=2, keygen="dealer",
        dealer="alice", quant_bits=16, clip=1.0, refresh_every=None, timeout_s=1.0,
    )  # fmt: skip
    sizes = {"alice": 10**12, "bob": 1000, "carol": 3000}

    class History:
        def joined(self, before: int | None = None) -> dict[str, int]:
            return sizes

        def key_dealt(self, epoch: int, dealer: str | None) -> None:
            return None

    class IO:
        history = History()

    capped = PaillierScheme(**common, max_share=0.5)  # type: ignore[arg-type]
    capped.epochs._fix_weights(1, IO())  # type: ignore[arg-type]
    assert capped.epochs.weights == {"alice": 1.5, "bob": 0.375, "carol": 1.125}
    fedavg = PaillierScheme(**common)  # type: ignore[arg-type]
    fedavg.epochs._fix_weights(1, IO())  # type: ignore[arg-type]
    assert fedavg.epochs.weights["alice"] > 2.99
