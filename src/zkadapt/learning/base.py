"""The learner interface seen by a party: model-agnostic, numpy in and numpy out.

A party never touches torch. It holds the global *trainable* state as an ordered mapping from
tensor name to a float32 numpy array (the whole MLP; only the LoRA tensors for QLoRA), hands it
to a :class:`Learner` to train on the party's own data, and turns the result into a delta with
the aggregation codec (DESIGN.md section 3, steps 1 and 9). Keeping the boundary at numpy keeps
the aggregation pure (STYLE.md rule 2) and lets a QLoRA learner slot in behind the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

State = dict[str, np.ndarray]
"""Ordered tensor name -> float32 array of the trainable tensors."""

EVAL_SPLITS = ("local", "global")
"""``"local"``: the party's own test partition; ``"global"``: the whole test set."""


@dataclass(frozen=True, eq=False)
class TrainResult:
    """The outcome of one local training call.

    Attributes:
        state: the trained trainable tensors, same names, order, shapes and dtypes as the input.
        n_samples: number of local training examples (the FedAvg weight, McMahan et al. 2017).
        train_loss: mean training loss over every example seen in the local epoch(s).
        steps: number of optimizer steps taken.
    """

    state: State
    n_samples: int
    train_loss: float
    steps: int


@runtime_checkable
class Learner(Protocol):
    """Trains and evaluates one model on one party's data (bound at construction)."""

    @property
    def n_train(self) -> int:
        """Number of local training examples."""
        ...

    def initial_state(self, seed: int) -> State:
        """The starting trainable state G(0), identical on every machine for the same seed."""
        ...

    def train(self, state: State, *, seed: int) -> TrainResult:
        """Train locally from ``state`` (left unchanged); ``seed`` fixes the data order.

        Raises:
            ValueError: ``state`` does not match the model's tensor names or shapes.
        """
        ...

    def evaluate(self, state: State, split: str) -> dict[str, float]:
        """Metrics of ``state`` on ``split`` (one of :data:`EVAL_SPLITS`).

        Returns:
            At least ``{"accuracy": ..., "loss": ...}``.

        Raises:
            ValueError: unknown ``split`` or a mismatched ``state``.
        """
        ...
