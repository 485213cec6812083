"""The chain context of a session: ``[cardano]`` -> a PyCardano ``ChainContext``.

:func:`chain_context` builds the backend the section names (``ogmios``: :class:`OgmiosContext`;
``blockfrost``: :class:`BlockfrostContext`, its project id read from the environment
variable ``project_id_env`` names). Both are PyCardano chain contexts (a
``TransactionBuilder`` takes them as they are) and add ``backend`` (a name for messages),
``slot_to_posix_ms`` and ``posix_ms_to_slot``. Every failure is a one-line
:class:`~zkadapt.cardano.errors.LayerOneError`.

:func:`wait_confirmed` waits until a submitted transaction's output shows in the UTxO.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from zkadapt.cardano.errors import ChainUnreachable, LayerOneError
from zkadapt.errors import ConfigError

if TYPE_CHECKING:
    from zkadapt.cardano.settings import CardanoConfig

#: How often :func:`wait_confirmed` asks.
POLL_S = 1.0


def chain_context(
    settings: CardanoConfig,
    party: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> Any:
    """The PyCardano chain context ``settings`` describes, for ``party`` (``{party}`` in url).

    Raises:
        ConfigError: Blockfrost's project id variable is not set.
        LayerOneError: Blockfrost cannot be reached (its context asks at once; an Ogmios
            context connects on its first request).
    """
    from pycardano.network import Network

    # PyCardano logs a context's (and a builder's) whole state as a WARNING on every failed
    # call (pycardano.logging.log_state): pages of protocol parameters in a party's log for
    # one refused transaction, which already reaches the user as one LayerOneError line.
    logging.getLogger("PyCardano").setLevel(logging.ERROR)
    if settings.backend == "ogmios":
        from zkadapt.cardano.ogmios import OgmiosContext

        network = Network.TESTNET if settings.testnet else Network.MAINNET
        return OgmiosContext(settings.url_for(party) or "", network, timeout_s=timeout_s)
    from zkadapt.cardano.blockfrost import BlockfrostContext

    env = os.environ if environ is None else environ
    name = settings.project_id_env or ""
    project_id = env.get(name, "")
    if not project_id:
        raise ConfigError(
            "cardano.project_id_env",
            f"the environment variable {name} (the Blockfrost project id) is not set",
        )
    return BlockfrostContext(project_id, settings.network, settings.url_for(party))


def wait_confirmed(
    context: Any,
    tx_id: str,
    timeout_s: float,
    *,
    index: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Any:
    """Wait until output ``index`` of ``tx_id`` is in the UTxO; returns it.

    Raises:
        ChainUnreachable: not seen within ``timeout_s`` (or spent before it was seen).
        LayerOneError: the backend fails.
    """
    started = time.monotonic()
    while True:
        found = context.utxo_by_tx_id(tx_id, index)
        if found is not None:
            return found
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise ChainUnreachable(
                getattr(context, "backend", "layer 1"),
                f"transaction {tx_id[:16]} not seen in the UTxO within {timeout_s:g} s",
            )
        if progress is not None:
            progress(waited)
        time.sleep(min(POLL_S, max(0.05, timeout_s - waited)))


__all__ = ["LayerOneError", "chain_context", "wait_confirmed"]
