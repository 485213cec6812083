"""The scripted session of :mod:`tests.dashboard.scripted`, over a Hydra head (the double).

The session file names the hydra-node double's nodes (``channel.backend = "hydra"``); each
party posts through its own :class:`~zkadapt.channel.hydra.HydraChannel` with its identity
key, so every message is a real transaction confirmed in a snapshot of the double's head.
"""

from __future__ import annotations

from pathlib import Path

from tests.dashboard.scripted import NAMES, ScriptedSession
from tests.e2e.conftest import edit_session
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import funds
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra import HydraChannel
from zkadapt.config import load_config
from zkadapt.crypto.identity import Keyring
from zkadapt.escrow.messages import EscrowMessage
from zkadapt.protocol.messages import Message, sign


class HydraScripted(ScriptedSession):
    """Writes ``OUT/session.toml`` for the double's head and posts through the head.

    The head is not open until :meth:`open_head` (or the dashboard's Init).
    """

    def __init__(self, out_dir: Path, *, rounds: int = 3, contestation_s: float = 0.5) -> None:
        super().__init__(out_dir, rounds=rounds)
        self.double = HydraDouble(
            list(NAMES), initial_utxo=funds(self.keys), contestation_s=contestation_s
        ).start()
        nodes = {n: self.double.api(n) for n in NAMES}
        edit_session(
            self.session_file,
            channel={
                "backend": "hydra",
                "hydra": {"nodes": nodes, "connect_timeout_s": 5, "confirm_timeout_s": 10},
            },
        )
        self.config = load_config(self.session_file)
        self.keyring = Keyring({n: k.public for n, k in self.keys.items()})
        self._channels: dict[str, HydraChannel] = {}

    def channel(self, party: str) -> HydraChannel:
        """``party``'s client of its own node (posts as ``party``)."""
        if party not in self._channels:
            self._channels[party] = HydraChannel(
                self.keyring,
                api=self.double.api(party),
                identity=self.keys[party],
                connect_timeout_s=5,
                confirm_timeout_s=10,
            )
        return self._channels[party]

    def open_head(self) -> str:
        """Init the head from alice's node; returns its id."""
        return self.channel("alice").init_head(timeout=10)

    def post(self, sender: str, message: Message) -> int:
        return self.channel(sender).post(sign(message, sender, self.keys[sender])).seq

    def post_escrow(self, sender: str, message: EscrowMessage) -> int:
        payload = message.to_bytes()
        envelope = SignedEnvelope(sender, payload, self.keys[sender].sign(payload))
        return self.channel(sender).post(envelope).seq

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
        self.double.stop()
