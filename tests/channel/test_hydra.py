"""The ``hydra`` channel against the hydra-node double: order, reconnects, rejections, lifecycle.

A real hydra-node cannot be installed here, so these tests run the double built from the
official schema (tests/hydra_double, docs/hydra.md says what it does not model).
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes import make_keys
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope, funds, open_head
from zkadapt.channel import Channel, open_channel
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import FeeRule, address_of, build_message_tx
from zkadapt.channel.hydra.wire import UtxoOut, new_tx
from zkadapt.config import HydraChannelConfig
from zkadapt.errors import ChannelError

NAMES = ["alice", "bob", "carol"]
KEYS, KEYRING = make_keys(NAMES)


def post(channel: HydraChannel, name: str, text: str) -> int:
    return channel.post(envelope(KEYS[name], name, text.encode())).seq


def payloads(channel: Channel) -> list[tuple[int, str, bytes]]:
    return [(e.seq, e.envelope.sender, e.envelope.payload) for e in channel.history()]


def test_concurrent_posts_are_totally_ordered_alike_for_every_party() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        receipts: dict[str, list[int]] = {n: [] for n in NAMES}

        def worker(name: str) -> None:
            for i in range(4):
                receipts[name].append(post(channels[name], name, f"{name} {i}"))

        threads = [threading.Thread(target=worker, args=(n,)) for n in NAMES]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for channel in channels.values():
            channel.wait(11, 5)
        views = [payloads(c) for c in channels.values()]
        assert views[0] == views[1] == views[2]
        assert [seq for seq, _, _ in views[0]] == list(range(1, 13))
        for name in NAMES:  # each party's messages keep its own order, at its receipts
            mine = [(s, p) for s, sender, p in views[0] if sender == name]
            assert [p.decode() for _, p in mine] == [f"{name} {i}" for i in range(4)]
            assert [s for s, _ in mine] == receipts[name]
        assert double.violations == []


def test_dropped_websockets_lose_and_duplicate_nothing() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        post(channels["alice"], "alice", "before")
        double.drop("bob")  # the node closes bob's connection
        channels["carol"].drop_connection()  # carol's side loses it
        post(channels["alice"], "alice", "during")
        post(channels["bob"], "bob", "after bob reconnected")
        post(channels["carol"], "carol", "after carol reconnected")
        for channel in channels.values():
            channel.wait(3, 5)
        expected = payloads(channels["alice"])
        assert [p for _, _, p in expected] == [
            b"before",
            b"during",
            b"after bob reconnected",
            b"after carol reconnected",
        ]
        assert payloads(channels["bob"]) == payloads(channels["carol"]) == expected
        assert channels["bob"].reconnects >= 1 and channels["carol"].reconnects >= 1
        assert double.violations == []


def test_drops_during_a_burst_of_posts() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        stop = threading.Event()

        def chaos() -> None:
            while not stop.is_set():
                time.sleep(0.03)
                double.drop("alice")

        thread = threading.Thread(target=chaos)
        thread.start()
        try:
            seqs = [post(channels["alice"], "alice", f"m{i}") for i in range(8)]
        finally:
            stop.set()
            thread.join()
        assert seqs == list(range(1, 9))
        channels["bob"].wait(7, 5)
        assert [p for _, _, p in payloads(channels["bob"])] == [f"m{i}".encode() for i in range(8)]
        assert payloads(channels["alice"]) == payloads(channels["bob"])


def test_a_new_reader_replays_the_whole_history() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        for name in NAMES:
            post(channels[name], name, f"hello from {name}")
        channels["alice"].wait(2, 5)
        with HydraChannel(KEYRING, api=double.api("carol")) as late:
            assert payloads(late) == payloads(channels["alice"])
            assert late.party is None
            with pytest.raises(ChannelError, match="read-only"):
                late.post(envelope(KEYS["carol"], "carol", b"x"))


def test_tx_invalid_fails_the_post_with_the_ledger_reason(monkeypatch) -> None:
    with open_head(KEYS, KEYRING) as (_double, channels):
        alice = channels["alice"]
        real_build = alice._build

        def witnessed_by_bob(identity, env, utxo):
            tx = real_build(identity, env, utxo)
            from zkadapt.channel.hydra.txread import decode_tx

            decoded = decode_tx(tx.cbor)
            spend = UtxoOut(
                f"{decoded.inputs[0][0]}#{decoded.inputs[0][1]}",
                address_of(KEYS["alice"].public),
                10_000_000,
                (),
                True,
            )
            return build_message_tx(KEYS["bob"], spend, env, FeeRule())

        monkeypatch.setattr(alice, "_build", witnessed_by_bob)
        with pytest.raises(ChannelError, match="MissingVKeyWitnessesUTXOW"):
            post(alice, "alice", "needs alice's witness")
        monkeypatch.setattr(alice, "_build", real_build)
        assert post(alice, "alice", "fine") == 1


def test_a_stale_input_is_rebuilt_and_posted(monkeypatch) -> None:
    with open_head(KEYS, KEYRING) as (_double, channels):
        alice = channels["alice"]
        real_build = alice._build
        calls = []

        def stale_first(identity, env, utxo):
            calls.append(1)
            if len(calls) == 1:
                ghost = UtxoOut(
                    "ee" * 32 + "#0", address_of(KEYS["alice"].public), 10_000_000, (), True
                )
                return build_message_tx(identity, ghost, env, FeeRule())
            return real_build(identity, env, utxo)

        monkeypatch.setattr(alice, "_build", stale_first)
        assert post(alice, "alice", "second try") == 1
        assert len(calls) == 2


def test_double_spend_is_refused_by_the_head() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        ((ref, out),) = [
            (r, o)
            for r, o in funds(KEYS).items()
            if o["address"] == address_of(KEYS["alice"].public)
        ]
        spend = UtxoOut(ref, out["address"], out["value"]["lovelace"], (), True)
        first = build_message_tx(
            KEYS["alice"], spend, envelope(KEYS["alice"], "alice", b"1"), FeeRule()
        )
        second = build_message_tx(
            KEYS["alice"], spend, envelope(KEYS["alice"], "alice", b"2"), FeeRule()
        )
        double.submit("alice", {"tag": "NewTx", "transaction": first.to_json()})
        double.submit("alice", {"tag": "NewTx", "transaction": second.to_json()})
        channels["bob"].wait(0, 5)
        time.sleep(0.1)
        assert [p for _, _, p in payloads(channels["bob"])] == [b"1"]
        reasons = channels["alice"]._inspect(lambda v: v.invalid_after(second.tx_id, 0))
        assert reasons is not None and "BadInputsUTxO" in reasons


def test_a_forged_message_in_the_head_is_rejected_by_every_reader() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        ((ref, out),) = [
            (r, o) for r, o in funds(KEYS).items() if o["address"] == address_of(KEYS["bob"].public)
        ]
        spend = UtxoOut(ref, out["address"], out["value"]["lovelace"], (), True)
        claims_alice = SignedEnvelope("alice", b"forged", KEYS["bob"].sign(b"forged"))
        forged = build_message_tx(KEYS["bob"], spend, claims_alice, FeeRule())  # valid tx
        double.submit("bob", {"tag": "NewTx", "transaction": forged.to_json()})
        post(channels["carol"], "carol", "honest")
        for channel in channels.values():
            channel.wait(0, 5)
            assert [p for _, _, p in payloads(channel)] == [b"honest"]
            (rejection,) = channel.rejected
            assert rejection.tx_id == forged.tx_id and "invalid signature" in rejection.reason


def test_post_checks_the_envelope_before_submitting() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        alice = channels["alice"]
        with pytest.raises(ChannelError, match="posts as 'alice'"):
            alice.post(envelope(KEYS["bob"], "bob", b"x"))
        with pytest.raises(ChannelError, match="bad signature"):
            alice.post(SignedEnvelope("alice", b"x", KEYS["bob"].sign(b"x")))
        assert double.inputs[1:] == []  # only the Init was ever sent


def test_a_party_without_funds_in_the_head_is_told_to_deposit() -> None:
    keys, keyring = make_keys(["alice", "dave"])
    head = open_head(keys, keyring, initial_utxo=funds({"alice": keys["alice"]}))
    with head as (_, ch), pytest.raises(ChannelError, match="deposit funds first"):
        ch["dave"].post(envelope(keys["dave"], "dave", b"x"))


def test_deposit_brings_layer1_funds_into_the_open_head() -> None:
    keys, keyring = make_keys(["alice", "dave"])
    l1 = funds({"dave": keys["dave"]}, lovelace=7_000_000)
    with open_head(keys, keyring, initial_utxo=funds({"alice": keys["alice"]}), l1_utxo=l1) as (
        double,
        channels,
    ):
        tx_id = channels["dave"].deposit(l1, timeout=10)
        assert channels["dave"].post(envelope(keys["dave"], "dave", b"funded")).seq == 1
        channels["alice"].wait(0, 5)
        assert payloads(channels["alice"])[0][2] == b"funded"
        assert tx_id not in double.head.drafts and double.violations == []


def test_close_and_fanout_end_the_head_and_posts_are_refused() -> None:
    with open_head(KEYS, KEYRING, contestation_s=0.05) as (double, channels):
        post(channels["alice"], "alice", "last word")
        assert channels["bob"].close_head(timeout=10) == 1
        channels["alice"]._await(lambda v: v.status != "Open", 5, "HeadIsClosed")
        with pytest.raises(ChannelError, match="not Open"):
            post(channels["alice"], "alice", "too late")
        final = channels["carol"].fanout(timeout=10)
        assert sum(o["value"]["lovelace"] for o in final.values()) == 3 * 10_000_000
        channels["alice"]._await(lambda v: v.status == "Idle", 5, "HeadIsFinalized")  # her feed
        assert channels["alice"].head_status == "Idle"
        assert len(channels["alice"].history()) == 1  # history survives the end of the head
        assert double.violations == []


def test_a_second_close_or_fanout_is_refused_and_the_lifecycle_is_recorded() -> None:
    with open_head(KEYS, KEYRING, contestation_s=0.05) as (_double, channels):
        channels["bob"].close_head(timeout=10)
        assert channels["bob"].contestation_deadline is not None
        with pytest.raises(
            ChannelError, match=r"Close refused by the node \(CommandFailed: head is Closed\)"
        ):
            channels["bob"].close_head(timeout=5)
        channels["carol"].fanout(timeout=10)  # waits for ReadyToFanout first
        with pytest.raises(
            ChannelError, match=r"Fanout refused by the node \(CommandFailed: head is Idle\)"
        ):
            channels["carol"].fanout(timeout=5)
        events = channels["carol"].head_events
        assert [e.tag for e in events] == [
            "HeadIsOpen",
            "HeadIsClosed",
            "ReadyToFanout",
            "HeadIsFinalized",
            "CommandFailed",
        ]
        assert "30,000,000 lovelace back on layer 1" in events[3].detail
        assert events[4].detail == "the node refused Fanout (CommandFailed: head is Idle)"
        assert events[4].failure and not any(e.failure for e in events[:4])


def test_commands_in_the_wrong_state_are_refused() -> None:
    with open_head(KEYS, KEYRING) as (_double, channels):
        with pytest.raises(ChannelError, match="Init refused"):
            channels["alice"].init_head(timeout=5)
        with pytest.raises(
            ChannelError, match=r"Fanout refused by the node \(CommandFailed: head is Open\)"
        ):
            channels["alice"].fanout(timeout=5)


def test_an_unreachable_node_is_a_channel_error() -> None:
    with pytest.raises(ChannelError, match="cannot reach the hydra-node"):
        HydraChannel(KEYRING, api="127.0.0.1:9", connect_timeout_s=0.3)


def test_open_channel_builds_the_hydra_backend_from_the_config_section() -> None:
    with HydraDouble(NAMES, initial_utxo=funds(KEYS)) as double:
        settings = HydraChannelConfig(nodes={"alice": double.api("alice")}, connect_timeout_s=5)
        channel = open_channel(
            "hydra",
            keyring=KEYRING,
            settings=settings,
            party="alice",
            identity=KEYS["alice"],
            path="ignored.sqlite",
        )
        try:
            assert isinstance(channel, HydraChannel) and isinstance(channel, Channel)
            assert channel.party == "alice" and channel.head_status == "Idle"
            assert channel.history() == [] and channel.wait(0, 0.05) == []
            with pytest.raises(ValueError):
                channel.history(-1)
        finally:
            channel.close()


def test_new_tx_frame_matches_the_client_input_schema() -> None:
    from tests.hydra_double.schema import api_schema

    tx = build_message_tx(
        KEYS["alice"],
        UtxoOut("aa" * 32 + "#0", address_of(KEYS["alice"].public), 5_000_000, (), True),
        envelope(KEYS["alice"], "alice", b"{}"),
        FeeRule(),
    )
    import json

    assert api_schema().input_errors(json.loads(new_tx(tx))) == []
