"""The ``hydra`` channel: a Cardano Hydra head as the session's ordered log (docs/hydra.md).

One module per concern: :mod:`.wire` (the node's JSON API), :mod:`.feed` (WebSocket and
HTTP), :mod:`.cbor`, :mod:`.metadata`, :mod:`.tx` and :mod:`.txread` (messages as signed
transactions), :mod:`.view` (the head's confirmed order), :mod:`.head` (lifecycle commands),
:mod:`.client` (:class:`HydraChannel`) and :mod:`.settings` (``[channel.hydra]``).

:class:`HydraChannel` is imported on first use, so reading the settings does not load
websockets or PyCardano.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zkadapt.channel.hydra.client import HydraChannel

__all__ = ["HydraChannel"]


def __getattr__(name: str) -> Any:
    if name == "HydraChannel":
        from zkadapt.channel.hydra.client import HydraChannel

        return HydraChannel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
