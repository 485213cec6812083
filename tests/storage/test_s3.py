"""The s3 backend against a real SeaweedFS: permissions, clear errors, retries, restarts."""

from __future__ import annotations

import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import start_seaweed
from tests.seaweed import SeaweedS3
from zkadapt.errors import ConfigError, IntegrityError, StorageError
from zkadapt.storage.location import BucketLocation
from zkadapt.storage.retry import RetryPolicy
from zkadapt.storage.s3 import MIB, S3Settings, S3Store, is_transient

PARTIES = ("alice", "bob", "carol")
QUICK = RetryPolicy(retries=1, backoff_s=0.01)


def _locations(**override: str) -> dict[str, BucketLocation]:
    buckets = {p: f"zkadapt-{p}" for p in PARTIES} | override
    return {p: BucketLocation("s3://", b) for p, b in buckets.items()}


def _store(
    server: SeaweedS3,
    party: str | None,
    *,
    profile: str | None = None,
    retry: RetryPolicy = QUICK,
    **override: str,
) -> S3Store:
    settings = S3Settings(
        endpoint=server.endpoint,
        profile=profile or (f"zkadapt-{party}" if party else None),
        part_size=5 * MIB,
        retry=retry,
    )
    return S3Store(settings, party=party, locations=_locations(**override))


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def test_wrong_credentials_name_the_bucket_and_the_party(s3_server: SeaweedS3) -> None:
    store = _store(s3_server, "alice", profile="zkadapt-wrong")
    with pytest.raises(StorageError) as info:
        store.check()
    text = _one_line(info.value)
    assert text.startswith("s3://zkadapt-alice/: party alice is denied")
    assert "wrong credentials (profile 'zkadapt-wrong')" in text


def test_missing_bucket_names_the_bucket_and_the_party(s3_server: SeaweedS3) -> None:
    store = _store(s3_server, "alice", profile="zkadapt-admin", alice="zkadapt-nobody-here")
    with pytest.raises(StorageError) as info:
        store.check()
    assert _one_line(info.value) == (
        "s3://zkadapt-nobody-here/: party alice: bucket zkadapt-nobody-here does not exist"
    )


def test_create_bucket_makes_a_missing_own_bucket(s3_server: SeaweedS3) -> None:
    bucket = f"zkadapt-new-{secrets.token_hex(4)}"
    settings = S3Settings(endpoint=s3_server.endpoint, profile="zkadapt-admin", create_bucket=True)
    store = S3Store(settings, party="alice", locations=_locations(alice=bucket))
    store.check()
    assert store.get(store.put("k.bin", b"v")) == b"v"


def test_unknown_profile_is_a_one_line_error(s3_server: SeaweedS3) -> None:
    with pytest.raises(StorageError) as info:
        _store(s3_server, "bob", profile="no-such-profile")
    assert "party bob" in _one_line(info.value) and "zkadapt-bob" in str(info.value)


def test_a_party_cannot_write_into_another_partys_bucket(s3_server: SeaweedS3) -> None:
    bob_as_alice = _store(s3_server, "alice", profile="zkadapt-bob")  # bob's keys, alice's bucket
    with pytest.raises(StorageError) as info:
        bob_as_alice.put("evil.bin", b"x")
    assert "is denied writing" in _one_line(info.value)
    assert info.value.uri == "s3://zkadapt-alice/evil.bin"


def test_another_partys_object_is_read_by_key_bounded(s3_server: SeaweedS3) -> None:
    key = f"zkadapt/s/escrow/{secrets.token_hex(4)}.json"
    _store(s3_server, "carol").put(key, b"ballot")
    alice = _store(s3_server, "alice")
    uri = alice.location_of("carol") + key
    assert alice.get_key(uri, 100) == b"ballot"
    with pytest.raises(StorageError, match="larger than 3 bytes"):
        alice.get_key(uri, 3)
    with pytest.raises(StorageError, match="object not found"):
        alice.get_key(alice.location_of("carol") + "zkadapt/s/escrow/nobody.json", 100)


def test_reader_without_a_party_reads_but_cannot_write(s3_server: SeaweedS3) -> None:
    ref = _store(s3_server, "carol").put(f"r/{secrets.token_hex(4)}.bin", b"data")
    reader = _store(s3_server, None, profile="zkadapt-alice")
    reader.check()  # nothing to check without an own bucket
    assert reader.get(ref) == b"data"
    with pytest.raises(StorageError, match="only reads"):
        reader.put("x.bin", b"x")


