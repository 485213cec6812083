"""``zkadapt audit``: a clean session passes; tampered objects and ledger entries are named."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import zkadapt

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 3-party plaintext session run through the CLI (its output directory)."""
    cwd = tmp_path_factory.mktemp("audit")
    zkadapt("init", "sess", "--example", "mnist", cwd=cwd)
    from tests.e2e.conftest import SMALL, edit_session

    edit_session(cwd / "sess" / "session.toml", data=SMALL, session={"rounds": 2})
    zkadapt("run", "sess/session.toml", "--out", "out", "--no-baselines", cwd=cwd)
    return cwd / "out"


def _copy(out: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(out, target)
    return target


def test_clean_session_passes_the_audit(finished: Path) -> None:
    proc = zkadapt("audit", str(finished / "session.toml"), cwd=finished)
    assert "audit: PASSED" in proc.stdout
    assert proc.stdout.count(" OK ") == 2  # two rounds
    one = zkadapt("audit", str(finished / "session.toml"), "--round", "2", cwd=finished)
    assert "    2  OK" in one.stdout and "    1  " not in one.stdout


def test_tampered_update_object_fails_the_audit_and_names_it(
    finished: Path, tmp_path: Path
) -> None:
    out = _copy(finished, tmp_path)
    victim = next((out / "store").rglob("round-1/update/bob.bin"))
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = zkadapt("audit", str(out / "session.toml"), cwd=out, check=False)
    assert proc.returncode == 1
    assert "audit: FAILED" in proc.stdout
    assert "bob: digest mismatch" in proc.stdout and "round" in proc.stdout


def test_tampered_ledger_entry_fails_the_audit_and_names_the_seq(
    finished: Path, tmp_path: Path
) -> None:
    out = _copy(finished, tmp_path)
    conn = sqlite3.connect(out / "ledger.sqlite")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("UPDATE entries SET payload = replace(payload, 'alice', 'alicf') WHERE seq = 3")
    conn.commit()
    conn.close()
    proc = zkadapt("audit", str(out / "session.toml"), cwd=out, check=False)
    assert proc.returncode == 1
    assert "channel:" in proc.stdout and "seq 3" in proc.stdout and "audit: FAILED" in proc.stdout


def test_escrow_status_lists_every_party(finished: Path) -> None:
    proc = zkadapt("escrow", "status", str(finished / "session.toml"), cwd=finished)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("escrow ") and "deposit 10000000 lovelace each" in lines[0]
    assert [ln.split(":")[0].strip() for ln in lines[1:]] == ["alice", "bob", "carol"]
    assert all("no deposit" in ln for ln in lines[1:])  # nobody deposited on a local ledger
