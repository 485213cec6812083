"""Rounds with threshold-Paillier secure aggregation (issues 4 and 5), over real local backends.

Keys are small (512-bit N) so the suite stays fast; the arithmetic is the real one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.protocol.harness import NAMES, SESSION, Fault, Session, digests
from zkadapt.learning.checkpoint import load_checkpoint
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.ciphertexts import EncryptedUpdate, ShareBundle
from zkadapt.protocol.messages import KeyDealt, KeyGenStep, Rejected, decode
from zkadapt.protocol.secure_aggregation import PaillierScheme
from zkadapt.storage.base import ObjectRef

KEY_BITS = 512
SAMPLES = {"alice": 100, "bob": 200, "carol": 300}


class Misbehaviour:
    """Faults of a party's *encryption* side (test code, not a product feature)."""

    GARBAGE = "uploads random bytes"
    FORGED_PROOF = "uploads its own ciphertexts with a forged proof"
    REWRAP = "re-labels alice's ciphertexts and proof as its own"
    SLOW_SHARES = "posts its decryption shares late (honest, but slow)"


class FaultyPaillier(PaillierScheme):
    def __init__(self, *args, fault: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fault = fault

    def seal(self, round_, delta, n_samples, io):
        honest = super().seal(round_, delta, n_samples, io)
        if round_ < 2 or self.fault == Misbehaviour.SLOW_SHARES:
            return honest
        if self.fault == Misbehaviour.GARBAGE:
            return os.urandom(len(honest))
        update = EncryptedUpdate.from_bytes(honest)
        width = self._keys[0][0].paillier.ciphertext_bytes
        if self.fault == Misbehaviour.FORGED_PROOF:
            proof = update.proof.replace(b'"z1":"', b'"z1":"1', 1)
            return _replace(update, proof=proof).to_bytes(width)
        if self.fault == Misbehaviour.REWRAP:
            while "alice" not in io.history.submissions(round_):
                io.sync(wait=0.05)
            sub = io.history.submissions(round_)["alice"].message
            alice = EncryptedUpdate.from_bytes(
                io.store.get(ObjectRef(sub.uri, sub.sha256, sub.size))
            )
            return _replace(alice, party=io.ctx.party, n_samples=update.n_samples).to_bytes(width)
        raise AssertionError(self.fault)

    def post_share(self, round_, io):
        if self.fault == Misbehaviour.SLOW_SHARES:
            time.sleep(0.5)
        return super().post_share(round_, io)


def _replace(update: EncryptedUpdate, **changes) -> EncryptedUpdate:
    fields = {**update.__dict__, **changes}
    return EncryptedUpdate(**fields)


def paillier_session(
    tmp_path: Path,
    *,
    faults: dict[str, str] | None = None,
    keygen: str = "dealer",
    threshold: int = 2,
    refresh_every: int | None = None,
    timeout: float = 5.0,
    rounds: int = 3,
) -> Session:
    session = Session(tmp_path, backend="local", rounds=rounds, timeout=timeout, n_samples=SAMPLES)
    faults = faults or {}

    def scheme(name: str) -> PaillierScheme:
        cls = FaultyPaillier if name in faults else PaillierScheme
        extra = {"fault": faults[name]} if name in faults else {}
        return cls(
            keyring=session.keyring,
            n_samples=SAMPLES[name],
            key_bits=KEY_BITS,
            threshold=3 if keygen == "additive" else threshold,
            keygen=keygen,
            dealer="alice",
            quant_bits=16,
            clip=10.0,
            refresh_every=refresh_every,
            timeout_s=timeout,
            workers=1,
            **extra,
        )

    session.scheme = scheme
    return session


def _final_state(tmp_path: Path, party: str, round_: int) -> np.ndarray:
    checkpoints = RoundCheckpoints(tmp_path / party, session_id=SESSION, model_type="tiny")
    state, _ = load_checkpoint(checkpoints.path(round_))
    return state["w"]


def _messages(session: Session) -> list:
    return [decode(e.envelope.payload) for e in session.entries()]


def test_encrypted_rounds_agree_and_match_plaintext_fedavg(tmp_path: Path) -> None:
    plain = Session(tmp_path / "plain", backend="local", rounds=3, n_samples=SAMPLES).run()
    secure = paillier_session(tmp_path / "secure").run()
    for name in NAMES:
        assert isinstance(secure[name], list), secure[name]
    assert digests(secure["alice"]) == digests(secure["bob"]) == digests(secure["carol"])
    # weighted FedAvg under encryption equals plaintext FedAvg up to 16-bit quantization
    np.testing.assert_allclose(
        _final_state(tmp_path / "secure", "alice", 3),
        _final_state(tmp_path / "plain", "alice", 3),
        atol=1e-3,
    )
    assert digests(plain["alice"]) != digests(secure["alice"])  # quantized, so not bit-identical


def test_dropped_party_does_not_stop_decryption_while_t_remain(tmp_path: Path) -> None:
    session = paillier_session(tmp_path, timeout=1.5)
    results = session.run({"carol": Fault.CRASH})
    assert isinstance(results["carol"], Exception)
    for name in ("alice", "bob"):
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert [o.accepted for o in outcomes][1:] == [("alice", "bob"), ("alice", "bob")]
    assert digests(results["alice"]) == digests(results["bob"])


def test_additive_keys_need_every_party_to_decrypt(tmp_path: Path) -> None:
    session = paillier_session(tmp_path, keygen="additive", timeout=1.5, rounds=2)
    results = session.run({"carol": Fault.CRASH})
    for name in ("alice", "bob"):  # round 2 fails (issue 17: the session goes on from G(1))
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert outcomes[-1].round == 2
        assert outcomes[-1].failure == "only 2 of 3 valid decryption shares"
        assert outcomes[-1].model_sha256 == outcomes[-2].model_sha256


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.REPLAY, "replay"),
        (Fault.COPY, "copied object"),
        (Fault.CORRUPT, "digest mismatch"),
        (Misbehaviour.GARBAGE, "malformed object"),
        (Misbehaviour.FORGED_PROOF, "proof failed"),
        (Misbehaviour.REWRAP, "proof failed"),
    ],
)
def test_misbehaving_party_is_rejected_and_honest_parties_agree(
    tmp_path: Path, fault: object, reason: str
) -> None:
    round_faults = {"carol": fault} if isinstance(fault, Fault) else {}
    scheme_faults = {} if isinstance(fault, Fault) else {"carol": fault}
    session = paillier_session(tmp_path, faults=scheme_faults, rounds=2)
    results = session.run(round_faults)
    for name in ("alice", "bob"):
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert outcomes[1].accepted == ("alice", "bob")
        assert outcomes[1].rejected["carol"].startswith(reason), outcomes[1].rejected
    assert digests(results["alice"]) == digests(results["bob"])
    rejected = {
        (m.party, m.reason.split(":")[0]) for m in _messages(session) if isinstance(m, Rejected)
    }
    assert ("carol", reason) in rejected


