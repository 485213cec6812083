"""One ObjectStore test suite over every backend (STYLE rule 12).

``local`` (a directory), ``s3`` (a real SeaweedFS on loopback, each party with its own
credentials and bucket), ``storj`` (StorjStore over the in-memory uplink fake) and the
AES-GCM ``encrypt`` wrapper over ``local`` and ``s3`` must all behave the same: a reference
names the writer's location, any party reads any other's object, a stored object that
does not match its reference is never returned, and streams up to multipart size work.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from tests.storage.fake_uplink import storj_stores
from zkadapt.errors import IntegrityError, StorageError
from zkadapt.storage import ObjectRef, ObjectStore, sha256_hex
from zkadapt.storage.at_rest import EncryptedStore
from zkadapt.storage.integrity import HashingReader
from zkadapt.storage.local import LocalStore
from zkadapt.storage.location import BucketLocation, split_uri
from zkadapt.storage.retry import RetryPolicy
from zkadapt.storage.write_once import ObjectExists

PARTIES = ("alice", "bob", "carol")
BACKENDS = ["local", "s3", "storj", "local+encrypt", "s3+encrypt"]
MIB = 1 << 20


@dataclass
class Pair:
    """Two parties' views of one store, and a way to overwrite raw stored bytes."""

    alice: ObjectStore
    bob: ObjectStore
    base: str
    tamper: Callable[[ObjectRef, bytes], None]
    multipart: int  # a size that crosses the backend's part size

    def key(self, name: str) -> str:
        return f"{self.base}/{name}"


def _locations(scheme: str) -> dict[str, BucketLocation]:
    return {p: BucketLocation(scheme, f"zkadapt-{p}") for p in PARTIES}


def _local(tmp_path: Path) -> tuple[ObjectStore, ObjectStore, Callable[[ObjectRef, bytes], None]]:
    store = LocalStore(tmp_path / "store")

    def tamper(ref: ObjectRef, data: bytes) -> None:
        (store.root / ref.uri.removeprefix("local://")).write_bytes(data)

    return store, LocalStore(tmp_path / "store"), tamper


def _s3(server: object) -> tuple[ObjectStore, ObjectStore, Callable[[ObjectRef, bytes], None]]:
    from zkadapt.storage.s3 import MIB as S3_MIB
    from zkadapt.storage.s3 import S3Settings, S3Store

    def store(party: str) -> S3Store:
        settings = S3Settings(
            endpoint=server.endpoint,  # type: ignore[attr-defined]
            profile=f"zkadapt-{party}",
            part_size=5 * S3_MIB,
            retry=RetryPolicy(retries=2, backoff_s=0.05),
        )
        s = S3Store(settings, party=party, locations=_locations("s3://"))
        s.check()
        return s

    admin = server.client("admin")  # type: ignore[attr-defined]

    def tamper(ref: ObjectRef, data: bytes) -> None:
        bucket, name = split_uri(ref.uri, "s3://")
        admin.put_object(Bucket=bucket, Key=name, Body=data)

    return store("alice"), store("bob"), tamper


@pytest.fixture(scope="module")
def s3_stores(
    s3_server: object,
) -> tuple[ObjectStore, ObjectStore, Callable[[ObjectRef, bytes], None]]:
    """Alice's and Bob's S3 stores, made once: a boto3 client takes ~0.5 s to build."""
    return _s3(s3_server)


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    backend, _, wrapper = request.param.partition("+")
    if backend == "s3":
        alice, bob, tamper = request.getfixturevalue("s3_stores")
        multipart = 11 * MIB
    elif backend == "storj":
        alice, bob, tamper = storj_stores()
        multipart = 3 * MIB
    else:
        alice, bob, tamper = _local(tmp_path)
        multipart = 3 * MIB
    if wrapper == "encrypt":
        key = secrets.token_bytes(32)
        alice = EncryptedStore(alice, key, party="alice")
        bob = EncryptedStore(bob, key, party="bob")
    yield Pair(alice, bob, f"zkadapt/test-{secrets.token_hex(6)}", tamper, multipart)


def test_implements_the_protocol(pair: Pair) -> None:
    assert isinstance(pair.alice, ObjectStore)


def test_reference_points_into_the_writers_location(pair: Pair) -> None:
    key = pair.key("round-1/update/alice.bin")
    ref = pair.alice.put(key, b"payload")
    assert ref.uri == pair.alice.location_of("alice") + key
    assert ref.uri == pair.bob.location_of("alice") + key  # both parties agree where it lives
    assert pair.alice.location_of("bob").startswith(pair.alice.location_of("alice")[:2])


def test_another_party_reads_what_one_wrote(pair: Pair) -> None:
    data = os.urandom(100_000)
    ref = pair.alice.put(pair.key("a.bin"), data)
    assert pair.bob.get(ref) == data
    assert pair.alice.get(ref) == data


def test_empty_object_roundtrip(pair: Pair) -> None:
    assert pair.bob.get(pair.alice.put(pair.key("empty.bin"), b"")) == b""


def test_stream_put_equals_bytes_put(pair: Pair) -> None:
    data = os.urandom(300_000)
    by_bytes = pair.alice.put(pair.key("bytes.bin"), data)
    by_stream = pair.alice.put(pair.key("stream.bin"), io.BytesIO(data))
    by_pipe = pair.alice.put(pair.key("pipe.bin"), HashingReader(io.BytesIO(data)))  # type: ignore[arg-type]
    assert pair.bob.get(by_stream) == pair.bob.get(by_pipe) == data
    if not isinstance(pair.alice, EncryptedStore):  # ciphertexts differ (random nonces)
        assert (by_bytes.sha256, by_bytes.size) == (sha256_hex(data), len(data))
        assert (by_stream.sha256, by_stream.size) == (by_bytes.sha256, by_bytes.size)


