"""A party's escrow steps around the rounds (:mod:`zkadapt.operator.party_escrow`), on the
local channel and the layer-1 ledger double (in process, no training): what a restart finds,
how a bad or missing lock stops the session before round 1, one vote per silent party, and
a settlement that no single absent party blocks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uplc")

from click.testing import CliRunner
from pycardano import TransactionBuilder, TransactionOutput

from tests.layer1_double.context import LedgerContext
from tests.layer1_double.ledger import Ledger
from zkadapt.assembly import open_session_channel
from zkadapt.channel.base import SignedEnvelope
from zkadapt.cli import cli
from zkadapt.config import SessionConfig, load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.escrow.messages import EscrowDeposit
from zkadapt.escrow.rules import EscrowView
from zkadapt.operator.escrow_layer1 import layer1_terms, load_payment_key, session_locks
from zkadapt.operator.party_escrow import (
    EscrowOutcome,
    EscrowRefused,
    EscrowTimes,
    PartyEscrow,
    escrow_line,
    session_escrow,
)

NAMES = ("alice", "bob", "carol")
FUNDS = 100_000_000
DEPOSIT = 10_000_000
FAST = EscrowTimes(deposits_s=5.0, votes_s=5.0, grace_s=1.0, poll_s=0.1)


class World:
    """A 3-party session file whose escrow is on the ledger double, and its local ledger."""

    def __init__(self, root: Path) -> None:
        result = CliRunner().invoke(cli, ["init", str(root), "--parties", "3"])
        assert result.exit_code == 0, result.output
        self.root = root
        self.ledger = Ledger("preprod")
        path = root / "session.toml"
        deadline = self.ledger.slot_to_posix_ms(self.ledger.slot) // 1000 + 3600
        text = path.read_text().replace("rounds = 5", "rounds = 2", 1)
        text += '\n[cardano]\nnetwork = "preprod"\nconfirm_timeout_s = 5.0\n'
        text = text.replace("[escrow]", f"[escrow]\ndeadline = {deadline}", 1)
        path.write_text(text)
        self.config: SessionConfig = load_config(path)
        self.terms = layer1_terms(self.config)
        self.lines: dict[str, list[str]] = {n: [] for n in NAMES}
        for name in NAMES:
            self.ledger.fund(self.key(name).address, FUNDS)

    def identity(self, name: str) -> IdentityKey:
        return IdentityKey.load(self.root / "keys" / f"{name}.skey")

    def key(self, name: str) -> Any:
        return load_payment_key(self.config, name, self.root)

    def escrow(self, name: str, times: EscrowTimes = FAST) -> PartyEscrow:
        """``name``'s escrow steps, as its party process makes them (a fresh one per call)."""
        return PartyEscrow(
            self.config,
            name,
            channel=open_session_channel(
                self.config, self.root, party=name, identity=self.identity(name)
            ),
            identity=self.identity(name),
            context=LedgerContext(self.ledger),
            key=self.key(name),
            say=self.lines[name].append,
            times=times,
        )

    def post(self, name: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body, sort_keys=True).encode()
        channel = open_session_channel(self.config, self.root, party=name)
        try:
            channel.post(SignedEnvelope(name, payload, self.identity(name).sign(payload)))
        finally:
            channel.close()

    def signal(self, name: str, round_: int) -> None:
        """``name``'s ``RoundDone`` for ``round_`` (what the round protocol posts)."""
        session = self.config.session_id
        body = {"type": "RoundDone", "v": 1, "session": session, "round": round_, "party": name}
        self.post(name, body)

    def view(self) -> EscrowView:
        channel = open_session_channel(self.config, self.root)
        try:
            return EscrowView.from_entries(channel.history(0), self.terms)
        finally:
            channel.close()

    def locks_at_script(self) -> int:
        return len(self.ledger.utxos_at(session_locks(self.config).address))

    def balance(self, name: str) -> int:
        return self.ledger.balance(self.key(name).address)

    def fees(self, name: str) -> int:
        """Fees of the transactions ``name``'s payment key signed (it paid them)."""
        vkey = self.key(name).signing_key.to_verification_key().payload
        return sum(
            tx.transaction_body.fee
            for tx in self.ledger.applied.values()
            if any(w.vkey.payload == vkey for w in tx.transaction_witness_set.vkey_witnesses or ())
        )


def together(*steps: Callable[[], Any]) -> list[Any]:
    """Run ``steps`` in threads (parties on their own machines); their results or errors."""
    results: list[Any] = [None] * len(steps)

    def run(i: int) -> None:
        try:
            results[i] = steps[i]()
        except Exception as exc:  # the test inspects it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(steps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture()
