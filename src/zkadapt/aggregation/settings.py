"""``[aggregation]``: which strategy turns accepted updates into the next global model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from zkadapt.sections import Section, added_later


class AggregationConfig(Section):
    """How accepted updates become the next global model (DESIGN.md section 3, APPLY).

    ``strategy`` is any name registered with
    :func:`zkadapt.aggregation.strategy.register_strategy`. ``weighting`` and ``max_weight``
    bound what a party's declared size can buy (:mod:`zkadapt.aggregation.weights`):
    ``"declared"`` FedAvg shares capped at ``max_weight`` (default 1/2 with three or more
    parties, none with two), or ``"equal"``.
    """

    strategy: str = "fedavg"
    outer_lr: float = Field(0.7, gt=0)
    outer_momentum: float = Field(0.9, ge=0, lt=1)
    weighting: Literal["declared", "equal"] = added_later("declared")
    max_weight: float | None = added_later(
        None, gt=0, le=1, description="Largest share of the mean one party may have."
    )

    @field_validator("strategy")
    @classmethod
    def _registered(cls, name: str) -> str:
        from zkadapt.aggregation.strategy import STRATEGY_REGISTRY

        return STRATEGY_REGISTRY.check_name(name)
