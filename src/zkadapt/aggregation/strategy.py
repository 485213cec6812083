"""Server-side (here: every-party-side) aggregation strategies over flat float32 vectors.

There is no central server: every party runs the same strategy on the same accepted deltas in
party-name order and must get the same bits (DESIGN.md section 3, steps 7 and 9). So the math is
pure numpy, mutates nothing, accumulates in float64 in the order it is given, and rounds to
float32 once at the end. Elementwise IEEE operations in a fixed order give the same result on
every machine; nothing here reduces across elements, so SIMD width cannot change the bits.

A strategy has two small steps, Flower-style (``flwr.serverapp.strategy``):

- :meth:`Strategy.mean_delta` turns the parties' deltas into one weighted mean delta;
- :meth:`Strategy.outer_step` applies it to the global vector, possibly with optimizer state.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zkadapt.registry import Registry

if TYPE_CHECKING:
    from zkadapt.aggregation.settings import AggregationConfig


def _check_vector(vec: np.ndarray, label: str, size: int | None = None) -> None:
    """Raise ValueError unless ``vec`` is a 1-D float32 array (of length ``size`` if given)."""
    if not isinstance(vec, np.ndarray) or vec.dtype != np.float32 or vec.ndim != 1:
        shape = getattr(vec, "shape", None)
        raise ValueError(f"{label} must be a 1-D float32 array, got {type(vec).__name__} {shape}")
    if size is not None and vec.shape[0] != size:
        raise ValueError(f"{label} has length {vec.shape[0]}, expected {size}")


class Strategy(ABC):
    """Base class: weighted mean of deltas, then a strategy-specific outer step."""

    def mean_delta(self, deltas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
        """Weighted mean ``sum(w_i * d_i) / sum(w_i)`` (FedAvg, McMahan et al. 2017, eq. in Alg. 1).

        Products and sums are taken in float64 in the given order (callers pass party-name
        order), then rounded once to float32, so every party gets the same bits.

        Args:
            deltas: one 1-D float32 delta per accepted party, all the same length.
            weights: one non-negative finite weight per delta (usually ``n_samples``).

        Returns:
            A new float32 vector; the inputs are not modified.

        Raises:
            ValueError: no deltas, lengths that differ, a bad weight or a total weight <= 0.
        """
        if len(deltas) == 0:
            raise ValueError("cannot average zero deltas")
        if len(deltas) != len(weights):
            raise ValueError(f"{len(deltas)} deltas but {len(weights)} weights")
        _check_vector(deltas[0], "delta 0")
        size = deltas[0].shape[0]
        total = 0.0
        for i, (delta, weight) in enumerate(zip(deltas, weights, strict=True)):
            _check_vector(delta, f"delta {i}", size)
            if not (math.isfinite(weight) and weight >= 0):
                raise ValueError(f"weight {i} must be finite and >= 0, got {weight!r}")
            total += float(weight)
        if not total > 0.0:
            raise ValueError(f"total weight must be > 0, got {total}")
        acc = np.zeros(size, dtype=np.float64)
        for delta, weight in zip(deltas, weights, strict=True):
            acc += np.multiply(delta, np.float64(weight), dtype=np.float64)
        acc /= total
        return acc.astype(np.float32)

    @abstractmethod
    def outer_step(
        self, global_vec: np.ndarray, mean_delta: np.ndarray, momentum: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply the mean delta to the global vector.

        Args:
            global_vec: G(r-1) as a 1-D float32 vector.
            mean_delta: the output of :meth:`mean_delta`, same length.
            momentum: the strategy's state from the previous round (``None`` at round 1 or
                for stateless strategies).

        Returns:
            ``(G(r), new_momentum)``: fresh arrays; the inputs are not modified.

        Raises:
            ValueError: the vectors are not 1-D float32 of the same length.
        """


class FedAvg(Strategy):
    """Federated averaging: ``G(r) = G(r-1) + mean_delta`` (McMahan et al. 2017)."""

    def outer_step(
        self, global_vec: np.ndarray, mean_delta: np.ndarray, momentum: np.ndarray | None
    ) -> tuple[np.ndarray, None]:
        _check_vector(global_vec, "global_vec")
        _check_vector(mean_delta, "mean_delta", global_vec.shape[0])
        return np.add(global_vec, mean_delta, dtype=np.float32), None


