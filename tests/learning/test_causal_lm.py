"""QLoRA learner on a tiny random Llama: quantize -> LoRA -> train -> exchange -> aggregate ->
reload, all offline in seconds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")

from tests.learning.tiny_lm import make_tiny_model
from zkadapt.aggregation.codec import FlatCodec
from zkadapt.aggregation.strategy import make_strategy
from zkadapt.assembly import learner_for
from zkadapt.baselines import compute_baselines
from zkadapt.config import SessionConfig, config_from_dict
from zkadapt.learning.base import Learner
from zkadapt.learning.base_model import CACHE_ENV
from zkadapt.learning.checkpoint import state_digest
from zkadapt.seeds import derive_seed

PLAYS = {
    "alice": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind.\n",
    "bob": "When shall we three meet again\nIn thunder, lightning, or in rain?\n",
    "carol": "Full fathom five thy father lies;\nOf his bones are coral made;\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session folder with a tiny model and one text file per party; a private cache."""
    base = tmp_path_factory.mktemp("lm")
    make_tiny_model(base / "tiny")
    for name, text in PLAYS.items():
        (base / f"{name}.txt").write_text(text * 12, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(base / "cache"))
        yield base


def session(**overrides: Any) -> SessionConfig:
    doc: dict[str, Any] = {
        "model": {"kind": "causal-lm", "path": "tiny", "quantization": "nf4", "lora_rank": 4},
        "data": {
            "source": "text",
            "seq_len": 16,
            "heldout_fraction": 0.2,
            "parties": {name: f"{name}.txt" for name in PLAYS},
        },
        "training": {"steps": 4, "batch_size": 4, "lr": 0.01, "optimizer": "adamw"},
        "parties": [{"name": name} for name in PLAYS],
    }
    for section, values in overrides.items():
        doc[section] = {**doc.get(section, {}), **values}
    return config_from_dict(doc)


def one_round(config: SessionConfig, root: Path) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """G(0) on every party, one local round each, then the strategy's aggregate G(1)."""
    learners = {name: learner_for(config, name, data_root=root) for name in config.party_names}
    init_seed = derive_seed(config.seed_id, "init")
    starts = {name: learner.initial_state(init_seed) for name, learner in learners.items()}
    digests = {state_digest(state) for state in starts.values()}
    assert len(digests) == 1, "G(0) must be the same bits on every party"
    g0 = starts[config.party_names[0]]
    codec = FlatCodec(g0)
    strategy = make_strategy(config.aggregation.strategy)
    deltas, weights = [], []
    for name, learner in learners.items():
        result = learner.train(g0, seed=derive_seed(config.seed_id, "train", 1, name))
        assert result.steps == 4 and math.isfinite(result.train_loss)
        deltas.append(codec.flatten(result.state) - codec.flatten(g0))  # what travels
        weights.append(result.n_samples)
    g1, _ = strategy.outer_step(codec.flatten(g0), strategy.mean_delta(deltas, weights), None)
    return learners, codec.unflatten(g1), {"g0": g0, "deltas": deltas, "codec": codec}


