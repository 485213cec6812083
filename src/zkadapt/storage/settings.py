"""``[storage]``: the object-store settings of a session file, and their checks.

The model lives beside the backends so that the storage package never reads the whole
session config (DESIGN.md section 1): ``zkadapt.config`` composes :class:`StorageConfig`
into ``SessionConfig``, and each backend registers the check of the keys it uses
(:func:`check_local`, :func:`check_s3`, :func:`check_storj`). A check sees only this section
and each party's name and own bucket (:class:`Owner`), never the rest of the session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from pydantic import Field, field_validator

from zkadapt.errors import ConfigError
from zkadapt.sections import Section
from zkadapt.storage.location import (
    OWNER_FIELD,
    PARTY_FIELD,
    bucket_name_problem,
    fill,
    normalize_prefix,
    template_fields,
    template_problem,
)


class Owner(Protocol):
    """What storage needs to know of a party: its name and, optionally, its own bucket."""

    @property
    def name(self) -> str: ...

    @property
    def bucket(self) -> str | None: ...


class StorageConfig(Section):
    """Object store for updates (DESIGN.md section 5, docs/storage.md).

    ``local`` is a directory under ``--out``; ``s3`` any S3-compatible service (Storj's
    gateway, AWS, SeaweedFS, MinIO); ``storj`` native Storj. With a bucket store each party
    writes to its own bucket (``bucket``, a ``{party}`` template, or a party's own
    ``bucket`` key) under ``prefix``, and reads the others'. Credentials never go here:
    they come from the environment or the named ``profile``. ``backend`` is any name
    registered with :func:`zkadapt.storage.register_store`.
    """

    backend: str = "local"
    path: str = Field("store", description="local: directory, relative to the output directory.")
    endpoint: str | None = Field(None, description="s3: service URL; none means AWS.")
    region: str | None = Field(None, description="s3: signing region; default the profile's.")
    bucket: str = Field("zkadapt-{party}", description="Each party's bucket ({party} template).")
    prefix: str = Field("", description="Key prefix inside each bucket ({party} template).")
    profile: str | None = Field(None, description="s3: credentials profile ({party} template).")
    read_profile: str | None = Field(
        None, description="s3: profile to read others' buckets ({party}/{owner} template)."
    )
    create_bucket: bool = Field(False, description="Create a party's bucket if it is missing.")
    encrypt: bool = Field(False, description="AES-GCM at rest, key in ZKADAPT_STORAGE_KEY.")
    part_size_mb: int = Field(64, ge=5, le=5120, description="s3: multipart part size.")
    retries: int = Field(8, ge=0, le=100, description="Retries of a failed transfer.")
    backoff_s: float = Field(0.5, gt=0, le=60, description="First retry delay, then doubled.")

    @field_validator("backend")
    @classmethod
    def _registered(cls, name: str) -> str:
        from zkadapt.storage import STORE_BACKENDS

        return STORE_BACKENDS.check_name(name)

    def location(self, party: Owner) -> tuple[str, str]:
        """``(bucket, prefix)`` where ``party`` writes; the prefix is "" or ends in "/"."""
        bucket = party.bucket or fill(self.bucket, party.name)
        return bucket, normalize_prefix(fill(self.prefix, party.name))

    def profile_for(self, party: str | None) -> str | None:
        """The credentials profile of ``party``; a ``{party}`` template needs a party."""
        if self.profile is None or "{" + PARTY_FIELD + "}" not in self.profile:
            return self.profile
        return fill(self.profile, party) if party is not None else None

    def read_profile_for(self, party: str | None, owner: str) -> str | None:
        """The profile ``party`` reads ``owner``'s bucket with (None: its own profile)."""
        if self.read_profile is None or owner == party:
            return None
        if party is None and PARTY_FIELD in template_fields(self.read_profile):
            return None  # a reader without a party uses the default credentials
        return fill(self.read_profile, party or "", owner)


_S3_ONLY = ("endpoint", "region", "profile", "read_profile")


def check_local(storage: StorageConfig, owners: Sequence[Owner]) -> None:
    """``local``: no bucket keys (the store is one directory under the output directory)."""
    for key in _S3_ONLY:
        if getattr(storage, key) is not None:
            raise ConfigError(f"storage.{key}", "only used with storage.backend = 's3'")
    for i, party in enumerate(owners):
        if party.bucket is not None:
            raise ConfigError(f"parties[{i}].bucket", "only used with backend 's3' or 'storj'")


def check_s3(storage: StorageConfig, owners: Sequence[Owner]) -> None:
    """``s3``: an http(s) endpoint, valid templates and one place per party."""
    if storage.endpoint is not None and not re.fullmatch(
        r"https?://[^\s/]+(/\S*)?", storage.endpoint
    ):
        raise ConfigError("storage.endpoint", "must be an http:// or https:// URL")
    check_buckets(storage, owners)


def check_storj(storage: StorageConfig, owners: Sequence[Owner]) -> None:
    """``storj``: no S3 credentials keys (the access grant is in the environment)."""
    for key in _S3_ONLY:
        if getattr(storage, key) is not None:
            raise ConfigError(
                f"storage.{key}", "not used by 'storj' (credentials come from the environment)"
            )
    check_buckets(storage, owners)


def check_buckets(storage: StorageConfig, owners: Sequence[Owner]) -> None:
    """Templates that fill, valid bucket names, and no two parties writing to one place."""
    for key in ("bucket", "prefix", "profile", "read_profile"):
        value = getattr(storage, key)
        allowed = (PARTY_FIELD, OWNER_FIELD) if key == "read_profile" else (PARTY_FIELD,)
        problem = template_problem(value, allowed) if value else None
        if problem:
            raise ConfigError(f"storage.{key}", problem)
    places: dict[tuple[str, str], str] = {}
    for i, party in enumerate(owners):
        key = f"parties[{i}].bucket" if party.bucket else "storage.bucket"
        try:
            bucket, prefix = storage.location(party)
        except ValueError as exc:
            raise ConfigError("storage.prefix", f"for {party.name}: {exc}") from None
        problem = bucket_name_problem(bucket)
        if problem:
            raise ConfigError(key, f"for {party.name}: {problem}")
        for (other_bucket, other_prefix), other in places.items():
            if bucket == other_bucket and (
                prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
            ):
                raise ConfigError(
                    key,
                    f"{party.name} and {other} would write to the same place "
                    f"({bucket}/{prefix or other_prefix}); give each party its own bucket, "
                    "or a prefix with {party}",
                )
        places[(bucket, prefix)] = party.name
