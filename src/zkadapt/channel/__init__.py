"""Ordered, signed message channels, chosen by name (DESIGN.md sections 1 and 6).

``open_channel("local", keyring=..., path=...)`` returns a :class:`Channel`. Backends are
factories in one registry, imported lazily so that a backend's dependencies (websockets and
PyCardano for ``hydra``) are needed only when it is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt.channel.base import Channel, Entry, Receipt, SignedEnvelope

if TYPE_CHECKING:
    from zkadapt.config import HydraChannelConfig
    from zkadapt.crypto.identity import IdentityKey, Keyring

__all__ = [
    "Channel",
    "Entry",
    "Receipt",
    "SignedEnvelope",
    "channel_backends",
    "open_channel",
    "register_channel",
]

ChannelFactory = Callable[..., Channel]


def _open_local(
    *,
    keyring: Keyring,
    path: str | Path,
    party: str | None = None,
    identity: IdentityKey | None = None,
    settings: HydraChannelConfig | None = None,
) -> Channel:
    """The SQLite ledger at ``path``; ``party``, ``identity`` and ``settings`` are unused."""
    from zkadapt.channel.local import LocalLedger

    return LocalLedger(Path(path), keyring)


def _open_hydra(
    *,
    keyring: Keyring,
    settings: HydraChannelConfig | None = None,
    party: str | None = None,
    identity: IdentityKey | None = None,
    path: str | Path | None = None,
    api: str | None = None,
) -> Channel:
    """A client of ``party``'s hydra-node (docs/hydra.md); read-only without ``identity``.

    ``api`` overrides the node address from ``settings`` (``channel.hydra``); ``path`` is
    accepted for a uniform call and unused (the head is the ledger).
    """
    from zkadapt.channel.hydra import HydraChannel
    from zkadapt.config import HydraChannelConfig

    settings = settings or HydraChannelConfig()
    return HydraChannel(
        keyring,
        api=api or settings.api_for(party),
        identity=identity,
        head_id=settings.head_id,
        network=settings.network,
        connect_timeout_s=settings.connect_timeout_s,
        confirm_timeout_s=settings.confirm_timeout_s,
    )


_BACKENDS: dict[str, ChannelFactory] = {"local": _open_local, "hydra": _open_hydra}


def register_channel(name: str, factory: ChannelFactory) -> None:
    """Add a backend under a unique lowercase ``name`` (STYLE.md rule 1).

    ``factory`` is called as ``factory(keyring=..., **settings)``.

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_]`` or is already registered.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"channel backend name must be lowercase [a-z0-9_], got {name!r}")
    if name in _BACKENDS:
        raise ValueError(f"channel backend {name!r} is already registered")
    _BACKENDS[name] = factory


def channel_backends() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_BACKENDS)


def open_channel(backend: str, *, keyring: Keyring, **kwargs: Any) -> Channel:
    """Open the channel ``backend``, checking every envelope against ``keyring``.

    Args:
        backend: a registered name. ``"local"`` takes ``path``; ``"hydra"`` takes
            ``settings`` (``config.channel.hydra``), ``party`` and ``identity`` (without an
            identity the channel is read-only). Both accept all four, so a caller can pass
            ``path=..., party=..., identity=..., settings=...`` whatever the backend.
        keyring: the session's parties and their public identities.
        **kwargs: the backend's settings, already validated by the config layer.

    Returns:
        The channel.

    Raises:
        ValueError: ``backend`` is unknown (the message lists the valid names).
        ChannelError: the backend cannot be opened.
    """
    factory = _BACKENDS.get(backend)
    if factory is None:
        raise ValueError(
            f"unknown channel backend {backend!r}; valid: {', '.join(channel_backends())}"
        )
    return factory(keyring=keyring, **kwargs)
