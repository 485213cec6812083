"""Open the object store a session file describes, as one party (or as a reader).

``zkadapt party``, ``zkadapt run`` (which checks every party's store before it starts
them) and ``zkadapt audit`` all open their store here, so the three cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

from zkadapt.config import SessionConfig
from zkadapt.storage import open_store
from zkadapt.storage.at_rest import EncryptedStore, key_from_env
from zkadapt.storage.base import ObjectStore
from zkadapt.storage.location import BucketLocation
from zkadapt.storage.retry import RetryPolicy

_SCHEMES = {"s3": "s3://", "storj": "sj://"}


def party_locations(config: SessionConfig) -> dict[str, BucketLocation]:
    """Every party's bucket and prefix, for a bucket backend (``s3`` or ``storj``)."""
    scheme = _SCHEMES[config.storage.backend]
    return {p.name: BucketLocation(scheme, *config.storage.location(p)) for p in config.parties}


def open_party_store(config: SessionConfig, party: str | None, out_dir: Path) -> ObjectStore:
    """The store ``party`` writes to and reads from; ``party=None`` opens it read-only.

    For ``s3`` and ``storj`` this sends one request to check that the party can use its own
    bucket, so wrong credentials or a missing bucket fail here, in one line naming both.

    Args:
        config: the validated session.
        party: the party whose credentials and bucket to use, or None for an auditor.
        out_dir: the output directory a relative ``storage.path`` resolves against.

    Raises:
        ConfigError: the backend's package or the encryption key is missing.
        StorageError: the party cannot reach or use its bucket.
    """
    storage = config.storage
    retry = RetryPolicy(retries=storage.retries, backoff_s=storage.backoff_s)
    store: ObjectStore
    if storage.backend == "local":
        store = open_store("local", root=out_dir / storage.path)
    elif storage.backend == "s3":
        from zkadapt.storage.s3 import MIB, S3Settings

        settings = S3Settings(
            endpoint=storage.endpoint,
            region=storage.region,
            profile=storage.profile_for(party),
            read_profiles={
                p: profile
                for p in config.party_names
                if (profile := storage.read_profile_for(party, p)) is not None
            },
            part_size=storage.part_size_mb * MIB,
            create_bucket=storage.create_bucket,
            retry=retry,
        )
        store = open_store("s3", settings=settings, party=party, locations=party_locations(config))
    else:
        store = open_store(
            "storj",
            party=party,
            locations=party_locations(config),
            create_bucket=storage.create_bucket,
            retry=retry,
        )
    if storage.encrypt:
        store = EncryptedStore(store, key_from_env(), party=party)
    return store
