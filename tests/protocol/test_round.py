"""The round protocol with in-memory fakes: agreement, dropout, quorum, rejection, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.protocol.harness import NAMES, SESSION, Fault, Session, targets
from tests.protocol.harness import digests as _digests
from zkadapt.aggregation.strategy import FedAvg, make_strategy
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.messages import PhaseClosed, Rejected, RoundFailed, Submitted, decode
from zkadapt.protocol.round import RoundDeadline
from zkadapt.protocol.update import PlainUpdate
from zkadapt.storage.base import object_key


@pytest.fixture(params=["memory", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every protocol test runs over the in-memory fakes and the real local backends."""
    return request.param


def test_all_parties_agree_and_fedavg_is_the_weighted_mean(tmp_path: Path, backend: str) -> None:
    results = Session(tmp_path, backend=backend, rounds=3).run()
    assert all(isinstance(v, list) for v in results.values()), results
    assert _digests(results["alice"]) == _digests(results["bob"]) == _digests(results["carol"])
    assert all(o.accepted == tuple(NAMES) for o in results["alice"])
    # G(1) = G(0) + mean(lr * (target_i - G(0))) with equal weights; TinyLearner lr = 0.5
    proto = Session(tmp_path / "x").protocol("alice")
    g0 = proto._initial.astype(np.float64)
    expected = g0 + np.mean([0.5 * (t - g0) for t in targets().values()], axis=0)
    saved = RoundCheckpoints(tmp_path / "alice", session_id=SESSION, model_type="tiny")
    state, _meta = __import__("zkadapt.learning.checkpoint", fromlist=["x"]).load_checkpoint(
        saved.path(1)
    )
    np.testing.assert_allclose(state["w"], expected, rtol=1e-6)


def test_silent_party_is_left_out_after_the_deadline(tmp_path: Path, backend: str) -> None:
    session = Session(tmp_path, backend=backend, rounds=3, timeout=0.5)
    results = session.run({"carol": Fault.SILENT})
    for name in NAMES:
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert [o.accepted for o in outcomes] == [tuple(NAMES), ("alice", "bob"), ("alice", "bob")]
    assert _digests(results["alice"]) == _digests(results["carol"])
    closes = [e for e in session.entries() if b'"PhaseClosed"' in e.envelope.payload]
    assert any(b"deadline: missing carol" in e.envelope.payload for e in closes)


def test_below_quorum_fails_the_round_for_every_party_and_the_session_goes_on(
    tmp_path: Path, backend: str
) -> None:
    """Round 2 falls below quorum: every party records it failed with the reason, keeps
    G(2) = G(1), and trains round 3 from it (issue 17: a failed round does not end the
    session)."""
    session = Session(tmp_path, backend=backend, rounds=3, quorum=3, timeout=0.3)
    results = session.run({"carol": Fault.SILENT})
    for name in NAMES:
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert [o.round for o in outcomes] == [1, 2, 3]
        assert outcomes[1].failure == "only 2 of 3 updates accepted, quorum is 3"
        assert outcomes[1].model_sha256 == outcomes[0].model_sha256  # G(2) = G(1)
        assert outcomes[0].failure is None and outcomes[2].failure == outcomes[1].failure
    assert _digests(results["alice"]) == _digests(results["bob"]) == _digests(results["carol"])
    failed = [decode(e.envelope.payload) for e in session.entries()]
    assert {m.round for m in failed if isinstance(m, RoundFailed)} == {2, 3}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.CORRUPT, "digest mismatch"),
        (Fault.REPLAY, "replay"),
        (Fault.COPY, "copied object"),
    ],
)
def test_bad_update_is_rejected_and_the_round_goes_on(
    tmp_path: Path, fault: Fault, reason: str, backend: str
) -> None:
    session = Session(tmp_path, backend=backend, rounds=2, timeout=2.0)
    results = session.run({"carol": fault})
    for name in ("alice", "bob"):
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert outcomes[1].accepted == ("alice", "bob")
        assert outcomes[1].rejected["carol"].startswith(reason)
    assert _digests(results["alice"]) == _digests(results["bob"])
    posted = [decode(e.envelope.payload) for e in session.entries()]
    rejections = {(m.party, m.reason.split(":")[0]) for m in posted if isinstance(m, Rejected)}
    assert rejections == {("carol", reason)}  # recorded in the ledger, with the reason


