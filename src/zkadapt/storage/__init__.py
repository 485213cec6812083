"""Object storage backends, chosen by name (DESIGN.md sections 1 and 5).

``open_store("local", root=...)`` returns an :class:`ObjectStore`. Backends are factories in
one registry, imported lazily so that a backend's dependencies (boto3 for ``s3``, uplink for
``storj``) are needed only when it is used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zkadapt.storage.base import ObjectRef, ObjectStore, object_key, sha256_hex

__all__ = [
    "ObjectRef",
    "ObjectStore",
    "object_key",
    "open_store",
    "register_store",
    "sha256_hex",
    "store_backends",
]

StoreFactory = Callable[..., ObjectStore]


def _open_local(*, root: str | Path) -> ObjectStore:
    from zkadapt.storage.local import LocalStore

    return LocalStore(Path(root))


def _open_s3(**kwargs: Any) -> ObjectStore:
    """``settings``, ``party``, ``locations`` (see :class:`~zkadapt.storage.s3.S3Store`)."""
    from zkadapt.storage.s3 import S3Store

    store = S3Store(**kwargs)
    store.check()
    return store


def _open_storj(**kwargs: Any) -> ObjectStore:
    """``party``, ``locations``, ``create_bucket``, ``retry`` (see StorjStore)."""
    from zkadapt.storage.storj import StorjStore
    from zkadapt.storage.uplink_c import Uplink

    store = StorjStore(uplink=Uplink(), **kwargs)
    store.check()
    return store


_BACKENDS: dict[str, StoreFactory] = {"local": _open_local, "s3": _open_s3, "storj": _open_storj}


def register_store(name: str, factory: StoreFactory) -> None:
    """Add a backend under a unique lowercase ``name`` (STYLE.md rule 1).

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_]`` or is already registered.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"storage backend name must be lowercase [a-z0-9_], got {name!r}")
    if name in _BACKENDS:
        raise ValueError(f"storage backend {name!r} is already registered")
    _BACKENDS[name] = factory


def store_backends() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_BACKENDS)


def open_store(backend: str, **kwargs: Any) -> ObjectStore:
    """Open the object store ``backend`` with its keyword arguments.

    Args:
        backend: a registered name (``"local"`` takes ``root``; ``"s3"`` and ``"storj"``
            take the party and every party's location, and check the party's own bucket).
        **kwargs: the backend's settings, already validated by the config layer.

    Returns:
        The store.

    Raises:
        ValueError: ``backend`` is unknown (the message lists the valid names).
        StorageError: the backend cannot be opened.
    """
    factory = _BACKENDS.get(backend)
    if factory is None:
        raise ValueError(
            f"unknown storage backend {backend!r}; valid: {', '.join(store_backends())}"
        )
    return factory(**kwargs)
