"""Protocol-shaped in-memory fakes for unit tests (STYLE rule 12): no files, no sockets."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from zkadapt.channel.base import Entry, Receipt, SignedEnvelope
from zkadapt.crypto.identity import IdentityKey, Keyring
from zkadapt.errors import ChannelError, IntegrityError, StorageError
from zkadapt.learning.base import TrainResult
from zkadapt.storage.base import ObjectRef, sha256_hex


class MemoryChannel:
    """A totally ordered, signature-checking channel shared by threads."""

    def __init__(self, keyring: Keyring, *, outsiders: bool = False) -> None:
        """``outsiders``: also order envelopes of senders outside ``keyring``, unchecked
        (a session with ``[membership]``: the reader checks a newcomer's signatures)."""
        self.keyring = keyring
        self.outsiders = outsiders
        self.entries: list[Entry] = []
        self._cond = threading.Condition()

    def post(self, envelope: SignedEnvelope) -> Receipt:
        outsider = self.outsiders and envelope.sender not in self.keyring
        if not outsider and not self.keyring.verify(
            envelope.sender, envelope.payload, envelope.signature
        ):
            raise ChannelError(f"bad signature from {envelope.sender}")
        with self._cond:
            entry = Entry(len(self.entries) + 1, envelope, time.time())
            self.entries.append(entry)
            self._cond.notify_all()
            return Receipt(entry.seq)

    def history(self, since: int = 0) -> list[Entry]:
        with self._cond:
            return self.entries[since:]

    def wait(self, since: int, timeout: float) -> list[Entry]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.entries) > since, timeout)
            return self.entries[since:]

    def close(self) -> None:
        pass


class MemoryStore:
    """An object store in a dict; ``tamper`` lets a test corrupt an object in place."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: bytes | BinaryIO) -> ObjectRef:
        data = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else data.read()
        with self._lock:
            self.objects[key] = data
        return ObjectRef(f"mem://{key}", sha256_hex(data), len(data))

    def location_of(self, party: str) -> str:
        return "mem://"

    def get_file(self, ref: ObjectRef, dest: Path) -> None:
        Path(dest).write_bytes(self.get(ref))

    def get(self, ref: ObjectRef) -> bytes:
        key = ref.uri.removeprefix("mem://")
        with self._lock:
            if key not in self.objects:
                raise StorageError(ref.uri, "no such object")
            data = self.objects[key]
        if len(data) != ref.size or sha256_hex(data) != ref.sha256:
            raise IntegrityError(ref.uri, "digest mismatch")
        return data

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


@dataclass
class TinyLearner:
    """A deterministic numpy 'model': each party pulls the weights toward its own target."""

    target: np.ndarray
    n_samples: int = 100
    lr: float = 0.5

    @property
    def n_train(self) -> int:
        return self.n_samples

    def initial_state(self, seed: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        return {"w": rng.standard_normal(self.target.shape).astype(np.float32)}

    def train(self, state: dict[str, np.ndarray], *, seed: int) -> TrainResult:
        w = state["w"]
        new = (w + self.lr * (self.target - w)).astype(np.float32)
        loss = float(np.mean((self.target - w) ** 2))
        return TrainResult({"w": new}, self.n_samples, loss, 1)

    def evaluate(self, state: dict[str, np.ndarray], split: str) -> dict[str, float]:
        return {"loss": float(np.mean((self.target - state["w"]) ** 2))}


def make_keys(names: list[str]) -> tuple[dict[str, IdentityKey], Keyring]:
    """Deterministic identity keys for test parties."""
    keys = {n: IdentityKey.from_seed(hashlib.sha256(n.encode()).digest()) for n in names}
    return keys, Keyring({n: k.public for n, k in keys.items()})
