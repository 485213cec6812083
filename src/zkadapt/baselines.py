"""Baselines for the report: each party alone, and everyone's data pooled.

Both get the same training budget as the federated session (rounds x local epochs) and
start from the same G(0), so the comparison isolates what collaboration buys (the seed
paper's local-only baseline; DESIGN.md section 3).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from zkadapt.assembly import learner_for
from zkadapt.config import SessionConfig
from zkadapt.learning.base import Learner
from zkadapt.seeds import derive_seed


def _train_budget(learner: Learner, config: SessionConfig, label: str) -> dict[str, Any]:
    session_id = config.seed_id
    state = learner.initial_state(derive_seed(session_id, "init"))
    for r in range(1, config.session.rounds + 1):
        state = learner.train(state, seed=derive_seed(session_id, "baseline", label, r)).state
    global_metrics = learner.evaluate(state, "global")
    local_metrics = learner.evaluate(state, "local")
    return {**global_metrics, **{f"local_{k}": v for k, v in local_metrics.items()}}


def compute_baselines(
    config: SessionConfig, *, data_root: Path, on_done: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``{"local_only": {party: metrics}, "centralized": metrics}`` on the global test set.

    ``local_only[party]`` also carries ``local_<metric>`` (e.g. ``local_accuracy``): the same
    model on that party's own test split. A causal LM adds ``"base_model"``: the untouched base
    (G(0), whose LoRA ``B`` is zero) on the global held-out text, so the report shows what
    fine-tuning bought over the model everyone started from.
    """
    local_only = {}
    for name in config.party_names:
        local_only[name] = _train_budget(
            learner_for(config, name, data_root=data_root), config, name
        )
        if on_done:
            on_done(f"local-only {name}")
    pooled = learner_for(config, None, data_root=data_root)
    result: dict[str, Any] = {"local_only": local_only}
    if config.model.kind == "causal-lm":
        # LoRA's G(0) has B = 0, so the adapted model *is* the untouched base model
        result["base_model"] = _base_model(pooled, config)
        if on_done:
            on_done("base model")
    centralized = _train_budget(pooled, config, "centralized")
    result["centralized"] = {k: v for k, v in centralized.items() if not k.startswith("local_")}
    if on_done:
        on_done("centralized")
    return result


def _base_model(learner: Learner, config: SessionConfig) -> dict[str, Any]:
    """Metrics of G(0) on the global split: for an adapter learner, the base model itself."""
    state = learner.initial_state(derive_seed(config.seed_id, "init"))
    return dict(learner.evaluate(state, "global"))
