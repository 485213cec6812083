"""Tests for zkadapt.crypto.threshold: dealing, shares, combination, serialization."""

from __future__ import annotations

import dataclasses
import itertools
import pickle

import gmpy2
import pytest

from zkadapt.crypto.paillier import Ciphertext, PaillierPublicKey
from zkadapt.crypto.threshold import (
    KeyShare,
    ThresholdPublicKey,
    combine,
    deal_threshold_key,
)
from zkadapt.errors import CryptoError

BITS = 512

# Known-answer vector (computed independently with pow()): 64-bit safe primes, t = 2, n = 3,
# f(X) = d + A1·X over Z_{Nm}, Δ = 6, and the pinned DJN ciphertext of 424242.
P = 14115498260086950263
Q = 14195859490234787447
N = P * Q
H = 65562218657147066407460356755984213655
A1 = 0x0123456789ABCDEF0123456789ABCDEF
V = 120693534428686955557878915667115652900
C = 15085120162462029635589372377142656624537108231100107864681468167451963726211
SHARE_1 = 15336084756953749852782546596241823502167039930797420130615461105218472929997


@pytest.fixture(scope="module", params=[(2, 3, "dealer"), (3, 5, "dealer"), (3, 3, "additive")])
def dealt(request: pytest.FixtureRequest) -> tuple[ThresholdPublicKey, list[KeyShare]]:
    t, n, mode = request.param
    return deal_threshold_key(BITS, t, n, mode)


def test_every_t_subset_decrypts(dealt: tuple[ThresholdPublicKey, list[KeyShare]]) -> None:
    public, shares = dealt
    pub = public.paillier
    c = pub.add(pub.encrypt(1234567), pub.encrypt(int(pub.n) - 7, textbook=True))
    partial = {s.index: s.decryption_share(c) for s in shares}
    for subset in itertools.combinations(partial, public.t):
        assert combine(public, {i: partial[i] for i in subset}) == 1234560
    assert combine(public, partial) == 1234560  # extra shares are fine


def test_fewer_than_t_shares_fail(dealt: tuple[ThresholdPublicKey, list[KeyShare]]) -> None:
    public, shares = dealt
    c = public.paillier.encrypt(5)
    partial = {s.index: s.decryption_share(c) for s in shares[: public.t - 1]}
    with pytest.raises(CryptoError, match=f"need {public.t}"):
        combine(public, partial)


