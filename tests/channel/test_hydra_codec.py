"""The hydra channel's pure parts: CBOR spans, metadata envelope, transactions, wire objects."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest

from tests.hydra_double.schema import api_schema, hydra_data
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra.cbor import MalformedCbor, blake2b_256, encode_array, split_array
from zkadapt.channel.hydra.metadata import (
    MAX_CHUNK_BYTES,
    METADATA_LABEL,
    MalformedEnvelope,
    chunk_payload,
    decode_envelope,
    encode_envelope,
)
from zkadapt.channel.hydra.tx import (
    FeeRule,
    add_witness,
    address_of,
    build_message_tx,
    key_hash_of,
    owned_by,
)
from zkadapt.channel.hydra.txread import MalformedTransaction, decode_tx, tx_id_of
from zkadapt.channel.hydra.wire import (
    CommandFailed,
    DepositExpired,
    Greetings,
    HeadIsClosed,
    HydraProtocolError,
    InvalidInput,
    NodeEnvironment,
    NodeFailure,
    OtherOutput,
    PostTxOnChainFailed,
    RejectedInputBecauseUnsynced,
    SnapshotConfirmed,
    TxEnvelope,
    TxInvalid,
    UtxoOut,
    parse_output,
    parse_time,
    parse_utxo,
    post_tx_reason,
)
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ChannelError

DATA = hydra_data()
ALICE = IdentityKey.load(DATA / "credentials" / "alice.sk")
BOB = IdentityKey.load(DATA / "credentials" / "bob.sk")


def golden(kind: str, tag: str) -> dict:
    return json.loads((DATA / "golden" / kind / f"{tag}.json").read_text())["samples"][0]


def signed(key: IdentityKey, sender: str, payload: bytes) -> SignedEnvelope:
    return SignedEnvelope(sender, payload, key.sign(payload))


def utxo_of(key: IdentityKey, lovelace: int = 5_000_000, ref: str = "ab" * 32 + "#1") -> UtxoOut:
    return UtxoOut(ref, address_of(key.public), lovelace, (), True)


# ---- CBOR spans ----------------------------------------------------------------------------


def test_split_array_keeps_each_item_byte_for_byte() -> None:
    items = [cbor2.dumps({1: [2, 3]}), b"\x9f\x01\x02\xff", cbor2.dumps(b"x" * 300), b"\xf6"]
    assert split_array(encode_array(items)) == items
    assert split_array(b"\x9f" + b"".join(items) + b"\xff") == items  # indefinite array


@pytest.mark.parametrize("data", [b"\x01", b"\x82\x01", b"\x81\x01\x02", b"\x81\x5a\x00"])
def test_split_array_rejects_malformed_input(data: bytes) -> None:
    with pytest.raises(MalformedCbor):
        split_array(data)


@pytest.mark.parametrize(("kind", "tag"), [("ClientInput", "NewTx"), ("ServerOutput", "TxInvalid")])
def test_transaction_id_is_the_hash_of_the_body_as_sent(kind: str, tag: str) -> None:
    tx = golden(kind, tag)["transaction"]  # Conway txs with tag-258 sets from hydra's test suite
    assert tx_id_of(bytes.fromhex(tx["cborHex"])) == tx["txId"]
    assert decode_tx(bytes.fromhex(tx["cborHex"])).tx_id == tx["txId"]


def test_golden_snapshot_transactions_decode() -> None:
    for tx in golden("ServerOutput", "SnapshotConfirmed")["snapshot"]["confirmed"]:
        assert decode_tx(bytes.fromhex(tx["cborHex"])).tx_id == tx["txId"]


# ---- metadata envelope --------------------------------------------------------------------


def test_text_payload_is_chunked_on_character_boundaries() -> None:
    payload = ("é" * 40 + "a" * 100).encode()
    chunks = chunk_payload(payload)
    assert all(isinstance(c, str) and len(c.encode()) <= MAX_CHUNK_BYTES for c in chunks)
    assert "".join(chunks).encode() == payload


def test_binary_payload_is_chunked_into_byte_strings() -> None:
    payload = bytes(range(256)) * 2
    chunks = chunk_payload(payload)
    assert all(isinstance(c, bytes) and len(c) <= MAX_CHUNK_BYTES for c in chunks)
    assert b"".join(chunks) == payload


@pytest.mark.parametrize("payload", [b"", b'{"a":1}', b"x" * 1000, bytes(range(200))])
def test_envelope_round_trips_through_metadata(payload: bytes) -> None:
    env = signed(ALICE, "alice", payload)
    meta = encode_envelope(env)
    assert list(meta) == [METADATA_LABEL]
    assert decode_envelope(cbor2.loads(cbor2.dumps(meta[METADATA_LABEL]))) == env


@pytest.mark.parametrize(
    "value",
    [
        "not a map",
        {"v": 1, "from": "alice", "sig": b"\0" * 64},
        {"v": 2, "from": "alice", "sig": b"\0" * 64, "msg": []},
        {"v": 1, "from": "", "sig": b"\0" * 64, "msg": []},
        {"v": 1, "from": "alice", "sig": b"\0" * 63, "msg": []},
        {"v": 1, "from": "alice", "sig": b"\0" * 64, "msg": ["a", b"b"]},
        {"v": 1, "from": "alice", "sig": b"\0" * 64, "msg": ["a" * 65]},
        {"v": True, "from": "alice", "sig": b"\0" * 64, "msg": []},
    ],
)
def test_malformed_envelopes_are_rejected(value: object) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(value)


# ---- transactions --------------------------------------------------------------------------


def test_message_transaction_spends_back_to_the_sender_with_zero_fee() -> None:
    env = signed(ALICE, "alice", b'{"type":"Submitted","pad":"' + b"p" * 300 + b'"}')
    spend = utxo_of(ALICE)
    tx = build_message_tx(ALICE, spend, env, FeeRule())
    decoded = decode_tx(tx.cbor)
    assert decoded.tx_id == tx.tx_id == tx_id_of(tx.cbor)
    assert decoded.inputs == ((spend.tx_id, spend.index),)
    assert [(o.address, o.lovelace) for o in decoded.outputs] == [
        (decoded.outputs[0].address, spend.lovelace)
    ]
    assert decoded.outputs[0].payment_key_hash == key_hash_of(spend.address)
    assert decoded.fee == 0
    assert decoded.envelope() == env
    assert decoded.witnessed_by(ALICE.public.raw)
    assert not decoded.witnessed_by(BOB.public.raw)
    assert blake2b_256(decoded.aux_raw or b"") == decoded.aux_hash


def test_message_transaction_pays_a_linear_fee_when_the_head_charges_one() -> None:
    rule = FeeRule(fixed=155_381, per_byte=44)
    tx = build_message_tx(ALICE, utxo_of(ALICE), signed(ALICE, "alice", b"{}"), rule)
    decoded = decode_tx(tx.cbor)
    assert decoded.fee == rule.fee_for(decoded.size)
    assert decoded.outputs[0].lovelace == 5_000_000 - decoded.fee


def test_too_large_payload_is_refused_before_submission() -> None:
    env = signed(ALICE, "alice", b"x" * 20_000)
    with pytest.raises(ChannelError, match="maxTxSize"):
        build_message_tx(ALICE, utxo_of(ALICE), env, FeeRule(max_tx_size=16_384))


def test_fee_rule_reads_the_demo_protocol_parameters() -> None:
    params = json.loads((DATA / "protocol-parameters.json").read_text())
    assert FeeRule.from_protocol_parameters(params) == FeeRule(0, 0, params["maxTxSize"])
    with pytest.raises(ChannelError, match="txFeeFixed"):
        FeeRule.from_protocol_parameters({**params, "txFeeFixed": -1})


def test_owned_by_picks_plain_outputs_of_the_key_in_txin_order() -> None:
    utxo = {
        "bb" * 32 + "#0": UtxoOut("bb" * 32 + "#0", address_of(ALICE.public), 1, (), True),
        "aa" * 32 + "#1": UtxoOut("aa" * 32 + "#1", address_of(ALICE.public), 2, (), True),
        "aa" * 32 + "#0": UtxoOut("aa" * 32 + "#0", address_of(ALICE.public), 3, (), False),
        "cc" * 32 + "#0": UtxoOut("cc" * 32 + "#0", address_of(BOB.public), 4, (), True),
    }
    assert [u.lovelace for u in owned_by(ALICE.public, utxo)] == [2, 1]


def test_demo_keys_give_their_known_address() -> None:
    # alice.vk of hydra-cluster's credentials, as an enterprise testnet address
    assert address_of(ALICE.public) == (
        "addr_test1vru2drx33ev6dt8gfq245r5k0tmy7ngqe79va69de9dxkrg09c7d3"
    )
    assert address_of(ALICE.public, "mainnet").startswith("addr1")


def test_add_witness_keeps_the_body_and_signs_its_id() -> None:
    tx = build_message_tx(ALICE, utxo_of(ALICE), signed(ALICE, "alice", b"{}"), FeeRule())
    both = add_witness(tx.cbor, BOB)
    decoded = decode_tx(both)
    assert decoded.tx_id == tx.tx_id
    assert decoded.witnessed_by(ALICE.public.raw) and decoded.witnessed_by(BOB.public.raw)


def test_garbage_is_a_malformed_transaction() -> None:
    with pytest.raises(MalformedTransaction):
        decode_tx(b"\x83\x01\x02\x03")
    with pytest.raises(MalformedTransaction):
        tx_id_of(b"\x01")


# ---- wire objects --------------------------------------------------------------------------


def test_golden_server_outputs_parse() -> None:
    for path in sorted((DATA / "golden" / "ServerOutput").glob("*.json")):
        for sample in json.loads(path.read_text())["samples"]:
            output = parse_output(json.dumps({**sample, "seq": 7}))
            assert output.tag == path.stem and output.seq == 7


def test_snapshot_and_tx_invalid_fields() -> None:
    snap = parse_output(json.dumps(golden("ServerOutput", "SnapshotConfirmed")))
    assert isinstance(snap, SnapshotConfirmed) and snap.number == 0
    assert snap.confirmed[0].tx_id == tx_id_of(snap.confirmed[0].cbor)
    invalid = parse_output(json.dumps(golden("ServerOutput", "TxInvalid")))
    assert isinstance(invalid, TxInvalid) and invalid.reason == "\x1f"
    closed = parse_output(json.dumps(golden("ServerOutput", "HeadIsClosed")))
    assert isinstance(closed, HeadIsClosed) and closed.snapshot_number == 6
    assert isinstance(parse_output('{"tag":"PeerConnected","peer":{}}'), OtherOutput)


HEAD_ID = "01" * 16
PARAMETERS = {"contestationPeriod": 60, "depositPeriod": 60, "parties": []}


def _failures() -> list[tuple[dict, type[NodeFailure], str | None, str, str | None]]:
    """(output, class, command, reason, tx_id) for every error output of api.yaml's ``/``."""
    new_tx = golden("ClientInput", "NewTx")
    tx_id = tx_id_of(bytes.fromhex(new_tx["transaction"]["cborHex"]))
    idle = {"tag": "Idle", "contents": {"chainState": {}}}
    close_tx = {
        "tag": "CloseTx",
        "headId": HEAD_ID,
        "headParameters": PARAMETERS,
        "openVersion": 0,
        "closingSnapshot": {"tag": "InitialSnapshot", "headId": HEAD_ID, "initialUTxO": {}},
    }
    increment = {
        "tag": "IncrementTx",
        "headId": HEAD_ID,
        "headSeed": "02" * 16,
        "headParameters": PARAMETERS,
        "incrementingSnapshot": {"tag": "InitialSnapshot", "headId": HEAD_ID},
        "depositTxId": "cd" * 32,
    }
    expired = golden("ServerOutput", "DepositExpired")
    return [
        (
            {"tag": "CommandFailed", "clientInput": new_tx, "state": idle},
            CommandFailed,
            "NewTx",
            "head is Idle",
            tx_id,
        ),
        (
            {"tag": "RejectedInputBecauseUnsynced", "clientInput": {"tag": "Close"}, "drift": 42},
            RejectedInputBecauseUnsynced,
            "Close",
            "the node is out of sync with layer 1 (42 s behind)",
            None,
        ),
        (
            {"tag": "InvalidInput", "reason": "Error in $:\n bad", "input": '{"tag":"Init"}'},
            InvalidInput,
            "Init",
            "Error in $: bad",
            None,
        ),
        (
            {"tag": "InvalidInput", "reason": "not JSON", "input": "{"},
            InvalidInput,
            None,
            "not JSON",
            None,
        ),
        (
            {
                "tag": "PostTxOnChainFailed",
                "postChainTx": close_tx,
                "postTxError": {"tag": "NotEnoughFuel", "failingTx": new_tx["transaction"]},
            },
            PostTxOnChainFailed,
            "Close",
            "CloseTx: NotEnoughFuel",
            None,
        ),
        (
            {
                "tag": "PostTxOnChainFailed",
                "postChainTx": increment,
                "postTxError": {"tag": "FailedToConstructIncrementTx", "failureReason": "x y"},
            },
            PostTxOnChainFailed,
            "Deposit",
            "IncrementTx: FailedToConstructIncrementTx: x y",
            "cd" * 32,
        ),
        (
            {**expired, "seq": 3, "timestamp": "2026-01-01T00:00:00Z"},
            DepositExpired,
            "Deposit",
            f"deposit {expired['depositTxId']} expired at {expired['deadline']} before the "
            "head took it in",
            expired["depositTxId"],
        ),
    ]


