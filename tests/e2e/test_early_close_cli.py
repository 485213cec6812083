"""A premature close (issue 19; docs/escrow.md, "A premature close"): one party closes the
session's hydra head after round 1 of 3, through the CLI as a user runs each party, with the
escrow on layer 1 (the Ogmios double over the ledger double, as in test_escrow_run_cli).

The others' next post meets a closed head. They do not crash with that channel error: each
stops with one line that says the head was closed, how far the session got and what the
escrow did (exit code 5: a restart cannot reopen the head, and the runner lets every
party wrap up its own part of the escrow), and writes its ``result.json``
with the escrow's status ``closed-early``. The nodes here have no Cardano keys, so the close
is not played on layer 1 and the closer is not attributed (test_close_slash_cli has the
attributed case): nobody is slashed and every lock stays at the session's script address for
the refund after the deadline.
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

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.test_escrow_run_cli import DEPOSIT, FUNDS, NAMES, EscrowSession
from tests.e2e.test_layer1_story_cli import HEAD_DEPOSIT
from tests.hydra_double import HydraDouble
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.config import load_config
from zkadapt.operator.escrow_layer1 import session_locks

pytestmark = pytest.mark.e2e

#: ``zkadapt run`` with carol closing the head right after her round-1 ``RoundDone`` (the
#: runner forks each party from itself, so the patch reaches carol); she then goes on like
#: the others and meets the closed head herself.
RUN_WITH_CAROL_CLOSING = """
import sys
import zkadapt.protocol.round as round_module
from zkadapt.cli import main

announce = round_module.RoundProtocol._announce

def close_after_round_1(self, r, *args, **kwargs):
    announce(self, r, *args, **kwargs)
    if r == 1 and self.ctx.party == "carol":
        self.channel.close_head(timeout=20)  # the head closes mid-session

round_module.RoundProtocol._announce = close_after_round_1
sys.argv = ["zkadapt", *sys.argv[1:]]
main()
"""


@contextmanager
def one_ledger(tmp_path: Path) -> Iterator[tuple[EscrowSession, HydraLayer1]]:
    """A 3-round session whose hydra head's layer 1 is the escrow's ledger double."""
    ledger = Ledger("preprod")
    with OgmiosDouble(ledger) as ogmios:
        session = EscrowSession(tmp_path, ledger, ogmios.url, rounds=3, submit_s=12)
        layer1 = HydraLayer1(ledger)
        double = HydraDouble(list(NAMES), layer1=layer1).start()
        try:
            nodes = {n: double.api(n) for n in NAMES}
            edit_session(session.file, channel={"backend": "hydra", "hydra": {"nodes": nodes}})
            yield session, layer1
        finally:
            double.stop()
        assert ogmios.violations == [] and double.violations == []


def test_a_premature_close_stops_every_party_with_one_line_and_keeps_the_locks(
    tmp_path: Path,
) -> None:
    with one_ledger(tmp_path) as (session, _):
        zkadapt("head", "init", str(session.file), cwd=tmp_path)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ZKADAPT_PARTY_START", None)  # forked parties: carol gets the patch
        ran = subprocess.run(
            [sys.executable, "-c", RUN_WITH_CAROL_CLOSING, "run", str(session.file),
             "--out", "out", "--no-baselines", "--max-restarts", "0"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        out = tmp_path / "out"
        stopped = re.findall(r"(\w+) stopped \(exit code 5\)", ran.stderr)
        logs = {n: (out / "parties" / n / "party.log").read_text() for n in NAMES}
        results = {n: json.loads((out / "parties" / n / "result.json").read_text()) for n in NAMES}
        balances = {n: session.balance(n) for n in NAMES}
        fees = {n: session.fees(n) for n in NAMES}
        at_script = session.ledger.balance(session_locks(load_config(session.file)).address)

    # every party meets the closed head and stops with one line (exit code 5); the runner
    # restarts nobody (a restart cannot reopen the head) and stops nobody (each wraps up its
    # own part of the escrow)
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert sorted(stopped) == sorted(NAMES), ran.stderr[-3000:]
    assert not re.search(r"^restarting |a restart cannot fix", ran.stderr, re.M)
    assert "escrow: not settled (closed-early): refund after the deadline" in ran.stderr
    assert "Traceback" not in ran.stderr
    for name in NAMES:
        log, result = logs[name], results[name]
        assert f"{name} stopped (exit code 5): error: {name}: the session's hydra head was " in (
            ran.stderr
        )
        assert "Traceback" not in log
        stop = [line for line in log.splitlines() if "hydra head was closed" in line]
        assert len(stop) == 1, log
        assert (
            f"{name}: the session's hydra head was closed before round 2 of 3 was done" in (stop[0])
        )
        assert "escrow: the head was closed after round 1 (done by a quorum)" in stop[0]
        assert "nobody is slashed" in stop[0] and "voted to slash" not in log
        assert result["escrow"]["status"] == "closed-early"
        assert result["escrow"]["settled_in"] == []
    for who in NAMES:  # the lock and the head deposit left; nothing settled, nothing fanned out
        assert balances[who] == FUNDS - DEPOSIT - HEAD_DEPOSIT - fees[who], who
    assert at_script == 3 * DEPOSIT
