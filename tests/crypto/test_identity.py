"""Tests for zkadapt.crypto.identity (DESIGN.md section 2)."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from zkadapt.crypto.identity import (
    SIGNING_KEY_TYPE,
    VERIFICATION_KEY_TYPE,
    IdentityKey,
    Keyring,
    PublicIdentity,
)
from zkadapt.errors import CryptoError

CREDENTIALS = Path("/work/shared/data/hydra/credentials")
SEED = bytes(range(32))


@pytest.fixture(scope="module")
def key() -> IdentityKey:
    return IdentityKey.from_seed(SEED)


def write_envelope(path: Path, **fields: object) -> Path:
    body = {"type": SIGNING_KEY_TYPE, "description": "", "cborHex": "5820" + SEED.hex()}
    body.update(fields)
    path.write_text(json.dumps(body))
    return path


def test_sign_verify_roundtrip(key: IdentityKey) -> None:
    signature = key.sign(b"hello")
    assert len(signature) == 64
    assert key.public.verify(b"hello", signature)


def test_verify_rejects_other_data_key_and_malformed_signatures(key: IdentityKey) -> None:
    signature = key.sign(b"hello")
    other = IdentityKey.generate()
    assert not key.public.verify(b"hello!", signature)
    assert not other.public.verify(b"hello", signature)
    assert not key.public.verify(b"hello", b"")
    assert not key.public.verify(b"hello", signature[:-1])
    assert not key.public.verify(b"hello", bytes(64))


def test_from_seed_is_deterministic_and_exposes_seed(key: IdentityKey) -> None:
    again = IdentityKey.from_seed(SEED)
    assert again.public == key.public
    assert again.seed == SEED
    assert again.sign(b"m") == key.sign(b"m")  # Ed25519 signatures are deterministic


def test_generate_gives_distinct_keys() -> None:
    assert IdentityKey.generate().public != IdentityKey.generate().public


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33)])
def test_from_seed_rejects_wrong_length(seed: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        IdentityKey.from_seed(seed)


def test_loads_cardano_cli_alice_key_matching_its_vk() -> None:
    sk = IdentityKey.load(CREDENTIALS / "alice.sk")
    vk = PublicIdentity.load(CREDENTIALS / "alice.vk")
    assert sk.public == vk
    assert vk.hex == "eb94e8236e2099357fa499bfbc415968691573f25ec77435b7949f5fdfaa5da0"


def test_repr_is_redacted(key: IdentityKey) -> None:
    text = repr(key) + str(key)
    assert SEED.hex() not in text
    assert SEED.hex()[:8] not in text
    assert key.public.hex[:16] in text


def test_pickle_roundtrip_keeps_the_key(key: IdentityKey) -> None:
    assert pickle.loads(pickle.dumps(key)).public == key.public


def test_save_load_roundtrip_with_mode_0600(tmp_path: Path, key: IdentityKey) -> None:
    path = tmp_path / "party.sk"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert IdentityKey.load(path).public == key.public
    envelope = json.loads(path.read_text())
    assert envelope["type"] == SIGNING_KEY_TYPE
    assert envelope["cborHex"] == "5820" + SEED.hex()
    assert os.listdir(tmp_path) == ["party.sk"]  # no temporary file left behind


def test_save_refuses_to_overwrite(tmp_path: Path, key: IdentityKey) -> None:
    path = tmp_path / "party.sk"
    path.write_text("precious")
    with pytest.raises(CryptoError, match="refusing to overwrite"):
        IdentityKey.generate().save(path)
    assert path.read_text() == "precious"
    assert os.listdir(tmp_path) == ["party.sk"]


def test_public_identity_save_load_roundtrip(tmp_path: Path, key: IdentityKey) -> None:
    path = tmp_path / "party.vk"
    key.public.save(path)
    assert json.loads(path.read_text())["type"] == VERIFICATION_KEY_TYPE
    assert PublicIdentity.load(path) == key.public
    with pytest.raises(CryptoError, match="refusing to overwrite"):
        key.public.save(path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "not found"),
        ("{not json", "not a JSON key envelope"),
        ("[1, 2]", "not a JSON key envelope"),
        ({"type": VERIFICATION_KEY_TYPE}, "key type is"),
        ({"cborHex": "5821" + SEED.hex()}, "must start with '5820'"),
        ({"cborHex": "5820" + SEED.hex()[:-2]}, "cborHex must be"),
        ({"cborHex": "5820" + "zz" * 32}, "not hexadecimal"),
        ({"cborHex": 5820}, "cborHex must be"),
    ],
)
def test_load_bad_envelope_gives_one_line_error_naming_path(
    tmp_path: Path, content: object, reason: str
) -> None:
    path = tmp_path / "bad.sk"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        write_envelope(path, **content)
    with pytest.raises(CryptoError, match=reason) as info:
        IdentityKey.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert SEED.hex() not in message


def test_public_identity_from_hex() -> None:
    vk = PublicIdentity.from_hex("EB94E8236E2099357FA499BFBC415968691573F25EC77435B7949F5FDFAA5DA0")
    assert vk.hex == "eb94e8236e2099357fa499bfbc415968691573f25ec77435b7949f5fdfaa5da0"
    with pytest.raises(ValueError, match="64 hex characters"):
        PublicIdentity.from_hex("abcd")
    with pytest.raises(ValueError, match="hexadecimal"):
        PublicIdentity.from_hex("g" * 64)


def test_public_identity_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PublicIdentity(bytes(31))


def test_keyring_is_an_immutable_mapping_that_verifies(key: IdentityKey) -> None:
    bob = IdentityKey.generate()
    source = {"alice": key.public, "bob": bob.public}
    ring = Keyring(source)
    source["mallory"] = IdentityKey.generate().public
    assert sorted(ring) == ["alice", "bob"]
    assert len(ring) == 2
    assert ring["bob"] == bob.public
    assert "mallory" not in ring
    with pytest.raises(TypeError):
        ring["carol"] = bob.public  # type: ignore[index]
    signature = key.sign(b"m")
    assert ring.verify("alice", b"m", signature)
    assert not ring.verify("bob", b"m", signature)
    assert not ring.verify("mallory", b"m", signature)


def test_keyring_rejects_non_identities() -> None:
    with pytest.raises(TypeError, match="PublicIdentity"):
        Keyring({"alice": "eb94"})  # type: ignore[dict-item]
