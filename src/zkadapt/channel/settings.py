"""``[channel]``: which ordered, signed log carries the session (DESIGN.md section 6)."""

from __future__ import annotations

from pydantic import Field, field_validator

from zkadapt.channel.hydra.settings import HydraChannelConfig
from zkadapt.sections import Section


class ChannelConfig(Section):
    """Ordered, signed message channel (DESIGN.md section 6).

    ``backend`` is any name registered with :func:`zkadapt.channel.register_channel`.
    """

    backend: str = "local"
    path: str = Field("ledger.sqlite", description="SQLite file, relative to the output directory.")
    hydra: HydraChannelConfig = HydraChannelConfig()

    @field_validator("backend")
    @classmethod
    def _registered(cls, name: str) -> str:
        from zkadapt.channel import CHANNEL_BACKENDS

        return CHANNEL_BACKENDS.check_name(name)
