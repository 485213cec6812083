"""A newcomer joins a session that runs over a Hydra head, through the CLI (issue 20,
docs/membership.md "Joining over a Hydra head"), on the hydra-node double built from the
official schema (no hydra-node can run here).

The head opens empty; each listed party deposits from layer 1 (``zkadapt head deposit``)
and runs ``zkadapt party``. Once round 1 is cut, dave, whom neither the session file nor the
head lists, runs ``zkadapt join``: it deposits ``channel.hydra.deposit_lovelace`` of its own
layer-1 funds through alice's node (the default ``--node``), then posts its self-signed
``JoinRequest`` and every later message through that node from its own output in the head.
Every party's view of the head carries its transactions (witnessed by the key its request
introduced), it is a member from round 3, all four end with the same digest and ``zkadapt
audit`` passes over the head. Carol is paused after her round-1 submission so that dave's
request falls during round 2 (as in tests/e2e/test_join_cli.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import layer1_funds, utxo_files
from zkadapt.assembly import open_session_channel
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import JoinRequest, Submitted

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
EVERYONE = (*NAMES, "dave")
ROUNDS = 3


def _history(session: Path, out: Path) -> SessionHistory:
    config = load_config(session)
    channel = open_session_channel(config, out, record=False)
    try:
        history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
        history.extend(channel.history(0))
        return history
    finally:
        channel.close()


def test_a_newcomer_funds_itself_and_posts_through_a_members_node(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    keys_dir = tmp_path / "sess" / "keys"
    keys = {n: IdentityKey.load(keys_dir / f"{n}.skey") for n in NAMES}
    keys["dave"] = IdentityKey.generate()  # dave's own key, with funds on layer 1
    keys["dave"].save(keys_dir / "dave.skey")
    double = HydraDouble(list(NAMES), l1_utxo=layer1_funds(keys)).start()  # opens empty
    out = tmp_path / "out"
    out.mkdir()
    logs = {n: tmp_path / f"{n}.log" for n in EVERYONE}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        control = HydraChannel(keyring_of(load_config(session)), api=double.api("alice"))
        control.init_head(timeout=10)
        control.close()
        edit_session(
            session,
            data=SMALL,
            model={"hidden": [16]},
            session={"rounds": ROUNDS},
            protocol={"submit_timeout_s": 90, "close_votes": 2},
            membership={"admission": "open", "max_parties": 4},
            channel={
                "backend": "hydra",
                "hydra": {
                    "nodes": {n: double.api(n) for n in NAMES},
                    "layer1_utxo": utxo_files(double, keys, tmp_path / "layer1"),
                },
            },
        )
        for name in NAMES:
            zkadapt("head", "deposit", str(session), "--party", name, "--lovelace", "5000000",
                    cwd=tmp_path)  # fmt: skip
        procs.update({n: spawn_party(session, n, out, logs[n]) for n in NAMES})

        def wait_for(predicate, what: str, limit: float = 240) -> SessionHistory:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                history = _history(session, out)
                if predicate(history):
                    return history
                for name, proc in procs.items():
                    if proc.poll() not in (None, 0):
                        raise AssertionError(f"{name} died:\n{logs[name].read_text()[-3000:]}")
                time.sleep(0.2)
            raise AssertionError(f"timed out waiting for {what}")

        wait_for(lambda h: "carol" in h.submissions(1), "carol's round-1 submission")
        os.kill(procs["carol"].pid, signal.SIGSTOP)
        wait_for(lambda h: h.cut(1) is not None, "the cut of round 1")
        with logs["dave"].open("ab") as sink:
            procs["dave"] = subprocess.Popen(
                [sys.executable, "-m", "zkadapt", "join", str(session), "--name", "dave",
                 "--out", str(out), "--quiet"],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        history = wait_for(
            lambda h: any(isinstance(p.message, JoinRequest) for p in h.posted),
            "dave's JoinRequest",
        )
        assert history.cut(2) is None  # the request fell during round 2
        os.kill(procs["carol"].pid, signal.SIGCONT)
        codes = {n: p.wait(timeout=400) for n, p in procs.items()}
        history = _history(session, out)
        audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path, check=False)
        l1 = double.run(lambda: dict(double.head.l1.utxo))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
        double.stop()
    assert double.violations == []

    texts = {n: logs[n].read_text() for n in EVERYONE}
    assert codes == dict.fromkeys(EVERYONE, 0), {n: t[-2000:] for n, t in texts.items()}
    assert "dave: deposited 5,000,000 lovelace into the head" in texts["dave"]
    mine = [o for o in l1.values() if o["address"] == address_of(keys["dave"].public)]
    assert [o["value"]["lovelace"] for o in mine] == [15_000_000]  # 20 ADA less the deposit
    roster = history.roster
    assert roster is not None and [(n.name, n.round) for n in roster.admitted] == [("dave", 3)]
    dave_rounds = [
        p.message.round
        for p in history.posted
        if p.sender == "dave" and isinstance(p.message, Submitted)
    ]
    assert dave_rounds == [3]
    assert not history.dropped and not history.violating
    digests = {
        n: json.loads((out / "parties" / n / "result.json").read_text())["final_model_sha256"]
        for n in EVERYONE
    }
    assert len(set(digests.values())) == 1, digests
    assert audit.returncode == 0 and "audit: PASSED" in audit.stdout, audit.stdout
    assert "dave joined: member from round 3" in audit.stdout
