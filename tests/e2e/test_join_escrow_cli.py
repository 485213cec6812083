"""A newcomer joins a session whose escrow is on layer 1, through the CLI (issue 20,
docs/membership.md "Escrow").

Three ``zkadapt party`` processes lock their deposits (the Ogmios v6 double over the layer-1
ledger double: every message schema-checked, every transaction validated and its scripts
run with uplc) and start; once round 1 is cut, dave runs ``zkadapt join``: it locks its own
deposit first (a lock whose datum lists the session file's parties and itself), then posts a
``JoinRequest`` naming that lock. Alice and bob each run ``zkadapt admit``, which checks the
lock on layer 1 before it posts the vote (``admission = "vote"``, two votes): the votes are
the channel's record that the lock was there. Dave is a member from round 3; after the last
round the members release each other (dave's lock by the listed parties' votes) and one
settles all four locks: every deposit comes back, and each balance is what it was less the
fees its own key paid.

Carol is paused (SIGSTOP) after her round-1 submission so that round 2 cannot be cut before
dave's request and both votes are on the ledger (the device of tests/e2e/joining.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from pycardano import Address, Network, VerificationKeyHash

from tests.e2e.conftest import edit_session, zkadapt
from tests.e2e.joining import JoinScene, small_mnist
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.crypto.identity import IdentityKey
from zkadapt.protocol.messages import Admit, JoinRequest, Submitted

pytestmark = pytest.mark.e2e

NAMES = ("alice", "bob", "carol")
EVERYONE = (*NAMES, "dave")
ROUNDS = 3
FUNDS = 100_000_000
DEPOSIT = 10_000_000


def _address(key: IdentityKey) -> Address:
    pkh = hashlib.blake2b(bytes.fromhex(key.public.hex), digest_size=28).digest()
    return Address(payment_part=VerificationKeyHash(pkh), network=Network.TESTNET)


def _fees(ledger: Ledger, key: IdentityKey) -> int:
    """Fees of the layer-1 transactions ``key`` signed (it paid them)."""
    mine = bytes.fromhex(key.public.hex)
    return sum(
        tx.transaction_body.fee
        for tx in ledger.applied.values()
        if any(w.vkey.payload == mine for w in tx.transaction_witness_set.vkey_witnesses or ())
    )


def test_a_newcomer_locks_members_check_its_lock_and_every_deposit_comes_back(
    tmp_path: Path,
) -> None:
    ledger = Ledger("preprod")
    with OgmiosDouble(ledger) as ogmios:
        zkadapt("init", "sess", "--example", "mnist", cwd=tmp_path)
        session = tmp_path / "sess" / "session.toml"
        deadline = ledger.slot_to_posix_ms(ledger.slot) // 1000 + 3600
        edit_session(
            session,
            **small_mnist(ROUNDS),
            escrow={"deposit_lovelace": DEPOSIT, "deadline": deadline},
            cardano={"network": "preprod", "url": ogmios.url, "confirm_timeout_s": 5.0},
            membership={"admission": "vote", "votes": 2, "max_parties": 4},
        )
        keys_dir = tmp_path / "sess" / "keys"
        keys = {n: IdentityKey.load(keys_dir / f"{n}.skey") for n in NAMES}
        keys["dave"] = IdentityKey.generate()  # dave's own key, funded before it joins
        keys["dave"].save(keys_dir / "dave.skey")
        for name in EVERYONE:
            ledger.fund(_address(keys[name]), FUNDS)

        out = tmp_path / "out"
        out.mkdir()
        with JoinScene(session, out, tmp_path) as scene:
            scene.spawn_parties(NAMES)
            history = scene.join_during_round_2("carol", "dave")
            request = next(p.message for p in history.posted if isinstance(p.message, JoinRequest))
            listed = zkadapt(
                "admit", str(session), "--party", "alice", "--list", "--out", str(out),
                cwd=tmp_path,
            )  # fmt: skip
            admit = ("admit", str(session), "dave", "--out", str(out))
            votes = [zkadapt(*admit, "--party", voter, cwd=tmp_path) for voter in ("alice", "bob")]
            assert scene.read().cut(2) is None  # request and votes fell during round 2
            scene.resume("carol")
            codes = scene.wait_all(timeout=400)
        texts = {n: scene.log(n).read_text() for n in EVERYONE}
        balances = {n: ledger.balance(_address(keys[n])) for n in EVERYONE}
        fees = {n: _fees(ledger, keys[n]) for n in EVERYONE}
        assert ogmios.violations == []

    assert codes == dict.fromkeys(EVERYONE, 0), {n: t[-2000:] for n, t in texts.items()}
    # dave locked before it asked, and its request names that lock
    assert request.deposit == DEPOSIT and request.lock
    assert f"dave escrow: locked 10 ADA at {request.lock}" in texts["dave"]
    assert f"lock {request.lock[:16]}" in listed.stdout and "0 of 2 votes" in listed.stdout
    assert all("voted to admit dave" in v.stdout for v in votes)
    history = scene.read()
    roster = history.roster
    assert roster is not None and [(n.name, n.round) for n in roster.admitted] == [("dave", 3)]
    admits = [p.sender for p in history.posted if isinstance(p.message, Admit)]
    assert admits == ["alice", "bob"]
    dave_rounds = [
        p.message.round
        for p in history.posted
        if p.sender == "dave" and isinstance(p.message, Submitted)
    ]
    assert dave_rounds == [3]
    digests = {
        n: json.loads((out / "parties" / n / "result.json").read_text())["final_model_sha256"]
        for n in EVERYONE
    }
    assert len(set(digests.values())) == 1, digests

    # the settlement released all four locks: every deposit is back, less each one's fees
    results = {n: json.loads((out / "parties" / n / "result.json").read_text()) for n in EVERYONE}
    settler = next(n for n in EVERYONE if results[n]["escrow"]["settled_by"] == n)
    assert results[settler]["escrow"]["payouts"] == dict.fromkeys(EVERYONE, DEPOSIT)
    assert results["dave"]["escrow"]["lock"] == request.lock
    for name in EVERYONE:
        assert results[name]["escrow"]["status"] == "completed", name
        assert balances[name] == FUNDS - fees[name], (name, balances[name], fees[name])
        assert fees[name] > 0  # each locked from its own key
    for name in NAMES:  # each listed party released the other two and dave
        others = [n for n in EVERYONE if n != name]
        assert f"{name} escrow: released {', '.join(others)}" in texts[name], texts[name]
    assert "released" not in texts["dave"]  # no lock lists dave but its own
    for name in NAMES:  # the members checked dave's lock before voting; dave checked theirs
        assert f"dave escrow: checked {name}'s lock at " in texts["dave"]
