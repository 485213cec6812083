"""``[channel.hydra]``: how a party reaches its hydra-node (docs/hydra.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zkadapt.sections import Section, added_later, locator


class HydraChannelConfig(Section):
    """The ``hydra`` channel: every party talks to its own hydra-node (docs/hydra.md).

    ``api`` is where this party's node listens (WebSocket and HTTP share the port); a
    ``{party}`` in it is replaced by the party's name. ``nodes`` overrides it per party, for
    several parties (or a test double) on one machine.

    The waits on layer 1 come from the node's own parameters plus ``layer1_timeout_s``
    (:mod:`zkadapt.channel.hydra.waits`). ``zkadapt run`` deposits ``deposit_lovelace`` for
    every party that has nothing in the open head to post with, from its outputs listed in
    ``layer1_utxo`` (``{party}`` replaced; a ``cardano-cli query utxo --output-json`` file).
    The three keys came after the first sessions were recorded (``added_later``): at their
    defaults they leave a session's id unchanged. ``head_id`` is a ``locator``: it names
    where the session runs, so it never enters the session id (docs/hydra.md, "Reading a
    finished session").
    """

    api: str = Field("127.0.0.1:4001", description="hydra-node API: host:port or ws(s):// URL.")
    nodes: dict[str, str] = Field(default_factory=dict, description="Per-party API overrides.")
    head_id: str | None = locator(
        None,
        pattern=r"^[0-9a-f]{32}$",
        description="Follow this head; default: the node's (or the one a persisted copy of "
        "the channel names). Where the session runs, not what it is: never in the session id.",
    )
    network: Literal["testnet", "mainnet"] = "testnet"
    connect_timeout_s: float = Field(30.0, gt=0, le=3600)
    confirm_timeout_s: float = Field(60.0, gt=0, le=3600)
    layer1_timeout_s: float = added_later(
        600.0,
        gt=0,
        le=86_400,
        description="How long a layer-1 transaction of the head may take to be posted and "
        "seen (Init, Close, Fanout, a deposit), and the margin after the node's deadlines.",
    )
    deposit_lovelace: int = added_later(
        5_000_000,
        ge=0,
        description="What `zkadapt run` deposits for a party with no funds in the open head "
        "(0: never deposit).",
    )
    layer1_utxo: str | None = added_later(
        None,
        min_length=1,
        description="A party's layer-1 outputs to deposit from: a `cardano-cli query utxo "
        "--output-json` file; {party} is replaced by the party's name.",
    )

    def utxo_file_for(self, party: str) -> str | None:
        """``layer1_utxo`` with ``{party}`` filled, or None if not set."""
        return self.layer1_utxo.replace("{party}", party) if self.layer1_utxo else None

    def api_for(self, party: str | None) -> str:
        """The node API of ``party`` (``api`` with ``{party}`` filled, unless overridden)."""
        if party is not None and party in self.nodes:
            return self.nodes[party]
        return self.api.replace("{party}", party) if party is not None else self.api
