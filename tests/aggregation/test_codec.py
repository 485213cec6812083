"""The flat-vector codec in zkadapt.aggregation.codec."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import zkadapt.aggregation.codec as codec_module
from zkadapt.aggregation.codec import FlatCodec


def _state() -> dict[str, np.ndarray]:
    return {
        "layers.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "layers.0.bias": np.array([10.0, 11.0], dtype=np.float32),
        "scale": np.array(0.5, dtype=np.float16),
    }


def test_docstring_examples_run() -> None:
    result = doctest.testmod(codec_module)
    assert result.attempted > 0 and result.failed == 0


def test_roundtrip_restores_names_shapes_dtypes_and_values() -> None:
    state = _state()
    codec = FlatCodec(state)
    vec = codec.flatten(state)
    assert codec.size == 9 and vec.dtype == np.float32 and vec.shape == (9,)
    np.testing.assert_array_equal(vec, [0, 1, 2, 3, 4, 5, 10, 11, 0.5])
    back = codec.unflatten(vec)
    assert list(back) == list(state)
    for name, array in state.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        np.testing.assert_array_equal(back[name], array)


def test_layout_follows_the_reference_not_the_input_order() -> None:
    codec = FlatCodec(_state())
    shuffled = dict(reversed(list(_state().items())))
    np.testing.assert_array_equal(codec.flatten(shuffled), codec.flatten(_state()))


def test_unflatten_returns_copies() -> None:
    codec = FlatCodec(_state())
    vec = codec.flatten(_state())
    back = codec.unflatten(vec)
    back["layers.0.bias"][0] = -1.0
    assert vec[6] == 10.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("layers.0.bias"), "'layers.0.bias': missing"),
        (lambda s: s.update(extra=np.zeros(1, np.float32)), "'extra': not in"),
        (lambda s: s.update(scale=np.zeros(2, np.float16)), r"'scale': expected shape \(\)"),
        (
            lambda s: s.update({"layers.0.weight": np.zeros((2, 3), np.float64)}),
            "'layers.0.weight': expected dtype float32",
        ),
    ],
)
def test_flatten_names_the_mismatched_tensor(change, message: str) -> None:
    codec = FlatCodec(_state())
    state = _state()
    change(state)
    with pytest.raises(ValueError, match=message):
        codec.flatten(state)


def test_unflatten_and_construction_reject_bad_input() -> None:
    codec = FlatCodec(_state())
    with pytest.raises(ValueError, match="length 9"):
        codec.unflatten(np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="float32"):
        codec.unflatten(np.zeros(9, np.float64))
    with pytest.raises(ValueError, match="at least one"):
        FlatCodec({})
    with pytest.raises(ValueError, match="'n'"):
        FlatCodec({"n": np.zeros(2, np.int64)})
