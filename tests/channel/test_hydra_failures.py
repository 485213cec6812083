"""The node's error outputs end a wait at once, with the node's reason in one line.

The double answers with each error output of api.yaml's WebSocket API (armed as a
:class:`~tests.hydra_double.head.Fault`, validated against the schema like every output),
and every wait here is given far more time than it may take: it must end on the error,
not on the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.fakes import make_keys
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope, layer1_funds, open_head
from tests.hydra_double.head import UNSYNCED_DRIFT_S, Fault
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.wire import HydraNodeError, parse_utxo

NAMES = ["alice", "bob", "carol"]
KEYS, KEYRING = make_keys(NAMES)
#: Far longer than any answer of the double takes: a wait that ends must end on the error.
PATIENCE_S = 60.0
#: What "at once" means on a loaded 2-core machine.
AT_ONCE_S = 5.0


@contextmanager
def quickly() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < AT_ONCE_S


def refused(call: Callable[[], object], match: str) -> HydraNodeError:
    """``call()`` raises a one-line HydraNodeError matching ``match``, at once."""
    with quickly(), pytest.raises(HydraNodeError, match=match) as caught:
        call()
    assert "\n" not in str(caught.value)
    return caught.value


def post(channel: HydraChannel, name: str, text: str) -> int:
    return channel.post(envelope(KEYS[name], name, text.encode())).seq


def test_a_post_ends_at_once_when_the_node_is_out_of_sync() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        channels["alice"].confirm_timeout_s = PATIENCE_S
        double.arm(Fault.UNSYNCED)
        error = refused(
            lambda: post(channels["alice"], "alice", "hello"),
            r"message from 'alice' not posted: NewTx refused by the node "
            r"\(RejectedInputBecauseUnsynced: the node is out of sync with layer 1 "
            rf"\({UNSYNCED_DRIFT_S:,.0f} s behind\)\)",
        )
        assert error.tag == "RejectedInputBecauseUnsynced" and error.command == "NewTx"
        assert post(channels["alice"], "alice", "hello again") == 1  # the node is back
        assert double.violations == []


def test_a_post_ends_at_once_on_invalid_input() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        channels["bob"].confirm_timeout_s = PATIENCE_S
        double.arm(Fault.INVALID_INPUT)
        refused(
            lambda: post(channels["bob"], "bob", "hello"),
            r"NewTx refused by the node \(InvalidInput: Error in \$: parsing ClientInput",
        )
        assert double.violations == []


def test_a_transaction_sent_to_a_closed_head_ends_at_once() -> None:
    with open_head(KEYS, KEYRING) as (double, channels):
        alice = channels["alice"]
        alice.confirm_timeout_s = PATIENCE_S
        utxo = alice._http.get("/snapshot/utxo")
        tx = alice._build(
            KEYS["alice"], envelope(KEYS["alice"], "alice", b"late"), parse_utxo(utxo)
        )
        channels["bob"].close_head(timeout=10)
        alice._await(lambda v: v.status != "Open", 10, "HeadIsClosed")
        refused(
            lambda: alice._submit(tx),
            r"NewTx refused by the node \(CommandFailed: head is Closed\)",
        )
        assert double.violations == []


@pytest.mark.parametrize(
    ("fault", "command", "match"),
    [
        (
            Fault.UNSYNCED,
            "init",
            r"Init refused by the node \(RejectedInputBecauseUnsynced: the node is out of sync",
        ),
        (
            Fault.POST_TX_FAILS,
            "init",
            r"Init refused by the node \(PostTxOnChainFailed: InitTx: NotEnoughFuel\)",
        ),
        (Fault.INVALID_INPUT, "init", r"Init refused by the node \(InvalidInput: Error in"),
        (
            Fault.POST_TX_FAILS,
            "close",
            r"Close refused by the node \(PostTxOnChainFailed: CloseTx: NotEnoughFuel\)",
        ),
        (
            Fault.POST_TX_FAILS,
            "fanout",
            r"Fanout refused by the node \(PostTxOnChainFailed: FanoutTx: NotEnoughFuel\)",
        ),
    ],
)
def test_head_commands_end_at_once_on_the_nodes_errors(fault, command, match) -> None:
    with HydraDouble(NAMES, contestation_s=0.05) as double:
        with HydraChannel(KEYRING, api=double.api("alice"), connect_timeout_s=10) as alice:
            if command != "init":
                alice.init_head(timeout=10)
            if command == "fanout":
                alice.close_head(timeout=10)
                alice._await(lambda v: v.status == "FanoutPossible", 10, "ReadyToFanout")
            double.arm(fault)
            action = {"init": alice.init_head, "close": alice.close_head, "fanout": alice.fanout}
            refused(lambda: action[command](timeout=PATIENCE_S), match)
            assert alice.head_events[-1].failure  # the dashboard's timeline shows it
        assert double.violations == []


def test_a_deposit_ends_at_once_when_it_expires_or_cannot_enter_the_head() -> None:
    l1 = layer1_funds(KEYS)
    with open_head(KEYS, KEYRING, initial_utxo={}, l1_utxo=l1) as (double, channels):
        alice, bob = channels["alice"], channels["bob"]
        double.arm(Fault.DEPOSIT_EXPIRES)
        mine = {r: o for r, o in l1.items() if o["address"] == alice.address}
        error = refused(
            lambda: alice.deposit(mine, PATIENCE_S, amount=5_000_000),
            r"Deposit refused by the node \(DepositExpired: deposit [0-9a-f]{64} expired at ",
        )
        assert error.command == "Deposit"
        double.arm(Fault.POST_TX_FAILS)
        theirs = {r: o for r, o in l1.items() if o["address"] == bob.address}
        refused(
            lambda: bob.deposit(theirs, PATIENCE_S),
            r"Deposit refused by the node \(PostTxOnChainFailed: IncrementTx: "
            r"FailedToConstructIncrementTx: fault injected\)",
        )
        assert alice.funds_in_head() == bob.funds_in_head() == 0
        assert double.violations == []


def test_a_refused_deposit_request_is_one_line_with_the_nodes_reason() -> None:
    l1 = layer1_funds(KEYS)
    with open_head(KEYS, KEYRING, initial_utxo={}, l1_utxo=l1) as (double, channels):
        alice = channels["alice"]
        mine = {r: o for r, o in l1.items() if o["address"] == alice.address}
        refused(
            lambda: alice.deposit(mine, PATIENCE_S, amount=10**12),
            r"POST /commit refused by the node \(FailedToConstructDepositTx: cannot deposit "
            r"1000000000000 lovelace of 20000000 \(HTTP 400\)\)",
        )
        alice.deposit(mine, PATIENCE_S, amount=5_000_000)
        refused(  # spent on layer 1 by the first deposit: the node cannot submit it again
            lambda: alice.deposit(mine, PATIENCE_S),
            r"POST /commit refused by the node \(FailedToConstructDepositTx: [0-9a-f]{64}#0 "
            r"is not an unspent layer-1 output",
        )
        assert double.violations == []
