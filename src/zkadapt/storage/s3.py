"""The ``s3`` object store: any S3-compatible service through boto3 (DESIGN.md section 5).

Storj's S3 gateway, AWS S3, SeaweedFS and MinIO all speak the same API, so one backend
covers them; ``endpoint`` picks the service. Each party writes into its own bucket (and
optional prefix) and reads the others' with read-only credentials, so no party can
overwrite another's update (the layout of the seed: one bucket per participant).

* Credentials never sit in the session file: boto3 takes them from the environment or
  from a named profile (``storage.profile``, which may be a ``{party}`` template so that a
  local ``zkadapt run`` gives every party process its own).
* Uploads larger than one part go up as multipart uploads of ``part_size`` bytes (64 MiB,
  Storj's segment size), streamed from a file without holding it in memory; an object
  becomes visible only when its upload completes, so readers never see a partial one.
* Reads stop one byte past the size the ledger promises and check the sha256 before
  returning anything (:mod:`zkadapt.storage.integrity`).
* botocore retries single requests; :class:`~zkadapt.storage.retry.RetryPolicy` retries
  whole operations on connection errors, throttling and 5xx answers (a server restarting).
* Every failure is one :class:`~zkadapt.errors.StorageError` line naming the object or
  bucket and the party, e.g. wrong credentials or a missing bucket.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from zkadapt.errors import ConfigError, StorageError
from zkadapt.storage.base import ObjectRef, sha256_hex
from zkadapt.storage.integrity import (
    CHUNK,
    HashingReader,
    check_size_and_digest,
    is_seekable,
    place_verified,
    verified_bytes,
    write_verified,
)
from zkadapt.storage.location import BucketLocation, PartyLocations, split_uri
from zkadapt.storage.retry import RetryPolicy
from zkadapt.storage.write_once import existing_or_refuse, taken_by

SCHEME = "s3://"
MIB = 1 << 20
#: Storj's segment size; also a good multipart part size for any S3 service.
DEFAULT_PART_SIZE = 64 * MIB
#: Region used with a custom endpoint when neither the settings nor the profile name one.
FALLBACK_REGION = "us-east-1"

_DENIED = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "403",
    "Forbidden",
}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "TooManyRequests"}
_MISSING_BUCKET = {"NoSuchBucket"}
_MISSING_OBJECT = {"NoSuchKey", "404", "NotFound"}

T = TypeVar("T")


@dataclass(frozen=True)
class S3Settings:
    """How to reach the S3 service (validated by the config layer).

    Attributes:
        endpoint: service URL (``https://gateway.storjshare.io``); None means AWS.
        region: signing region; None takes the profile's, else ``us-east-1``.
        profile: named credentials profile; None uses boto3's default chain
            (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ...).
        read_profiles: profile to read each other party's bucket with, by party; a party
            not listed is read with ``profile``. Storj needs this: one access grant has one
            permission set, so "read-write own bucket, read-only others" takes two.
        part_size: multipart part size and threshold, in bytes (>= 5 MiB).
        create_bucket: create this party's bucket when it does not exist.
        retry: outer retry policy for transient failures.
    """

    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    read_profiles: Mapping[str, str] = field(default_factory=dict)
    part_size: int = DEFAULT_PART_SIZE
    create_bucket: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)


def _boto() -> Any:
    """Import boto3 lazily: only sessions with ``storage.backend = "s3"`` need it."""
    try:
        import boto3
        import boto3.s3.transfer
    except ImportError:
        raise ConfigError(
            "storage.backend", "'s3' needs boto3: pip install 'zkadapt[s3]'"
        ) from None
    return boto3


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same S3 operation may succeed (connection, throttling, 5xx)."""
    from botocore.exceptions import (
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
    )

    exc = _unwrap(exc)
    if isinstance(exc, ClientError):
        code, status = _code_and_status(exc)
        return status >= 500 or code in _THROTTLED
    return isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError))


