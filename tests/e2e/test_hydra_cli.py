"""MNIST through the CLI over a Hydra head (the hydra-node double built from the official
schema, since no hydra-node can be installed here): same model as over the local ledger.

The head opens empty, as a real hydra 2.x head does: ``zkadapt run`` deposits each party's
``channel.hydra.deposit_lovelace`` from its layer-1 outputs (cardano-cli UTxO files) first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, zkadapt
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import layer1_funds, utxo_files
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import keyring_of

pytestmark = pytest.mark.e2e

NAMES = ["alice", "bob", "carol"]


def test_session_over_a_hydra_head_matches_the_local_ledger(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, data=SMALL, session={"rounds": 2})
    zkadapt("run", str(session), "--out", "local", "--no-baselines", cwd=tmp_path)

    keys = {n: IdentityKey.load(tmp_path / "sess" / "keys" / f"{n}.skey") for n in NAMES}
    double = HydraDouble(NAMES, l1_utxo=layer1_funds(keys)).start()  # opens empty
    try:
        control = HydraChannel(keyring_of(load_config(session)), api=double.api("alice"))
        control.init_head(timeout=10)
        control.close()
        nodes = {n: double.api(n) for n in NAMES}
        template = utxo_files(double, keys, tmp_path / "layer1")
        edit_session(
            session,
            channel={"backend": "hydra", "hydra": {"nodes": nodes, "layer1_utxo": template}},
        )
        ran = zkadapt("run", str(session), "--out", "hydra", "--no-baselines", cwd=tmp_path)
        audit = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path)
        l1 = double.run(lambda: dict(double.head.l1.utxo))
    finally:
        double.stop()

    for name in NAMES:  # each party deposited 5 ADA and kept the rest on layer 1
        assert f"{name}: deposited 5,000,000 lovelace into the head" in ran.stderr
        mine = [o for o in l1.values() if o["address"] == address_of(keys[name].public)]
        assert [o["value"]["lovelace"] for o in mine] == [15_000_000]

    local = json.loads((tmp_path / "local" / "report.json").read_text())
    hydra = json.loads((tmp_path / "hydra" / "report.json").read_text())
    assert hydra["completed"] and [r["accepted"] for r in hydra["rounds"]] == [NAMES, NAMES]
    assert hydra["final"]["model_sha256"] == local["final"]["model_sha256"]
    assert "audit: PASSED" in audit.stdout
