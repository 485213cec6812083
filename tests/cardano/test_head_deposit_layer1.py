"""``zkadapt head deposit`` and ``zkadapt run``'s deposits with ``[cardano]`` (issue 19).

The hydra-node double's layer 1 is the layer-1 ledger double, and the same ledger sits
behind the Ogmios double: the client reads the party's outputs through Ogmios, the node
drafts the deposit, the client signs it and submits it through Ogmios, and the ledger checks
it like any transaction (inputs, balance, fee, signature) before the node sees it on layer 1
and takes it into the head. Nothing goes through a cardano-cli UTxO file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pycardano import TransactionInput

from tests.e2e.conftest import edit_session
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope
from tests.layer1_double.hydra import HydraLayer1
from tests.layer1_double.ledger import Ledger
from tests.ogmios_double.server import OgmiosDouble
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.tx import address_of
from zkadapt.cli import cli
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.keyfiles import keyring_of
from zkadapt.operator.funding import fund_parties

NAMES = ["alice", "bob", "carol"]
TWENTY_ADA = 20_000_000
DEPOSIT_SCRIPT_PREFIX = "addr_test1w"  # the double's deposit script address (a script hash)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class OnLayer1:
    """A ``zkadapt init`` session with ``[cardano]``: funds on the ledger double only."""

    def __init__(self, tmp_path: Path) -> None:
        assert run("init", str(tmp_path / "sess")).exit_code == 0
        self.session = tmp_path / "sess" / "session.toml"
        keys = tmp_path / "sess" / "keys"
        self.keys = {n: IdentityKey.load(keys / f"{n}.skey") for n in NAMES}
        self.ledger = Ledger("preprod")
        self.funding = {n: self.ledger.fund(self.address(n), TWENTY_ADA) for n in NAMES}
        self.ogmios = OgmiosDouble(self.ledger).start()
        self.hydra = HydraDouble(NAMES, layer1=HydraLayer1(self.ledger), contestation_s=1.5)
        self.hydra.start()
        nodes = {n: self.hydra.api(n) for n in NAMES}
        edit_session(
            self.session,
            channel={"backend": "hydra", "hydra": {"nodes": nodes, "connect_timeout_s": 5}},
            cardano={"network": "preprod", "backend": "ogmios", "url": self.ogmios.url},
        )

    def address(self, name: str) -> str:
        return address_of(self.keys[name].public)

    def channel(self, party: str) -> HydraChannel:
        config = load_config(self.session)
        return HydraChannel(
            keyring_of(config), api=self.hydra.api(party), identity=self.keys[party]
        )

    def stop(self) -> None:
        self.hydra.stop()
        self.ogmios.stop()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[OnLayer1]:
    setup = OnLayer1(tmp_path)
    try:
        yield setup
    finally:
        setup.stop()


def test_head_deposit_spends_the_party_layer1_output_through_ogmios(chain: OnLayer1) -> None:
    session = str(chain.session)
    assert run("head", "init", session).exit_code == 0
    deposit = run("head", "deposit", session, "--party", "alice", "--lovelace", "5000000")
    assert deposit.exit_code == 0, deposit.output
    assert deposit.output.strip().endswith("alice holds 5,000,000 lovelace there")
    ledger = chain.ledger
    tx_id = ledger.spent[chain.funding["alice"]]  # the faucet output is spent on layer 1 ...
    fee = ledger.applied[tx_id].transaction_body.fee  # ... by a deposit that paid a real fee
    assert fee >= ledger.fees.minimum(len(ledger.applied[tx_id].to_cbor()))
    assert ledger.balance(chain.address("alice")) == TWENTY_ADA - 5_000_000 - fee
    locked = [
        o for o in ledger.utxo.values() if o.address.encode().startswith(DEPOSIT_SCRIPT_PREFIX)
    ]
    assert [o.amount.coin for o in locked] == [5_000_000]
    assert ledger.balance(chain.address("bob")) == TWENTY_ADA  # nobody else's funds moved
    with chain.channel("alice") as alice:
        assert alice.post(envelope(chain.keys["alice"], "alice", b"funded")).seq == 1
    assert {"queryLedgerState/utxo", "submitTransaction"} <= set(chain.ogmios.requests)
    assert chain.ogmios.violations == [] and chain.hydra.violations == []
    assert ledger.rejections == []


def test_a_layer1_refusal_or_outage_is_one_line_naming_ogmios(
    chain: OnLayer1, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = str(chain.session)
    assert run("head", "init", session).exit_code == 0
    args = ["head", "deposit", session, "--party", "bob", "--lovelace", "5000000"]
    monkeypatch.setattr(HydraLayer1, "draft_fee", lambda self, unsigned, witnesses=1: 0)
    unpaid = run(*args)  # the node drafts without a fee: the ledger refuses it
    assert unpaid.exit_code == 1
    assert f"ogmios {chain.ogmios.url}: submitTransaction refused (3122): Insufficient fee: 0 " in (
        unpaid.output
    )
    assert chain.ledger.balance(chain.address("bob")) == TWENTY_ADA  # nothing moved
    file_too = run(*args, "--utxo-file", "bob.utxo.json")
    assert file_too.exit_code == 2 and "[cardano] section reads layer 1" in file_too.output
    chain.ogmios.stop()
    down = run(*args)
    assert down.exit_code == 1 and f"ogmios {chain.ogmios.url}: queryNetwork/tip: " in down.output
    assert "Connection refused" in down.output
    for result in (unpaid, file_too, down):
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert chain.hydra.violations == []


def test_run_funds_every_party_from_layer1_without_utxo_files(chain: OnLayer1) -> None:
    run("head", "init", str(chain.session))
    config = load_config(chain.session)
    assert config.channel.hydra.layer1_utxo is None and config.cardano is not None
    lines = fund_parties(config, chain.keys)
    assert [line.split(":")[0] for line in lines] == NAMES
    for name in NAMES:
        with chain.channel(name) as channel:
            assert channel.funds_in_head() == config.channel.hydra.deposit_lovelace
        assert chain.funding[name] in chain.ledger.spent
    assert chain.ogmios.violations == [] and chain.ledger.rejections == []


def test_the_head_holds_its_deposits_on_layer1_and_its_fanout_pays_them_back(
    chain: OnLayer1,
) -> None:
    """The node's increment and fanout are played on the one ledger: the deposits are spent
    into the head's output, and the fanout spends that and pays the head's UTxO back."""
    session, ledger = str(chain.session), chain.ledger
    layer1 = chain.hydra.head.l1
    assert isinstance(layer1, HydraLayer1)
    assert run("head", "init", session).exit_code == 0
    for name, lovelace in (("alice", "5000000"), ("bob", "3000000")):
        result = run("head", "deposit", session, "--party", name, "--lovelace", lovelace)
        assert result.exit_code == 0, result.output
    deposits = [ledger.spent[chain.funding[n]] for n in ("alice", "bob")]
    assert len(layer1.increments) == 2
    for deposit in deposits:  # each deposit's output is spent by an increment ...
        ref = TransactionInput.from_primitive([deposit, 0])
        assert ledger.spent[ref] in layer1.increments
    assert ledger.balance(layer1.head_address) == 8_000_000  # ... into the head's one output
    scripts = [o.address for o in ledger.utxo.values() if str(o.address).startswith("addr_test1w")]
    assert scripts == [layer1.head_address]  # no deposit output is left at the deposit script
    before = {n: ledger.balance(chain.address(n)) for n in ("alice", "bob")}
    with chain.channel("alice") as alice:  # a channel entry: alice's output moves in the head
        alice.post(envelope(chain.keys["alice"], "alice", b"in the head"))
    for step in ("close", "fanout"):
        result = run("head", step, session, "--timeout", "20")
        assert result.exit_code == 0, result.output
    (fanout,) = layer1.fanouts
    assert ledger.spent[TransactionInput.from_primitive([layer1.increments[-1], 0])] == fanout
    assert ledger.balance(layer1.head_address) == 0
    paid = ledger.applied[fanout].transaction_body.outputs
    assert sum(o.amount.coin for o in paid) == 8_000_000  # value conserved
    assert ledger.balance(chain.address("alice")) == before["alice"] + 5_000_000
    assert ledger.balance(chain.address("bob")) == before["bob"] + 3_000_000
    mine = [r for r in ledger.utxos_at(chain.address("alice")) if str(r.transaction_id) == fanout]
    assert len(mine) == 1  # a new output of the fanout, not the head's own TxIn brought back
    assert chain.hydra.violations == [] and ledger.rejections == []
