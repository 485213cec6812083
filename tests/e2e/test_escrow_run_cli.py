"""The escrow's steps during a session, through the CLI as a user runs it (docs/escrow.md,
"During a run"): a 3-party MNIST session over a Hydra head (the hydra-node double) whose
escrow is on layer 1 (the Ogmios v6 double over the layer-1 ledger double, every message
schema-checked, every transaction validated and its scripts run with uplc).

Both doubles share one layer-1 ledger (:class:`tests.layer1_double.hydra.HydraLayer1`): the
head is funded from it (5 ADA per party, which stay in the head: these tests do not fan out;
tests/e2e/test_layer1_story_cli.py does), and the escrow's locks and settlement go through
Ogmios to it (the identity key is the payment key).

* an honest run (``zkadapt run``): every party locks, checks the others, releases them after
  the last round; one settles; every deposit comes back (balance = start - head funds - own
  fees);
* a party that crashes for good after round 1 (``zkadapt party`` per party): the others vote
  it out as silent, release each other and settle; the balances are the rules' payouts
  minus each party's own fees.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from pycardano import Address, Network, VerificationKeyHash

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt
from tests.hydra_double import HydraDouble
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.channel.hydra import HydraChannel
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.escrow.rules import payouts
from zkadapt.keyfiles import keyring_of

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
FUNDS = 100_000_000
DEPOSIT = 10_000_000
#: What each party moves into the head before it posts (channel.hydra.deposit_lovelace).
HEAD_FUNDS = 5_000_000


class EscrowSession:
    """A 3-party MNIST session file with ``[cardano]`` on the Ogmios double and a deadline."""

    def __init__(
        self, root: Path, ledger: Ledger, ogmios_url: str, rounds: int, submit_s: float
    ) -> None:
        zkadapt("init", "sess", "--example", "mnist", cwd=root)
        self.root, self.ledger = root, ledger
        self.file = root / "sess" / "session.toml"
        deadline = ledger.slot_to_posix_ms(ledger.slot) // 1000 + 3600
        edit_session(
            self.file,
            data=SMALL,
            session={"rounds": rounds},
            protocol={"submit_timeout_s": submit_s},
            escrow={"deposit_lovelace": DEPOSIT, "deadline": deadline},
            cardano={"network": "preprod", "url": ogmios_url, "confirm_timeout_s": 5.0},
        )
        self.keys = {n: IdentityKey.load(root / "sess" / "keys" / f"{n}.skey") for n in NAMES}
        for name in NAMES:
            ledger.fund(self.address(name), FUNDS)

    def _raw(self, name: str) -> bytes:
        return bytes.fromhex(self.keys[name].public.hex)

    def address(self, name: str) -> Address:
        pkh = hashlib.blake2b(self._raw(name), digest_size=28).digest()
        return Address(payment_part=VerificationKeyHash(pkh), network=Network.TESTNET)

    def fees(self, name: str) -> int:
        """Fees of the layer-1 transactions ``name``'s payment key signed (it paid them)."""
        mine = self._raw(name)
        return sum(
            tx.transaction_body.fee
            for tx in self.ledger.applied.values()
            if any(w.vkey.payload == mine for w in tx.transaction_witness_set.vkey_witnesses or ())
        )

    def balance(self, name: str) -> int:
        return self.ledger.balance(self.address(name))

    def on_hydra(self, double: HydraDouble) -> None:
        """Point the session at the double's nodes; open its head (it opens empty)."""
        control = HydraChannel(keyring_of(load_config(self.file)), api=double.api("alice"))
        control.init_head(timeout=10)
        control.close()
        nodes = {n: double.api(n) for n in NAMES}  # funded from layer 1 through [cardano]
        edit_session(self.file, channel={"backend": "hydra", "hydra": {"nodes": nodes}})


@contextmanager
def doubles(
    tmp_path: Path, rounds: int = 2, submit_s: float = 20
) -> Iterator[tuple[EscrowSession, HydraDouble]]:
    ledger = Ledger("preprod")
    with OgmiosDouble(ledger) as ogmios:
        session = EscrowSession(tmp_path, ledger, ogmios.url, rounds, submit_s)
        double = HydraDouble(list(NAMES), layer1=HydraLayer1(ledger)).start()
        try:
            session.on_hydra(double)
            yield session, double
        finally:
            double.stop()
        assert ogmios.violations == []
        assert double.violations == []


