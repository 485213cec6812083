"""A PyCardano chain context straight on a :class:`~tests.layer1_double.ledger.Ledger`.

For unit tests that need no socket: the same protocol parameters (read by
:func:`zkadapt.cardano.ogmios_wire.protocol_parameters`, as the Ogmios context reads them),
the same UTxO and the same validation as through the Ogmios double. A rejection is raised
as :class:`~zkadapt.cardano.errors.TransactionRejected` with the Ogmios one-line reason,
exactly as :class:`~zkadapt.cardano.ogmios.OgmiosContext` raises it.
"""

from __future__ import annotations

from typing import Any

from pycardano import Network, UTxO
from pycardano.backend.base import ChainContext
from pycardano.plutus import ExecutionUnits

from tests.layer1_double.ledger import Ledger
from tests.layer1_double.rules import Rejected
from zkadapt.cardano.errors import TransactionRejected
from zkadapt.cardano.ogmios_wire import error_reason, protocol_parameters


class LedgerContext(ChainContext):
    """PyCardano's ``ChainContext`` interface on an in-process ledger double."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.backend = f"layer-1 double ({ledger.network_name})"
        self._params = protocol_parameters(ledger.params)

    @property
    def protocol_param(self) -> Any:
        return self._params

    @property
    def network(self) -> Network:
        return self.ledger.network

    @property
    def epoch(self) -> int:
        return self.ledger.slot // self.ledger.genesis["epochLength"]

    @property
    def last_block_slot(self) -> int:
        return self.ledger.slot

    def _utxos(self, address: str) -> list[UTxO]:
        return [UTxO(ref, out) for ref, out in self.ledger.utxos_at(address).items()]

    def utxo_by_tx_id(self, tx_id: str, index: int) -> UTxO | None:
        from pycardano import TransactionInput

        ref = TransactionInput.from_primitive([tx_id, index])
        found = self.ledger.lookup([ref])
        return UTxO(ref, found[ref]) if found else None

    def _reject(self, method: str, exc: Rejected) -> TransactionRejected:
        code, reason = error_reason(exc.error)
        return TransactionRejected(self.backend, f"{method} refused ({code}): {reason}", code)

    def submit_tx_cbor(self, cbor: bytes | str) -> str:
        data = bytes.fromhex(cbor) if isinstance(cbor, str) else cbor
        try:
            return self.ledger.submit(data)
        except Rejected as exc:
            raise self._reject("submitTransaction", exc) from None

    def evaluate_tx_cbor(self, cbor: bytes | str) -> dict[str, ExecutionUnits]:
        data = bytes.fromhex(cbor) if isinstance(cbor, str) else cbor
        try:
            runs = self.ledger.evaluate(data)
        except Rejected as exc:
            raise self._reject("evaluateTransaction", exc) from None
        return {
            f"{e.run.purpose}:{e.run.index}": ExecutionUnits(e.result.memory, e.result.cpu)
            for e in runs
        }

    def slot_to_posix_ms(self, slot: int) -> int:
        return self.ledger.slot_to_posix_ms(slot)

    def posix_ms_to_slot(self, ms: int) -> int:
        return self.ledger.posix_ms_to_slot(ms)
