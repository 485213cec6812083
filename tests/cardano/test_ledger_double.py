"""The layer-1 ledger double judges what it is sent, each refusal with its named reason.

Transactions are built with PyCardano through a chain context on the ledger
(:class:`~tests.layer1_double.context.LedgerContext`) or by hand where a builder would
never make the mistake; every refusal is checked to be a schema-valid Ogmios
``SubmitTransactionResponse`` error. The escrow validator runs on the script context the
ledger derives from the transaction itself: a refund before the deadline fails in the
script, the same refund after it pays every depositor back.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
import uplc.tools
from pycardano import (
    Address,
    ExecutionUnits,
    Network,
    PaymentSigningKey,
    PlutusV3Script,
    RawPlutusData,
    Redeemer,
    Transaction,
    TransactionBody,
    TransactionBuilder,
    TransactionId,
    TransactionInput,
    TransactionOutput,
    TransactionWitnessSet,
    VerificationKeyWitness,
    plutus_script_hash,
)

from tests.layer1_double.context import LedgerContext
from tests.layer1_double.ledger import Ledger
from tests.layer1_double.network import SlotClock
from tests.layer1_double.rules import Rejected
from tests.ogmios_double.schema import ogmios_schema
from zkadapt.cardano.errors import TransactionRejected

ADA = 1_000_000
SLOT = 100_000_000


class World:
    """A frozen-clock ledger, a chain context on it, and two funded keys."""

    def __init__(self) -> None:
        self.ledger = Ledger("preprod", clock=SlotClock(frozen=SLOT))
        self.context = LedgerContext(self.ledger)
        self.alice, self.bob = PaymentSigningKey.generate(), PaymentSigningKey.generate()
        self.a, self.b = self.address(self.alice), self.address(self.bob)
        self.coin = self.ledger.fund(self.a, 20 * ADA)

    @staticmethod
    def address(key: PaymentSigningKey) -> Address:
        return Address(key.to_verification_key().hash(), network=Network.TESTNET)

    def body(
        self, *, pay: int = 5 * ADA, fee: int = 200_000, extra: int = 0, **fields: Any
    ) -> TransactionBody:
        """Alice pays Bob ``pay`` from her faucet output, change back to her."""
        change = 20 * ADA - pay - fee + extra
        outputs = [TransactionOutput(self.b, pay), TransactionOutput(self.a, change)]
        return TransactionBody(
            inputs=[fields.pop("spend", self.coin)], outputs=outputs, fee=fee, **fields
        )


def signed(
    body: TransactionBody, *keys: PaymentSigningKey, over: TransactionBody | None = None
) -> bytes:
    """The transaction with a witness of each key over ``over``'s hash (default: its own)."""
    digest = (over or body).hash()
    witnesses = [VerificationKeyWitness(k.to_verification_key(), k.sign(digest)) for k in keys]
    return Transaction(body, TransactionWitnessSet(vkey_witnesses=witnesses or None)).to_cbor()


def refused(ledger: Ledger, cbor: bytes, code: int) -> Rejected:
    """The ledger's refusal of ``cbor``; it must have ``code`` and be a schema-valid answer."""
    with pytest.raises(Rejected) as caught:
        ledger.submit(cbor)
    exc = caught.value
    answer = {"jsonrpc": "2.0", "method": "submitTransaction", "error": exc.error, "id": None}
    assert ogmios_schema().response_errors("submitTransaction", answer) == []
    assert exc.code == code, exc.message
    assert "\n" not in exc.message
    return exc


@pytest.fixture
def world() -> World:
    return World()


def test_a_payment_built_with_pycardano_is_accepted_and_moves_funds(world: World) -> None:
    builder = TransactionBuilder(world.context)
    builder.add_input_address(world.a)
    builder.add_output(TransactionOutput(world.b, 5 * ADA))
    tx = builder.build_and_sign([world.alice], change_address=world.a)
    tx_id = world.context.submit_tx_cbor(tx.to_cbor())
    assert tx_id == str(tx.id) and tx_id in world.ledger.applied
    fee = tx.transaction_body.fee
    assert fee >= world.ledger.fees.minimum(len(tx.to_cbor()))
    assert world.ledger.balance(world.b) == 5 * ADA
    assert world.ledger.balance(world.a) == 15 * ADA - fee
    assert world.ledger.spent[world.coin] == tx_id


def test_a_spent_and_an_unknown_input_are_refused(world: World) -> None:
    cbor = signed(world.body(), world.alice)
    tx_id = world.ledger.submit(cbor)
    again = refused(world.ledger, cbor, 3117)
    assert f"{world.coin.transaction_id}#0 was spent by {tx_id}" in again.message
    ghost = TransactionInput(TransactionId(hashlib.sha256(b"ghost").digest()), 3)
    unknown = refused(world.ledger, signed(world.body(spend=ghost), world.alice), 3117)
    assert f"{ghost.transaction_id}#3 is unknown" in unknown.message
    assert unknown.data == {
        "unknownOutputReferences": [{"transaction": {"id": str(ghost.transaction_id)}, "index": 3}]
    }