def world(tmp_path: Path) -> World:
    return World(tmp_path / "s")


def started(world: World) -> None:
    results = together(*(world.escrow(n).start for n in NAMES))
    assert results == [None, None, None], results


def test_each_party_locks_once_and_checks_the_others_even_across_restarts(world: World) -> None:
    started(world)
    view = world.view()
    assert sorted(view.deposits.items()) == [(n, DEPOSIT) for n in NAMES]
    assert world.locks_at_script() == 3
    for name in NAMES:
        others = [n for n in NAMES if n != name]
        assert world.lines[name][0] == f"locked 10 ADA at {view.refs[name]}"
        for other in others:
            assert f"checked {other}'s lock at {view.refs[other]}" in world.lines[name]
    applied = len(world.ledger.applied)

    world.escrow("alice").start()  # a restart: nothing locked or posted twice
    assert len(world.ledger.applied) == applied and world.locks_at_script() == 3
    assert f"deposit already posted (lock {view.refs['alice']})" in world.lines["alice"]
    assert len(world.view().deposits) == 3


def test_a_lock_made_before_a_crash_is_found_and_posted_not_made_again(world: World) -> None:
    from zkadapt.operator.escrow_layer1 import lock_deposit

    ref = lock_deposit(world.config, LedgerContext(world.ledger), world.key("alice"))
    results = together(*(world.escrow(n).start for n in NAMES))
    assert results == [None, None, None]
    assert world.locks_at_script() == 3
    assert world.view().refs["alice"] == ref
    assert f"found its lock at {ref} (made before a restart)" in world.lines["alice"]


def test_a_lock_that_is_not_the_agreed_one_stops_every_party_before_round_1(
    world: World,
) -> None:
    """carol posts a deposit whose ref is a plain payment to her own address."""
    context = LedgerContext(world.ledger)
    carol = world.key("carol")
    builder = TransactionBuilder(context)
    builder.add_input_address(carol.address)
    builder.add_output(TransactionOutput(carol.address, DEPOSIT))
    tx = builder.build_and_sign([carol.signing_key], change_address=carol.address)
    context.submit_tx(tx)
    fake = f"{tx.transaction_body.id}#0"
    session = world.config.session_id
    world.post("carol", EscrowDeposit(session, 0, "carol", DEPOSIT, fake).to_bytes())

    results = together(world.escrow("alice").start, world.escrow("bob").start)
    for result in results:
        assert isinstance(result, EscrowRefused), result
        assert result.exit_code == 2
        assert "carol's lock" in str(result) and "is not at the session's script address" in str(
            result
        )
        assert str(result).endswith("the session does not start")


def test_a_missing_deposit_stops_the_session_after_the_wait(world: World) -> None:
    short = EscrowTimes(deposits_s=0.5, votes_s=1, grace_s=1, poll_s=0.1)
    results = together(world.escrow("alice", short).start, world.escrow("bob", short).start)
    for result in results:
        assert isinstance(result, EscrowRefused), result
        assert "no EscrowDeposit from carol within 0.5 s: the session does not start" in str(result)


def test_a_lock_not_in_the_utxo_yet_is_asked_for_until_the_wait_ends(world: World) -> None:
    """A lagging node may not show a fresh lock yet: carol posts her ref before her lock
    reaches the ledger; the others ask again and accept it when it shows."""
    from zkadapt.escrow.txs import build_lock, ref_text

    context, carol = LedgerContext(world.ledger), world.key("carol")
    tx, ref = build_lock(context, session_locks(world.config), "carol", carol.address,
                         carol.signing_key)  # fmt: skip
    session = world.config.session_id
    world.post("carol", EscrowDeposit(session, 0, "carol", DEPOSIT, ref_text(ref)).to_bytes())
    late = threading.Timer(1.5, context.submit_tx, args=(tx,))
    late.start()
    results = together(world.escrow("alice").start, world.escrow("bob").start)
    late.join()
    assert results == [None, None], results
    assert f"checked carol's lock at {ref_text(ref)}" in world.lines["alice"]


def test_a_lock_never_in_the_utxo_is_refused_when_the_wait_ends(world: World) -> None:
    session = world.config.session_id
    ghost = "00" * 32 + "#0"
    world.post("carol", EscrowDeposit(session, 0, "carol", DEPOSIT, ghost).to_bytes())
    short = EscrowTimes(deposits_s=1.0, votes_s=1, grace_s=1, poll_s=0.1)
    results = together(world.escrow("alice", short).start, world.escrow("bob", short).start)
    for result in results:
        assert isinstance(result, EscrowRefused), result
        assert "carol's lock 0000000000000000…#0 is not in the UTxO" in str(result)


