"""PyCardano's Blockfrost chain context, with every failure as a one-line error.

:class:`BlockfrostContext` is :class:`pycardano.backend.blockfrost.BlockFrostChainContext`
(``blockfrost-python``) whose calls turn ``ApiError`` (the HTTP status and Blockfrost's
message), connection failures and PyCardano's ``TransactionFailedException`` into
:class:`~zkadapt.cardano.errors.LayerOneError` subclasses naming ``blockfrost NETWORK``.
Its constructor already asks the API for the latest epoch, so a wrong project id or an
unreachable endpoint fails there, with the reason.

The project id is a secret: it stays only inside ``blockfrost-python``'s API object, never in
this context's attributes (PyCardano logs them when a submission fails) or its repr.

Slot and time: Blockfrost's genesis gives the Byron start, so the conversion uses each
network's Shelley origin instead (the constants wallets such as Lucid use:
``posix = slot + offset`` seconds from the first Shelley slot on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pycardano.backend.blockfrost import BlockFrostChainContext

from zkadapt.cardano.errors import (
    ChainRefused,
    ChainResponseError,
    ChainUnreachable,
    LayerOneError,
    TransactionRejected,
    one_line,
)

T = TypeVar("T")

#: POSIX seconds minus slot, for every slot of the Shelley era and later.
SLOT_OFFSET_S = {"mainnet": 1_591_566_291, "preprod": 1_655_683_200, "preview": 1_666_656_000}


@contextmanager
def _translated(
    backend: str, what: str, refused: type[ChainRefused] = ChainRefused
) -> Iterator[None]:
    """Turn what blockfrost-python and requests raise into one-line layer-1 errors."""
    import requests
    from blockfrost import ApiError
    from pycardano.exception import TransactionFailedException

    try:
        yield
    except LayerOneError:
        raise
    except ApiError as exc:
        message = one_line(getattr(exc, "message", None) or exc)
        raise refused(
            backend, f"{what} refused (HTTP {exc.status_code}): {message}", exc.status_code
        ) from None
    except TransactionFailedException as exc:
        raise TransactionRejected(backend, f"{what} refused: {one_line(exc)}") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ChainUnreachable(backend, f"{what}: {type(exc).__name__}: {one_line(exc)}") from None
    except (requests.RequestException, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ChainResponseError(
            backend, f"{what}: {type(exc).__name__}: {one_line(exc)}"
        ) from None


class BlockfrostContext(BlockFrostChainContext):
    """A PyCardano chain context on Blockfrost.

    Args:
        project_id: the Blockfrost project id (a secret: never logged or shown).
        network: ``preprod``, ``preview`` or ``mainnet``.
        base_url: the API base (default: the network's public endpoint).

    Raises:
        LayerOneError: the first request (the latest epoch) fails.
    """

    def __init__(self, project_id: str, network: str, base_url: str | None = None) -> None:
        from blockfrost import ApiUrls

        self.network_name = network
        self.backend = f"blockfrost {network}"
        url = base_url or getattr(ApiUrls, network).value
        with _translated(self.backend, "latest epoch"):
            super().__init__(project_id, base_url=url)
        # PyCardano logs ``vars(context)`` at WARNING when a submission fails
        # (``pycardano.logging.log_state``): keep the secret out of the instance's dict.
        del self._project_id

    def __repr__(self) -> str:  # the project id is a secret
        return f"BlockfrostContext({self.network_name!r})"

    def _call(
        self, what: str, fn: Callable[[], T], refused: type[ChainRefused] = ChainRefused
    ) -> T:
        with _translated(self.backend, what, refused):
            return fn()

    @property
    def protocol_param(self) -> Any:
        return self._call(
            "protocol parameters", lambda: BlockFrostChainContext.protocol_param.fget(self)
        )  # type: ignore[attr-defined]

    @property
    def genesis_param(self) -> Any:
        return self._call("genesis", lambda: BlockFrostChainContext.genesis_param.fget(self))  # type: ignore[attr-defined]

    @property
    def epoch(self) -> int:
        return self._call("epoch", lambda: BlockFrostChainContext.epoch.fget(self))  # type: ignore[attr-defined]

    @property
    def last_block_slot(self) -> int:
        return self._call("latest block", lambda: BlockFrostChainContext.last_block_slot.fget(self))  # type: ignore[attr-defined]

    def _utxos(self, address: str) -> list[Any]:
        return self._call("address UTxO", lambda: super(BlockfrostContext, self)._utxos(address))

    def submit_tx_cbor(self, cbor: bytes | str) -> str:
        return self._call(
            "transaction submission",
            lambda: super(BlockfrostContext, self).submit_tx_cbor(cbor),
            TransactionRejected,
        )

    def evaluate_tx_cbor(self, cbor: bytes | str) -> dict[str, Any]:
        return self._call(
            "transaction evaluation",
            lambda: super(BlockfrostContext, self).evaluate_tx_cbor(cbor),
            TransactionRejected,
        )

    def utxo_by_tx_id(self, tx_id: str, index: int) -> Any:
        """The output ``tx_id#index`` if it is unspent, else None."""

        def find() -> Any:
            for utxo in self._utxos_of_tx(tx_id):
                if utxo.input.index == index:
                    return utxo
            return None

        return self._call("transaction UTxO", find)

    def _utxos_of_tx(self, tx_id: str) -> list[Any]:
        from blockfrost import ApiError

        try:
            outputs = self.api.transaction_utxos(tx_id).outputs
        except ApiError as exc:
            if exc.status_code == 404:
                return []
            raise
        found = []
        for output in outputs:
            if getattr(output, "consumed_by_tx", None):
                continue
            found.extend(
                u for u in self._utxos(output.address) if str(u.input.transaction_id) == tx_id
            )
        return found

    def slot_to_posix_ms(self, slot: int) -> int:
        return (slot + SLOT_OFFSET_S[self.network_name]) * 1000

    def posix_ms_to_slot(self, ms: int) -> int:
        return max(0, ms // 1000 - SLOT_OFFSET_S[self.network_name])
