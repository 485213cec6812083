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
    victim = next((out / "store").rglob("round-1/update/bob.*.bin"))  # content-addressed
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


def _rows(out: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        return conn.execute(
            "SELECT seq, sender, payload, signature, timestamp FROM entries ORDER BY seq"
        ).fetchall()


def _keep_only(out: Path, predicate: object) -> None:
    """Delete every ledger row from the first one ``predicate(payload)`` rejects (a prefix stays
    a valid hash chain, so only the completeness check can notice)."""
    first_gone = next(seq for seq, _, payload, *_ in _rows(out) if not predicate(payload))  # type: ignore[operator]
    conn = sqlite3.connect(out / "ledger.sqlite")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    conn.execute("DELETE FROM entries WHERE seq >= ?", (first_gone,))
    conn.commit()
    conn.close()


def test_a_ledger_missing_its_last_round_fails_unless_partial(
    finished: Path, tmp_path: Path
) -> None:
    out = _copy(finished, tmp_path)
    _keep_only(out, lambda payload: b'"round":2' not in payload)
    proc = zkadapt("audit", str(out / "session.toml"), cwd=out, check=False)
    assert proc.returncode == 1, proc.stdout
    assert "rounds: 1 of 2 planned completed" in proc.stdout
    assert "INCOMPLETE: 1 of 2 rounds" in proc.stdout  # docs/threats.md section 4
    assert "round 2 never ran" in proc.stdout and "audit: FAILED" in proc.stdout
    partial = zkadapt("audit", str(out / "session.toml"), "--partial", cwd=out)
    assert "audit: PASSED" in partial.stdout and "(partial audit)" in partial.stdout
    assert partial.stdout.count(" OK ") == 1


def test_a_ledger_with_no_completed_round_never_passes(finished: Path, tmp_path: Path) -> None:
    out = _copy(finished, tmp_path)
    _keep_only(out, lambda payload: b'"RoundDone"' not in payload)
    for extra in ([], ["--partial"]):
        proc = zkadapt("audit", str(out / "session.toml"), *extra, cwd=out, check=False)
        assert proc.returncode == 1, proc.stdout
        assert "rounds: 0 of 2 planned completed" in proc.stdout
        assert "round 1 started but never completed" in proc.stdout


def test_a_replayed_signed_row_is_flagged(finished: Path, tmp_path: Path) -> None:
    from zkadapt.channel.local import entry_hash

    out = _copy(finished, tmp_path)
    rows = _rows(out)
    seq, sender, payload, signature, timestamp = rows[2]
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        last_seq, last_hash = conn.execute(
            "SELECT seq, entry_hash FROM entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        new_seq = last_seq + 1
        digest = entry_hash(last_hash, new_seq, sender, payload, signature, timestamp)  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (new_seq, sender, payload, signature, timestamp, last_hash, digest),
        )
    proc = zkadapt("audit", str(out / "session.toml"), cwd=out, check=False)
    assert proc.returncode == 1, proc.stdout
    assert f"seq {new_seq} replays seq {seq}" in proc.stdout
