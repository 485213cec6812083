"""A three-party test harness for the round protocol, with injected faults (STYLE rule 12).

Each party runs in its own thread over a shared channel and store: the in-memory fakes or
the real local SQLite ledger and directory store. Misbehaviour is injected through a
subclass driven by a :class:`Fault` enum (test code, not a product feature).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from tests.fakes import MemoryChannel, MemoryStore, TinyLearner, make_keys
from zkadapt.aggregation.strategy import make_strategy
from zkadapt.channel.base import Channel, Entry
from zkadapt.channel.local import LocalLedger
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.messages import Submitted
from zkadapt.protocol.round import PartyContext, RoundOutcome, RoundProtocol
from zkadapt.protocol.schemes import UpdateScheme
from zkadapt.storage.base import object_key
from zkadapt.storage.local import LocalStore

SESSION = "5e" * 32
NAMES = ["alice", "bob", "carol"]


class Fault(Enum):
    """Misbehaviour injected into one party (test code, not a product feature)."""

    SILENT = "never submits from round 2 on"
    CRASH = "dies while training round 2"
    CORRUPT = "posts a digest that does not match its object"
    REPLAY = "re-submits its round-1 object in round 2"
    COPY = "submits another party's object as its own"


class Crashed(Exception):
    pass


class FaultyProtocol(RoundProtocol):
    """A party that misbehaves in round 2 according to ``fault``."""

    def __init__(self, *args, fault: Fault, corrupt: Callable[[str], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fault = fault
        self.corrupt = corrupt

    def _train_and_submit(self, r, state, timer):
        if r < 2:
            return super()._train_and_submit(r, state, timer)
        if self.fault is Fault.SILENT:
            return None
        if self.fault is Fault.CRASH:
            raise Crashed(f"{self.ctx.party} killed in round {r}")
        if self.fault is Fault.CORRUPT:
            trained = super()._train_and_submit(r, state, timer)
            stem = object_key(SESSION, r, "update", self.ctx.party).removesuffix("bin")
            (key,) = self.store.list(stem)  # the content-addressed key it just wrote
            self.corrupt(key)
            return trained
        if self.fault is Fault.REPLAY:
            old = self.history.submissions(1)[self.ctx.party].message
            self.post(
                Submitted(SESSION, r, self.ctx.party, old.uri, old.sha256, old.size, old.n_samples)
            )
            return None
        if self.fault is Fault.COPY:
            while "alice" not in self.history.submissions(r):
                self.sync(wait=0.05)
            other = self.history.submissions(r)["alice"].message
            self.post(
                Submitted(
                    SESSION, r, self.ctx.party, other.uri, other.sha256, other.size, other.n_samples
                )
            )
            return None
        raise AssertionError(self.fault)


def targets() -> dict[str, np.ndarray]:
    return {n: np.full(8, float(i + 1), dtype=np.float32) for i, n in enumerate(NAMES)}


class Session:
    """Three parties sharing a channel and a store, each in its own thread.

    ``backend="memory"`` uses the in-memory fakes; ``backend="local"`` the real SQLite
    ledger (one connection per party, as separate processes would have) and directory store;
    ``backend="hydra"`` one hydra channel client per party against the hydra-node double
    (tests/hydra_double) and the directory store; call :meth:`close` afterwards.
    """

    def __init__(
        self,
        tmp_path: Path,
        *,
        rounds: int = 3,
        quorum: int = 2,
        timeout: float = 1.0,
        strategy: str = "fedavg",
        backend: str = "memory",
        scheme: Callable[[str], UpdateScheme] | None = None,
        n_samples: dict[str, int] | None = None,
    ) -> None:
        self.scheme = scheme
        self.n_samples = n_samples or {}
        self.keys, self.keyring = make_keys(NAMES)
        self.backend = backend
        self.memory_channel = MemoryChannel(self.keyring)
        self.store = MemoryStore() if backend == "memory" else LocalStore(tmp_path / "store")
        self.double: Any = None
        self._opened: list[Any] = []
        # the parties' threads open their channels concurrently: one double for them all
        # (two threads once each started a double, and a party ran alone on its own head)
        self._double_lock = threading.Lock()
        self.tmp = tmp_path
        self.rounds, self.quorum, self.timeout, self.strategy = rounds, quorum, timeout, strategy

    def protocol(self, name: str, fault: Fault | None = None) -> RoundProtocol:
        ctx = PartyContext(
            SESSION, name, tuple(NAMES), self.rounds, self.quorum, self.timeout, 0.01
        )
        kwargs = dict(
            identity=self.keys[name],
            channel=self.channel(name),
            store=self.store,
            learner=TinyLearner(targets()[name], self.n_samples.get(name, 100)),
            strategy=make_strategy(self.strategy),
            checkpoints=RoundCheckpoints(self.tmp / name, session_id=SESSION, model_type="tiny"),
            scheme=self.scheme(name) if self.scheme else None,
        )
        if fault is None:
            return RoundProtocol(ctx, **kwargs)
        return FaultyProtocol(ctx, fault=fault, corrupt=self.corrupt, **kwargs)

    def channel(self, party: str | None = None) -> Channel:
        """The channel as ``party`` sees it (read-only for hydra when ``party`` is None)."""
        if self.backend == "memory":
            return self.memory_channel
        if self.backend == "hydra":
            return self._hydra_channel(party)
        return LocalLedger(self.tmp / "ledger.sqlite", self.keyring)

    def _hydra_channel(self, party: str | None) -> Channel:
        """A client of ``party``'s node on the hydra-node double (started on first use)."""
        from tests.hydra_double import HydraDouble
        from tests.hydra_double.fixtures import funds
        from zkadapt.channel.hydra import HydraChannel

        with self._double_lock:
            if self.double is None:
                self.double = HydraDouble(NAMES, initial_utxo=funds(self.keys)).start()
                control = HydraChannel(self.keyring, api=self.double.api(NAMES[0]))
                self._opened.append(control)
                control.init_head(timeout=10)
        api = self.double.api(party or NAMES[0])
        identity = self.keys[party] if party else None
        channel = HydraChannel(self.keyring, api=api, identity=identity, confirm_timeout_s=30)
        channel._await(lambda v: v.status == "Open", 10, "HeadIsOpen")
        self._opened.append(channel)
        return channel

    def close(self) -> None:
        """Close the hydra clients and stop the double (no-op for other backends)."""
        for channel in self._opened:
            channel.close()
        self._opened.clear()
        if self.double is not None:
            self.double.stop()
            self.double = None

    def entries(self) -> list[Entry]:
        return self.channel().history(0)

    def corrupt(self, key: str) -> None:
        """Overwrite the last bytes of a stored object behind the store's back."""
        if isinstance(self.store, MemoryStore):
            self.store.objects[key] = self.store.objects[key][:-4] + b"\0\0\0\0"
        else:
            path = self.tmp / "store" / key
            path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")

    def run(
        self, faults: dict[str, Fault] | None = None, *, only: list[str] | None = None
    ) -> dict[str, list[RoundOutcome] | Exception]:
        """Run the parties (all, or ``only`` these) to the end; exceptions are collected."""
        faults = faults or {}
        results: dict[str, list[RoundOutcome] | Exception] = {}

        def go(name: str) -> None:
            try:
                results[name] = self.protocol(name, faults.get(name)).run()
            except Exception as exc:  # collected and asserted on by the tests
                results[name] = exc

        threads = [threading.Thread(target=go, args=(n,)) for n in (only or NAMES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return results


def digests(outcomes: list[RoundOutcome]) -> list[str]:
    """The G(r) digests a party computed, round by round."""
    return [o.model_sha256 for o in outcomes]
