"""The session commands: ``init``, ``run``, ``party``, ``keygen``, ``audit``, ``dashboard``.

Parse, validate, call session/party; no protocol logic here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from zkadapt.cli.common import cli, data_root, errors, main, session_arg, shared_out
from zkadapt.errors import ConfigError, RoundsFailed, UsageError
from zkadapt.party_processes import DEFAULT_MAX_RESTARTS

if TYPE_CHECKING:
    from zkadapt.config import SessionConfig

if TYPE_CHECKING:
    from zkadapt.config import SessionConfig
    from zkadapt.protocol.round import RoundOutcome

EXAMPLES = ("mnist", "qlora-smollm2", "qlora-smollm2-private")


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

    with errors():
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

    with errors():
        path = session_arg(session)
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


def _payment_key(
    config: SessionConfig, party: str, session_dir: Path, given: str | None
) -> Path | None:
    """``--payment-key``, else ``cardano.payment_keys`` (relative to the session file), else
    None: the identity key is the payment key."""
    if given:
        return Path(given).resolve()
    template = config.cardano.payment_key_for(party) if config.cardano else None
    return session_dir / template if template else None


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--party", "party", required=True, help="This party's name in the session file.")
@shared_out
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="This party's identity key [default: SESSION_DIR/keys/PARTY.skey].",
)
@data_root
@click.option("--quiet", is_flag=True, help="Plain log lines instead of a progress bar.")
@click.option(
    "--payment-key",
    "payment_key",
    type=click.Path(dir_okay=False),
    default=None,
    help="A layer-1 escrow's payment signing key [default: cardano.payment_keys, else the "
    "identity key].",
)
def party(
    session: str,
    party: str,
    out: str | None,
    key: str | None,
    data_root: str | None,
    quiet: bool,
    payment_key: str | None,
) -> None:
    """Run one party of SESSION (start once per party, on any machine, in any order)."""
    from zkadapt.config import load_config

    with errors():
        path = session_arg(session)
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
                payment_key_path=_payment_key(config, party, path.parent, payment_key),
            )
        party_finished(config, party, outcomes)


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The centre's identity key [default: SESSION_DIR/keys/kgc.skey].",
)
@shared_out
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

    with errors():
        path = session_arg(session)
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
@data_root
def audit(
    session: str, out: str | None, round_: int | None, partial: bool, data_root: str | None
) -> None:
    """Check a session from its channel and stored objects alone, without any secret."""
    from zkadapt.config import load_config

    with errors():
        path = session_arg(session)
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
    with errors():
        from zkadapt.dashboard import locate_session, serve_dashboard

        target = locate_session(session_arg(session), Path(out).resolve() if out else None)
        serve_dashboard(
            target,
            host=host,
            port=port,
            allow_actions=allow_actions,
            announce=lambda line: click.echo(line, err=line.startswith("warning:")),
        )
        click.echo("dashboard stopped")


def party_finished(config: SessionConfig, party: str, outcomes: Sequence[RoundOutcome]) -> None:
    """Print a party process's last line (``zkadapt party``, ``zkadapt join``).

    Raises:
        RoundsFailed: some rounds this process ran failed (the session went on past them;
            the exit code still says so).
    """
    last = outcomes[-1] if outcomes else None
    digest = last.model_sha256 if last else "(already complete)"
    click.echo(
        f"{party}: session {config.session_id[:12]} complete; G({config.session.rounds}) "
        f"sha256 {digest}"
    )
    failed = [o for o in outcomes if o.failure is not None]
    if failed:
        raise RoundsFailed(
            f"{party}: {len(failed)} of the rounds this process ran failed "
            f"(first: round {failed[0].round}: {failed[0].failure})"
        )
