"""The hydra-node double's layer 1, played by the ledger double (issue 19, optional part).

:class:`HydraLayer1` gives the hydra double (:class:`tests.hydra_double.head.Head`) what it
asks of its layer 1: ``utxo`` (the api.yaml ``UTxO`` form, read when drafting a deposit and
written at fanout) and ``apply(cbor)`` (``POST /cardano-transaction``, and Ogmios'
``submitTransaction`` when the ledger is also behind the Ogmios double). So a deposit
really spends a layer-1 output: the draft pays a fee (``draft_fee``: what the ledger's fee
rule asks with one witness), its change goes back to the owner, and the ledger checks the
owner's signature, the balance and the fee like any other transaction.

The head's own layer-1 transactions are played on the ledger too, as a real head's scripts
would have them (the scripts themselves are not modelled: the ledger applies these unjudged,
:meth:`~tests.layer1_double.ledger.Ledger.apply_trusted`, and the double checks only that
value is conserved):

* **increment** (:meth:`HydraLayer1.increment`, when the node takes a deposit in): spends
  the deposit's output at the deposit script and the head's output, and pays their sum to
  the head script (:data:`HEAD_SCRIPT`). So while the head is open its funds are one output
  on layer 1, and the deposits are spent.
* **close** (:meth:`HydraLayer1.close`, when a node closes the head; only when the double
  was given the nodes' Cardano keys, ``node_keys``): spends the head's output and pays it to
  the head script again (the head now closed; its inline datum hydra's ``Closed`` state,
  constructor 2, whose record names the head id when the double knows it), with one vkey
  witness: the closing node's
  Cardano key, as a real close transaction must carry (hydra's close is signed by a
  participant's ``--cardano-signing-key``). That witness is the only public record of *who*
  closed (``HeadIsClosed`` names nobody): docs/escrow.md, "A premature close". The tests
  give each node its party's payment key, which is the requirement zkadapt states for
  attributing a close (a party's hydra-node uses the party's payment key as its Cardano key).
* **fanout** (:meth:`HydraLayer1.fanout`): spends the head's output and pays the head's
  final UTxO back to layer 1, one output per head output in the order of their ``TxIn``
  (as hydra's fanout transaction does), under the fanout's own transaction id. So the head's
  funds come back to the parties' addresses as new outputs, and everything went through
  the one ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cbor2 import CBORTag
from pycardano import (
    Address,
    Asset,
    AssetName,
    MultiAsset,
    RawPlutusData,
    ScriptHash,
    Transaction,
    TransactionBody,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    Value,
    VerificationKeyWitness,
)

from tests.hydra_double.ledger import LedgerError
from tests.layer1_double.ledger import Ledger
from tests.layer1_double.rules import Rejected
from zkadapt.operator.chain_layer1 import txout_json

#: The (fake) head validator: the head's funds sit at its address while the head is open.
HEAD_SCRIPT = ScriptHash(bytes.fromhex("4e" * 28))
#: Bytes a vkey witness adds to a transaction (its CBOR: key 32 + signature 64 + headers).
WITNESS_BYTES = 101


def _txin_order(ref: str) -> tuple[str, int]:
    """api.yaml ``TxIn`` text in ledger order (id, then index as a number)."""
    tx_id, _, index = ref.partition("#")
    return tx_id, int(index)


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
    """The ledger's UTxO in api.yaml form (read-only: the head writes through
    :meth:`HydraLayer1.increment` and :meth:`HydraLayer1.fanout`)."""

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


class HydraLayer1:
    """A :class:`~tests.layer1_double.ledger.Ledger` as the hydra double's layer 1."""

    def __init__(self, ledger: Ledger, node_keys: Mapping[str, Any] | None = None) -> None:
        self.ledger = ledger
        #: Each party's node's Cardano signing key (``PaymentSigningKey``): signs its close.
        self.node_keys = dict(node_keys or {})
        #: Ids of the close transactions played on the ledger, in order.
        self.closes: list[str] = []
        self.utxo = _UtxoView(ledger)
        #: The head's output on layer 1 (None: nothing deposited yet, or fanned out).
        self.head_output: TransactionInput | None = None
        #: Ids of the increment and fanout transactions played on the ledger, in order.
        self.increments: list[str] = []
        self.fanouts: list[str] = []

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

    @property
    def head_address(self) -> Address:
        """Where the head's funds sit on layer 1 while it is open."""
        return Address(HEAD_SCRIPT, network=self.ledger.network)

    def increment(self, deposit_tx_id: str) -> str:
        """The node takes deposit ``deposit_tx_id`` into the head: spend its output at the
        deposit script (output 0 of the draft) and the head's output; pay the sum to the
        head script. Returns the increment's id.

        Raises:
            LedgerError: the deposit's output is not unspent on layer 1.
        """
        deposit = TransactionInput.from_primitive([deposit_tx_id, 0])
        with self.ledger._lock:
            inputs = [deposit, *([self.head_output] if self.head_output else [])]
            found = self.ledger.lookup(inputs)
            if len(found) != len(inputs):
                raise LedgerError(f"increment: deposit {deposit_tx_id} is not unspent on layer 1")
            total = sum(out.amount.coin for out in found.values())
            head = TransactionOutput(self.head_address, Value(total))
            tx_id = self._play(inputs, [head])
            self.head_output = TransactionInput.from_primitive([tx_id, 0])
            self.increments.append(tx_id)
            return tx_id

    def close(self, party: str, head_id: str | None = None) -> str | None:
        """``party``'s node closes the head: spend the head's output, pay it to the head
        script again, signed by the node's Cardano key. Returns the close's id; None (nothing
        played) when no key is known for ``party``'s node or the head holds nothing on
        layer 1 (a real head always has an output; this double's opens empty)."""
        key = self.node_keys.get(party)
        with self.ledger._lock:
            if key is None or self.head_output is None:
                return None
            held = self.ledger.lookup([self.head_output])[self.head_output]
            record = CBORTag(121, [bytes.fromhex(head_id)] if head_id else [])
            closed = RawPlutusData(CBORTag(123, [record]))  # Closed (constructor 2)
            body = TransactionBody(
                inputs=[self.head_output],
                outputs=[TransactionOutput(self.head_address, held.amount, datum=closed)],
                fee=0,
            )
            witness = VerificationKeyWitness(key.to_verification_key(), key.sign(body.hash()))
            tx = Transaction(body, TransactionWitnessSet(vkey_witnesses=[witness]))
            try:
                tx_id = self.ledger.apply_trusted(tx)
            except Rejected as exc:
                raise LedgerError(f"{exc.code}: {exc.message}") from None
            self.head_output = TransactionInput.from_primitive([tx_id, 0])
            self.closes.append(tx_id)
            return tx_id

    def fanout(self, final: Mapping[str, Mapping[str, Any]]) -> str:
        """Spend the head's output and pay ``final`` (the head's UTxO, api.yaml form) to
        layer 1, one output per entry in ``TxIn`` order. Returns the fanout's id.

        Raises:
            LedgerError: no head output, or ``final`` does not hold exactly what the head's
                output holds (value would not be conserved).
        """
        with self.ledger._lock:
            if self.head_output is None:
                raise LedgerError("fanout: the head holds nothing on layer 1")
            held = self.ledger.lookup([self.head_output])[self.head_output].amount.coin
            outputs = [_output(final[ref]) for ref in sorted(final, key=_txin_order)]
            paid = sum(out.amount.coin for out in outputs)
            if paid != held:
                raise LedgerError(f"fanout pays {paid} lovelace, the head holds {held}")
            tx_id = self._play([self.head_output], outputs)
            self.head_output = None
            self.fanouts.append(tx_id)
            return tx_id

    def _play(self, inputs: list[TransactionInput], outputs: list[TransactionOutput]) -> str:
        body = TransactionBody(inputs=inputs, outputs=outputs, fee=0)
        try:
            return self.ledger.apply_trusted(Transaction(body, TransactionWitnessSet()))
        except Rejected as exc:
            raise LedgerError(f"{exc.code}: {exc.message}") from None
