"""The Ogmios v6 double against Ogmios' own schema and test vectors, and PyCardano through it.

Every request the double receives and every answer it sends is validated against
``ogmios.json``/``cardano.json`` (tests/data/ogmios); these tests show that the validation
catches malformed messages, that the server's own test vectors pass it, that the double's
answers have the vectors' shape, and that a payment built by PyCardano through
:class:`~zkadapt.cardano.ogmios.OgmiosContext` goes through end to end with no violation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ogmios.datatypes import ProtocolParameters as OgmiosProtocolParameters
from pycardano import Address, Network, PaymentSigningKey, TransactionBuilder, TransactionOutput

from tests.layer1_double.ledger import Ledger
from tests.layer1_double.network import SlotClock
from tests.ogmios_double.schema import OGMIOS_DATA, ogmios_schema
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.cardano.errors import TransactionRejected
from zkadapt.cardano.ogmios import OgmiosContext
from zkadapt.cardano.ogmios_wire import protocol_parameters
from zkadapt.escrow.tx_context import redeemers_of

VECTORS = sorted((OGMIOS_DATA / "vectors").glob("*/*.json"))
ADA = 1_000_000


@pytest.fixture
def ogmios() -> Iterator[OgmiosDouble]:
    with OgmiosDouble(Ledger(clock=SlotClock(frozen=90_000_000))) as double:
        yield double


def _vector(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_server_vector_is_valid_against_the_schema(path: Path) -> None:
    vector = _vector(path)
    assert ogmios_schema().response_errors(vector["method"], vector) == []


def test_the_two_schema_defects_are_corrected_and_nothing_else() -> None:
    from jsonschema import Draft7Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT7

    files = {n: json.loads((OGMIOS_DATA / n).read_text()) for n in ("ogmios.json", "cardano.json")}
    registry = Registry().with_resources((n, DRAFT7.create_resource(c)) for n, c in files.items())
    raw_utxo = Draft7Validator(
        {"$ref": "ogmios.json#/properties/QueryLedgerStateUtxoResponse"}, registry=registry
    )
    raw_rpc = Draft7Validator({"$ref": "ogmios.json#/properties/RpcError"}, registry=registry)
    vector = _vector(OGMIOS_DATA / "vectors" / "QueryLedgerStateUtxo" / "000.json")
    error = {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}}
    assert not raw_utxo.is_valid(vector)  # 'ada' breaks Value's propertyNames as written
    assert not raw_rpc.is_valid(error)  # RpcError requires "string" as written
    fixed = ogmios_schema()
    assert fixed.response_errors("queryLedgerState/utxo", vector) == []
    assert fixed.errors("/properties/RpcError", error) == []
    bad_policy = json.loads(json.dumps(vector))
    bad_policy["result"][0]["value"]["not-a-policy"] = {"": 1}
    assert fixed.response_errors("queryLedgerState/utxo", bad_policy) != []


def test_a_malformed_request_is_caught_and_answered_with_an_rpc_error(ogmios: OgmiosDouble) -> None:
    bad_cbor = {
        "jsonrpc": "2.0",
        "method": "submitTransaction",
        "params": {"transaction": {"cbor": "XYZ"}},
        "id": 7,
    }
    answer = ogmios.answer(json.dumps(bad_cbor))
    assert answer["error"]["code"] == -32602 and answer["id"] == 7
    assert "does not match" in answer["error"]["message"]
    assert ogmios.violations and "request submitTransaction" in ogmios.violations[0]
    unknown = ogmios.answer(json.dumps({"jsonrpc": "2.0", "method": "launchRockets", "id": 1}))
    assert unknown["error"]["code"] == -32601
    assert ogmios.answer("{not json")["error"]["code"] == -32700
    # ogmios-python 1.4.3's own evaluateTransaction request: "additionalUtxo": null
    from ogmios.model import model_map as mm
    from ogmios.model import ogmios_model as om

    params = om.Params2(transaction=om.Transaction(cbor="00"), additionalUtxo=None)
    request = om.EvaluateTransaction(
        jsonrpc=om.Jsonrpc.field_2_0, method=mm.Method.evaluateTransaction.value, params=params
    ).json()
    assert ogmios_schema().request_errors(json.loads(request)) == [
        "params/additionalUtxo: None is not of type 'array'"
    ]


def test_a_malformed_response_would_be_caught() -> None:
    schema = ogmios_schema()
    good = {"jsonrpc": "2.0", "method": "queryNetwork/tip", "result": {"slot": 1, "id": "ab" * 32}}
    assert schema.response_errors("queryNetwork/tip", good) == []
    assert schema.response_errors("queryNetwork/tip", {**good, "result": {"slot": -1, "id": "x"}})
    rejected = {
        "jsonrpc": "2.0",
        "method": "submitTransaction",
        "error": {"code": 3122, "message": "fee"},
    }
    assert schema.response_errors("submitTransaction", rejected)  # 3122 needs its data


def test_the_double_answers_in_the_shape_of_the_server_vectors(ogmios: OgmiosDouble) -> None:
    def keys(value: object) -> object:
        return sorted(value) if isinstance(value, dict) else type(value).__name__

    for method, folder in (
        ("queryLedgerState/tip", "QueryLedgerStateTip"),
        ("queryNetwork/tip", "QueryNetworkTip"),
        ("queryLedgerState/protocolParameters", "QueryLedgerStateProtocolParameters"),
    ):
        ours = ogmios.answer(json.dumps({"jsonrpc": "2.0", "method": method, "id": None}))
        theirs = _vector(OGMIOS_DATA / "vectors" / folder / "000.json")
        assert sorted(ours) == sorted(theirs)
        if method.endswith("protocolParameters"):  # every key the server sends, we send
            assert set(theirs["result"]) <= set(ours["result"]) | {
                "stakePoolVotingThresholds",
                "delegateRepresentativeVotingThresholds",
                "constitutionalCommitteeMinSize",
                "constitutionalCommitteeMaxTermLength",
                "governanceActionLifetime",
                "governanceActionDeposit",
                "delegateRepresentativeDeposit",
                "delegateRepresentativeMaxIdleTime",
            }
        else:
            assert keys(ours["result"]) == keys(theirs["result"])
    genesis = ogmios.answer(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "queryNetwork/genesisConfiguration",
                "params": {"era": "shelley"},
            }
        )
    )
    shelley = _vector(
        OGMIOS_DATA / "vectors" / "QueryNetworkGenesisConfiguration_shelley" / "000.json"
    )
    assert sorted(genesis["result"]) == sorted(shelley["result"])
    assert ogmios.violations == []


@pytest.mark.parametrize(
    "path",
    sorted((OGMIOS_DATA / "vectors" / "QueryLedgerStateProtocolParameters").glob("*.json")),
    ids=lambda p: p.stem,
)
def test_current_protocol_parameters_are_read_where_ogmios_python_fails(path: Path) -> None:
    result = _vector(path)["result"]
    with pytest.raises(TypeError, match="maxReferenceScriptsSizePerTransaction"):
        OgmiosProtocolParameters(**result)  # what PyCardano's own Ogmios v6 context calls
    params = protocol_parameters(result)
    assert params.min_fee_coefficient == result["minFeeCoefficient"]
    assert params.maximum_reference_scripts_size == result["maxReferenceScriptsSizePerTransaction"]


def test_a_pycardano_payment_goes_through_the_ogmios_double(ogmios: OgmiosDouble) -> None:
    context = OgmiosContext(ogmios.url)
    alice, bob = PaymentSigningKey.generate(), PaymentSigningKey.generate()
    a = Address(alice.to_verification_key().hash(), network=Network.TESTNET)
    b = Address(bob.to_verification_key().hash(), network=Network.TESTNET)
    ogmios.ledger.fund(a, 20 * ADA)
    assert context.last_block_slot == 90_000_000
    assert context.genesis_param.system_start == ogmios.ledger.clock.start_ms // 1000
    assert context.slot_to_posix_ms(1_000) == ogmios.ledger.slot_to_posix_ms(1_000)
    assert context.posix_ms_to_slot(ogmios.ledger.slot_to_posix_ms(77)) == 77
    builder = TransactionBuilder(context)
    builder.add_input_address(a)
    builder.add_output(TransactionOutput(b, 5 * ADA))
    tx = builder.build_and_sign([alice], change_address=a)
    assert context.submit_tx_cbor(tx.to_cbor()) == str(tx.id)
    assert ogmios.ledger.balance(b) == 5 * ADA
    assert context.utxo_by_tx_id(str(tx.id), 0).output.amount.coin == 5 * ADA
    with pytest.raises(TransactionRejected) as caught:
        context.submit_tx_cbor(tx.to_cbor())  # its input is spent now
    assert caught.value.code == 3117
    assert str(caught.value).startswith(f"ogmios {ogmios.url}: submitTransaction refused (3117): ")
    assert f"was spent by {tx.id}" in str(caught.value) and "\n" not in str(caught.value)
    assert ogmios.violations == []
    assert {
        "queryLedgerState/utxo",
        "submitTransaction",
        "queryLedgerState/protocolParameters",
    } <= set(ogmios.requests)


def test_evaluation_through_the_double_gives_pycardano_its_units(ogmios: OgmiosDouble) -> None:
    import uplc.tools
    from pycardano import PlutusV3Script, RawPlutusData, Redeemer, plutus_script_hash

    script = PlutusV3Script(
        uplc.tools.flatten(uplc.tools.parse("(program 1.1.0 (lam ctx (con unit ())))"))
    )
    context = OgmiosContext(ogmios.url)
    key = PaymentSigningKey.generate()
    a = Address(key.to_verification_key().hash(), network=Network.TESTNET)
    locked = Address(plutus_script_hash(script), network=Network.TESTNET)
    ogmios.ledger.fund(a, 20 * ADA)
    ogmios.ledger.fund(locked, 5 * ADA, datum=RawPlutusData(b""))
    builder = TransactionBuilder(context)
    builder.add_script_input(
        context.utxos(locked)[0], script=script, redeemer=Redeemer(RawPlutusData(b""))
    )
    builder.add_input_address(a)
    builder.add_output(TransactionOutput(a, 4 * ADA))
    tx = builder.build_and_sign([key], change_address=a)  # asks evaluateTransaction for units
    assert "evaluateTransaction" in ogmios.requests
    ((_, _, _, (memory, steps)),) = redeemers_of(tx.transaction_witness_set)
    assert 0 < steps < 10_000_000 and memory > 0
    assert context.submit_tx_cbor(tx.to_cbor()) == str(tx.id)
    assert ogmios.violations == []