def test_wrong_share_gives_wrong_result_or_error(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    public, shares = dealt
    pub = public.paillier
    c = pub.encrypt(77)
    partial = {s.index: s.decryption_share(c) for s in shares[: public.t]}
    shifted = dict(partial)
    shifted[1] = partial[1] * (1 + pub.n) % pub.nsquare  # still of the form (1+N)^x · …
    assert combine(public, shifted) != 77
    scrambled = dict(partial)
    scrambled[1] = partial[1] * c.value % pub.nsquare
    with pytest.raises(CryptoError, match="inconsistent"):
        combine(public, scrambled)


def test_shares_match_verification_keys(dealt: tuple[ThresholdPublicKey, list[KeyShare]]) -> None:
    public, shares = dealt
    assert [s.index for s in shares] == list(range(1, public.n + 1))
    assert public.delta == (1 if public.mode == "additive" else [1, 1, 2, 6, 24, 120][public.n])
    for s in shares:
        s.check()
        assert KeyShare.from_bytes(s.to_bytes(), public).exponent == s.exponent


def test_public_key_round_trip(dealt: tuple[ThresholdPublicKey, list[KeyShare]]) -> None:
    public, _ = dealt
    assert ThresholdPublicKey.from_bytes(public.to_bytes()) == public
    assert public.key_id == public.paillier.key_id


def test_tampered_public_key_is_rejected(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    public, _ = dealt
    data = public.to_bytes()
    with pytest.raises(CryptoError, match="key id"):
        ThresholdPublicKey.from_bytes(data.replace(public.key_id.encode(), b"0" * 64))
    with pytest.raises(CryptoError):
        ThresholdPublicKey.from_bytes(data.replace(b'"t":', b'"t": '))
    nothing = data.replace(b'"verification_keys":["', b'"verification_keys":["0","')
    with pytest.raises(CryptoError):
        ThresholdPublicKey.from_bytes(nothing)


def test_small_order_v_is_rejected(dealt: tuple[ThresholdPublicKey, list[KeyShare]]) -> None:
    public, _ = dealt
    n = int(public.paillier.n)
    for bad_v in (1, 1 + n, (n - 1) ** 2 % (n * n)):
        with pytest.raises(CryptoError, match="large order"):
            dataclasses.replace(public, v=bad_v)


def test_share_for_another_key_or_tampered_share_is_rejected(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    public, shares = dealt
    other, _ = deal_threshold_key(256, 1, 1)
    with pytest.raises(CryptoError, match="not"):
        KeyShare.from_bytes(shares[0].to_bytes(), other)
    forged = KeyShare(public, 1, int(shares[1].exponent // public.delta))
    with pytest.raises(CryptoError, match="verification key"):
        KeyShare.from_bytes(forged.to_bytes(), public)


def test_key_share_is_redacted_and_not_picklable(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    _, shares = dealt
    text = repr(shares[0])
    assert "redacted" in text and str(shares[0]._share) not in text
    with pytest.raises(TypeError):
        pickle.dumps(shares[0])


def test_decryption_share_checks_its_ciphertext(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    public, shares = dealt
    with pytest.raises(ValueError, match="not"):
        shares[0].decryption_share(Ciphertext(5, "0" * 64))
    with pytest.raises(CryptoError):
        shares[0].decryption_share(Ciphertext(int(public.paillier.n), public.key_id))


def test_combine_rejects_bad_indices_and_non_units(
    dealt: tuple[ThresholdPublicKey, list[KeyShare]],
) -> None:
    public, shares = dealt
    c = public.paillier.encrypt(3)
    partial = {s.index: s.decryption_share(c) for s in shares}
    with pytest.raises(CryptoError, match="indices"):
        combine(public, {i - 1: v for i, v in partial.items()})
    partial[1] = int(public.paillier.n)
    with pytest.raises(CryptoError, match="unit"):
        combine(public, partial)


def test_bad_dealing_parameters() -> None:
    with pytest.raises(ValueError):
        deal_threshold_key(256, 2, 3, "additive")
    with pytest.raises(ValueError):
        deal_threshold_key(256, 4, 3)
    with pytest.raises(ValueError):
        deal_threshold_key(256, 2, 3, "distributed")
    with pytest.raises(ValueError, match="safe"):
        deal_threshold_key(128, 2, 3, primes=(P, 2**64 + 13))
    with pytest.raises(ValueError, match="bits"):
        deal_threshold_key(256, 2, 3, primes=(P, Q))


def test_known_answer_vector() -> None:
    m = (P // 2) * (Q // 2)
    d = m * int(gmpy2.invert(m, N))
    shares = {i: (d + A1 * i) % (N * m) for i in (1, 2, 3)}
    verification_keys = tuple(pow(V, 6 * shares[i], N * N) for i in (1, 2, 3))
    public = ThresholdPublicKey(PaillierPublicKey(N, H), 2, 3, "dealer", V, verification_keys)
    key_shares = [KeyShare(public, i, shares[i]) for i in (1, 2, 3)]
    c = Ciphertext(C, public.key_id)
    partial = {s.index: s.decryption_share(c) for s in key_shares}
    assert partial[1] == SHARE_1
    for pair in itertools.combinations(partial, 2):
        assert combine(public, {i: partial[i] for i in pair}) == 424242


def test_dealing_with_given_primes() -> None:
    public, shares = deal_threshold_key(128, 2, 3, primes=(P, Q))
    assert public.paillier.n == N
    c = public.paillier.encrypt(31337)
    assert combine(public, {s.index: s.decryption_share(c) for s in shares[1:]}) == 31337


def test_decryption_shares_many_in_worker_processes_equal_the_serial_ones() -> None:
    from zkadapt.crypto.threshold import decryption_shares_many

    public, shares = deal_threshold_key(512, 2, 3, "dealer")
    cts = [public.paillier.encrypt(m) for m in range(40)]
    serial = [shares[0].decryption_share(c) for c in cts]
    assert decryption_shares_many(shares[0], cts, workers=2) == serial
    assert decryption_shares_many(shares[0], cts, workers=1) == serial
