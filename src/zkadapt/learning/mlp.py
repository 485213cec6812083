"""A plain multilayer perceptron (784-128-10 for MNIST) behind the :class:`Learner` interface.

The initial weights come from numpy's PCG64, not from torch's generator, so G(0) is the same
bits on every machine whatever the torch version; they follow the distribution of PyTorch's
``nn.Linear.reset_parameters`` (weights and biases uniform in ``±1/sqrt(fan_in)``, which is what
``kaiming_uniform_(a=sqrt(5))`` reduces to). Local training is plain minibatch SGD in float32
with a shuffle order drawn from a ``torch.Generator`` seeded by the caller, and uses only
deterministic CPU ops (linear, ReLU, cross-entropy), so the same inputs give the same bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from zkadapt.learning.base import EVAL_SPLITS, State, TrainResult
from zkadapt.learning.data import Dataset

EVAL_BATCH = 2048
_MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class MLPSpec:
    """Layer sizes of the perceptron.

    Attributes:
        input_dim: features per example (784 for flattened 28x28 MNIST).
        hidden: widths of the hidden layers, each followed by a ReLU.
        num_classes: output logits.

    Raises:
        ValueError: a size is not a positive integer.
    """

    input_dim: int = 784
    hidden: tuple[int, ...] = (128,)
    num_classes: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        for size in (self.input_dim, *self.hidden, self.num_classes):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"MLP layer sizes must be positive integers, got {self}")

    @property
    def widths(self) -> tuple[int, ...]:
        """All layer widths from input to output."""
        return (self.input_dim, *self.hidden, self.num_classes)


def state_shapes(spec: MLPSpec) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes in state order, as ``build_module(spec).state_dict()`` has them."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (fan_in, fan_out) in enumerate(pairwise(spec.widths)):
        shapes[f"layers.{i}.weight"] = (fan_out, fan_in)
        shapes[f"layers.{i}.bias"] = (fan_out,)
    return shapes


def init_state(spec: MLPSpec, seed: int) -> State:
    """The seeded initial state G(0), bit-identical on every machine.

    Draws, layer by layer (weight then bias), ``Generator(PCG64(seed)).uniform(-b, b)`` in
    float64 with ``b = 1/sqrt(fan_in)`` and rounds to float32: PyTorch's ``nn.Linear`` default
    distribution (``kaiming_uniform_`` with ``a = sqrt(5)`` gives the same bound), but with a
    generator whose stream numpy keeps stable.

    Args:
        spec: the layer sizes.
        seed: integer in ``[0, 2**64)``; every party passes the session's seed.

    Returns:
        ``{"layers.0.weight": [hidden, input_dim], "layers.0.bias": [hidden], ...}`` float32.

    Raises:
        ValueError: ``seed`` is out of range.
    """
    rng = np.random.Generator(np.random.PCG64(_check_seed(seed)))
    state: State = {}
    for i, (fan_in, fan_out) in enumerate(pairwise(spec.widths)):
        bound = 1.0 / math.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, size=(fan_out, fan_in))
        bias = rng.uniform(-bound, bound, size=(fan_out,))
        state[f"layers.{i}.weight"] = weight.astype(np.float32)
        state[f"layers.{i}.bias"] = bias.astype(np.float32)
    return state


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return seed


class _MLP(nn.Module):
    """``layers`` holds only the Linear layers, so the names are ``layers.<i>.weight|bias``."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Linear(fan_in, fan_out, dtype=torch.float32)
            for fan_in, fan_out in pairwise(spec.widths)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


def build_module(spec: MLPSpec) -> nn.Module:
    """The torch module whose ``state_dict`` names and shapes are :func:`state_shapes`."""
    return _MLP(spec)


