"""Benchmark the cryptographic core (zkadapt.crypto) and write the numbers as JSON.

Usage::

    python bench/crypto.py [--out bench/results/crypto.json] [--bits 2048 [3072 ...]] [--quick]

For each key size: safe-prime key generation, textbook vs DJN encryption per plaintext (and
the ratio), encryption throughput on one core and on all cores, homomorphic addition, a
decryption share, combination, packing geometry (k = 16, n = 3 and 10) with ciphertext bytes
per update value, batched proof sizes and times, and the extrapolated per-party encryption time
of a 4.2M-parameter LoRA update (Llama-2-7B, r = 8 on q and v). The default run (2048 bits)
takes a few minutes on two cores; key generation time varies a lot from run to run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np

from zkadapt.crypto.packing import DEFAULT_QUANT_BITS, PackingSpec
from zkadapt.crypto.paillier import encrypt_many, generate_safe_primes
from zkadapt.crypto.proofs import (
    ProofContext,
    decrypt_and_prove,
    proof_size_bytes,
    prove_plaintext_knowledge,
    verify_decryption_shares,
    verify_plaintext_knowledge,
)
from zkadapt.crypto.threshold import combine, deal_threshold_key

DEFAULT_OUT = Path(__file__).parent / "results" / "crypto.json"
LORA_PARAMS = 4_194_304  # Llama-2-7B, LoRA r=8 on q_proj and v_proj: 32 layers · 2 · 2·4096·8


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _bench_encryption(pub: Any, reps: int, throughput_count: int) -> dict[str, Any]:
    start = time.perf_counter()
    _ = pub.tables  # the fixed-base tables, built once per key
    table_s = time.perf_counter() - start
    m = int(pub.n) // 3
    textbook = _timed(lambda: pub.raw_encrypt(m, textbook=True), reps)
    djn = _timed(lambda: pub.raw_encrypt(m), reps * 10)
    plaintexts = [int(pub.n) // (i + 2) for i in range(throughput_count)]
    cores = os.cpu_count() or 1
    one = _timed(lambda: encrypt_many(pub, plaintexts, workers=1), 1)
    many = _timed(lambda: encrypt_many(pub, plaintexts, workers=cores), 1)
    a, b = pub.encrypt(1), pub.encrypt(2)
    add = _timed(lambda: pub.add(a, b), 2000)
    return {
        "djn_table_build_s": table_s,
        "textbook_encrypt_s": textbook,
        "djn_encrypt_s": djn,
        "djn_speedup_over_textbook": textbook / djn,
        "encrypt_throughput": {
            "plaintexts": throughput_count,
            "cores": cores,
            "one_core_ciphertexts_per_s": throughput_count / one,
            "all_cores_ciphertexts_per_s": throughput_count / many,
        },
        "homomorphic_add_s": add,
    }


def _bench_threshold(public: Any, shares: list[Any], reps: int) -> dict[str, Any]:
    pub = public.paillier
    c = pub.encrypt(123456789)
    share_s = _timed(lambda: shares[0].decryption_share(c), reps)
    partial = {s.index: s.decryption_share(c) for s in shares[: public.t]}
    combine_s = _timed(lambda: combine(public, partial), reps)
    if combine(public, partial) != 123456789:
        raise RuntimeError("threshold decryption gave a wrong result")
    return {"t": public.t, "n": public.n, "decryption_share_s": share_s, "combine_s": combine_s}


def _bench_packing(bits: int, throughput: dict[str, Any]) -> dict[str, Any]:
    """Packing geometry for k = 16, n = 3 and 10, and the LoRA update extrapolated from the
    measured encryption throughput."""
    one = throughput["one_core_ciphertexts_per_s"]
    many = throughput["all_cores_ciphertexts_per_s"]
    out: dict[str, Any] = {}
    for n in (3, 10):
        spec = PackingSpec(DEFAULT_QUANT_BITS, 1.0, n, bits)
        ciphertexts = spec.num_plaintexts(LORA_PARAMS)
        x = np.random.default_rng(0).normal(scale=0.3, size=LORA_PARAMS)
        start = time.perf_counter()
        spec.pack(x, 1.0)
        pack_s = time.perf_counter() - start
        out[f"k{DEFAULT_QUANT_BITS}_n{n}"] = {
            "slot_bits": spec.slot_bits,
            "slots_per_plaintext": spec.slots_per_plaintext,
            "ciphertext_bytes_per_value": spec.ciphertext_bytes_per_value(),
            "quantization_error_bound": spec.quantization_error_bound,
            "lora_4_2m": {
                "ciphertexts": ciphertexts,
                "megabytes": ciphertexts * 2 * ((bits + 7) // 8) / 1e6,
                "pack_s": pack_s,
                "encrypt_one_core_s_estimate": ciphertexts / one,
                "encrypt_all_cores_s_estimate": ciphertexts / many,
                "values_per_s_one_core": spec.slots_per_plaintext * one,
                "values_per_s_all_cores": spec.slots_per_plaintext * many,
            },
        }
    return out


def _raw_size(*values: int) -> int:
    """Bytes of the proof's integers as minimal big-endian strings (the JSON form is hex)."""
    return sum((v.bit_length() + 7) // 8 for v in values)


def _bench_proofs(public: Any, shares: list[Any], batch: int) -> dict[str, Any]:
    pub = public.paillier
    ctx = ProofContext(session="bench", round=1, party="p1")
    plaintexts = [int(pub.n) // (i + 3) for i in range(batch)]
    cts, rs = encrypt_many(pub, plaintexts, workers=1)
    start = time.perf_counter()
    pok = prove_plaintext_knowledge(pub, ctx, cts, plaintexts, rs)
    pok_prove = time.perf_counter() - start
    pok_verify = _timed(lambda: verify_plaintext_knowledge(pub, ctx, cts, pok), 1)
    start = time.perf_counter()
    values, share_proof = decrypt_and_prove(shares[0], ctx, cts)
    share_total = time.perf_counter() - start
    share_verify = _timed(
        lambda: verify_decryption_shares(public, 1, ctx, cts, values, share_proof), 1
    )
    return {
        "batch_ciphertexts": batch,
        "plaintext_proof_bytes": proof_size_bytes(pok),
        "plaintext_proof_raw_bytes": _raw_size(pok.a, pok.z1, pok.z2),
        "plaintext_prove_s": pok_prove,
        "plaintext_verify_s": pok_verify,
        "share_proof_bytes": proof_size_bytes(share_proof),
        "share_proof_raw_bytes": _raw_size(share_proof.a, share_proof.b, share_proof.z),
        "shares_and_proof_s": share_total,
        "share_verify_s": share_verify,
    }


def bench_key_size(bits: int, quick: bool) -> dict[str, Any]:
    """Run every measurement for one modulus size."""
    reps = 5 if quick else 20
    start = time.perf_counter()
    primes = generate_safe_primes(bits)
    keygen_s = time.perf_counter() - start
    public, shares = deal_threshold_key(bits, 2, 3, primes=primes)
    result: dict[str, Any] = {"bits": bits, "safe_prime_keygen_s": keygen_s}
    result.update(_bench_encryption(public.paillier, reps, 64 if quick else 400))
    result["threshold"] = _bench_threshold(public, shares, reps)
    result["packing"] = _bench_packing(bits, result["encrypt_throughput"])
    result["proofs"] = _bench_proofs(public, shares, 16 if quick else 64)
    return result


def _summary(r: dict[str, Any]) -> str:
    pack3 = r["packing"][f"k{DEFAULT_QUANT_BITS}_n3"]
    tp = r["encrypt_throughput"]
    return "\n".join(
        [
            f"== {r['bits']}-bit N ==",
            f"safe-prime keygen      {r['safe_prime_keygen_s']:.1f} s",
            f"encrypt textbook / DJN {r['textbook_encrypt_s'] * 1e3:.2f} ms / "
            f"{r['djn_encrypt_s'] * 1e3:.3f} ms  (x{r['djn_speedup_over_textbook']:.1f})",
            f"throughput 1 / {tp['cores']} cores {tp['one_core_ciphertexts_per_s']:.0f} / "
            f"{tp['all_cores_ciphertexts_per_s']:.0f} ciphertexts/s",
            f"homomorphic add        {r['homomorphic_add_s'] * 1e6:.1f} µs",
            f"decryption share       {r['threshold']['decryption_share_s'] * 1e3:.2f} ms",
            f"combine (t=2)          {r['threshold']['combine_s'] * 1e3:.2f} ms",
            f"slots/plaintext n=3    {pack3['slots_per_plaintext']}  "
            f"({pack3['ciphertext_bytes_per_value']:.2f} B/value)",
            f"LoRA 4.2M, all cores   {pack3['lora_4_2m']['encrypt_all_cores_s_estimate']:.1f} s "
            f"(estimate, {pack3['lora_4_2m']['ciphertexts']} ciphertexts)",
            f"PoK proof (batch {r['proofs']['batch_ciphertexts']})  "
            f"{r['proofs']['plaintext_proof_bytes']} B JSON / "
            f"{r['proofs']['plaintext_proof_raw_bytes']} B raw, prove "
            f"{r['proofs']['plaintext_prove_s'] * 1e3:.0f} ms, verify "
            f"{r['proofs']['plaintext_verify_s'] * 1e3:.0f} ms",
            f"share proof            {r['proofs']['share_proof_bytes']} B JSON / "
            f"{r['proofs']['share_proof_raw_bytes']} B raw, verify "
            f"{r['proofs']['share_verify_s'] * 1e3:.0f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, write JSON and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--bits", type=int, nargs="+", default=[2048], help="modulus sizes")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    results = [bench_key_size(bits, args.quick) for bits in args.bits]
    doc = {
        "benchmark": "zkadapt/crypto",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "gmpy2": gmpy2.version(),
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    for r in results:
        print(_summary(r))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
