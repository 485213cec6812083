"""HeadView: entries from confirmed snapshots, verified, deduplicated, in snapshot order."""

from __future__ import annotations

import pytest

from tests.fakes import make_keys
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra.metadata import METADATA_LABEL
from zkadapt.channel.hydra.tx import FeeRule, address_of, build_message_tx
from zkadapt.channel.hydra.view import HeadView
from zkadapt.channel.hydra.waits import contestation_over, deposit_in_head, deposit_stage
from zkadapt.channel.hydra.wire import (
    CommandFailed,
    CommitFinalized,
    CommitRecorded,
    DepositActivated,
    Greetings,
    HeadIsClosed,
    HeadIsFinalized,
    HeadIsOpen,
    InvalidInput,
    NodeEnvironment,
    PostTxOnChainFailed,
    ReadyToFanout,
    SnapshotConfirmed,
    TxEnvelope,
    TxInvalid,
    UtxoOut,
)
from zkadapt.errors import ChannelError

NAMES = ["alice", "bob", "carol"]
KEYS, KEYRING = make_keys(NAMES)
MALLORY, _ = make_keys(["mallory"])
HEAD = "ab" * 16


def tx(
    sender: str, payload: bytes, *, key: str | None = None, signer: str | None = None, ref: int = 0
) -> TxEnvelope:
    """A message transaction by ``key``'s owner carrying an envelope signed by ``signer``."""
    signing = KEYS.get(signer or sender) or MALLORY["mallory"]
    owner = KEYS.get(key or sender) or MALLORY["mallory"]
    spend = UtxoOut(f"{ref:064x}#0", address_of(owner.public), 2_000_000, (), True)
    env = SignedEnvelope(sender, payload, signing.sign(payload))
    return build_message_tx(owner, spend, env, FeeRule())


def snapshot(number: int, *txs: TxEnvelope, head: str = HEAD, stamp: float = 1.0):
    return SnapshotConfirmed("SnapshotConfirmed", number, stamp, head, number, tuple(txs))


ENV = NodeEnvironment(43_200.0, 3_600.0, 600.0, 21_600.0)


def greetings(head: str | None = HEAD, status: str = "Open") -> Greetings:
    return Greetings("Greetings", None, None, status, head, "2.3.0", "00", ENV)


def opened_view() -> HeadView:
    view = HeadView(KEYRING)
    view.apply(HeadIsOpen("HeadIsOpen", 0, 0.0, HEAD, ()))
    view.apply(greetings())
    return view


def senders(view: HeadView) -> list[tuple[int, str]]:
    return [(e.seq, e.envelope.sender) for e in view.entries()]


def test_entries_follow_snapshot_order_then_confirmed_order() -> None:
    view = opened_view()
    view.apply(snapshot(1, tx("bob", b"1", ref=1), tx("alice", b"2", ref=2)))
    view.apply(snapshot(2, tx("carol", b"3", ref=3)))
    assert senders(view) == [(1, "bob"), (2, "alice"), (3, "carol")]
    assert view.entries(2)[0].envelope.payload == b"3"
    assert view.entries(0)[0].timestamp == 1.0


def test_replayed_history_adds_nothing() -> None:
    view = opened_view()
    first, second = snapshot(1, tx("alice", b"a", ref=1)), snapshot(2, tx("bob", b"b", ref=2))
    for output in (first, second, first, second, first):
        view.apply(output)
    assert senders(view) == [(1, "alice"), (2, "bob")]


def test_a_skipped_snapshot_is_an_error_not_a_silent_loss() -> None:
    view = opened_view()
    view.apply(snapshot(1, tx("alice", b"a", ref=1)))
    view.apply(snapshot(3, tx("bob", b"b", ref=2)))
    with pytest.raises(ChannelError, match="snapshot 2 was never seen"):
        view.entries()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda: tx("alice", b"x", signer="bob", key="alice"), "invalid signature"),
        (lambda: tx("mallory", b"x", key="mallory", signer="mallory"), "unknown sender"),
        (lambda: tx("alice", b"x", key="bob", signer="alice"), "not witnessed by alice"),
    ],
)
def test_forged_messages_get_no_seq_and_are_recorded(bad, reason: str) -> None:
    view = opened_view()
    forged = bad()
    view.apply(snapshot(1, tx("bob", b"ok", ref=1), forged, tx("carol", b"ok", ref=2)))
    assert senders(view) == [(1, "bob"), (2, "carol")]
    (rejection,) = view.log.rejected  # type: ignore[union-attr]
    assert rejection.tx_id == forged.tx_id and reason in rejection.reason
    assert view.confirmed(forged.tx_id) and view.seq_of(forged.tx_id) is None


