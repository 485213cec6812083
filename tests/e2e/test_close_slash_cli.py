"""Slashing a premature close (issue 19; docs/escrow.md, "A premature close"): carol's node
closes the session's hydra head after round 1 of 3, and the escrow takes her deposit.

Each party runs ``zkadapt party`` in its own process (as users do), over the hydra double
whose layer 1 is the escrow's ledger double, served through the Ogmios double (every message,
chain-sync's included, checked against the v6 schema). Each node signs its layer-1
transactions with its party's payment key (the stated requirement). alice and bob meet the
closed head, find the close on layer 1 by chain-sync, name carol from its signatory, write
their ballots (a ``closed-early`` kill vote against carol and a release of each other) to the
store, and alice settles: balances are exactly ``rules.payouts`` minus each party's fees.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from pycardano import PaymentSigningKey

from tests.e2e.conftest import spawn_party, zkadapt
from tests.e2e.test_escrow_run_cli import DEPOSIT, FUNDS, HEAD_FUNDS, NAMES, EscrowSession
from tests.hydra_double import HydraDouble
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.config import load_config
from zkadapt.escrow.rules import payouts
from zkadapt.operator.escrow_layer1 import session_locks

pytestmark = pytest.mark.e2e

#: carol's process closes the head right after its round-1 ``RoundDone``, then goes on and
#: meets the closed head like the others.
CLOSER = """
import sys
import zkadapt.protocol.round as round_module
from zkadapt.cli import main

announce = round_module.RoundProtocol._announce

def close_after_round_1(self, r, *args, **kwargs):
    announce(self, r, *args, **kwargs)
    if r == 1:
        self.channel.close_head(timeout=20)

round_module.RoundProtocol._announce = close_after_round_1
sys.argv = ["zkadapt", *sys.argv[1:]]
main()
"""


def test_the_closer_is_attributed_on_layer1_and_slashed_by_ballots(tmp_path: Path) -> None:
    ledger = Ledger("preprod")
    with OgmiosDouble(ledger) as ogmios:
        session = EscrowSession(tmp_path, ledger, ogmios.url, rounds=3, submit_s=12)
        node_keys = {
            n: PaymentSigningKey.load(str(tmp_path / "sess" / "keys" / f"{n}.skey")) for n in NAMES
        }
        layer1 = HydraLayer1(ledger, node_keys=node_keys)
        double = HydraDouble(list(NAMES), layer1=layer1).start()
        try:
            session.on_hydra(double)
            for name in NAMES:  # the head holds funds on layer 1, so its close is a tx there
                zkadapt("head", "deposit", str(session.file), "--party", name,
                        "--lovelace", str(HEAD_FUNDS), cwd=tmp_path)  # fmt: skip
            out = tmp_path / "out"
            out.mkdir()
            procs = {n: spawn_party(session.file, n, out, tmp_path / f"{n}.log") for n in NAMES[:2]}
            carol_log = (tmp_path / "carol.log").open("wb")
            procs["carol"] = subprocess.Popen(
                [sys.executable, "-c", CLOSER, "party", str(session.file), "--party", "carol",
                 "--out", str(out), "--quiet"],
                stdout=carol_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            codes = {n: p.wait(timeout=300) for n, p in procs.items()}
            carol_log.close()
        finally:
            double.stop()
        logs = {n: (tmp_path / f"{n}.log").read_text() for n in NAMES}
        results = {n: json.loads((out / "parties" / n / "result.json").read_text()) for n in NAMES}
        balances = {n: session.balance(n) for n in NAMES}
        fees = {n: session.fees(n) for n in NAMES}
        at_script = ledger.balance(session_locks(load_config(session.file)).address)
        assert ogmios.violations == [] and double.violations == []
        assert {"findIntersection", "nextBlock"} <= set(ogmios.requests)

    assert codes == {"alice": 5, "bob": 5, "carol": 5}, logs
    (close,) = layer1.closes
    for name in ("alice", "bob"):
        assert "Traceback" not in logs[name], logs[name]
        assert f"by carol (close {close[:16]}, signed by its payment key): slashed" in logs[name]
        assert results[name]["escrow"]["slashed"] == ["carol"], results[name]
    assert "by this party" in logs["carol"] and "casts no vote" in logs["carol"]
    assert results["alice"]["escrow"]["settled_by"] == "alice"
    paid = payouts(NAMES, ("carol",), DEPOSIT)
    assert paid == {"alice": 15_000_000, "bob": 15_000_000, "carol": 0}
    for name in NAMES:
        assert balances[name] == FUNDS - HEAD_FUNDS - DEPOSIT + paid[name] - fees[name], name
    assert at_script == 0
