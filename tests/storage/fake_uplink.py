"""An in-memory stand-in for :class:`zkadapt.storage.uplink_c.Uplink` (no satellite needed).

It keeps the binding's method shapes and error codes, and enforces what an access grant
allows: a grant named ``"<party>-rw"`` may write that party's bucket, ``"<party>-ro"`` only
read it; a project is opened per grant. So :class:`~zkadapt.storage.storj.StorjStore`'s own
logic (credentials lookup, URIs, integrity, errors) runs in the conformance suite offline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from zkadapt.storage.base import ObjectRef
from zkadapt.storage.location import BucketLocation, split_uri
from zkadapt.storage.storj import StorjStore, access_env_name
from zkadapt.storage.uplink_c import (
    BUCKET_NOT_FOUND,
    INTERNAL,
    OBJECT_NOT_FOUND,
    PERMISSION_DENIED,
    UplinkError,
)

PARTIES = ("alice", "bob", "carol")


@dataclass
class FakeSatellite:
    """Buckets and objects shared by every FakeUplink, like one Storj network."""

    buckets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    down: int = 0  # the next N calls fail as a dial error (a transient INTERNAL)

    def bucket_of(self, grant: str) -> str:
        return f"zkadapt-{grant.rsplit('-', 1)[0]}"


class FakeUplink:
    def __init__(self, satellite: FakeSatellite) -> None:
        self.sat = satellite

    def _dial(self) -> None:
        if self.sat.down > 0:
            self.sat.down -= 1
            raise UplinkError(INTERNAL, "rpc: dial tcp: connect: connection refused")

    def parse_access(self, serialized: str) -> str:
        if not serialized.endswith(("-rw", "-ro")):
            raise UplinkError(INTERNAL, "uplink: invalid access grant format")
        return serialized

    def request_access(self, satellite: str, api_key: str, passphrase: str) -> str:
        self._dial()
        return f"{api_key}-rw"

    def open_project(self, access: str) -> str:
        return access

    def stat_bucket(self, project: str, bucket: str, *, create: bool = False) -> None:
        self._dial()
        if bucket not in self.sat.buckets:
            if not create:
                raise UplinkError(BUCKET_NOT_FOUND, f"bucket not found ({bucket})")
            self._may_write(project, bucket)
            self.sat.buckets[bucket] = {}

    def object_size(self, project: str, bucket: str, key: str) -> int | None:
        self._dial()
        data = self._bucket(bucket).get(key)
        return None if data is None else len(data)

    def upload(self, project: str, bucket: str, key: str, chunks: Iterable[bytes]) -> None:
        self._dial()
        self._may_write(project, bucket)
        objects = self._bucket(bucket)
        objects[key] = b"".join(chunks)  # commit: visible only once complete

    def download(self, project: str, bucket: str, key: str) -> Iterator[bytes]:
        self._dial()
        data = self._bucket(bucket).get(key)
        if data is None:
            raise UplinkError(OBJECT_NOT_FOUND, f"object not found ({key})")
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    def list_keys(self, project: str, bucket: str, prefix: str) -> list[str]:
        self._dial()
        return [k for k in self._bucket(bucket) if k.startswith(prefix)]

    def _bucket(self, bucket: str) -> dict[str, bytes]:
        if bucket not in self.sat.buckets:
            raise UplinkError(BUCKET_NOT_FOUND, f"bucket not found ({bucket})")
        return self.sat.buckets[bucket]

    def _may_write(self, project: str, bucket: str) -> None:
        if not project.endswith("-rw") or self.sat.bucket_of(project) != bucket:
            raise UplinkError(PERMISSION_DENIED, "permission denied")


def storj_stores() -> tuple[StorjStore, StorjStore, Callable[[ObjectRef, bytes], None]]:
    """Alice's and Bob's StorjStore on one fake satellite, and a raw-overwrite hook."""
    sat = FakeSatellite(buckets={f"zkadapt-{p}": {} for p in PARTIES})

    def store(party: str) -> StorjStore:
        env = {access_env_name(p): f"{p}-ro" for p in PARTIES}
        env[access_env_name(party)] = f"{party}-rw"
        return StorjStore(
            party=party,
            locations={p: BucketLocation("sj://", f"zkadapt-{p}") for p in PARTIES},
            uplink=FakeUplink(sat),
            environ=env,
        )

    def tamper(ref: ObjectRef, data: bytes) -> None:
        bucket, name = split_uri(ref.uri, "sj://")
        sat.buckets[bucket][name] = data

    return store("alice"), store("bob"), tamper
