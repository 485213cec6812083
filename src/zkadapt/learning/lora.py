"""LoRA adapters on a frozen base: seeded init, tensor names, and the standard PEFT folder.

LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") adds
``(alpha / r) * B @ A`` to each adapted weight, with ``A`` of shape ``[r, in]`` and ``B`` of
shape ``[out, r]``. The parties exchange only these tensors.

G(0) must be the same bits on every party, so the init is drawn here from numpy's PCG64 with
the session's seed instead of from torch's generator: ``A`` uniform in ``±1/sqrt(in)`` (what
PEFT's default ``kaiming_uniform_(a=sqrt(5))`` reduces to) and ``B = 0``. With ``B = 0`` the
adapted model *is* the base model, which is why ``baseline.base_model`` is G(0) evaluated.

State names are PEFT's own saved keys: the parameter name without the run-local adapter name
(``...q_proj.lora_A.default.weight`` -> ``...q_proj.lora_A.weight``), exactly the keys of a
PEFT ``adapter_model.safetensors``, so a state *is* an adapter.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkadapt.errors import ConfigError
from zkadapt.learning.base import State

#: PEFT's adapter name inside a live model; stripped from state keys as PEFT does on save.
ADAPTER = "default"
_MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class LoRASpec:
    """LoRA hyperparameters (Hu et al. 2021).

    Attributes:
        rank: ``r``, the inner dimension of ``B @ A``.
        alpha: scaling numerator; the update is ``(alpha / rank) * B @ A``.
        dropout: dropout on the adapter's input during training.
        target_modules: names (suffixes) of the linear layers to adapt, e.g. ``q_proj``.
        freeze_a: FFA-LoRA (Sun et al., ICLR 2024): ``A`` stays at its seeded init and only
            ``B`` is trained and exchanged, which makes averaging adapters exact.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    freeze_a: bool = False


def wrap(base: Any, spec: LoRASpec, *, base_name: str) -> Any:
    """``base`` with LoRA adapters injected (PEFT), recording ``base_name`` for exports.

    Raises:
        ConfigError: no module of the base matches ``target_modules``.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():  # transformers' is_gradient_checkpointing rename
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(base, config, adapter_name=ADAPTER)
    except ValueError as exc:
        raise ConfigError("model.target_modules", f"{exc}".splitlines()[0]) from None
    model.peft_config[ADAPTER].base_model_name_or_path = base_name
    return model


def lora_parameters(model: Any) -> dict[str, Any]:
    """State key -> LoRA parameter of a PEFT model, in the model's parameter order.

    Raises:
        ConfigError: an adapted module is not a linear layer (no ``lora_A.weight``).
    """
    params = {}
    for name, param in model.named_parameters():
        if "lora_" not in name:
            continue
        key = name.replace(f".{ADAPTER}.", ".")
        if not key.endswith((".lora_A.weight", ".lora_B.weight")):
            raise ConfigError(
                "model.target_modules", f"{key}: only linear layers can be adapted here"
            )
        params[key] = param
    return params


def is_a(name: str) -> bool:
    """Whether a state key is an ``A`` (down-projection) matrix."""
    return name.endswith(".lora_A.weight")


def init_state(shapes: dict[str, tuple[int, ...]], seed: int) -> State:
    """Seeded G(0) of every LoRA tensor, bit-identical on every machine.

    Draws, in ``shapes`` order, ``Generator(PCG64(seed)).uniform(-b, b)`` in float64 for each
    ``A`` of shape ``[r, in]`` with ``b = 1/sqrt(in)``, rounded to float32; every ``B`` is 0.

    Raises:
        ValueError: ``seed`` is not an integer in ``[0, 2**64)``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    rng = np.random.Generator(np.random.PCG64(seed))
    state: State = {}
    for name, shape in shapes.items():
        if is_a(name):
            bound = 1.0 / math.sqrt(shape[1])
            state[name] = rng.uniform(-bound, bound, size=shape).astype(np.float32)
        else:
            state[name] = np.zeros(shape, dtype=np.float32)
    return state


def load_into(params: dict[str, Any], tensors: State, names: Sequence[str]) -> None:
    """Copy float32 ``tensors`` into the live parameters (no autograd history).

    Raises:
        ValueError: ``tensors`` do not have exactly ``names``, or a shape or dtype differs.
    """
    import torch

    if list(tensors) != list(names):
        raise ValueError(f"state tensors {list(tensors)[:3]}... do not match the adapter's")
    with torch.no_grad():
        for name in names:
            array, param = tensors[name], params[name]
            if array.dtype != np.float32 or tuple(array.shape) != tuple(param.shape):
                raise ValueError(
                    f"tensor {name!r}: expected float32 {tuple(param.shape)}, "
                    f"got {array.dtype} {array.shape}"
                )
            param.copy_(torch.from_numpy(array))


def read_out(params: dict[str, Any], names: Sequence[str]) -> State:
    """Fresh float32 numpy copies of the named parameters, in order."""
    return {name: params[name].detach().float().cpu().numpy().copy() for name in names}


def save_adapter(model: Any, directory: Path) -> Path:
    """The live adapter as a standard PEFT folder (``adapter_config.json`` + safetensors).

    ``PeftModel.from_pretrained(base, directory)`` loads it back onto any copy of the base.
    """
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory), safe_serialization=True, save_embedding_layers=False)
    return directory