def test_crashed_party_resumes_from_checkpoint_and_history(tmp_path: Path, backend: str) -> None:
    session = Session(tmp_path, backend=backend, rounds=3, timeout=0.5)
    first = session.run({"carol": Fault.CRASH})
    assert isinstance(first["carol"], Exception)
    assert isinstance(first["alice"], list), repr(first["alice"])
    assert [o.accepted for o in first["alice"]][1] == ("alice", "bob")
    # carol restarts after the others finished: it replays rounds 2 and 3 without training
    resumed = session.protocol("carol").run()
    assert [o.round for o in resumed] == [2, 3]
    assert not any(o.trained for o in resumed)
    assert _digests(resumed) == _digests(first["alice"])[1:]
    carol_round1 = [
        e
        for e in session.entries()
        if b'"Submitted"' in e.envelope.payload and e.envelope.sender == "carol"
    ]
    assert len(carol_round1) == 1  # round 1 was not redone


def test_diloco_parties_agree_across_rounds(tmp_path: Path, backend: str) -> None:
    results = Session(tmp_path, backend=backend, rounds=3, strategy="diloco").run()
    assert _digests(results["alice"]) == _digests(results["carol"])
    assert len(set(_digests(results["alice"]))) == 3


def test_first_phase_closed_in_channel_order_decides(tmp_path: Path) -> None:
    """A submission posted after the cut does not count, even if it arrives early locally."""
    session = Session(tmp_path, rounds=1, timeout=5.0)
    alice = session.protocol("alice")
    bob = session.protocol("bob")
    upd = PlainUpdate(SESSION, 1, "bob", 10, np.zeros(8, dtype=np.float32)).to_bytes()
    ref = session.store.put(object_key(SESSION, 1, "update", "bob"), upd)
    alice.post(PhaseClosed(SESSION, 1, "submit", "test cut"))
    bob.post(Submitted(SESSION, 1, "bob", ref.uri, ref.sha256, ref.size, 10))
    alice.sync()
    assert alice.history.submissions(1, before=alice.history.cut(1)) == {}
    (outcome,) = alice.run()  # the cut holds no candidate: the round fails without training
    assert outcome.failure is not None and "quorum" in outcome.failure and not outcome.trained


def test_round_deadline_counts_down_with_an_injected_clock() -> None:
    now = [100.0]
    deadline = RoundDeadline(5.0, clock=lambda: now[0])
    assert deadline.remaining() == 5.0 and not deadline.expired()
    now[0] = 106.0
    assert deadline.expired() and deadline.remaining() == 0.0


def test_fedavg_is_the_default_strategy() -> None:
    assert isinstance(make_strategy("fedavg"), FedAvg)


def test_a_submission_declaring_a_huge_size_is_refused_before_any_download(
    tmp_path: Path,
) -> None:
    """The owner of an object must not decide how much every verifier downloads (issue 16)."""
    from zkadapt.protocol.round import verify_submission
    from zkadapt.protocol.update import UpdateRejected

    session = Session(tmp_path, rounds=1)
    alice = session.protocol("alice")
    fetched: list[object] = []
    real_get = session.store.get
    session.store.get = lambda ref: fetched.append(ref) or real_get(ref)  # type: ignore[method-assign]
    upd = PlainUpdate(SESSION, 1, "bob", 10, np.zeros(alice.codec.size, np.float32)).to_bytes()
    ref = session.store.put(object_key(SESSION, 1, "update", "bob"), upd)
    huge = Submitted(SESSION, 1, "bob", ref.uri, ref.sha256, 10**12, 10)
    with pytest.raises(UpdateRejected, match="object too large: 1000000000000 bytes"):
        verify_submission(alice.scheme, 1, huge, alice)
    assert fetched == []
    honest = Submitted(SESSION, 1, "bob", ref.uri, ref.sha256, ref.size, 10)
    assert verify_submission(alice.scheme, 1, honest, alice).party == "bob"
