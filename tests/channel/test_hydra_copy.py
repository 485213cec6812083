"""Reading a Hydra channel after fanout: persisted copies, their checks, and the fallback.

One short session runs once over the hydra-node double (tests/hydra_double): each party and
an observer (as ``zkadapt run``) record a copy while three parties post, one party's client
is restarted half-way, and the head is closed and fanned out. Each test then reads a copy of
the output directory the way a reader (``zkadapt audit``) would: through the node while it
knows the head, from the copy when it does not, and never from a copy that was edited.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import make_keys
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope, funds
from tests.hydra_double.head import Out
from zkadapt.channel import CopyPlaces, open_channel
from zkadapt.channel.base import Entry
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.archive import ArchivedChannel
from zkadapt.channel.hydra.record import COPY_FILE, load_copy
from zkadapt.config import HydraChannelConfig
from zkadapt.errors import ChannelError

NAMES = ["alice", "bob", "carol"]
KEYS, KEYRING = make_keys(NAMES)
#: A port nothing listens on: a node that is gone.
GONE = "127.0.0.1:9"


@dataclass
class Finished:
    """A fanned-out session's output directory and what the parties read while it ran."""

    double: HydraDouble
    out: Path
    head_id: str
    entries: list[tuple[int, str, bytes]]
    fanout: dict[str, Any]


def _party_copy(out: Path, name: str) -> Path:
    return out / "parties" / name / COPY_FILE


def _client(double: HydraDouble, name: str, record: Path, identity: bool = True) -> HydraChannel:
    return HydraChannel(
        KEYRING,
        api=double.api(name),
        identity=KEYS[name] if identity else None,
        confirm_timeout_s=20,
        connect_timeout_s=20,
        record=record,
    )


def _seen(entries: list[Entry]) -> list[tuple[int, str, bytes]]:
    return [(e.seq, e.envelope.sender, e.envelope.payload) for e in entries]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Finished]:
    out = tmp_path_factory.mktemp("finished")
    double = HydraDouble(NAMES, initial_utxo=funds(KEYS)).start()
    observer = _client(double, "alice", out / COPY_FILE, identity=False)
    clients = {n: _client(double, n, _party_copy(out, n)) for n in NAMES}
    try:
        observer.init_head(timeout=10)
        for client in clients.values():
            client._await(lambda v: v.status == "Open", 10, "HeadIsOpen")
        for turn in range(3):
            if turn == 2:  # a restarted party continues its copy without repeating it
                clients["bob"].close()
                clients["bob"] = _client(double, "bob", _party_copy(out, "bob"))
            for name in NAMES:
                clients[name].post(envelope(KEYS[name], name, f"{name} says {turn}".encode()))
        head_id = observer.head_id or ""
        observer.close_head(timeout=10)
        fanout = observer.fanout(timeout=10)
        for client in [observer, *clients.values()]:
            client._await(lambda v: v.finalized_at > 0, 10, "HeadIsFinalized")
        entries = _seen(observer.history())
    finally:
        for client in [observer, *clients.values()]:
            client.close()
    yield Finished(double, out, head_id, entries, fanout)
    double.stop()


@pytest.fixture
def out(finished: Finished, tmp_path: Path) -> Path:
    """A private copy of the finished session's output directory (tests edit it)."""
    return Path(shutil.copytree(finished.out, tmp_path / "out"))


def _places(out: Path) -> CopyPlaces:
    return CopyPlaces(None, (out / COPY_FILE, *sorted(out.glob(f"parties/*/{COPY_FILE}"))))


def reader(out: Path, api: str, **settings: Any) -> Any:
    """The channel a reader without a key opens on ``out`` (as ``zkadapt audit`` does)."""
    config = HydraChannelConfig(api=api, connect_timeout_s=0.5, **settings)
    return open_channel("hydra", keyring=KEYRING, settings=config, copies=_places(out))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _only(out: Path, which: Path) -> Path:
    """Keep the copy ``which`` alone (the check of one copy, not the comparison of several)."""
    for path in _places(out).read:
        if path != which and path.exists():
            path.unlink()
    return which


# ---- what is recorded ---------------------------------------------------------------------


def test_each_party_and_the_observer_keep_the_whole_head_once(finished: Finished) -> None:
    paths = [finished.out / COPY_FILE, *(_party_copy(finished.out, n) for n in NAMES)]
    copies = [load_copy(p) for p in paths]
    for copy in copies:
        assert copy.head_id == finished.head_id
        assert [s.number for s in copy.snapshots] == list(range(1, 10))  # one post each
        assert copy.closed_snapshot == 9
        assert copy.finalized_utxo == finished.fanout
    ids = [[tx.tx_id for s in c.snapshots for tx in s.confirmed] for c in copies]
    assert ids[0] == ids[1] == ids[2] == ids[3]  # bob's restart repeated nothing
    assert len(finished.entries) == 9


def test_the_node_no_longer_names_the_head_after_fanout(finished: Finished) -> None:
    """Why the copies exist: a reader that follows the node's head finds none after fanout."""
    with HydraChannel(KEYRING, api=finished.double.api("bob"), connect_timeout_s=10) as plain:
        assert plain.head_id is None and plain.history() == []
        assert "following no head" in plain.provenance


# ---- reading a finished session -----------------------------------------------------------


def test_a_reader_follows_the_head_the_copy_names_while_the_node_knows_it(
    finished: Finished, out: Path
) -> None:
    channel = reader(out, finished.double.api("carol"))
    try:
        assert isinstance(channel, HydraChannel)  # the node is the better source
        assert channel.head_id == finished.head_id
        assert _seen(channel.history()) == finished.entries
    finally:
        channel.close()