class DiLoCo(Strategy):
    """DiLoCo's outer optimizer: Nesterov momentum SGD on the pseudo-gradient.

    Douillard et al. 2023, "DiLoCo: Distributed Low-Communication Training of Language
    Models" (arXiv:2311.08105), treat ``g = -mean_delta`` (old minus averaged new parameters) as
    a gradient and step with Nesterov momentum, as PyTorch's ``SGD(nesterov=True)`` does::

        m     = mu * m + g              (m = 0 before the first round)
        G(r)  = G(r-1) - lr * (g + mu * m)

    The paper's defaults are ``lr = 0.7`` and ``mu = 0.9``. With ``mu = 0`` and ``lr = 1`` this is
    exactly FedAvg. Arithmetic is float64 and rounded to float32; the momentum is rounded to
    float32 before it is used, so a party restarting from its stored momentum gets the same bits.

    Args:
        outer_lr: outer learning rate, > 0.
        momentum: Nesterov momentum ``mu``, in ``[0, 1)``.

    Raises:
        ValueError: a hyperparameter is out of range.
    """

    def __init__(self, outer_lr: float = 0.7, momentum: float = 0.9) -> None:
        if not (math.isfinite(outer_lr) and outer_lr > 0.0):
            raise ValueError(f"outer_lr must be finite and > 0, got {outer_lr!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
        self.outer_lr = float(outer_lr)
        self.momentum = float(momentum)

    def outer_step(
        self, global_vec: np.ndarray, mean_delta: np.ndarray, momentum: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        _check_vector(global_vec, "global_vec")
        size = global_vec.shape[0]
        _check_vector(mean_delta, "mean_delta", size)
        grad = -mean_delta.astype(np.float64)
        buf = grad.copy()
        if momentum is not None:
            _check_vector(momentum, "momentum", size)
            buf += self.momentum * momentum.astype(np.float64)
        new_momentum = buf.astype(np.float32)
        step = grad + self.momentum * new_momentum.astype(np.float64)
        new_global = global_vec.astype(np.float64) - self.outer_lr * step
        return new_global.astype(np.float32), new_momentum


class FFALoRA(FedAvg):
    """Federated Freeze-A LoRA: FedAvg over the B matrices alone (Sun et al., ICLR 2024).

    LoRA (Hu et al. 2021) adapts a frozen weight ``W`` by ``W + s * B @ A``. Averaging the
    factors separately, as plain FedAvg over LoRA tensors does, is not averaging the updates:

        mean_i(B_i) @ mean_i(A_i)  !=  mean_i(B_i @ A_i)

    because the product is bilinear; the cross terms ``B_i @ A_j`` (i != j) of the left side
    are updates no party made, so the aggregate drifts from what FedAvg means. FFA-LoRA
    ("Improving LoRA in Privacy-preserving Federated Learning", Sun et al. 2024) freezes every
    ``A`` at the same seeded random init on every party and trains and exchanges only ``B``;
    then ``mean_i(B_i) @ A = mean_i(B_i @ A)`` exactly, it halves the bytes per round, and the
    update is linear in what is exchanged (so DP noise or secure aggregation acts on it
    directly). The vector math is FedAvg's; what makes the aggregation exact is that the
    learner (``aggregation.strategy = "ffa-lora"``) exposes only the B tensors as trainable.
    """


STRATEGIES: dict[str, type[Strategy]] = {
    "fedavg": FedAvg,
    "diloco": DiLoCo,
    "ffa-lora": FFALoRA,
}


def make_strategy(name: str, **params: Any) -> Strategy:
    """Build a strategy by its registered name with keyword hyperparameters.

    Raises:
        ValueError: ``name`` is not in :data:`STRATEGIES` (the message lists the valid names).
        TypeError: ``params`` are not accepted by that strategy.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](**params)


#: Builds a strategy from the ``[aggregation]`` section (its hyperparameters).
StrategyFactory = Callable[["AggregationConfig"], Strategy]

#: The strategies ``aggregation.strategy`` may name; a new one is a module plus
#: one :func:`register_strategy` call.
STRATEGY_REGISTRY: Registry[StrategyFactory] = Registry("aggregation strategy")


def register_strategy(name: str, factory: StrategyFactory) -> None:
    """Make ``name`` a valid ``aggregation.strategy``, built by ``factory(settings)``.

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_-]`` or is already registered.
    """
    STRATEGY_REGISTRY.register(name, factory)


def strategy_from_settings(settings: AggregationConfig) -> Strategy:
    """The strategy ``settings.strategy`` names, with its hyperparameters."""
    return STRATEGY_REGISTRY.get(settings.strategy)(settings)


register_strategy("fedavg", lambda settings: FedAvg())
register_strategy(
    "diloco",
    lambda settings: DiLoCo(outer_lr=settings.outer_lr, momentum=settings.outer_momentum),
)
register_strategy("ffa-lora", lambda settings: FFALoRA())
