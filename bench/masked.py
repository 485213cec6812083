"""Private aggregation per party per round: masked, Paillier and Flower SecAgg+, in one run.

Usage::

    python bench/masked.py [--sizes 460800 4194304 40000000] [--parties 3] [--bits 2048]
                           [--paillier-values 23040] [--flower-python PYTHON]
                           [--flower-rounds 4] [--flower-timeout 1800]
                           [--out bench/results/masked.json]

For each update size m it times what ONE party does in one round of an n-party session
(issue 18), with real keys and the project's own code paths (``protocol/masked.py``,
``protocol/paillier_ops.py``):

* masked: quantize + mask (G(s)) + bit-pack y, encrypt the seed (~36 ciphertexts) with its
  proof bound to sha256(y); verify the n - 1 other parties' proofs and unpack their y; sum the
  seed ciphertexts and the masked vectors; its decryption shares of the seed sum with their
  proof; verify t - 1 other share proofs; combine t shares and unmask. Each size runs in its
  own process (same key, passed through a private temporary folder), so its peak RSS
  (``ru_maxrss``) is its own;
* paillier: pack + encrypt + proof; verify n - 1 proofs; homomorphic sum; decryption shares
  with proof; verify t - 1 share proofs; combine and unpack. Its cost is linear in the number
  of ciphertexts, so it is measured in this run at ``--paillier-values`` values and scaled
  per ciphertext to each m (the JSON says so); a full 4.2M-value Paillier round takes
  12-18 minutes here;
* Flower 1.42 on the same job (n clients, m float values each, t = 2), with
  ``--flower-python`` (an interpreter with ``flwr[simulation]``: ``pip install -e '.[bench]'``
  or another venv): bench/flower_secagg.py runs ``--flower-rounds`` rounds of its SecAgg+
  workflow and, in a second simulation, of plain FedAvg, and reports the median warm round
  (the first round is left out), bytes per value each way and the peak memory. Without
  Flower, or when a job fails (out of memory, ``--flower-timeout``), the JSON says why.

It records bytes uploaded (and downloaded) per value, the peak RSS and the ratios
paillier/masked, masked/Flower SecAgg+ and Flower SecAgg+/FedAvg. Wall-clock times on a
shared 2-core machine: compare the ratios, not the seconds (``comparison_note`` in the JSON
says what each figure covers). bench/plot_scale.py draws docs/img/scale.png from the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from zkadapt.crypto import ring_lwr
from zkadapt.crypto.packing import PackingSpec, fedavg_weights
from zkadapt.crypto.paillier import encrypt_many
from zkadapt.crypto.proofs import (
    PlaintextProof,
    ProofContext,
    ShareProof,
    prove_decryption_shares,
    prove_plaintext_knowledge,
    verify_decryption_shares,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.threshold import (
    KeyShare,
    ThresholdPublicKey,
    combine,
    deal_threshold_key,
    decryption_shares_many,
)
from zkadapt.protocol import paillier_ops
from zkadapt.protocol.masked import SeedPacking

SESSION = "be" * 32
THRESHOLD = 2
MASKED_TIMEOUT_S = 3600.0
FLOWER_SCRIPT = Path(__file__).resolve().with_name("flower_secagg.py")
COMPARISON_NOTE = (
    "masked.total_s is what ONE party computes in a round (its steps one after another, in "
    "one process); flower_*.warm_round_s is the wall time of a whole Flower round (server and "
    "all clients, Ray actors sharing the machine's cores, in-process transport). These are "
    "the figures issue 18 compares; on 2 cores n parties doing the masked work at once would "
    "take about n/2 times masked.total_s of wall time."
)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def masked_round(public: Any, shares: list[Any], m: int, n: int, t: int) -> dict[str, Any]:
    """One party's masked aggregation work for an m-value update, step by step (seconds)."""
    spec = PackingSpec(16, 1.0, n, public.paillier.n.bit_length())
    params = ring_lwr.MaskParams(k=16, n=n)
    seeds = SeedPacking(n, spec.key_bits)
    rng = np.random.default_rng(0)
    weights = fedavg_weights([1] * n)
    steps: dict[str, float] = {}

    def seal(party: int) -> tuple[Any, bytes, Any]:
        delta = rng.normal(0, 0.01, m)
        u = (spec.quantize(delta, weights[party]) + spec.offset).astype(np.uint64)
        seed = ring_lwr.random_seed()
        y = ring_lwr.pack_bits(ring_lwr.mask(SESSION, params, u, seed), params.p_bits)
        ctx = ProofContext(SESSION, 1, f"p{party}", hashlib.sha256(y).digest())
        plaintexts = seeds.pack(seed)
        cts, rand = encrypt_many(public.paillier, plaintexts, 1)
        proof = prove_plaintext_knowledge(public.paillier, ctx, cts, plaintexts, rand)
        return cts, y, proof.to_bytes()

    (mine, steps["seal_s"]) = _timed(lambda: seal(0))
    others = [seal(i) for i in range(1, n)]
    ct_bytes = public.paillier.ciphertext_bytes
    uploaded = len(mine[1]) + len(mine[2]) + len(mine[0]) * ct_bytes
    downloaded = sum(len(y) + len(proof) + len(cts) * ct_bytes for cts, y, proof in others)

    def verify() -> list[np.ndarray]:
        ys = []
        for i, (cts, y, proof) in enumerate(others, start=1):
            ctx = ProofContext(SESSION, 1, f"p{i}", hashlib.sha256(y).digest())
            verify_plaintext_knowledge(public.paillier, ctx, cts, PlaintextProof.from_bytes(proof))
            ys.append(ring_lwr.unpack_bits(y, params.p_bits, m))
        return ys

    ys, steps["verify_others_s"] = _timed(verify)
    ys.insert(0, ring_lwr.unpack_bits(mine[1], params.p_bits, m))
    all_cts = [mine[0]] + [o[0] for o in others]

    def add() -> tuple[list[Any], np.ndarray]:
        total = [public.paillier.sum(c[j] for c in all_cts) for j in range(len(all_cts[0]))]
        p = np.uint64(1 << params.p_bits)
        y_total = np.zeros(m, np.uint64)
        for y in ys:
            y_total = (y_total + y) % p
        return total, y_total

    (total, y_total), steps["sum_s"] = _timed(add)

    def share(index: int) -> tuple[list[int], bytes]:
        ctx = ProofContext(SESSION, 1, f"p{index}")
        values = decryption_shares_many(shares[index], total, 1)
        return values, prove_decryption_shares(shares[index], ctx, total, values).to_bytes()

    (my_share, steps["decryption_shares_s"]) = _timed(lambda: share(0))
    other_shares = [share(i) for i in range(1, t)]

    def check() -> None:
        for i, (values, proof) in enumerate(other_shares, start=1):
            ctx = ProofContext(SESSION, 1, f"p{i}")
            proof_obj = ShareProof.from_bytes(proof)
            verify_decryption_shares(public, i + 1, ctx, total, values, proof_obj)

    _, steps["verify_shares_s"] = _timed(check)
    downloaded += sum(len(values) * ct_bytes + len(proof) for values, proof in other_shares)
    chosen = {1: my_share[0], **{i + 1: s[0] for i, s in enumerate(other_shares, start=1)}}

    def finish() -> np.ndarray:
        plaintexts = [
            combine(public, {i: s[j] for i, s in chosen.items()}) for j in range(len(total))
        ]
        seed_sum = seeds.unpack_sum(plaintexts, n)
        return ring_lwr.unmask_total(SESSION, params, y_total, seed_sum)

    _, steps["combine_unmask_s"] = _timed(finish)
    return {
        "steps": steps,
        "total_s": sum(steps.values()),
        "seed_ciphertexts": len(mine[0]),
        "bytes_uploaded_per_value": uploaded / m,
        "bytes_downloaded_per_value": downloaded / m,
        "p_bits": params.p_bits,
    }


