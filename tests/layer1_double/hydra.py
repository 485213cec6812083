"""The hydra-node double's layer 1, played by the ledger double (issue 19, optional part).

:class:`HydraLayer1` gives the hydra double (:class:`tests.hydra_double.head.Head`) what it
asks of its layer 1: ``utxo`` (the api.yaml ``UTxO`` form, read when drafting a deposit and
written at fanout) and ``apply(cbor)`` (``POST /cardano-transaction``, and Ogmios'
``submitTransaction`` when the ledger is also behind the Ogmios double). So a deposit
really spends a layer-1 output: the draft pays a fee (``draft_fee``: what the ledger's fee
rule asks with one witness), its change goes back to the owner, and the ledger checks the
owner's signature, the balance and the fee like any other transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pycardano import (
    Address,
    Asset,
    AssetName,
    MultiAsset,
    ScriptHash,
    TransactionInput,
    TransactionOutput,
    Value,
)

from tests.hydra_double.ledger import LedgerError
from tests.layer1_double.ledger import Ledger
from tests.layer1_double.rules import Rejected
from zkadapt.operator.chain_layer1 import txout_json

#: Bytes a vkey witness adds to a transaction (its CBOR: key 32 + signature 64 + headers).
WITNESS_BYTES = 101


def _ref(text: str) -> TransactionInput:
    tx_id, index = text.split("#")
    return TransactionInput.from_primitive([tx_id, int(index)])


def _output(txout: Mapping[str, Any]) -> TransactionOutput:
    value = dict(txout["value"])
    coin = int(value.pop("lovelace", 0))
    assets = MultiAsset()
    for policy, names in value.items():
        bundle = Asset()
        for name, quantity in names.items():
            bundle[AssetName(bytes.fromhex(name))] = int(quantity)
        assets[ScriptHash(bytes.fromhex(policy))] = bundle
    amount = Value(coin, assets) if value else coin
    return TransactionOutput(Address.from_primitive(txout["address"]), amount)


class _UtxoView(Mapping[str, dict[str, Any]]):
    """The ledger's UTxO in api.yaml form; ``update`` adds outputs (a fanout)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def _all(self) -> dict[str, dict[str, Any]]:
        with self._ledger._lock:
            items = list(self._ledger.utxo.items())
        return {f"{r.transaction_id}#{r.index}": txout_json(o) for r, o in items}

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._ledger.utxo)

    def update(self, outputs: Mapping[str, Mapping[str, Any]]) -> None:
        with self._ledger._lock:
            for ref, txout in outputs.items():
                self._ledger.utxo[_ref(ref)] = _output(txout)


class HydraLayer1:
    """A :class:`~tests.layer1_double.ledger.Ledger` as the hydra double's layer 1."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.utxo = _UtxoView(ledger)

    def observe(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(tx_id)`` for every transaction applied on layer 1, however it came
        (a node follows the chain, so it sees a deposit submitted through Ogmios too)."""
        self.ledger.observers.append(callback)

    def apply(self, cbor: bytes) -> str:
        """Submit on the ledger; a rejection is the hydra double's ``LedgerError``."""
        try:
            return self.ledger.submit(cbor)
        except Rejected as exc:
            raise LedgerError(f"{exc.code}: {exc.message}") from None

    def draft_fee(self, unsigned: bytes, witnesses: int = 1) -> int:
        """The fee a draft needs once signed by ``witnesses`` keys (with room for the fee
        field itself growing)."""
        return self.ledger.fees.minimum(len(unsigned) + witnesses * WITNESS_BYTES + 16)
