"""Seeded init, deterministic SGD and evaluation in zkadapt.learning.mlp."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from zkadapt.learning.base import Learner
from zkadapt.learning.data import Dataset, load_dataset
from zkadapt.learning.mlp import MLPLearner, MLPSpec, build_module, init_state


def _digest(state: dict[str, np.ndarray]) -> str:
    return hashlib.sha256(b"".join(a.tobytes() for a in state.values())).hexdigest()


@pytest.fixture(scope="module")
def mnist_learner() -> MLPLearner:
    splits = load_dataset("mnist", max_train=2000, max_test=2000)
    return MLPLearner(MLPSpec(), splits.train, splits.test.subset(np.arange(500)), splits.test)


def _synthetic(n: int = 300, dim: int = 20, classes: int = 3) -> Dataset:
    rng = np.random.default_rng(5)
    y = rng.integers(0, classes, size=n)
    x = rng.normal(size=(n, dim)).astype(np.float32) + y[:, None].astype(np.float32)
    return Dataset(x, y.astype(np.int64))


def test_init_is_deterministic_and_seed_dependent() -> None:
    spec = MLPSpec()
    assert _digest(init_state(spec, 7)) == _digest(init_state(spec, 7))
    assert _digest(init_state(spec, 7)) != _digest(init_state(spec, 8))


def test_init_matches_the_torch_module_names_and_shapes() -> None:
    spec = MLPSpec(input_dim=12, hidden=(8, 6), num_classes=4)
    state = init_state(spec, 0)
    module_shapes = [(k, tuple(v.shape)) for k, v in build_module(spec).state_dict().items()]
    assert [(k, v.shape) for k, v in state.items()] == module_shapes
    assert list(state)[:2] == ["layers.0.weight", "layers.0.bias"]
    assert all(a.dtype == np.float32 for a in state.values())


def test_init_follows_torch_linear_bounds() -> None:
    state = init_state(MLPSpec(), 1)
    for name, fan_in in (("layers.0", 784), ("layers.1", 128)):
        bound = 1 / math.sqrt(fan_in)
        for suffix in (".weight", ".bias"):
            values = state[name + suffix]
            assert np.abs(values).max() <= bound
            assert np.abs(values).max() > 0.9 * bound


def test_init_regression_vector_pins_the_pcg64_stream() -> None:
    state = init_state(MLPSpec(), 0)
    expected = [-0.023731442168354988, 0.02001812309026718, -0.03013553097844124]
    assert state["layers.0.bias"][:3].tolist() == expected
    assert _digest(state) == "62f17aad318117ee8b48c2c36ad542e21db8cdd50dedb46bf9393dacb784d63c"


def test_one_epoch_on_2000_mnist_samples_beats_chance(mnist_learner: MLPLearner) -> None:
    assert isinstance(mnist_learner, Learner)
    start = mnist_learner.initial_state(0)
    before = mnist_learner.evaluate(start, "global")
    result = mnist_learner.train(start, seed=1)
    after = mnist_learner.evaluate(result.state, "global")
    assert before["accuracy"] < 0.2
    assert after["accuracy"] > 0.5
    assert after["loss"] < before["loss"]
    assert result.n_samples == 2000 and result.steps == math.ceil(2000 / 64)
    assert 0.0 < result.train_loss < before["loss"]
    assert mnist_learner.evaluate(result.state, "local")["n_samples"] == 500.0


def test_training_is_bit_identical_and_leaves_the_input_alone(mnist_learner: MLPLearner) -> None:
    start = mnist_learner.initial_state(3)
    snapshot = {k: v.copy() for k, v in start.items()}
    first = mnist_learner.train(start, seed=9)
    second = mnist_learner.train(start, seed=9)
    other = mnist_learner.train(start, seed=10)
    assert all(np.array_equal(start[k], snapshot[k]) for k in start)
    assert _digest(first.state) == _digest(second.state)
    assert first.train_loss == second.train_loss
    assert _digest(first.state) != _digest(other.state)


_FRESH_PROCESS = textwrap.dedent(
    """
    import hashlib, numpy as np
    from zkadapt.learning.data import Dataset
    from zkadapt.learning.mlp import MLPLearner, MLPSpec
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=300)
    x = rng.normal(size=(300, 20)).astype(np.float32) + y[:, None].astype(np.float32)
    ds = Dataset(x, y.astype(np.int64))
    learner = MLPLearner(MLPSpec(20, (16,), 3), ds, ds, ds, epochs=2, batch_size=32, momentum=0.5)
    out = learner.train(learner.initial_state(4), seed=2).state
    print(hashlib.sha256(b"".join(a.tobytes() for a in out.values())).hexdigest())
    """
)


def test_training_is_bit_identical_in_a_fresh_process() -> None:
    ds = _synthetic()
    learner = MLPLearner(MLPSpec(20, (16,), 3), ds, ds, ds, epochs=2, batch_size=32, momentum=0.5)
    here = _digest(learner.train(learner.initial_state(4), seed=2).state)
    run = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS], capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == here


def test_evaluate_rejects_unknown_split_and_handles_empty_ones() -> None:
    ds = _synthetic()
    empty = ds.subset(np.array([], dtype=np.int64))
    learner = MLPLearner(MLPSpec(20, (16,), 3), ds, empty, ds)
    state = learner.initial_state(0)
    with pytest.raises(ValueError, match="valid splits: local, global"):
        learner.evaluate(state, "train")
    metrics = learner.evaluate(state, "local")
    assert math.isnan(metrics["accuracy"]) and metrics["n_samples"] == 0.0


def test_mismatched_state_and_data_are_value_errors() -> None:
    ds = _synthetic()
    learner = MLPLearner(MLPSpec(20, (16,), 3), ds, ds, ds)
    state = learner.initial_state(0)
    state["layers.0.bias"] = np.zeros(15, np.float32)
    with pytest.raises(ValueError, match=r"layers\.0\.bias"):
        learner.train(state, seed=0)
    with pytest.raises(ValueError, match="features"):
        MLPLearner(MLPSpec(), ds, ds, ds)
    with pytest.raises(ValueError, match="labels outside"):
        MLPLearner(MLPSpec(20, (16,), 2), ds, ds, ds)
    with pytest.raises(ValueError, match="seed"):
        learner.train(learner.initial_state(0), seed=-1)