def test_with_the_node_gone_the_copy_is_read_and_passes_its_checks(
    finished: Finished, out: Path
) -> None:
    channel = reader(out, GONE)
    assert isinstance(channel, ArchivedChannel)
    assert channel.problems == []
    assert _seen(channel.history()) == finished.entries
    assert [e.seq for e in channel.wait(7, 0.1)] == [8, 9]
    assert "the node is not reachable" in channel.provenance
    assert "fanout UTxO from the copy itself (not independent)" in channel.provenance
    with pytest.raises(ChannelError, match="read-only"):
        channel.post(envelope(KEYS["alice"], "alice", b"late"))


def test_a_node_that_forgot_the_snapshots_still_vouches_for_the_fanout(
    finished: Finished, out: Path
) -> None:
    double = HydraDouble(NAMES).start()  # a node with fresh state, told only the fanout
    try:
        final = {"tag": "HeadIsFinalized", "headId": finished.head_id}
        double.run(lambda: double._emit([Out({**final, "finalizedUTxO": finished.fanout})]))
        channel = reader(out, double.api("alice"))
        assert isinstance(channel, ArchivedChannel)
        assert channel.problems == []
        assert "from the node" in channel.provenance
        assert _seen(channel.history()) == finished.entries
    finally:
        double.stop()


def test_with_neither_head_nor_copy_a_reader_gets_nothing_or_an_error(
    finished: Finished, tmp_path: Path
) -> None:
    channel = reader(tmp_path, finished.double.api("alice"))
    try:
        assert channel.history() == [] and "no persisted copy" in channel.provenance
    finally:
        channel.close()
    with pytest.raises(ChannelError, match=r"cannot reach the hydra-node.*and no persisted copy"):
        reader(tmp_path, GONE)


def test_an_unfinished_last_line_is_ignored(finished: Finished, out: Path) -> None:
    copy = _only(out, out / COPY_FILE)
    with copy.open("a") as handle:
        handle.write('{"snapshot": 10, "confi')  # the writer died mid-line
    channel = reader(out, GONE)
    assert channel.problems == [] and len(channel.history()) == 9


# ---- a copy that was edited ---------------------------------------------------------------


def _confirmed(lines: list[dict[str, Any]], sender: str) -> list[int]:
    """Indexes of the snapshot lines whose transaction is ``sender``'s message."""
    tag = f"{sender} says".encode().hex()
    return [
        i
        for i, line in enumerate(lines)
        if "confirmed" in line and any(tag in tx["cborHex"] for tx in line["confirmed"])
    ]


def _change_entry(lines: list[dict[str, Any]]) -> None:
    i = _confirmed(lines, "bob")[1]
    tx = lines[i]["confirmed"][0]
    tx["cborHex"] = tx["cborHex"].replace(b"bob says 1".hex(), b"bob says 7".hex())


def _drop_entry(lines: list[dict[str, Any]]) -> None:
    lines[_confirmed(lines, "bob")[1]]["confirmed"] = []


def _swap_snapshots(lines: list[dict[str, Any]]) -> None:
    lines[3], lines[4] = lines[4], lines[3]


def _swap_own_entries(lines: list[dict[str, Any]]) -> None:
    first, second = _confirmed(lines, "carol")[:2]
    a, b = lines[first], lines[second]
    a["confirmed"], b["confirmed"] = b["confirmed"], a["confirmed"]


def _change_fanout(lines: list[dict[str, Any]]) -> None:
    utxo = next(line["utxo"] for line in lines if line.get("event") == "HeadIsFinalized")
    first = sorted(utxo)[0]
    utxo[first]["value"]["lovelace"] += 1


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_change_entry, "its metadata does not hash to the body's auxiliary-data hash"),
        (_drop_entry, "a transaction that spent it is missing from the copy"),
        (_swap_snapshots, "snapshot 4 where snapshot 3 belongs"),
        (_swap_own_entries, "which comes later in the copy: entries are out of order"),
        (_change_fanout, "differs from the output the head fanned out"),
    ],
    ids=["changed", "dropped", "snapshots-reordered", "entries-reordered", "fanout-changed"],
)
def test_an_edited_copy_fails_with_a_named_reason(
    finished: Finished, out: Path, edit: Any, reason: str
) -> None:
    copy = _only(out, out / COPY_FILE)
    lines = _lines(copy)
    edit(lines)
    _write(copy, lines)
    channel = reader(out, GONE)
    assert isinstance(channel, ArchivedChannel)
    assert any(reason in p for p in channel.problems), channel.problems
    with pytest.raises(ChannelError, match="fails its check"):
        channel.history()


def test_copies_that_disagree_fail_even_if_each_looks_whole(finished: Finished, out: Path) -> None:
    bob = _party_copy(out, "bob")
    lines = _lines(bob)
    _swap_own_entries(lines)  # within bob's copy only; the others are intact
    _write(bob, lines)
    channel = reader(out, GONE)
    assert any("copies disagree at snapshot" in p and "bob" in p for p in channel.problems)
    with pytest.raises(ChannelError):
        channel.history()


def test_a_copy_of_another_head_is_not_read_when_the_head_is_named(
    finished: Finished, out: Path
) -> None:
    with pytest.raises(ChannelError, match="cannot reach"):
        reader(out, GONE, head_id="ab" * 16)  # only the node could know that head
