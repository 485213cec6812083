"""The ``zkadapt`` command: one module per group of subcommands, sharing :mod:`.common`.

Importing this package registers every subcommand on :data:`cli`.
"""

from __future__ import annotations

from zkadapt.cli import (
    escrow_commands,
    head_commands,
    membership_commands,
    session_commands,
)
from zkadapt.cli.common import cli, main
from zkadapt.cli.session_commands import EXAMPLES

__all__ = [
    "EXAMPLES",
    "cli",
    "escrow_commands",
    "head_commands",
    "main",
    "membership_commands",
    "session_commands",
]
