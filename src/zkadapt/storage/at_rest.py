"""Client-side encryption of objects at rest (``storage.encrypt = true``).

Plain S3 providers see every byte they store. With ``encrypt`` on, each object is sealed
with AES-256-GCM before it leaves the party, under one session key that every party holds
(``ZKADAPT_STORAGE_KEY``: 32 bytes, hex or base64, handed out of band like the Storj
passphrase of the seed; never in the session file). The provider then stores only
ciphertext, while every party can still read every update, as the protocol needs.

Format (streamed, so objects larger than memory work; the STREAM construction of Hoang,
Reyhanitabar, Rogaway and Vizár)::

    header   = b"ZKAE" | version (1) | segment size (4, big endian) | nonce prefix (7, random)
    segment i = AES-GCM(key, nonce = prefix | i (4, big endian) | last (1), plaintext, aad)
    aad      = header | the object's URI

Every segment but the last holds exactly ``segment size`` plaintext bytes, and the last one
(possibly empty) is flagged in its nonce, so truncating, reordering or appending segments
fails authentication; binding the URI stops an object being replayed under another name.

The :class:`~zkadapt.storage.base.ObjectRef` published on the channel is that of the
ciphertext, so anyone can check stored objects against the ledger without the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from zkadapt.atomic_file import atomic_writer
from zkadapt.errors import ConfigError, IntegrityError, StorageError
from zkadapt.storage.base import ObjectRef, ObjectStore
from zkadapt.storage.integrity import read_chunks

#: Environment variable holding the session's storage key.
KEY_ENV = "ZKADAPT_STORAGE_KEY"
MAGIC = b"ZKAE"
VERSION = 1
SEGMENT = 1 << 20
TAG = 16
_PREFIX_LEN = 7
HEADER_LEN = len(MAGIC) + 1 + 4 + _PREFIX_LEN


def parse_key(text: str) -> bytes:
    """A 32-byte AES key from hex (64 digits) or base64 (standard or URL-safe) text.

    Raises:
        ValueError: not 32 bytes in either encoding (the message never echoes the key).
    """
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        try:
            key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if len(key) != 32:
        raise ValueError("the key must be 32 bytes, as 64 hex digits or base64")
    return key


def key_from_env(environ: dict[str, str] | None = None) -> bytes:
    """The session storage key from ``ZKADAPT_STORAGE_KEY``.

    Raises:
        ConfigError: the variable is missing or malformed (key ``storage.encrypt``).
    """
    text = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if not text:
        raise ConfigError(
            "storage.encrypt",
            f"needs the session's 32-byte key in {KEY_ENV} (hex or base64), the same for every "
            "party; make one with: python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    try:
        return parse_key(text)
    except ValueError as exc:
        raise ConfigError("storage.encrypt", f"{KEY_ENV}: {exc}") from None


def synthetic_prefix(key: bytes, uri: str, plaintext: bytes) -> bytes:
    """A nonce prefix that is a function of (key, URI, plaintext): the same object sealed again
    gives the same ciphertext, so a write-once store accepts its re-upload (issue 17).

    As in SIV (Rogaway and Shrimpton 2006), the prefix is a PRF (HMAC-SHA256 under a key
    derived from the storage key) of everything sealed, so two different plaintexts or URIs
    get independent prefixes with the same collision odds as random ones (2^-56 per pair);
    what leaks is only that the same object was stored twice under the same URI.
    """
    mac_key = hmac.new(key, b"zkadapt-at-rest-nonce-v1", hashlib.sha256).digest()
    tag = hmac.new(mac_key, len(uri).to_bytes(4, "big") + uri.encode(), hashlib.sha256)
    tag.update(hashlib.sha256(plaintext).digest())
    return tag.digest()[:_PREFIX_LEN]


def encrypt_chunks(
    key: bytes, uri: str, chunks: Iterable[bytes], *, prefix: bytes | None = None
) -> Iterator[bytes]:
    """Seal a plaintext stream (any chunking) into the header and segments above.

    ``prefix`` is the nonce prefix (:func:`synthetic_prefix` for whole objects); by default a
    random one (streams, whose plaintext is not known in advance).
    """
    prefix = secrets.token_bytes(_PREFIX_LEN) if prefix is None else prefix
    if len(prefix) != _PREFIX_LEN:
        raise ValueError(f"the nonce prefix has {_PREFIX_LEN} bytes")
    header = MAGIC + bytes([VERSION]) + SEGMENT.to_bytes(4, "big") + prefix
    aead, aad = AESGCM(key), header + uri.encode()
    yield header
    for index, (segment, last) in enumerate(_segments(chunks, SEGMENT)):
        nonce = prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        yield aead.encrypt(nonce, segment, aad)


def decrypt_chunks(key: bytes, uri: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Open a sealed stream; raises IntegrityError on any tampering or a wrong key."""
    stream = iter(chunks)
    buffer = bytearray()
    for chunk in stream:
        buffer += chunk
        if len(buffer) >= HEADER_LEN:
            break
    header = bytes(buffer[:HEADER_LEN])
    if len(header) < HEADER_LEN or header[:4] != MAGIC or header[4] != VERSION:
        raise IntegrityError(uri, "not an object encrypted by storage.encrypt (bad header)")
    size = int.from_bytes(header[5:9], "big")
    if not 1 <= size <= 1 << 30:
        raise IntegrityError(uri, "encrypted object has an invalid segment size")
    prefix, aead, aad = header[9:], AESGCM(key), header + uri.encode()
    rest = _prepend(bytes(buffer[HEADER_LEN:]), stream)
    for index, (segment, last) in enumerate(_segments(rest, size + TAG)):
        nonce = prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        try:
            yield aead.decrypt(nonce, segment, aad)
        except InvalidTag:
            raise IntegrityError(
                uri, f"cannot decrypt: wrong {KEY_ENV}, or the object was tampered with"
            ) from None


