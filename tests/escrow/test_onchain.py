"""The OpShin escrow validator, compiled to Plutus V3 and evaluated with uplc.

Each case builds a V3 script context for the settlement transaction and runs the committed
blueprint in uplc's CEK machine (the Plutus V3 cost model), as a node's phase-2 check would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.escrow.helpers import DEPOSIT, NAMES, SESSION, History, terms
from zkadapt.escrow.onchain import (
    BLUEPRINT,
    CLAIM,
    SOURCE,
    EscrowError,
    EscrowScript,
    redeemer_for,
    settlement_context,
    slash,
)
from zkadapt.escrow.rules import settlement_of
from zkadapt.escrow.script_context import constr

MEMBERS = {n: hashlib.blake2b(n.encode(), digest_size=28).digest() for n in NAMES}
SESSION_BYTES = bytes.fromhex(SESSION)


@pytest.fixture(scope="module")
def script() -> EscrowScript:
    return EscrowScript()


def run(script: EscrowScript, redeemer, paid, signers, **kwargs):
    context = settlement_context(
        script,
        session=SESSION_BYTES,
        members=MEMBERS,
        deposit=DEPOSIT,
        redeemer=redeemer,
        paid=paid,
        signers=signers,
        **kwargs,
    )
    return script.evaluate(context)


def test_blueprint_is_plutus_v3_and_its_hash_is_the_script_credential(script) -> None:
    assert script.plutus_version == "v3"
    assert script.script_hash.hex() == script.blueprint_hash


def test_claim_signed_by_every_party_is_accepted(script) -> None:
    result = run(script, CLAIM, {n: DEPOSIT for n in NAMES}, list(NAMES))
    assert result.accepted, result
    assert 0 < result.cpu < 10_000_000_000 and 0 < result.memory < 14_000_000  # V3 tx limits


def test_claim_without_every_signature_is_rejected(script) -> None:
    result = run(script, CLAIM, {n: DEPOSIT for n in NAMES}, ["alice", "bob"])
    assert not result.accepted
    assert "a claim needs every party's signature" in result.logs


def test_claim_that_does_not_refund_everyone_is_rejected(script) -> None:
    result = run(script, CLAIM, {"alice": 2 * DEPOSIT, "bob": DEPOSIT}, list(NAMES))
    assert not result.accepted and "a claim must refund every deposit" in result.logs


def test_slash_by_a_majority_paying_the_shares_is_accepted(script) -> None:
    share = DEPOSIT + DEPOSIT // 2
    result = run(script, slash([2]), {"alice": share, "bob": share}, ["alice", "bob"])
    assert result.accepted, result


def test_slash_without_a_majority_is_rejected(script) -> None:
    share = DEPOSIT + DEPOSIT // 2
    result = run(script, slash([2]), {"alice": share, "bob": share}, ["alice"])
    assert not result.accepted
    assert "a slash needs a strict majority of the other parties" in result.logs


def test_slash_that_underpays_a_remaining_party_is_rejected(script) -> None:
    result = run(script, slash([2]), {"alice": DEPOSIT * 2, "bob": DEPOSIT}, ["alice", "bob"])
    assert not result.accepted
    assert "every remaining party must get its share" in result.logs


def test_slash_with_a_bad_target_is_rejected(script) -> None:
    paid = {n: 2 * DEPOSIT for n in NAMES}
    assert not run(script, slash([3]), paid, list(NAMES)).accepted
    assert not run(script, slash([1, 1]), paid, list(NAMES)).accepted


@pytest.mark.parametrize(
    "datum",
    [
        constr(0, SESSION_BYTES, [MEMBERS[n] for n in NAMES], b"10"),  # deposit not an int
        constr(1, SESSION_BYTES, [MEMBERS[n] for n in NAMES], DEPOSIT),  # wrong constructor
        constr(0, SESSION_BYTES, [MEMBERS[n] for n in NAMES]),  # missing field
        constr(0, b"short", [MEMBERS[n] for n in NAMES], DEPOSIT),  # not a session id
        constr(0, SESSION_BYTES, [MEMBERS["alice"]], DEPOSIT),  # a single party
    ],
)
def test_a_wrong_datum_is_rejected(script, datum) -> None:
    result = run(script, CLAIM, {n: DEPOSIT for n in NAMES}, list(NAMES), datum=datum)
    assert not result.accepted, result


def test_a_wrong_redeemer_is_rejected(script) -> None:
    result = run(script, constr(5), {n: DEPOSIT for n in NAMES}, list(NAMES))
    assert not result.accepted


def test_the_pure_settlement_is_what_the_validator_accepts(script) -> None:
    history = History().deposits(*NAMES).rounds(1, *NAMES).rounds(3, "alice", "bob", start=2)
    history.kill("alice", "carol").kill("bob", "carol")
    settlement = settlement_of(history.entries, terms())
    redeemer = redeemer_for(settlement)
    voters = ["alice", "bob"]
    assert run(script, redeemer, settlement.payouts, voters).accepted
    pending = settlement_of(History().deposits(*NAMES).entries, terms())
    with pytest.raises(EscrowError, match="pending"):
        redeemer_for(pending)


def test_a_missing_blueprint_is_an_escrow_error(tmp_path: Path) -> None:
    (tmp_path / "plutus.json").write_text(json.dumps({"validators": []}))
    with pytest.raises(EscrowError):
        EscrowScript(tmp_path / "plutus.json")


@pytest.mark.slow
def test_committed_blueprint_is_what_the_source_compiles_to(tmp_path: Path) -> None:
    opshin = shutil.which("opshin") or str(Path(sys.executable).with_name("opshin"))
    subprocess.run(
        [opshin, "build", str(SOURCE), "-o", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = json.loads((tmp_path / "blueprint.json").read_text())
    committed = json.loads(BLUEPRINT.read_text())
    assert fresh["validators"] == committed["validators"]
