"""A party's round checkpoints, with the outer optimizer's momentum beside them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zkadapt.protocol.checkpoints import RoundCheckpoints, SavedRound


def test_a_round_with_momentum_comes_back_whole_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    checkpoints = RoundCheckpoints(tmp_path / "ck", session_id="s1", model_type="mlp")
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}
    momentum = np.linspace(-1, 1, 6, dtype=np.float32)
    for round_ in (1, 2):
        saved = SavedRound(round_, state, momentum * round_, f"{round_:064x}")
        checkpoints.save(saved)
    latest = checkpoints.latest()
    assert latest is not None and latest.round == 2
    assert latest.model_sha256 == f"{2:064x}"
    np.testing.assert_array_equal(latest.state["w"], state["w"])
    assert latest.momentum is not None
    np.testing.assert_array_equal(latest.momentum, momentum * 2)
    assert checkpoints.rounds() == [1, 2]
    leftovers = [p.name for p in (tmp_path / "ck").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_another_sessions_checkpoint_is_not_resumed(tmp_path: Path) -> None:
    state = {"w": np.ones(3, dtype=np.float32)}
    RoundCheckpoints(tmp_path, session_id="old", model_type="mlp").save(
        SavedRound(1, state, None, "a" * 64)
    )
    assert RoundCheckpoints(tmp_path, session_id="new", model_type="mlp").latest() is None