def test_multipart_stream_roundtrip_through_a_file(pair: Pair, tmp_path: Path) -> None:
    data = os.urandom(pair.multipart)
    source = tmp_path / "big.src"
    source.write_bytes(data)
    with source.open("rb") as f:
        ref = pair.alice.put(pair.key("big.bin"), f)
    dest = tmp_path / "out" / "big.bin"
    pair.bob.get_file(ref, dest)
    assert dest.read_bytes() == data
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]  # no temp file left


@pytest.mark.parametrize(
    "tampered",
    [lambda d: d[: len(d) // 2], lambda d: d + b"x", lambda d: bytes([d[0] ^ 1]) + d[1:]],
    ids=["truncated", "longer", "flipped"],
)
def test_stored_bytes_that_do_not_match_are_never_returned(
    pair: Pair, tmp_path: Path, tampered: Callable[[bytes], bytes]
) -> None:
    data = os.urandom(50_000)
    ref = pair.alice.put(pair.key("t.bin"), data)
    stored = pair.alice.get(ref) if not isinstance(pair.alice, EncryptedStore) else None
    raw = stored if stored is not None else pair.alice.inner.get(ref)  # type: ignore[attr-defined]
    pair.tamper(ref, tampered(raw))
    with pytest.raises(IntegrityError) as info:
        pair.bob.get(ref)
    assert info.value.uri == ref.uri
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(IntegrityError):
        pair.bob.get_file(ref, dest)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []  # no partial/temp file


@pytest.mark.parametrize(
    "change",
    [
        lambda r: replace(r, sha256=sha256_hex(b"other")),
        lambda r: replace(r, size=r.size - 1),
        lambda r: replace(r, size=r.size + 1),
    ],
    ids=["digest", "shorter", "longer"],
)
def test_reference_that_does_not_match_is_integrity_error(
    pair: Pair, change: Callable[[ObjectRef], ObjectRef]
) -> None:
    ref = pair.alice.put(pair.key("r.bin"), b"0123456789")
    with pytest.raises(IntegrityError):
        pair.bob.get(change(ref))


def test_objects_are_write_once_and_a_repeat_put_is_idempotent(pair: Pair) -> None:
    """A posted reference's bytes never change (issue 17: the old rule "put again replaces"
    let a second process of a party break the digest others had accepted)."""
    old = pair.alice.put(pair.key("again.bin"), b"first")
    assert pair.alice.put(pair.key("again.bin"), b"first") == old
    with pytest.raises(ObjectExists, match="write-once"):
        pair.alice.put(pair.key("again.bin"), b"second")
    with pytest.raises(ObjectExists):
        pair.alice.put(pair.key("again.bin"), io.BytesIO(b"second, streamed"))
    assert pair.bob.get(old) == b"first"


def test_missing_object_is_storage_error_not_integrity(pair: Pair) -> None:
    uri = pair.alice.location_of("alice") + pair.key("never.bin")
    with pytest.raises(StorageError) as info:
        pair.bob.get(ObjectRef(uri, sha256_hex(b""), 0))
    assert not isinstance(info.value, IntegrityError)
    assert info.value.uri == uri


@pytest.mark.parametrize("uri", ["ftp://x/y", "s3://Bad_Bucket/k", "sj://b/../../etc", "", "s3://"])
def test_foreign_or_unsafe_uri_is_storage_error(pair: Pair, uri: str) -> None:
    with pytest.raises(StorageError):
        pair.bob.get(ObjectRef(uri, sha256_hex(b""), 0))


def test_exists_and_list_cover_the_own_location(pair: Pair) -> None:
    for name in ("r1/alice.bin", "r1/z.bin", "r10/alice.bin"):
        pair.alice.put(pair.key(name), b"x")
    pair.bob.put(pair.key("bob/r1.bin"), b"y")
    assert pair.alice.exists(pair.key("r1/alice.bin"))
    assert not pair.alice.exists(pair.key("r1/nobody.bin"))
    assert pair.alice.list(pair.key("r1/")) == [pair.key("r1/alice.bin"), pair.key("r1/z.bin")]
    assert pair.alice.list(pair.key("r1")) == [
        pair.key("r1/alice.bin"),
        pair.key("r1/z.bin"),
        pair.key("r10/alice.bin"),
    ]
    assert pair.alice.list(pair.key("none/")) == []
    shared = pair.alice.location_of("bob") == pair.alice.location_of("alice")  # local: one dir
    assert pair.alice.exists(pair.key("bob/r1.bin")) is shared
    assert pair.alice.list(pair.key("bob/")) == ([pair.key("bob/r1.bin")] if shared else [])


@pytest.mark.parametrize("key", ["", "/abs.bin", "../escape.bin", "a//b.bin", "a/.hidden"])
def test_unsafe_key_is_value_error(pair: Pair, key: str) -> None:
    with pytest.raises(ValueError):
        pair.alice.put(key, b"x")


class _FailingStream:
    """Gives ``size`` bytes, then fails as a disk or pipe error would."""

    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError("source broke mid-upload")
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n

    def seekable(self) -> bool:
        return False


def test_failed_stream_upload_leaves_no_partial_object(pair: Pair) -> None:
    key = pair.key("partial.bin")
    with pytest.raises((OSError, StorageError)):
        pair.alice.put(key, _FailingStream(pair.multipart // 2))  # type: ignore[arg-type]
    assert not pair.alice.exists(key)
    assert pair.alice.list(pair.key("")) == []
