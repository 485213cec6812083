"""The hydra double's Close as a layer-1 transaction on the ledger double (issue 19, "a
premature close"; tests/layer1_double/hydra.py): the close spends the head's output and
carries exactly one vkey witness, the closing node's Cardano key, which is what names the
closer publicly (``HeadIsClosed`` does not)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pycardano import PaymentSigningKey, PaymentVerificationKey, TransactionInput

from tests.hydra_double.head import Head
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger

NAMES = ("alice", "bob", "carol")


def _head_on_layer1() -> tuple[Ledger, HydraLayer1, Head, dict[str, PaymentSigningKey]]:
    ledger = Ledger("preprod")
    keys = {n: PaymentSigningKey.generate() for n in NAMES}
    layer1 = HydraLayer1(ledger, node_keys=keys)
    head = Head(list(NAMES), {}, layer1=layer1)
    head.on_input("alice", {"tag": "Init"})
    layer1.head_output = ledger.fund(layer1.head_address, 15_000_000)
    return ledger, layer1, head, keys


def test_a_close_is_a_layer1_transaction_signed_by_the_closing_nodes_key() -> None:
    ledger, layer1, head, keys = _head_on_layer1()
    before = layer1.head_output
    (out,) = head.on_input("carol", {"tag": "Close"})

    assert out.message["tag"] == "HeadIsClosed" and "closer" not in str(out.message)
    (tx_id,) = layer1.closes
    assert ledger.spent[before] == tx_id  # the head's output was spent by the close
    assert layer1.head_output == TransactionInput.from_primitive([tx_id, 0])
    assert ledger.balance(layer1.head_address) == 15_000_000  # value stays in the head
    witnesses = ledger.applied[tx_id].transaction_witness_set.vkey_witnesses
    signers = [w.vkey.payload for w in witnesses]
    carol = PaymentVerificationKey.from_signing_key(keys["carol"]).payload
    assert signers == [carol]
    body_hash = ledger.applied[tx_id].transaction_body.hash()
    Ed25519PublicKey.from_public_bytes(carol).verify(witnesses[0].signature, body_hash)


def test_without_node_keys_nothing_is_played_on_layer1() -> None:
    ledger = Ledger("preprod")
    layer1 = HydraLayer1(ledger)
    head = Head(list(NAMES), {}, layer1=layer1)
    head.on_input("alice", {"tag": "Init"})
    layer1.head_output = ledger.fund(layer1.head_address, 1_000_000)
    head.on_input("bob", {"tag": "Close"})
    assert layer1.closes == [] and head.status == "Closed"
