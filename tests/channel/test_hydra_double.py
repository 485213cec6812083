"""The hydra-node double itself: its ledger rules, HTTP endpoints and input validation.

The channel tests are only as good as the double, so its ledger is checked against the rules
it claims (tests/hydra_double/ledger.py) and its API against api.yaml.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from pycardano import AlonzoMetadata, AuxiliaryData, Metadata

import zkadapt.channel.hydra.tx as hydra_tx
from tests.fakes import make_keys
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope, funds
from tests.hydra_double.ledger import Ledger, LedgerError
from tests.hydra_double.schema import api_schema, hydra_data
from zkadapt.channel.hydra.tx import FeeRule, add_witness, address_of, build_message_tx
from zkadapt.channel.hydra.wire import UtxoOut

NAMES = ["alice", "bob"]
KEYS, KEYRING = make_keys(NAMES)
PARAMS = json.loads((hydra_data() / "protocol-parameters.json").read_text())
UTXO = funds(KEYS)


def spend_of(name: str, lovelace: int | None = None) -> UtxoOut:
    ((ref, out),) = [
        (r, o) for r, o in UTXO.items() if o["address"] == address_of(KEYS[name].public)
    ]
    return UtxoOut(ref, out["address"], lovelace or out["value"]["lovelace"], (), True)


def message_tx(
    name: str, *, key: str | None = None, lovelace: int | None = None, fees: FeeRule | None = None
) -> bytes:
    env = envelope(KEYS[name], name, b"{}")
    spend = spend_of(name, lovelace)
    return build_message_tx(KEYS[key or name], spend, env, fees or FeeRule()).cbor


def test_a_valid_payment_moves_the_output() -> None:
    ledger = Ledger(PARAMS, UTXO)
    tx_id = ledger.apply(message_tx("alice"))
    assert f"{tx_id}#0" in ledger.utxo and spend_of("alice").ref not in ledger.utxo
    assert ledger.utxo[f"{tx_id}#0"]["value"] == {"lovelace": 10_000_000}
    assert api_schema().errors("/components/schemas/UTxO", ledger.utxo) == []


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: message_tx("alice", key="bob"), "MissingVKeyWitnessesUTXOW"),
        (lambda: message_tx("alice", lovelace=11_000_000), "ValueNotConservedUTxO"),
        (lambda: b"\x83\x01\x02\x03", "DecoderFailure"),
    ],
)
def test_ledger_rules_reject_bad_transactions(make, rule: str) -> None:
    with pytest.raises(LedgerError, match=rule):
        Ledger(PARAMS, UTXO).apply(make())


def test_an_output_below_the_min_utxo_is_rejected() -> None:
    small = {ref: {**out, "value": {"lovelace": 1_000}} for ref, out in UTXO.items()}
    with pytest.raises(LedgerError, match="BabbageOutputTooSmallUTxO"):
        Ledger(PARAMS, small).apply(message_tx("alice", lovelace=1_000))


def test_a_double_spend_is_bad_inputs() -> None:
    ledger = Ledger(PARAMS, UTXO)
    ledger.apply(message_tx("alice"))
    with pytest.raises(LedgerError, match="BadInputsUTxO"):
        ledger.apply(message_tx("alice"))


def test_an_invalid_witness_is_rejected() -> None:
    from pycardano import (
        PaymentVerificationKey,
        Transaction,
        TransactionWitnessSet,
        VerificationKeyWitness,
    )

    aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata({1: "a"})))
    body = hydra_tx._body(spend_of("alice"), aux, 0)
    forged = VerificationKeyWitness(PaymentVerificationKey(KEYS["alice"].public.raw), bytes(64))
    cbor = Transaction(body, TransactionWitnessSet(vkey_witnesses=[forged]), True, aux).to_cbor()
    with pytest.raises(LedgerError, match="InvalidWitnessesUTXOW"):
        Ledger(PARAMS, UTXO).apply(cbor)


def test_metadata_must_match_its_hash() -> None:
    spend = spend_of("alice")
    aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata({1: "a"})))
    other = AuxiliaryData(AlonzoMetadata(metadata=Metadata({1: "b"})))
    body = hydra_tx._body(spend, aux, 0)
    cbor = hydra_tx._signed(KEYS["alice"], body, other)
    with pytest.raises(LedgerError, match="ConflictingMetadataHash"):
        Ledger(PARAMS, UTXO).apply(cbor)


def test_fees_are_enforced_when_the_head_charges_them() -> None:
    paid = {**PARAMS, "txFeeFixed": 155_381, "txFeePerByte": 44}
    with pytest.raises(LedgerError, match="FeeTooSmallUTxO"):
        Ledger(paid, UTXO).apply(message_tx("alice"))
    Ledger(paid, UTXO).apply(message_tx("alice", fees=FeeRule(155_381, 44)))


def test_extra_witnesses_are_allowed_but_must_verify() -> None:
    Ledger(PARAMS, UTXO).apply(add_witness(message_tx("alice"), KEYS["bob"]))


def _http(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_http_endpoints_follow_the_schema() -> None:
    with HydraDouble(NAMES, initial_utxo=UTXO) as double:
        base = f"http://{double.api('alice')}"
        assert _http(base + "/snapshot/utxo")[0] == 404  # head never opened
        status, params = _http(base + "/protocol-parameters")
        assert status == 200 and params == PARAMS
        double.submit("alice", {"tag": "Init"})
        status, utxo = _http(base + "/snapshot/utxo")
        assert status == 200 and utxo == UTXO
        assert double.violations == []


def test_schema_invalid_input_gets_invalid_input_and_is_recorded() -> None:
    import websockets

    async def talk(api: str) -> list[dict]:
        async with websockets.connect(f"ws://{api}/?history=yes") as ws:
            greetings = json.loads(await ws.recv())
            await ws.send(json.dumps({"tag": "NewTx"}))
            return [greetings, json.loads(await ws.recv())]

    with HydraDouble(NAMES) as double:
        greetings, reply = asyncio.run(talk(double.api("bob")))
        assert greetings["tag"] == "Greetings" and greetings["headStatus"] == "Idle"
        assert reply["tag"] == "InvalidInput"
        assert len(double.violations) == 1 and "client input to bob" in double.violations[0]
