"""Party identity keys: one Ed25519 key per party (DESIGN.md section 2).

The identity key signs every channel message (DESIGN.md section 6). It is the same key type
as a Cardano payment key, so on a Hydra head the transaction witness *is* the message
signature, and keys are stored in cardano-cli's text-envelope JSON so that ``cardano-cli``
and wallets can read them::

    {"type": "PaymentSigningKeyShelley_ed25519",
     "description": "...",
     "cborHex": "5820" + <32-byte seed, hex>}

(``5820`` is the CBOR header of a 32-byte byte string.) A verification key uses the type
``PaymentVerificationKeyShelley_ed25519`` and carries the 32 raw public-key bytes.

What must stay secret: the 32-byte seed of an :class:`IdentityKey`. It is written only to
files of mode 0600 and never appears in a ``repr`` or an error message.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from zkadapt.atomic_file import write_atomic
from zkadapt.errors import CryptoError

SIGNING_KEY_TYPE = "PaymentSigningKeyShelley_ed25519"
VERIFICATION_KEY_TYPE = "PaymentVerificationKeyShelley_ed25519"
SIGNING_KEY_DESCRIPTION = "Payment Signing Key"
VERIFICATION_KEY_DESCRIPTION = "Payment Verification Key"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
_CBOR_BYTES32_HEADER = "5820"


class IdentityKey:
    """A party's private Ed25519 identity key (secret; DESIGN.md section 2).

    Build one with :meth:`generate`, :meth:`from_seed` or :meth:`load`; the constructor is
    not part of the API.
    """

    __slots__ = ("_private", "_public", "_seed")

    def __init__(self, seed: bytes) -> None:
        self._seed = _check_key_bytes(seed, "seed")
        self._private = Ed25519PrivateKey.from_private_bytes(self._seed)
        self._public = PublicIdentity(self._private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> IdentityKey:
        """A fresh key from the OS CSPRNG (``secrets``, STYLE.md rule 5)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        """The key whose RFC 8032 private seed is ``seed``.

        Args:
            seed: exactly 32 bytes (the value stored in a ``.sk`` envelope).

        Raises:
            TypeError: ``seed`` is not bytes.
            ValueError: ``seed`` is not 32 bytes long.
        """
        return cls(seed)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentityKey:
        """Read a cardano-cli ``PaymentSigningKeyShelley_ed25519`` envelope.

        Args:
            path: the ``.sk`` file.

        Returns:
            The key it holds.

        Raises:
            CryptoError: the file is missing or unreadable, is not JSON, has another key
                type or a malformed ``cborHex``; the one-line message names the path.
        """
        return cls(_read_envelope(Path(path), SIGNING_KEY_TYPE))

    def save(
        self, path: str | os.PathLike[str], description: str = SIGNING_KEY_DESCRIPTION
    ) -> None:
        """Write the key as a cardano-cli envelope, mode 0600, atomically.

        The file appears complete or not at all, and an existing file is never replaced:
        overwriting a party's key would silently change its identity.

        Args:
            path: the ``.sk`` file to create.
            description: free text stored in the envelope.

        Raises:
            CryptoError: ``path`` already exists or cannot be written.
        """
        _write_envelope(Path(path), SIGNING_KEY_TYPE, description, self._seed, mode=0o600)

    @property
    def public(self) -> PublicIdentity:
        """The matching public identity (safe to publish in the session file)."""
        return self._public

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed, for deriving the Cardano and X25519 keys. Keep secret."""
        return self._seed

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data`` (deterministic, RFC 8032)."""
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"IdentityKey(public={self._public.hex[:16]}…)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[IdentityKey], tuple[bytes]]:
        # Lets a party's key reach its worker process (multiprocessing pickles arguments).
        return (IdentityKey, (self._seed,))


