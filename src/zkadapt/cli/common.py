"""What every ``zkadapt`` subcommand shares: the group, error mapping and common options.

Every :class:`~zkadapt.errors.ZkAdaptError` becomes one line on stderr and its exit code
(2 for configuration and usage mistakes), never a traceback (STYLE rule 9).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from zkadapt import __version__
from zkadapt.errors import ZkAdaptError


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """Map library errors to one-line messages with their exit codes."""
    try:
        yield
    except ZkAdaptError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


#: ``--out`` of the commands that join a running session (``party``, ``keygen``).
shared_out = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared directory for the local store and ledger [default: SESSION_DIR/out].",
)

data_root = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Where a relative data.path resolves [default: SESSION_DIR].",
)


def session_arg(path: str) -> Path:
    return Path(path).expanduser().resolve()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="zkadapt")
def cli() -> None:
    """ZK-ADAPT: decentralized, private federated fine-tuning."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become one ``error:`` line and exit code 2."""
    try:
        cli.main(args=argv, prog_name="zkadapt", standalone_mode=False)
    except click.UsageError as exc:
        sub = f" {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else ""
        hint = f" (see `zkadapt{sub} --help`)"
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
