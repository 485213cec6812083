"""A QLoRA session through the CLI, offline: a tiny random Llama saved as a local folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")

from tests.e2e.conftest import zkadapt
from tests.learning.tiny_lm import make_tiny_model
from zkadapt.learning.base_model import CACHE_ENV

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # four processes importing transformers

TEXTS = {
    "alice": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind.\n",
    "bob": "When shall we three meet again\nIn thunder, lightning, or in rain?\n",
    "carol": "Full fathom five thy father lies;\nOf his bones are coral made;\n",
}


def test_qlora_session_reports_perplexity_against_base_and_local_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    make_tiny_model(tmp_path / "tiny")
    for name, text in TEXTS.items():
        (tmp_path / f"{name}.txt").write_text(text * 12, encoding="utf-8")
    session = {
        "session": {"rounds": 2},
        "model": {"kind": "causal-lm", "path": "tiny", "lora_rank": 4},
        "data": {
            "source": "text",
            "seq_len": 16,
            "heldout_fraction": 0.2,
            "parties": {name: f"{name}.txt" for name in TEXTS},
        },
        "training": {"steps": 3, "batch_size": 4, "lr": 0.01, "optimizer": "adamw"},
        "parties": [{"name": name} for name in TEXTS],
    }
    (tmp_path / "session.toml").write_text(tomli_w.dumps(session), encoding="utf-8")

    proc = zkadapt("run", "session.toml", "--out", "out", cwd=tmp_path, timeout=600)

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["completed"] is True and "Federated (final, round 2)" in proc.stdout
    final = report["final"]["metrics"]
    baseline = report["baseline"]
    assert final["perplexity"] < baseline["base_model"]["perplexity"]
    assert set(baseline["local_only"]) == set(TEXTS)
    for metrics in baseline["local_only"].values():
        assert metrics["perplexity"] > 1.0
    adapter_floats = 2 * ((4 * 64 + 64 * 4) + (4 * 64 + 32 * 4))  # 2 layers: q 64->64, v 64->32
    for r in report["rounds"]:
        assert r["accepted"] == sorted(TEXTS)
        assert r["bytes_uploaded"] >= 3 * adapter_floats * 4  # three float32 adapter deltas
        assert {"train_s", "store_s", "aggregate_s"} <= set(r["timing_s"])
    # the global adapter is a standard PEFT folder that loads onto the base model
    adapter = tmp_path / "out" / "adapter"
    assert (adapter / "adapter_config.json").is_file()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tmp_path / session["model"]["path"]))
    loaded = PeftModel.from_pretrained(base, str(adapter))
    assert any("lora_B" in name for name, _ in loaded.named_parameters())
