"""Bucket locations, URIs, and the protocol's check that an update sits where its sender writes."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest

from tests.storage.fake_uplink import storj_stores
from zkadapt.protocol.messages import Submitted
from zkadapt.protocol.round import verify_submission
from zkadapt.protocol.update import UpdateRejected
from zkadapt.storage import object_key, sha256_hex
from zkadapt.storage.location import (
    BucketLocation,
    bucket_name_problem,
    normalize_prefix,
    split_uri,
    template_problem,
)

SESSION = "ab" * 32


@pytest.mark.parametrize("name", ["zkadapt-alice", "abc", "a.b-c", "0" * 63])
def test_valid_bucket_names(name: str) -> None:
    assert bucket_name_problem(name) is None


@pytest.mark.parametrize("name", ["ab", "A-b", "a_b", "-ab", "ab-", "a..b", "1.2.3.4", "a" * 64])
def test_invalid_bucket_names(name: str) -> None:
    assert bucket_name_problem(name)


def test_templates_prefixes_and_uris() -> None:
    assert template_problem("zkadapt-{party}") is None
    assert "{user}" in (template_problem("x-{user}") or "")
    assert template_problem("x-{") is not None
    assert normalize_prefix("") == "" and normalize_prefix("/a/b/") == "a/b/"
    with pytest.raises(ValueError):
        normalize_prefix("a/../b")
    assert split_uri("s3://zkadapt-bob/p/k.bin", "s3://") == ("zkadapt-bob", "p/k.bin")
    for bad in ["s3://zkadapt-bob", "s3://Bob/k", "sj://zkadapt-bob/k", "s3://zkadapt-bob/../k"]:
        with pytest.raises(ValueError):
            split_uri(bad, "s3://")
    loc = BucketLocation("s3://", "b", "p/")
    assert loc.contains(BucketLocation("s3://", "b", "p/q/")) and not loc.contains(
        BucketLocation("s3://", "c", "p/")
    )


@dataclass
class _RecordingStore:
    """Locations by party; remembers every URI it was asked to fetch."""

    inner: Any
    fetched: list[str]

    def location_of(self, party: str) -> str:
        return self.inner.location_of(party)

    def get(self, ref: Any) -> bytes:
        self.fetched.append(ref.uri)
        return self.inner.get(ref)


class _Scheme:
    def open(self, r: int, sub: Submitted, data: bytes, io: Any) -> bytes:
        return data


def _io(store: Any) -> Any:
    return SimpleNamespace(store=store, ctx=SimpleNamespace(session_id=SESSION))


def test_update_outside_the_senders_bucket_is_rejected_before_any_fetch() -> None:
    alice, _, _ = storj_stores()
    key = object_key(SESSION, 1, "update", "alice")
    ref = alice.put(key, b"alice's update")
    store = _RecordingStore(alice, [])
    # carol claims alice's object (a copy, or a pointer into a bucket carol cannot write)
    sub = Submitted(SESSION, 1, "carol", ref.uri, ref.sha256, ref.size, 10)
    with pytest.raises(UpdateRejected, match="outside the party's own prefix"):
        verify_submission(_Scheme(), 1, sub, _io(store))  # type: ignore[arg-type]
    assert store.fetched == []
    # alice's own submission passes, and a wrong key inside her bucket does not
    ok = Submitted(SESSION, 1, "alice", ref.uri, ref.sha256, ref.size, 10)
    assert verify_submission(_Scheme(), 1, ok, _io(store)) == b"alice's update"  # type: ignore[arg-type]
    other = alice.put("elsewhere.bin", b"x")
    wrong_key = Submitted(SESSION, 1, "alice", other.uri, sha256_hex(b"x"), 1, 10)
    with pytest.raises(UpdateRejected, match="outside the party's own prefix"):
        verify_submission(_Scheme(), 1, wrong_key, _io(store))  # type: ignore[arg-type]


def test_a_newcomer_gets_the_place_the_templates_give_its_name_and_no_one_elses() -> None:
    """docs/membership.md: a newcomer no session file lists writes where ``storage.bucket``
    and ``storage.prefix`` filled with its name say, if that is a place of its own."""
    from zkadapt.storage import bucket_locations
    from zkadapt.storage.settings import StorageConfig

    owners = [SimpleNamespace(name=n, bucket=None) for n in ("alice", "bob")]
    owners.append(SimpleNamespace(name="carol", bucket="zkadapt-mallory"))  # her own bucket
    per_party = bucket_locations(StorageConfig(backend="s3"), owners, "s3://")
    assert per_party["dave"] == BucketLocation("s3://", "zkadapt-dave")
    assert list(per_party) == ["alice", "bob", "carol", "dave"]  # remembered once derived
    with pytest.raises(KeyError):  # carol's bucket: a newcomer named mallory has no place
        per_party["mallory"]
    with pytest.raises(KeyError):  # a name that makes no valid bucket name
        per_party["x" * 60]

    shared = StorageConfig(backend="s3", bucket="shared", prefix="{party}")
    places = bucket_locations(shared, owners[:2], "s3://")
    assert places["dave"] == BucketLocation("s3://", "shared", "dave/")
    one_place = StorageConfig(backend="s3", bucket="shared", prefix="updates")
    with pytest.raises(KeyError):  # every newcomer would share one place
        bucket_locations(one_place, owners[:2], "s3://")["dave"]


def test_an_update_from_a_party_without_a_place_is_rejected_not_a_crash() -> None:
    sub = Submitted(SESSION, 1, "zed", "sj://x/y", "0" * 64, 1, 10)

    class _Placeless:
        def location_of(self, party: str) -> str:
            raise ValueError(f"party {party!r} has no storage location")

    with pytest.raises(UpdateRejected, match="no storage location of its own"):
        verify_submission(_Scheme(), 1, sub, _io(_Placeless()))  # type: ignore[arg-type]