def test_malformed_metadata_is_recorded_and_plain_payments_are_ignored() -> None:
    from pycardano import AlonzoMetadata, AuxiliaryData, Metadata

    import zkadapt.channel.hydra.tx as hydra_tx

    spend = UtxoOut("01" * 32 + "#0", address_of(KEYS["alice"].public), 2_000_000, (), True)
    aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata({METADATA_LABEL: {"v": 9}})))
    body = hydra_tx._body(spend, aux, 0)
    bad = TxEnvelope(hydra_tx._signed(KEYS["alice"], body, aux).hex())
    plain_aux = AuxiliaryData(AlonzoMetadata(metadata=Metadata({674: {"msg": ["hi"]}})))
    plain = TxEnvelope(
        hydra_tx._signed(
            KEYS["bob"],
            hydra_tx._body(
                UtxoOut("02" * 32 + "#0", address_of(KEYS["bob"].public), 2_000_000, (), True),
                plain_aux,
                0,
            ),
            plain_aux,
        ).hex()
    )
    view = opened_view()
    view.apply(snapshot(1, bad, plain, TxEnvelope("00")))
    assert view.entries() == []
    assert [r.reason.split(":")[0] for r in view.log.rejected] == ["malformed envelope"]


def test_binds_to_the_greeted_head_and_ignores_others() -> None:
    view = HeadView(KEYRING)
    view.apply(HeadIsOpen("HeadIsOpen", 0, 0.0, "old0" * 8, ()))
    view.apply(snapshot(1, tx("alice", b"old", ref=1), head="old0" * 8))
    view.apply(HeadIsFinalized("HeadIsFinalized", 1, 0.0, "old0" * 8, {}))
    view.apply(greetings(head=None, status="Idle"))
    assert view.entries() == [] and view.status == "Idle"
    view.apply(HeadIsOpen("HeadIsOpen", 2, 0.0, HEAD, ()))
    view.apply(snapshot(1, tx("bob", b"new", ref=2)))
    assert senders(view) == [(1, "bob")] and view.status == "Open"


def test_configured_head_wins_over_the_greeted_one() -> None:
    view = HeadView(KEYRING, head_id="cd" * 16)
    view.apply(greetings(head=HEAD))
    view.apply(snapshot(1, tx("alice", b"a", ref=1)))
    view.apply(snapshot(1, tx("bob", b"b", ref=2), head="cd" * 16))
    assert senders(view) == [(1, "bob")]


def test_status_follows_the_head_lifecycle() -> None:
    view = opened_view()
    view.apply(HeadIsClosed("HeadIsClosed", 3, 0.0, HEAD, 4, "2026-01-01T00:00:00Z"))
    assert (view.status, view.closed_snapshot) == ("Closed", 4)
    view.apply(ReadyToFanout("ReadyToFanout", 4, 0.0, HEAD))
    assert view.status == "FanoutPossible"
    view.apply(HeadIsFinalized("HeadIsFinalized", 5, 0.0, HEAD, {"x#0": {}}))
    assert view.status == "Idle" and view.finalized_utxo == {"x#0": {}}