def test_a_silent_party_gets_one_signed_vote_from_each_other(world: World) -> None:
    started(world)
    for name in NAMES:
        world.signal(name, 1)
    alice = world.escrow("alice")
    alice.after_round(1)
    assert not [line for line in world.lines["alice"] if "voted" in line]  # nobody silent
    for name in ("alice", "bob"):
        world.signal(name, 2)
    alice.after_round(2)
    alice.after_round(2)  # once only
    world.escrow("alice").after_round(2)  # also after a restart: the channel has its vote
    assert world.lines["alice"].count("voted to slash carol (silent since round 2)") == 1
    view = world.view()
    assert view.vote_order == [("alice", "carol")]
    assert view.kill_evidence[("alice", "carol")].round == 2


def _finish(world: World, *names: str, times: EscrowTimes = FAST) -> list[Any]:
    return together(*(world.escrow(n, times).finish for n in names))


def test_an_absent_first_settler_does_not_block_the_settlement(world: World) -> None:
    """alice released the others after the last round, then went away: bob (second in
    line) settles after one grace period, carol sees it done on layer 1."""
    started(world)
    for r in (1, 2):
        for name in NAMES:
            world.signal(name, r)
    from zkadapt.operator.escrow_layer1 import release_votes

    for vote in release_votes(world.config, world.key("alice"), ("bob", "carol")):
        world.post("alice", vote.to_bytes())

    bob, carol = _finish(world, "bob", "carol")

    assert isinstance(bob, EscrowOutcome) and isinstance(carol, EscrowOutcome), (bob, carol)
    assert bob.settled_by == "bob" and len(bob.settled_in) == 1
    assert carol.settled_by == "another party" and carol.settled_in == []
    assert bob.payouts == dict.fromkeys(NAMES, DEPOSIT) and bob.unsettled == {}
    assert world.locks_at_script() == 0
    for name in NAMES:  # every deposit came back; each paid its own fees (bob the settlement)
        assert world.balance(name) == FUNDS - world.fees(name), name
    assert world.fees("bob") > world.fees("carol") == world.fees("alice") > 0
    assert "settled: alice 10 ADA, bob 10 ADA, carol 10 ADA" in world.lines["bob"][-1]
    assert world.lines["carol"][-1] == "settled on layer 1: alice 10 ADA, bob 10 ADA, carol 10 ADA"


def test_locks_whose_votes_stay_short_are_left_for_the_refund(world: World) -> None:
    """alice vanished after the last round without releasing anyone: with three parties
    each lock needs both others' release votes, so only alice's own lock can be released;
    bob's and carol's stay locked for the refund after the deadline."""
    started(world)
    for r in (1, 2):
        for name in NAMES:
            world.signal(name, r)
    short = EscrowTimes(deposits_s=1, votes_s=1.0, grace_s=0.5, poll_s=0.1)

    bob, carol = _finish(world, "bob", "carol", times=short)

    assert isinstance(bob, EscrowOutcome), bob
    assert bob.settled_by == "bob" and set(bob.unsettled) == {"bob", "carol"}
    assert "needs signed release votes" in bob.unsettled["bob"]
    assert world.balance("alice") == FUNDS - world.fees("alice")  # her lock came back
    assert world.locks_at_script() == 2
    assert any(
        line.startswith("carol's lock is left for the refund after the deadline")
        for line in world.lines["bob"]
    )
    assert isinstance(carol, EscrowOutcome) and set(carol.unsettled) == {"bob", "carol"}


def test_the_runner_reports_the_settlers_account() -> None:
    settler = {
        "lock": "aa#0",
        "status": "slashed",
        "slashed": ["carol"],
        "payouts": {"alice": 15_000_000, "bob": 15_000_000, "carol": 0},
        "settled_in": ["ab" * 32],
        "settled_by": "alice",
        "unsettled": {},
    }
    other = {**settler, "lock": "bb#0", "settled_in": [], "settled_by": "another party"}
    account = session_escrow({"alice": {"escrow": settler}, "bob": {"escrow": other}, "x": 3})
    assert account is not None
    assert account["settled_by"] == "alice" and account["locks"] == {"alice": "aa#0", "bob": "bb#0"}
    assert escrow_line(account) == (
        f"escrow: settled on layer 1 by alice in {'ab' * 8}: alice 15 ADA, bob 15 ADA, "
        "carol 0 ADA (slashed)"
    )
    assert session_escrow({"alice": {"party": "alice"}}) is None
