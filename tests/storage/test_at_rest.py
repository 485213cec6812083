"""Client-side AES-GCM at rest: streamed segments, tamper and truncation detection, keys."""

from __future__ import annotations

import base64
import io
import secrets
from pathlib import Path

import pytest

from zkadapt.errors import ConfigError, IntegrityError
from zkadapt.storage.at_rest import (
    HEADER_LEN,
    KEY_ENV,
    SEGMENT,
    TAG,
    EncryptedStore,
    decrypt_chunks,
    encrypt_chunks,
    key_from_env,
    parse_key,
)
from zkadapt.storage.local import LocalStore

KEY = secrets.token_bytes(32)
URI = "s3://zkadapt-alice/zkadapt/s/round-1/update/alice.bin"


def seal(data: bytes, uri: str = URI, key: bytes = KEY) -> bytes:
    return b"".join(
        encrypt_chunks(key, uri, [data[i : i + 70_001] for i in range(0, len(data), 70_001)])
    )


def open_(sealed: bytes, uri: str = URI, key: bytes = KEY) -> bytes:
    return b"".join(
        decrypt_chunks(key, uri, [sealed[i : i + 4099] for i in range(0, len(sealed), 4099)])
    )


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT])
def test_roundtrip_at_segment_boundaries(size: int) -> None:
    data = secrets.token_bytes(size)
    sealed = seal(data)
    assert len(sealed) == HEADER_LEN + size + TAG * (size // SEGMENT + 1)
    assert open_(sealed) == data


def test_ciphertext_is_fresh_each_time() -> None:
    assert seal(b"same") != seal(b"same")


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c[:-1],  # last segment cut
        lambda c: c[: HEADER_LEN + SEGMENT + TAG],  # whole last segment dropped
        lambda c: c + b"\0" * TAG,  # an extra segment appended
        lambda c: c[:HEADER_LEN] + bytes([c[HEADER_LEN] ^ 1]) + c[HEADER_LEN + 1 :],
        lambda c: c[:9] + bytes([c[9] ^ 1]) + c[10:],  # nonce prefix in the header
        lambda c: b"XXXX" + c[4:],
    ],
    ids=["cut", "dropped", "appended", "flipped", "header", "magic"],
)
def test_any_damage_is_an_integrity_error(damage: object) -> None:
    sealed = seal(secrets.token_bytes(SEGMENT + 10))
    with pytest.raises(IntegrityError):
        open_(damage(sealed))  # type: ignore[operator]


def test_wrong_key_or_another_uri_fails() -> None:
    sealed = seal(b"update")
    with pytest.raises(IntegrityError, match=f"wrong {KEY_ENV}"):
        open_(sealed, key=secrets.token_bytes(32))
    with pytest.raises(IntegrityError):
        open_(sealed, uri=URI.replace("alice.bin", "bob.bin"))  # replayed under another name


def test_keys_parse_from_hex_and_base64() -> None:
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(base64.b64encode(KEY).decode()) == KEY
    assert parse_key(base64.urlsafe_b64encode(KEY).decode()) == KEY
    for bad in ["", "abcd", KEY.hex()[:-2], "not a key at all, not base64 !!"]:
        with pytest.raises(ValueError) as info:
            parse_key(bad)
        assert bad[:8] not in str(info.value) or not bad


def test_key_from_env_errors_name_the_setting_and_never_the_key() -> None:
    with pytest.raises(ConfigError, match=rf"^storage\.encrypt: needs .*{KEY_ENV}"):
        key_from_env({})
    with pytest.raises(ConfigError) as info:
        key_from_env({KEY_ENV: "ab" * 31})
    assert "ab" * 31 not in str(info.value)
    assert key_from_env({KEY_ENV: KEY.hex()}) == KEY


def test_encrypted_store_keeps_only_ciphertext_and_streams_files(tmp_path: Path) -> None:
    inner = LocalStore(tmp_path / "store")
    alice = EncryptedStore(inner, KEY, party="alice")
    data = secrets.token_bytes(3 * SEGMENT // 2)
    ref = alice.put("zkadapt/a.bin", io.BytesIO(data))
    stored = (inner.root / "zkadapt/a.bin").read_bytes()
    assert data[:64] not in stored and ref.size == len(stored)  # the ledger sees ciphertext
    assert EncryptedStore(inner, KEY, party="bob").get(ref) == data
    alice.get_file(ref, tmp_path / "out" / "a.bin")
    assert (tmp_path / "out" / "a.bin").read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bin"]
    with pytest.raises(IntegrityError):
        EncryptedStore(inner, secrets.token_bytes(32), party="bob").get(ref)
    assert KEY.hex() not in repr(alice) and str(KEY) not in repr(alice)
