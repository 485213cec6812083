"""Flower 1.42 SecAgg+ and plain FedAvg on the same job: seconds per warm round, bytes, memory.

Usage (with a Python that has ``flwr[simulation]``; bench/masked.py runs it through
``--flower-python``)::

    python bench/flower_secagg.py --values 4194304 --mode secaggplus [--rounds 4]
                                  [--clients 3] [--threshold 2]

The job is the one bench/masked.py times for ZK-ADAPT: ``--clients`` clients each hold an
update of ``--values`` float32 values drawn from N(0, 0.01) (in arrays of at most 65,536
values, the size of one r = 16 LoRA factor of a 4096-wide layer), built once per client
process and cached, so no training is timed. A Flower simulation (Ray backend, one CPU per
client, as bench/startup.py runs it) does ``--rounds`` rounds of FedAvg; the fit step of
each round is either Flower's SecAgg+ (``SecAggPlusWorkflow`` on the ServerApp,
``secaggplus_mod`` on the ClientApp; Bell et al., CCS 2020, as Flower implements it:
https://flower.ai/docs/framework/ref-api/flwr.server.workflow.SecAggPlusWorkflow.html) with
``num_shares = clients`` and ``reconstruction_threshold = threshold``, or the default plain
fit (``--mode fedavg``). It prints one JSON line on stdout:

* ``round_s``: the wall time of every fit step (all stages of the protocol, the clients'
  replies and the aggregation), and ``warm_round_s``, their median without the first;
* ``bytes_up_per_value`` / ``bytes_down_per_value``: per client per warm round, from
  Flower's own record sizes (``count_bytes``, as its ``message_size_mod``) of every train
  message a client receives and replies, all stages together (and by stage), divided by
  ``--values``. After a SecAgg+ round the global model is float64, so from the second round
  on the model goes down at 8 bytes per value;
* ``max_abs_error``: the aggregate against the exact mean of the clients' updates;
* ``peak_rss_sum_mb``: the largest sum of the resident sizes of this process and all its
  descendants (Ray's raylet, GCS and workers), sampled every 0.25 s. Ray's shared object
  store may be counted in more than one process, so this is an upper bound.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 65_536
SIGMA = 0.01
CLIP = 1.0  # the clipping bound bench/masked.py quantizes with (PackingSpec(16, 1.0, ...))
MAX_ERROR = 1e-4  # SecAgg+ quantizes [-CLIP, CLIP] to 2**22 levels; a failed round leaves ~SIGMA
_CACHE_MODULE = "_zkadapt_flower_bench_cache"


def shapes(values: int) -> list[int]:
    """Array lengths of one update: full chunks of :data:`CHUNK` values, then the rest."""
    full, rest = divmod(values, CHUNK)
    return [CHUNK] * full + ([rest] if rest else [])


def update(partition: int, values: int) -> list[np.ndarray]:
    """Client ``partition``'s update, built once per process.

    Flower ships the ClientApp to a Ray actor with every message, so a module-level cache
    would be rebuilt each time; the cache lives in ``sys.modules`` of the actor process.
    """
    cache = sys.modules.setdefault(_CACHE_MODULE, types.ModuleType(_CACHE_MODULE))
    key = f"u{partition}_{values}"
    if not hasattr(cache, key):
        rng = np.random.default_rng(partition)
        flat = rng.normal(0.0, SIGMA, values).astype(np.float32)
        bounds = np.cumsum([0, *shapes(values)])
        setattr(cache, key, [flat[a:b] for a, b in itertools.pairwise(bounds)])
    arrays: list[np.ndarray] = getattr(cache, key)
    return arrays


class _PeakRss:
    """Samples the summed RSS of this process and its descendants in a thread."""

    def __init__(self, interval_s: float = 0.25) -> None:
        import psutil

        self._root = psutil.Process()
        self._gone = psutil.Error
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except self._gone:  # a process may end while it is read
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self._interval)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _value_bytes(value: Any) -> int:
    """Bytes of one config value as Flower's ``ConfigRecord.count_bytes`` counts them."""
    if isinstance(value, list):
        return sum(_value_bytes(item) for item in value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, bytes | str):
        return len(value)
    return 8  # ints and floats travel as 64-bit protobuf fields


def _content_bytes(content: Any) -> int:
    """Record bytes of a message's content (Flower's count, which fails on an empty list)."""
    from flwr.app import ArrayRecord

    total = 0
    for record in content.values():
        if isinstance(record, ArrayRecord):
            total += record.count_bytes()
        else:
            total += sum(len(key) + _value_bytes(value) for key, value in record.items())
    return total


