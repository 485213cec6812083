"""Where the dashboard reads a session from: the session file, its ledger and its report.

:func:`locate_session` resolves the command line (session file, ``--out``) to a
:class:`SessionTarget`; :class:`LedgerWatcher` follows that session's channel through the
same client the parties use (:func:`zkadapt.assembly.open_channel_at`, which verifies every
signature and hash-chain link), feeding a :class:`~zkadapt.dashboard.view.SessionView`.
A missing ledger means "not started yet" (the watcher waits for it and never creates it); an
unreadable or tampered one is reported on the page, never raised into the server.

On a ``hydra`` session the watcher is a read-only client of the first party's hydra-node
(:func:`zkadapt.assembly.open_session_channel`, as the audit and observers use); it also
reports the head's status and lifecycle and runs the operator actions
(:meth:`LedgerWatcher.perform`) through :func:`zkadapt.operator.head.perform_action`. Once
the head is gone (fanned out and forgotten, or the nodes shut down), the channel is read
from the session's persisted copies (docs/hydra.md, "Reading a finished session") and the
page shows no head.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from zkadapt.channel import Channel, Entry
from zkadapt.config import SessionConfig, load_config, with_public_keys
from zkadapt.dashboard.actions import ActionRecord, HeadState
from zkadapt.dashboard.view import ChannelState, SessionView, Snapshot
from zkadapt.errors import ChannelError, ConfigError, ZkAdaptError
from zkadapt.keyfiles import SESSION_FILE
from zkadapt.session_report import Baselines

if TYPE_CHECKING:
    from zkadapt.channel.hydra import HydraChannel
    from zkadapt.channel.hydra.waits import WaitProgress

#: The report a finished ``zkadapt run`` writes (its baselines are drawn as reference lines).
REPORT_FILE = "report.json"
#: Operator actions kept for the page (oldest dropped first).
ACTION_LOG_LIMIT = 20


@dataclass(frozen=True)
class SessionTarget:
    """A validated session and the directory that holds its ledger (and maybe its report)."""

    config: SessionConfig
    session_file: Path
    out_dir: Path

    @property
    def ledger(self) -> Path:
        """The local ledger's path (``channel.path`` relative to the output directory)."""
        return self.out_dir / self.config.channel.path

    @property
    def hydra(self) -> bool:
        """Whether the session's channel is a Hydra head."""
        return self.config.channel.backend == "hydra"

    @property
    def location(self) -> str:
        """Where the channel is read: the ledger file, or the hydra-node it asks."""
        if self.hydra:
            return self.config.channel.hydra.api_for(self.config.party_names[0])
        return str(self.ledger)


def locate_session(session_file: Path, out: Path | None = None) -> SessionTarget:
    """Load ``session_file`` and find its output directory, as ``zkadapt audit`` does.

    Without ``out``: the session file's directory when the ledger is there, else
    ``SESSION_DIR/out``. A session file without public keys (an example given to
    ``zkadapt run``) is completed from ``OUT/session.toml``, the resolved file that run
    wrote, after checking that it is the same session.

    Raises:
        ConfigError: the session file is missing or invalid, or lacks keys that the
            output directory cannot supply.
    """
    config = load_config(session_file)
    if out is not None:
        out_dir = out
    elif (session_file.parent / config.channel.path).exists():
        out_dir = session_file.parent
    else:
        out_dir = session_file.parent / "out"
    if not config.has_keys:
        config = _resolved_config(config, out_dir / SESSION_FILE)
    return SessionTarget(config, session_file, out_dir)


def _resolved_config(config: SessionConfig, resolved_file: Path) -> SessionConfig:
    hint = "pass --out DIR of a `zkadapt run` (whose DIR/session.toml has them)"
    if not resolved_file.is_file():
        raise ConfigError("parties", f"the dashboard needs every party's public_key; {hint}")
    resolved = load_config(resolved_file)
    keys = {p.name: p.public_key or "" for p in resolved.parties}
    if sorted(keys) != config.party_names or not resolved.has_keys:
        raise ConfigError("--out", f"{resolved_file} is another session (its parties differ)")
    if with_public_keys(config, keys).session_id != resolved.session_id:
        raise ConfigError("--out", f"{resolved_file} is another session (its settings differ)")
    return resolved


