"""A causal-LM newcomer's learner (``zkadapt join --data``, docs/membership.md): it trains on
its own text and is evaluated globally on exactly the listed parties' set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")

from tests.learning.tiny_lm import make_tiny_model
from zkadapt.assembly import learner_for, newcomer_learner
from zkadapt.config import SessionConfig, config_from_dict
from zkadapt.errors import DataError, UsageError
from zkadapt.learning.base_model import CACHE_ENV, load_tokenizer, resolve_base
from zkadapt.learning.text_data import OwnText, party_splits
from zkadapt.seeds import derive_seed

PLAYS = {
    "alice": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind.\n",
    "bob": "When shall we three meet again\nIn thunder, lightning, or in rain?\n",
    "carol": "Full fathom five thy father lies;\nOf his bones are coral made;\n",
}
DAVE = "The slings and arrows of outrageous fortune,\nOr to take arms against a sea.\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session folder with a tiny model, the listed parties' text and dave's own."""
    base = tmp_path_factory.mktemp("lm")
    make_tiny_model(base / "tiny")
    for name, text in PLAYS.items():
        (base / f"{name}.txt").write_text(text * 12, encoding="utf-8")
    (base / "dave").mkdir()
    (base / "dave" / "dave.txt").write_text(DAVE * 20, encoding="utf-8")
    (base / "dave-heldout.txt").write_text(DAVE * 3, encoding="utf-8")
    (base / "eval.txt").write_text("".join(PLAYS.values()) * 4, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(base / "cache"))
        yield base


def session(**data: Any) -> SessionConfig:
    return config_from_dict(
        {
            "model": {"kind": "causal-lm", "path": "tiny", "quantization": "nf4", "lora_rank": 4},
            "data": {
                "source": "text",
                "seq_len": 16,
                "heldout_fraction": 0.2,
                "parties": {name: f"{name}.txt" for name in PLAYS},
                **data,
            },
            "training": {"steps": 2, "batch_size": 4, "lr": 0.01, "optimizer": "adamw"},
            "parties": [{"name": name} for name in PLAYS],
            "membership": {"admission": "open"},
        }
    )


def splits(config: SessionConfig, root: Path, train: str, heldout: str | None = None) -> Any:
    """What party_splits makes of one party's text (the expected blocks)."""
    tokenizer = load_tokenizer(resolve_base(config.model, root))
    data = config.data
    return party_splits(
        (train,),
        (heldout,) if heldout else None,
        root=root,
        tokenizer=tokenizer,
        seq_len=data.seq_len,
        heldout_fraction=data.heldout_fraction,
        max_train=data.max_train,
        max_test=data.max_test,
    )


def test_a_newcomer_trains_on_its_own_text_and_is_evaluated_on_the_listed_pool(
    root: Path,
) -> None:
    config = session()
    own = OwnText(train=("dave",))  # a folder, as a data.parties entry may be
    dave = newcomer_learner(config, "dave", data_root=root, own=own)
    alice = learner_for(config, "alice", data_root=root)

    mine = splits(config, root, "dave/dave.txt")
    np.testing.assert_array_equal(dave._train, mine.train)  # its file, nobody else's
    assert dave.n_train == len(mine.train) > alice.n_train  # its FedAvg weight
    for name in PLAYS:
        listed = splits(config, root, f"{name}.txt").train
        assert not any((block == listed).all(axis=1).any() for block in dave._train)

    # the global split: exactly alice's pieces (the listed parties' pooled held-out)
    assert dave._heldout.global_ == alice._heldout.global_ == tuple(PLAYS)
    for name in PLAYS:
        np.testing.assert_array_equal(dave._heldout.pieces[name], alice._heldout.pieces[name])
    # its own held-out is its local split only: the tail of its text, outside the pool
    (local,) = dave._heldout.local
    assert local not in PLAYS and local not in dave._heldout.global_
    np.testing.assert_array_equal(dave._heldout.pieces[local], mine.heldout)

    g0 = alice.initial_state(derive_seed(config.seed_id, "init"))
    assert dave.evaluate(g0, "global") == alice.evaluate(g0, "global")  # comparable metrics
    assert dave.evaluate(g0, "local")["n_samples"] == len(mine.heldout)
    result = dave.train(g0, seed=derive_seed(config.seed_id, "train", 3, "dave"))
    assert result.n_samples == len(mine.train) and result.steps == 2


def test_a_listed_partys_learner_is_unchanged(root: Path) -> None:
    config = session()
    alice = learner_for(config, "alice", data_root=root)
    expected = splits(config, root, "alice.txt")
    np.testing.assert_array_equal(alice._train, expected.train)
    assert set(alice._heldout.pieces) == set(PLAYS)
    assert alice._heldout.local == ("alice",) and alice._heldout.global_ == tuple(PLAYS)
    np.testing.assert_array_equal(alice._heldout.pieces["alice"], expected.heldout)


def test_with_data_eval_a_newcomer_reads_only_its_text_and_the_eval_set(root: Path) -> None:
    config = session(eval=["eval.txt"], max_test=2)
    alice = learner_for(config, "alice", data_root=root)
    elsewhere = root / "elsewhere"  # the newcomer's machine: no listed party's text
    elsewhere.mkdir(exist_ok=True)
    for name in ("tiny", "eval.txt", "dave-heldout.txt"):
        target = elsewhere / name
        if not target.exists():
            target.symlink_to(root / name)
    (elsewhere / "dave.txt").write_text(DAVE * 20, encoding="utf-8")
    own = OwnText(train=("dave.txt",), heldout=("dave-heldout.txt",))
    dave = newcomer_learner(config, "dave", data_root=elsewhere, own=own)

    assert dave._heldout.global_ == alice._heldout.global_ == ("eval",)
    assert len(alice._heldout.pieces["eval"]) == 2 * len(PLAYS)  # max_test per listed party
    np.testing.assert_array_equal(dave._heldout.pieces["eval"], alice._heldout.pieces["eval"])
    assert set(dave._heldout.pieces) == {"eval", *dave._heldout.local}
    mine = splits(config, elsewhere, "dave.txt", "dave-heldout.txt")
    np.testing.assert_array_equal(dave._train, mine.train)  # all of it: held-out given
    np.testing.assert_array_equal(dave._heldout.pieces[dave._heldout.local[0]], mine.heldout)
    with pytest.raises(DataError, match=r"alice\.txt: file not found"):
        learner_for(config, "alice", data_root=elsewhere)  # a listed party reads them all


def test_a_causal_lm_newcomer_needs_its_text_and_an_mlp_one_takes_none(root: Path) -> None:
    with pytest.raises(UsageError, match="brings its own text"):
        newcomer_learner(session(), "dave", data_root=root)
    mlp = config_from_dict({"parties": [{"name": n} for n in PLAYS]})
    with pytest.raises(UsageError, match=r'--data is for model\.kind = "causal-lm"'):
        newcomer_learner(mlp, "dave", data_root=root, own=OwnText(train=("dave",)))