def _unwrap(exc: BaseException) -> BaseException:
    """boto3's transfer manager wraps a ClientError in S3UploadFailedError; look inside."""
    from boto3.exceptions import S3UploadFailedError

    if isinstance(exc, S3UploadFailedError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _code_and_status(exc: Any) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return str(error.get("Code", status)), int(status)


class S3Store:
    """An :class:`~zkadapt.storage.base.ObjectStore` over S3 buckets, one per party.

    ``party`` is whose credentials these are: it writes to ``locations[party]``. A store
    opened with ``party=None`` (an auditor) can only read.
    """

    scheme = SCHEME

    def __init__(
        self,
        settings: S3Settings,
        *,
        party: str | None,
        locations: Mapping[str, BucketLocation],
        client: Any | None = None,
    ) -> None:
        """Build the store; no request is sent until :meth:`check` or an operation.

        Raises:
            ConfigError: boto3 is not installed.
            StorageError: the named profile does not exist.
        """
        self.settings = settings
        self.party = party
        self.locations = locations if isinstance(locations, PartyLocations) else dict(locations)
        if party is not None and party not in self.locations:
            raise ValueError(f"party {party!r} has no storage location")
        boto3 = _boto()
        self._clients: dict[str | None, Any] = {}
        self._client = client if client is not None else self._make_client(settings.profile)
        self._clients[settings.profile] = self._client
        self._transfer = boto3.s3.transfer.TransferConfig(
            multipart_threshold=settings.part_size,
            multipart_chunksize=settings.part_size,
            max_concurrency=4,
            use_threads=True,
        )

    # -- the ObjectStore protocol ----------------------------------------------------------

    def location_of(self, party: str) -> str:
        """``s3://BUCKET/PREFIX`` where ``party`` writes (ValueError for a stranger)."""
        try:
            return self.locations[party].uri
        except KeyError:
            raise ValueError(f"party {party!r} has no storage location") from None

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        """Upload ``data`` to this party's bucket; multipart above ``part_size``.

        A bytes object, or a seekable stream, is uploaded again from its start when the
        server drops the connection; a non-seekable stream only gets botocore's retries.
        Objects are write-once (:mod:`zkadapt.storage.write_once`): a taken key returns the
        same bytes' reference or raises ObjectExists. A single-part object is written with
        S3's conditional PUT (``If-None-Match: *``), atomically; a multipart one after a HEAD.

        Raises:
            ValueError: ``key`` is unsafe or ``data`` is neither bytes nor a stream.
            StorageError: read-only store, denied, missing bucket, or retries exhausted.
        """
        loc = self._own("writing")
        name = loc.object_name(key)
        uri = loc.uri + key
        if (
            isinstance(data, (bytes, bytearray, memoryview))
            and len(data) <= self.settings.part_size
        ):
            body = bytes(data)
            ref = ObjectRef(uri, sha256_hex(body), len(body))
            created = self._retrying(lambda: self._put_new(loc.bucket, name, body), uri, "writing")
            return ref if created else existing_or_refuse(self, ref)  # write-once
        probe = lambda k: self._exists(k, retry=False)  # noqa: E731 - an outage: upload says
        if (existing := taken_by(self, key, uri, data, exists=probe)) is not None:
            return existing  # write-once: the same bytes are there already
        if isinstance(data, (bytes, bytearray, memoryview)):
            body = bytes(data)
            self._retrying(lambda: self._upload(loc.bucket, name, body), uri, "writing")
            return ObjectRef(uri, sha256_hex(body), len(body))
        if not hasattr(data, "read"):
            raise ValueError(f"object data must be bytes or a stream, got {type(data).__name__}")
        start = data.tell() if is_seekable(data) else None

        def once() -> HashingReader:
            if start is not None:
                data.seek(start)
            reader = HashingReader(data)
            self._client.upload_fileobj(reader, loc.bucket, name, Config=self._transfer)
            return reader

        reader = self._retrying(once, uri, "writing", retry=start is not None)
        return ObjectRef(uri, reader.sha256, reader.size)

    def get(self, ref: ObjectRef) -> bytes:
        """Download the object behind ``ref`` (any party's bucket) and verify it.

        Raises:
            StorageError: not an ``s3://`` URI, denied, missing, or retries exhausted.
            IntegrityError: size or sha256 differ from ``ref``.
        """
        return self._read(ref, lambda chunks: verified_bytes(ref, chunks))

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        """Download the object behind ``ref`` into ``dest``; it appears only when verified.

        Objects above one part come down as parallel ranged GETs (as ``download_file``
        does), after a HEAD that refuses a wrong size before any byte is fetched.
        """
        if ref.size <= self.settings.part_size:
            self._read(ref, lambda chunks: write_verified(ref, chunks, dest))
            return
        try:
            bucket, name = split_uri(ref.uri, SCHEME)
        except ValueError as exc:
            raise StorageError(str(ref.uri), str(exc)) from None
        client, profile = self._reader(bucket)

        def fill(tmp: BinaryIO) -> None:
            tmp.seek(0)
            tmp.truncate()
            client.download_fileobj(bucket, name, tmp, Config=self._transfer)

        def once() -> None:
            length = int(client.head_object(Bucket=bucket, Key=name)["ContentLength"])
            if length != ref.size:
                check_size_and_digest(ref, min(length, ref.size + 1), "")
            place_verified(ref, fill, dest)

        self._retrying(once, ref.uri, "reading", profile=profile)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists in this party's own location."""
        return self._exists(key, retry=True)

    def _exists(self, key: str, *, retry: bool) -> bool:
        from botocore.exceptions import ClientError

        loc = self._own("reading")
        name = loc.object_name(key)

        def once() -> bool:
            try:
                self._client.head_object(Bucket=loc.bucket, Key=name)
            except ClientError as exc:
                if _code_and_status(exc)[0] in _MISSING_OBJECT:
                    return False
                raise
            return True

        return self._retrying(once, loc.uri + key, "reading", retry=retry)

    def list(self, prefix: str = "") -> list[str]:
        """Keys under ``prefix`` in this party's own location, sorted."""
        loc = self._own("listing")
        if prefix:
            loc.object_name(prefix + "x" if prefix.endswith("/") else prefix)

        def once() -> list[str]:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=loc.bucket, Prefix=loc.prefix + prefix
            )
            return [o["Key"][len(loc.prefix) :] for p in pages for o in p.get("Contents", [])]

        return sorted(self._retrying(once, loc.uri + prefix, "listing"))

    # -- opening ---------------------------------------------------------------------------

    def check(self) -> None:
        """Fail fast, with one clear line, when this party cannot use its own bucket.

        Creates the bucket first when ``create_bucket`` is set and it does not exist.

        Raises:
            StorageError: wrong credentials, no permission, or no such bucket.
        """
        if self.party is None:
            return
        from botocore.exceptions import ClientError

        loc = self.locations[self.party]

        def once() -> None:
            try:
                self._client.head_bucket(Bucket=loc.bucket)
            except ClientError as exc:
                if not (self.settings.create_bucket and _code_and_status(exc)[1] == 404):
                    raise
                self._create_bucket(loc.bucket)

        self._retrying(once, f"{SCHEME}{loc.bucket}/", "opening its bucket", bucket_level=True)

    def _create_bucket(self, bucket: str) -> None:
        region = self._client.meta.region_name
        if self.settings.endpoint is None and region and region != FALLBACK_REGION:
            self._client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        else:
            self._client.create_bucket(Bucket=bucket)

    def _reader(self, bucket: str) -> tuple[Any, str | None]:
        """The client (and its profile) that reads ``bucket``: its owner's read profile."""
        owner = next((p for p, loc in sorted(self.locations.items()) if loc.bucket == bucket), None)
        profile = self.settings.read_profiles.get(owner or "", self.settings.profile)
        if profile not in self._clients:
            self._clients[profile] = self._make_client(profile)
        return self._clients[profile], profile

    def _make_client(self, profile: str | None) -> Any:
        boto3 = _boto()
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        try:
            session = boto3.session.Session(profile_name=profile)
        except BotoCoreError as exc:  # ProfileNotFound
            raise StorageError(self._bucket_uri(), f"{self._who()}: {exc}") from None
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
            s3={"addressing_style": "path" if self.settings.endpoint else "auto"},
            # we verify sha256 ourselves; aws-chunked checksum trailers trip some gateways
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        region = self.settings.region or session.region_name or FALLBACK_REGION
        return session.client(
            "s3", endpoint_url=self.settings.endpoint, region_name=region, config=config
        )

    # -- helpers ---------------------------------------------------------------------------

    def _put_new(self, bucket: str, name: str, body: bytes) -> bool:
        """PUT with ``If-None-Match: *`` (S3's conditional write; AWS, SeaweedFS): False when
        the key exists, so no second writer can replace an object, atomically."""
        from botocore.exceptions import ClientError

        try:
            self._client.put_object(Bucket=bucket, Key=name, Body=body, IfNoneMatch="*")
        except ClientError as exc:
            code, status = _code_and_status(exc)
            if code == "PreconditionFailed" or status == 412:
                return False
            raise
        return True

    def _upload(self, bucket: str, name: str, body: bytes) -> None:
        if len(body) <= self.settings.part_size:
            self._client.put_object(Bucket=bucket, Key=name, Body=body)
        else:
            self._client.upload_fileobj(io.BytesIO(body), bucket, name, Config=self._transfer)

    def _read(self, ref: ObjectRef, consume: Callable[[Any], T]) -> T:
        try:
            bucket, name = split_uri(ref.uri, SCHEME)
        except ValueError as exc:
            raise StorageError(str(ref.uri), str(exc)) from None

        client, profile = self._reader(bucket)

        def once() -> T:
            response = client.get_object(Bucket=bucket, Key=name)
            body = response["Body"]
            try:
                length = response.get("ContentLength")
                if length is not None and length != ref.size:  # do not download the wrong size
                    check_size_and_digest(ref, min(int(length), ref.size + 1), "")
                return consume(body.iter_chunks(CHUNK))
            finally:
                body.close()

        return self._retrying(once, ref.uri, "reading", profile=profile)

    def get_key(self, uri: str, max_bytes: int) -> bytes:
        """The bytes under another party's fixed key (``s3://bucket/key``), unverified and at
        most ``max_bytes``: for objects that carry their own signatures (the escrow's ballots
        after a premature close), whose digest nobody could post.

        Raises:
            StorageError: not an ``s3://`` URI, denied, missing, larger than ``max_bytes``,
                or retries exhausted.
        """
        try:
            bucket, name = split_uri(uri, SCHEME)
        except ValueError as exc:
            raise StorageError(str(uri), str(exc)) from None
        client, profile = self._reader(bucket)

        def once() -> bytes:
            response = client.get_object(Bucket=bucket, Key=name, Range=f"bytes=0-{max_bytes}")
            body = response["Body"]
            try:
                data = body.read(max_bytes + 1)
            finally:
                body.close()
            if len(data) > max_bytes:
                raise StorageError(uri, f"larger than {max_bytes} bytes")
            return bytes(data)

        return self._retrying(once, uri, "reading", profile=profile)

    def _own(self, doing: str) -> BucketLocation:
        if self.party is None:
            raise StorageError(SCHEME, f"{doing} needs a party's own bucket; this store only reads")
        return self.locations[self.party]

    def _retrying(
        self,
        fn: Callable[[], T],
        uri: str,
        doing: str,
        *,
        retry: bool = True,
        bucket_level: bool = False,
        profile: str | None = None,
    ) -> T:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        policy = self.settings.retry if retry else RetryPolicy(retries=0)
        try:
            return policy.call(fn, is_transient, what=f"{uri}: {self._who()} {doing}")
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise self._error(
                exc, uri, doing, bucket_level=bucket_level, retried=retry, profile=profile
            ) from None

    def _error(
        self,
        exc: BaseException,
        uri: str,
        doing: str,
        *,
        bucket_level: bool = False,
        retried: bool = True,
        profile: str | None = None,
    ) -> StorageError:
        """One line that names the object (so the bucket) and the party, and says why."""
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        who = self._who()
        hint = self._profile_hint(profile or self.settings.profile)
        exc = _unwrap(exc)
        bucket = uri[len(SCHEME) :].split("/", 1)[0] if uri.startswith(SCHEME) else "?"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StorageError(uri, f"{who}: no S3 credentials found{hint}")
        if isinstance(exc, ClientError):
            code, status = _code_and_status(exc)
            if code in _DENIED or status == 403:
                return StorageError(
                    uri,
                    f"{who} is denied {doing} ({code}): wrong credentials{hint} "
                    f"or no permission on bucket {bucket}",
                )
            if code in _MISSING_BUCKET or (bucket_level and status == 404):
                return StorageError(uri, f"{who}: bucket {bucket} does not exist")
            if code in _MISSING_OBJECT:
                return StorageError(uri, "object not found")
            message = exc.response.get("Error", {}).get("Message", "")
            return StorageError(uri, f"{who}: {doing} failed: {code} {message}".rstrip())
        tries = f" after {self.settings.retry.retries} retries" if retried else ""
        where = self.settings.endpoint or "AWS S3"
        return StorageError(uri, f"{who}: {doing} failed{tries}: {where}: {exc}")

    def _who(self) -> str:
        return f"party {self.party}" if self.party else "the reader"

    @staticmethod
    def _profile_hint(profile: str | None) -> str:
        return f" (profile {profile!r})" if profile else ""

    def _bucket_uri(self) -> str:
        if self.party is None:
            return SCHEME
        return f"{SCHEME}{self.locations[self.party].bucket}/"

    def __repr__(self) -> str:
        return f"S3Store(party={self.party!r}, endpoint={self.settings.endpoint!r})"
