"""Local runner: every party as its own OS process on this machine (``zkadapt run``).

The runner is not a coordinator: it only starts ``zkadapt party`` processes, watches the
shared channel to draw progress, and afterwards reads the channel history to write the
report. Parties talk to each other only through the store and the channel, exactly as
they would across machines (DESIGN.md section 2).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from zkadapt.assembly import learner_for, open_party_store, open_session_channel
from zkadapt.atomic_file import write_atomic
from zkadapt.baselines import compute_baselines
from zkadapt.config import SessionConfig, load_config
from zkadapt.errors import ConfigError, ProtocolError, RoundsFailed, ZkAdaptError
from zkadapt.keyfiles import KEY_SUFFIX, SESSION_FILE, ensure_keys
from zkadapt.locks import RUN_LOCK, ExclusiveLock
from zkadapt.party import party_dir
from zkadapt.party_processes import (
    DEFAULT_MAX_RESTARTS,
    Entry,
    Launcher,
    PartyRun,
    PartySupervisor,
    launcher_from_env,
)
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import RoundDone, Submitted
from zkadapt.report import write_report
from zkadapt.round_failures import RoundFailureNotes
from zkadapt.session_report import Baselines, SessionReport
from zkadapt.summary import ReportFacts, build_report, split_metrics
from zkadapt.writable import local_write_failure

#: Each party process's combined stdout/stderr, inside ``OUT/parties/<name>/``.
LOG_FILE = "party.log"


def prepare_output(
    config: SessionConfig,
    out_dir: Path,
    *,
    overrides: Sequence[str] = (),
    id_without_overrides: str | None = None,
) -> Path:
    """Write the resolved session file into ``out_dir``; refuse to mix two sessions.

    Args:
        overrides: the command-line options that changed the session file (``--rounds``).
        id_without_overrides: the session id the file has without them; when it is the
            one ``out_dir`` holds, the refusal says the override is what changed the id.

    Raises:
        ConfigError: ``out_dir`` already holds a different session.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SESSION_FILE
    if path.exists():
        existing = load_config(path).session_id
        if existing != config.session_id:
            raise ConfigError(
                "--out", _other_session(out_dir, existing, config, overrides, id_without_overrides)
            )
    else:
        write_atomic(path, config.to_toml().encode("utf-8"), mode=0o644)
    return path


def _other_session(
    out_dir: Path,
    existing: str,
    config: SessionConfig,
    overrides: Sequence[str],
    id_without_overrides: str | None,
) -> str:
    """Why ``out_dir`` is refused, naming the override that changed the id when there is one."""
    held = f"{out_dir} already holds session {existing[:12]}"
    if overrides and id_without_overrides == existing:
        flags = " and ".join(overrides)
        return (
            f"{held}, but {flags} changed the session id to {config.session_id[:12]}: "
            f"drop {flags} to resume session {existing[:12]}, or choose another --out "
            "for the changed session"
        )
    return f"{held}; choose another output directory"


def _party_runs(
    config: SessionConfig, session_file: Path, out_dir: Path, key_dir: Path, data_root: Path
) -> list[PartyRun]:
    """Each party's ``zkadapt party`` arguments and log file (its folder is created here)."""
    runs = []
    for name in config.party_names:
        home = party_dir(out_dir, name)
        home.mkdir(parents=True, exist_ok=True)
        args = [
            "party",
            str(session_file),
            "--party",
            name,
            "--out",
            str(out_dir),
            "--key",
            str(key_dir / f"{name}{KEY_SUFFIX}"),
            "--data-root",
            str(data_root),
            "--quiet",
        ]
        template = config.cardano.payment_key_for(name) if config.cardano else None
        if template:  # relative to the session file, not to OUT where the party reads it
            args += ["--payment-key", str(data_root / template)]
        runs.append(PartyRun(name, args, home / LOG_FILE))
    return runs


