"""Progress displays: a rich progress bar on a terminal, plain lines otherwise.

:func:`party_progress` follows one party's rounds; :func:`wait_progress` follows waits on a
hydra-node (a deposit, the contestation period), which can last hours on a real network.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from zkadapt.protocol.phases import Phase
from zkadapt.protocol.round import EventSink

if TYPE_CHECKING:
    from zkadapt.channel.hydra.waits import ProgressSink, WaitProgress


@contextlib.contextmanager
def party_progress(party: str, rounds: int, *, quiet: bool = False) -> Iterator[EventSink]:
    """Yield an event sink ``(round, phase, detail)`` that shows a party's progress.

    With ``quiet`` (or when stderr is not a terminal) each event is one timestamped line on
    stdout, which is what ``zkadapt run`` keeps in each party's log file.
    """
    if quiet or not sys.stderr.isatty():
        start = time.monotonic()

        def line(round_: int, phase: Phase, detail: str) -> None:
            where = "escrow" if phase is Phase.ESCROW else f"round {round_} {phase.value}"
            print(f"[{time.monotonic() - start:8.2f}s] {party} {where}: {detail}", flush=True)

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
        if phase is Phase.ESCROW:  # a step around the rounds: keep it above the bar
            progress.console.print(f"{party}: escrow: {detail}", markup=False, highlight=False)
            return
        done = round_ if phase in (Phase.DONE,) else max(0, round_ - 1)
        if phase is Phase.APPLY:
            done = round_
        progress.update(task, completed=done, description=f"round {round_} {phase.value}: {detail}")

    with progress:
        yield bar


@contextlib.contextmanager
def wait_progress(
    console: Console | None = None, *, quiet: bool = False
) -> Iterator[Callable[[str], ProgressSink]]:
    """Yield ``sink_for(label)``: a progress sink for one wait on the hydra-node per label.

    On a terminal each label gets a rich bar: seconds waited of the most the wait may last,
    and what the node reported so far. With ``quiet`` (or when stderr is not a terminal) a
    label prints one plain line on stderr each time its stage changes.
    """
    console = console or Console(stderr=True)
    if quiet or not console.is_terminal:
        seen: dict[str, tuple[str, str]] = {}

        def lines(label: str) -> ProgressSink:
            def report(state: WaitProgress) -> None:
                if seen.get(label) != (state.what, state.stage):
                    seen[label] = (state.what, state.stage)
                    stage = f": {state.stage}" if state.stage else ""
                    console.print(
                        f"{label}: waiting for {state.what}{stage} "
                        f"(at most {state.total_s:,.0f} s)",
                        highlight=False,
                        soft_wrap=True,
                    )

            return report

        yield lines
        return
    progress = Progress(
        TextColumn("{task.fields[label]:>8}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} s"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    )
    tasks: dict[str, TaskID] = {}

    def bars(label: str) -> ProgressSink:
        def report(state: WaitProgress) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task("", total=None, label=label)
            stage = f": {state.stage}" if state.stage else ""
            progress.update(
                tasks[label],
                completed=state.elapsed_s,
                total=max(state.total_s, state.elapsed_s),
                description=f"{state.what}{stage}",
            )

        return report

    with progress:
        yield bars