@dataclass(frozen=True)
class PublicIdentity:
    """A party's public Ed25519 key: the 32 raw bytes (DESIGN.md section 2).

    Attributes:
        raw: the 32-byte public key, as in the ``.vk`` envelope and the session file.
    """

    raw: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", _check_key_bytes(self.raw, "public key"))

    @classmethod
    def from_hex(cls, s: str) -> PublicIdentity:
        """Parse 64 hex characters (the session file's encoding).

        Raises:
            ValueError: ``s`` is not 64 hex characters; callers turn this into a
                ConfigError naming the key.
        """
        if not isinstance(s, str) or len(s) != 2 * KEY_BYTES:
            shown = len(s) if isinstance(s, str) else type(s).__name__
            raise ValueError(f"public key must be {2 * KEY_BYTES} hex characters, got {shown}")
        try:
            return cls(bytes.fromhex(s))
        except ValueError:
            raise ValueError("public key must be hexadecimal (0-9, a-f)") from None

    @property
    def hex(self) -> str:
        """Lowercase hex of :attr:`raw`."""
        return self.raw.hex()

    def verify(self, data: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``data``.

        Never raises for a bad or malformed signature: a forged message is protocol data,
        not a crash (STYLE.md rule 9).
        """
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PublicIdentity:
        """Read a cardano-cli ``PaymentVerificationKeyShelley_ed25519`` envelope.

        Raises:
            CryptoError: as :meth:`IdentityKey.load`.
        """
        return cls(_read_envelope(Path(path), VERIFICATION_KEY_TYPE))

    def save(
        self, path: str | os.PathLike[str], description: str = VERIFICATION_KEY_DESCRIPTION
    ) -> None:
        """Write a ``.vk`` envelope atomically (mode 0644); never replaces an existing file.

        Raises:
            CryptoError: ``path`` already exists or cannot be written.
        """
        _write_envelope(Path(path), VERIFICATION_KEY_TYPE, description, self.raw, mode=0o644)

    def __repr__(self) -> str:
        return f"PublicIdentity({self.hex})"


class Keyring(Mapping[str, PublicIdentity]):
    """The session's parties: an immutable mapping of party name -> public identity.

    The channel checks every envelope against it (DESIGN.md section 6).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[str, PublicIdentity]) -> None:
        """Copy ``keys``; later changes to the argument do not affect the keyring.

        Raises:
            TypeError: a name is not a non-empty string or a value is not a PublicIdentity.
        """
        copied: dict[str, PublicIdentity] = {}
        for name, identity in keys.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"party names must be non-empty strings, got {name!r}")
            if not isinstance(identity, PublicIdentity):
                raise TypeError(f"{name}: expected PublicIdentity, got {type(identity).__name__}")
            copied[name] = identity
        self._keys = copied

    def __getitem__(self, name: str) -> PublicIdentity:
        return self._keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def verify(self, sender: str, data: bytes, signature: bytes) -> bool:
        """Whether ``sender`` is a known party and signed ``data``; False otherwise."""
        identity = self._keys.get(sender)
        return identity is not None and identity.verify(data, signature)

    def __repr__(self) -> str:
        return f"Keyring({sorted(self._keys)})"


def _check_key_bytes(value: bytes, what: str) -> bytes:
    """``value`` as bytes if it is 32 bytes long (a programming check: TypeError/ValueError)."""
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != KEY_BYTES:
        raise ValueError(f"{what} must be {KEY_BYTES} bytes, got {len(value)}")
    return bytes(value)


def _read_envelope(path: Path, expected_type: str) -> bytes:
    """The 32 key bytes of a cardano-cli text envelope of ``expected_type``.

    Raises:
        CryptoError: one line naming ``path`` and the problem, never the key bytes.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CryptoError(f"{path}: key file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CryptoError(f"{path}: cannot read key file ({type(exc).__name__})") from None
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CryptoError(f"{path}: not a JSON key envelope (line {exc.lineno})") from None
    if not isinstance(envelope, dict):
        raise CryptoError(f"{path}: not a JSON key envelope (expected an object)")
    found = envelope.get("type")
    if found != expected_type:
        raise CryptoError(f"{path}: key type is {found!r}, expected {expected_type!r}")
    cbor_hex = envelope.get("cborHex")
    prefix = _CBOR_BYTES32_HEADER
    if not isinstance(cbor_hex, str) or len(cbor_hex) != len(prefix) + 2 * KEY_BYTES:
        raise CryptoError(f"{path}: cborHex must be '{prefix}' followed by {KEY_BYTES} bytes")
    if cbor_hex[: len(prefix)] != prefix:
        raise CryptoError(f"{path}: cborHex must start with '{prefix}' (a 32-byte CBOR string)")
    try:
        return bytes.fromhex(cbor_hex[len(prefix) :])
    except ValueError:
        raise CryptoError(f"{path}: cborHex is not hexadecimal") from None


def _write_envelope(path: Path, key_type: str, description: str, key: bytes, *, mode: int) -> None:
    """Create ``path`` holding the envelope, atomically and without replacing anything.

    The envelope goes to a temporary file in the same directory (created 0600, so a secret
    is never world-readable, even briefly), is fsynced, and is then hard-linked to ``path``
    (:func:`~zkadapt.atomic_file.write_atomic` with ``overwrite=False``): ``link`` fails if
    ``path`` exists, so no race can overwrite a key.
    """
    body = {
        "type": key_type,
        "description": description,
        "cborHex": _CBOR_BYTES32_HEADER + key.hex(),
    }
    data = (json.dumps(body, indent=4) + "\n").encode("utf-8")
    if path.exists():
        raise CryptoError(f"{path}: refusing to overwrite an existing key file")
    try:
        write_atomic(path, data, mode=mode, overwrite=False)
    except FileExistsError:
        raise CryptoError(f"{path}: refusing to overwrite an existing key file") from None
    except OSError as exc:
        raise CryptoError(f"{path}: cannot write key file ({exc.strerror})") from None
