"""An external key-generation centre deals the key through the CLI (issue 4).

As a user would: ``zkadapt init --kgc``, start the three parties with ``zkadapt party``, run
``zkadapt keygen`` as the centre (not a party), and audit the finished session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import SMALL, edit_session, spawn_party, zkadapt

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")


def test_external_kgc_deals_every_epoch_and_parties_finish(tmp_path: Path) -> None:
    made = zkadapt("init", "sess", "--example", "mnist", "--kgc", cwd=tmp_path)
    assert "kgc" in made.stdout
    session = tmp_path / "sess" / "session.toml"
    edit_session(
        session,
        data=SMALL,
        session={"rounds": 2},
        model={"hidden": [16]},
        privacy={"key_bits": 512, "refresh_every": 1},  # a fresh key for each round
        protocol={"submit_timeout_s": 120},
    )
    out = tmp_path / "out"
    out.mkdir()
    parties = [spawn_party(session, n, out, tmp_path / f"{n}.log") for n in NAMES]
    centre = zkadapt("keygen", str(session), "--out", str(out), cwd=tmp_path)
    assert "3 of 3 parties joined" in centre.stdout
    assert "dealt 2 key epoch(s)" in centre.stdout, centre.stdout
    for proc, name in zip(parties, NAMES, strict=True):
        assert proc.wait(timeout=300) == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
    digests = {
        json.loads((out / "parties" / n / "result.json").read_text())["final_model_sha256"]
        for n in NAMES
    }
    assert len(digests) == 1
    for epoch in (0, 1):
        shares = sorted((out / "store").rglob(f"keys/epoch-{epoch}/share/*.bin"))
        assert [p.name.split(".")[0] for p in shares] == list(NAMES)  # <party>.<digest>.bin
        assert all(b"zkadapt" not in p.read_bytes() for p in shares)  # sealed
    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path)
    assert "audit: PASSED" in audit.stdout and audit.stdout.count(" OK ") == 2

    again = zkadapt("keygen", str(session), "--out", str(out), cwd=tmp_path, check=False)
    assert again.returncode == 2 and "dealt already" in again.stderr


def test_keygen_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    zkadapt("init", "plain", "--example", "mnist", cwd=tmp_path)
    zkadapt("init", "kgc", "--example", "mnist", "--kgc", cwd=tmp_path)
    cases = [
        (("keygen", "plain/session.toml"), "privacy.kgc_public_key"),
        (("keygen", "kgc/session.toml", "--key", "kgc/keys/alice.skey"), "--key"),
        (("keygen", "kgc/session.toml", "--key", "missing.skey"), "--key"),
        (("keygen", "nowhere.toml"), "session file not found"),
        (("run", "kgc/session.toml"), "zkadapt keygen"),
    ]
    for args, expected in cases:
        proc = zkadapt(*args, cwd=tmp_path, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], lines
