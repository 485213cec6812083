"""Issue 19's whole story through the CLI, over the project's doubles sharing ONE layer 1.

One layer-1 ledger double (:class:`tests.layer1_double.ledger.Ledger`) is behind both the
Ogmios v6 double (the session's ``[cardano]`` chain context: deposits, escrow locks,
settlement) and the hydra-node double (:class:`tests.layer1_double.hydra.HydraLayer1`: the
node drafts deposits from it, takes them in with an increment that spends them into the
head's output, and its fanout spends that output and pays the head's UTxO back). So every
lovelace a party starts with is accounted for on one ledger, and every transaction either
passed the ledger's rules (signed by a party, with fees and scripts run with uplc) or is one
of the head's own (increment, fanout: value conserved, no fee).

The steps a user takes (docs/hydra.md, docs/escrow.md):

1. ``zkadapt head init`` (the head opens empty, as a hydra 2.x head does);
2. ``zkadapt run``: it deposits ``channel.hydra.deposit_lovelace`` for every party from
   layer 1, then each party locks its escrow deposit on layer 1, checks the others', and
   runs the rounds; carol crashes for good after round 1 (``--max-restarts 0``), alice and
   bob vote her out, release each other, and alice settles on layer 1;
3. ``zkadapt head close`` and ``zkadapt head fanout`` with ``--out``: the head's funds come
   back to layer 1; the nodes then shut down;
4. ``zkadapt audit``: reads the finished session from the persisted copies and passes.

The honest variant (nobody crashes) is marked ``slow``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from pycardano import ScriptHash, TransactionInput

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.test_escrow_run_cli import DEPOSIT, FUNDS, NAMES, EscrowSession
from tests.hydra_double import HydraDouble
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.escrow.rules import payouts

pytestmark = pytest.mark.e2e

#: What ``zkadapt run`` deposits into the head for each party (the setting's default).
HEAD_DEPOSIT = 5_000_000

#: ``zkadapt run`` with carol's party process gone for good right after its round-1
#: ``RoundDone`` (the runner forks each party from itself, so the patch reaches carol).
RUN_WITH_CAROL_CRASHING = """
import os, sys
import zkadapt.protocol.round as round_module
from zkadapt.cli import main

announce = round_module.RoundProtocol._announce

def crash_after_round_1(self, r, *args, **kwargs):
    announce(self, r, *args, **kwargs)
    if r == 1 and self.ctx.party == "carol":
        os._exit(9)  # gone for good: no further message

round_module.RoundProtocol._announce = crash_after_round_1
sys.argv = ["zkadapt", *sys.argv[1:]]
main()
"""


class Story:
    """The session, the one ledger, and the head's layer 1 on it."""

    def __init__(self, session: EscrowSession, double: HydraDouble, layer1: HydraLayer1) -> None:
        self.session, self.double, self.layer1 = session, double, layer1
        self.ledger = session.ledger
        self.faucet = {n: next(iter(self.ledger.utxos_at(session.address(n)))) for n in NAMES}

    @property
    def file(self) -> str:
        return str(self.session.file)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return zkadapt(*args, cwd=self.session.root, check=check)

    def balances(self) -> dict[str, int]:
        return {n: self.session.balance(n) for n in NAMES}

    def fees(self) -> dict[str, int]:
        return {n: self.session.fees(n) for n in NAMES}

    def close_and_fan_out(self) -> None:
        for step in ("close", "fanout"):
            self.cli("head", step, self.file, "--out", "out", "--timeout", "20")


@contextmanager
def story(tmp_path: Path, submit_s: float) -> Iterator[Story]:
    ledger = Ledger("preprod")
    with OgmiosDouble(ledger) as ogmios:
        session = EscrowSession(tmp_path, ledger, ogmios.url, rounds=2, submit_s=submit_s)
        layer1 = HydraLayer1(ledger)
        double = HydraDouble(list(NAMES), layer1=layer1).start()
        try:
            hydra = {
                "nodes": {n: double.api(n) for n in NAMES},
                "connect_timeout_s": 3.0,  # the audit gives up on the stopped nodes quickly
            }
            edit_session(session.file, channel={"backend": "hydra", "hydra": hydra})
            yield Story(session, double, layer1)
        finally:
            double.stop()
        assert ogmios.violations == [] and double.violations == []
        assert {"queryLedgerState/utxo", "submitTransaction"} <= set(ogmios.requests)


def _spent_by(ledger: Ledger, tx_id: str, index: int = 0) -> str | None:
    return ledger.spent.get(TransactionInput.from_primitive([tx_id, index]))


def _head_went_through_layer1(s: Story) -> None:
    """Every party's faucet output was spent by its deposit, each deposit by an increment
    into the head's one output, and that by the fanout, which paid each party's head funds
    back to its address as a new output."""
    ledger, layer1 = s.ledger, s.layer1
    deposits = {n: ledger.spent[s.faucet[n]] for n in NAMES}  # KeyError: never spent
    assert len(set(deposits.values())) == 3
    assert len(layer1.increments) == 3
    assert {_spent_by(ledger, d) for d in deposits.values()} == set(layer1.increments)
    (fanout,) = layer1.fanouts
    chain = [*layer1.increments, fanout]  # each increment spends the head's last output
    assert [_spent_by(ledger, tx) for tx in chain[:-1]] == chain[1:]
    assert ledger.balance(layer1.head_address) == 0 and layer1.head_output is None
    paid = ledger.applied[fanout].transaction_body.outputs
    assert sorted(o.amount.coin for o in paid) == [HEAD_DEPOSIT] * 3
    assert {str(o.address) for o in paid} == {str(s.session.address(n)) for n in NAMES}
    for name in NAMES:  # the fanout's outputs are still there, at the parties' addresses
        mine = [
            r for r in ledger.utxos_at(s.session.address(name)) if str(r.transaction_id) == fanout
        ]
        assert len(mine) == 1, name


