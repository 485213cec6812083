"""``[cardano]``: how the parties reach Cardano layer 1 (docs/hydra.md, "Layer-1 access").

An optional section. Without it a session behaves as before (deposits read a cardano-cli
UTxO file and submit through the hydra-node) and keeps its session id: the section is
declared ``added_later`` in ``SessionConfig``, so it is left out of the canonical JSON
while absent. With it, layer 1 is read and written through a PyCardano chain context
(:mod:`zkadapt.cardano.chain`): Ogmios v6 (JSON-RPC over WebSocket) or Blockfrost.

The Blockfrost project id is a secret: the file names the environment variable that holds
it (``project_id_env``), never the id itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from zkadapt.errors import ConfigError
from zkadapt.sections import Section

#: Ogmios' own default listening address (``ogmios --host 127.0.0.1 --port 1337``).
DEFAULT_OGMIOS_URL = "ws://127.0.0.1:1337"

#: Network -> whether it is a testnet (PyCardano's ``Network.TESTNET`` addresses).
TESTNETS = frozenset({"preprod", "preview"})


class CardanoConfig(Section):
    """Layer-1 access for every party of the session (docs/hydra.md).

    ``url`` and ``payment_keys`` may contain ``{party}``, replaced by the party's name (one
    Ogmios per party, one key file per party). ``payment_keys`` is relative to the session
    file's directory; unset, a party's identity key (``keys/{party}.skey``, the same
    cardano-cli envelope and key type) is its payment key.
    """

    network: Literal["preprod", "preview", "mainnet"] = "preprod"
    backend: Literal["ogmios", "blockfrost"] = "ogmios"
    url: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="Ogmios: its ws(s):// URL (default ws://127.0.0.1:1337). Blockfrost: the "
        "API base URL (default: the network's public endpoint).",
    )
    project_id_env: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$",
        description="Blockfrost: the environment variable that holds the project id.",
    )
    payment_keys: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="Each party's payment signing key (cardano-cli TextEnvelope), {party} "
        "replaced; default: the party's identity key.",
    )
    confirm_timeout_s: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="How long a submitted layer-1 transaction may take to show in the UTxO.",
    )

    def check(self) -> None:
        """The rules between keys (``config`` calls it; each error names its key).

        Raises:
            ConfigError: a key that the backend needs is missing, or one it ignores is set.
        """
        if self.backend == "blockfrost" and self.project_id_env is None:
            raise ConfigError(
                "cardano.project_id_env",
                "the blockfrost backend needs the name of the environment variable that "
                "holds the project id",
            )
        if self.backend == "ogmios":
            if self.project_id_env is not None:
                raise ConfigError("cardano.project_id_env", "only used with backend = 'blockfrost'")
            url = self.url or DEFAULT_OGMIOS_URL
            if not url.startswith(("ws://", "wss://")):
                raise ConfigError(
                    "cardano.url", f"an Ogmios URL starts with ws:// or wss://, got {url!r}"
                )
        elif self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ConfigError(
                "cardano.url", f"a Blockfrost URL starts with http(s)://, got {self.url!r}"
            )

    @property
    def testnet(self) -> bool:
        return self.network in TESTNETS

    def url_for(self, party: str | None) -> str | None:
        """``url`` with ``{party}`` filled (Ogmios: the default URL when unset)."""
        url = self.url or (DEFAULT_OGMIOS_URL if self.backend == "ogmios" else None)
        if url is None or party is None:
            return url
        return url.replace("{party}", party)

    def payment_key_for(self, party: str) -> str | None:
        """``payment_keys`` with ``{party}`` filled, or None (the identity key)."""
        return self.payment_keys.replace("{party}", party) if self.payment_keys else None
