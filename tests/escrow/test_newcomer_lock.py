"""A newcomer's layer-1 lock (docs/membership.md, "Escrow"), in process on the ledger double:
the lock it makes before it asks to join lists the session file's parties and itself, a
restart finds it instead of locking again, and a member's check before its ``Admit`` vote
(``zkadapt admit``) refuses a request whose deposit or lock is not the agreed one, naming why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("uplc")

from click.testing import CliRunner

import zkadapt.cardano.chain as chain
from tests.escrow.test_party_escrow import DEPOSIT, FAST, FUNDS, World
from tests.layer1_double.context import LedgerContext
from zkadapt.cli import cli
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import UsageError
from zkadapt.escrow.onchain import lock_datum
from zkadapt.escrow.tx_context import as_data
from zkadapt.escrow.txs import same_data
from zkadapt.newcomer import check_newcomer_lock
from zkadapt.operator.escrow import key_hash, payment_key_hashes
from zkadapt.operator.escrow_layer1 import load_payment_key, lock_deposit, session_locks
from zkadapt.operator.party_escrow import PartyEscrow
from zkadapt.protocol.membership import Request


class Joining(World):
    """The 3-party layer-1 session of test_party_escrow, admitting by two votes, and dave."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        path = root / "session.toml"
        path.write_text(path.read_text() + '\n[membership]\nadmission = "vote"\nvotes = 2\n')
        self.config = load_config(path)
        self.dave = IdentityKey.from_seed(b"\x44" * 32)
        self.dave.save(root / "keys" / "dave.skey")
        self.dave_hash = key_hash(self.dave.public.hex)
        self.ledger.fund(self.dave_key().address, FUNDS)

    def dave_key(self):  # type: ignore[no-untyped-def]
        path = self.root / "keys" / "dave.skey"
        return load_payment_key(self.config, "dave", self.root, path, newcomer_hash=self.dave_hash)

    def dave_escrow(self) -> PartyEscrow:
        return PartyEscrow(
            self.config,
            "dave",
            channel=None,
            identity=self.dave,
            context=LedgerContext(self.ledger),
            key=self.dave_key(),
            say=self.lines.setdefault("dave", []).append,
            times=FAST,
            newcomer_hash=self.dave_hash,
        )

    def request(self, lock: str, deposit: int = DEPOSIT) -> Request:
        return Request("dave", self.dave.public.hex, 100, deposit, lock)


@pytest.fixture()
def joining(tmp_path: Path) -> Joining:
    return Joining(tmp_path / "s")


def test_a_newcomer_locks_once_with_a_datum_listing_the_parties_and_itself(
    joining: Joining,
) -> None:
    ref = joining.dave_escrow().lock_as_newcomer()
    assert joining.lines["dave"] == [f"locked 10 ADA at {ref}"]
    locks = session_locks(joining.config, {"dave": joining.dave_hash})
    (utxo,) = LedgerContext(joining.ledger).utxos(locks.address)
    listed = payment_key_hashes(joining.config)
    keys = [listed["alice"], listed["bob"], listed["carol"], joining.dave_hash]  # name order
    expected = lock_datum(keys, 3, DEPOSIT, 2, joining.config.escrow.deadline_ms)
    assert same_data(as_data(utxo.output.datum), expected)
    assert utxo.output.amount == DEPOSIT or utxo.output.amount.coin == DEPOSIT

    again = joining.dave_escrow().lock_as_newcomer()  # a rerun of `zkadapt join`
    assert again == ref and len(joining.ledger.utxos_at(locks.address)) == 1  # not twice
    assert joining.lines["dave"][-1] == f"found its lock at {ref} (made before a restart)"


def test_a_member_checks_the_newcomers_lock_before_it_votes(joining: Joining) -> None:
    context = LedgerContext(joining.ledger)
    ref = joining.dave_escrow().lock_as_newcomer()
    check_newcomer_lock(joining.config, "alice", joining.request(ref), context)  # the agreed one

    def refused(request: Request) -> str:
        with pytest.raises(UsageError) as info:
            check_newcomer_lock(joining.config, "alice", request, context)
        assert str(info.value).startswith("not voting to admit dave: ")
        return str(info.value)

    assert "declares a deposit of 5000000 lovelace, the escrow takes exactly 10000000" in refused(
        joining.request(ref, deposit=DEPOSIT // 2)
    )
    # alice's own lock named as dave's: a datum that does not list dave as its owner
    alice = lock_deposit(joining.config, context, joining.key("alice"))
    assert "has another datum than the session's for dave" in refused(joining.request(alice))
    assert "is not in the UTxO" in refused(joining.request("ab" * 32 + "#0"))
    # a lock made for dave under another key hash (dave's datum must name its request's key)
    erin = IdentityKey.from_seed(b"\x45" * 32)
    erin_hash = key_hash(erin.public.hex)
    erin_path = joining.root / "keys" / "erin.skey"
    erin.save(erin_path)
    erin_key = load_payment_key(
        joining.config, "erin", joining.root, erin_path, newcomer_hash=erin_hash
    )
    joining.ledger.fund(erin_key.address, FUNDS)
    other = lock_deposit(joining.config, context, erin_key, newcomers={"erin": erin_hash})
    assert "has another datum than the session's for dave" in refused(joining.request(other))


def test_a_newcomer_gets_its_lock_back_after_the_deadline_with_the_cli(
    joining: Joining, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newcomer whose request was refused (or never admitted) is no party of the session
    file: ``zkadapt escrow refund --party dave`` finds its lock by the key it joined with."""
    joining.dave_escrow().lock_as_newcomer()
    before = joining.ledger.balance(joining.dave_key().address)
    joining.ledger.advance(3601)  # past escrow.deadline
    monkeypatch.setattr(chain, "chain_context", lambda *a, **k: LedgerContext(joining.ledger))
    session = str(joining.root / "session.toml")
    done = CliRunner().invoke(cli, ["escrow", "refund", session, "--party", "dave"])
    nobody = CliRunner().invoke(cli, ["escrow", "refund", session, "--party", "zed"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("refunded dave in ")
    after = joining.ledger.balance(joining.dave_key().address)
    assert 0 < before + DEPOSIT - after < 1_000_000  # the deposit back, less the fee
    assert nobody.exit_code == 2 and "'zed' is not a party of this session" in nobody.output
