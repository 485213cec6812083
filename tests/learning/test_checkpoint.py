"""PEFT-shaped checkpoints and the model digest in zkadapt.learning.checkpoint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import zkadapt
from zkadapt.errors import DataError
from zkadapt.learning.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_checkpoint,
    save_checkpoint,
    state_digest,
)


def _state() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "z.weight": rng.normal(size=(3, 4)).astype(np.float32),
        "a.bias": rng.normal(size=3).astype(np.float32),
    }


def test_roundtrip_keeps_order_values_and_meta(tmp_path: Path) -> None:
    state = _state()
    target = tmp_path / "ckpt" / "round-0001"
    digest = save_checkpoint(target, state, {"type": "mlp", "round": 1, "session_id": "s"})
    loaded, config = load_checkpoint(target)
    assert list(loaded) == ["z.weight", "a.bias"]
    assert all(np.array_equal(loaded[k], state[k]) for k in state)
    assert digest == state_digest(state) == config["digest"]
    assert config["type"] == "mlp" and config["round"] == 1
    assert config["zkadapt_version"] == zkadapt.__version__
    assert config["tensor_order"] == ["z.weight", "a.bias"]
    assert sorted(p.name for p in target.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    assert [p.name for p in target.parent.iterdir()] == ["round-0001"]


def test_config_json_has_sorted_keys_and_indent_two(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c", _state(), {"type": "mlp", "base_model": "none"})
    text = (tmp_path / "c" / CONFIG_NAME).read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_digest_changes_when_one_value_changes() -> None:
    state = _state()
    before = state_digest(state)
    state["a.bias"][1] = np.nextafter(state["a.bias"][1], np.float32(np.inf))
    assert state_digest(state) != before


def test_digest_depends_on_order_shape_and_sign_of_zero() -> None:
    state = _state()
    reordered = {"a.bias": state["a.bias"], "z.weight": state["z.weight"]}
    reshaped = {"z.weight": state["z.weight"].reshape(4, 3), "a.bias": state["a.bias"]}
    assert state_digest(reordered) != state_digest(state)
    assert state_digest(reshaped) != state_digest(state)
    zero = {"x": np.zeros(1, np.float32)}
    assert state_digest(zero) != state_digest({"x": -zero["x"]})


def test_digest_matches_the_documented_byte_layout() -> None:
    value = np.array([1.0, -2.0], dtype=np.float32)
    blob = b"zkadapt/state-digest/v1\n" + (1).to_bytes(8, "big")
    blob += (1).to_bytes(4, "big") + b"w" + (3).to_bytes(4, "big") + b"<f4"
    blob += (1).to_bytes(4, "big") + (2).to_bytes(8, "big") + value.astype("<f4").tobytes()
    assert state_digest({"w": value}) == hashlib.sha256(blob).hexdigest()
    assert state_digest({"w": value.astype(">f4")}) == state_digest({"w": value})


def test_overwrites_a_checkpoint_but_not_a_foreign_directory(tmp_path: Path) -> None:
    target = tmp_path / "c"
    save_checkpoint(target, _state(), {"type": "mlp"})
    newer = {"w": np.ones(2, np.float32)}
    save_checkpoint(target, newer, {"type": "mlp"})
    assert list(load_checkpoint(target)[0]) == ["w"]
    assert [p.name for p in tmp_path.iterdir()] == ["c"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing"):
        save_checkpoint(foreign, newer, {"type": "mlp"})
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_meta_must_name_a_type_and_leave_reserved_keys_alone(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="type"):
        save_checkpoint(tmp_path / "c", _state(), {"round": 1})
    with pytest.raises(ValueError, match="digest"):
        save_checkpoint(tmp_path / "c", _state(), {"type": "mlp", "digest": "x"})
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "c", _state(), {"type": "mlp", "when": object()})
    assert not (tmp_path / "c").exists()


def test_missing_or_corrupt_files_are_data_errors(tmp_path: Path) -> None:
    target = tmp_path / "c"
    with pytest.raises(DataError, match=r"config\.json: file not found"):
        load_checkpoint(target)
    save_checkpoint(target, _state(), {"type": "mlp"})
    (target / WEIGHTS_NAME).write_bytes(b"\x00" * 5)
    with pytest.raises(DataError, match=r"model\.safetensors"):
        load_checkpoint(target)
    (target / CONFIG_NAME).write_text("{not json")
    with pytest.raises(DataError, match=r"config\.json"):
        load_checkpoint(target)
    (target / CONFIG_NAME).write_text(json.dumps({"type": "mlp"}))
    with pytest.raises(DataError, match="missing keys"):
        load_checkpoint(target)


def test_tampered_tensors_fail_the_digest_check(tmp_path: Path) -> None:
    target = tmp_path / "c"
    state = _state()
    save_checkpoint(target, state, {"type": "mlp"})
    state["a.bias"][0] += 1.0
    save_file(state, str(target / WEIGHTS_NAME))
    with pytest.raises(DataError, match="digest"):
        load_checkpoint(target)