@pytest.mark.parametrize("case", _failures(), ids=lambda c: f"{c[0]['tag']}-{c[2]}")
def test_node_failures_say_what_they_answer_and_why(case) -> None:
    message, kind, command, reason, tx_id = case
    assert api_schema().output_errors(message) == []  # the case itself follows api.yaml
    failure = parse_output(json.dumps(message))
    assert type(failure) is kind and isinstance(failure, NodeFailure)
    assert (failure.command, failure.reason, failure.tx_id) == (command, reason, tx_id)


def test_post_tx_errors_read_as_one_line() -> None:
    assert post_tx_reason({"tag": "DepositTooLow", "minimumValue": 5, "providedValue": 1}) == (
        "DepositTooLow: minimumValue=5, providedValue=1"
    )
    assert post_tx_reason({"tag": "NoSeedInput"}) == "NoSeedInput"
    long = post_tx_reason({"tag": "FailedToPostTx", "failureReason": "x\n" * 400})
    assert "\n" not in long and len(long) <= len("FailedToPostTx: ") + 300


def test_greetings_carry_the_nodes_periods() -> None:
    env = {
        "party": {"vkey": "00"},
        "otherParties": [],
        "participants": [],
        "contestationPeriod": 43200,
        "depositPeriod": 3600,
        "depositActivation": 600,
        "unsyncedPeriod": 21600,
        "configuredPeers": "",
    }
    text = json.dumps({"tag": "Greetings", "me": {"vkey": "00"}, "headStatus": "Idle", "env": env})
    greeted = parse_output(text)
    assert isinstance(greeted, Greetings)
    assert greeted.env == NodeEnvironment(43200.0, 3600.0, 600.0, 21600.0)
    older = parse_output(
        json.dumps({"tag": "Greetings", "me": {"vkey": "00"}, "headStatus": "Idle"})
    )
    assert isinstance(older, Greetings) and older.env is None


