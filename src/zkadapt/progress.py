"""Progress display of one party: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zkadapt.protocol.phases import Phase
from zkadapt.protocol.round import EventSink


@contextlib.contextmanager
def party_progress(party: str, rounds: int, *, quiet: bool = False) -> Iterator[EventSink]:
    """Yield an event sink ``(round, phase, detail)`` that shows a party's progress.

    With ``quiet`` (or when stderr is not a terminal) each event is one timestamped line on
    stdout, which is what ``zkadapt run`` keeps in each party's log file.
    """
    if quiet or not sys.stderr.isatty():
        start = time.monotonic()

        def line(round_: int, phase: Phase, detail: str) -> None:
            print(
                f"[{time.monotonic() - start:8.2f}s] {party} round {round_} "
                f"{phase.value}: {detail}",
                flush=True,
            )

        yield line
        return
    progress = Progress(
        TextColumn(f"{party:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("starting", total=rounds)

    def bar(round_: int, phase: Phase, detail: str) -> None:
        done = round_ if phase in (Phase.DONE,) else max(0, round_ - 1)
        if phase is Phase.APPLY:
            done = round_
        progress.update(task, completed=done, description=f"round {round_} {phase.value}: {detail}")

    with progress:
        yield bar
