"""The membership commands (docs/membership.md): ``leave``, which refuses.

Parse, validate, explain; no protocol logic here: the round machine decides membership.
"""

from __future__ import annotations

import click

from zkadapt.cli.common import cli, errors, session_arg
from zkadapt.errors import UsageError


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