class LedgerWatcher:
    """Follows one session's channel; thread-safe; never raises from :meth:`poll`."""

    def __init__(self, target: SessionTarget, *, allow_actions: bool = False) -> None:
        self.target = target
        self.view = SessionView(target.config, allow_actions=allow_actions)
        self._channel: Channel | None = None
        self._head: HydraChannel | None = None  # the same client, on a hydra session
        self._error: str | None = None
        self._baselines: Baselines | None = None
        self._report_mtime: float | None = None
        self._actions: list[ActionRecord] = []
        self._lock = threading.Lock()
        self._last_key = self._state_key()

    @property
    def error(self) -> str | None:
        """Why the channel could not be read, if it could not (shown on the page)."""
        return self._error

    def poll(self) -> bool:
        """Read what is new on the channel (and the report); returns whether anything changed.

        "Changed" is since the previous poll: new entries, a new error, a new report, a new
        head status or lifecycle event, or an operator action started or answered.
        """
        with self._lock:
            self._poll_channel()
            self._poll_report()
            key = self._state_key()
            changed, self._last_key = key != self._last_key, key
            return changed

    def _state_key(self) -> tuple[object, ...]:
        head = self.head_state()
        return (
            self.view.last_seq,
            self._error,
            self._report_mtime,
            tuple(self._actions),
            None if head is None else (head.status, head.head_id, len(head.events)),
        )

    def entries(self) -> list[Entry]:
        """A copy of the verified entries read so far (for a replay)."""
        with self._lock:
            return list(self.view.entries)

    def channel_state(self, entries: int | None = None) -> ChannelState:
        """The channel panel's data (``entries`` overrides the count, for a replay)."""
        waiting = self._channel is None and self._error is None
        count = self.view.last_seq if entries is None else entries
        head = self.head_state()
        if head is not None and entries is not None:  # a replay: events up to its entries
            head = replace(head, events=tuple(e for e in head.events if e.after_seq <= count))
        return ChannelState(
            backend=self.target.config.channel.backend,
            location=self.target.location,
            entries=count,
            chain_ok=self._error is None and not waiting,
            waiting=waiting,
            error=self._error,
            head=head,
        )

    def head_state(self) -> HeadState | None:
        """The Hydra head as the channel client sees it (None: local, or not connected)."""
        head = self._head
        if head is None:
            return None
        return HeadState(
            api=head.api,
            status=head.head_status,
            head_id=head.head_id,
            contestation_deadline=head.contestation_deadline,
            events=tuple(head.head_events),
        )

    def snapshot(self) -> Snapshot:
        """The page's data as of the last :meth:`poll`."""
        with self._lock:
            return self.view.snapshot(
                self.channel_state(), baselines=self._baselines, actions=tuple(self._actions)
            )

    def perform(self, name: str, timeout: float | None = None) -> ActionRecord:
        """Run operator action ``name`` on the head and record the node's answer.

        Blocks until the node answers (run it off the event loop); ``timeout`` None waits as
        long as the node's parameters allow (:mod:`zkadapt.channel.hydra.waits`). While it
        waits, the record says what the node reported so far; the answer is kept for the
        page: a refusal or a timeout is one line, never an exception.
        """
        from zkadapt.operator.head import NO_HEAD, perform_action

        record = ActionRecord(time.time(), name, None, f"{name}: sent; waiting for the node")
        with self._lock:
            head = self._head
            self._log(record)

        def update(new: ActionRecord) -> None:
            nonlocal record
            with self._lock:
                if record in self._actions:
                    self._actions[self._actions.index(record)] = new
                record = new

        def progress(state: WaitProgress) -> None:
            stage = f": {state.stage}" if state.stage else ""
            line = (
                f"{name}: waiting for {state.what}{stage} ({state.elapsed_s:,.0f} of at most "
                f"{state.total_s:,.0f} s)"
            )
            update(ActionRecord(record.at, name, None, line))

        try:
            if head is None:
                raise ChannelError(NO_HEAD if not self.target.hydra else self._not_connected())
            message = perform_action(head, name, timeout=timeout, progress=progress)
            ok = True
        except ZkAdaptError as exc:
            message, ok = f"{name} failed: {exc}", False
        except ValueError as exc:
            message, ok = str(exc), False
        done = ActionRecord(time.time(), name, ok, message)
        update(done)
        return done

    def _log(self, record: ActionRecord) -> None:
        self._actions.append(record)
        del self._actions[:-ACTION_LOG_LIMIT]

    def _not_connected(self) -> str:
        return f"not connected to the hydra-node at {self.target.location}: {self._error or '?'}"

    def replay_view(self) -> SessionView:
        """A fresh, empty view of the same session (a replay feeds it step by step)."""
        return SessionView(self.target.config, allow_actions=self.view.allow_actions)

    @property
    def baselines(self) -> Baselines | None:
        """Baselines from the finished run's report.json, if there is one."""
        return self._baselines

    def close(self) -> None:
        """Close the channel client. Idempotent."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel, self._head = None, None

    def _poll_channel(self) -> None:
        ledger = self.target.ledger
        try:
            if self._channel is None:
                self._channel = self._open()
                if self._channel is None:
                    return  # not started yet: wait, and never create the file
            self.view.extend(self._channel.history(self.view.last_seq))
            self._error = None
        except ZkAdaptError as exc:
            self._error = str(exc)
        except (OSError, ValueError) as exc:
            self._error = f"{ledger}: cannot read the channel: {exc}"

    def _open(self) -> Channel | None:
        """The session's channel client, or None while a local ledger does not exist yet."""
        config = self.target.config
        if self.target.hydra:  # the node, or the session's copies once its head is gone
            from zkadapt.assembly import open_session_channel
            from zkadapt.channel.hydra import HydraChannel

            channel = open_session_channel(config, self.target.out_dir)
            self._head = channel if isinstance(channel, HydraChannel) else None
            return channel
        if not self.target.ledger.exists():
            return None
        from zkadapt.assembly import open_channel_at

        return open_channel_at(config, self.target.ledger)

    def _poll_report(self) -> None:
        path = self.target.out_dir / REPORT_FILE
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime == self._report_mtime:
            return
        self._report_mtime = mtime
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # being written, or not ours: the channel is the source of truth
        if isinstance(report, dict) and report.get("session_id") == self.target.config.session_id:
            try:
                self._baselines = Baselines.from_json(report.get("baseline"))
            except ValueError:
                self._baselines = None  # not a report this version can read: draw none
