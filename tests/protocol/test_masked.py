"""Rounds with ``privacy.scheme = "masked"`` (docs/masking.md, issue 18) over real local
backends: the same model as plaintext FedAvg up to quantization, fresh seeds, and seed
ciphertexts that cannot be copied, re-randomized, combined or moved onto another y."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.protocol.harness import NAMES, SESSION, Session, digests
from tests.protocol.test_secure_aggregation import KEY_BITS, SAMPLES, _final_state
from zkadapt.crypto.proofs import ProofContext
from zkadapt.protocol.masked import MaskedScheme, MaskedUpdate
from zkadapt.protocol.messages import Rejected, RoundDone, decode
from zkadapt.protocol.schemes import SCHEME_STEPS
from zkadapt.storage.base import ObjectRef
from zkadapt.summary import round_split


class Attack:
    COPY_SEEDS = "puts alice's seed ciphertexts and proof over its own y"
    RERANDOMIZE = "re-randomizes alice's seed ciphertexts (multiplies by r^N)"
    INVERSE = "posts the inverse of the others' seed ciphertexts (to force S to its seed)"


class FaultyMasked(MaskedScheme):
    def __init__(self, *args, attack: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attack = attack

    def seal(self, round_, delta, n_samples, io):
        honest = MaskedUpdate.from_bytes(super().seal(round_, delta, n_samples, io))
        if round_ < 2:
            return honest.to_bytes(self._width())
        while "alice" not in io.history.submissions(round_):
            io.sync(wait=0.05)
        sub = io.history.submissions(round_)["alice"].message
        alice = MaskedUpdate.from_bytes(io.store.get(ObjectRef(sub.uri, sub.sha256, sub.size)))
        public = self._keys[0][0].paillier
        n2 = public.n * public.n
        if self.attack == Attack.COPY_SEEDS:
            cts, proof = alice.seed_ciphertexts, alice.proof
        elif self.attack == Attack.RERANDOMIZE:
            cts = tuple(c * pow(7, public.n, n2) % n2 for c in alice.seed_ciphertexts)
            proof = honest.proof
        else:
            cts = tuple(pow(c, -1, n2) for c in alice.seed_ciphertexts)
            proof = honest.proof
        forged = MaskedUpdate(**{**honest.__dict__, "seed_ciphertexts": cts, "proof": proof})
        return forged.to_bytes(self._width())

    def _width(self) -> int:
        return self._keys[0][0].paillier.ciphertext_bytes


def masked_session(tmp_path: Path, *, attacks: dict[str, str] | None = None, rounds: int = 3):
    session = Session(tmp_path, backend="local", rounds=rounds, timeout=5.0, n_samples=SAMPLES)
    attacks = attacks or {}

    def scheme(name: str) -> MaskedScheme:
        cls = FaultyMasked if name in attacks else MaskedScheme
        extra = {"attack": attacks[name]} if name in attacks else {}
        return cls(
            keyring=session.keyring,
            n_samples=SAMPLES[name],
            key_bits=KEY_BITS,
            threshold=2,
            keygen="dealer",
            dealer="alice",
            quant_bits=16,
            clip=10.0,
            refresh_every=None,
            timeout_s=5.0,
            workers=1,
            **extra,
        )

    session.scheme = scheme
    return session


def test_masked_rounds_agree_and_match_plaintext_fedavg(tmp_path: Path) -> None:
    plain = Session(tmp_path / "plain", backend="local", rounds=3, n_samples=SAMPLES).run()
    masked = masked_session(tmp_path / "masked").run()
    for name in NAMES:
        assert isinstance(masked[name], list), masked[name]
    assert digests(masked["alice"]) == digests(masked["bob"]) == digests(masked["carol"])
    np.testing.assert_allclose(
        _final_state(tmp_path / "masked", "alice", 3),
        _final_state(tmp_path / "plain", "alice", 3),
        atol=1e-3,
    )
    assert digests(plain["alice"]) != digests(masked["alice"])  # quantized, not bit-identical


def test_seeds_are_never_reused(tmp_path: Path) -> None:
    """Two rounds, three parties: six distinct seed ciphertext sets and masked vectors."""
    session = masked_session(tmp_path, rounds=2)
    session.run()
    seen_cts, seen_y = set(), set()
    for entry in session.entries():
        message = decode(entry.envelope.payload)
        if type(message).__name__ != "Submitted":
            continue
        data = session.store.get(ObjectRef(message.uri, message.sha256, message.size))
        update = MaskedUpdate.from_bytes(data)
        seen_cts.add(update.seed_ciphertexts)
        seen_y.add(hashlib.sha256(update.masked).hexdigest())
    assert len(seen_cts) == len(seen_y) == 6


def test_round_done_times_the_schemes_own_work_and_the_evaluation(tmp_path: Path) -> None:
    """Every party posts the masked scheme's steps (work only) and ``evaluate_s``; the
    report's split of the round counts them as private aggregation (issue 18)."""
    session = masked_session(tmp_path, rounds=1)
    session.run()
    done = {}
    for entry in session.entries():
        message = decode(entry.envelope.payload)
        if isinstance(message, RoundDone):
            done[message.party] = message
    assert sorted(done) == list(NAMES)
    for message in done.values():
        steps = {"seal_s", "evaluate_s", *SCHEME_STEPS}
        assert steps <= set(message.timing), message.timing
        assert all(message.timing[k] > 0 for k in steps)
        # the span from the sum to the mean holds the share work and the waiting for shares
        assert message.timing["decrypt_s"] >= message.timing["share_s"]
    split = round_split(done)
    assert split is not None and 0 < split.aggregation_s < split.round_s


@pytest.mark.parametrize("attack", [Attack.COPY_SEEDS, Attack.RERANDOMIZE, Attack.INVERSE])
def test_seed_ciphertexts_not_its_own_are_rejected_by_the_proof(
    tmp_path: Path, attack: str
) -> None:
    session = masked_session(tmp_path, attacks={"carol": attack}, rounds=2)
    results = session.run()
    for name in ("alice", "bob"):
        outcomes = results[name]
        assert isinstance(outcomes, list), outcomes
        assert outcomes[1].accepted == ("alice", "bob")
    assert digests(results["alice"]) == digests(results["bob"])
    rejected = [
        m
        for m in (decode(e.envelope.payload) for e in session.entries())
        if isinstance(m, Rejected)
    ]
    assert rejected and all(m.party == "carol" and "proof failed" in m.reason for m in rejected)


def test_the_proof_is_bound_to_the_masked_vector() -> None:
    """A seed proof made for one y does not verify for another (docs/masking.md step 2)."""
    from zkadapt.crypto.paillier import encrypt_many
    from zkadapt.crypto.proofs import prove_plaintext_knowledge, verify_plaintext_knowledge
    from zkadapt.crypto.threshold import deal_threshold_key
    from zkadapt.errors import CryptoError

    public, _ = deal_threshold_key(KEY_BITS, 2, 3)
    a = ProofContext(SESSION, 1, "alice", hashlib.sha256(b"y1").digest())
    b = ProofContext(SESSION, 1, "alice", hashlib.sha256(b"y2").digest())
    cts, randomness = encrypt_many(public.paillier, [12345], 1)
    proof = prove_plaintext_knowledge(public.paillier, a, cts, [12345], randomness)
    verify_plaintext_knowledge(public.paillier, a, cts, proof)
    with pytest.raises(CryptoError):
        verify_plaintext_knowledge(public.paillier, b, cts, proof)
    assert ProofContext(SESSION, 1, "alice").bound == b""  # unbound proofs are unchanged
