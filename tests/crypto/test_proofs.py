"""Tests for zkadapt.crypto.proofs: batched plaintext-knowledge and decryption-share proofs."""

from __future__ import annotations

import dataclasses
import random

import pytest

from zkadapt.crypto.paillier import Ciphertext, encrypt_many
from zkadapt.crypto.proofs import (
    PlaintextProof,
    ProofContext,
    ShareProof,
    Transcript,
    decrypt_and_prove,
    multi_exp,
    proof_size_bytes,
    prove_decryption_shares,
    prove_plaintext_knowledge,
    verify_decryption_shares,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, combine, deal_threshold_key
from zkadapt.errors import CryptoError

CTX = ProofContext(session="sess-1", round=3, party="alice")

Dealt = tuple[ThresholdPublicKey, list[KeyShare]]
Batch = tuple[list[Ciphertext], list[int], list[int]]


@pytest.fixture(scope="module")
def dealt() -> Dealt:
    return deal_threshold_key(512, 2, 3)


@pytest.fixture(scope="module")
def batch(dealt: Dealt) -> Batch:
    pub = dealt[0].paillier
    plaintexts = [random.randrange(int(pub.n)) for _ in range(6)]
    ciphertexts, randomness = encrypt_many(pub, plaintexts, workers=1)
    return ciphertexts, plaintexts, randomness


def test_plaintext_proof_verifies_and_round_trips(dealt: Dealt, batch: Batch) -> None:
    pub = dealt[0].paillier
    cts, ms, rs = batch
    proof = prove_plaintext_knowledge(pub, CTX, cts, ms, rs)
    verify_plaintext_knowledge(pub, CTX, cts, proof)
    assert PlaintextProof.from_bytes(proof.to_bytes()) == proof
    assert proof_size_bytes(proof) == len(proof.to_bytes())


def test_textbook_randomness_also_proves(dealt: Dealt) -> None:
    pub = dealt[0].paillier
    cts, rs = encrypt_many(pub, [1, 2, 3], workers=1, textbook=True)
    proof = prove_plaintext_knowledge(pub, CTX, cts, [1, 2, 3], rs)
    verify_plaintext_knowledge(pub, CTX, cts, proof)


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(CTX, session="sess-2"),
        dataclasses.replace(CTX, round=4),
        dataclasses.replace(CTX, party="mallory"),
    ],
)
def test_plaintext_proof_is_bound_to_context(
    dealt: Dealt, batch: Batch, other: ProofContext
) -> None:
    pub = dealt[0].paillier
    cts, ms, rs = batch
    proof = prove_plaintext_knowledge(pub, CTX, cts, ms, rs)
    with pytest.raises(CryptoError, match="equation"):
        verify_plaintext_knowledge(pub, other, cts, proof)


def test_copied_rerandomized_or_scaled_ciphertexts_cannot_be_proved(
    dealt: Dealt, batch: Batch
) -> None:
    pub = dealt[0].paillier
    cts, ms, rs = batch
    mallory = dataclasses.replace(CTX, party="mallory")
    fresh = [pub.rerandomize(c) for c in cts]
    scaled = [pub.mul(c, 2) for c in cts]
    for stolen in (cts, fresh, scaled):
        # Mallory knows neither the plaintexts nor the randomness; its best guess fails.
        proof = prove_plaintext_knowledge(pub, mallory, stolen, [0] * len(cts), [1] * len(cts))
        with pytest.raises(CryptoError):
            verify_plaintext_knowledge(pub, mallory, stolen, proof)
    # And Alice's own proof does not transfer to a different set of ciphertexts.
    proof = prove_plaintext_knowledge(pub, CTX, cts, ms, rs)
    with pytest.raises(CryptoError):
        verify_plaintext_knowledge(pub, CTX, fresh, proof)


def test_tampered_plaintext_proof_fails(dealt: Dealt, batch: Batch) -> None:
    pub = dealt[0].paillier
    cts, ms, rs = batch
    proof = prove_plaintext_knowledge(pub, CTX, cts, ms, rs)
    n = int(pub.n)
    for bad, reason in [
        (dataclasses.replace(proof, z1=(proof.z1 + 1) % n), "equation"),
        (dataclasses.replace(proof, z1=n), "z1"),
        (dataclasses.replace(proof, z2=0), "z2"),
        (dataclasses.replace(proof, a=0), "unit"),
    ]:
        with pytest.raises(CryptoError, match=reason):
            verify_plaintext_knowledge(pub, CTX, cts, bad)
    wrong = list(ms)
    wrong[2] = (wrong[2] + 1) % n
    bad_proof = prove_plaintext_knowledge(pub, CTX, cts, wrong, rs)
    with pytest.raises(CryptoError):
        verify_plaintext_knowledge(pub, CTX, cts, bad_proof)


