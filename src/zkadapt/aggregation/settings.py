"""``[aggregation]``: which strategy turns accepted updates into the next global model."""

from __future__ import annotations

from pydantic import Field, field_validator

from zkadapt.sections import Section


class AggregationConfig(Section):
    """How accepted updates become the next global model (DESIGN.md section 3, APPLY).

    ``strategy`` is any name registered with
    :func:`zkadapt.aggregation.strategy.register_strategy`.
    """

    strategy: str = "fedavg"
    outer_lr: float = Field(0.7, gt=0)
    outer_momentum: float = Field(0.9, ge=0, lt=1)

    @field_validator("strategy")
    @classmethod
    def _registered(cls, name: str) -> str:
        from zkadapt.aggregation.strategy import STRATEGY_REGISTRY

        return STRATEGY_REGISTRY.check_name(name)
