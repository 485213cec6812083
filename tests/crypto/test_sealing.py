"""Sealing key shares to a party's identity key (X25519 derived from Ed25519)."""

from __future__ import annotations

import pytest

from zkadapt.crypto.identity import IdentityKey
from zkadapt.crypto.sealing import open_sealed, seal_to, x25519_public
from zkadapt.errors import CryptoError


def test_sealed_data_opens_only_with_the_recipients_key() -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    sealed = seal_to(alice.public, b"share of alice", context=b"s1/epoch-0/alice")
    assert b"share of alice" not in sealed
    assert open_sealed(alice, sealed, context=b"s1/epoch-0/alice") == b"share of alice"
    with pytest.raises(CryptoError, match="does not open"):
        open_sealed(bob, sealed, context=b"s1/epoch-0/alice")


def test_wrong_context_or_tampering_is_refused() -> None:
    alice = IdentityKey.generate()
    sealed = seal_to(alice.public, b"secret", context=b"s1/epoch-0/alice")
    with pytest.raises(CryptoError, match="another session"):
        open_sealed(alice, sealed, context=b"s1/epoch-1/alice")
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CryptoError):
        open_sealed(alice, flipped, context=b"s1/epoch-0/alice")


def test_sealing_is_randomized_and_x25519_key_is_derived_deterministically() -> None:
    alice = IdentityKey.from_seed(bytes(range(32)))
    assert x25519_public(alice.public) == x25519_public(
        IdentityKey.from_seed(bytes(range(32))).public
    )
    assert len(x25519_public(alice.public)) == 32
    a = seal_to(alice.public, b"x", context=b"c")
    b = seal_to(alice.public, b"x", context=b"c")
    assert a != b


def test_context_with_nul_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        seal_to(IdentityKey.generate().public, b"x", context=b"a\x00b")
