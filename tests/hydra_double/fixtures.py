"""Helpers for tests over the double: funded parties, an opened head, forged transactions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from tests.hydra_double.server import HydraDouble
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.crypto.identity import IdentityKey, Keyring

LOVELACE = 10_000_000


def funds(keys: dict[str, IdentityKey], lovelace: int = LOVELACE) -> dict[str, Any]:
    """One plain output per party at its identity address (api.yaml ``UTxO``)."""
    utxo = {}
    for name, key in keys.items():
        tx_id = hashlib.sha256(b"genesis:" + name.encode()).hexdigest()
        utxo[f"{tx_id}#0"] = {"address": address_of(key.public), "value": {"lovelace": lovelace}}
    return utxo


def envelope(key: IdentityKey, sender: str, payload: bytes) -> SignedEnvelope:
    return SignedEnvelope(sender, payload, key.sign(payload))


@contextmanager
def open_head(
    keys: dict[str, IdentityKey], keyring: Keyring, **double_kwargs: Any
) -> Iterator[tuple[HydraDouble, dict[str, HydraChannel]]]:
    """A started double with the parties funded in the head, the head open, one channel each."""
    double_kwargs.setdefault("initial_utxo", funds(keys))
    double = HydraDouble(list(keys), **double_kwargs).start()
    channels: dict[str, HydraChannel] = {}
    try:
        for name, key in keys.items():
            channels[name] = HydraChannel(
                keyring,
                api=double.api(name),
                identity=key,
                confirm_timeout_s=10,
                connect_timeout_s=10,
            )
        next(iter(channels.values())).init_head(timeout=10)
        for channel in channels.values():
            channel._await(lambda v: v.status == "Open", 10, "HeadIsOpen")
        yield double, channels
    finally:
        for channel in channels.values():
            with suppress(Exception):
                channel.close()
        double.stop()