def test_value_must_be_conserved(world: World) -> None:
    exc = refused(world.ledger, signed(world.body(extra=1), world.alice), 3123)
    assert "consumed 20000000 lovelace, produced 20000001 (+1)" in exc.message
    exc = refused(world.ledger, signed(world.body(extra=-7), world.alice), 3123)
    assert "(-7)" in exc.message


def test_the_fee_must_cover_size_and_constant(world: World) -> None:
    cbor = signed(world.body(fee=100_000), world.alice)
    needed = world.ledger.fees.minimum(len(cbor))
    assert needed > 100_000  # 44 * size + 155,381
    exc = refused(world.ledger, cbor, 3122)
    assert f"Insufficient fee: 100000 lovelace provided, at least {needed} required" in exc.message


def test_signatures_must_be_there_and_must_verify(world: World) -> None:
    body = world.body()
    missing = refused(world.ledger, signed(body), 3101)
    owner = bytes(world.alice.to_verification_key().hash().payload).hex()
    assert missing.data == {"missingSignatories": [owner]}
    assert refused(world.ledger, signed(body, world.bob), 3101).data == {
        "missingSignatories": [owner]
    }
    forged = refused(world.ledger, signed(body, world.alice, over=world.body(pay=6 * ADA)), 3100)
    assert "do not sign the body hash" in forged.message
    assert world.ledger.balance(world.b) == 0
    assert world.ledger.submit(signed(body, world.alice))  # the honest one passes


def test_the_validity_interval_must_hold_the_current_slot(world: World) -> None:
    late = refused(world.ledger, signed(world.body(ttl=SLOT), world.alice), 3118)
    assert "(too late): slot 100000000 is not in [-inf, 100000000)" in late.message
    early = signed(world.body(validity_start=SLOT + 10, ttl=SLOT + 20), world.alice)
    assert "(too early)" in refused(world.ledger, early, 3118).message
    world.ledger.advance(10)  # ten one-second slots later it is valid
    assert world.ledger.slot == SLOT + 10
    assert world.ledger.submit(early)


def test_outputs_need_their_minimum_ada_and_the_right_network(world: World) -> None:
    exc = refused(world.ledger, signed(world.body(pay=500_000), world.alice), 3125)
    assert "Insufficiently funded output: 500000 lovelace, at least" in exc.message
    mainnet = Address(world.bob.to_verification_key().hash(), network=Network.MAINNET)
    body = world.body()
    body.outputs[0] = TransactionOutput(mainnet, 5 * ADA)
    assert "is not on testnet" in refused(world.ledger, signed(body, world.alice), 3124).message


def _script(source: str) -> PlutusV3Script:
    return PlutusV3Script(uplc.tools.flatten(uplc.tools.parse(source)))


ALWAYS = _script("(program 1.1.0 (lam ctx (con unit ())))")
NEVER = _script("(program 1.1.0 (lam ctx (error)))")


def _spend_script(world: World, script: PlutusV3Script, units: ExecutionUnits) -> bytes:
    locked = Address(plutus_script_hash(script), network=Network.TESTNET)
    world.ledger.fund(locked, 10 * ADA, datum=RawPlutusData(b"any"))
    builder = TransactionBuilder(world.context)
    utxo = world.context.utxos(locked)[0]
    builder.add_script_input(utxo, script=script, redeemer=Redeemer(RawPlutusData(b""), units))
    builder.add_input_address(world.a)
    builder.add_output(TransactionOutput(world.b, 9 * ADA))
    return builder.build_and_sign([world.alice], change_address=world.a).to_cbor()


def test_plutus_scripts_run_within_their_budget(world: World) -> None:
    enough = ExecutionUnits(1_000_000, 500_000_000)
    assert world.ledger.submit(_spend_script(world, ALWAYS, enough))
    failing = refused(world.ledger, _spend_script(world, NEVER, enough), 3136)
    # the script input's index is its place among the sorted inputs (random tx ids: 0 or 1)
    assert re.search(r"The spend script at index [01] failed: RuntimeError", failing.message)
    starved = refused(world.ledger, _spend_script(world, ALWAYS, ExecutionUnits(1, 1)), 3136)
    assert "failed" in starved.message
    assert world.ledger.balance(world.b) == 9 * ADA  # only the first one paid


def test_the_chain_context_raises_a_rejection_as_one_line(world: World) -> None:
    cbor = signed(world.body(fee=1), world.alice)
    with pytest.raises(TransactionRejected) as caught:
        world.context.submit_tx_cbor(cbor)
    assert caught.value.code == 3122
    assert str(caught.value).startswith(
        "layer-1 double (preprod): submitTransaction refused (3122)"
    )
    assert "\n" not in str(caught.value)
    assert len(world.ledger.rejections) == 1


def test_not_a_transaction_is_a_deserialisation_error(world: World) -> None:
    exc = refused(world.ledger, b"\x82\x01\x02", -32602)
    assert "conway" in exc.data
