"""MNIST through the CLI with threshold-Paillier secure aggregation (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mnist.toml"


def _session(tmp_path: Path, name: str, scheme: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(EXAMPLE.read_text())
    edit_session(
        path,
        data=SMALL,
        session={"rounds": 2},
        model={"hidden": [16]},  # 12,730 values: a few hundred ciphertexts per update
        privacy={"scheme": scheme, "key_bits": 512} if scheme == "paillier" else {"scheme": scheme},
    )
    return path


def test_encrypted_session_matches_plaintext_fedavg(tmp_path: Path) -> None:
    zkadapt(
        "run",
        str(_session(tmp_path, "plain", "none")),
        "--out",
        "plain",
        "--no-baselines",
        cwd=tmp_path,
    )
    zkadapt(
        "run",
        str(_session(tmp_path, "secure", "paillier")),
        "--out",
        "secure",
        "--no-baselines",
        cwd=tmp_path,
    )
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    secure = json.loads((tmp_path / "secure" / "report.json").read_text())

    # same experiment (same G(0), split, shuffles): only 16-bit quantization differs
    assert (
        abs(secure["final"]["metrics"]["accuracy"] - plain["final"]["metrics"]["accuracy"]) <= 0.002
    )
    for r in secure["rounds"]:
        assert r["accepted"] == ["alice", "bob", "carol"]
        assert r["timing_s"]["decrypt_s"] > 0 and r["timing_s"]["seal_s"] > 0
        assert r["bytes_decryption_shares"] > 0
    updates = sorted((tmp_path / "secure" / "store").rglob("update/*.bin"))
    assert len(updates) == 6 and all(p.read_bytes()[:4] == b"ZKAO" for p in updates)
    shares = sorted((tmp_path / "secure" / "store").rglob("keys/epoch-0/share/*.bin"))
    assert len(shares) == 3 and all(b"zkadapt" not in p.read_bytes() for p in shares)  # sealed

    # the public audit re-verifies proofs, the homomorphic sums and the decryption
    audit = zkadapt("audit", "secure/session.toml", cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout and audit.stdout.count(" OK ") == 2
    for share in (tmp_path / "secure" / "store").rglob("round-2/share/*.bin"):
        share.write_bytes(share.read_bytes()[:-1] + b"\x00")
    failed = zkadapt("audit", "secure/session.toml", cwd=tmp_path, check=False)
    assert failed.returncode == 1 and "audit: FAILED" in failed.stdout
    assert "decryption share" in failed.stdout


@pytest.mark.parametrize("fault", ["forged-proof", "garbage", "replay"])
def test_misbehaving_party_process_is_rejected_by_honest_processes(
    tmp_path: Path, fault: str
) -> None:
    zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(
        session,
        data=SMALL,
        session={"rounds": 2},
        model={"hidden": [16]},
        privacy={"scheme": "paillier", "key_bits": 512, "min_accepted": 2},
        protocol={"submit_timeout_s": 60},
    )
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    honest = [spawn_party(session, n, out, tmp_path / f"{n}.log") for n in ("alice", "bob")]
    with (tmp_path / "carol.log").open("wb") as log:
        carol = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.misbehaving_party",
                str(session),
                "--party",
                "carol",
                "--out",
                str(out),
                "--fault",
                fault,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    for proc, name in [*zip(honest, ("alice", "bob"), strict=True), (carol, "carol")]:
        assert proc.wait(timeout=300) == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
    reasons = {"forged-proof": "proof failed", "garbage": "malformed object", "replay": "replay"}
    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout  # the honest parties' view is internally consistent
    line2 = next(ln for ln in audit.stdout.splitlines() if ln.strip().startswith("2 "))
    assert "alice,bob " in line2 and f"carol: {reasons[fault]}" in line2
    named = audit.stdout.split("parties named (by others, the channel rules or the audit):")[1]
    assert "carol: round 2, by " in named and reasons[fault] in named
    digests = {
        json.loads((out / "parties" / n / "result.json").read_text())["final_model_sha256"]
        for n in ("alice", "bob", "carol")
    }
    assert len(digests) == 1  # all three agree on the aggregate of the honest updates


def test_masked_session_matches_plaintext_and_the_audit_catches_each_altered_part(
    tmp_path: Path,
) -> None:
    """``privacy.scheme = "masked"`` through the CLI (issue 18): same accuracy as plaintext
    FedAvg up to 16-bit quantization; the audit re-derives the aggregate from public data and
    fails when one stored masked vector, seed ciphertext or decryption share is altered."""
    plain_path = _session(tmp_path, "plain", "none")
    masked_path = _session(tmp_path, "masked", "none")
    edit_session(masked_path, privacy={"scheme": "masked", "key_bits": 512})
    zkadapt("run", str(plain_path), "--out", "plain", "--no-baselines", cwd=tmp_path)
    zkadapt("run", str(masked_path), "--out", "masked", "--no-baselines", cwd=tmp_path)
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())
    masked = json.loads((tmp_path / "masked" / "report.json").read_text())
    accuracy = masked["final"]["metrics"]["accuracy"]
    assert abs(accuracy - plain["final"]["metrics"]["accuracy"]) <= 0.002
    assert [r["accepted"] for r in masked["rounds"]] == [["alice", "bob", "carol"]] * 2
    assert zkadapt("audit", "masked/session.toml", cwd=tmp_path).stdout.count(" OK ") == 2

    store = tmp_path / "masked" / "store"
    alice = next(store.rglob("round-2/update/alice.*.bin"))
    body = alice.read_bytes()
    for name, offset in (("masked vector", len(body) - 3), ("seed ciphertext", 600)):
        alice.write_bytes(body[:offset] + bytes([body[offset] ^ 1]) + body[offset + 1 :])
        failed = zkadapt("audit", "masked/session.toml", cwd=tmp_path, check=False)
        assert failed.returncode == 1 and "audit: FAILED" in failed.stdout, name
        assert "alice" in failed.stdout, name
    alice.write_bytes(body)
    assert "audit: PASSED" in zkadapt("audit", "masked/session.toml", cwd=tmp_path).stdout
    # every share: the audit (like a party) checks shares in channel order only until t are
    # valid, so one altered share posted after t valid ones is never read
    for share in store.rglob("round-2/share/*.bin"):
        share.write_bytes(share.read_bytes()[:-1] + b"\x00")
    failed = zkadapt("audit", "masked/session.toml", cwd=tmp_path, check=False)
    assert failed.returncode == 1 and "decryption share" in failed.stdout
