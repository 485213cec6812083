"""``zkadapt escrow lock|check|vote|settle|refund`` end to end: a session file with
``[cardano]`` pointing at the Ogmios v6 double (tests/ogmios_double, every message
schema-checked) over the layer-1 ledger double, and the local channel.

Three parties lock their deposits with the CLI, the round protocol's ``RoundDone`` signals are
posted as the parties would, votes are posted with ``zkadapt escrow vote`` and the locks are
settled with ``zkadapt escrow settle``; the balances on the ledger double are compared with
the rules' payouts (fees accounted for from the transactions themselves).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("uplc")

from click.testing import CliRunner
from pycardano import Address, Network, VerificationKeyHash

from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.assembly import open_session_channel
from zkadapt.channel.base import SignedEnvelope
from zkadapt.cli import cli
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.escrow.rules import payouts

NAMES = ("alice", "bob", "carol")
FUNDS = 100_000_000
DEPOSIT = 10_000_000


class Session:
    """A three-party session directory whose escrow is on the ledger double."""

    def __init__(self, root: Path, ogmios: OgmiosDouble, rounds: int = 2) -> None:
        self.root, self.ledger = root, ogmios.ledger
        self.invoke("init", str(root), "--parties", "3")
        path = root / "session.toml"
        now_s = self.ledger.slot_to_posix_ms(self.ledger.slot) // 1000
        text = path.read_text().replace("rounds = 5", f"rounds = {rounds}", 1)
        text += (
            f'\n[cardano]\nnetwork = "preprod"\nbackend = "ogmios"\nurl = "{ogmios.url}"\n'
            f"confirm_timeout_s = 5.0\n"
        )
        path.write_text(text)
        self._set_escrow(path, now_s + 3600)
        self.file = path
        self.config = load_config(path)
        assert self.config.session.rounds == rounds
        self.fees = dict.fromkeys(NAMES, 0)
        for name in NAMES:
            self.ledger.fund(self.address(name), FUNDS)

    @staticmethod
    def _set_escrow(path: Path, deadline: int) -> None:
        text = path.read_text()
        if "[escrow]" in text:
            text = text.replace("[escrow]", f"[escrow]\ndeadline = {deadline}", 1)
        else:
            text += f"\n[escrow]\ndeadline = {deadline}\n"
        path.write_text(text)

    def invoke(self, *args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    def escrow(self, command: str, party: str, *args: str, code: int = 0) -> str:
        before = set(self.ledger.applied)
        out = self.invoke("escrow", command, str(self.file), "--party", party, *args, code=code)
        for tx_id in set(self.ledger.applied) - before:
            self.fees[party] += self.ledger.applied[tx_id].transaction_body.fee
        return out

    def identity(self, name: str) -> IdentityKey:
        return IdentityKey.load(self.root / "keys" / f"{name}.skey")

    def address(self, name: str) -> Address:
        key = bytes.fromhex(next(p.public_key for p in self.config.parties if p.name == name))
        pkh = hashlib.blake2b(key, digest_size=28).digest()
        return Address(payment_part=VerificationKeyHash(pkh), network=Network.TESTNET)

    def signal(self, name: str, kind: str, round_: int) -> None:
        """Post a protocol signal as ``name`` (what the round protocol posts)."""
        body = {"type": kind, "v": 1, "session": self.config.session_id, "round": round_}
        payload = json.dumps({**body, "party": name}, sort_keys=True).encode()
        channel = open_session_channel(self.config, self.root, party=name)
        try:
            channel.post(SignedEnvelope(name, payload, self.identity(name).sign(payload)))
        finally:
            channel.close()

    def rounds(self, upto: int, *names: str, start: int = 1) -> None:
        for r in range(start, upto + 1):
            for name in names:
                self.signal(name, "RoundDone", r)

    def balance(self, name: str) -> int:
        return self.ledger.balance(self.address(name))


@pytest.fixture()
def session(tmp_path: Path):
    ledger = Ledger("preprod")
    ledger.set_slot(ledger.slot)
    with OgmiosDouble(ledger) as ogmios:
        yield Session(tmp_path / "s", ogmios)
        assert ogmios.violations == []


def test_lock_check_release_settle_an_honest_session(session: Session) -> None:
    for name in NAMES:
        out = session.escrow("lock", name)
        assert f"{name} locked {DEPOSIT} lovelace at " in out and "posted EscrowDeposit" in out
    checked = session.escrow("check", "alice")
    assert checked.count("locked at") == 3
    session.rounds(2, *NAMES)
    session.escrow("settle", "alice", code=1)  # no release votes yet: refused, one line
    for name in NAMES:
        assert "releases" in session.escrow("vote", name, "--release")
    out = session.escrow("settle", "bob")
    assert out.count("released") == 3 and "settled in" in out
    for name in NAMES:
        assert session.balance(name) == FUNDS - session.fees[name], name
    assert "nothing left to settle" in session.escrow("settle", "carol")


def test_a_silent_party_is_slashed_and_its_deposit_split_as_the_rules_say(
    session: Session,
) -> None:
    for name in NAMES:
        session.escrow("lock", name)
    session.rounds(1, *NAMES)
    session.rounds(2, "alice", "bob", start=2)  # carol goes silent
    for voter in ("alice", "bob"):
        session.escrow("vote", voter, "--kill", "carol", "--round", "2")
        session.escrow("vote", voter, "--release")
    out = session.escrow("settle", "alice")
    assert "carol's lock slashed: alice 5000000, bob 5000000" in out
    paid = payouts(NAMES, ("carol",), DEPOSIT)
    for name in NAMES:
        assert session.balance(name) == FUNDS - DEPOSIT + paid[name] - session.fees[name], name


def test_refund_after_the_deadline_needs_no_channel(session: Session) -> None:
    for name in NAMES:
        session.escrow("lock", name, "--no-post")
    early = session.escrow("refund", "bob", code=1)
    assert "no refund before the deadline" in early
    session.ledger.advance(3600)
    out = session.escrow("refund", "bob")
    assert "refunded alice, bob, carol" in out
    for name in NAMES:
        assert session.balance(name) == FUNDS - session.fees[name], name


def test_usage_errors_are_one_line(session: Session) -> None:
    out = session.escrow("vote", "alice", code=2)
    assert out.startswith("error: ") and out.count("\n") == 1
    out = session.escrow("vote", "alice", "--kill", "alice", "--round", "1", code=2)
    assert "not another party" in out
    out = session.escrow("lock", "mallory", code=2)
    assert "not a party" in out
