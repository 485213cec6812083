"""The ``zkadapt`` command: parse, validate, call session/party. No protocol logic here.

Every :class:`~zkadapt.errors.ZkAdaptError` becomes one line on stderr and its exit code
(2 for configuration and usage mistakes), never a traceback (STYLE rule 9).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from zkadapt import __version__
from zkadapt.errors import ConfigError, RoundsFailed, UsageError, ZkAdaptError
from zkadapt.party_processes import DEFAULT_MAX_RESTARTS

EXAMPLES = ("mnist", "qlora-smollm2", "qlora-smollm2-private")


@contextlib.contextmanager
def _errors() -> Iterator[None]:
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
_shared_out = click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Shared directory for the local store and ledger [default: SESSION_DIR/out].",
)

_data_root = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Where a relative data.path resolves [default: SESSION_DIR].",
)


def _session_arg(path: str) -> Path:
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


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--example",
    type=click.Choice(EXAMPLES),
    default="mnist",
    show_default=True,
    help="Which ready session to start from.",
)
@click.option("--parties", type=click.IntRange(1, 1000), default=None, help="Number of parties.")
@click.option(
    "--kgc",
    is_flag=True,
    help="Encrypt with a threshold key dealt by an external key-generation centre: writes "
    "DIRECTORY/keys/kgc.skey (give it to the centre only) and sets privacy.kgc_public_key.",
)
def init(directory: str, example: str, parties: int | None, kgc: bool) -> None:
    """Write DIRECTORY/session.toml and one identity key per party in DIRECTORY/keys."""
    from zkadapt.config import example_config, with_overrides
    from zkadapt.keyfiles import SESSION_FILE, ensure_keys, ensure_kgc_key

    with _errors():
        target = Path(directory)
        session_file = target / SESSION_FILE
        if session_file.exists():
            raise UsageError(f"{session_file} already exists; choose an empty directory")
        config = with_overrides(example_config(example), parties=parties)
        config = ensure_keys(config, target / "keys")
        if kgc:
            config = ensure_kgc_key(config, target / "keys")
        target.mkdir(parents=True, exist_ok=True)
        session_file.write_text(config.to_toml(), encoding="utf-8")
        holders = [*config.party_names, *([config.dealer] if kgc else [])]
        click.echo(
            f"wrote {session_file} (session {config.session_id[:12]}) and keys for "
            f"{', '.join(holders)} in {target / 'keys'}"
        )


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default="zkadapt-out",
    show_default=True,
    help="Output directory: store, ledger, checkpoints, report.",
)
@click.option(
    "--rounds", type=click.IntRange(1, 100_000), default=None, help="Override session.rounds."
)
@click.option(
    "--parties",
    type=click.IntRange(1, 1000),
    default=None,
    help="Override the party list with N parties (fresh keys).",
)
@click.option(
    "--keys",
    "keys",
    type=click.Path(file_okay=False),
    default=None,
    help="Identity keys directory [default: SESSION_DIR/keys, or OUT/keys when the "
    "session file has no public keys].",
)
@click.option("--no-baselines", is_flag=True, help="Skip the local-only and centralized baselines.")
@click.option(
    "--max-restarts",
    type=click.IntRange(0, 100),
    default=DEFAULT_MAX_RESTARTS,
    show_default=True,
    help="How often to restart a party that dies (it resumes from its checkpoint).",
)
def run(
    session: str,
    out: str,
    rounds: int | None,
    parties: int | None,
    keys: str | None,
    no_baselines: bool,
    max_restarts: int,
) -> None:
    """Run every party of SESSION as its own process on this machine."""
    from zkadapt.config import load_config, with_overrides

    with _errors():
        path = _session_arg(session)
        plain = load_config(path)
        config = with_overrides(plain, rounds=rounds, parties=parties)
        flags = [f for f, v in (("--rounds", rounds), ("--parties", parties)) if v is not None]
        if config.external_dealer:
            raise UsageError(
                "the key of this session is dealt by an external key-generation centre: start "
                "each party with `zkadapt party` and the centre with `zkadapt keygen`"
            )
        # heavy imports only after validation
        from zkadapt.report import markdown_summary, markdown_time_split
        from zkadapt.session import run_session
        from zkadapt.writable import ensure_out_dir

        out_dir = ensure_out_dir(Path(out).resolve())
        key_dir = (
            Path(keys).resolve()
            if keys
            else (path.parent / "keys" if config.has_keys else out_dir / "keys")
        )
        report = run_session(
            config,
            out_dir=out_dir,
            key_dir=key_dir,
            data_root=path.parent,
            baselines=not no_baselines,
            overrides=flags,
            without_overrides=plain,
            max_restarts=max_restarts,
            party_main=main,
        )
        click.echo(markdown_summary(report))
        if split := markdown_time_split(report):
            click.echo(split)
        click.echo(
            f"report: {out_dir / 'report.json'}  plots: {out_dir / 'metrics.png'}, "
            f"{out_dir / 'report.html'}"
        )


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--party", "party", required=True, help="This party's name in the session file.")
@_shared_out
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="This party's identity key [default: SESSION_DIR/keys/PARTY.skey].",
)
@_data_root
@click.option("--quiet", is_flag=True, help="Plain log lines instead of a progress bar.")
def party(
    session: str, party: str, out: str | None, key: str | None, data_root: str | None, quiet: bool
) -> None:
    """Run one party of SESSION (start once per party, on any machine, in any order)."""
    from zkadapt.config import load_config

    with _errors():
        path = _session_arg(session)
        config = load_config(path)
        if not config.has_keys:
            raise ConfigError(
                "parties",
                "every party needs a public_key to run alone; "
                "create the session with `zkadapt init`",
            )
        if party not in config.party_names:
            raise ConfigError(
                "--party",
                f"{party!r} is not a party of this session ({', '.join(config.party_names)})",
            )
        from zkadapt.keyfiles import KEY_SUFFIX
        from zkadapt.party import run_party  # heavy imports only after validation
        from zkadapt.progress import party_progress
        from zkadapt.writable import ensure_out_dir

        out_dir = ensure_out_dir(Path(out).resolve() if out else path.parent / "out")
        key_path = Path(key).resolve() if key else path.parent / "keys" / f"{party}{KEY_SUFFIX}"
        root = Path(data_root).resolve() if data_root else path.parent
        with party_progress(party, config.session.rounds, quiet=quiet) as on_event:
            outcomes = run_party(
                config,
                party,
                out_dir=out_dir,
                key_path=key_path,
                data_root=root,
                on_event=on_event,
                on_round_failed=lambda line: click.echo(line, err=True),
            )
        last = outcomes[-1] if outcomes else None
        digest = last.model_sha256 if last else "(already complete)"
        click.echo(
            f"{party}: session {config.session_id[:12]} complete; G({config.session.rounds}) "
            f"sha256 {digest}"
        )
        failed = [o for o in outcomes if o.failure is not None]
        if failed:  # the session went on past them; the exit code still says so
            raise RoundsFailed(
                f"{party}: {len(failed)} of the rounds this process ran failed "
                f"(first: round {failed[0].round}: {failed[0].failure})"
            )


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The centre's identity key [default: SESSION_DIR/keys/kgc.skey].",
)
@_shared_out
@click.option(
    "--wait",
    "wait",
    type=click.FloatRange(0, None),
    default=None,
    help="Seconds to wait for every party's Joined [default: protocol.submit_timeout_s].",
)
def keygen(session: str, key: str | None, out: str | None, wait: float | None) -> None:
    """Deal SESSION's threshold key as an external key-generation centre (not a party).

    Waits for the parties to join, deals every key epoch, stores each share sealed to its
    party, announces the key on the channel signed by the centre's key, and forgets it.
    """
    from zkadapt.config import load_config

    with _errors():
        path = _session_arg(session)
        config = load_config(path)
        from zkadapt.keyfiles import KGC_KEY_FILE
        from zkadapt.kgc import check_kgc_session, run_kgc

        key_path = Path(key).resolve() if key else path.parent / "keys" / KGC_KEY_FILE
        check_kgc_session(config, key_path)  # bad input fails before any waiting
        out_dir = Path(out).resolve() if out else path.parent / "out"
        dealt = run_kgc(
            config,
            out_dir=out_dir,
            key_path=key_path,
            wait_s=config.protocol.submit_timeout_s if wait is None else wait,
            echo=click.echo,
        )
        click.echo(
            f"{config.dealer}: dealt {len(dealt)} key epoch(s) for session "
            f"{config.session_id[:12]}; no key material kept"
        )


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory holding the session's store and ledger [default: the session "
    "file's directory if the ledger is there, else SESSION_DIR/out].",
)
@click.option(
    "--round",
    "round_",
    type=click.IntRange(1, None),
    default=None,
    help="Show only this round (earlier rounds are still replayed).",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Pass an unfinished session on the rounds it completed (failed or missing rounds "
    "are still listed); without it, every planned round must be complete.",
)
@_data_root
def audit(
    session: str, out: str | None, round_: int | None, partial: bool, data_root: str | None
) -> None:
    """Check a session from its channel and stored objects alone, without any secret."""
    from zkadapt.config import load_config

    with _errors():
        path = _session_arg(session)
        config = load_config(path)
        if not config.has_keys:
            raise ConfigError("parties", "an audit needs every party's public_key")
        if out:
            out_dir = Path(out).resolve()
        elif (path.parent / config.channel.path).exists():
            out_dir = path.parent
        else:
            out_dir = path.parent / "out"
        if config.channel.backend == "local" and not (out_dir / config.channel.path).exists():
            raise UsageError(f"no ledger at {out_dir / config.channel.path}; pass --out")
        from zkadapt.audit import audit_from_files, format_report

        report = audit_from_files(
            config,
            out_dir=out_dir,
            data_root=Path(data_root).resolve() if data_root else path.parent,
            only_round=round_,
            partial=partial,
        )
        click.echo(format_report(report))
        if not report.ok:
            sys.exit(1)


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory holding the session's ledger (and report) [default: the session "
    "file's directory if the ledger is there, else SESSION_DIR/out].",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (only this one)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Offer operator actions on a Hydra session's head (Init, Close, Fanout), each "
    "confirmed in the page; the local channel has none. Read-only without it.",
)
def dashboard(session: str, out: str | None, host: str, port: int, allow_actions: bool) -> None:
    """Serve a live dashboard of SESSION in the browser (follows the channel as it grows)."""
    with _errors():
        from zkadapt.dashboard import locate_session, serve_dashboard

        target = locate_session(_session_arg(session), Path(out).resolve() if out else None)
        serve_dashboard(
            target,
            host=host,
            port=port,
            allow_actions=allow_actions,
            announce=lambda line: click.echo(line, err=line.startswith("warning:")),
        )
        click.echo("dashboard stopped")


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

    with _errors():
        path = _session_arg(session)
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


def _head_command(
    session: str, party: str | None, action: str | None, timeout: float | None
) -> None:
    """Show the head (``action`` None) or run ``action``, then show the head again."""
    from zkadapt.config import load_config

    with _errors():
        config = load_config(_session_arg(session))
        from zkadapt.operator.head import head_summary, open_head, perform_action
        from zkadapt.progress import wait_progress

        channel = open_head(config, party)
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
    def command(session: str, party: str | None, timeout: float | None) -> None:
        _head_command(session, party, name, timeout)


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
    "--output-json` [default: channel.hydra.layer1_utxo].",
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
    party's key, submits it on layer 1 through the node and waits for CommitFinalized.
    """
    from zkadapt.config import load_config

    with _errors():
        path = _session_arg(session)
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


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
