"""Interoperability with python-paillier (``phe``), a test dependency only (issue 4).

A dealt threshold key is plain Paillier with g = N + 1 (CRYPTO.md §1–§2), so given the same
p and q, ``phe`` must decrypt our DJN and textbook ciphertexts, and our threshold decryption
(shares + combine, CRYPTO.md §4) must decrypt ``phe``'s ciphertexts. Homomorphic sums (of
packed updates, CRYPTO.md §3) must agree in both directions as well.
"""

from __future__ import annotations

import itertools
import secrets

import gmpy2
import numpy as np
import pytest

from zkadapt.crypto.packing import PackingSpec, clipped_weighted_mean, fedavg_weights
from zkadapt.crypto.paillier import Ciphertext, encrypt_many
from zkadapt.crypto.threshold import KeyShare, ThresholdPublicKey, combine, deal_threshold_key

phe = pytest.importorskip("phe")

# The fixed 64-bit safe primes of test_paillier.py / test_threshold.py (|N| = 128) ...
P64 = 14115498260086950263
Q64 = 14195859490234787447
# ... and a fixed pair of 256-bit safe primes (|N| = 512), made once with generate_safe_primes.
P256 = 88623421937787551684498769140229074550441768806406298984733015154841006007699
Q256 = 108847614948372156040060060882897576865987317649427574366042018990792549239647

Dealt = tuple[ThresholdPublicKey, list[KeyShare], "phe.PaillierPublicKey", "phe.PaillierPrivateKey"]


@pytest.fixture(
    scope="module",
    params=[
        (128, P64, Q64, 2, 3, "dealer"),
        (512, P256, Q256, 2, 3, "dealer"),
        (512, P256, Q256, 3, 5, "dealer"),
        (512, P256, Q256, 3, 3, "additive"),
    ],
    ids=["128-dealer-2of3", "512-dealer-2of3", "512-dealer-3of5", "512-additive-3of3"],
)
def dealt(request: pytest.FixtureRequest) -> Dealt:
    bits, p, q, t, n, mode = request.param
    public, shares = deal_threshold_key(bits, t, n, mode, primes=(p, q))
    phe_pub = phe.PaillierPublicKey(int(public.paillier.n))
    phe_priv = phe.PaillierPrivateKey(phe_pub, p, q)
    return public, shares, phe_pub, phe_priv


def _threshold_decrypt(public: ThresholdPublicKey, shares: list[KeyShare], c: Ciphertext) -> int:
    """Decrypt with the first t parties' decryption shares (c_i = c^{2Δ s_i}) and combine."""
    return combine(public, {s.index: s.decryption_share(c) for s in shares[: public.t]})


