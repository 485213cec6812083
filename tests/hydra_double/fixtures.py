"""Helpers for tests over the double: funded parties, an opened head, forged transactions."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.hydra_double.server import HydraDouble
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.crypto.identity import IdentityKey, Keyring

LOVELACE = 10_000_000


def funds(
    keys: dict[str, IdentityKey], lovelace: int = LOVELACE, *, origin: str = "genesis"
) -> dict[str, Any]:
    """One plain output per party at its identity address (api.yaml ``UTxO``).

    ``origin`` seeds the made-up transaction ids, so that funds in the head (``genesis``)
    and on layer 1 (``layer1``) never share a ``TxIn``.
    """
    utxo = {}
    for name, key in keys.items():
        tx_id = hashlib.sha256(f"{origin}:{name}".encode()).hexdigest()
        utxo[f"{tx_id}#0"] = {"address": address_of(key.public), "value": {"lovelace": lovelace}}
    return utxo


def layer1_funds(keys: dict[str, IdentityKey], lovelace: int = 2 * LOVELACE) -> dict[str, Any]:
    """One output per party on layer 1, to deposit from (a real 2.x head opens empty)."""
    return funds(keys, lovelace, origin="layer1")


def utxo_files(double: HydraDouble, keys: dict[str, IdentityKey], directory: Path) -> str:
    """Write each party's layer-1 outputs as ``cardano-cli query utxo --output-json`` would.

    Returns the path template with ``{party}`` (for ``channel.hydra.layer1_utxo``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ledger = double.run(lambda: copy.deepcopy(double.head.l1.utxo))
    for party, key in keys.items():
        address = address_of(key.public)
        mine = {ref: out for ref, out in ledger.items() if out["address"] == address}
        (directory / f"{party}.utxo.json").write_text(json.dumps(mine, indent=2))
    return str(directory / "{party}.utxo.json")


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
