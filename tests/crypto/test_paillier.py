"""Tests for zkadapt.crypto.paillier: round trips, homomorphism, range checks, pinned vectors."""

from __future__ import annotations

import hashlib
import pickle

import gmpy2
import pytest

from zkadapt.crypto.paillier import (
    Ciphertext,
    FixedBaseTable,
    PaillierPrivateKey,
    PaillierPublicKey,
    encrypt_many,
    generate_keypair,
    generate_safe_prime,
)
from zkadapt.errors import CryptoError

# Fixed 64-bit safe primes and DJN inputs; expected values computed independently with pow().
P = 14115498260086950263
Q = 14195859490234787447
N = P * Q
X = 0x1234567890ABCDEF1234567
H = 65562218657147066407460356755984213655
ALPHA = 18364758544493064720
M = 424242
C_DJN = 15085120162462029635589372377142656624537108231100107864681468167451963726211
R_DJN = 45979392087991052622685875240684869298
R_TEXTBOOK = 987654321987654321
C_TEXTBOOK = 5275750797257978368892747548489231241742665091059159800823436310439603174190
KEY_ID = "9a13b59272f13b5f1ae45c6709a4c704ce46909498347464983d4f6f2ca0bd47"


@pytest.fixture(scope="module")
def keypair() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    return generate_keypair(512)


@pytest.fixture(scope="module")
def fixed_key() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    pub = PaillierPublicKey(N, H)
    return pub, PaillierPrivateKey(pub, P, Q)


def test_pinned_djn_vector(fixed_key: tuple[PaillierPublicKey, PaillierPrivateKey]) -> None:
    pub, priv = fixed_key
    assert H == (-X * X) % N
    assert pub.raw_encrypt_djn(M, ALPHA) == (C_DJN, R_DJN)
    assert priv.raw_decrypt(C_DJN) == M
    # c is the textbook ciphertext for r = h^α mod N (what the proofs rely on).
    assert pub.raw_encrypt_textbook(M, R_DJN) == C_DJN


def test_pinned_textbook_vector(fixed_key: tuple[PaillierPublicKey, PaillierPrivateKey]) -> None:
    pub, priv = fixed_key
    assert pub.raw_encrypt_textbook(M, R_TEXTBOOK) == C_TEXTBOOK
    assert priv.raw_decrypt(C_TEXTBOOK) == M


def test_key_id_is_sha256_of_fixed_width_modulus() -> None:
    pub = PaillierPublicKey(N, H)
    assert pub.key_id == KEY_ID
    assert pub.key_id == hashlib.sha256(N.to_bytes(16, "big")).hexdigest()


@pytest.mark.parametrize("textbook", [False, True])
def test_djn_and_textbook_both_decrypt(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey], textbook: bool
) -> None:
    pub, priv = keypair
    for m in (0, 1, 2**64 + 3, int(pub.n) - 1):
        c, r = pub.raw_encrypt(m, textbook=textbook)
        assert priv.raw_decrypt(c) == m
        assert 0 < r < pub.n
        assert pub.raw_encrypt_textbook(m, r) == c


def test_encryption_is_randomized(keypair: tuple[PaillierPublicKey, PaillierPrivateKey]) -> None:
    pub, _ = keypair
    assert pub.encrypt(7) != pub.encrypt(7)


def test_homomorphic_add_sum_and_scalar_mul(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey],
) -> None:
    pub, priv = keypair
    n = int(pub.n)
    a, b = pub.encrypt(n - 5), pub.encrypt(11, textbook=True)
    assert priv.decrypt(pub.add(a, b)) == 6  # wraps mod N by the homomorphism itself
    assert priv.decrypt(pub.sum([pub.encrypt(i) for i in range(10)])) == 45
    assert priv.decrypt(pub.mul(pub.encrypt(12), 1000)) == 12000
    assert priv.decrypt(pub.mul(pub.encrypt(12), n - 1)) == n - 12


def test_rerandomize_keeps_plaintext(keypair: tuple[PaillierPublicKey, PaillierPrivateKey]) -> None:
    pub, priv = keypair
    c = pub.encrypt(99)
    fresh = pub.rerandomize(c)
    assert fresh != c
    assert priv.decrypt(fresh) == 99


@pytest.mark.parametrize("bad", [-1, "N", "N+1"])
def test_plaintext_out_of_range_is_rejected(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey], bad: int | str
) -> None:
    pub, _ = keypair
    m = {"N": int(pub.n), "N+1": int(pub.n) + 1}.get(bad, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside"):
        pub.raw_encrypt(m)


def test_non_integer_plaintext_is_a_type_error(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey],
) -> None:
    pub, _ = keypair
    for bad in (1.5, True, "3"):
        with pytest.raises(TypeError):
            pub.raw_encrypt(bad)  # type: ignore[arg-type]


def test_scalar_out_of_range_is_rejected(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey],
) -> None:
    pub, _ = keypair
    with pytest.raises(ValueError):
        pub.mul(pub.encrypt(1), -1)
    with pytest.raises(ValueError):
        pub.mul(pub.encrypt(1), int(pub.n))


