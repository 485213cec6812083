"""Kill and release votes signed with a party's payment key: the escrow's layer-1 evidence.

The validator (``contract/escrow.py``) checks Ed25519 signatures by the payment keys whose
blake2b-224 hashes are the parties of a lock's datum. Each signed message has fixed-length
parts, so it names exactly one session and one party (docs/escrow.md, "Votes"):

* kill: ``KILL_DOMAIN || session (32) || round (8, big-endian) || victim's key hash (28)``
  -- the victim missed that round of that session;
* release: ``RELEASE_DOMAIN || session (32) || owner's key hash (28)`` -- the owner may have
  its deposit back.

The functions here are pure (``cryptography`` verifies, as the script's builtin does), so the
settlement rules can count only votes the script would accept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

#: Domain tag that starts a kill vote's signed message (``contract/escrow.py``).
KILL_DOMAIN = b"zkadapt/escrow/kill/v1"
#: Domain tag that starts a release vote's signed message.
RELEASE_DOMAIN = b"zkadapt/escrow/release/v1"
SESSION_BYTES = 32
KEY_HASH_BYTES = 28
VKEY_BYTES = 32
SIGNATURE_BYTES = 64


def key_hash(vkey: bytes) -> bytes:
    """A payment verification key's hash (blake2b-224): its party entry in the datum."""
    return hashlib.blake2b(vkey, digest_size=KEY_HASH_BYTES).digest()


def _check(session: bytes, party: bytes) -> None:
    if len(session) != SESSION_BYTES or len(party) != KEY_HASH_BYTES:
        raise ValueError("session must be 32 bytes and a party a 28-byte key hash")


def kill_message(session: bytes, round_: int, victim: bytes) -> bytes:
    """What a kill vote signs: ``KILL_DOMAIN || session || round (8 bytes BE) || victim``.

    Raises:
        ValueError: a field has the wrong length or the round is out of range.
    """
    _check(session, victim)
    if not 0 <= round_ < 2**64:
        raise ValueError("round must fit in 8 bytes")
    return KILL_DOMAIN + session + round_.to_bytes(8, "big") + victim


def release_message(session: bytes, owner: bytes) -> bytes:
    """What a release vote signs: ``RELEASE_DOMAIN || session || owner``.

    Raises:
        ValueError: a field has the wrong length.
    """
    _check(session, owner)
    return RELEASE_DOMAIN + session + owner


def verify_signature(vkey: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification as Plutus' ``verifyEd25519Signature`` (False for any bad input)."""
    if len(vkey) != VKEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(vkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SignedKillVote:
    """A party's kill vote, signed with its payment key for the layer-1 ``Slash``.

    Attributes:
        voter: the voting party's name.
        target: the party to slash.
        round: the round the voter says the target missed.
        vkey: the voter's 32-byte Ed25519 payment verification key.
        signature: Ed25519 over :func:`kill_message` (session, round, target's key hash).
    """

    voter: str
    target: str
    round: int
    vkey: bytes
    signature: bytes

    def verify(self, session: bytes, voter_key_hash: bytes, victim: bytes) -> bool:
        """What the validator checks of this vote: the key is the voter's, the signature good.

        Args:
            voter_key_hash: the voter's payment key hash (its datum entry).
            victim: the target's payment key hash.
        """
        if key_hash(self.vkey) != voter_key_hash or not 0 <= self.round < 2**64:
            return False
        return verify_signature(
            self.vkey, kill_message(session, self.round, victim), self.signature
        )


@dataclass(frozen=True)
class SignedReleaseVote:
    """A party's vote that ``target`` may have its deposit back (layer-1 ``Release``).

    Attributes:
        voter: the voting party's name.
        target: the party whose lock is released.
        vkey: the voter's 32-byte Ed25519 payment verification key.
        signature: Ed25519 over :func:`release_message` (session, target's key hash).
    """

    voter: str
    target: str
    vkey: bytes
    signature: bytes

    def verify(self, session: bytes, voter_key_hash: bytes, owner: bytes) -> bool:
        """What the validator checks: the key is the voter's, the signature good."""
        if key_hash(self.vkey) != voter_key_hash:
            return False
        return verify_signature(self.vkey, release_message(session, owner), self.signature)


def _sign(signing_key: Any, message: bytes) -> tuple[bytes, bytes]:
    """(vkey, signature) of a PyCardano payment signing key, plain or extended."""
    vkey = signing_key.to_verification_key()
    if hasattr(vkey, "to_non_extended"):
        vkey = vkey.to_non_extended()
    return bytes(vkey.payload), bytes(signing_key.sign(message))


def sign_kill_vote(
    signing_key: Any, *, session: bytes, voter: str, target: str, victim: bytes, round_: int
) -> SignedKillVote:
    """Sign a kill vote with a PyCardano payment signing key (plain or extended).

    Args:
        victim: the target's payment key hash (its entry in the datum).
    """
    vkey, signature = _sign(signing_key, kill_message(session, round_, victim))
    return SignedKillVote(voter, target, round_, vkey, signature)


def sign_release_vote(
    signing_key: Any, *, session: bytes, voter: str, target: str, owner: bytes
) -> SignedReleaseVote:
    """Sign a release vote for ``target`` (whose payment key hash is ``owner``)."""
    vkey, signature = _sign(signing_key, release_message(session, owner))
    return SignedReleaseVote(voter, target, vkey, signature)
