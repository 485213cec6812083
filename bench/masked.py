"""Private aggregation per party per round: ``"masked"`` against ``"paillier"``, in one run.

Usage::

    python bench/masked.py [--sizes 460800 4194304] [--parties 3] [--bits 2048]
                           [--paillier-values 23040] [--out bench/results/masked.json]

For each update size m it times what ONE party does in one round of an n-party session
(issue 18), with real keys and the project's own code paths (``protocol/masked.py``,
``protocol/paillier_ops.py``):

* masked: quantize + mask (G(s)) + bit-pack y, encrypt the seed (~36 ciphertexts) with its
  proof bound to sha256(y); verify the n - 1 other parties' proofs and unpack their y; sum the
  seed ciphertexts and the masked vectors; its decryption shares of the seed sum with their
  proof; verify t - 1 other share proofs; combine t shares and unmask;
* paillier: pack + encrypt + proof; verify n - 1 proofs; homomorphic sum; decryption shares
  with proof; verify t - 1 share proofs; combine and unpack. Its cost is linear in the number
  of ciphertexts, so it is measured in this run at ``--paillier-values`` values and scaled
  per ciphertext to each m (the JSON says so); a full 4.2M-value Paillier round takes
  12-18 minutes here.

It records bytes uploaded per value, the peak RSS, and the ratios paillier/masked. Wall-clock
times on a shared 2-core machine: compare the ratios, not the seconds. Flower SecAgg+ is not
measured here (see bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import resource
import sys
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
from zkadapt.crypto.threshold import combine, deal_threshold_key, decryption_shares_many
from zkadapt.protocol import paillier_ops
from zkadapt.protocol.masked import SeedPacking

SESSION = "be" * 32


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
    uploaded = len(mine[1]) + len(mine[2]) + len(mine[0]) * public.paillier.ciphertext_bytes

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[460_800, 4_194_304])
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--paillier-values", type=int, default=23_040)
    parser.add_argument("--out", type=Path, default=Path("bench/results/masked.json"))
    args = parser.parse_args(argv)
    n, t = args.parties, 2
    print(f"dealing a {args.bits}-bit {t}-of-{n} key (safe primes)...", flush=True)
    (public, shares), keygen_s = _timed(lambda: deal_threshold_key(args.bits, t, n))
    print(f"  {keygen_s:.1f} s; paillier at {args.paillier_values} values...", flush=True)
    paillier = paillier_round(public, shares, args.paillier_values, n, t)
    per_ct = paillier["total_s"] / paillier["ciphertexts"]
    results = []
    for m in args.sizes:
        print(f"masked at {m} values...", flush=True)
        masked = masked_round(public, shares, m, n, t)
        spec = PackingSpec(16, 1.0, n, args.bits)
        paillier_scaled = per_ct * spec.num_plaintexts(m)
        results.append(
            {
                "values": m,
                "masked": masked,
                "paillier_scaled_s": paillier_scaled,
                "paillier_over_masked": paillier_scaled / masked["total_s"],
                "paillier_bytes_uploaded_per_value": paillier["bytes_uploaded_per_value"],
            }
        )
        print(
            f"  masked {masked['total_s']:.2f} s/party/round, paillier {paillier_scaled:.0f} s "
            f"(x{paillier_scaled / masked['total_s']:.0f}); "
            f"{masked['bytes_uploaded_per_value']:.2f} B/value uploaded",
            flush=True,
        )
    doc = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "load_avg": os.getloadavg(),
        },
        "key_bits": args.bits,
        "parties": n,
        "threshold": t,
        "keygen_s": keygen_s,
        "paillier_measured": {"values": args.paillier_values, **paillier},
        "paillier_note": "measured at paillier_measured.values; linear in ciphertexts, scaled",
        "sizes": results,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
