"""FedAvg and DiLoCo over flat vectors in zkadapt.aggregation.strategy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zkadapt.aggregation.strategy import STRATEGIES, DiLoCo, FedAvg, FFALoRA, make_strategy


def _f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_weighted_mean_is_exact_on_hand_values() -> None:
    mean = FedAvg().mean_delta([_f32(1, 2), _f32(3, 4)], [1, 3])
    assert mean.dtype == np.float32
    np.testing.assert_array_equal(mean, _f32(2.5, 3.5))


def test_accumulation_follows_the_given_order() -> None:
    big, one, minus_big = _f32(1e30), _f32(1.0), _f32(-1e30)
    # In float64, (1e30 + 1) - 1e30 == 0 but (1e30 - 1e30) + 1 == 1: the order is visible.
    assert FedAvg().mean_delta([big, one, minus_big], [1, 1, 1])[0] == 0.0
    assert FedAvg().mean_delta([big, minus_big, one], [1, 1, 1])[0] == np.float32(1 / 3)


def test_mean_delta_does_not_touch_its_inputs() -> None:
    deltas = [_f32(1, 2, 3), _f32(-1, 0, 5)]
    for delta in deltas:
        delta.setflags(write=False)
    weights = [2.0, 1.0]
    FedAvg().mean_delta(deltas, weights)
    np.testing.assert_array_equal(deltas[0], _f32(1, 2, 3))
    assert weights == [2.0, 1.0]


def test_mean_delta_rejects_bad_input() -> None:
    fedavg = FedAvg()
    with pytest.raises(ValueError, match="zero deltas"):
        fedavg.mean_delta([], [])
    with pytest.raises(ValueError, match="2 deltas but 1 weights"):
        fedavg.mean_delta([_f32(1), _f32(2)], [1])
    with pytest.raises(ValueError, match="total weight"):
        fedavg.mean_delta([_f32(1), _f32(2)], [0, 0])
    with pytest.raises(ValueError, match="weight 1"):
        fedavg.mean_delta([_f32(1), _f32(2)], [1, -1])
    with pytest.raises(ValueError, match="delta 1 has length 2"):
        fedavg.mean_delta([_f32(1), _f32(1, 2)], [1, 1])
    with pytest.raises(ValueError, match="float32"):
        fedavg.mean_delta([np.ones(2)], [1])


def test_fedavg_outer_step_adds_the_mean_delta() -> None:
    new, momentum = FedAvg().outer_step(_f32(1, 2), _f32(0.5, -1), None)
    np.testing.assert_array_equal(new, _f32(1.5, 1))
    assert momentum is None


def test_diloco_without_momentum_and_unit_lr_is_fedavg_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    global_vec = (rng.normal(size=10_000) * 10.0 ** rng.integers(-6, 6, 10_000)).astype(np.float32)
    delta = (rng.normal(size=10_000) * 10.0 ** rng.integers(-9, 3, 10_000)).astype(np.float32)
    expected, _ = FedAvg().outer_step(global_vec, delta, None)
    got, momentum = DiLoCo(outer_lr=1.0, momentum=0.0).outer_step(global_vec, delta, None)
    np.testing.assert_array_equal(got, expected)
    assert momentum is not None and momentum.dtype == np.float32


def test_diloco_matches_torch_sgd_with_nesterov_on_the_pseudo_gradient() -> None:
    rng = np.random.default_rng(1)
    global_vec = rng.normal(size=50).astype(np.float32)
    deltas = [rng.normal(size=50).astype(np.float32) * 0.1 for _ in range(3)]
    param = torch.nn.Parameter(torch.tensor(global_vec))
    optimizer = torch.optim.SGD([param], lr=0.7, momentum=0.9, nesterov=True)
    strategy, vec, momentum = DiLoCo(), global_vec, None
    for delta in deltas:
        vec, momentum = strategy.outer_step(vec, delta, momentum)
        param.grad = torch.tensor(-delta)
        optimizer.step()
    np.testing.assert_allclose(vec, param.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_diloco_checks_hyperparameters_and_momentum_shape() -> None:
    with pytest.raises(ValueError, match="outer_lr"):
        DiLoCo(outer_lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        DiLoCo(momentum=1.0)
    with pytest.raises(ValueError, match="momentum has length 3"):
        DiLoCo().outer_step(_f32(1, 2), _f32(1, 2), _f32(0, 0, 0))


def test_registry_builds_by_name_and_lists_valid_names() -> None:
    assert set(STRATEGIES) == {"fedavg", "diloco", "ffa-lora"}
    assert isinstance(make_strategy("fedavg"), FedAvg)
    diloco = make_strategy("diloco", outer_lr=0.5, momentum=0.8)
    assert isinstance(diloco, DiLoCo) and diloco.outer_lr == 0.5 and diloco.momentum == 0.8
    with pytest.raises(ValueError, match="valid strategies: fedavg, diloco, ffa-lora"):
        make_strategy("fedprox")


def test_ffa_lora_averages_b_exactly_while_plain_factor_averaging_does_not() -> None:
    # two parties adapt the same 3x3 weight with rank-1 LoRA; A is shared under FFA-LoRA
    rng = np.random.default_rng(0)
    a_shared = rng.standard_normal((1, 3)).astype(np.float32)
    b = [rng.standard_normal((3, 1)).astype(np.float32) for _ in range(2)]
    a_own = [rng.standard_normal((1, 3)).astype(np.float32) for _ in range(2)]
    strategy = make_strategy("ffa-lora")
    assert isinstance(strategy, FFALoRA)
    zero_b = np.zeros(3, np.float32)
    b_mean, _ = strategy.outer_step(
        zero_b, strategy.mean_delta([x.ravel() for x in b], [1.0, 1.0]), None
    )
    exact = (b[0] @ a_shared + b[1] @ a_shared) / 2
    np.testing.assert_allclose(b_mean.reshape(3, 1) @ a_shared, exact, rtol=1e-6)
    # averaging A and B separately (plain FedAvg over both factors) misses the cross terms
    plain = ((b[0] + b[1]) / 2) @ ((a_own[0] + a_own[1]) / 2)
    wanted = (b[0] @ a_own[0] + b[1] @ a_own[1]) / 2
    assert not np.allclose(plain, wanted, atol=1e-3)
