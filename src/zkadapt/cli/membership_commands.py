"""The membership commands (docs/membership.md): ``join``, ``admit`` and ``leave`` (which
refuses).

Parse, validate, explain; no protocol logic here: the round machine decides membership,
:mod:`zkadapt.newcomer` reads its decisions and posts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from zkadapt.cli.common import cli, data_root, errors, session_arg, shared_out
from zkadapt.cli.session_commands import party_finished
from zkadapt.errors import UsageError
from zkadapt.protocol.messages import MAX_DEPOSIT, is_party_name

if TYPE_CHECKING:
    from zkadapt.config import SessionConfig

#: Options shared by the membership commands.
_key = click.option(
    "--key",
    "key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The identity key [default: SESSION_DIR/keys/NAME.skey; join creates it if missing].",
)


def _out_dir(path: Path, out: str | None) -> Path:
    return Path(out).resolve() if out else path.parent / "out"


def _key_path(path: Path, name: str, key: str | None) -> Path:
    from zkadapt.keyfiles import KEY_SUFFIX

    return Path(key).resolve() if key else path.parent / "keys" / f"{name}{KEY_SUFFIX}"


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--name", "name", required=True, help="The name to join as (a-z0-9_-, 1-32).")
@_key
@shared_out
@data_root
@click.option(
    "--deposit",
    type=click.IntRange(0, MAX_DEPOSIT),
    default=None,
    help="What this party deposits in the session's escrow (lovelace) [default: with the "
    "escrow on layer 1, escrow.deposit_lovelace, locked from the identity key's address; "
    "else 0].",
)
@click.option(
    "--node",
    default=None,
    help="hydra: the member's hydra-node API to post through, host:port or ws(s):// URL (a "
    "newcomer is no head party) [default: the first listed party's node in the session file].",
)
@click.option(
    "--data",
    "data",
    multiple=True,
    metavar="PATH",
    help='model.kind = "causal-lm" (required): this party\'s own text, a text file, folder '
    "or .jsonl as in data.parties, relative to --data-root (repeatable).",
)
@click.option(
    "--heldout",
    "heldout",
    multiple=True,
    metavar="PATH",
    help="causal-lm: this party's held-out text, as in data.heldout (repeatable) [default: "
    "the tail of its --data].",
)
@click.option("--quiet", is_flag=True, help="Plain log lines instead of a progress bar.")
def join(
    session: str,
    name: str,
    key: str | None,
    out: str | None,
    data_root: str | None,
    deposit: int | None,
    node: str | None,
    data: tuple[str, ...],
    heldout: tuple[str, ...],
    quiet: bool,
) -> None:
    """Ask to join a running SESSION as NAME, then run as a party from the admission round.

    Posts a JoinRequest signed with this party's own key (created if missing), replays the
    public history from G(0) checking every RoundDone digest (no party sends it a model),
    and takes part from the round after the boundary its request falls in. A causal LM
    trains on the text of --data and is evaluated globally on the listed parties' set.
    """
    from zkadapt.config import load_config

    with errors():
        if not is_party_name(name):
            raise UsageError(
                f"--name {name!r} is not a party name (a-z0-9_-, 1-32, a letter first)"
            )
        path = session_arg(session)
        config = load_config(path)
        from zkadapt.newcomer import check_joinable, own_text, read_roster, standing

        check_joinable(config, name)
        root = Path(data_root).resolve() if data_root else path.parent
        text = own_text(config, data, heldout, root)
        deposit = _deposit(config, deposit)
        via = _node(config, node)
        from zkadapt import assembly
        from zkadapt.party import NewcomerPlan, run_party  # heavy imports only after validation
        from zkadapt.progress import party_progress
        from zkadapt.writable import ensure_out_dir

        out_dir = _out_dir(path, out)
        ledger = out_dir / config.channel.path
        if config.channel.backend == "local" and not ledger.exists():
            raise UsageError(f"no ledger at {ledger}: pass the session's --out")
        key_path = _key_path(path, name, key)
        identity = assembly.newcomer_identity(config, name, key_path)
        now = standing(
            config, read_roster(config, ensure_out_dir(out_dir)), name, identity.public.hex, deposit
        )
        click.echo(
            f"{name}: key {key_path} (public {identity.public.hex[:16]}…); "
            + {
                "new": "asking to join",
                "pending": "request pending",
                "admitted": "admitted",
            }[now]
            + f" session {config.session_id[:12]}"
        )
        if via is not None and now == "new":  # it posts from an output of its own in the head
            from zkadapt.operator.funding import fund_newcomer

            funded = fund_newcomer(config, name, identity, via)
            click.echo(funded or f"{name}: holds funds in the head already")
        with party_progress(name, config.session.rounds, quiet=quiet) as on_event:
            outcomes = run_party(
                config,
                name,
                out_dir=out_dir,
                key_path=key_path,
                data_root=root,
                on_event=on_event,
                on_round_failed=lambda line: click.echo(line, err=True),
                newcomer=NewcomerPlan(deposit, via, text),
            )
        party_finished(config, name, outcomes)


def _node(config: SessionConfig, given: str | None) -> str | None:
    """The hydra-node a newcomer posts through: ``--node``, else the first listed party's
    (None on the local ledger, where ``--node`` means nothing)."""
    if config.channel.backend != "hydra":
        if given is not None:
            raise UsageError("--node is for a session on a hydra head (channel.backend = hydra)")
        return None
    return given or config.channel.hydra.api_for(config.party_names[0])


def _deposit(config: SessionConfig, given: int | None) -> int:
    """The deposit a newcomer declares: with the escrow on layer 1 exactly the agreed one
    (it locks that much before it asks), else what ``--deposit`` says (default 0)."""
    from zkadapt.operator.escrow import on_layer1

    if not on_layer1(config):
        return given or 0
    agreed = config.escrow.deposit_lovelace
    if given is not None and given != agreed:
        raise UsageError(
            f"--deposit {given}: the session's escrow takes exactly {agreed} lovelace "
            "(escrow.deposit_lovelace)"
        )
    return agreed


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.argument("candidate", required=False)
@click.option("--party", "party", required=True, help="The member who lists or votes.")
@click.option("--list", "list_", is_flag=True, help="List the pending join requests.")
@_key
@shared_out
def admit(
    session: str,
    candidate: str | None,
    party: str,
    list_: bool,
    key: str | None,
    out: str | None,
) -> None:
    """List SESSION's pending join requests, or vote as a member to admit CANDIDATE."""
    from zkadapt.config import load_config

    with errors():
        if list_ == (candidate is not None):
            raise UsageError("give either --list or a CANDIDATE to admit")
        path = session_arg(session)
        config = load_config(path)
        from zkadapt.newcomer import admit as post_admit
        from zkadapt.newcomer import pending, read_roster

        out_dir = _out_dir(path, out)
        if config.channel.backend == "local" and not (out_dir / config.channel.path).exists():
            raise UsageError(f"no ledger at {out_dir / config.channel.path}: pass --out")
        if candidate is None:
            history = read_roster(config, out_dir)
            roster = history.roster
            if roster is None or config.membership is None:
                raise UsageError("this session has no [membership]: nobody can ask to join")
            requests = pending(roster)
            r = roster.in_progress
            where = f"round {r} in progress" if r <= config.session.rounds else "every round cut"
            click.echo(
                f"session {config.session_id[:12]}: {where}, {len(requests)} pending join "
                f"request(s) (admission {config.membership.admission})"
            )
            for request in requests:
                click.echo(f"  {request.line(config.membership.votes)}")
            for newcomer in roster.admitted:
                click.echo(f"  {newcomer.name}: member from round {newcomer.round}")
            for refusal in roster.refused:
                click.echo(f"  {refusal.name or '?'}: refused: {refusal.reason}")
            return
        seq = post_admit(
            config, party, candidate, key_path=_key_path(path, party, key), out_dir=out_dir
        )
        click.echo(f"{party}: voted to admit {candidate} (channel entry {seq})")


@cli.command()
@click.argument("session", type=click.Path(dir_okay=False))
@click.option("--party", required=True, help="The party that wants to leave.")
def leave(session: str, party: str) -> None:
    """Refuse to leave SESSION before its end (docs/membership.md: there is no leave message)."""
    from zkadapt.config import load_config

    with errors():
        config = load_config(session_arg(session))
        after = config.membership.absent_rounds if config.membership is not None else None
        marked = (
            f"after {after} silent rounds it is marked absent (no longer counted for quorum or "
            "close votes)"
            if after is not None
            else "it is only left out of the rounds it misses"
        )
        raise UsageError(
            f"{party} cannot leave session {config.session_id[:12]} before its end: there is "
            f"no leave message. A party that stops posting is left out of rounds; {marked}, "
            "and with [escrow] the rules treat it as a party that left early (it loses its "
            "deposit)"
        )
