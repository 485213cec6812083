"""``zkadapt escrow``: a session's deposits, kill votes and settlement (docs/escrow.md)."""

from __future__ import annotations

from pathlib import Path

import click

from zkadapt.cli.common import cli, errors, session_arg


@cli.group()
def escrow() -> None:
    """Escrow of a session: deposits, kill votes and settlement (docs/escrow.md)."""


@escrow.command("status")
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Output directory holding a local ledger [default: SESSION_DIR].",
)
def escrow_status(session: str, out: str | None) -> None:
    """Show deposits, signals, kill votes and the settlement each party gets."""
    from zkadapt.config import load_config

    with errors():
        path = session_arg(session)
        config = load_config(path)
        from zkadapt.assembly import open_session_channel
        from zkadapt.escrow.status import status_lines
        from zkadapt.operator.escrow import terms_of

        terms = terms_of(config)
        channel = open_session_channel(config, Path(out).resolve() if out else path.parent)
        try:
            click.echo("\n".join(status_lines(channel.history(0), terms)))
        finally:
            channel.close()
