"""Ordered, signed message channels, chosen by name (DESIGN.md sections 1 and 6).

``open_channel("local", keyring=..., path=...)`` returns a :class:`Channel`. Every backend
is one :class:`ChannelBackend` in :data:`CHANNEL_BACKENDS`, imported lazily so that a
backend's dependencies (websockets and PyCardano for ``hydra``) are needed only when it is
used. A new backend is one module plus one :func:`register_channel` call, and
``channel.backend`` accepts its name from then on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt.channel.base import Channel, Entry, Receipt, SignedEnvelope
from zkadapt.channel.outsiders import OutsiderPolicy
from zkadapt.registry import Registry

if TYPE_CHECKING:
    from zkadapt.channel.hydra.settings import HydraChannelConfig
    from zkadapt.crypto.identity import IdentityKey, Keyring

__all__ = [
    "CHANNEL_BACKENDS",
    "Channel",
    "ChannelBackend",
    "CopyPlaces",
    "Entry",
    "OutsiderPolicy",
    "Receipt",
    "SignedEnvelope",
    "channel_backends",
    "open_channel",
    "register_channel",
]

ChannelFactory = Callable[..., Channel]


@dataclass(frozen=True)
class CopyPlaces:
    """Where a channel whose history can vanish keeps a copy of it, and where to read copies.

    A Hydra head's history is gone once the head is fanned out and its nodes forget it
    (docs/hydra.md, "Reading a finished session"); a backend registered with
    ``keeps_copies=True`` gets these places from the composition root.

    Attributes:
        record: the file this opener appends its copy to (a party, ``zkadapt run``), or None.
        read: the copies a reader may fall back to, in order of preference.
    """

    record: Path | None = None
    read: tuple[Path, ...] = ()


def _open_local(
    *,
    keyring: Keyring,
    path: str | Path,
    party: str | None = None,
    identity: IdentityKey | None = None,
    settings: HydraChannelConfig | None = None,
    outsiders: OutsiderPolicy | None = None,
) -> Channel:
    """The SQLite ledger at ``path``, carrying newcomers by ``outsiders`` when given;
    ``party``, ``identity`` and ``settings`` are unused."""
    from zkadapt.channel.local import LocalLedger

    return LocalLedger(Path(path), keyring, outsiders=outsiders)


def _open_hydra(
    *,
    keyring: Keyring,
    settings: HydraChannelConfig | None = None,
    party: str | None = None,
    identity: IdentityKey | None = None,
    path: str | Path | None = None,
    api: str | None = None,
    copies: CopyPlaces | None = None,
    outsiders: OutsiderPolicy | None = None,
) -> Channel:
    """A client of ``party``'s hydra-node (docs/hydra.md); read-only without ``identity``.

    ``api`` overrides the node address from ``settings`` (``channel.hydra``); ``path`` is
    accepted for a uniform call and unused (the head is the ledger). With ``copies``, the
    channel appends a copy of what it reads to ``copies.record``; a reader (no
    ``identity``) whose node no longer knows the head reads ``copies.read`` instead
    (:func:`~zkadapt.channel.hydra.archive.open_hydra_reader`). With ``outsiders``,
    newcomers' envelopes are carried (:mod:`zkadapt.channel.outsiders`), and a party whose
    identity is no keyring key posts as ``party`` (a newcomer, through a member's node).
    """
    from zkadapt.channel.hydra.archive import head_of_copy, open_hydra_reader
    from zkadapt.channel.hydra.client import HydraChannel
    from zkadapt.channel.hydra.settings import HydraChannelConfig

    settings = settings or HydraChannelConfig()
    places = copies or CopyPlaces()

    def live(head_id: str | None) -> HydraChannel:
        return HydraChannel(
            keyring,
            api=api or settings.api_for(party),
            identity=identity,
            head_id=head_id,
            network=settings.network,
            connect_timeout_s=settings.connect_timeout_s,
            confirm_timeout_s=settings.confirm_timeout_s,
            layer1_timeout_s=settings.layer1_timeout_s,
            record=places.record,
            outsiders=outsiders,
            name=party,
        )

    if identity is not None or not places.read:  # a party resumes the head its copy names
        return live(settings.head_id or head_of_copy(places.record))
    return open_hydra_reader(keyring, places.read, settings.head_id, live, outsiders)


@dataclass(frozen=True)
class ChannelBackend:
    """One channel backend: its factory and the ``[channel.<section>]`` table it reads."""

    factory: ChannelFactory
    section: str | None = None  # e.g. "hydra": config.channel.hydra is passed as settings
    keeps_copies: bool = False  # the factory takes copies=CopyPlaces(...)


CHANNEL_BACKENDS: Registry[ChannelBackend] = Registry("channel backend")


def register_channel(
    name: str, factory: ChannelFactory, *, section: str | None = None, keeps_copies: bool = False
) -> None:
    """Add a backend under a unique lowercase ``name`` (STYLE.md rule 1).

    ``factory`` is called as ``factory(keyring=..., path=..., party=..., identity=...,
    settings=...)`` and ignores what it does not use; ``settings`` is the
    ``[channel.<section>]`` table when ``section`` is given, else None. With
    ``keeps_copies`` it also gets ``copies=``:class:`CopyPlaces` (a channel whose history
    can vanish, like a fanned-out Hydra head).

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_-]`` or is already registered.
    """
    CHANNEL_BACKENDS.register(name, ChannelBackend(factory, section, keeps_copies))


def channel_backends() -> list[str]:
    """The registered backend names, sorted."""
    return CHANNEL_BACKENDS.names()


def open_channel(backend: str, *, keyring: Keyring, **kwargs: Any) -> Channel:
    """Open the channel ``backend``, checking every envelope against ``keyring``.

    Args:
        backend: a registered name. ``"local"`` takes ``path``; ``"hydra"`` takes
            ``settings`` (``config.channel.hydra``), ``party`` and ``identity`` (without an
            identity the channel is read-only). Both accept all four, so a caller can pass
            ``path=..., party=..., identity=..., settings=...`` whatever the backend.
        keyring: the session's parties and their public identities.
        **kwargs: the backend's settings, already validated by the config layer, and
            ``outsiders`` (an :class:`OutsiderPolicy`: carry newcomers' envelopes).

    Returns:
        The channel.

    Raises:
        ValueError: ``backend`` is unknown (the message lists the valid names).
        ChannelError: the backend cannot be opened.
    """
    return CHANNEL_BACKENDS.get(backend).factory(keyring=keyring, **kwargs)


register_channel("local", _open_local)
register_channel("hydra", _open_hydra, section="hydra", keeps_copies=True)