def test_share_proofs_verify_and_shares_combine(dealt: Dealt, batch: Batch) -> None:
    public, shares = dealt
    cts, ms, _ = batch
    posted = {}
    for s in shares:
        ctx = dataclasses.replace(CTX, party=f"p{s.index}")
        values, proof = decrypt_and_prove(s, ctx, cts)
        verify_decryption_shares(public, s.index, ctx, cts, values, proof)
        assert ShareProof.from_bytes(proof.to_bytes()) == proof
        posted[s.index] = values
    for k, m in enumerate(ms):
        assert combine(public, {i: posted[i][k] for i in (1, 3)}) == m


def test_wrong_share_is_rejected_and_the_others_still_decrypt(dealt: Dealt, batch: Batch) -> None:
    public, shares = dealt
    pub = public.paillier
    cts, ms, _ = batch
    honest = {s.index: decrypt_and_prove(s, CTX, cts) for s in shares}
    values, proof = honest[2]
    for tamper in (lambda v: v * (1 + pub.n) % pub.nsquare, lambda v: v * v % pub.nsquare):
        forged = list(values)
        forged[4] = tamper(forged[4])
        with pytest.raises(CryptoError, match="party 2"):
            verify_decryption_shares(public, 2, CTX, cts, forged, proof)
        # A cheater who recomputes the proof for its forged shares still fails.
        with pytest.raises(CryptoError):
            verify_decryption_shares(
                public, 2, CTX, cts, forged, prove_decryption_shares(shares[1], CTX, cts, forged)
            )
    accepted = {i: honest[i][0] for i in (1, 3)}
    assert [combine(public, {i: v[k] for i, v in accepted.items()}) for k in range(6)] == ms


def test_share_proof_is_bound_to_party_index_and_context(dealt: Dealt, batch: Batch) -> None:
    public, shares = dealt
    cts, _, _ = batch
    values, proof = decrypt_and_prove(shares[0], CTX, cts)
    with pytest.raises(CryptoError):
        verify_decryption_shares(public, 2, CTX, cts, values, proof)
    with pytest.raises(CryptoError):
        verify_decryption_shares(public, 1, dataclasses.replace(CTX, round=4), cts, values, proof)
    with pytest.raises(CryptoError, match="z out of range"):
        verify_decryption_shares(public, 1, CTX, cts, values, dataclasses.replace(proof, z=-1))
    with pytest.raises(ValueError):
        verify_decryption_shares(public, 1, CTX, cts, values[:-1], proof)


def test_additive_key_share_proofs() -> None:
    public, shares = deal_threshold_key(256, 3, 3, "additive")
    pub = public.paillier
    cts = [pub.encrypt(7), pub.encrypt(8)]
    posted = {}
    for s in shares:
        values, proof = decrypt_and_prove(s, CTX, cts)
        verify_decryption_shares(public, s.index, CTX, cts, values, proof)
        posted[s.index] = values
    assert combine(public, {i: v[1] for i, v in posted.items()}) == 8


def test_multi_exp_matches_naive_products() -> None:
    rng = random.Random(5)
    modulus = 2**127 - 1
    for count in (0, 1, 3, 40, 300):
        bases = [rng.randrange(1, modulus) for _ in range(count)]
        exps = [rng.getrandbits(128) for _ in range(count)]
        expected = 1
        for b, e in zip(bases, exps, strict=True):
            expected = expected * pow(b, e, modulus) % modulus
        assert multi_exp(bases, exps, modulus) == expected


def test_transcript_items_are_length_prefixed() -> None:
    def challenge(*items: bytes) -> int:
        t = Transcript(b"zkadapt/test/v1", CTX, "kid")
        for item in items:
            t.append_bytes("x", item)
        return t.challenge()

    assert challenge(b"ab", b"c") != challenge(b"a", b"bc")
    assert challenge(b"ab") == challenge(b"ab")
    assert 0 <= challenge(b"") < 2**128


def test_proof_bytes_must_be_canonical() -> None:
    with pytest.raises(CryptoError):
        PlaintextProof.from_bytes(b'{"a":"01","domain":"zkadapt/pok-proof/v1","z1":"1","z2":"1"}')
    with pytest.raises(CryptoError):
        ShareProof.from_bytes(b'{"a":"1","b":"1","domain":"zkadapt/pok-proof/v1","z":"1"}')
