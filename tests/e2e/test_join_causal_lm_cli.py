"""A causal-LM newcomer joins through the CLI with its own text (``zkadapt join --data``,
docs/membership.md): the session file's ``data.parties`` cannot name it (the session id is
the file's hash), so it names its text on the command line.

The refusals run without the LLM extras (nothing is loaded before them). The session test
(``slow``: four processes importing transformers) runs three ``zkadapt party`` processes on
a tiny random Llama and starts ``zkadapt join --data dave.txt`` once round 1 is cut; carol is
paused (SIGSTOP) after her round-1 submission so that dave's request lands during round 2,
as in tests/e2e/joining.py. Dave trains on his own text from round 3, every party ends
with the same digest, and ``zkadapt audit`` passes.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import tomli_w
import tomllib

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.joining import JoinScene
from zkadapt.assembly import open_session_channel
from zkadapt.config import load_config
from zkadapt.protocol.messages import JoinRequest, RoundDone, Submitted

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
TEXTS = {
    "alice": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind.\n",
    "bob": "When shall we three meet again\nIn thunder, lightning, or in rain?\n",
    "carol": "Full fathom five thy father lies;\nOf his bones are coral made;\n",
}
DAVE = "The slings and arrows of outrageous fortune,\nOr to take arms against a sea.\n"
ROUNDS = 3


def test_join_refuses_a_causal_lm_newcomer_without_its_text(tmp_path: Path) -> None:
    zkadapt("init", "sess", "--example", "qlora-smollm2", cwd=tmp_path)
    session = tmp_path / "sess" / "session.toml"
    edit_session(session, membership={"admission": "open"})
    out = tmp_path / "out"
    out.mkdir()
    open_session_channel(load_config(session), out).close()  # the ledger exists, empty

    def join(*args: str) -> subprocess.CompletedProcess[str]:
        return zkadapt(
            "join", str(session), "--name", "dave", "--out", str(out), *args, cwd=tmp_path,
            check=False,
        )  # fmt: skip

    no_data = join()
    assert no_data.returncode == 2, no_data.stderr
    assert 'model.kind = "causal-lm": a newcomer brings its own text, pass --data' in (
        no_data.stderr
    )
    missing = join("--data", "dave.txt")
    assert missing.returncode == 2, missing.stderr
    assert f"--data dave.txt: no such file or folder ({tmp_path / 'sess' / 'dave.txt'})" in (
        missing.stderr
    )
    (tmp_path / "sess" / "dave.txt").write_text(DAVE, encoding="utf-8")
    no_heldout = join("--data", "dave.txt", "--heldout", "gone.txt")
    assert no_heldout.returncode == 2 and "--heldout gone.txt: no such file" in no_heldout.stderr
    for proc in (no_data, missing, no_heldout):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    # nothing was posted, no key was made, no party ran
    assert JoinScene(session, out, tmp_path).read().posted == []
    assert not (tmp_path / "sess" / "keys" / "dave.skey").exists()
    assert not (out / "parties" / "dave").exists()

    zkadapt("init", "mnist", "--example", "mnist", cwd=tmp_path)
    mnist = tmp_path / "mnist" / "session.toml"
    edit_session(mnist, membership={"admission": "open"})
    mlp = zkadapt(
        "join", str(mnist), "--name", "dave", "--data", "x.txt", cwd=tmp_path, check=False
    )
    assert mlp.returncode == 2 and len(mlp.stderr.strip().splitlines()) == 1, mlp.stderr
    assert '--data and --heldout are for model.kind = "causal-lm"' in mlp.stderr


def _tiny_session(tmp_path: Path) -> Path:
    """The qlora example's parties and keys, on a tiny random Llama and local text."""
    from tests.learning.tiny_lm import make_tiny_model

    zkadapt("init", "sess", "--example", "qlora-smollm2", cwd=tmp_path)
    folder = tmp_path / "sess"
    make_tiny_model(folder / "tiny")
    for name, text in TEXTS.items():
        (folder / f"{name}.txt").write_text(text * 12, encoding="utf-8")
    (folder / "dave.txt").write_text(DAVE * 20, encoding="utf-8")
    session = folder / "session.toml"
    raw = tomllib.loads(session.read_text())
    raw["session"]["rounds"] = ROUNDS
    raw["model"] = {"kind": "causal-lm", "path": "tiny", "lora_rank": 4}
    raw["data"] = {
        "source": "text",
        "seq_len": 16,
        "heldout_fraction": 0.2,
        "parties": {name: f"{name}.txt" for name in TEXTS},
    }
    raw["training"] = {"steps": 2, "batch_size": 4, "lr": 0.01, "optimizer": "adamw"}
    raw["protocol"] = {"submit_timeout_s": 240, "close_votes": 2}
    raw["membership"] = {"admission": "open", "max_parties": 4}
    session.write_text(tomli_w.dumps(raw), encoding="utf-8")
    return session


@pytest.mark.slow
def test_a_causal_lm_newcomer_joins_with_its_own_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("bitsandbytes")
    from zkadapt.learning.base_model import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    session = _tiny_session(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with JoinScene(session, out, tmp_path, limit_s=300) as scene:
        scene.spawn_parties(NAMES)
        started = time.monotonic()
        scene.join_during_round_2("carol", "dave", "--data", "dave.txt")
        assert scene.read().cut(2) is None  # the request fell during round 2
        scene.resume("carol")
        codes = scene.wait_all(timeout=400)
        assert codes == dict.fromkeys((*NAMES, "dave"), 0), scene.tails()
    print(f"four parties, {ROUNDS} rounds: {time.monotonic() - started:.1f} s")

    history = scene.read()
    assert history.roster is not None
    assert [(n.name, n.round) for n in history.roster.admitted] == [("dave", 3)]
    request = next(p.message for p in history.posted if isinstance(p.message, JoinRequest))
    submissions = [p.message for p in history.posted if isinstance(p.message, Submitted)]
    assert [m.round for m in submissions if m.party == "dave"] == [3]
    weights = {m.party: m.n_samples for m in submissions if m.round == 3}
    assert set(weights) == {*NAMES, "dave"} and weights["dave"] == request.n_samples
    # its FedAvg weight is its own block count: dave.txt is longer than anyone's text
    assert weights["dave"] > max(weights[name] for name in NAMES)
    assert "dave" in history.round_done(3)["alice"].accepted
    assert not history.dropped and not history.violating
    # dave's RoundDone metrics are over the listed parties' pooled held-out: alice's exactly
    done = {
        p.sender: p.message
        for p in history.posted
        if isinstance(p.message, RoundDone) and p.message.round == ROUNDS
    }
    scores = {
        name: {k: v for k, v in done[name].metrics.items() if k.startswith("global_")}
        for name in ("alice", "dave")
    }
    assert scores["dave"] and scores["dave"] == scores["alice"], done
    assert done["dave"].metrics["perplexity"] != done["alice"].metrics["perplexity"]  # local
    digests = {
        name: json.loads((out / "parties" / name / "result.json").read_text())["final_model_sha256"]
        for name in (*NAMES, "dave")
    }
    assert len(set(digests.values())) == 1, digests
    audit = zkadapt("audit", str(session), "--out", str(out), cwd=tmp_path, check=False)
    assert audit.returncode == 0 and "audit: PASSED" in audit.stdout, audit.stdout
    assert "dave joined: member from round 3" in audit.stdout, audit.stdout
