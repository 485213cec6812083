"""Operator actions on a Hydra head (``zkadapt head ...``) against the hydra-node double."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.e2e.conftest import edit_session
from tests.hydra_double import HydraDouble
from tests.hydra_double.fixtures import funds
from zkadapt.cli import cli
from zkadapt.crypto.identity import IdentityKey
from zkadapt.operator.head import HEAD_ACTIONS, NO_HEAD, head_action, offered_actions

NAMES = ["alice", "bob", "carol"]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def hydra_session(tmp_path: Path) -> Iterator[tuple[Path, HydraDouble]]:
    """A ``zkadapt init`` session whose channel is the double's head (not opened yet)."""
    assert run("init", str(tmp_path / "sess")).exit_code == 0
    session = tmp_path / "sess" / "session.toml"
    keys = {n: IdentityKey.load(tmp_path / "sess" / "keys" / f"{n}.skey") for n in NAMES}
    with HydraDouble(NAMES, initial_utxo=funds(keys), contestation_s=0.2) as double:
        edit_session(
            session,
            channel={
                "backend": "hydra",
                "hydra": {"nodes": {n: double.api(n) for n in NAMES}, "connect_timeout_s": 5},
            },
        )
        yield session, double


@pytest.mark.parametrize(
    ("status", "head_id", "offered"),
    [
        ("Idle", None, ["init"]),
        ("Idle", "ab" * 16, []),  # our head is finalized: the session's channel is over
        ("Open", "ab" * 16, ["close"]),
        ("Closed", "ab" * 16, []),
        ("FanoutPossible", "ab" * 16, ["fanout"]),
        ("Unknown", None, []),
    ],
)
def test_offered_actions_follow_the_head_status(status, head_id, offered) -> None:
    assert [a.name for a in offered_actions(status, head_id)] == offered


def test_an_unknown_action_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: init, close, fanout"):
        head_action("abort")
    assert all(a.command in a.label for a in HEAD_ACTIONS.values())


def test_head_commands_open_close_and_fan_out_the_head(hydra_session) -> None:
    session, double = hydra_session
    status = run("head", "status", str(session))
    assert status.exit_code == 0 and "no head yet, status Idle; actions: init" in status.output

    opened = run("head", "init", str(session), "--timeout", "10")
    assert opened.exit_code == 0, opened.output
    assert f"Init: head {double.head.head_id} is open" in opened.output
    assert "status Open; actions: close" in opened.output

    closed = run("head", "close", str(session), "--party", "bob", "--timeout", "10")
    assert closed.exit_code == 0, closed.output
    assert "closed at snapshot 0; contestation until " in closed.output

    again = run("head", "close", str(session), "--timeout", "10")
    assert again.exit_code == 1
    assert again.output.strip().endswith(
        "Close refused by the node (CommandFailed: head is Closed)"
    )
    assert len(again.output.strip().splitlines()) == 1  # one line, no traceback

    fanned = run("head", "fanout", str(session), "--timeout", "10")
    assert fanned.exit_code == 0, fanned.output
    assert "finalized; 3 outputs, 30,000,000 lovelace back on layer 1" in fanned.output
    assert double.head.status == "Idle" and double.violations == []


def test_head_commands_refuse_a_local_session_and_unknown_parties(tmp_path: Path) -> None:
    assert run("init", str(tmp_path / "sess")).exit_code == 0
    session = str(tmp_path / "sess" / "session.toml")
    local = run("head", "close", session)
    assert local.exit_code == 2 and NO_HEAD in local.output
    edit_session(tmp_path / "sess" / "session.toml", channel={"backend": "hydra"})
    stranger = run("head", "status", session, "--party", "mallory")
    assert stranger.exit_code == 2 and "'mallory' is not a party" in stranger.output