def test_qlora_round_quantizes_trains_aggregates_and_reloads_as_peft(root: Path) -> None:
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import PeftModel

    from zkadapt.learning.base_model import BaseModelRef, load_base_model

    config = session()
    learners, g1, info = one_round(config, root)
    alice = learners["alice"]
    assert isinstance(alice, Learner) and alice.n_train > 0
    g0 = info["g0"]
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in g0)
    assert all(not v.any() for k, v in g0.items() if k.endswith("lora_B.weight"))
    layer = alice._model.base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(layer, Linear4bit), "the frozen base must be 4-bit NF4"
    before, after = alice.evaluate(g0, "global"), alice.evaluate(g1, "global")
    assert set(before) == {"perplexity", "loss", "n_samples"}
    assert after["loss"] < before["loss"], "one federated round must lower held-out loss"
    assert math.isclose(after["perplexity"], math.exp(after["loss"]))

    out = alice.export(g1, root / "export")
    written = {p.name for p in out["adapter"].iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= written
    base = load_base_model(BaseModelRef(root / "tiny", "tiny"), quantization="nf4", device="cpu")
    assert len(list((root / "cache" / "models").glob("nf4-*"))) == 1, "quantized once, cached"
    reloaded = PeftModel.from_pretrained(base, str(out["adapter"]))
    blocks = torch.from_numpy(alice._heldout.pieces["alice"])
    with torch.no_grad():
        loss = reloaded(input_ids=blocks, labels=blocks).loss
    assert float(loss) == pytest.approx(alice.evaluate(g1, "local")["loss"], rel=1e-5)


def test_g0_is_the_base_model_and_baselines_report_it(root: Path) -> None:
    config = session(session={"rounds": 1})
    baseline = compute_baselines(config, data_root=root)
    assert set(baseline) == {"local_only", "base_model", "centralized"}
    pooled = learner_for(config, None, data_root=root)
    g0 = pooled.initial_state(derive_seed(config.seed_id, "init"))
    assert baseline["base_model"]["perplexity"] == pooled.evaluate(g0, "global")["perplexity"]
    for metrics in baseline["local_only"].values():
        assert {"perplexity", "loss", "local_perplexity", "local_loss"} <= set(metrics)
    assert baseline["centralized"]["loss"] < baseline["base_model"]["loss"]
    for name, metrics in baseline["local_only"].items():
        assert metrics["loss"] < baseline["base_model"]["loss"], f"{name} alone trained nothing"


def test_training_after_evaluation_still_moves_the_adapter(root: Path) -> None:
    """Every round evaluates between trainings; the 4-bit base must stay trainable (on CPUs with
    AVX512-BF16 bitsandbytes repacked it for inference at the first no-grad forward)."""
    from bitsandbytes.nn import Linear4bit

    learner = learner_for(session(), "alice", data_root=root)
    g0 = learner.initial_state(derive_seed(session().seed_id, "init"))
    first = learner.train(g0, seed=3)
    learner.evaluate(g0, "local")
    learner.evaluate(first.state, "global")
    again = learner.train(g0, seed=3)
    for name in g0:
        assert not np.array_equal(again.state[name], g0[name]) or name.endswith("lora_A.weight")
        np.testing.assert_array_equal(again.state[name], first.state[name])
    assert again.train_loss == first.train_loss
    layers = [m for m in learner._model.modules() if isinstance(m, Linear4bit)]
    assert layers and not any(
        getattr(m.weight.quant_state, "packing_format_for_cpu", False) for m in layers
    )


def test_a_training_round_that_moves_nothing_is_an_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from zkadapt.errors import LearningError
    from zkadapt.learning.causal_lm import CausalLMLearner

    learner = learner_for(session(), "bob", data_root=root)
    g0 = learner.initial_state(5)
    monkeypatch.setattr(
        CausalLMLearner, "_optimizer", lambda self, params: torch.optim.SGD(params, lr=0.0)
    )
    with pytest.raises(LearningError, match="left the adapter unchanged"):
        learner.train(g0, seed=1)


def test_ffa_lora_exchanges_only_b_and_averages_exactly(root: Path) -> None:
    config = session(aggregation={"strategy": "ffa-lora"})
    learners, g1, info = one_round(config, root)
    assert all(k.endswith(".lora_B.weight") for k in g1), "only B is trained and exchanged"
    alice = learners["alice"]
    frozen = alice._frozen
    assert frozen is not None and len(frozen) == len(g1)
    # the aggregate of the products equals the product of the aggregated B with the shared A
    codec, deltas = info["codec"], info["deltas"]
    weights = np.array([learner.n_train for learner in learners.values()], dtype=np.float64)
    for (b_name, b1), a in zip(g1.items(), frozen.values(), strict=True):
        per_party = [codec.unflatten(d)[b_name].astype(np.float64) @ a for d in deltas]
        mean_update = sum(w * u for w, u in zip(weights, per_party, strict=True)) / weights.sum()
        np.testing.assert_allclose(b1.astype(np.float64) @ a, mean_update, atol=1e-6)
    assert alice.evaluate(g1, "global")["loss"] < alice.evaluate(info["g0"], "global")["loss"]


def test_ffa_lora_needs_its_seeded_a_first(root: Path) -> None:
    config = session(aggregation={"strategy": "ffa-lora"})
    fresh = learner_for(config, "bob", data_root=root)
    other = learner_for(config, "alice", data_root=root)
    state = other.initial_state(7)
    with pytest.raises(ValueError, match="initial_state"):
        fresh.train(state, seed=1)


def test_initial_state_is_seeded_and_state_is_checked(root: Path) -> None:
    learner = learner_for(session(), "carol", data_root=root)
    a, b = learner.initial_state(1), learner.initial_state(1)
    assert state_digest(a) == state_digest(b)
    assert state_digest(learner.initial_state(2)) != state_digest(a)
    bad = dict(a)
    first = next(iter(bad))
    bad[first] = bad[first][:1]
    with pytest.raises(ValueError, match="expected float32"):
        learner.train(bad, seed=0)
    with pytest.raises(ValueError, match="unknown split"):
        learner.evaluate(a, "test")


def test_merged_export_equals_the_adapter_on_a_float_base(root: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = session(model={"quantization": "none", "save_merged": True})
    learners, g1, _ = one_round(config, root)
    out = learners["bob"].export(g1, root / "merged-export")
    merged = AutoModelForCausalLM.from_pretrained(str(out["merged"]))
    base = AutoModelForCausalLM.from_pretrained(str(root / "tiny"))
    adapted = PeftModel.from_pretrained(base, str(out["adapter"]))
    ids = torch.arange(1, 17).reshape(1, 16)
    with torch.no_grad():
        np.testing.assert_allclose(
            merged(input_ids=ids).logits.numpy(), adapted(input_ids=ids).logits.numpy(), atol=1e-4
        )
    assert (out["merged"] / "tokenizer.json").is_file()
