"""MNIST through the CLI with S3 storage on a real SeaweedFS, each party with its own bucket
and its own credentials (issue 6): same model as ``local``, clean errors, server restarts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import start_seaweed
from tests.e2e.conftest import SMALL, edit_session, zkadapt
from tests.seaweed import SeaweedS3
from zkadapt.config import load_config

pytestmark = pytest.mark.e2e

PARTIES = ["alice", "bob", "carol"]


def _session(root: Path, **storage: object) -> Path:
    """A fresh 3-party small MNIST session (new keys) with the given storage settings."""
    root.mkdir(parents=True, exist_ok=True)
    zkadapt("init", "sess", "--example", "mnist", cwd=root)
    session = root / "sess" / "session.toml"
    edit_session(
        session,
        data=SMALL,
        session={"rounds": 2},
        protocol={"submit_timeout_s": 120},
        storage=dict(storage),
    )
    return session


def _s3(server: SeaweedS3, **extra: object) -> dict[str, object]:
    return {
        "backend": "s3",
        "endpoint": server.endpoint,
        "profile": "zkadapt-{party}",  # each party process signs with its own keys
        **extra,
    }


def _final(out: Path) -> dict[str, object]:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def local_digest(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The final model digest of the same experiment with the local store."""
    root = tmp_path_factory.mktemp("local")
    session = _session(root)
    zkadapt("run", str(session), "--out", "out", "--no-baselines", cwd=root)
    return str(_final(root / "out")["final"]["model_sha256"])  # type: ignore[index]


def test_s3_session_gives_the_same_model_as_local_and_audits(
    s3_server: SeaweedS3, local_digest: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _session(tmp_path, **_s3(s3_server))
    zkadapt("run", str(session), "--out", "out", "--no-baselines", cwd=tmp_path)
    report = _final(tmp_path / "out")

    assert report["final"]["model_sha256"] == local_digest  # type: ignore[index]
    assert [r["accepted"] for r in report["rounds"]] == [PARTIES, PARTIES]  # type: ignore[index]
    assert not (tmp_path / "out" / "store").exists()  # nothing went to the local directory
    session_id = load_config(session).session_id
    admin = s3_server.client("admin")
    for party in PARTIES:
        listed = admin.list_objects_v2(Bucket=f"zkadapt-{party}", Prefix=f"zkadapt/{session_id}/")
        keys = sorted(o["Key"] for o in listed.get("Contents", []))
        assert len(keys) == 2, keys  # one content-addressed update per round (issue 17)
        for r, key in zip((1, 2), keys, strict=True):
            assert re.fullmatch(
                rf"zkadapt/{session_id}/round-{r}/update/{party}\.[0-9a-f]{{16}}\.bin", key
            )

    monkeypatch.setenv("AWS_PROFILE", "zkadapt-carol")  # an auditor needs only read access
    audit = zkadapt("audit", str(session), "--out", "out", cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout


def test_wrong_credentials_are_one_line_naming_the_bucket_and_the_party(
    s3_server: SeaweedS3, tmp_path: Path
) -> None:
    session = _session(tmp_path, **_s3(s3_server, profile="zkadapt-wrong", retries=0))
    expected = (
        "error: s3://zkadapt-alice/: party alice is denied opening its bucket (403): wrong "
        "credentials (profile 'zkadapt-wrong') or no permission on bucket zkadapt-alice\n"
    )
    run = zkadapt("run", str(session), "--out", "out", cwd=tmp_path, check=False)
    assert run.returncode == 1 and run.stderr.endswith(expected)
    assert "Traceback" not in run.stderr and not (tmp_path / "out" / "parties").exists()

    edit_session(session, storage={"profile": "zkadapt-alice"})  # alice's keys, bob's bucket
    (tmp_path / "out").mkdir(exist_ok=True)  # run made --out before it met the storage error
    party = zkadapt(
        "party", str(session), "--party", "bob", "--out", "out", cwd=tmp_path, check=False
    )
    assert party.returncode == 1 and "Traceback" not in party.stderr
    last = party.stderr.splitlines()[-1]  # read access passes the check; the upload fails
    assert last.startswith("error: s3://zkadapt-bob/zkadapt/") and last.endswith(
        "party bob is denied writing (AccessDenied): wrong credentials (profile "
        "'zkadapt-alice') or no permission on bucket zkadapt-bob"
    )


def _party_logs(out: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in out.glob("parties/*/party.log"))


@pytest.mark.slow
def test_parties_retry_through_an_s3_restart_mid_round(
    local_digest: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_seaweed(tmp_path / "s3", monkeypatch)  # this test's own server to stop
    try:
        session = _session(tmp_path / "work", **_s3(server, retries=10, backoff_s=0.5))
        out = tmp_path / "work" / "out"
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zkadapt",
                "run",
                str(session),
                "--out",
                str(out),
                "--no-baselines",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        admin = server.client("admin")
        deadline = time.monotonic() + 180
        while not any(  # the first update of round 1 is up: the round is under way
            admin.list_objects_v2(Bucket=f"zkadapt-{p}").get("KeyCount", 0) for p in PARTIES
        ):
            assert run.poll() is None and time.monotonic() < deadline, "no update was uploaded"
            time.sleep(0.2)
        server.stop()
        while "retry 1 of 10" not in _party_logs(out):  # a party hit the outage and waits
            assert run.poll() is None and time.monotonic() < deadline, "no party retried"
            time.sleep(0.2)
        server.start()
        _, stderr = run.communicate(timeout=240)
    finally:
        server.stop()
    assert run.returncode == 0, stderr.decode()[-2000:]
    report = _final(out)
    assert report["final"]["model_sha256"] == local_digest  # type: ignore[index]
    assert all(r["accepted"] == PARTIES for r in report["rounds"])  # type: ignore[index]


# slow (~22 s): the default run has the S3 session and its audit above
@pytest.mark.slow
def test_a_second_run_of_the_same_session_leaves_the_first_run_auditable(
    s3_server: SeaweedS3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same session file run again into a new --out, on the same buckets, must not touch
    the first run's objects (issue 17: it overwrote them and the first audit failed)."""
    session = _session(tmp_path, **_s3(s3_server))
    zkadapt("run", str(session), "--out", "first", "--no-baselines", cwd=tmp_path)
    session_id = load_config(session).session_id
    admin = s3_server.client("admin")

    def objects() -> dict[str, str]:
        found = {}
        for party in PARTIES:
            listed = admin.list_objects_v2(
                Bucket=f"zkadapt-{party}", Prefix=f"zkadapt/{session_id}/"
            )
            found |= {f"{party}/{o['Key']}": o["ETag"] for o in listed.get("Contents", [])}
        return found

    before = objects()
    zkadapt(
        "run",
        str(session),
        "--out",
        "second",
        "--no-baselines",
        cwd=tmp_path,
    )
    after = objects()
    assert {k: after[k] for k in before} == before  # every first-run object as it was
    monkeypatch.setenv("AWS_PROFILE", "zkadapt-carol")
    for out in ("first", "second"):
        audit = zkadapt("audit", str(tmp_path / out / "session.toml"), "--out", out, cwd=tmp_path)
        assert "audit: PASSED" in audit.stdout
