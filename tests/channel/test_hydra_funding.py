"""Funding a head that opens empty, as a real hydra 2.x head does (the hydra-node double).

``zkadapt head deposit`` end to end through the CLI, the deposits ``zkadapt run`` makes
before it starts the parties (:func:`zkadapt.operator.funding.fund_parties`), waits derived
from the node's parameters with progress, and the node's refusals as one line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from tests.e2e.conftest import edit_session
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import envelope, layer1_funds, utxo_files
from tests.hydra_double.head import Fault
from zkadapt.channel.hydra import HydraChannel
from zkadapt.channel.hydra.layer1 import choose_deposit
from zkadapt.channel.hydra.waits import WaitProgress
from zkadapt.cli import cli
from zkadapt.config import load_config
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ChannelError, ConfigError
from zkadapt.keyfiles import keyring_of
from zkadapt.operator.funding import fund_parties
from zkadapt.progress import wait_progress

NAMES = ["alice", "bob", "carol"]
FIVE_ADA = 5_000_000


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


class Empty:
    """A ``zkadapt init`` session over the double; the head opens empty, funds are on L1."""

    def __init__(self, tmp_path: Path) -> None:
        assert run("init", str(tmp_path / "sess")).exit_code == 0
        self.session = tmp_path / "sess" / "session.toml"
        keys = tmp_path / "sess" / "keys"
        self.keys = {n: IdentityKey.load(keys / f"{n}.skey") for n in NAMES}
        self.double = HydraDouble(NAMES, l1_utxo=layer1_funds(self.keys), contestation_s=1.5)
        self.double.start()
        self.utxo = utxo_files(self.double, self.keys, tmp_path / "layer1")
        nodes = {n: self.double.api(n) for n in NAMES}
        edit_session(
            self.session,
            channel={"backend": "hydra", "hydra": {"nodes": nodes, "connect_timeout_s": 5}},
        )

    def set_hydra(self, **values: object) -> None:
        """Change ``[channel.hydra]`` keys, keeping the others."""
        hydra = load_config(self.session).channel.hydra.model_dump(exclude_none=True)
        edit_session(self.session, channel={"hydra": {**hydra, **values}})

    def file(self, party: str) -> str:
        return self.utxo.replace("{party}", party)

    def channel(self, party: str) -> HydraChannel:
        config = load_config(self.session)
        return HydraChannel(
            keyring_of(config), api=self.double.api(party), identity=self.keys[party]
        )


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[Empty]:
    setup = Empty(tmp_path)
    try:
        yield setup
    finally:
        setup.double.stop()


def test_head_deposit_funds_a_party_so_that_it_can_post(empty: Empty) -> None:
    session = str(empty.session)
    assert run("head", "init", session).exit_code == 0  # opens with an empty UTxO
    deposit = run(
        "head", "deposit", session, "--party", "alice", "--lovelace", "5000000",
        "--utxo-file", empty.file("alice"),
    )  # fmt: skip
    assert deposit.exit_code == 0, deposit.output
    assert "Deposit: 5,000,000 lovelace of alice are in the head (deposit " in deposit.output
    assert deposit.output.strip().endswith("alice holds 5,000,000 lovelace there")
    with empty.channel("alice") as alice:
        assert alice.post(envelope(empty.keys["alice"], "alice", b"funded")).seq == 1
    change = [o for o in empty.double.head.l1.utxo.values() if o["address"] == alice.address]
    assert [o["value"]["lovelace"] for o in change] == [15_000_000]  # the rest came back
    assert empty.double.violations == []


def test_head_deposit_refusals_are_one_line(empty: Empty) -> None:
    session = str(empty.session)
    args = ["head", "deposit", session, "--party", "bob", "--lovelace", "5000000"]
    idle = run(*args, "--utxo-file", empty.file("bob"))
    assert idle.exit_code == 1 and "the head is Idle, not Open" in idle.output
    assert run("head", "init", session).exit_code == 0
    unknown = run(*args)  # no --utxo-file and no channel.hydra.layer1_utxo
    assert (
        unknown.exit_code == 1 and "cardano-cli query utxo --address addr_test1" in unknown.output
    )
    too_much = run(*args[:-1], "50000000", "--utxo-file", empty.file("bob"))
    assert too_much.exit_code == 1
    assert "no layer-1 output of this party holds 50,000,000 lovelace" in too_much.output
    empty.double.arm(Fault.DEPOSIT_EXPIRES)
    expired = run(*args, "--utxo-file", empty.file("bob"))
    assert expired.exit_code == 1 and "(DepositExpired: deposit " in expired.output
    stranger = run("head", "deposit", session, "--party", "mallory", "--lovelace", "1")
    assert stranger.exit_code == 2 and "'mallory' is not a party" in stranger.output
    for result in (idle, unknown, too_much, expired):
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert empty.double.violations == []


def test_run_deposits_for_every_party_with_nothing_in_the_head(empty: Empty) -> None:
    run("head", "init", str(empty.session))
    config = load_config(empty.session)
    with pytest.raises(ConfigError, match=r"channel.hydra.layer1_utxo: no funds in the head"):
        fund_parties(config, empty.keys)
    empty.set_hydra(layer1_utxo=empty.utxo)
    config = load_config(empty.session)
    assert config.channel.hydra.deposit_lovelace == FIVE_ADA  # the default amount
    lines = fund_parties(config, empty.keys)
    assert [line.split(":")[0] for line in lines] == NAMES
    for name in NAMES:
        with empty.channel(name) as channel:
            assert channel.funds_in_head() == FIVE_ADA
    assert fund_parties(config, empty.keys) == []  # funded already: nothing to do
    assert empty.double.violations == []


def test_no_deposit_on_other_channels_or_when_switched_off(empty: Empty) -> None:
    empty.set_hydra(deposit_lovelace=0)
    assert fund_parties(load_config(empty.session), empty.keys) == []
    edit_session(empty.session, channel={"backend": "local"})
    assert fund_parties(load_config(empty.session), empty.keys) == []


def test_fanout_shows_the_contestation_wait_and_derives_it(empty: Empty) -> None:
    session = str(empty.session)
    run("head", "init", session)
    assert run("head", "close", session).exit_code == 0
    fanned = run("head", "fanout", session)  # no --timeout: the node's deadline decides
    assert fanned.exit_code == 0, fanned.output
    assert "fanout: waiting for ReadyToFanout: contestation period until " in fanned.output
    assert "Fanout: head " in fanned.output and "finalized; 0 outputs" in fanned.output


def test_choose_deposit_prefers_the_smallest_plain_output_that_holds_enough() -> None:
    key = IdentityKey.generate()
    from zkadapt.channel.hydra.tx import address_of

    address = address_of(key.public)
    utxo = {
        f"{'a' * 64}#0": {"address": address, "value": {"lovelace": 50_000_000}},
        f"{'b' * 64}#0": {"address": address, "value": {"lovelace": 6_000_000}},
        f"{'c' * 64}#0": {"address": address, "value": {"lovelace": 1_000_000}},
        f"{'d' * 64}#0": {"address": address, "value": {"lovelace": 5_500_000, "ab" * 28: {"": 1}}},
    }
    assert choose_deposit(utxo, key.public, FIVE_ADA)[0] == f"{'b' * 64}#0"
    with pytest.raises(ChannelError, match="4 outputs, 62,500,000 lovelace in all"):
        choose_deposit(utxo, key.public, 60_000_000)
    with pytest.raises(ValueError):
        choose_deposit(utxo, key.public, 0)


def test_wait_progress_prints_a_line_per_stage_off_a_terminal() -> None:
    out = io.StringIO()
    with wait_progress(Console(file=out, width=200), quiet=True) as sink_for:
        sink = sink_for("alice")
        sink(WaitProgress("CommitFinalized of deposit ab", "submitted", 1.0, 600.0))
        sink(WaitProgress("CommitFinalized of deposit ab", "submitted", 2.0, 600.0))
        sink(WaitProgress("CommitFinalized of deposit ab", "seen on layer 1", 3.0, 7800.0))
    assert out.getvalue().splitlines() == [
        "alice: waiting for CommitFinalized of deposit ab: submitted (at most 600 s)",
        "alice: waiting for CommitFinalized of deposit ab: seen on layer 1 (at most 7,800 s)",
    ]
