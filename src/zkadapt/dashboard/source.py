"""Where the dashboard reads a session from: the session file, its ledger and its report.

:func:`locate_session` resolves the command line (session file, ``--out``) to a
:class:`SessionTarget`; :class:`LedgerWatcher` follows that session's channel through the
same client the parties use (:func:`zkadapt.channel.open_channel`, which verifies every
signature and hash-chain link), feeding a :class:`~zkadapt.dashboard.view.SessionView`.
A missing ledger means "not started yet" (the watcher waits for it and never creates it); an
unreadable or tampered one is reported on the page, never raised into the server.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zkadapt.channel import Channel, Entry, open_channel
from zkadapt.config import SessionConfig, load_config, with_public_keys
from zkadapt.dashboard.view import ChannelState, SessionView, Snapshot
from zkadapt.errors import ConfigError, ZkAdaptError
from zkadapt.keyfiles import SESSION_FILE

#: The report a finished ``zkadapt run`` writes (its baselines are drawn as reference lines).
REPORT_FILE = "report.json"


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
        self._error: str | None = None
        self._baseline: dict[str, Any] = {}
        self._report_mtime: float | None = None
        self._lock = threading.Lock()

    @property
    def error(self) -> str | None:
        """Why the channel could not be read, if it could not (shown on the page)."""
        return self._error

    def poll(self) -> bool:
        """Read what is new on the channel (and the report); returns whether anything changed."""
        with self._lock:
            before = (self.view.last_seq, self._error, self._report_mtime)
            self._poll_channel()
            self._poll_report()
            return before != (self.view.last_seq, self._error, self._report_mtime)

    def entries(self) -> list[Entry]:
        """A copy of the verified entries read so far (for a replay)."""
        with self._lock:
            return list(self.view.entries)

    def channel_state(self, entries: int | None = None) -> ChannelState:
        """The channel panel's data (``entries`` overrides the count, for a replay)."""
        waiting = self._channel is None and self._error is None
        return ChannelState(
            backend=self.target.config.channel.backend,
            location=str(self.target.ledger),
            entries=self.view.last_seq if entries is None else entries,
            chain_ok=self._error is None and not waiting,
            waiting=waiting,
            error=self._error,
        )

    def snapshot(self) -> Snapshot:
        """The page's data as of the last :meth:`poll`."""
        with self._lock:
            return self.view.snapshot(self.channel_state(), baseline=self._baseline)

    def replay_view(self) -> SessionView:
        """A fresh, empty view of the same session (a replay feeds it step by step)."""
        return SessionView(self.target.config, allow_actions=self.view.allow_actions)

    @property
    def baseline(self) -> dict[str, Any]:
        """Baselines from the finished run's report.json, if there is one."""
        return self._baseline

    def close(self) -> None:
        """Close the channel client. Idempotent."""
        with self._lock:
            if self._channel is not None:
                self._channel.close()
                self._channel = None

    def _poll_channel(self) -> None:
        ledger = self.target.ledger
        try:
            if self._channel is None:
                if not ledger.exists():
                    return  # not started yet: wait, and never create the file
                self._channel = open_channel(
                    self.target.config.channel.backend,
                    keyring=_keyring(self.target.config),
                    path=ledger,
                )
            self.view.extend(self._channel.history(self.view.last_seq))
            self._error = None
        except ZkAdaptError as exc:
            self._error = str(exc)
        except (OSError, ValueError) as exc:
            self._error = f"{ledger}: cannot read the channel: {exc}"

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
            baseline = report.get("baseline")
            self._baseline = baseline if isinstance(baseline, dict) else {}


def _keyring(config: SessionConfig) -> Any:
    from zkadapt.keyfiles import channel_keyring_of

    return channel_keyring_of(config)