def paillier_round(public: Any, shares: list[Any], m: int, n: int, t: int) -> dict[str, Any]:
    """One party's Paillier aggregation work for an m-value update (seconds, measured)."""
    spec = PackingSpec(16, 1.0, n, public.paillier.n.bit_length())
    rng = np.random.default_rng(0)
    steps: dict[str, float] = {}

    def seal(party: int) -> bytes:
        ctx = ProofContext(SESSION, 1, f"p{party}")
        delta = rng.normal(0, 0.01, m).astype(np.float32)
        return paillier_ops.seal_update(
            public, spec, ctx, delta, weight=1.0, n_samples=1, workers=1
        )

    mine, steps["seal_s"] = _timed(lambda: seal(0))
    others = [seal(i) for i in range(1, n)]

    def verify() -> list[Any]:
        return [
            paillier_ops.open_update(
                public,
                spec,
                ProofContext(SESSION, 1, f"p{i}"),
                data,
                declared=1,
                claimed_samples=1,
                length=m,
            )
            for i, data in enumerate(others, start=1)
        ]

    opened, steps["verify_others_s"] = _timed(verify)
    own = paillier_ops.open_update(
        public, spec, ProofContext(SESSION, 1, "p0"), mine, declared=1, claimed_samples=1, length=m
    )
    accepted = {f"p{i}": cts for i, cts in enumerate([own, *opened])}
    total, steps["sum_s"] = _timed(lambda: paillier_ops.sum_updates(public, accepted))
    bundle, steps["decryption_shares_s"] = _timed(
        lambda: paillier_ops.share_bundle(public, shares[0], ProofContext(SESSION, 1, "p0"), total)
    )
    others_bundles = [
        paillier_ops.share_bundle(public, shares[i], ProofContext(SESSION, 1, f"p{i}"), total)
        for i in range(1, t)
    ]
    checked, steps["verify_shares_s"] = _timed(
        lambda: [
            paillier_ops.check_bundle(public, ProofContext(SESSION, 1, f"p{i}"), i + 1, total, b)
            for i, b in enumerate(others_bundles, start=1)
        ]
    )
    mine_checked = paillier_ops.check_bundle(
        public, ProofContext(SESSION, 1, "p0"), 1, total, bundle
    )
    chosen = {1: mine_checked, **{i + 1: c for i, c in enumerate(checked, start=1)}}
    _, steps["combine_unmask_s"] = _timed(
        lambda: paillier_ops.combine_mean(public, spec, chosen, n_accepted=n, weight=n, length=m)
    )
    return {
        "steps": steps,
        "total_s": sum(steps.values()),
        "ciphertexts": spec.num_plaintexts(m),
        "bytes_uploaded_per_value": len(mine) / m,
    }


