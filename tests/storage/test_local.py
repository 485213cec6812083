"""Tests for zkadapt.storage.local and the storage registry (DESIGN.md section 5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from zkadapt.errors import IntegrityError, StorageError
from zkadapt.storage import ObjectRef, ObjectStore, object_key, open_store, sha256_hex
from zkadapt.storage.local import LocalStore
from zkadapt.storage.write_once import ObjectExists

KEY = object_key("s1", 1, "update", "alice")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_implements_object_store(store: LocalStore) -> None:
    assert isinstance(store, ObjectStore)


def test_put_get_roundtrip(store: LocalStore) -> None:
    ref = store.put(KEY, b"payload")
    assert ref == ObjectRef(uri="local://" + KEY, sha256=sha256_hex(b"payload"), size=7)
    assert store.get(ref) == b"payload"
    assert store.exists(KEY)
    assert not store.exists(object_key("s1", 1, "update", "bob"))


def test_empty_object_roundtrip(store: LocalStore) -> None:
    assert store.get(store.put("zkadapt/empty.bin", b"")) == b""


def test_put_again_never_replaces_and_leaves_no_temporary_file(store: LocalStore) -> None:
    old = store.put(KEY, b"first")
    assert store.put(KEY, b"first") == old
    with pytest.raises(ObjectExists):
        store.put(KEY, b"second")
    assert store.get(old) == b"first"
    assert [p.name for p in (store.root / KEY).parent.iterdir()] == [Path(KEY).name]


def test_truncated_file_is_integrity_error(store: LocalStore) -> None:
    ref = store.put(KEY, b"0123456789")
    (store.root / KEY).write_bytes(b"01234")
    with pytest.raises(IntegrityError, match="size mismatch") as info:
        store.get(ref)
    assert info.value.uri == ref.uri
    assert ref.uri in str(info.value)


def test_longer_file_is_integrity_error(store: LocalStore) -> None:
    ref = store.put(KEY, b"0123")
    (store.root / KEY).write_bytes(b"0123456789")
    with pytest.raises(IntegrityError, match="size mismatch"):
        store.get(ref)


def test_modified_file_is_integrity_error(store: LocalStore) -> None:
    ref = store.put(KEY, b"0123456789")
    (store.root / KEY).write_bytes(b"0123456780")
    with pytest.raises(IntegrityError, match="sha256 mismatch") as info:
        store.get(ref)
    assert info.value.uri == ref.uri


def test_wrong_digest_in_ref_is_integrity_error(store: LocalStore) -> None:
    ref = store.put(KEY, b"data")
    with pytest.raises(IntegrityError):
        store.get(replace(ref, sha256=sha256_hex(b"other")))


def test_missing_object_is_storage_error(store: LocalStore) -> None:
    ref = ObjectRef(uri="local://" + KEY, sha256=sha256_hex(b""), size=0)
    with pytest.raises(StorageError, match="not found") as info:
        store.get(ref)
    assert not isinstance(info.value, IntegrityError)
    assert info.value.uri == ref.uri


@pytest.mark.parametrize(
    "uri",
    ["s3://bucket/" + KEY, "sj://bucket/x", "local://../escape.bin", "local:///etc/passwd", ""],
)
def test_foreign_or_unsafe_uri_is_storage_error(store: LocalStore, uri: str) -> None:
    with pytest.raises(StorageError):
        store.get(ObjectRef(uri=uri, sha256=sha256_hex(b""), size=0))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/abs/path.bin",
        "../escape.bin",
        "a/../b.bin",
        "a/./b.bin",
        "a//b.bin",
        "a/b/",
        "a/.hidden",
        "space in.bin",
        "a\\b.bin",
        "ümlaut.bin",
    ],
)
def test_bad_key_is_value_error(store: LocalStore, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")
    with pytest.raises(ValueError):
        store.exists(key)


def test_put_leaves_no_temporary_files(store: LocalStore) -> None:
    for party in ("alice", "bob", "carol"):
        store.put(object_key("s1", 1, "update", party), party.encode() * 1000)
    files = sorted(p.name for p in (store.root / "zkadapt/s1/round-1/update").iterdir())
    assert files == ["alice.bin", "bob.bin", "carol.bin"]


def test_failed_put_leaves_no_temporary_file(store: LocalStore) -> None:
    store.put("a/b", b"x")  # "a/b" is a file, so "a/b/c" cannot be created under it
    with pytest.raises(StorageError):
        store.put("a/b/c", b"y")
    assert sorted(p.name for p in (store.root / "a").iterdir()) == ["b"]


def test_list_is_sorted_and_filtered_by_prefix(store: LocalStore) -> None:
    keys = [
        object_key("s1", 2, "update", "bob"),
        object_key("s1", 1, "update", "carol"),
        object_key("s1", 1, "update", "alice"),
        object_key("s1", 10, "update", "alice"),
        object_key("s2", 1, "update", "alice"),
    ]
    for key in keys:
        store.put(key, b"x")
    assert store.list("zkadapt/s1/round-1/") == [
        "zkadapt/s1/round-1/update/alice.bin",
        "zkadapt/s1/round-1/update/carol.bin",
    ]
    assert store.list("zkadapt/s1/round-1") == [
        "zkadapt/s1/round-1/update/alice.bin",
        "zkadapt/s1/round-1/update/carol.bin",
        "zkadapt/s1/round-10/update/alice.bin",
    ]
    assert store.list("") == sorted(keys)
    assert store.list("zkadapt/none/") == []
    with pytest.raises(ValueError):
        store.list("../")


def test_open_store_registry(tmp_path: Path) -> None:
    store = open_store("local", root=tmp_path / "s")
    assert isinstance(store, LocalStore)
    assert store.get(store.put("k.bin", b"v")) == b"v"
    with pytest.raises(ValueError, match="local"):
        open_store("ftp", root=tmp_path)
