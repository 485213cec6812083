"""Resume follows the channel, not local checkpoints (issue 17).

A rerun used to trust each party's checkpoints: with the ledger deleted, or its last round
cut off, it re-posted ``RoundDone`` from local files (orphan entries the audit then failed
on); with a submission deleted from the ledger (hash chain recomputed) it reported success.
Now a checkpoint counts only for a round the channel shows; a channel that contradicts
itself stops the party with one line naming the round.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import zkadapt
from zkadapt.channel.local import GENESIS_HASH, entry_hash

pytestmark = pytest.mark.e2e


def _finished(small_session: Path, tmp_path: Path) -> Path:
    zkadapt("run", str(small_session), "--out", "out", "--no-baselines", cwd=tmp_path)
    return tmp_path / "out"


def _digest(out: Path) -> str:
    return str(json.loads((out / "report.json").read_text())["final"]["model_sha256"])


def _rows(out: Path) -> list[tuple[int, str, bytes, bytes, float]]:
    with sqlite3.connect(out / "ledger.sqlite") as conn:
        return conn.execute(
            "SELECT seq, sender, payload, signature, timestamp FROM entries ORDER BY seq"
        ).fetchall()


def _rewrite(out: Path, keep: list[tuple[int, str, bytes, bytes, float]]) -> None:
    """Replace the ledger by ``keep`` renumbered and re-chained (an edit the chain hides)."""
    conn = sqlite3.connect(out / "ledger.sqlite")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_delete")
    conn.execute("DROP TRIGGER IF EXISTS entries_no_update")
    conn.execute("DELETE FROM entries")
    prev = GENESIS_HASH
    for seq, (_, sender, payload, signature, timestamp) in enumerate(keep, start=1):
        digest = entry_hash(prev, seq, sender, payload, signature, timestamp)
        conn.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, sender, payload, signature, timestamp, prev, digest),
        )
        prev = digest
    conn.commit()
    conn.close()


def _audit_passes(small_session: Path, out: Path) -> bool:
    audit = zkadapt("audit", str(out / "session.toml"), "--out", str(out), cwd=out, check=False)
    return audit.returncode == 0 and "audit: PASSED" in audit.stdout


def test_a_rerun_on_a_deleted_ledger_starts_over_instead_of_posting_orphans(
    small_session: Path, tmp_path: Path
) -> None:
    out = _finished(small_session, tmp_path)
    first = _digest(out)
    (out / "ledger.sqlite").unlink()
    zkadapt("run", str(small_session), "--out", "out", "--no-baselines", cwd=tmp_path)
    payloads = [json.loads(p) for _, _, p, _, _ in _rows(out)]
    assert [p["round"] for p in payloads if p["type"] == "Submitted"] == [1, 1, 1, 2, 2, 2]
    assert sum(p["type"] == "RoundDone" for p in payloads) == 6  # no orphans
    assert _digest(out) == first  # the same deterministic session, recorded again
    assert _audit_passes(small_session, out)


def test_a_rerun_on_a_ledger_whose_last_round_was_cut_off_redoes_that_round(
    small_session: Path, tmp_path: Path
) -> None:
    out = _finished(small_session, tmp_path)
    rows = _rows(out)
    first_of_round_2 = next(i for i, r in enumerate(rows) if b'"round":2' in r[2])
    _rewrite(out, rows[:first_of_round_2])
    zkadapt("run", str(small_session), "--out", "out", "--no-baselines", cwd=tmp_path)
    payloads = [json.loads(p) for _, _, p, _, _ in _rows(out)]
    assert sum(p["type"] == "RoundDone" and p["round"] == 2 for p in payloads) == 3
    assert _audit_passes(small_session, out)


def test_a_ledger_missing_an_accepted_submission_stops_the_rerun_with_one_line(
    small_session: Path, tmp_path: Path
) -> None:
    out = _finished(small_session, tmp_path)
    rows = _rows(out)
    bob_2 = next(
        i
        for i, r in enumerate(rows)
        if r[1] == "bob" and b'"Submitted"' in r[2] and b'"round":2' in r[2]
    )
    _rewrite(out, rows[:bob_2] + rows[bob_2 + 1 :])
    before = len(_rows(out))
    rerun = zkadapt(
        "run", str(small_session), "--out", "out", "--no-baselines", cwd=tmp_path, check=False
    )
    assert rerun.returncode == 1, rerun.stderr
    assert "round 2" in rerun.stderr and "accepts bob" in rerun.stderr, rerun.stderr
    assert "Traceback" not in rerun.stderr
    assert len(_rows(out)) == before  # nothing posted on the edited ledger
