"""Sealing secrets to a party's identity (DESIGN.md section 4: key shares travel sealed).

A party's Ed25519 identity key converts to an X25519 key (the birational map of RFC 7748
section 4.1, as libsodium's ``crypto_sign_ed25519_*_to_curve25519`` computes it), so nobody
has to publish a second key: the public key in the session file is enough to seal to a party.
Sealing uses libsodium's sealed box (ephemeral X25519 + XSalsa20-Poly1305) through PyNaCl.

A sealed box is anonymous, so the *sender* is authenticated elsewhere: the dealer posts the
object's sha256 in a signed channel message. The plaintext starts with a caller-chosen
``context`` (session, key epoch, recipient) that :func:`open_sealed` checks, so a sealed share
cannot be replayed into another session, epoch or recipient.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_sign_ed25519_pk_to_curve25519,
    crypto_sign_ed25519_sk_to_curve25519,
)
from nacl.exceptions import CryptoError as NaclCryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from zkadapt.crypto.identity import IdentityKey, PublicIdentity
from zkadapt.errors import CryptoError

_SEP = b"\x00"


def x25519_public(identity: PublicIdentity) -> bytes:
    """The X25519 public key (32 bytes) that corresponds to an Ed25519 identity."""
    return crypto_sign_ed25519_pk_to_curve25519(identity.raw)


def _x25519_private(key: IdentityKey) -> PrivateKey:
    return PrivateKey(crypto_sign_ed25519_sk_to_curve25519(key.seed + key.public.raw))


def seal_to(recipient: PublicIdentity, data: bytes, *, context: bytes) -> bytes:
    """Encrypt ``data`` so that only ``recipient``'s identity key opens it.

    Args:
        recipient: the party's public identity (from the session file).
        data: the secret, e.g. a serialized key share.
        context: public binding (no NUL bytes), checked when opening.
    """
    if _SEP in context:
        raise ValueError("context must not contain NUL bytes")
    box = SealedBox(PublicKey(x25519_public(recipient)))
    return bytes(box.encrypt(context + _SEP + data))


def open_sealed(key: IdentityKey, sealed: bytes, *, context: bytes) -> bytes:
    """Decrypt a sealed object with this party's identity key and check its context.

    Raises:
        CryptoError: not sealed to this key, corrupted, or sealed for another context.
    """
    try:
        plain = SealedBox(_x25519_private(key)).decrypt(sealed)
    except NaclCryptoError:
        raise CryptoError(
            "sealed object does not open with this party's key (corrupted or "
            "sealed to someone else)"
        ) from None
    found, sep, data = plain.partition(_SEP)
    if not sep or found != context:
        raise CryptoError("sealed object was made for another session, key epoch or party")
    return data
