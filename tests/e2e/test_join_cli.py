"""A party joins a running session through the CLI (issue 20, docs/membership.md).

Three parties start as ``zkadapt party`` processes; once round 1 is cut a fourth, dave,
whom the session file does not list, runs ``zkadapt join``: it creates its key, posts a
self-signed ``JoinRequest`` on the local ledger (which carries it by the session's
``[membership]``), replays rounds 1 and 2 from the channel (no party sends it a model) and
submits from round 3. All four end with the same digest, and ``zkadapt audit``, which
recomputes every G(r) from the channel with dave as a member from round 3 (the replay a
session listing four parties from round 3 would do), passes and agrees with it.

To make "during round 2" deterministic, carol is paused (SIGSTOP) right after her round-1
submission: alice and bob cut round 1 with their two votes and then wait for carol's round-2
submission until their deadline, so dave's request lands before round 2's cut; carol is
resumed once it is on the ledger.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.joining import JoinScene, small_mnist
from zkadapt.channel import open_channel
from zkadapt.config import load_config
from zkadapt.dashboard.page import render_sections
from zkadapt.dashboard.source import LedgerWatcher, locate_session
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import JoinRequest, Submitted
from zkadapt.summary import ReportFacts, build_report

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
ROUNDS = 4


def _session(tmp_path: Path, scheme: str, storage: dict[str, object] | None = None) -> Path:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    privacy = {"scheme": scheme, "key_bits": 512} if scheme != "none" else {"scheme": "none"}
    edit_session(
        session,
        **small_mnist(ROUNDS),
        privacy=privacy,
        membership={"admission": "open", "max_parties": 4},
        storage=storage or {},
    )
    return session


def _run_with_newcomer(
    tmp_path: Path, scheme: str, storage: dict[str, object] | None = None
) -> tuple[Path, Path, SessionHistory]:
    session = _session(tmp_path, scheme, storage)
    out = tmp_path / "out"
    out.mkdir()
    with JoinScene(session, out, tmp_path, poll_s=0.02) as scene:
        scene.spawn_parties(NAMES)
        scene.join_during_round_2("carol", "dave")
        assert scene.read().cut(2) is None  # the request fell during round 2
        scene.resume("carol")
        codes = scene.wait_all(timeout=400)
        assert codes == dict.fromkeys((*NAMES, "dave"), 0), scene.tails()
    return session, out, scene.read()


def _final_digest(out: Path, name: str) -> str:
    result = json.loads((out / "parties" / name / "result.json").read_text())
    return str(result["final_model_sha256"])


def _check_session(tmp_path: Path, scheme: str, storage: dict[str, object] | None = None) -> None:
    session, out, history = _run_with_newcomer(tmp_path, scheme, storage)
    roster = history.roster
    assert roster is not None
    assert [(n.name, n.round) for n in roster.admitted] == [("dave", 3)]
    dave_rounds = [
        p.message.round
        for p in history.posted
        if p.sender == "dave" and isinstance(p.message, Submitted)
    ]
    assert dave_rounds == [3, 4]  # a member from round 3, and not before
    for r in (3, 4):
        assert "dave" in history.round_done(r)["alice"].accepted
    assert not history.dropped and not history.violating
    digests = {name: _final_digest(out, name) for name in (*NAMES, "dave")}
    assert len(set(digests.values())) == 1, digests
    assert (tmp_path / "sess" / "keys" / "dave.skey").exists()  # join created dave's key

    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path, check=False)
    assert audit.returncode == 0 and "audit: PASSED" in audit.stdout, audit.stdout
    # the audit replays G(r) with dave as a member from round 3: its digest is everyone's
    last = [line for line in audit.stdout.splitlines() if line.strip().startswith(f"{ROUNDS} ")]
    assert last and digests["dave"][:12] in last[0], audit.stdout
    assert "alice,bob,carol,dave" in last[0]
    assert "dave joined: member from round 3" in audit.stdout, audit.stdout
    _check_report_and_dashboard(session, out, history)


def _check_report_and_dashboard(session: Path, out: Path, history: SessionHistory) -> None:
    """report.json's form of the session and the dashboard show every round's members."""
    report = build_report(ReportFacts.of(load_config(session)), history).to_json()
    assert [r["members"] for r in report["rounds"]] == [list(NAMES)] * 2 + [[*NAMES, "dave"]] * 2
    joined = {p["name"]: p.get("joined_round") for p in report["parties"]}
    assert joined == {"alice": 1, "bob": 1, "carol": 1, "dave": 3}
    watcher = LedgerWatcher(locate_session(session, out))
    try:
        watcher.poll()
        rounds = render_sections(watcher.snapshot())["rounds"]
    finally:
        watcher.close()
    assert "<th>members</th>" in rounds
    assert "<td>alice, bob, carol, dave</td>" in rounds
    assert "dave joined: member from round 3" in rounds


def test_a_fourth_party_joins_during_round_2_through_the_cli(tmp_path: Path) -> None:
    _check_session(tmp_path, "none")


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["paillier", "masked"])
def test_a_fourth_party_joins_an_encrypted_session_through_the_cli(
    tmp_path: Path, scheme: str
) -> None:
    _check_session(tmp_path, scheme)


@pytest.mark.slow
def test_a_newcomer_writes_to_a_bucket_of_its_own_on_s3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real S3 (SeaweedFS): each party has its own bucket and credentials, read access to
    the others'; dave's bucket is ``storage.bucket`` filled with his name, which every
    reader derives, and he writes there with his own profile."""
    from tests.conftest import start_seaweed

    server = start_seaweed(tmp_path / "s3", monkeypatch, (*NAMES, "dave"))
    monkeypatch.setenv("AWS_PROFILE", "zkadapt-carol")  # the audit reads with carol's keys
    try:
        storage = {"backend": "s3", "endpoint": server.endpoint, "profile": "zkadapt-{party}"}
        _check_session(tmp_path, "none", storage)
        objects = server.client("admin").list_objects_v2(Bucket="zkadapt-dave")
        keys = [o["Key"] for o in objects.get("Contents", [])]
    finally:
        server.stop()
    assert len(keys) == 2 and all("/update/dave." in k for k in keys), keys  # rounds 3 and 4
    assert not (tmp_path / "out" / "store").exists()