def _messages(n: int) -> list[int]:
    return [0, 1, 2, 424242, n // 2, n - 2, n - 1, secrets.randbelow(n)]


def test_fixed_primes_are_safe() -> None:
    for p in (P64, Q64, P256, Q256):
        assert gmpy2.is_prime(p, 50) and gmpy2.is_prime((p - 1) // 2, 50)
    assert (P64 * Q64).bit_length() == 128 and (P256 * Q256).bit_length() == 512


def test_same_public_key(dealt: Dealt) -> None:
    public, _, phe_pub, _ = dealt
    assert phe_pub.n == public.paillier.n
    assert phe_pub.g == public.paillier.n + 1  # both use g = N + 1
    assert phe_pub.nsquare == public.paillier.nsquare


@pytest.mark.parametrize("textbook", [False, True], ids=["djn", "textbook"])
def test_our_ciphertexts_decrypt_in_phe(dealt: Dealt, textbook: bool) -> None:
    public, _, _, phe_priv = dealt
    pub = public.paillier
    for m in _messages(int(pub.n)):
        c, r = pub.raw_encrypt(m, textbook=textbook)
        assert phe_priv.raw_decrypt(c) == m
        # The returned randomness opens c the textbook way (the proofs rely on it); phe agrees.
        assert phe.PaillierPublicKey(int(pub.n)).raw_encrypt(m, r_value=r) == c


def test_pinned_djn_exponent_decrypts_in_phe(dealt: Dealt) -> None:
    public, _, _, phe_priv = dealt
    pub = public.paillier
    for alpha in (0, 1, (1 << pub.exp_bits) - 1):
        c, _ = pub.raw_encrypt_djn(31337, alpha)
        assert phe_priv.raw_decrypt(c) == 31337


def test_parallel_encryption_decrypts_in_phe(dealt: Dealt) -> None:
    public, _, _, phe_priv = dealt
    pub = public.paillier
    plaintexts = [int(pub.n) // (i + 2) for i in range(16)]
    cts, _ = encrypt_many(pub, plaintexts, workers=2)
    assert [phe_priv.raw_decrypt(c.value) for c in cts] == plaintexts


def test_phe_ciphertexts_decrypt_with_threshold_shares(dealt: Dealt) -> None:
    public, shares, phe_pub, _ = dealt
    pub = public.paillier
    for m in _messages(int(pub.n)):
        c = pub.ciphertext(phe_pub.raw_encrypt(m))  # validated as a unit mod N²
        partial = {s.index: s.decryption_share(c) for s in shares}
        for subset in itertools.combinations(sorted(partial), public.t):
            assert combine(public, {i: partial[i] for i in subset}) == m


def test_phe_encoded_integers_decrypt_with_threshold_shares(dealt: Dealt) -> None:
    public, shares, phe_pub, _ = dealt
    for value in (0, 7, -5, -(2**40) + 3):
        enc = phe_pub.encrypt(value)  # an int encodes with exponent 0, negatives as N − |v|
        assert enc.exponent == 0
        c = public.paillier.ciphertext(enc.ciphertext(be_secure=False))
        m = _threshold_decrypt(public, shares, c)
        assert phe.EncodedNumber(phe_pub, m, 0).decode() == value


def test_our_homomorphic_sum_decrypts_in_phe(dealt: Dealt) -> None:
    public, _, _, phe_priv = dealt
    pub = public.paillier
    values = [secrets.randbelow(int(pub.n) // 8) for _ in range(6)]
    cts = [pub.encrypt(v, textbook=i % 2 == 1) for i, v in enumerate(values)]
    assert phe_priv.raw_decrypt(pub.sum(cts).value) == sum(values) % pub.n
    assert phe_priv.raw_decrypt(pub.mul(cts[0], 3).value) == 3 * values[0] % pub.n
    assert phe_priv.raw_decrypt(pub.rerandomize(cts[1]).value) == values[1]


def test_mixed_sum_decrypts_both_ways(dealt: Dealt) -> None:
    public, shares, phe_pub, phe_priv = dealt
    pub = public.paillier
    ours = pub.encrypt(1000)
    theirs = phe.EncryptedNumber(phe_pub, phe_pub.raw_encrypt(234), 0)
    # phe adds our ciphertext to its own ...
    phe_sum = theirs + phe.EncryptedNumber(phe_pub, ours.value, 0)
    assert phe_priv.raw_decrypt(phe_sum.ciphertext(be_secure=False)) == 1234
    # ... and we add phe's ciphertext to ours; both results decrypt either way.
    our_sum = pub.add(ours, pub.ciphertext(theirs.ciphertext(be_secure=False)))
    assert phe_priv.raw_decrypt(our_sum.value) == 1234
    assert _threshold_decrypt(public, shares, our_sum) == 1234
    assert _threshold_decrypt(public, shares, pub.ciphertext(phe_sum.ciphertext(False))) == 1234


def test_packed_weighted_update_sum_decrypts_in_phe(dealt: Dealt) -> None:
    """Three parties' packed, FedAvg-weighted updates: the homomorphic sum of our DJN
    ciphertexts, decrypted by phe and unpacked, is the weighted mean within the bound."""
    public, shares, _, phe_priv = dealt
    pub = public.paillier
    n_parties = 3
    spec = PackingSpec(16, 0.5, n_parties, pub.bits)
    rng = np.random.default_rng(4)
    length = 2 * spec.slots_per_plaintext + 1
    weights = fedavg_weights([100, 250, 650])
    updates = [rng.uniform(-0.6, 0.6, length) for _ in weights]
    updates[0][:2] = [10.0, -10.0]  # clipped
    encrypted = [
        encrypt_many(pub, spec.pack(x, w), workers=1)[0]
        for x, w in zip(updates, weights, strict=True)
    ]
    aggregate = [pub.sum(column) for column in zip(*encrypted, strict=True)]
    by_phe = [phe_priv.raw_decrypt(c.value) for c in aggregate]
    assert by_phe == [_threshold_decrypt(public, shares, c) for c in aggregate]
    decoded = spec.unpack(by_phe, n_parties, sum(weights), length)
    expected = clipped_weighted_mean(updates, weights, spec.clip)
    bound = spec.aggregate_error_bound(n_parties, sum(weights))
    assert np.max(np.abs(decoded - expected)) <= bound * (1 + 1e-9)