@pytest.mark.parametrize(
    "text", ["not json", "[1]", '{"no":"tag"}', '{"tag":"SnapshotConfirmed","headId":"00"}']
)
def test_malformed_outputs_raise_a_protocol_error(text: str) -> None:
    with pytest.raises(HydraProtocolError):
        parse_output(text)


def test_utxo_parses_lovelace_assets_and_plainness() -> None:
    utxo = parse_utxo(golden("ServerOutput", "HeadIsFinalized")["finalizedUTxO"])
    (only,) = utxo.values()
    assert only.lovelace == 969750 and only.plain and only.index == 22
    with pytest.raises(HydraProtocolError):
        parse_utxo({"nope": {}})


def test_times_parse_with_nanoseconds() -> None:
    assert parse_time("1970-01-01T00:00:01.5Z") == 1.5
    assert parse_time("2026-01-01T00:00:00.123456789Z") == pytest.approx(1767225600.123456789)
    assert parse_time("yesterday") is None


def test_tx_envelope_round_trips() -> None:
    tx = TxEnvelope.from_json(golden("ClientInput", "NewTx")["transaction"])
    assert TxEnvelope.from_json(tx.to_json()) == tx
    with pytest.raises(HydraProtocolError):
        TxEnvelope.from_json({"cborHex": "zz"})