def test_prefix_is_part_of_the_location_and_the_uri(s3_server: SeaweedS3) -> None:
    prefix = f"team-{secrets.token_hex(3)}/"
    locations = {p: BucketLocation("s3://", f"zkadapt-{p}", prefix) for p in PARTIES}
    settings = S3Settings(endpoint=s3_server.endpoint, profile="zkadapt-bob", retry=QUICK)
    store = S3Store(settings, party="bob", locations=locations)
    ref = store.put("zkadapt/x.bin", b"1")
    assert (
        ref.uri
        == f"s3://zkadapt-bob/{prefix}zkadapt/x.bin"
        == store.location_of("bob") + "zkadapt/x.bin"
    )
    assert store.list("zkadapt/") == ["zkadapt/x.bin"]


def test_transient_errors_are_connection_throttling_and_5xx() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
        )

    assert is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert is_transient(client_error("SlowDown", 503))
    assert is_transient(client_error("InternalError", 500))
    assert not is_transient(client_error("AccessDenied", 403))
    assert not is_transient(client_error("NoSuchKey", 404))
    assert not is_transient(ValueError("bad"))


def test_missing_boto3_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError, match=r"^storage\.backend: 's3' needs boto3: pip install"):
        S3Store(S3Settings(), party="alice", locations=_locations())


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeaweedS3]:
    """A server of this test's own, free to stop and restart."""
    server = start_seaweed(tmp_path / "s3", monkeypatch)
    yield server
    server.stop()


def test_operations_retry_while_the_server_restarts(own_server: SeaweedS3) -> None:
    patient = RetryPolicy(retries=10, backoff_s=0.2, max_backoff_s=2.0)
    alice = _store(own_server, "alice", retry=patient)
    bob = _store(own_server, "bob", retry=patient)
    before = alice.put("before.bin", b"written before the outage")
    own_server.stop()
    restart = threading.Timer(2.0, own_server.start)
    restart.start()
    try:
        started = time.monotonic()
        after = alice.put("after.bin", secrets.token_bytes(7 * MIB))  # multipart, during outage
        assert time.monotonic() - started > 1.0  # it did wait for the server
    finally:
        restart.join()
    assert bob.get(before) == b"written before the outage"
    assert len(bob.get(after)) == after.size == 7 * MIB


def test_gives_up_with_a_clear_error_when_the_server_stays_down(own_server: SeaweedS3) -> None:
    store = _store(own_server, "alice", retry=RetryPolicy(retries=2, backoff_s=0.01))
    own_server.stop()
    with pytest.raises(StorageError) as info:
        store.put("x.bin", b"x")
    text = _one_line(info.value)
    assert text.startswith("s3://zkadapt-alice/x.bin: party alice: writing failed after 2 retries")
    assert own_server.endpoint in text


def test_other_buckets_can_be_read_with_their_own_read_profiles(s3_server: SeaweedS3) -> None:
    ref = _store(s3_server, "bob").put(f"r/{secrets.token_hex(4)}.bin", b"bob's")
    settings = S3Settings(
        endpoint=s3_server.endpoint,
        profile="zkadapt-alice",
        read_profiles={"bob": "zkadapt-bob"},  # e.g. a read-only Storj grant bob handed out
        retry=QUICK,
    )
    assert S3Store(settings, party="alice", locations=_locations()).get(ref) == b"bob's"
    bad = S3Settings(
        endpoint=s3_server.endpoint, profile="zkadapt-alice", read_profiles={"bob": "zkadapt-wrong"}
    )
    with pytest.raises(StorageError) as info:
        S3Store(bad, party="alice", locations=_locations()).get(ref)
    assert "party alice is denied reading" in str(info.value)
    assert "(profile 'zkadapt-wrong')" in str(info.value) and "bucket zkadapt-bob" in str(
        info.value
    )


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_ranged_download_of_a_damaged_large_object_leaves_nothing(
    s3_server: SeaweedS3, tmp_path: Path, damage: str
) -> None:
    data = secrets.token_bytes(11 * MIB)  # above the 5 MiB part: parallel ranged GETs
    alice = _store(s3_server, "alice")
    ref = alice.put(f"big/{secrets.token_hex(4)}.bin", data)
    bad = data[:-1] + bytes([data[-1] ^ 1]) if damage == "flipped" else data[: 6 * MIB]
    s3_server.client("admin").put_object(
        Bucket="zkadapt-alice", Key=ref.uri.removeprefix("s3://zkadapt-alice/"), Body=bad
    )
    dest = tmp_path / "out" / "big.bin"
    with pytest.raises(IntegrityError):
        _store(s3_server, "bob").get_file(ref, dest)
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
