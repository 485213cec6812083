"""Newcomers on the real channels (issue 20, docs/membership.md): the local ledger and the
Hydra view carry an outsider's self-signed ``JoinRequest`` and its later messages signed
with the key it introduced, and refuse everything else from outsiders with a named reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.channel.test_hydra_view import HEAD, greetings, opened_view, snapshot
from tests.fakes import make_keys
from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.hydra.tx import FeeRule, address_of, build_message_tx
from zkadapt.channel.hydra.view import HeadView
from zkadapt.channel.hydra.wire import HeadIsOpen, TxEnvelope, UtxoOut
from zkadapt.channel.local import LocalLedger
from zkadapt.channel.outsiders import NOT_SELF_SIGNED, OutsiderKeys, OutsiderPolicy
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ChannelError
from zkadapt.protocol.messages import JoinRequest, PhaseClosed, introduction_reader, sign

SESSION = "5e" * 32
NAMES = ["alice", "bob", "carol"]
KEYS, KEYRING = make_keys(NAMES)
DAVE = IdentityKey.from_seed(b"d" * 32)
EVE = IdentityKey.from_seed(b"e" * 32)
POLICY = OutsiderPolicy(introduction=introduction_reader(SESSION), max_payload=4096)


def request(name: str = "dave", key: IdentityKey = DAVE, signer: IdentityKey = DAVE):
    message = JoinRequest(SESSION, 2, name, key.public.hex, 150, 0)
    return sign(message, name, signer)


def vote(name: str = "dave", signer: IdentityKey = DAVE) -> SignedEnvelope:
    return sign(PhaseClosed(SESSION, 3, "submit", "deadline"), name, signer)


@pytest.fixture
def ledger(tmp_path: Path) -> LocalLedger:
    return LocalLedger(tmp_path / "ledger.sqlite", KEYRING, outsiders=POLICY)


def test_the_ledger_carries_a_self_signed_request_and_the_newcomers_later_messages(
    ledger: LocalLedger, tmp_path: Path
) -> None:
    ledger.post(sign(PhaseClosed(SESSION, 1, "submit", "deadline"), "alice", KEYS["alice"]))
    assert ledger.post(request()).seq == 2
    assert ledger.post(vote()).seq == 3
    # a second process reads and re-verifies the whole ledger the same way
    reader = LocalLedger(tmp_path / "ledger.sqlite", KEYRING, outsiders=POLICY)
    assert [e.envelope.sender for e in reader.history(0)] == ["alice", "dave", "dave"]
    assert reader.verify_all() == 3


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        (request(signer=EVE), NOT_SELF_SIGNED),  # carries dave's key, signed by eve
        (vote(), "outsider 'dave' has not introduced itself"),
        (
            SignedEnvelope("eve", request().payload, request().signature),
            "join request names 'dave' but is sent as 'eve'",
        ),
        (SignedEnvelope("dave", b"x" * 5000, b"s" * 64), "payload over 4096 bytes"),
        (SignedEnvelope("d" * 65, b"{}", b"s" * 64), "outsider name of 65 characters"),
        (SignedEnvelope("dave", b"not json", b"s" * 64), "has not introduced itself"),
    ],
)
def test_the_ledger_refuses_outsiders_garbage_with_a_named_reason(
    ledger: LocalLedger, envelope: SignedEnvelope, reason: str
) -> None:
    with pytest.raises(ChannelError, match=reason):
        ledger.post(envelope)
    assert ledger.history(0) == []  # nothing was written


def test_after_its_request_a_message_signed_by_another_key_is_refused(
    ledger: LocalLedger,
) -> None:
    ledger.post(request())
    with pytest.raises(ChannelError, match="verifies against none of the keys it introduced"):
        ledger.post(vote(signer=EVE))
    assert len(ledger.history(0)) == 1


def test_without_a_policy_the_ledger_refuses_outsiders_as_before(tmp_path: Path) -> None:
    fixed = LocalLedger(tmp_path / "fixed.sqlite", KEYRING)
    with pytest.raises(ChannelError, match="unknown sender 'dave'"):
        fixed.post(request())


def test_a_reader_without_the_policy_names_the_outsiders_entry(
    ledger: LocalLedger, tmp_path: Path
) -> None:
    ledger.post(request())
    plain = LocalLedger(tmp_path / "ledger.sqlite", KEYRING)
    with pytest.raises(ChannelError, match="seq 1: unknown sender 'dave'"):
        plain.history(0)


def test_outsider_names_and_keys_are_bounded() -> None:
    keys = OutsiderKeys(
        OutsiderPolicy(introduction=introduction_reader(SESSION), max_outsiders=1, max_keys_each=1)
    )
    assert keys.judge(request()).key == DAVE.public
    assert keys.judge(request()).key == DAVE.public  # the same introduction again: idempotent
    eve = IdentityKey.from_seed(b"f" * 32)
    assert "too many keys" in keys.check(request("dave", eve, eve)).reason
    assert "too many outsiders" in keys.check(request("erin", eve, eve)).reason


# -- the Hydra view: the same rules on confirmed transactions ------------------------------


def outsider_tx(envelope: SignedEnvelope, owner: IdentityKey, ref: int) -> TxEnvelope:
    spend = UtxoOut(f"{ref:064x}#0", address_of(owner.public), 2_000_000, (), True)
    return build_message_tx(owner, spend, envelope, FeeRule())


def test_the_hydra_view_carries_a_newcomer_and_drops_forgeries_with_reasons() -> None:
    view = HeadView(KEYRING, outsiders=POLICY)
    view.apply(HeadIsOpen("HeadIsOpen", 0, 0.0, HEAD, ()))
    view.apply(greetings())
    view.apply(
        snapshot(
            1,
            outsider_tx(request(signer=EVE), EVE, 1),  # forged: not signed by the key it carries
            outsider_tx(request(), DAVE, 2),
            outsider_tx(vote(), DAVE, 3),
            outsider_tx(vote(), EVE, 4),  # dave's message in a transaction eve witnessed
        )
    )
    assert [(e.seq, e.envelope.sender) for e in view.entries()] == [(1, "dave"), (2, "dave")]
    log = view.log
    assert log is not None and log.head_id == HEAD
    reasons = [r.reason for r in log.rejected]
    assert reasons == [NOT_SELF_SIGNED, "transaction not witnessed by dave's key"]


def test_the_hydra_view_without_a_policy_drops_an_outsider_as_unknown() -> None:
    view = opened_view()
    view.apply(snapshot(1, outsider_tx(request(), DAVE, 1)))
    assert view.entries() == []
    assert view.log is not None and view.log.rejected[0].reason == "unknown sender 'dave'"


def test_a_newcomer_posts_through_a_members_hydra_node_and_readers_with_the_policy_see_it() -> None:
    """Over the hydra-node double: dave, funded in the head but no head party, posts his
    request and a message through alice's node; bob's reader with the policy reads both, a
    reader without it drops them as from an unknown sender."""
    from tests.hydra_double.fixtures import funds, open_head
    from zkadapt.channel.hydra import HydraChannel

    money = funds({**KEYS, "dave": DAVE})
    with open_head(KEYS, KEYRING, initial_utxo=money) as (double, channels):
        common = {"confirm_timeout_s": 10, "connect_timeout_s": 10, "outsiders": POLICY}
        dave = HydraChannel(KEYRING, api=double.api("alice"), identity=DAVE, name="dave", **common)
        reader = HydraChannel(KEYRING, api=double.api("bob"), **common)
        try:
            assert dave.post(request()).seq == 1
            assert dave.post(vote()).seq == 2
            with pytest.raises(ChannelError, match="bad signature"):
                dave.post(vote(signer=EVE))
            reader.wait(1, 10)
            seen = reader.history(0)
            assert [(e.seq, e.envelope.sender) for e in seen] == [(1, "dave"), (2, "dave")]
            plain = channels["carol"]
            plain.wait(0, 1)
            assert plain.history() == []
            assert [r.reason for r in plain.rejected][:1] == ["unknown sender 'dave'"]
        finally:
            dave.close()
            reader.close()
