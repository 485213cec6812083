"""A backend is one module plus one registration (issue 15): proven with test-only backends.

The storage and channel backends here exist only in this file. Registering them is all it
takes for a session file to name them and for a real session (MNIST, two parties, each in
its own thread through :func:`zkadapt.party.run_party`) to run on them. The config refuses
a name nobody registered, in one line that names the key and lists the valid names.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import MemoryChannel, MemoryStore
from zkadapt.channel import CHANNEL_BACKENDS, register_channel
from zkadapt.config import SessionConfig, config_from_dict
from zkadapt.crypto.identity import Keyring
from zkadapt.errors import ConfigError
from zkadapt.keyfiles import KEY_SUFFIX, ensure_keys
from zkadapt.party import run_party
from zkadapt.protocol.round import RoundOutcome
from zkadapt.registry import Registry
from zkadapt.storage import STORE_BACKENDS, register_store
from zkadapt.storage.base import ObjectStore


class CountingStore(MemoryStore):
    """An in-memory object store shared by every party of the test; counts the puts."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, key: str, data: Any) -> Any:
        self.puts += 1
        return super().put(key, data)


class SharedLog:
    """A channel backend: one in-memory ordered log, opened by every party and the runner."""

    def __init__(self) -> None:
        self.channel: MemoryChannel | None = None
        self.opened: list[str | None] = []

    def open(self, *, keyring: Keyring, party: str | None = None, **_unused: Any) -> MemoryChannel:
        self.opened.append(party)
        if self.channel is None:
            self.channel = MemoryChannel(keyring)
        return self.channel


@pytest.fixture
def backends() -> Iterator[tuple[CountingStore, SharedLog]]:
    store, log = CountingStore(), SharedLog()

    def open_memory_store(**_settings: Any) -> ObjectStore:
        return store

    register_store("test-memory", open_memory_store)
    register_channel("test-log", log.open)
    try:
        yield store, log
    finally:
        STORE_BACKENDS.unregister("test-memory")
        CHANNEL_BACKENDS.unregister("test-log")


def _session(tmp_path: Path) -> SessionConfig:
    config = config_from_dict(
        {
            "session": {"name": "plugins", "rounds": 2},
            "data": {"max_train": 400, "max_test": 100},
            "storage": {"backend": "test-memory"},
            "channel": {"backend": "test-log"},
            "parties": [{"name": "alice"}, {"name": "bob"}],
        }
    )
    return ensure_keys(config, tmp_path / "keys")


def test_a_session_runs_on_storage_and_channel_backends_defined_in_the_test(
    backends: tuple[CountingStore, SharedLog], tmp_path: Path
) -> None:
    store, log = backends
    config = _session(tmp_path)
    outcomes: dict[str, list[RoundOutcome]] = {}
    errors: list[BaseException] = []

    def party(name: str) -> None:
        try:
            outcomes[name] = run_party(
                config,
                name,
                out_dir=tmp_path / "out",
                key_path=tmp_path / "keys" / f"{name}{KEY_SUFFIX}",
                data_root=tmp_path,
            )
        except BaseException as exc:  # reported below, with the party's name
            errors.append(exc)

    threads = [threading.Thread(target=party, args=(n,)) for n in config.party_names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert sorted(outcomes) == ["alice", "bob"]
    finals = {name: rounds[-1].model_sha256 for name, rounds in outcomes.items()}
    assert [r.round for r in outcomes["alice"]] == [1, 2]
    assert len(set(finals.values())) == 1, finals
    assert store.puts >= 4  # each party's update in each round went through the test store
    assert all(key.startswith(f"zkadapt/{config.session_id}/") for key in store.objects)
    assert sorted(p for p in log.opened if p) == ["alice", "bob"]
    assert log.channel is not None and len(log.channel.entries) > 0


@pytest.mark.parametrize(
    ("section", "key", "registered"),
    [
        ("storage", "backend", "'local', 's3', 'storj'"),
        ("channel", "backend", "'hydra', 'local'"),
        ("privacy", "scheme", "'none', 'paillier'"),
        ("aggregation", "strategy", "'diloco', 'fedavg', 'ffa-lora'"),
    ],
)
def test_config_refuses_an_unregistered_name_in_one_line(
    section: str, key: str, registered: str
) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({section: {key: "carrier-pigeon"}, "parties": [{"name": "alice"}]})
    message = str(info.value)
    assert info.value.key == f"{section}.{key}"
    assert "'carrier-pigeon'" in message and registered in message and "\n" not in message


def test_config_accepts_a_name_once_it_is_registered(
    backends: tuple[CountingStore, SharedLog],
) -> None:
    config = config_from_dict(
        {
            "storage": {"backend": "test-memory"},
            "channel": {"backend": "test-log"},
            "parties": [{"name": "alice"}],
        }
    )
    assert (config.storage.backend, config.channel.backend) == ("test-memory", "test-log")


def test_a_registry_refuses_duplicate_and_malformed_names() -> None:
    registry: Registry[int] = Registry("widget")
    registry.register("one", 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("one", 2)
    with pytest.raises(ValueError, match="lowercase"):
        registry.register("Two", 2)
    with pytest.raises(ValueError, match="valid: one"):
        registry.get("three")
