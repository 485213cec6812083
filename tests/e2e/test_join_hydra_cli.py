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
request falls during round 2 (tests/e2e/joining.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.joining import JoinScene, small_mnist
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import layer1_funds, utxo_files
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.messages import Submitted

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
EVERYONE = (*NAMES, "dave")
ROUNDS = 3


# slow (~30 s): the default run carries a newcomer over the hydra-node double in
# tests/channel/test_outsiders.py and joins through the CLI on the local ledger
@pytest.mark.slow
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
    try:
        control = HydraChannel(keyring_of(load_config(session)), api=double.api("alice"))
        control.init_head(timeout=10)
        control.close()
        edit_session(
            session,
            **small_mnist(ROUNDS),
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
        with JoinScene(session, out, tmp_path, poll_s=0.2) as scene:
            scene.spawn_parties(NAMES)
            history = scene.join_during_round_2("carol", "dave")
            assert history.cut(2) is None  # the request fell during round 2
            scene.resume("carol")
            codes = scene.wait_all(timeout=400)
            history = scene.read()
            audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path, check=False)
            l1 = double.run(lambda: dict(double.head.l1.utxo))
    finally:
        double.stop()
    assert double.violations == []

    texts = {n: scene.log(n).read_text() for n in EVERYONE}
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
