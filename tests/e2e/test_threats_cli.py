"""One malicious party among honest ``zkadapt party`` processes (issue 16, THREATS.md).

Each test runs a real encrypted MNIST session through the CLI: the honest parties are
unmodified ``zkadapt party`` processes, the malicious one is ``tests.e2e.misbehaving_party``
(the party code with one attack switched on). Each asserts what the honest parties end with
(the same model, or a named failure, never a crash) and the public audit's verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt
from tests.e2e.misbehaving_party import WRONG_DIGEST

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NAMED = "parties named (by others, the channel rules or the audit):"


def _session(tmp_path: Path, rounds: int, **privacy: Any) -> Path:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(
        session,
        data=SMALL,
        session={"rounds": rounds},
        model={"hidden": [16]},
        privacy={"scheme": "paillier", "key_bits": 512, **privacy},
        protocol={"submit_timeout_s": 30},
    )
    return session


def _spawn_malicious(session: Path, party: str, out: Path, fault: str) -> subprocess.Popen[bytes]:
    log = out.parent / f"{party}.log"
    with log.open("wb") as sink:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.e2e.misbehaving_party", str(session)),
                *("--party", party, "--out", str(out), "--fault", fault),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _run(
    tmp_path: Path, session: Path, honest: tuple[str, ...], malicious: str, fault: str
) -> tuple[Path, dict[str, int]]:
    """Run the session: ``honest`` parties and the ``malicious`` one; their exit codes."""
    out = tmp_path / "out"
    out.mkdir()
    procs = {n: spawn_party(session, n, out, tmp_path / f"{n}.log") for n in honest}
    procs[malicious] = _spawn_malicious(session, malicious, out, fault)
    codes = {name: proc.wait(timeout=400) for name, proc in procs.items()}
    return out, codes


def _result(out: Path, party: str) -> dict[str, Any]:
    return json.loads((out / "parties" / party / "result.json").read_text())  # type: ignore[no-any-return]


def _log(tmp_path: Path, party: str) -> str:
    return (tmp_path / f"{party}.log").read_text(errors="replace")[-3000:]


def test_noise_from_one_party_neither_crashes_stalls_nor_splits_the_others(
    tmp_path: Path,
) -> None:
    """Hostile JSON, votes for later rounds, RoundDone and RoundFailed before the cut, a
    failure vote before each share, and a wrong digest: every round completes with every
    update, the honest parties agree, and the audit passes naming carol for each."""
    session = _session(tmp_path, rounds=2)
    out, codes = _run(tmp_path, session, ("alice", "bob"), "carol", "noisy")
    for name in ("alice", "bob"):
        assert codes[name] == 0, _log(tmp_path, name)
    alice, bob = _result(out, "alice"), _result(out, "bob")
    assert alice["final_model_sha256"] == bob["final_model_sha256"] != WRONG_DIGEST
    assert [r["accepted"] for r in alice["rounds_run_by_this_process"]] == [
        ["alice", "bob", "carol"]
    ] * 2

    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout and audit.stdout.count(" OK ") == 2
    named = audit.stdout.split(NAMED)[1]
    carol = [line for line in named.splitlines() if line.strip().startswith("- carol:")]
    assert not [line for line in named.splitlines() if "- alice:" in line or "- bob:" in line]
    for what in (
        "entry ignored: malformed message",  # the 5,000-digit integer and the deep nesting
        "PhaseClosed for round 2 before its own outcome of round 1",
        "RoundDone for round 1 before its submit phase closed",
        "RoundFailed for round 1 before its submit phase closed",
        f"announced G(1) digest {WRONG_DIGEST[:12]}",  # named by alice and bob, and the audit
    ):
        assert any(what in line for line in carol), (what, named)
    assert any("by alice" in line and WRONG_DIGEST[:12] in line for line in carol)


def test_an_update_out_of_range_fails_its_round_for_everyone_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    """Poisoning that the proof cannot see (every slot far out of range): the decrypted
    aggregate proves it, round 2 fails for everyone with that reason, round 3 completes."""
    session = _session(tmp_path, rounds=3)
    out, codes = _run(tmp_path, session, ("alice", "bob"), "carol", "overflow")
    for name in ("alice", "bob"):
        assert codes[name] == 4, _log(tmp_path, name)  # finished, with a failed round
    rounds = _result(out, "alice")["rounds_run_by_this_process"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert rounds[1]["failure"].startswith("aggregate out of range")
    assert "no culprit can be named" in rounds[1]["failure"]
    assert rounds[0]["failure"] is None and rounds[2]["failure"] is None
    assert rounds[2]["accepted"] == ["alice", "bob", "carol"]
    assert _result(out, "alice")["final_model_sha256"] == _result(out, "bob")["final_model_sha256"]

    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout, audit.stdout
    assert "round 2 failed: aggregate out of range" in audit.stdout


# slow (~38 s): tests/protocol/test_machine_threats.py and the model checker check the
# min_accepted rule in the default run; this is the same through the CLI with real processes
@pytest.mark.slow
def test_no_key_holder_decrypts_a_sum_of_fewer_than_min_accepted_updates(
    tmp_path: Path,
) -> None:
    """bob is away: carol and alice alone would make a sum from which carol reads alice's
    update. With ``min_accepted`` = 3 (the default for three parties) the round fails for
    both and alice posts no decryption share."""
    session = _session(tmp_path, rounds=1)
    edit_session(session, privacy={"keygen": "dealer"}, protocol={"submit_timeout_s": 15})
    out, codes = _run(tmp_path, session, ("alice",), "carol", "noisy")
    assert codes["alice"] == 4, _log(tmp_path, "alice")
    (outcome,) = _result(out, "alice")["rounds_run_by_this_process"]
    assert outcome["failure"].startswith("only 2 updates accepted; privacy.min_accepted is 3")
    assert not list(out.rglob("round-1/share/*.bin"))  # nobody decrypted anything
    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout, audit.stdout
    assert "privacy.min_accepted is 3" in audit.stdout
