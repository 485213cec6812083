"""``python -m zkadapt``: the same as the ``zkadapt`` command."""

from zkadapt.cli import main

main()