def _watch(
    config: SessionConfig, out_dir: Path, supervisor: PartySupervisor, console: Console
) -> SessionHistory:
    """Draw one progress bar per party from the channel until every process has ended.

    The bars refresh from this loop (no refresh thread), so the process stays
    single-threaded and a party restarted by forking it is safe.
    """
    history = SessionHistory(config.session_id, config.party_names, config.channel_rules())
    channel = open_session_channel(config, out_dir, record=True)  # readable after fanout
    rounds = config.session.rounds
    progress = Progress(
        TextColumn("{task.fields[party]:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        auto_refresh=False,
    )
    tasks = {n: progress.add_task("starting", total=rounds, party=n) for n in config.party_names}
    failures = RoundFailureNotes(config.close_votes)
    try:
        with progress:
            while True:
                running = supervisor.poll()
                for posted in history.extend(channel.wait(history.last_seq, 0.25)):
                    _show(progress, tasks, posted.sender, posted.message, console)
                    _tell_failure(failures.add(posted), console)
                progress.refresh()
                if not running:
                    for line in failures.add_all(history.extend(channel.history(history.last_seq))):
                        _tell_failure(line, console)
                    break
    finally:
        channel.close()
    return history


def _tell_failure(line: str | None, console: Console) -> None:
    """Print a failed round's reasons above the progress bars, as soon as it is posted."""
    if line:
        console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)


def _show(
    progress: Progress, tasks: dict[str, Any], sender: str, message: Any, console: Console
) -> None:
    task = tasks.get(sender)
    if task is None:
        return
    if isinstance(message, Submitted):
        progress.update(task, description=f"round {message.round}: submitted, collecting")
    elif isinstance(message, RoundDone):
        global_metrics, _ = split_metrics(message.metrics)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(global_metrics.items()))
        progress.update(
            task, completed=message.round, description=f"round {message.round} done: {shown}"
        )


def _fund_head(config: SessionConfig, key_dir: Path, console: Console) -> None:
    """Deposit into a Hydra head for every party that has nothing there to post with.

    A hydra 2.x head opens empty; ``channel.hydra.deposit_lovelace`` says how much each
    such party deposits (docs/hydra.md). Nothing happens on any other channel.
    """
    if config.channel.backend != "hydra" or config.channel.hydra.deposit_lovelace == 0:
        return
    from zkadapt.assembly import load_identity
    from zkadapt.operator.funding import fund_parties
    from zkadapt.progress import wait_progress

    identities = {
        name: load_identity(config, name, key_dir / f"{name}{KEY_SUFFIX}")
        for name in config.party_names
    }
    with wait_progress(console) as sink_for:
        lines = fund_parties(config, identities, sink_for=sink_for)
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


def _publish_exports(config: SessionConfig, out_dir: Path) -> None:
    """Copy the global model's export (e.g. the PEFT adapter) from the first party to ``out_dir``.

    Every party holds the same G(R), so any party's export is the session's result.
    """
    home = party_dir(out_dir, config.party_names[0])
    for name in ("adapter", "merged"):
        source = home / name
        if source.is_dir():
            shutil.rmtree(out_dir / name, ignore_errors=True)
            shutil.copytree(source, out_dir / name)


def _with_escrow(
    config: SessionConfig, report: SessionReport, out_dir: Path, console: Console
) -> SessionReport:
    """Add a layer-1 escrow's settlement, as the parties' ``result.json`` tell it, to the
    report and the console (docs/escrow.md, "During a run")."""
    if config.escrow.deadline is None or config.cardano is None:
        return report
    from zkadapt.operator.party_escrow import escrow_line, session_escrow
    from zkadapt.party import RESULT_FILE

    results = {}
    for name in config.party_names:
        try:
            results[name] = json.loads((party_dir(out_dir, name) / RESULT_FILE).read_text())
        except (OSError, ValueError):
            continue  # a party that never finished wrote none
    account = session_escrow(results)
    if account is None:
        return report
    console.print(escrow_line(account), highlight=False, soft_wrap=True, markup=False)
    return dataclasses.replace(report, escrow=account)


