"""``[channel.hydra]``: how a party reaches its hydra-node (docs/hydra.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zkadapt.sections import Section


class HydraChannelConfig(Section):
    """The ``hydra`` channel: every party talks to its own hydra-node (docs/hydra.md).

    ``api`` is where this party's node listens (WebSocket and HTTP share the port); a
    ``{party}`` in it is replaced by the party's name. ``nodes`` overrides it per party, for
    several parties (or a test double) on one machine.
    """

    api: str = Field("127.0.0.1:4001", description="hydra-node API: host:port or ws(s):// URL.")
    nodes: dict[str, str] = Field(default_factory=dict, description="Per-party API overrides.")
    head_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="Follow this head; default: the node's."
    )
    network: Literal["testnet", "mainnet"] = "testnet"
    connect_timeout_s: float = Field(30.0, gt=0, le=3600)
    confirm_timeout_s: float = Field(60.0, gt=0, le=3600)

    def api_for(self, party: str | None) -> str:
        """The node API of ``party`` (``api`` with ``{party}`` filled, unless overridden)."""
        if party is not None and party in self.nodes:
            return self.nodes[party]
        return self.api.replace("{party}", party) if party is not None else self.api
