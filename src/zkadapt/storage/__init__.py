"""Object storage backends, chosen by name (DESIGN.md sections 1 and 5).

Every backend is one :class:`StoreBackend` in :data:`STORE_BACKENDS`: a factory, the check
of its ``[storage]`` keys and, for bucket stores, its URI scheme. The built-ins register
below; their modules are imported lazily so that a backend's dependencies (boto3 for
``s3``, uplink for ``storj``) are needed only when it is used. A new backend is one module
plus one :func:`register_store` call, and ``storage.backend`` accepts its name from then on.

Factories are called with keyword arguments: ``settings`` (the ``[storage]`` section),
``party`` (None: read-only), ``owners`` (every party's name and own bucket) and
``out_dir`` (where relative paths resolve); a factory ignores what it does not use.
``open_store("local", root=...)`` also opens a directory directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt.registry import Registry
from zkadapt.storage.base import ObjectRef, ObjectStore, object_key, sha256_hex
from zkadapt.storage.location import BucketLocation, PartyLocations

if TYPE_CHECKING:
    from zkadapt.storage.settings import Owner, StorageConfig

__all__ = [
    "STORE_BACKENDS",
    "ObjectRef",
    "ObjectStore",
    "StoreBackend",
    "bucket_locations",
    "object_key",
    "open_store",
    "register_store",
    "sha256_hex",
    "store_backends",
]

StoreFactory = Callable[..., ObjectStore]
#: Checks a backend's keys of ``[storage]`` against the parties; raises ConfigError.
StoreCheck = Callable[["StorageConfig", "Sequence[Owner]"], None]


@dataclass(frozen=True)
class StoreBackend:
    """One storage backend: how to open it and which ``[storage]`` keys it accepts."""

    factory: StoreFactory
    check: StoreCheck | None = None
    uri_scheme: str | None = None  # bucket stores: "s3://", "sj://"


STORE_BACKENDS: Registry[StoreBackend] = Registry("storage backend")


def register_store(
    name: str,
    factory: StoreFactory,
    *,
    check: StoreCheck | None = None,
    uri_scheme: str | None = None,
) -> None:
    """Add a backend under a unique lowercase ``name`` (STYLE.md rule 1).

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_-]`` or is already registered.
    """
    STORE_BACKENDS.register(name, StoreBackend(factory, check, uri_scheme))


def store_backends() -> list[str]:
    """The registered backend names, sorted."""
    return STORE_BACKENDS.names()


def open_store(backend: str, **kwargs: Any) -> ObjectStore:
    """Open the object store ``backend`` with its keyword arguments.

    Raises:
        ValueError: ``backend`` is unknown (the message lists the valid names).
        StorageError: the backend cannot be opened.
    """
    return STORE_BACKENDS.get(backend).factory(**kwargs)


def bucket_locations(
    settings: StorageConfig, owners: Sequence[Owner], scheme: str
) -> PartyLocations:
    """Every party's bucket and prefix in a bucket store whose URIs start with ``scheme``;
    a newcomer's comes from the templates, when they give it a place of its own
    (:class:`~zkadapt.storage.location.PartyLocations`)."""
    listed = {p.name: BucketLocation(scheme, *settings.location(p)) for p in owners}
    return PartyLocations(listed, lambda name: newcomer_location(settings, name, scheme))


def newcomer_location(settings: StorageConfig, name: str, scheme: str) -> BucketLocation:
    """Where a newcomer ``name`` writes: ``storage.bucket`` and ``storage.prefix`` filled
    with its name.

    Raises:
        ValueError: the templates give every newcomer the same place (neither names
            ``{party}``), or the bucket name or prefix is not valid.
    """
    from zkadapt.storage.location import PARTY_FIELD, bucket_name_problem, template_fields

    if PARTY_FIELD not in template_fields(settings.bucket) | template_fields(settings.prefix):
        raise ValueError(
            "storage.bucket and storage.prefix name no {party}: a newcomer would write "
            "where every other newcomer writes"
        )
    bucket, prefix = settings.location(_Named(name))
    problem = bucket_name_problem(bucket)
    if problem:
        raise ValueError(problem)
    return BucketLocation(scheme, bucket, prefix)


@dataclass(frozen=True)
class _Named:
    """An :class:`~zkadapt.storage.settings.Owner` with a name and no bucket of its own."""

    name: str
    bucket: str | None = None


def _open_local(
    *,
    root: str | Path | None = None,
    settings: StorageConfig | None = None,
    out_dir: Path | None = None,
    **_unused: Any,
) -> ObjectStore:
    """The directory ``root``, or ``storage.path`` under the output directory."""
    from zkadapt.storage.local import LocalStore

    if root is None:
        if settings is None or out_dir is None:
            raise ValueError("the local store needs root, or settings and out_dir")
        root = out_dir / settings.path
    return LocalStore(Path(root))


def _open_s3(
    *,
    settings: StorageConfig,
    party: str | None,
    owners: Sequence[Owner],
    patience_s: float | None = None,
    **_unused: Any,
) -> ObjectStore:
    """An S3 store that has checked it can use ``party``'s bucket."""
    from zkadapt.storage.retry import RetryPolicy
    from zkadapt.storage.s3 import MIB, S3Settings, S3Store

    s3 = S3Settings(
        endpoint=settings.endpoint,
        region=settings.region,
        profile=settings.profile_for(party),
        read_profiles=_read_profiles(settings, party, owners),
        part_size=settings.part_size_mb * MIB,
        create_bucket=settings.create_bucket,
        retry=RetryPolicy(
            retries=settings.retries, backoff_s=settings.backoff_s, patience_s=patience_s
        ),
    )
    store = S3Store(settings=s3, party=party, locations=bucket_locations(settings, owners, "s3://"))
    store.check()
    return store


def _read_profiles(
    settings: StorageConfig, party: str | None, owners: Sequence[Owner]
) -> Mapping[str, str]:
    names = sorted(p.name for p in owners)
    return {
        p: profile for p in names if (profile := settings.read_profile_for(party, p)) is not None
    }


def _open_storj(
    *,
    settings: StorageConfig,
    party: str | None,
    owners: Sequence[Owner],
    patience_s: float | None = None,
    **_unused: Any,
) -> ObjectStore:
    """A native Storj store that has checked it can use ``party``'s bucket."""
    from zkadapt.storage.retry import RetryPolicy
    from zkadapt.storage.storj import StorjStore
    from zkadapt.storage.uplink_c import Uplink

    store = StorjStore(
        uplink=Uplink(),
        party=party,
        locations=bucket_locations(settings, owners, "sj://"),
        create_bucket=settings.create_bucket,
        retry=RetryPolicy(
            retries=settings.retries, backoff_s=settings.backoff_s, patience_s=patience_s
        ),
    )
    store.check()
    return store


def _register_builtins() -> None:
    from zkadapt.storage.settings import check_local, check_s3, check_storj

    register_store("local", _open_local, check=check_local)
    register_store("s3", _open_s3, check=check_s3, uri_scheme="s3://")
    register_store("storj", _open_storj, check=check_storj, uri_scheme="sj://")


_register_builtins()