def run_session(
    config: SessionConfig,
    *,
    out_dir: Path,
    key_dir: Path,
    data_root: Path,
    baselines: bool = True,
    console: Console | None = None,
    overrides: Sequence[str] = (),
    without_overrides: SessionConfig | None = None,
    max_restarts: int = DEFAULT_MAX_RESTARTS,
    party_main: Entry | None = None,
) -> SessionReport:
    """Run every party locally, then write ``report.json`` and plots into ``out_dir``.

    The runner holds ``OUT/run.lock`` for the whole run (each party it starts takes its own
    party lock): a second ``zkadapt run`` on one ``--out`` used to post a second set of
    updates into the same session (issue 17), and is now refused at once.

    A party that dies is reported at once and restarted up to ``max_restarts`` times
    (:mod:`zkadapt.party_processes`); ``failed_parties`` in the report lists only the
    parties that did not finish, and ``restarts`` how often each one was restarted.

    ``party_main`` is the ``zkadapt`` entry point: given, each party is forked from this
    process (torch and the learner already imported), unless ``$ZKADAPT_PARTY_START`` is
    ``subprocess``; without it every party is a fresh ``python -m zkadapt party``.

    ``overrides`` names the command-line options that changed the session file and
    ``without_overrides`` is the file as written; with them, refusing an ``out_dir`` that
    holds the unchanged session says that the override changed the session id.

    Raises:
        LockHeld: another ``zkadapt run`` holds this ``out_dir``.
        ProtocolError: a party process failed and the session did not complete.
    """
    console = console or Console(stderr=True)
    try:
        with ExclusiveLock(out_dir / RUN_LOCK, f"zkadapt run on {out_dir}") as lock:
            return _run_locked(
                config,
                out_dir=out_dir,
                key_dir=key_dir,
                data_root=data_root,
                baselines=baselines,
                console=console,
                overrides=overrides,
                without_overrides=without_overrides,
                max_restarts=max_restarts,
                launch=launcher_from_env(
                    party_main, close_in_child=[fd for fd in [lock.fileno()] if fd]
                ),
            )
    except (OSError, ZkAdaptError) as exc:
        failure = local_write_failure(exc)  # the runner's own files: one line, not a traceback
        if failure is None:
            raise
        raise failure from None


def _run_locked(
    config: SessionConfig,
    *,
    out_dir: Path,
    key_dir: Path,
    data_root: Path,
    baselines: bool,
    console: Console,
    overrides: Sequence[str],
    without_overrides: SessionConfig | None,
    max_restarts: int,
    launch: Launcher,
) -> SessionReport:
    """:func:`run_session`'s body, run while the ``--out`` lock is held."""
    if config.storage.backend != "local" or config.storage.encrypt:  # storage errors first
        for name in config.party_names:
            open_party_store(config, name, out_dir)
    learner_for(config, config.party_names[0], data_root=data_root)  # data errors fail fast, here
    config = ensure_keys(config, key_dir)
    plain = ensure_keys(without_overrides, key_dir) if without_overrides and overrides else None
    session_file = prepare_output(
        config,
        out_dir,
        overrides=overrides,
        id_without_overrides=plain.session_id if plain else None,
    )
    console.print(
        f"session {config.session_id[:12]}: {len(config.parties)} parties, "
        f"{config.session.rounds} rounds -> {out_dir}"
    )
    _fund_head(config, key_dir, console)
    started = time.monotonic()
    supervisor = PartySupervisor(
        _party_runs(config, session_file, out_dir, key_dir, data_root),
        launch=launch,
        console=console,
        max_restarts=max_restarts,
    )
    supervisor.start_all()
    try:
        history = _watch(config, out_dir, supervisor, console)
    finally:
        if not supervisor.stopped and any(not run.done for run in supervisor.runs):
            supervisor.stop_all("the runner stopped")
    wall = time.monotonic() - started
    failed = supervisor.failed()
    _publish_exports(config, out_dir)
    baseline = None
    if baselines and not failed:
        console.print("training baselines (each party alone, and all data pooled)...")
        baseline = Baselines.from_json(compute_baselines(config, data_root=data_root))
    report = build_report(
        ReportFacts.of(config),
        history,
        baselines=baseline,
        wall_s=wall,
        failed_parties=failed,
        restarts=supervisor.restarts(),
    )
    report = _with_escrow(config, report, out_dir, console)
    write_report(report, out_dir)
    if failed and report.completed:  # the others finished, but a party did not: say so
        name, line = next(iter(sorted(failed.items())))
        raise ProtocolError(f"{name} did not finish: {line}", party=name)
    if not report.completed:
        if failed:
            name, line = next(iter(sorted(failed.items())))
            raise ProtocolError(f"session did not complete; {name} failed: {line}", party=name)
        raise ProtocolError(
            f"session did not complete: {len(report.rounds)} of {config.session.rounds} rounds "
            f"are on the channel (see {out_dir / 'parties'}/*/{LOG_FILE})"
        )
    failed_rounds = [r for r in report.rounds if r.failure is not None]
    if failed_rounds:  # the session went on past them, but the user must not read "success"
        first = failed_rounds[0]
        raise RoundsFailed(
            f"session finished, but {len(failed_rounds)} of {config.session.rounds} rounds "
            f"failed (first: round {first.round}: {first.failure}); report in {out_dir}"
        )
    return report
