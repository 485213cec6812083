"""Benchmark threshold-key generation: a dealer against distributed generation, and write JSON.

Usage::

    python bench/keygen.py [--out bench/results/keygen.json] [--bits 1024 2048 3072]
                           [--repeats 3] [--jobs 1]

For each key size, in the same run, 2-of-3 keys (n = 3, threshold t = 2 shares, Shamir degree
1) are made

* by a dealer (``deal_threshold_key``: two fresh safe primes, then Shoup dealing), and
* without a dealer (:mod:`zkadapt.crypto.distributed_keygen`: Boneh–Franklin modulus with
  BGW, biprimality test, Nishide–Sakurai secret key), all three parties in one process
  (:func:`run_in_process`), so the time is the parties' total computation with no transport.

Each sample runs in its own process (``--jobs`` at once, each on one core); both methods are
randomized searches, so the spread between samples is large and the JSON keeps every sample
(seconds, and for distributed runs the candidate batches and message rounds). Machine info and
the UTC date are recorded with the results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from zkadapt.crypto.distributed_keygen import DkgParams, default_batch, run_in_process
from zkadapt.crypto.threshold import deal_threshold_key

N_PARTIES, THRESHOLD = 3, 2


def sample(method: str, bits: int) -> dict[str, Any]:
    """One key generation, timed in this (worker) process."""
    started = time.perf_counter()
    if method == "dealer":
        deal_threshold_key(bits, THRESHOLD, N_PARTIES)
        return {"seconds": time.perf_counter() - started}
    parties, rounds = run_in_process(DkgParams(bits, N_PARTIES, THRESHOLD, b"bench"))
    return {
        "seconds": time.perf_counter() - started,
        "batches": parties[0].batches,
        "message_rounds": rounds,
    }


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [s["seconds"] for s in samples]
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "samples": samples,
    }


def _document(
    args: argparse.Namespace, by_key: dict[str, dict[str, list[dict[str, Any]]]], wall_s: float
) -> dict[str, Any]:
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": _cpu_model(),
            "python": platform.python_version(),
            "jobs": args.jobs,
        },
        "n": N_PARTIES,
        "threshold": THRESHOLD,
        "wall_s": wall_s,
        "bits": {
            bits: {
                "batch": default_batch(int(bits)),
                **{method: _summary(samples) for method, samples in methods.items()},
            }
            for bits, methods in by_key.items()
        },
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results/keygen.json"))
    parser.add_argument("--bits", type=int, nargs="+", default=[1024, 2048, 3072])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    tasks = [
        (m, b) for b in args.bits for m in ("dealer", "distributed") for _ in range(args.repeats)
    ]
    started = time.perf_counter()
    by_key: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(sample, method, bits) for method, bits in tasks]
        for (method, bits), future in zip(tasks, futures, strict=True):
            by_key.setdefault(str(bits), {}).setdefault(method, []).append(future.result())
            doc = _document(args, by_key, time.perf_counter() - started)
            args.out.parent.mkdir(parents=True, exist_ok=True)  # partial results survive a kill
            args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for bits, entry in _document(args, by_key, 0.0)["bits"].items():
        print(
            f"{bits:>5} bits: dealer median {entry['dealer']['median_s']:.1f} s, "
            f"distributed median {entry['distributed']['median_s']:.1f} s"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
