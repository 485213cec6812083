"""The ``storj`` object store: native Storj through libuplink (``pip install 'zkadapt[storj]'``).

Over the S3 gateway (``backend = "s3"`` with ``endpoint = "https://gateway.storjshare.io"``)
the native client gives end-to-end encryption: objects are encrypted on the party's machine
with keys derived from the user's passphrase (inside the access grant) before they leave it,
and erasure-coded pieces go straight to storage nodes, so neither Storj nor the gateway ever
holds a key or sees plaintext. With the gateway, the gateway encrypts on the user's behalf.

Credentials come only from the environment (never from the session file):

* ``ZKADAPT_STORJ_ACCESS_<PARTY>``: a serialized access grant for PARTY's bucket. Others
  hand out read-only grants for their bucket (``uplink share --readonly``); with several
  parties on one machine, each party's own grant goes here too.
* ``ZKADAPT_STORJ_ACCESS``: this party's own grant (read-write on its bucket).
* ``MY_API_KEY``, ``MY_SATELLITE``, ``MY_ENCRYPTION_PASSPHRASE`` (the seed's names): an API
  key, satellite address and passphrase, from which the grant is derived. ``MY_BUCKET``, if
  set, must name this party's bucket as the session file does.

A bucket without its own grant is read with this party's own credentials, which works when
every party's bucket lives in one Storj project under one passphrase (the seed's setup).
Object URIs are ``sj://BUCKET/KEY``, as the ``uplink`` CLI writes them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from zkadapt.errors import StorageError
from zkadapt.storage.base import ObjectRef, sha256_hex
from zkadapt.storage.integrity import (
    HashingReader,
    is_seekable,
    read_chunks,
    verified_bytes,
    write_verified,
)
from zkadapt.storage.location import BucketLocation, PartyLocations, split_uri
from zkadapt.storage.retry import RetryPolicy
from zkadapt.storage.uplink_c import (
    BUCKET_NOT_FOUND,
    CANCELED,
    INTERNAL,
    OBJECT_NOT_FOUND,
    PERMISSION_DENIED,
    TOO_MANY_REQUESTS,
    UplinkError,
)
from zkadapt.storage.write_once import taken_by

SCHEME = "sj://"
ACCESS_ENV = "ZKADAPT_STORJ_ACCESS"
SEED_ENV = ("MY_API_KEY", "MY_SATELLITE", "MY_ENCRYPTION_PASSPHRASE")
BUCKET_ENV = "MY_BUCKET"
_TRANSIENT = {CANCELED, TOO_MANY_REQUESTS}
_NETWORK = re.compile(
    r"dial|connect|connection|timeout|timed out|unavailable|reset|broken pipe|EOF|no route",
    re.IGNORECASE,
)

T = TypeVar("T")


def access_env_name(party: str) -> str:
    """``ZKADAPT_STORJ_ACCESS_<PARTY>``: the party name upper-cased, ``-`` as ``_``."""
    return f"{ACCESS_ENV}_{re.sub(r'[^A-Z0-9]', '_', party.upper())}"


def is_transient(exc: BaseException) -> bool:
    """Dial failures, throttling and cancellations may pass; denials and bad keys will not.

    libuplink reports network failures and malformed credentials alike as INTERNAL, so an
    INTERNAL error counts as transient only when its message is about the connection.
    """
    if not isinstance(exc, UplinkError):
        return False
    if exc.code == INTERNAL:
        return bool(_NETWORK.search(exc.message))
    return exc.code in _TRANSIENT


class StorjStore:
    """An :class:`~zkadapt.storage.base.ObjectStore` on native Storj, one bucket per party.

    ``uplink`` is the :class:`~zkadapt.storage.uplink_c.Uplink` binding (or a fake with the
    same methods in tests). Projects are opened lazily, one per set of credentials.
    """

    scheme = SCHEME

    def __init__(
        self,
        *,
        party: str | None,
        locations: Mapping[str, BucketLocation],
        uplink: Any,
        environ: Mapping[str, str] | None = None,
        create_bucket: bool = False,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.party = party
        self.locations = locations if isinstance(locations, PartyLocations) else dict(locations)
        if party is not None and party not in self.locations:
            raise ValueError(f"party {party!r} has no storage location")
        self._uplink = uplink
        self._env = dict(os.environ if environ is None else environ)
        self._create_bucket = create_bucket
        self._retry = retry or RetryPolicy()
        self._projects: dict[str, Any] = {}

    # -- the ObjectStore protocol ----------------------------------------------------------

    def location_of(self, party: str) -> str:
        """``sj://BUCKET/PREFIX`` where ``party`` writes (ValueError for a stranger)."""
        try:
            return self.locations[party].uri
        except KeyError:
            raise ValueError(f"party {party!r} has no storage location") from None

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        """Upload ``data`` (bytes or a stream) to this party's bucket; commit makes it visible.

        Objects are write-once (:mod:`zkadapt.storage.write_once`).
        """
        loc = self._own("writing")
        name, uri = loc.object_name(key), loc.uri + key
        probe = lambda k: self._exists(k, retry=False)  # noqa: E731 - an outage: upload says
        if (existing := taken_by(self, key, uri, data, exists=probe)) is not None:
            return existing
        project = self._project(self.party, loc)  # type: ignore[arg-type]
        if isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
            self._call(
                lambda: self._uplink.upload(project, loc.bucket, name, [body]), uri, "writing"
            )
            return ObjectRef(uri, sha256_hex(body), len(body))
        if not hasattr(data, "read"):
            raise ValueError(f"object data must be bytes or a stream, got {type(data).__name__}")
        seekable = is_seekable(data)
        start = data.tell() if seekable else 0

        def once() -> HashingReader:
            if seekable:
                data.seek(start)
            reader = HashingReader(data)
            self._uplink.upload(project, loc.bucket, name, read_chunks(reader))
            return reader

        reader = self._call(once, uri, "writing", retry=seekable)
        return ObjectRef(uri, reader.sha256, reader.size)

    def get(self, ref: ObjectRef) -> bytes:
        """Download and verify the object behind ``ref`` (any party's bucket)."""
        return self._read(ref, lambda chunks: verified_bytes(ref, chunks))

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        """Stream the object behind ``ref`` into ``dest``; it appears only when verified."""
        self._read(ref, lambda chunks: write_verified(ref, chunks, dest))

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists in this party's own location."""
        return self._exists(key, retry=True)

    def _exists(self, key: str, *, retry: bool) -> bool:
        loc = self._own("reading")
        name = loc.object_name(key)
        project = self._project(self.party, loc)  # type: ignore[arg-type]
        size = self._call(
            lambda: self._uplink.object_size(project, loc.bucket, name),
            loc.uri + key,
            "reading",
            retry=retry,
        )
        return size is not None

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` in this party's own location, sorted."""
        loc = self._own("listing")
        if prefix:
            loc.object_name(prefix + "x" if prefix.endswith("/") else prefix)
        project = self._project(self.party, loc)  # type: ignore[arg-type]
        names = self._call(
            lambda: self._uplink.list_keys(project, loc.bucket, loc.prefix + prefix),
            loc.uri + prefix,
            "listing",
        )
        return sorted(n[len(loc.prefix) :] for n in names if n.startswith(loc.prefix + prefix))

    # -- opening ---------------------------------------------------------------------------

    def check(self) -> None:
        """Fail fast when this party cannot reach its own bucket (creating it if asked).

        Raises:
            StorageError: no or bad credentials, ``MY_BUCKET`` disagrees, no such bucket.
        """
        if self.party is None:
            return
        loc = self.locations[self.party]
        wanted = self._env.get(BUCKET_ENV)
        if wanted and wanted != loc.bucket:
            raise StorageError(
                loc.uri,
                f"party {self.party}: {BUCKET_ENV}={wanted} but the session file gives this "
                f"party bucket {loc.bucket}; set bucket = {wanted!r} in its [[parties]] entry",
            )
        project = self._project(self.party, loc)
        self._call(
            lambda: self._uplink.stat_bucket(project, loc.bucket, create=self._create_bucket),
            loc.uri,
            "opening its bucket",
        )

    def _project(self, owner: str, loc: BucketLocation) -> Any:
        """The project holding ``owner``'s bucket, opened with the right credentials."""
        grant_var = access_env_name(owner)
        if grant_var in self._env:
            cache_key = grant_var
        elif self.party is not None:
            cache_key = "own"
        else:
            raise StorageError(
                loc.uri, f"the reader has no access grant for {owner}'s bucket: set {grant_var}"
            )
        if cache_key not in self._projects:
            access = self._call(lambda: self._access(cache_key, grant_var), loc.uri, "opening")
            self._projects[cache_key] = self._call(
                lambda: self._uplink.open_project(access), loc.uri, "opening"
            )
        return self._projects[cache_key]

    def _access(self, cache_key: str, grant_var: str) -> Any:
        if cache_key != "own":
            return self._uplink.parse_access(self._env[grant_var])
        own_var = access_env_name(self.party or "")
        for var in (own_var, ACCESS_ENV):
            if self._env.get(var):
                return self._uplink.parse_access(self._env[var])
        if all(self._env.get(v) for v in SEED_ENV):
            api_key, satellite, passphrase = (self._env[v] for v in SEED_ENV)
            return self._uplink.request_access(satellite, api_key, passphrase)
        bucket = self.locations[self.party].bucket  # type: ignore[index]
        raise StorageError(
            f"{SCHEME}{bucket}/",
            f"party {self.party} has no Storj credentials: set {own_var} or {ACCESS_ENV} "
            f"(an access grant), or {', '.join(SEED_ENV)}",
        )

    # -- helpers ---------------------------------------------------------------------------

    def _read(self, ref: ObjectRef, consume: Callable[[Any], T]) -> T:
        try:
            bucket, name = split_uri(ref.uri, SCHEME)
        except ValueError as exc:
            raise StorageError(str(ref.uri), str(exc)) from None
        owner = next((p for p, loc in sorted(self.locations.items()) if loc.bucket == bucket), None)
        loc = self.locations[owner] if owner else BucketLocation(SCHEME, bucket)
        if owner is None and self.party is None:
            raise StorageError(ref.uri, "bucket belongs to no party of this session")
        project = self._project(owner or self.party, loc)  # type: ignore[arg-type]
        return self._call(
            lambda: consume(self._uplink.download(project, bucket, name)), ref.uri, "reading"
        )

    def _own(self, doing: str) -> BucketLocation:
        if self.party is None:
            raise StorageError(SCHEME, f"{doing} needs a party's own bucket; this store only reads")
        return self.locations[self.party]

    def _call(self, fn: Callable[[], T], uri: str, doing: str, *, retry: bool = True) -> T:
        policy = self._retry if retry else RetryPolicy(retries=0)
        try:
            who = f"party {self.party}" if self.party else "the reader"
            return policy.call(fn, is_transient, what=f"{uri}: {who} {doing}")
        except UplinkError as exc:
            raise self._error(exc, uri, doing) from None

    def _error(self, exc: UplinkError, uri: str, doing: str) -> StorageError:
        who = f"party {self.party}" if self.party else "the reader"
        bucket = uri[len(SCHEME) :].split("/", 1)[0]
        first_line = exc.message.splitlines()[0] if exc.message else f"code {exc.code:#x}"
        if exc.code == PERMISSION_DENIED:
            return StorageError(
                uri, f"{who} is denied {doing}: its access grant has no permission on {bucket}"
            )
        if exc.code == BUCKET_NOT_FOUND:
            return StorageError(uri, f"{who}: bucket {bucket} does not exist")
        if exc.code == OBJECT_NOT_FOUND:
            return StorageError(uri, "object not found")
        return StorageError(uri, f"{who}: {doing} failed: {first_line}")

    def __repr__(self) -> str:
        return f"StorjStore(party={self.party!r})"  # never a grant or passphrase
