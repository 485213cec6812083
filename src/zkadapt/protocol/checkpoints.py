"""A party's own round checkpoints: what it replays after a crash (DESIGN.md section 3).

Each applied round r is saved as ``<dir>/round-<r:04d>/`` in the PEFT-shaped checkpoint
format of :mod:`zkadapt.learning.checkpoint` (config.json + model.safetensors holding only
the trainable tensors), plus ``round-<r:04d>.momentum.safetensors`` beside it for the
outer optimizer's momentum when the strategy keeps one (written first, so a complete round
directory always has it).
The round directory appears atomically, so a crash leaves the whole checkpoint or none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save

from zkadapt.atomic_file import write_atomic
from zkadapt.learning.checkpoint import load_checkpoint, save_checkpoint

_ROUND_DIR = re.compile(r"^round-(\d{4,})$")
MOMENTUM_SUFFIX = ".momentum.safetensors"


@dataclass(frozen=True)
class SavedRound:
    """G(round) as this party applied it."""

    round: int
    state: dict[str, np.ndarray]
    momentum: np.ndarray | None
    model_sha256: str
    meta: dict[str, Any] = field(default_factory=dict)


class RoundCheckpoints:
    """Round checkpoints of one party in one directory."""

    def __init__(self, directory: Path, *, session_id: str, model_type: str) -> None:
        self.directory = directory
        self.session_id = session_id
        self.model_type = model_type

    def path(self, round_: int) -> Path:
        """Directory of round ``round_``'s checkpoint."""
        return self.directory / f"round-{round_:04d}"

    def save(self, saved: SavedRound) -> Path:
        """Write a round checkpoint (atomically) and return its directory."""
        meta = {
            **saved.meta,
            "type": self.model_type,
            "session_id": self.session_id,
            "round": saved.round,
            "model_sha256": saved.model_sha256,
        }
        target = self.path(saved.round)
        if saved.momentum is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(self._momentum_path(saved.round), save({"momentum": saved.momentum}))
        save_checkpoint(target, saved.state, meta)
        return target

    def _momentum_path(self, round_: int) -> Path:
        return self.directory / f"round-{round_:04d}{MOMENTUM_SUFFIX}"

    def rounds(self) -> list[int]:
        """Rounds with a complete checkpoint, ascending."""
        if not self.directory.is_dir():
            return []
        found = (_ROUND_DIR.match(p.name) for p in self.directory.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def latest(self, accept: Callable[[SavedRound], bool] | None = None) -> SavedRound | None:
        """The newest checkpoint of this session (that ``accept`` admits), or None."""
        for round_ in reversed(self.rounds()):
            saved = self.at(round_)
            if saved is not None and (accept is None or accept(saved)):
                return saved
        return None

    def at(self, round_: int) -> SavedRound | None:
        """Round ``round_``'s checkpoint of this session, or None."""
        state, meta = load_checkpoint(self.path(round_))
        if meta.get("session_id") != self.session_id:
            return None
        momentum_path = self._momentum_path(round_)
        momentum = load_file(str(momentum_path))["momentum"] if momentum_path.exists() else None
        return SavedRound(round_, state, momentum, str(meta["model_sha256"]), meta)

    def latest_digest(self) -> str:
        """Model digest of the newest checkpoint ("" when there is none)."""
        saved = self.latest()
        return saved.model_sha256 if saved else ""