def test_an_honest_run_locks_releases_and_returns_every_deposit(tmp_path: Path) -> None:
    with doubles(tmp_path, rounds=2) as (session, _):
        ran = zkadapt("run", str(session.file), "--out", "out", "--no-baselines", cwd=tmp_path)
        out = tmp_path / "out"
        logs = {n: (out / "parties" / n / "party.log").read_text() for n in NAMES}
        report = json.loads((out / "report.json").read_text())
        for name in NAMES:
            assert session.balance(name) == FUNDS - HEAD_FUNDS - session.fees(name), name

    assert report["completed"] is True
    escrow = report["escrow"]
    assert escrow["status"] == "completed" and escrow["slashed"] == []
    assert escrow["payouts"] == dict.fromkeys(NAMES, DEPOSIT)
    assert escrow["settled_by"] == "alice" and len(escrow["settled_in"]) == 1
    assert escrow["unsettled"] == {}
    assert "escrow: settled on layer 1 by alice in " in ran.stderr
    assert "alice 10 ADA, bob 10 ADA, carol 10 ADA" in ran.stderr
    for name in NAMES:
        others = [n for n in NAMES if n != name]
        log = logs[name]
        assert f"{name} escrow: locked 10 ADA at {escrow['locks'][name]}" in log
        for other in others:
            assert f"{name} escrow: checked {other}'s lock at {escrow['locks'][other]}" in log
        assert f"{name} escrow: released {', '.join(others)}" in log
        assert "voted to slash" not in log
    assert session.fees("alice") > session.fees("bob") == session.fees("carol") > 0


CRASHER = """
import os, sys
import zkadapt.protocol.round as round_module
from zkadapt.cli import main

announce = round_module.RoundProtocol._announce

def crash_after_round_1(self, r, *args, **kwargs):
    announce(self, r, *args, **kwargs)
    if r == 1:
        os._exit(9)  # gone for good: no restart, no further message

round_module.RoundProtocol._announce = crash_after_round_1
sys.argv = ["zkadapt", *sys.argv[1:]]
main()
"""


# slow (~30 s): the default run has the same crash, votes and settlement on one ledger under
# `zkadapt run` (test_layer1_story_cli.py) and `zkadapt party` per party (test_close_slash_cli.py)
@pytest.mark.slow
def test_a_party_that_crashes_for_good_is_voted_out_and_the_others_settle(
    tmp_path: Path,
) -> None:
    with doubles(tmp_path, submit_s=12) as (session, _):  # round 2 waits out carol
        for name in NAMES:  # each party funds the head before it posts (it opens empty)
            zkadapt("head", "deposit", str(session.file), "--party", name,
                    "--lovelace", str(HEAD_FUNDS), cwd=tmp_path)  # fmt: skip
        out = tmp_path / "out"
        out.mkdir()
        procs = {}
        for name in ("alice", "bob"):
            procs[name] = spawn_party(session.file, name, out, tmp_path / f"{name}.log")
        carol_log = (tmp_path / "carol.log").open("wb")
        procs["carol"] = subprocess.Popen(
            [sys.executable, "-c", CRASHER, "party", str(session.file), "--party", "carol",
             "--out", str(out), "--quiet"],
            stdout=carol_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        codes = {n: p.wait(timeout=240) for n, p in procs.items()}
        carol_log.close()
        logs = {n: (tmp_path / f"{n}.log").read_text() for n in NAMES}
        balances = {n: session.balance(n) for n in NAMES}
        fees = {n: session.fees(n) for n in NAMES}
        results = {
            n: json.loads((out / "parties" / n / "result.json").read_text())
            for n in ("alice", "bob")
        }

    assert codes == {"alice": 0, "bob": 0, "carol": 9}, logs
    paid = payouts(NAMES, ("carol",), DEPOSIT)
    assert paid == {"alice": 15_000_000, "bob": 15_000_000, "carol": 0}
    for name in NAMES:
        assert balances[name] == FUNDS - HEAD_FUNDS - DEPOSIT + paid[name] - fees[name], name
    for voter in ("alice", "bob"):
        assert f"{voter} escrow: voted to slash carol (silent since round 2)" in logs[voter]
        assert f"{voter} escrow: released {'bob' if voter == 'alice' else 'alice'}" in logs[voter]
    assert "escrow: settled: alice 15 ADA, bob 15 ADA, carol 0 ADA (slashed)" in logs["alice"]
    assert "escrow: settled on layer 1: alice 15 ADA" in logs["bob"]
    assert results["alice"]["escrow"]["settled_by"] == "alice"
    assert results["bob"]["escrow"]["settled_by"] == "another party"
    assert results["bob"]["escrow"]["slashed"] == ["carol"]
    assert fees["carol"] > 0 and fees["bob"] < fees["alice"]  # carol locked; alice settled