def test_reference_data_is_where_the_tests_expect_it() -> None:
    assert isinstance(DATA, Path) and (DATA / "api.yaml").exists()


def test_hydra_config_picks_each_party_node() -> None:
    from zkadapt.config import HydraChannelConfig

    settings = HydraChannelConfig(api="ws://{party}.example:4001", nodes={"bob": "127.0.0.1:5"})
    assert settings.api_for("alice") == "ws://alice.example:4001"
    assert settings.api_for("bob") == "127.0.0.1:5"
    assert settings.api_for(None) == "ws://{party}.example:4001"


@pytest.mark.parametrize(
    ("api", "ws", "http"),
    [
        ("127.0.0.1:4001", "ws://127.0.0.1:4001/?", "http://127.0.0.1:4001"),
        ("wss://node.example:443", "wss://node.example:443/?", "https://node.example:443"),
        ("http://[::1]:4001", "ws://[::1]:4001/?", "http://[::1]:4001"),
    ],
)
def test_node_endpoints(api: str, ws: str, http: str) -> None:
    from zkadapt.channel.hydra.feed import endpoints

    ws_url, http_base = endpoints(api)
    assert ws_url.startswith(ws) and "history=yes" in ws_url and http_base == http
    with pytest.raises(ValueError):
        endpoints("no-port")