def test_received_ciphertext_must_be_a_unit(fixed_key: tuple[PaillierPublicKey, object]) -> None:
    pub, _ = fixed_key
    for bad in (0, N * N, N * N + 1, P, P * 12345):
        with pytest.raises(CryptoError):
            pub.ciphertext(bad)
    assert pub.ciphertext(C_DJN) == Ciphertext(C_DJN, KEY_ID)


def test_ciphertext_bytes_round_trip(fixed_key: tuple[PaillierPublicKey, object]) -> None:
    pub, _ = fixed_key
    c = Ciphertext(C_DJN, KEY_ID)
    data = c.to_bytes(pub.ciphertext_bytes)
    assert len(data) == 32
    assert pub.ciphertext_from_bytes(data) == c
    with pytest.raises(CryptoError):
        pub.ciphertext_from_bytes(data[1:])


def test_key_mismatch_names_both_ids(keypair: tuple[PaillierPublicKey, object]) -> None:
    pub, _ = keypair
    other = PaillierPublicKey(N, H)
    a, b = pub.encrypt(1), other.encrypt(1)
    with pytest.raises(ValueError) as info:
        pub.add(a, b)
    assert pub.key_id in str(info.value) and other.key_id in str(info.value)
    with pytest.raises(ValueError, match=other.key_id):
        pub.mul(b, 2)
    with pytest.raises(ValueError, match=other.key_id):
        pub.sum([a, b])


def test_bad_djn_base_is_rejected() -> None:
    with pytest.raises(CryptoError):
        PaillierPublicKey(N, P)  # not a unit
    with pytest.raises(CryptoError):
        PaillierPublicKey(N, 0)
    for small_order in (1, N - 1):
        with pytest.raises(CryptoError, match="large order"):
            PaillierPublicKey(N, small_order)
    with pytest.raises(ValueError):
        PaillierPublicKey(N + 1, H)  # even modulus


def test_public_key_bytes_round_trip_and_canonical_form() -> None:
    pub = PaillierPublicKey(N, H)
    data = pub.to_bytes()
    assert PaillierPublicKey.from_bytes(data) == pub
    assert PaillierPublicKey.from_bytes(data).h == H
    assert PaillierPublicKey(N) == pub  # the same N is the same key, whatever h
    with pytest.raises(CryptoError, match="canonical"):
        PaillierPublicKey.from_bytes(data.replace(b",", b", "))
    with pytest.raises(CryptoError):
        PaillierPublicKey.from_bytes(data.replace(b'"n":"', b'"n":"0'))
    with pytest.raises(CryptoError, match="domain"):
        PaillierPublicKey.from_bytes(b'{"domain":"other","h":"1","n":"1"}')


def test_public_key_pickles_without_tables(keypair: tuple[PaillierPublicKey, object]) -> None:
    pub, _ = keypair
    pub.encrypt(1)  # builds the tables
    clone = pickle.loads(pickle.dumps(pub))
    assert clone == pub and clone.h == pub.h and clone._tables is None


def test_private_key_is_redacted_and_not_picklable(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey],
) -> None:
    _, priv = keypair
    text = repr(priv)
    assert "redacted" in text and str(priv._p) not in text
    with pytest.raises(TypeError):
        pickle.dumps(priv)
    with pytest.raises(ValueError):
        PaillierPrivateKey(PaillierPublicKey(N, H), P, P)


def test_fixed_base_table_matches_powmod() -> None:
    table = FixedBaseTable(H, N, 70, window=5)
    for e in (0, 1, 31, 32, 2**70 - 1, 123456789123456789):
        assert table.pow(e) == gmpy2.powmod(H, e, N)
    with pytest.raises(ValueError):
        table.pow(2**70)


@pytest.mark.parametrize("bits", [16, 40, 64, 160])
def test_safe_prime_has_exact_size(bits: int) -> None:
    p = generate_safe_prime(bits)
    assert p.bit_length() == bits and p >> (bits - 2) == 3
    assert gmpy2.is_prime(p) and gmpy2.is_prime((p - 1) // 2)


def test_generate_keypair_has_exact_size(keypair: tuple[PaillierPublicKey, object]) -> None:
    pub, _ = keypair
    assert pub.bits == 512 and pub.exp_bits == 256
    with pytest.raises(ValueError):
        generate_keypair(63)


@pytest.mark.parametrize("workers", [1, 2])
def test_encrypt_many_keeps_order(
    keypair: tuple[PaillierPublicKey, PaillierPrivateKey], workers: int
) -> None:
    pub, priv = keypair
    plaintexts = list(range(1000, 1040))
    cts, rs = encrypt_many(pub, plaintexts, workers=workers)
    assert [priv.decrypt(c) for c in cts] == plaintexts
    for m, c, r in zip(plaintexts, cts, rs, strict=True):
        assert pub.raw_encrypt_textbook(m, r) == c.value


def test_encrypt_many_checks_every_plaintext_first(
    keypair: tuple[PaillierPublicKey, object],
) -> None:
    pub, _ = keypair
    with pytest.raises(ValueError):
        encrypt_many(pub, [1, 2, int(pub.n)], workers=2)
    with pytest.raises(ValueError):
        encrypt_many(pub, [1], workers=0)
