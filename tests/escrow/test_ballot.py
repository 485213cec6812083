"""Ballots: the escrow votes that travel in the store after a premature close
(:mod:`zkadapt.escrow.ballot`, :func:`zkadapt.operator.early_close.read_ballots`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from tests.escrow.test_party_escrow import World
from zkadapt.errors import StorageError
from zkadapt.escrow.ballot import (
    BallotInvalid,
    as_entries,
    ballot_key,
    encode_ballot,
    read_ballot,
)
from zkadapt.escrow.messages import read_payload
from zkadapt.keyfiles import keyring_of
from zkadapt.operator.early_close import closer_votes, read_ballots
from zkadapt.operator.escrow_layer1 import kill_vote, release_votes
from zkadapt.storage.local import LocalStore


def _ballot(world: World, voter: str, signer: str | None = None) -> bytes:
    key = world.key(voter)
    votes = [
        kill_vote(world.config, key, "carol", 2, "closed-early"),
        kill_vote(world.config, key, "carol", 1, "closed-early"),  # another round
        kill_vote(world.config, key, "carol", 2, "silent"),  # another reason
        *release_votes(world.config, key, [p for p in ("alice", "bob") if p != voter]),
        *release_votes(world.config, key, ["carol"]),  # releases the closer
    ]
    identity = world.identity(signer or voter)
    return encode_ballot(identity, world.config.session_id, voter, votes)


def test_ballots_are_read_by_key_checked_and_filtered(tmp_path: Path) -> None:
    world = World(tmp_path / "w")
    session = world.config.session_id
    store = LocalStore(tmp_path / "store")
    store.put(ballot_key(session, "alice"), _ballot(world, "alice"))
    store.put(ballot_key(session, "bob"), _ballot(world, "bob", signer="alice"))  # forged
    said: list[str] = []
    found = read_ballots(store, keyring_of(world.config), session, ["alice", "bob"], said.append)

    assert len(found["alice"]) == 5 and found["bob"] == []
    assert said == ["ignored bob's ballot: bob's ballot holds an entry bob did not sign"]
    kept = closer_votes(found["alice"], "carol", 2, ["bob"])
    messages = [read_payload(e.payload) for e in kept]
    assert [(type(m).__name__, m.target) for m in messages] == [  # type: ignore[union-attr]
        ("KillVote", "carol"),
        ("ReleaseVote", "bob"),
    ]
    entries = as_entries(7, {"bob": kept[1:], "alice": kept[:1]})  # voter name order
    assert [(e.seq, e.envelope) for e in entries] == [(8, kept[0]), (9, kept[1])]
    # a missing ballot is left out; nothing is read beyond the bound
    assert read_ballots(store, keyring_of(world.config), session, ["carol"], said.append) == {}
    with pytest.raises(StorageError, match="larger than 10 bytes"):
        store.get_key(store.location_of("alice") + ballot_key(session, "alice"), 10)
    with pytest.raises(StorageError):
        store.get_key("local://../escape", 1000)


def test_hostile_ballots_are_refused_in_one_line(tmp_path: Path) -> None:
    world = World(tmp_path / "w")
    session, keyring = world.config.session_id, keyring_of(world.config)
    good = _ballot(world, "alice")
    assert len(read_ballot(good, keyring, session, "alice")) == 5
    with pytest.raises(BallotInvalid, match="not a ballot of this session"):
        read_ballot(good, keyring, "00" * 32, "alice")
    with pytest.raises(BallotInvalid, match="not a ballot of this session"):
        read_ballot(good, keyring, session, "bob")
    with pytest.raises(BallotInvalid, match="not JSON"):
        read_ballot(b"[" * 100_000, keyring, session, "alice")
    with pytest.raises(BallotInvalid, match="larger than"):
        read_ballot(b" " * (300 * 1024), keyring, session, "alice")
    body = json.loads(good)
    body["entries"][0]["signature"] = "zz" * 64
    with pytest.raises(BallotInvalid, match="not hex"):
        read_ballot(json.dumps(body).encode(), keyring, session, "alice")