def test_wrong_decryption_share_is_rejected_and_the_rest_decrypt(tmp_path: Path) -> None:
    slow = {"alice": Misbehaviour.SLOW_SHARES, "bob": Misbehaviour.SLOW_SHARES}
    session = paillier_session(tmp_path, rounds=2, faults=slow)  # carol's bad shares come first

    original = ShareBundle.to_bytes

    def tamper(bundle: ShareBundle, width: int) -> bytes:
        """carol's round-2 shares get one wrong value; its batched proof no longer holds."""
        if bundle.party == "carol" and bundle.round == 2:
            bad = (bundle.shares[0] + 1, *bundle.shares[1:])
            bundle = ShareBundle(**{**bundle.__dict__, "shares": bad})
        return original(bundle, width)

    ShareBundle.to_bytes = tamper  # type: ignore[method-assign]
    try:
        results = session.run()
    finally:
        ShareBundle.to_bytes = original  # type: ignore[method-assign]
    for name in NAMES:
        assert isinstance(results[name], list), results[name]
    assert digests(results["alice"]) == digests(results["bob"]) == digests(results["carol"])
    reasons = [
        m.reason for m in _messages(session) if isinstance(m, Rejected) and m.party == "carol"
    ]
    assert reasons and all(r.startswith("decryption share: proof failed") for r in reasons)


def test_keys_are_refreshed_every_round_when_asked(tmp_path: Path) -> None:
    session = paillier_session(tmp_path, refresh_every=1, rounds=3)
    results = session.run()
    assert digests(results["alice"]) == digests(results["carol"])
    dealt = [m for m in _messages(session) if isinstance(m, KeyDealt)]
    assert [m.epoch for m in dealt] == [0, 1, 2]
    assert len({m.key_id for m in dealt}) == 3
    # key shares travel sealed: the stored objects are not the plaintext JSON of a KeyShare
    for m in dealt:
        sealed = session.store.get(ObjectRef(**m.shares["bob"]))
        assert b"domain" not in sealed and b"zkadapt" not in sealed


def test_restarted_party_reopens_its_sealed_share_and_catches_up(tmp_path: Path) -> None:
    session = paillier_session(tmp_path, timeout=1.5)
    first = session.run({"carol": Fault.CRASH})
    assert isinstance(first["carol"], Exception)
    resumed = session.protocol("carol").run()
    assert [o.round for o in resumed] == [2, 3]
    assert digests(resumed) == digests(first["alice"])[1:]


def test_distributed_keys_need_no_dealer_mnist_sized(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """784-16-10 MLP-sized updates (12,730 values) under a key no single party ever held."""
    import tests.protocol.harness as harness

    size = 784 * 16 + 16 + 16 * 10 + 10
    big = {n: np.full(size, 0.01 * (i + 1), dtype=np.float32) for i, n in enumerate(NAMES)}
    monkeypatch.setattr(harness, "targets", lambda: big)
    plain = Session(tmp_path / "plain", backend="local", rounds=2, n_samples=SAMPLES).run()
    session = paillier_session(tmp_path / "dkg", keygen="distributed", rounds=2, timeout=60)
    results = session.run()
    for name in NAMES:
        assert isinstance(results[name], list), results[name]
    assert digests(results["alice"]) == digests(results["bob"]) == digests(results["carol"])
    np.testing.assert_allclose(
        _final_state(tmp_path / "dkg", "alice", 2),
        _final_state(tmp_path / "plain", "alice", 2),
        atol=1e-3,
    )
    assert digests(plain["alice"]) != digests(results["alice"])
    messages = _messages(session)
    dealt = [m for m in messages if isinstance(m, KeyDealt)]
    assert sorted(m.party for m in dealt) == NAMES  # every party announces; nobody dealt
    assert len({m.key_id for m in dealt}) == 1
    assert all(set(m.shares) == {m.party} for m in dealt)  # each holds only its own share
    steps = [m for m in messages if isinstance(m, KeyGenStep)]
    assert len(steps) % 3 == 0 and len(steps) >= 3 * 8
    secret = next(m for m in steps if "*" not in m.objects)  # a secret step: sealed per party
    sealed = session.store.get(
        ObjectRef(**secret.objects["bob" if secret.party != "bob" else "alice"])
    )
    assert b"zkadapt" not in sealed and b"values" not in sealed
