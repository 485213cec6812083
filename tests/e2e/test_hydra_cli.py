"""MNIST through the CLI over a Hydra head (the hydra-node double built from the official
schema, since no hydra-node can be installed here): same model as over the local ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, zkadapt
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import funds
from zkadapt.channel.hydra import HydraChannel
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
    double = HydraDouble(NAMES, initial_utxo=funds(keys)).start()
    try:
        control = HydraChannel(keyring_of(load_config(session)), api=double.api("alice"))
        control.init_head(timeout=10)
        control.close()
        edit_session(
            session,
            channel={"backend": "hydra", "hydra": {"nodes": {n: double.api(n) for n in NAMES}}},
        )
        zkadapt("run", str(session), "--out", "hydra", "--no-baselines", cwd=tmp_path)
        audit = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path)
    finally:
        double.stop()

    local = json.loads((tmp_path / "local" / "report.json").read_text())
    hydra = json.loads((tmp_path / "hydra" / "report.json").read_text())
    assert hydra["completed"] and [r["accepted"] for r in hydra["rounds"]] == [NAMES, NAMES]
    assert hydra["final"]["model_sha256"] == local["final"]["model_sha256"]
    assert "audit: PASSED" in audit.stdout