def _size_mod(log_path: str) -> Callable[..., Any]:
    """A client mod that appends the record bytes of each train message in and out to a file."""
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

    def size_mod(msg: Any, ctxt: Any, call_next: Callable[..., Any]) -> Any:
        received = _content_bytes(msg.content)
        configs = msg.content.config_records.get(RECORD_KEY_CONFIGS)
        stage = str(configs.get(Key.STAGE, "")) if configs is not None else "fit"
        reply = call_next(msg, ctxt)
        sent = _content_bytes(reply.content)
        with open(log_path, "a", encoding="utf-8") as log:
            row = {"type": msg.metadata.message_type, "stage": stage, "in": received, "out": sent}
            log.write(json.dumps(row) + "\n")
        return reply

    return size_mod


def run_job(values: int, mode: str, rounds: int, clients: int, threshold: int) -> dict[str, Any]:
    """Run the simulation; returns the JSON fields described in the module docstring."""
    import flwr
    import ray
    from flwr.app import Context
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters
    from flwr.server import LegacyContext, ServerApp, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.server.workflow.default_workflows import default_fit_workflow
    from flwr.simulation import run_simulation

    durations: list[float] = []
    errors: list[float] = []
    expected = np.mean([np.concatenate(update(i, values)) for i in range(clients)], axis=0)

    class FixedClient(NumPyClient):  # type: ignore[misc]
        def __init__(self, partition: int) -> None:
            self.partition = partition

        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> Any:
            return update(self.partition, values), 1, {}

    def client_fn(context: Context) -> Any:
        return FixedClient(int(context.node_config["partition-id"])).to_client()

    def evaluate(server_round: int, parameters: list[np.ndarray], config: Any) -> Any:
        if server_round > 0:
            errors.append(float(np.max(np.abs(np.concatenate(parameters) - expected))))
        return 0.0, {}

    def timed(workflow: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
        def run(grid: Any, context: Any) -> None:
            started = time.perf_counter()
            workflow(grid, context)
            durations.append(time.perf_counter() - started)

        return run

    server = ServerApp()

    @server.main()
    def main(grid: Any, context: Context) -> None:
        zeros = [np.zeros(n, np.float32) for n in shapes(values)]
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=clients,
            min_available_clients=clients,
            initial_parameters=ndarrays_to_parameters(zeros),
            evaluate_fn=evaluate,
        )
        legacy = LegacyContext(context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
        fit = (
            SecAggPlusWorkflow(
                num_shares=clients,
                reconstruction_threshold=threshold,
                max_weight=1.0,
                clipping_range=CLIP,
            )
            if mode == "secaggplus"
            else default_fit_workflow
        )
        DefaultWorkflow(fit_workflow=timed(fit))(grid, legacy)

    with tempfile.TemporaryDirectory(prefix="zkadapt-flower-") as tmp:
        log_path = str(Path(tmp) / "sizes.jsonl")
        mods = [_size_mod(log_path), *([secaggplus_mod] if mode == "secaggplus" else [])]
        with _PeakRss() as peak:
            run_simulation(
                server_app=server,
                client_app=ClientApp(client_fn=client_fn, mods=mods),
                num_supernodes=clients,
                backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
            )
        sizes = [json.loads(line) for line in Path(log_path).read_text().splitlines()]
    if len(durations) != rounds or len(errors) != rounds or max(errors) > MAX_ERROR:
        raise RuntimeError(
            f"{len(durations)} of {rounds} rounds timed, aggregate errors {errors}: "
            "a round failed (Flower's log is on stderr)"
        )
    train = [s for s in sizes if s["type"] == "train"]
    per_round = len(train) // rounds
    warm = train[per_round:] if rounds > 1 else train  # rounds run one after another
    per_client_round = len(warm) // per_round * clients * values
    return {
        "flwr": flwr.__version__,
        "ray": ray.__version__,
        "mode": mode,
        "values": values,
        "clients": clients,
        "threshold": threshold if mode == "secaggplus" else None,
        "rounds": rounds,
        "array_values_max": CHUNK,
        "round_s": durations,
        "warm_round_s": statistics.median(durations[1:]) if rounds > 1 else durations[0],
        "train_messages_per_client_round": per_round / clients,
        "bytes_up_per_value": sum(s["out"] for s in warm) / per_client_round,
        "bytes_down_per_value": sum(s["in"] for s in warm) / per_client_round,
        "bytes_per_value_by_stage": {
            stage: {
                direction: sum(s[key] for s in warm if s["stage"] == stage) / per_client_round
                for direction, key in (("up", "out"), ("down", "in"))
            }
            for stage in sorted({s["stage"] for s in warm})
        },
        "max_abs_error": max(errors),
        "peak_rss_sum_mb": peak.peak_bytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, required=True)
    parser.add_argument("--mode", choices=["secaggplus", "fedavg"], required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--threshold", type=int, default=2)
    args = parser.parse_args()
    result = run_job(args.values, args.mode, args.rounds, args.clients, args.threshold)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