def test_lifecycle_events_are_recorded_once_even_when_the_history_is_replayed() -> None:
    view = opened_view()  # HeadIsOpen came in the replay, before Greetings bound the head
    view.apply(snapshot(1, tx("alice", b"a", ref=1)))
    closed = HeadIsClosed("HeadIsClosed", 3, 0.0, HEAD, 1, "2026-01-01T00:00:00Z")
    view.apply(closed)
    view.apply(HeadIsOpen("HeadIsOpen", 0, 0.0, HEAD, ()))  # a reconnect replays both
    view.apply(closed)
    events = view.lifecycle
    assert [(e.tag, e.after_seq) for e in events] == [("HeadIsOpen", 0), ("HeadIsClosed", 1)]
    assert view.contestation_deadline == "2026-01-01T00:00:00Z"
    assert events[1].detail.startswith("closed at snapshot 1")


def test_tx_invalid_and_node_failures_are_remembered_with_their_event() -> None:
    view = opened_view()
    bad = tx("alice", b"a", ref=1)
    mark = view.events
    view.apply(TxInvalid("TxInvalid", 9, 0.0, HEAD, bad, "BadInputsUTxO"))
    view.apply(CommandFailed("CommandFailed", None, None, "Init", "head is Open"))
    assert view.invalid_after(bad.tx_id or "", mark) == "BadInputsUTxO"
    assert view.invalid_after(bad.tx_id or "", view.events) is None
    failure = view.failure_after("Init", mark)
    assert failure is not None and failure.reason == "head is Open"
    assert view.failure_after("Close", mark) is None
    assert view.failure_after("Init", view.events) is None  # only answers after the input
    assert view.lifecycle[-1].failure and "refused Init (CommandFailed" in view.lifecycle[-1].detail


def test_a_failure_about_another_transaction_does_not_end_a_wait() -> None:
    view = opened_view()
    mark = view.events
    view.apply(CommandFailed("CommandFailed", None, None, "NewTx", "head is Closed", "aa" * 32))
    assert view.failure_after("NewTx", mark, "bb" * 32) is None
    assert view.failure_after("NewTx", mark, "aa" * 32) is not None
    view.apply(InvalidInput("InvalidInput", None, None, None, "not a ClientInput"))
    undecodable = view.failure_after("NewTx", mark, "bb" * 32)  # names no input: any wait
    assert undecodable is not None and undecodable.tag == "InvalidInput"


def test_deposit_progress_and_deadline_follow_the_node() -> None:
    view = opened_view()
    deposit = "cd" * 32
    until = deposit_in_head(deposit, started=1000.0, margin_s=600.0)
    stage = deposit_stage(deposit)
    assert until(view) == 1600.0 and stage(view).startswith("submitted on layer 1")
    view.apply(CommitRecorded("CommitRecorded", 3, 0.0, HEAD, deposit, "1970-01-01T02:00:00Z"))
    assert view.deposit_deadlines[deposit] == "1970-01-01T02:00:00Z"
    assert until(view) == 7800.0  # the deadline the node announced, plus the margin
    assert "becomes active after ~600 s" in stage(view)
    view.apply(DepositActivated("DepositActivated", 4, 0.0, HEAD, deposit))
    assert stage(view).startswith("active")
    view.apply(CommitFinalized("CommitFinalized", 5, 0.0, HEAD, deposit))
    assert stage(view) == "in the head" and deposit in view.deposits
    other = "ef" * 32
    view.apply(CommitRecorded("CommitRecorded", 6, 0.0, HEAD, other, "not a time"))
    assert deposit_in_head(other, 1000.0, 600.0)(view) == 1000.0 + 2 * 3_600.0 + 600.0
    mark = view.events
    failed = PostTxOnChainFailed(
        "PostTxOnChainFailed", None, None, "Deposit", "IncrementTx: NotEnoughFuel", other
    )
    view.apply(failed)
    assert view.failure_after("Deposit", mark, other) == failed
    assert view.failure_after("Deposit", mark, deposit) is None


def test_the_contestation_wait_is_the_deadline_or_the_nodes_period() -> None:
    view = opened_view()
    until = contestation_over(started=1000.0, margin_s=600.0)
    assert until(view) == 1000.0 + 43_200.0 + 600.0  # no deadline yet: the node's period
    view.apply(HeadIsClosed("HeadIsClosed", 3, 0.0, HEAD, 0, "1970-01-01T01:00:00Z"))
    assert until(view) == 3600.0 + 600.0
