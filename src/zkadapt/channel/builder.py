"""Open a session's channel from its configuration: one place for every caller.

Parties, the local runner, the audit and the dashboard all reach the channel through
:func:`open_session_channel`, so the ``local`` ledger and a ``hydra`` head are chosen by
``channel.backend`` alone (DESIGN.md section 6).
"""

from __future__ import annotations

from pathlib import Path

from zkadapt.channel import open_channel
from zkadapt.channel.base import Channel
from zkadapt.config import SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import channel_keyring_of


def open_session_channel(
    config: SessionConfig,
    out_dir: Path,
    *,
    party: str | None = None,
    identity: IdentityKey | None = None,
) -> Channel:
    """The session's channel; read-only without ``identity`` (runner, audit, dashboard).

    Args:
        config: the session (with every party's public key).
        out_dir: output directory; a relative ``channel.path`` resolves here.
        party: whose node to talk to (hydra: each party has its own hydra-node API);
            observers without one read through the first party's node.
        identity: the party's key, which signs what it posts (hydra: the tx witness).
    """
    return open_channel(
        config.channel.backend,
        keyring=channel_keyring_of(config),
        path=out_dir / config.channel.path,
        party=party or config.party_names[0],  # observers read through the first node
        identity=identity,
        settings=config.channel.hydra,
    )
