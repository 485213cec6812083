"""Errors of layer-1 access: one line each, naming the backend and the reason."""

from __future__ import annotations

import re

from zkadapt.errors import ZkAdaptError

#: Longest reason kept from a remote service (its text is hostile input).
REASON_CHARS = 300


def one_line(text: object, limit: int = REASON_CHARS) -> str:
    """``text`` as one printable line of at most ``limit`` characters."""
    flat = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class LayerOneError(ZkAdaptError):
    """Cardano layer 1 cannot be read or written; ``backend`` names the service.

    Attributes:
        backend: e.g. ``ogmios ws://127.0.0.1:1337`` or ``blockfrost preprod``.
        reason: one line.
    """

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = one_line(reason)
        super().__init__(f"{backend}: {self.reason}")


class ChainUnreachable(LayerOneError):
    """The service does not answer (refused, unknown host, timeout, closed connection)."""


class ChainResponseError(LayerOneError):
    """The service answered something that is not what the protocol says it sends."""


class ChainRefused(LayerOneError):
    """The service answered a request with an error; ``code`` is the service's code."""

    def __init__(self, backend: str, reason: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(backend, reason)


class TransactionRejected(ChainRefused):
    """The node refused a transaction, or its scripts failed to evaluate."""