def test_join_refuses_a_taken_name_a_fixed_session_and_a_full_one(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    out = tmp_path / "out"
    fixed = zkadapt(
        "join", str(session), "--name", "dave", "--out", str(out), cwd=tmp_path, check=False
    )
    assert fixed.returncode == 2 and "membership is fixed" in fixed.stderr, fixed.stderr
    edit_session(session, membership={"admission": "open", "max_parties": 3})
    taken = zkadapt(
        "join", str(session), "--name", "bob", "--out", str(out), cwd=tmp_path, check=False
    )
    assert taken.returncode == 2 and "the name bob is taken" in taken.stderr, taken.stderr
    node = zkadapt(
        *("join", str(session), "--name", "dave", "--node", "127.0.0.1:4001"),
        cwd=tmp_path,
        check=False,
    )
    assert node.returncode == 2 and "--node is for a session on a hydra head" in node.stderr
    assert not (tmp_path / "sess" / "keys" / "dave.skey").exists()  # refused before the key
    no_ledger = zkadapt(
        "join", str(session), "--name", "dave", "--out", str(out), cwd=tmp_path, check=False
    )
    assert no_ledger.returncode == 2 and "no ledger at" in no_ledger.stderr
    out.mkdir()
    open_channel("local", keyring=keyring_of(load_config(session)), path=out / "ledger.sqlite")
    full = zkadapt(
        "join", str(session), "--name", "dave", "--out", str(out), cwd=tmp_path, check=False
    )
    assert full.returncode == 2, full.stderr
    assert "over membership.max_parties (3)" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr
    assert not (out / "parties" / "dave").exists()  # nothing ran, nothing was posted
    for proc in (fixed, taken, node, no_ledger, full):
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_member_lists_pending_requests_and_votes_to_admit(tmp_path: Path) -> None:
    from zkadapt.assembly import open_session_channel
    from zkadapt.crypto.identity import IdentityKey
    from zkadapt.protocol.messages import sign

    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, membership={"admission": "vote", "votes": 2})
    config = load_config(session)
    out = tmp_path / "out"
    out.mkdir()
    dave = IdentityKey.from_seed(b"d" * 32)
    channel = open_session_channel(config, out, party="dave", identity=dave)
    request = JoinRequest(config.session_id, 1, "dave", dave.public.hex, 120, 0)
    channel.post(sign(request, "dave", dave))
    channel.close()

    def admit(*args: str) -> subprocess.CompletedProcess[str]:
        return zkadapt("admit", str(session), "--out", str(out), *args, cwd=tmp_path, check=False)

    listed = admit("--party", "alice", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "1 pending join request(s)" in listed.stdout
    assert "dave  key " in listed.stdout and "0 of 2 votes" in listed.stdout
    voted = admit("--party", "alice", "dave")
    assert voted.returncode == 0 and "alice: voted to admit dave" in voted.stdout, voted.stderr
    assert "1 of 2 votes (alice)" in admit("--party", "bob", "--list").stdout
    again = admit("--party", "alice", "dave")
    assert again.returncode == 2 and "alice voted for dave already" in again.stderr
    nobody = admit("--party", "bob", "erin")
    assert nobody.returncode == 2 and "erin has no pending join request" in nobody.stderr
    assert admit("--party", "bob", "dave").returncode == 0
    assert "approved (alice, bob)" in admit("--party", "carol", "--list").stdout
    both = admit("--party", "carol", "--list", "dave")
    assert both.returncode == 2 and "either --list or a CANDIDATE" in both.stderr