def _ref(text: str) -> TransactionInput:
    tx_id, _, index = text.partition("#")
    return TransactionInput.from_primitive([tx_id, int(index)])


def _lock_of(s: Story, name: str) -> TransactionInput:
    """``name``'s escrow lock: an output at a script address of a transaction it signed
    that no increment spent (its head deposit's output is at a script address too)."""
    raw = bytes.fromhex(s.session.keys[name].public.hex)
    for tx_id, tx in s.ledger.applied.items():
        witnesses = tx.transaction_witness_set.vkey_witnesses or ()
        if not any(w.vkey.payload == raw for w in witnesses):
            continue
        for index, out in enumerate(tx.transaction_body.outputs):
            script = isinstance(out.address.payment_part, ScriptHash)
            if script and _spent_by(s.ledger, tx_id, index) not in s.layer1.increments:
                return TransactionInput.from_primitive([tx_id, index])
    raise AssertionError(f"no escrow lock signed by {name}")


def _nothing_locked(ledger: Ledger) -> None:
    """No output is left at a script address: deposits, the head's output and every escrow
    lock were spent."""
    left = [o for o in ledger.utxo.values() if isinstance(o.address.payment_part, ScriptHash)]
    assert left == []


def _audited(s: Story) -> str:
    s.double.stop()  # the session's nodes are gone: the audit reads the persisted copies
    audit = s.cli("audit", s.file, "--out", "out")
    assert "audit: PASSED" in audit.stdout
    assert "rounds: 2 of 2 planned completed" in audit.stdout
    assert "read from the persisted copy" in audit.stdout
    return audit.stdout


def test_a_funded_head_a_crash_the_votes_the_fanout_and_the_settlement_on_one_ledger(
    tmp_path: Path,
) -> None:
    with story(tmp_path, submit_s=12) as s:  # round 2 waits out carol
        s.cli("head", "init", s.file)
        assert s.ledger.balance(s.layer1.head_address) == 0  # it opens empty
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ZKADAPT_PARTY_START", None)  # forked parties: carol gets the crash
        ran = subprocess.run(
            [sys.executable, "-c", RUN_WITH_CAROL_CRASHING, "run", s.file, "--out", "out",
             "--no-baselines", "--max-restarts", "0"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out = tmp_path / "out"
        report = json.loads((out / "report.json").read_text())
        logs = {n: (out / "parties" / n / "party.log").read_text() for n in NAMES}
        in_head = s.balances()  # settled on layer 1; the head's funds not back yet
        s.close_and_fan_out()
        after, fees = s.balances(), s.fees()
        _head_went_through_layer1(s)
        _nothing_locked(s.ledger)
        settlement = {s.ledger.spent.get(_ref(r)) for r in report["escrow"]["locks"].values()}
        carols_lock = _lock_of(s, "carol")
        audit = _audited(s)

    assert ran.returncode == 1, ran.stderr[-3000:]  # the others finished; carol did not
    assert "carol did not finish" in ran.stderr
    assert "deposited 5,000,000 lovelace into the head" in ran.stderr
    assert report["completed"] is True and set(report["failed_parties"]) == {"carol"}
    paid = payouts(NAMES, ("carol",), DEPOSIT)
    assert paid == {"alice": 15_000_000, "bob": 15_000_000, "carol": 0}
    escrow = report["escrow"]
    assert escrow["slashed"] == ["carol"] and escrow["payouts"] == paid
    assert escrow["settled_by"] == "alice" and escrow["unsettled"] == {}
    assert settlement == set(escrow["settled_in"])  # every lock spent by the settlement ...
    assert s.ledger.spent[carols_lock] in settlement  # ... carol's too (her deposit split)
    for voter in ("alice", "bob"):
        assert f"{voter} escrow: voted to slash carol (silent since round 2)" in logs[voter]
    for name in NAMES:  # the rules' payouts minus the party's own fees; head funds back
        assert after[name] == FUNDS - DEPOSIT + paid[name] - fees[name], name
        assert in_head[name] == after[name] - HEAD_DEPOSIT, name
    assert fees["carol"] > 0 and fees["bob"] < fees["alice"]  # carol deposited and locked
    rounds = re.findall(r"^\s+(\d)\s+OK\s+(\S+)", audit, re.MULTILINE)
    assert rounds == [("1", "alice,bob,carol"), ("2", "alice,bob")]


@pytest.mark.slow
def test_an_honest_session_on_one_ledger_refunds_everyone_and_fans_out(tmp_path: Path) -> None:
    with story(tmp_path, submit_s=20) as s:
        s.cli("head", "init", s.file)
        s.cli("run", s.file, "--out", "out", "--no-baselines")
        report = json.loads((tmp_path / "out" / "report.json").read_text())
        in_head = s.balances()
        s.close_and_fan_out()
        after, fees = s.balances(), s.fees()
        _head_went_through_layer1(s)
        _nothing_locked(s.ledger)
        _audited(s)

    escrow = report["escrow"]
    assert escrow["status"] == "completed" and escrow["slashed"] == []
    assert escrow["payouts"] == dict.fromkeys(NAMES, DEPOSIT)
    for name in NAMES:  # every deposit back; the head's funds back after the fanout
        assert after[name] == FUNDS - fees[name], name
        assert in_head[name] == after[name] - HEAD_DEPOSIT, name