def _last_json_line(cmd: list[str], timeout_s: float) -> tuple[dict[str, Any] | None, str]:
    """Run ``cmd``; its last stdout line as JSON, or None and why it did not come.

    The command runs in its own process group, which is killed on a timeout (Flower's Ray
    processes with it, unless they left the group).
    """
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"did not finish within {timeout_s:.0f} s"
    if proc.returncode != 0:
        killed = " (killed: out of memory?)" if proc.returncode in (-9, 137) else ""
        return None, f"exited {proc.returncode}{killed}: {stderr.strip()[-600:]}"
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]), ""
    except (IndexError, json.JSONDecodeError):
        return None, f"no JSON result on stdout: {stdout.strip()[-300:]}"


def masked_child(key_dir: Path, m: int, n: int, t: int) -> dict[str, Any]:
    """In a fresh process: :func:`masked_round` with the parent's key, plus this process's peak.

    One size per process, so the peak RSS of one size is not hidden by a larger one.
    """
    public = ThresholdPublicKey.from_bytes((key_dir / "public.json").read_bytes())
    shares = [
        KeyShare.from_bytes((key_dir / f"share{i}.json").read_bytes(), public)
        for i in range(1, n + 1)
    ]
    result = masked_round(public, shares, m, n, t)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def flower_missing(python: str) -> str | None:
    """Why ``python`` cannot run bench/flower_secagg.py, or None when it can."""
    probe = subprocess.run(
        [python, "-c", "import flwr, ray, psutil; print(flwr.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"flwr[simulation] not importable by {python}: {probe.stderr.strip()[-300:]}"
    return None


def flower_run(python: str, m: int, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """bench/flower_secagg.py for m values in ``mode``; its JSON, or ``{"failed": why}``."""
    cmd = [python, str(FLOWER_SCRIPT), "--values", str(m), "--mode", mode]
    cmd += ["--rounds", str(args.flower_rounds), "--clients", str(args.parties)]
    result, why = _last_json_line([*cmd, "--threshold", str(THRESHOLD)], args.flower_timeout)
    return result if result is not None else {"failed": why}


def _ratios(masked: dict[str, Any], paillier_s: float, secagg: Any, fedavg: Any) -> dict:
    """The ratios of one size; Flower's only where both of its jobs ran."""
    ratios: dict[str, float] = {}
    if "total_s" in masked:
        ratios["paillier_over_masked"] = paillier_s / masked["total_s"]
    if "warm_round_s" in secagg and "total_s" in masked:
        ratios["masked_over_flower_secaggplus"] = masked["total_s"] / secagg["warm_round_s"]
        ratios["flower_secaggplus_over_masked"] = secagg["warm_round_s"] / masked["total_s"]
    if "warm_round_s" in secagg and "warm_round_s" in fedavg:
        ratios["flower_secaggplus_over_fedavg"] = secagg["warm_round_s"] / fedavg["warm_round_s"]
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[460_800, 4_194_304, 40_000_000])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--paillier-values", type=int, default=23_040)
    parser.add_argument("--flower-python", default=sys.executable)
    parser.add_argument("--flower-rounds", type=int, default=4)
    parser.add_argument("--flower-timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/masked.json"))
    parser.add_argument("--child-values", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n, t = args.parties, THRESHOLD
    if args.child_values is not None:
        print(json.dumps(masked_child(args.key_dir, args.child_values, n, t)), flush=True)
        return 0
    flower_skip = flower_missing(args.flower_python)
    print(f"dealing a {args.bits}-bit {t}-of-{n} key (safe primes)...", flush=True)
    (public, shares), keygen_s = _timed(lambda: deal_threshold_key(args.bits, t, n))
    print(f"  {keygen_s:.1f} s; paillier at {args.paillier_values} values...", flush=True)
    paillier = paillier_round(public, shares, args.paillier_values, n, t)
    results = []
    with tempfile.TemporaryDirectory(prefix="zkadapt-bench-key-") as tmp:
        key_dir = Path(tmp)
        (key_dir / "public.json").write_bytes(public.to_bytes())
        for share in shares:
            (key_dir / f"share{share.index}.json").write_bytes(share.to_bytes())
        for m in args.sizes:
            results.append(_one_size(args, key_dir, m, paillier, flower_skip))
    peaks = [r["masked"].get("peak_rss_mb", 0.0) for r in results]
    doc = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_avg": os.getloadavg(),
            "memory_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        },
        "key_bits": args.bits,
        "parties": n,
        "threshold": t,
        "keygen_s": keygen_s,
        "paillier_measured": {"values": args.paillier_values, **paillier},
        "paillier_note": "measured at paillier_measured.values; linear in ciphertexts, scaled",
        "flower": {"skipped": flower_skip}
        if flower_skip
        else {"python": args.flower_python, "rounds": args.flower_rounds},
        "comparison_note": COMPARISON_NOTE,
        "sizes": results,
        "peak_rss_mb": max([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, *peaks]),
        "peak_rss_note": "largest of this process (keygen, paillier) and every masked size's "
        "process; each size's own peak is sizes[].masked.peak_rss_mb",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _one_size(
    args: argparse.Namespace,
    key_dir: Path,
    m: int,
    paillier: dict[str, Any],
    flower_skip: str | None,
) -> dict[str, Any]:
    """Masked (own process), Paillier (scaled), Flower SecAgg+ and FedAvg at m values."""
    n = args.parties
    per_ct = paillier["total_s"] / paillier["ciphertexts"]
    print(f"masked at {m} values (own process)...", flush=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-values", str(m)]
    cmd += ["--key-dir", str(key_dir), "--parties", str(n)]
    masked, why = _last_json_line(cmd, MASKED_TIMEOUT_S)
    masked = masked if masked is not None else {"failed": why}
    paillier_scaled = per_ct * PackingSpec(16, 1.0, n, args.bits).num_plaintexts(m)
    entry: dict[str, Any] = {"values": m, "masked": masked, "paillier_scaled_s": paillier_scaled}
    if "total_s" in masked:
        entry["paillier_over_masked"] = paillier_scaled / masked["total_s"]
        print(
            f"  masked {masked['total_s']:.2f} s/party/round, paillier {paillier_scaled:.0f} s "
            f"(x{paillier_scaled / masked['total_s']:.0f}); "
            f"{masked['bytes_uploaded_per_value']:.2f} B/value up; "
            f"peak {masked['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    else:
        print(f"  masked failed: {why}", flush=True)
    entry["paillier_bytes_uploaded_per_value"] = paillier["bytes_uploaded_per_value"]
    for mode in ("secaggplus", "fedavg"):
        if flower_skip:
            entry[f"flower_{mode}"] = {"skipped": flower_skip}
            continue
        print(f"flower {mode} at {m} values ({args.flower_rounds} rounds)...", flush=True)
        entry[f"flower_{mode}"] = job = flower_run(args.flower_python, m, mode, args)
        if "warm_round_s" in job:
            print(
                f"  {job['warm_round_s']:.2f} s per warm round, "
                f"{job['bytes_up_per_value']:.2f} B/value up, "
                f"{job['bytes_down_per_value']:.2f} down",
                flush=True,
            )
        else:
            print(f"  failed: {job['failed'][:300]}", flush=True)
    entry["ratios"] = _ratios(
        masked, paillier_scaled, entry["flower_secaggplus"], entry["flower_fedavg"]
    )
    return entry


if __name__ == "__main__":
    raise SystemExit(main())
