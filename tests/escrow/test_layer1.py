"""The escrow's layer-1 transactions against the layer-1 ledger double (tests/layer1_double).

Each party locks its own deposit, the others check the lock, and the locks are settled as
the rules say: every transaction is built with PyCardano by :mod:`zkadapt.escrow.txs`,
serialized, and judged by the double (fees, balance, signatures, validity interval, min-ada,
collateral, and the escrow script run with uplc on the context derived from the transaction).
Balances on the double are compared with the rules' payouts, fees accounted for.
"""

from __future__ import annotations

import pytest

pytest.importorskip("uplc")

from pycardano import Address, TransactionOutput

from tests.escrow.helpers import DEPOSIT, NAMES
from tests.escrow.locks import PAYMENT_KEYS, SESSION_ID, key_hash, release_vote, vote
from tests.layer1_double.context import LedgerContext
from tests.layer1_double.ledger import Ledger
from zkadapt.cardano.errors import TransactionRejected
from zkadapt.escrow.onchain import redeemer_for, release
from zkadapt.escrow.rules import COMPLETED, SLASHED, Settlement, lock_payouts, payouts
from zkadapt.escrow.txs import (
    LockInvalid,
    SessionLocks,
    SettlementRefused,
    Spend,
    build_lock,
    build_refund,
    build_settlement,
    check_lock,
    ref_text,
)

FUNDS = 100_000_000
HOUR_MS = 3_600_000


class World:
    """A ledger double with three funded parties and the session's lock terms."""

    def __init__(self, names: tuple[str, ...] = NAMES) -> None:
        self.names = names
        self.ledger = Ledger("preprod")
        self.ledger.set_slot(self.ledger.slot)  # time stands still unless a test moves it
        self.context = LedgerContext(self.ledger)
        now_ms = self.ledger.slot_to_posix_ms(self.ledger.slot)
        self.locks = SessionLocks(
            SESSION_ID,
            {n: key_hash(n) for n in names},
            DEPOSIT,
            3,
            now_ms + HOUR_MS,
            self.ledger.network,
        )
        for name in names:
            self.ledger.fund(self.address(name), FUNDS)
        self.fees = dict.fromkeys(names, 0)
        self.refs: dict[str, object] = {}

    def address(self, name: str) -> Address:
        return self.locks.key_address(name)

    def submit(self, tx, payer: str) -> str:
        tx_id = self.context.submit_tx(tx)
        self.fees[payer] += tx.transaction_body.fee
        return str(tx_id)

    def lock(self, name: str):
        tx, ref = build_lock(self.context, self.locks, name, self.address(name), PAYMENT_KEYS[name])
        self.submit(tx, name)
        self.refs[name] = ref
        return ref

    def utxo(self, name: str):
        return check_lock(self.context, self.locks, name, self.refs[name])

    def balance(self, name: str) -> int:
        return self.ledger.balance(self.address(name))


@pytest.fixture()
def world() -> World:
    w = World()
    for name in NAMES:
        w.lock(name)
    return w


def _spends(
    world: World, settlement: Settlement, kills=(), releases=(), owners=None
) -> list[Spend]:
    return [
        Spend(
            world.utxo(owner),
            owner,
            redeemer_for(settlement, owner, kills, releases),
            lock_payouts(settlement.depositors, settlement.slashed, DEPOSIT, owner),
        )
        for owner in owners or settlement.depositors
    ]


def test_each_party_locks_its_deposit_and_the_others_check_it(world: World) -> None:
    for name in NAMES:
        utxo = check_lock(world.context, world.locks, name, ref_text(world.refs[name]))
        assert utxo.output.amount == DEPOSIT or utxo.output.amount.coin == DEPOSIT
        assert world.balance(name) == FUNDS - DEPOSIT - world.fees[name]
    assert world.ledger.balance(world.locks.address) == 3 * DEPOSIT
    with pytest.raises(LockInvalid, match="another datum"):  # alice's lock is not bob's
        check_lock(world.context, world.locks, "bob", world.refs["alice"])


def test_a_lock_that_differs_from_the_agreement_does_not_count(world: World) -> None:
    """A lock naming keys its owner holds could be released by its owner alone."""
    from pycardano import RawPlutusData

    from zkadapt.escrow.onchain import lock_datum

    own = [key_hash("alice"), key_hash("mallory"), key_hash("carol")]
    rogue = lock_datum(own, 0, DEPOSIT, 3, world.locks.deadline_ms)
    ref = world.ledger.fund(world.locks.address, DEPOSIT, datum=RawPlutusData(rogue))
    with pytest.raises(LockInvalid, match="another datum"):
        check_lock(world.context, world.locks, "alice", ref)
    short = world.ledger.fund(
        world.locks.address, DEPOSIT - 1, datum=RawPlutusData(world.locks.datum("alice"))
    )
    with pytest.raises(LockInvalid, match="not 10000000"):
        check_lock(world.context, world.locks, "alice", short)
    elsewhere = world.ledger.fund(
        world.address("alice"), DEPOSIT, datum=RawPlutusData(world.locks.datum("alice"))
    )
    with pytest.raises(LockInvalid, match="script address"):
        check_lock(world.context, world.locks, "alice", elsewhere)
    with pytest.raises(LockInvalid, match="not an out-ref"):
        check_lock(world.context, world.locks, "alice", "nonsense#0")


def test_an_honest_session_releases_every_deposit(world: World) -> None:
    settlement = Settlement(COMPLETED, NAMES, (), payouts(NAMES, (), DEPOSIT), (), DEPOSIT)
    releases = [release_vote(v, t) for t in NAMES for v in NAMES if v != t]
    tx = build_settlement(
        world.context,
        world.locks,
        _spends(world, settlement, (), releases),
        world.address("bob"),
        PAYMENT_KEYS["bob"],
    )
    world.submit(tx, "bob")  # nobody but the submitter signs
    assert world.ledger.balance(world.locks.address) == 0
    for name in NAMES:
        assert world.balance(name) == FUNDS - world.fees[name]