def _segments(chunks: Iterable[bytes], size: int) -> Iterator[tuple[bytes, bool]]:
    """Re-cut ``chunks`` into ``size``-byte pieces; the last (shorter, maybe empty) is flagged."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) > size:  # keep a full piece back: it may be the last one
            yield bytes(buffer[:size]), False
            del buffer[:size]
    if len(buffer) == size:
        yield bytes(buffer), False
        buffer.clear()
    yield bytes(buffer), True


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


class _IterReader:
    """A non-seekable binary reader over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            n = len(self._buffer)
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class EncryptedStore:
    """Wraps any :class:`ObjectStore` so that only AES-GCM ciphertext reaches it.

    Composition, not a backend: the same wrapper serves ``local``, ``s3`` and ``storj``.
    """

    def __init__(self, inner: ObjectStore, key: bytes, *, party: str | None) -> None:
        if len(key) != 32:
            raise ValueError("EncryptedStore needs a 32-byte key")
        self.inner = inner
        self.party = party
        self._key = key

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        """Encrypt ``data`` (bytes or a stream) and store the ciphertext under ``key``."""
        if self.party is None:
            raise StorageError("", "this store only reads: it has no party to write as")
        uri = self.inner.location_of(self.party) + key
        if isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
            prefix = synthetic_prefix(self._key, uri, body)
            sealed = b"".join(encrypt_chunks(self._key, uri, [body], prefix=prefix))
            return self.inner.put(key, sealed)
        if not hasattr(data, "read"):
            raise ValueError(f"object data must be bytes or a stream, got {type(data).__name__}")
        reader = _IterReader(encrypt_chunks(self._key, uri, read_chunks(data)))
        return self.inner.put(key, reader)  # type: ignore[arg-type]

    def get(self, ref: ObjectRef) -> bytes:
        """Fetch and verify the ciphertext, then decrypt it."""
        sealed = self.inner.get(ref)
        return b"".join(decrypt_chunks(self._key, ref.uri, [sealed]))

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        """Fetch the ciphertext to a temporary file, then decrypt it into ``dest``."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, sealed_name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            self.inner.get_file(ref, Path(sealed_name))
            with open(sealed_name, "rb") as src, atomic_writer(dest) as out:
                for chunk in decrypt_chunks(self._key, ref.uri, read_chunks(src)):
                    out.write(chunk)
        finally:
            Path(sealed_name).unlink(missing_ok=True)

    def location_of(self, party: str) -> str:
        return self.inner.location_of(party)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r})"  # never the key
