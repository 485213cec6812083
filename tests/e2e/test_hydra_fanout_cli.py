"""Auditing a Hydra session after its head was closed and fanned out, through the CLI.

The steps a user takes (docs/hydra.md, "Reading a finished session"): ``zkadapt run`` over a
head (the hydra-node double, opened empty and funded by deposits), ``zkadapt head close``
and ``zkadapt head fanout`` with ``--out``, the nodes shut down, then ``zkadapt audit``. The
audit must read the persisted copies and pass; an edited copy must fail it with the reason;
with neither a head nor a copy it must fail, never pass on 0 rounds; and naming the head in
the session file must not change the session id.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, zkadapt
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import layer1_funds, utxo_files
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.record import COPY_FILE
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import keyring_of

pytestmark = pytest.mark.e2e

NAMES = ["alice", "bob", "carol"]


def _copies(out: Path) -> list[Path]:
    return [out / COPY_FILE, *(out / "parties" / n / COPY_FILE for n in NAMES)]


# slow (~45 s): the default run reads a session after fanout from the copies in
# tests/e2e/test_layer1_story_cli.py (fund, run, fanout, audit PASSED from the copies)
@pytest.mark.slow
def test_a_fanned_out_session_is_audited_from_its_persisted_copies(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, data=SMALL, session={"rounds": 2})
    keys = {n: IdentityKey.load(tmp_path / "sess" / "keys" / f"{n}.skey") for n in NAMES}
    double = HydraDouble(NAMES, l1_utxo=layer1_funds(keys)).start()
    out = tmp_path / "hydra"
    try:
        with HydraChannel(keyring_of(load_config(session)), api=double.api("alice")) as control:
            head_id = control.init_head(timeout=10)
        hydra = {
            "nodes": {n: double.api(n) for n in NAMES},
            "layer1_utxo": utxo_files(double, keys, tmp_path / "layer1"),
            "connect_timeout_s": 3.0,  # a node that is gone is given up on quickly
        }
        edit_session(session, channel={"backend": "hydra", "hydra": hydra})
        zkadapt("run", str(session), "--out", "hydra", "--no-baselines", cwd=tmp_path)
        for step in ("close", "fanout"):
            zkadapt("head", step, str(session), "--out", "hydra", "--timeout", "20", cwd=tmp_path)
        shutil.copytree(out, tmp_path / "bare")
        for copy in _copies(tmp_path / "bare"):
            copy.unlink()
        bare = zkadapt("audit", str(session), "--out", "bare", cwd=tmp_path, check=False)
    finally:
        double.stop()  # the session's nodes are gone from here on

    # with the node up but no copy: the node follows no head any more, nothing is read
    assert bare.returncode == 1 and "audit: FAILED" in bare.stdout
    assert "no entries to audit" in bare.stdout and "following no head" in bare.stdout

    kept = {}  # every party and the runner kept the head's snapshots
    for copy in _copies(out):
        lines = [json.loads(line) for line in copy.read_text().splitlines()]
        assert lines[0]["head_id"] == head_id
        kept[copy] = [len(line["confirmed"]) for line in lines if "confirmed" in line]
    assert len({tuple(numbers) for numbers in kept.values()}) == 1
    assert sum(kept[out / COPY_FILE]) >= 12  # at least a submission and a RoundDone each
    text = (out / COPY_FILE).read_text()
    events = [json.loads(line).get("event") for line in text.splitlines()]
    assert events[-2:] == ["HeadIsClosed", "HeadIsFinalized"]  # `zkadapt head ... --out`

    audit = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout
    assert "rounds: 2 of 2 planned completed" in audit.stdout
    assert f"hydra head {head_id} read from the persisted copy" in audit.stdout
    assert "the node is not reachable" in audit.stdout

    before = load_config(session).session_id  # naming the head changes nothing
    edit_session(session, channel={"hydra": {**hydra, "head_id": head_id}})
    assert load_config(session).channel.hydra.head_id == head_id
    assert load_config(session).session_id == before
    named = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path)
    assert "audit: PASSED" in named.stdout

    runner_copy = out / COPY_FILE  # an entry changed in one copy: the audit names it
    text = runner_copy.read_text()
    marker = '"snapshot":3,'
    assert marker in text
    runner_copy.write_text(text.replace(marker, '"snapshot":33,', 1))
    edited = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path, check=False)
    assert edited.returncode == 1 and "audit: FAILED" in edited.stdout
    assert "fails its check" in edited.stdout
    assert "snapshot 33 where snapshot 3 belongs" in edited.stdout

    for copy in _copies(out):  # neither head nor copy: a clear failure, never a pass
        copy.unlink()
    nothing = zkadapt("audit", str(session), "--out", "hydra", cwd=tmp_path, check=False)
    assert nothing.returncode != 0 and "PASSED" not in nothing.stdout
    assert "cannot reach the hydra-node" in nothing.stderr
    assert "and no persisted copy of the channel" in nothing.stderr
