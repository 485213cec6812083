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
    from zkadapt.crypto.identity import Keyring

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


def _open_local(*, keyring: Keyring, path: str | Path) -> Channel:
    from zkadapt.channel.local import LocalLedger

    return LocalLedger(Path(path), keyring)


_BACKENDS: dict[str, ChannelFactory] = {"local": _open_local}


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
        backend: a registered name (``"local"`` takes ``path``).
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