def test_a_slashed_deposit_is_split_exactly_as_the_rules_say(world: World) -> None:
    """Carol slashed by alice and bob: balances equal the rules' payouts, fees aside."""
    paid = payouts(NAMES, ("carol",), DEPOSIT)
    settlement = Settlement(SLASHED, NAMES, ("carol",), paid, (), DEPOSIT)
    kills = [vote("alice", "carol"), vote("bob", "carol")]
    releases = [release_vote("alice", "bob"), release_vote("bob", "alice")]
    spends = _spends(world, settlement, kills, releases)
    tx = build_settlement(
        world.context, world.locks, spends, world.address("alice"), PAYMENT_KEYS["alice"]
    )
    world.submit(tx, "alice")
    assert world.ledger.balance(world.locks.address) == 0
    for name in NAMES:
        assert world.balance(name) == FUNDS - DEPOSIT + paid[name] - world.fees[name], name
    assert paid == {"alice": DEPOSIT + DEPOSIT // 2, "bob": DEPOSIT + DEPOSIT // 2, "carol": 0}


def test_refund_after_the_deadline_and_not_before(world: World) -> None:
    utxos = {n: world.utxo(n) for n in NAMES}
    payer, key = world.address("carol"), PAYMENT_KEYS["carol"]
    with pytest.raises(SettlementRefused, match="no refund before the deadline"):
        build_refund(world.context, world.locks, utxos, payer, key)
    world.ledger.advance(HOUR_MS / 1000)
    world.submit(build_refund(world.context, world.locks, utxos, payer, key), "carol")
    for name in NAMES:
        assert world.balance(name) == FUNDS - world.fees[name]


def test_taking_a_deposit_back_early_is_refused_here_and_by_the_ledger(world: World) -> None:
    """Alice refunds her own lock before the deadline: the local check names the
    contract's reason; built anyway and sent, the ledger's script run rejects it."""
    utxos = {"alice": world.utxo("alice")}
    payer, key = world.address("alice"), PAYMENT_KEYS["alice"]
    now = world.ledger.slot
    with pytest.raises(SettlementRefused, match="no refund before the deadline"):
        build_refund(world.context, world.locks, utxos, payer, key, start_slot=now)
    tx = build_refund(world.context, world.locks, utxos, payer, key, start_slot=now, check=False)
    with pytest.raises(TransactionRejected) as rejected:
        world.context.submit_tx(tx)
    assert rejected.value.code == 3136  # a script failed in phase 2
    assert world.utxo("alice")  # still locked
    # a release counting her own vote is refused the same way
    own = [release_vote("alice", "alice"), release_vote("bob", "alice")]
    self_release = release(
        (), [(0, own[0].vkey, own[0].signature), (1, own[1].vkey, own[1].signature)]
    )
    spend = Spend(utxos["alice"], "alice", self_release, {"alice": DEPOSIT})
    with pytest.raises(SettlementRefused, match="a party cannot release itself"):
        build_settlement(world.context, world.locks, [spend], payer, key)


def test_a_slash_after_the_deadline_is_refused(world: World) -> None:
    settlement = Settlement(
        SLASHED, NAMES, ("carol",), payouts(NAMES, ("carol",), DEPOSIT), (), DEPOSIT
    )
    kills = [vote("alice", "carol"), vote("bob", "carol")]
    releases = [release_vote("alice", "bob"), release_vote("bob", "alice")]
    spends = _spends(world, settlement, kills, releases, owners=["carol"])
    world.ledger.advance(HOUR_MS / 1000)
    with pytest.raises(SettlementRefused, match="deadline has passed"):
        build_settlement(
            world.context, world.locks, spends, world.address("alice"), PAYMENT_KEYS["alice"]
        )


def test_the_lock_output_is_what_a_node_would_accept() -> None:
    w = World()
    ref = w.lock("alice")
    output: TransactionOutput = w.ledger.utxos_at(w.locks.address)[ref]
    assert output.datum is not None and output.datum_hash is None  # inline


def test_five_parties_two_slashed_settle_in_two_transactions() -> None:
    """Five locks with two slashed need ~17.6 M memory units, over one transaction's 14 M:
    the builder says so, and two transactions settle them; balances equal the rules'."""
    from zkadapt.escrow.txs import TooManyLocks

    five = ("alice", "bob", "carol", "dave", "erin")
    world = World(five)
    for name in five:
        world.lock(name)
    lost = ("dave", "erin")
    paid = payouts(five, lost, DEPOSIT)
    settlement = Settlement(SLASHED, five, lost, paid, (), DEPOSIT)
    kills = [vote(v, t) for t in lost for v in ("alice", "bob", "carol")]
    remaining = ("alice", "bob", "carol")
    releases = [release_vote(v, t) for t in remaining for v in remaining if v != t]
    spends = _spends(world, settlement, kills, releases)
    payer, key = world.address("bob"), PAYMENT_KEYS["bob"]
    with pytest.raises(TooManyLocks):
        build_settlement(world.context, world.locks, spends, payer, key)
    for batch in (spends[:3], spends[3:]):
        world.submit(build_settlement(world.context, world.locks, batch, payer, key), "bob")
    assert world.ledger.balance(world.locks.address) == 0
    for name in five:
        assert world.balance(name) == FUNDS - DEPOSIT + paid[name] - world.fees[name], name
    assert paid["alice"] == DEPOSIT + 2 * 3_333_334  # the remainder lovelace of each lock
