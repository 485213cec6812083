"""``zkadapt head``: the session's Hydra head -- status, init, deposit, close, fanout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from zkadapt.cli.common import cli, errors, session_arg


@cli.group()
def head() -> None:
    """The session's Hydra head: status, init, deposit, close, fanout (docs/hydra.md)."""


def _head_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--party",
        "party",
        default=None,
        help="Whose hydra-node to send to [default: the first party's].",
    )(command)
    command = click.argument("session", type=click.Path(dir_okay=False))(command)
    return command


_wait_timeout = click.option(
    "--timeout",
    type=click.FloatRange(0.1, 30 * 86_400),
    default=None,
    help="Seconds to wait for the node [default: from the node's contestation and deposit "
    "periods, plus channel.hydra.layer1_timeout_s].",
)


_copy_out = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="The session's output directory: what the node reports (the close, the fanout) "
    "is added to its copy of the channel, OUT/hydra-channel.jsonl, which keeps the session "
    "readable after fanout [default: no copy].",
)


def _head_command(
    session: str,
    party: str | None,
    action: str | None,
    timeout: float | None,
    out: str | None = None,
) -> None:
    """Show the head (``action`` None) or run ``action``, then show the head again."""
    from zkadapt.config import load_config

    with errors():
        config = load_config(session_arg(session))
        from zkadapt.operator.head import head_summary, open_head, perform_action
        from zkadapt.progress import wait_progress

        record = None
        if out is not None:
            from zkadapt.assembly import channel_copies

            record = channel_copies(Path(out).resolve(), record=True).record
        channel = open_head(config, party, record=record)
        try:
            if action is not None:
                with wait_progress() as sink_for:
                    line = perform_action(
                        channel, action, timeout=timeout, progress=sink_for(action)
                    )
                click.echo(line)
            click.echo(head_summary(channel))
        finally:
            channel.close()


@head.command("status")
@_head_options
def head_status(session: str, party: str | None) -> None:
    """Show the head's status and which actions are possible now."""
    _head_command(session, party, None, None)


def _head_action_command(name: str, doc: str) -> None:
    @head.command(name, help=doc)
    @_head_options
    @_wait_timeout
    @_copy_out
    def command(session: str, party: str | None, timeout: float | None, out: str | None) -> None:
        _head_command(session, party, name, timeout, out)


_head_action_command("init", "Open a new head with every party (Init; hydra 2.x opens at once).")
_head_action_command("close", "Close the open head (Close); fanout after the contestation period.")
_head_action_command("fanout", "Fan out a closed head's UTxO to layer 1 (waits for ReadyToFanout).")


@head.command("deposit")
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--party", "party", required=True, help="Whose funds, key and hydra-node.")
@click.option(
    "--lovelace",
    type=click.IntRange(1, None),
    required=True,
    help="How much to move into the head (the rest of the output comes back as change).",
)
@click.option(
    "--utxo-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="The party's layer-1 outputs, from `cardano-cli query utxo --address ADDR "
    "--output-json` [default: channel.hydra.layer1_utxo]. Not used with a [cardano] section, "
    "which reads layer 1 through Ogmios or Blockfrost.",
)
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The party's identity (= payment) key [default: SESSION_DIR/keys/PARTY.skey].",
)
@_wait_timeout
def head_deposit(
    session: str,
    party: str,
    lovelace: int,
    utxo_file: str | None,
    key: str | None,
    timeout: float | None,
) -> None:
    """Move a party's layer-1 funds into the open head, so that it can post.

    Asks the party's node for the deposit transaction (POST /commit), signs it with the
    party's key, submits it on layer 1 (through the session's [cardano] chain context, else
    through the node) and waits for CommitFinalized.
    """
    from zkadapt.config import load_config

    with errors():
        path = session_arg(session)
        config = load_config(path)
        from zkadapt.assembly import load_identity
        from zkadapt.keyfiles import KEY_SUFFIX
        from zkadapt.operator.funding import deposit_funds
        from zkadapt.progress import wait_progress

        key_path = Path(key).resolve() if key else path.parent / "keys" / f"{party}{KEY_SUFFIX}"
        identity = load_identity(config, party, key_path)
        with wait_progress() as sink_for:
            line = deposit_funds(
                config,
                party,
                identity,
                lovelace=lovelace,
                utxo_file=Path(utxo_file).resolve() if utxo_file else None,
                timeout=timeout,
                progress=sink_for(party),
            )
        click.echo(line)