class MLPLearner:
    """Plain SGD on one party's data; implements :class:`zkadapt.learning.base.Learner`.

    Args:
        spec: layer sizes; ``spec.input_dim`` must match the data.
        train: the party's training partition.
        test_local: the party's own test partition (``evaluate(..., "local")``).
        test_global: the whole test set (``evaluate(..., "global")``).
        epochs: local epochs per round (the seed experiment uses 1).
        batch_size: minibatch size (64); the last batch of an epoch may be smaller.
        lr: SGD learning rate.
        momentum: SGD momentum, reset at every call to :meth:`train`.

    Raises:
        ValueError: bad hyperparameters, an empty training set, features that do not match
            ``spec.input_dim`` or labels outside ``[0, spec.num_classes)``.
    """

    def __init__(
        self,
        spec: MLPSpec,
        train: Dataset,
        test_local: Dataset,
        test_global: Dataset,
        *,
        epochs: int = 1,
        batch_size: int = 64,
        lr: float = 0.01,
        momentum: float = 0.0,
    ) -> None:
        for label, value in (("epochs", epochs), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        if not lr > 0.0 or not 0.0 <= momentum < 1.0:
            raise ValueError(f"need lr > 0 and 0 <= momentum < 1, got {lr!r}, {momentum!r}")
        if len(train) == 0:
            raise ValueError("the training set is empty")
        self.spec = spec
        self.epochs, self.batch_size, self.lr, self.momentum = epochs, batch_size, lr, momentum
        self._shapes = state_shapes(spec)
        self._module = build_module(spec)
        self._data = {
            "train": self._tensors(train, "train"),
            "local": self._tensors(test_local, "test_local"),
            "global": self._tensors(test_global, "test_global"),
        }

    @property
    def n_train(self) -> int:
        """Number of local training examples."""
        return len(self._data["train"][1])

    def initial_state(self, seed: int) -> State:
        """G(0) from :func:`init_state`."""
        return init_state(self.spec, seed)

    def train(self, state: State, *, seed: int) -> TrainResult:
        """Run ``epochs`` of minibatch SGD from ``state`` with the order fixed by ``seed``.

        Args:
            state: the global trainable state; copied, never modified.
            seed: integer in ``[0, 2**64)`` for the ``torch.Generator`` that shuffles each epoch.

        Returns:
            The trained state (fresh float32 arrays), the local sample count, the mean loss
            over every example seen, and the number of SGD steps.

        Raises:
            ValueError: bad ``seed`` or a mismatched ``state``.
        """
        generator = torch.Generator().manual_seed(_check_seed(seed))
        self._load(state)
        x, y = self._data["train"]
        optimizer = torch.optim.SGD(self._module.parameters(), lr=self.lr, momentum=self.momentum)
        self._module.train()
        loss_sum, steps = 0.0, 0
        with torch.enable_grad():
            for _ in range(self.epochs):
                order = torch.randperm(len(y), generator=generator)
                for batch in order.split(self.batch_size):
                    optimizer.zero_grad(set_to_none=True)
                    loss = functional.cross_entropy(self._module(x[batch]), y[batch])
                    loss.backward()
                    optimizer.step()
                    loss_sum += float(loss.item()) * len(batch)
                    steps += 1
        return TrainResult(
            state=self._export(),
            n_samples=len(y),
            train_loss=loss_sum / (len(y) * self.epochs),
            steps=steps,
        )

    def evaluate(self, state: State, split: str) -> dict[str, float]:
        """Accuracy, mean cross-entropy and example count on ``split`` ("local" or "global").

        An empty split gives NaN accuracy and loss with ``n_samples`` 0 rather than an error,
        since a skewed partition may leave a party without local test examples.

        Raises:
            ValueError: unknown ``split`` or a mismatched ``state``.
        """
        if split not in EVAL_SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(EVAL_SPLITS)}")
        x, y = self._data[split]
        if len(y) == 0:
            return {"accuracy": math.nan, "loss": math.nan, "n_samples": 0.0}
        self._load(state)
        self._module.eval()
        loss_sum, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(y), EVAL_BATCH):
                logits = self._module(x[start : start + EVAL_BATCH])
                target = y[start : start + EVAL_BATCH]
                loss_sum += float(functional.cross_entropy(logits, target, reduction="sum"))
                correct += int((logits.argmax(dim=1) == target).sum())
        return {"accuracy": correct / len(y), "loss": loss_sum / len(y), "n_samples": float(len(y))}

    def _tensors(self, data: Dataset, label: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Private torch copies of one split, after checking it fits the spec."""
        if data.x.shape[1] != self.spec.input_dim:
            raise ValueError(
                f"{label} has {data.x.shape[1]} features, the MLP expects {self.spec.input_dim}"
            )
        if len(data) and (data.y.min() < 0 or data.y.max() >= self.spec.num_classes):
            raise ValueError(f"{label} has labels outside [0, {self.spec.num_classes})")
        return torch.tensor(data.x, dtype=torch.float32), torch.tensor(data.y, dtype=torch.int64)

    def _load(self, state: State) -> None:
        """Copy ``state`` into the module after checking names, shapes and dtypes."""
        if list(state) != list(self._shapes):
            raise ValueError(
                f"state tensors {list(state)} do not match the MLP's {list(self._shapes)}"
            )
        tensors = {}
        for name, shape in self._shapes.items():
            array = state[name]
            if array.shape != shape or array.dtype != np.float32:
                raise ValueError(
                    f"tensor {name!r}: expected float32 {shape}, got {array.dtype} {array.shape}"
                )
            tensors[name] = torch.tensor(array)
        self._module.load_state_dict(tensors, strict=True)

    def _export(self) -> State:
        """The module's parameters as fresh float32 numpy arrays, in state order."""
        params = dict(self._module.named_parameters())
        return {name: params[name].detach().numpy().copy() for name in self._shapes}
