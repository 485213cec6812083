"""QLoRA fine-tuning of a causal language model behind the :class:`Learner` interface.

The frozen base is 4-bit NF4 quantized (QLoRA, Dettmers et al. 2023) and carries LoRA adapters
(Hu et al. 2021); the trainable state a party exchanges is only the adapter tensors (only the
``B`` matrices under FFA-LoRA, Sun et al. ICLR 2024), as float32 numpy arrays named like PEFT's
saved keys. Metrics are the mean next-token cross-entropy per token (``loss``) and its
exponential (``perplexity``) on held-out blocks.

Every call loads the whole trainable state (and, under FFA-LoRA, the frozen ``A``) into the
model first, so learners in one process can share one loaded base (the baselines build one
learner per party): the model is a cache, the state lives in numpy. Calls are sequential.
The base is loaded lazily on first use, so building a learner to check the data is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zkadapt.errors import LearningError
from zkadapt.learning import lora
from zkadapt.learning.base import EVAL_SPLITS, State, TrainResult
from zkadapt.learning.base_model import BaseModelRef, load_base_model, load_tokenizer
from zkadapt.learning.checkpoint import state_digest

#: Folder names written by :meth:`CausalLMLearner.export`.
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"
EVAL_BATCH = 8

_SHARED: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}


@dataclass(frozen=True)
class LMTraining:
    """Local training of one round.

    Attributes:
        batch_size: blocks per optimizer step.
        lr: learning rate.
        steps: optimizer steps per round; ``None`` means ``epochs`` passes over the blocks.
        epochs: passes per round when ``steps`` is ``None``.
        optimizer: ``"adamw"`` (the usual LoRA choice) or ``"sgd"``; its state is reset at every
            round, as each round starts from the new global adapter.
        momentum: SGD momentum.
        weight_decay: decoupled weight decay (AdamW) or L2 (SGD).
        max_grad_norm: clip the adapter gradients' global norm to this, if set.
    """

    batch_size: int = 4
    lr: float = 1e-3
    steps: int | None = None
    epochs: int = 1
    optimizer: str = "adamw"
    momentum: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float | None = None


@dataclass(frozen=True, eq=False)
class HeldOut:
    """Held-out token blocks in named pieces, and which pieces make each split.

    Attributes:
        pieces: name -> ``[n, seq_len]`` int64 blocks (one piece per party, or a shared eval).
        local: pieces of ``evaluate(..., "local")`` (the party's own held-out text).
        global_: pieces of ``evaluate(..., "global")`` (pooled held-out, or ``data.eval``).
    """

    pieces: Mapping[str, np.ndarray]
    local: tuple[str, ...]
    global_: tuple[str, ...]

    def split(self, name: str) -> tuple[str, ...]:
        return self.local if name == "local" else self.global_


class CausalLMLearner:
    """QLoRA training and perplexity on one party's text; a :class:`Learner`.

    Args:
        base: the resolved base model (:func:`~zkadapt.learning.base_model.resolve_base`).
        spec: LoRA hyperparameters (``freeze_a`` for FFA-LoRA).
        train: the party's ``[n, seq_len]`` int64 training blocks.
        heldout: its held-out blocks and the pooled ones.
        training: local optimizer settings.
        quantization: ``"nf4"`` or ``"none"``.
        device: ``"cpu"`` or ``"cuda"`` (already resolved from ``"auto"``).
        save_merged: :meth:`export` also writes the base with the adapter merged in.

    Raises:
        ValueError: no training blocks.
    """

    def __init__(
        self,
        base: BaseModelRef,
        spec: lora.LoRASpec,
        train: np.ndarray,
        heldout: HeldOut,
        training: LMTraining,
        *,
        quantization: str = "nf4",
        device: str = "cpu",
        save_merged: bool = False,
    ) -> None:
        if train.ndim != 2 or len(train) == 0:
            raise ValueError("the training set is empty")
        self.base, self.spec, self.training = base, spec, training
        self.quantization, self.device, self.save_merged = quantization, device, save_merged
        self._train = train
        self._heldout = heldout
        self._frozen: State | None = None
        self._cache: tuple[str, dict[str, tuple[float, int]]] = ("", {})
        self._model: Any = None
        self._params: dict[str, Any] = {}

    # -- the Learner interface -----------------------------------------------------------

    @property
    def n_train(self) -> int:
        """Number of training blocks (the FedAvg weight)."""
        return len(self._train)

    def initial_state(self, seed: int) -> State:
        """G(0): seeded A, B = 0 (:func:`lora.init_state`); FFA-LoRA keeps A and returns B."""
        params = self._ensure_model()
        full = lora.init_state({k: tuple(p.shape) for k, p in params.items()}, seed)
        self._cache = ("", {})
        if not self.spec.freeze_a:
            return full
        self._frozen = {k: v for k, v in full.items() if lora.is_a(k)}
        return {k: v for k, v in full.items() if not lora.is_a(k)}

    def train(self, state: State, *, seed: int) -> TrainResult:
        """Run one round of local steps from ``state`` (unchanged); ``seed`` fixes batches.

        Raises:
            ValueError: a mismatched ``state``, or FFA-LoRA before :meth:`initial_state`.
        """
        import torch

        self._load(state)
        trainable = [self._params[name] for name in state]
        for param in self._params.values():
            param.requires_grad_(False)
        for param in trainable:
            param.requires_grad_(True)
        optimizer = self._optimizer(trainable)
        generator = torch.Generator().manual_seed(seed)
        data = torch.from_numpy(self._train)
        loss_sum, seen, steps = 0.0, 0, 0
        devices = [torch.cuda.current_device()] if self.device == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)  # LoRA dropout
            self._model.train()
            for index in self._batches(generator):
                batch = data[index].to(self.device)
                loss = self._model(input_ids=batch, labels=batch, use_cache=False).loss
                loss.backward()
                if self.training.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(trainable, self.training.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                loss_sum += float(loss.detach()) * len(index)
                seen += len(index)
                steps += 1
        for param in trainable:
            param.requires_grad_(False)
        trained = lora.read_out(self._params, list(state))
        if steps and self.training.lr > 0 and _unchanged(state, trained):
            raise LearningError(
                f"{steps} training steps left the adapter unchanged: the 4-bit base passes no "
                "gradient (see base_model.keep_4bit_layout_trainable)"
            )
        return TrainResult(
            state=trained,
            n_samples=self.n_train,
            train_loss=loss_sum / seen,
            steps=steps,
        )

    def evaluate(self, state: State, split: str) -> dict[str, float]:
        """Per-token ``loss`` and ``perplexity`` (exp of it) on ``split``'s held-out blocks.

        "global" reuses what "local" already computed for the same state (the party's own
        piece is part of the pool). An empty split gives NaN with ``n_samples`` 0.

        Raises:
            ValueError: unknown ``split`` or a mismatched ``state``.
        """
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(EVAL_SPLITS)}")
        names = self._heldout.split(split)
        blocks = sum(len(self._heldout.pieces[name]) for name in names)
        if blocks == 0:
            return {"perplexity": math.nan, "loss": math.nan, "n_samples": 0.0}
        digest = state_digest(state)
        if self._cache[0] != digest:
            self._cache = (digest, {})
        sums = self._cache[1]
        for name in names:
            if name not in sums:
                self._load(state)
                sums[name] = self._nll(self._heldout.pieces[name])
        nll = sum(sums[name][0] for name in names)
        tokens = sum(sums[name][1] for name in names)
        loss = nll / tokens
        return {"perplexity": math.exp(loss), "loss": loss, "n_samples": float(blocks)}

    # -- export --------------------------------------------------------------------------

    def export(self, state: State, directory: Path) -> dict[str, Path]:
        """Write ``directory/adapter`` (a PEFT folder) and, if configured, ``directory/merged``.

        The adapter folder loads with ``PeftModel.from_pretrained(base, directory/"adapter")``
        onto the same base; the merged folder is the float base with ``B @ A`` added in,
        loadable by ``AutoModelForCausalLM.from_pretrained`` without PEFT or bitsandbytes
        (merging into 4-bit weights would re-quantize them, so it is done on a float copy).

        Returns:
            ``{"adapter": path}`` plus ``{"merged": path}`` when ``save_merged`` is set.
        """
        self._load(state)
        written = {"adapter": lora.save_adapter(self._model, Path(directory) / ADAPTER_DIR)}
        if self.save_merged:
            written["merged"] = self._export_merged(written["adapter"], Path(directory))
        return written

    def _export_merged(self, adapter: Path, directory: Path) -> Path:
        from peft import PeftModel

        base = load_base_model(self.base, quantization="none", device="cpu")
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        target = directory / MERGED_DIR
        merged.save_pretrained(str(target), safe_serialization=True)
        load_tokenizer(self.base).save_pretrained(str(target))
        return target

    # -- internals -----------------------------------------------------------------------

    def _ensure_model(self) -> dict[str, Any]:
        """Load (or reuse from this process) the quantized base with the adapters injected."""
        if self._model is None:
            key = (
                str(self.base.location),
                self.quantization,
                self.device,
                self.spec.rank,
                self.spec.alpha,
                self.spec.dropout,
                self.spec.target_modules,
            )
            if key not in _SHARED:
                base = load_base_model(
                    self.base, quantization=self.quantization, device=self.device
                )
                model = lora.wrap(base, self.spec, base_name=self.base.name)
                _SHARED[key] = (model, lora.lora_parameters(model))
            self._model, self._params = _SHARED[key]
        return self._params

    def _load(self, state: State) -> None:
        """Put ``state`` (and FFA-LoRA's frozen A) into the shared model."""
        params = self._ensure_model()
        if self.spec.freeze_a:
            if self._frozen is None:
                raise ValueError("FFA-LoRA: call initial_state(seed) first; it draws the frozen A")
            lora.load_into(params, self._frozen, list(self._frozen))
            names = [name for name in params if not lora.is_a(name)]
        else:
            names = list(params)
        lora.load_into(params, state, names)

    def _optimizer(self, trainable: Sequence[Any]) -> Any:
        import torch

        t = self.training
        if t.optimizer == "adamw":
            return torch.optim.AdamW(trainable, lr=t.lr, weight_decay=t.weight_decay)
        return torch.optim.SGD(trainable, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)

    def _batches(self, generator: Any) -> Iterator[Any]:
        """Index batches: shuffled passes over the blocks, ``steps`` of them (or ``epochs``)."""
        import torch

        n, size = len(self._train), self.training.batch_size
        total = self.training.steps or self.training.epochs * math.ceil(n / size)
        order, pos = torch.randperm(n, generator=generator), 0
        for _ in range(total):
            if pos >= n:
                order, pos = torch.randperm(n, generator=generator), 0
            yield order[pos : pos + size]
            pos += size

    def _nll(self, blocks: np.ndarray) -> tuple[float, int]:
        """Summed next-token negative log-likelihood and token count over ``blocks``."""
        import torch

        self._model.eval()
        nll, tokens = 0.0, 0
        data = torch.from_numpy(blocks)
        with torch.no_grad():
            for start in range(0, len(blocks), EVAL_BATCH):
                batch = data[start : start + EVAL_BATCH].to(self.device)
                loss = self._model(input_ids=batch, labels=batch, use_cache=False).loss
                count = batch.shape[0] * (batch.shape[1] - 1)
                nll += float(loss) * count
                tokens += count
        return nll, tokens


def _unchanged(before: State, after: State) -> bool:
    """Whether training moved no adapter value at all (a silent no-op, never a real step)."""
    return all(np.array_equal(before[name], after[name]) for name in before)
