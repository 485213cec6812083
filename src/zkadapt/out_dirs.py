"""The layout of a session's output directory, in one place (``--out``).

``OUT/parties/<name>/`` is a party's own folder (checkpoints, log, result, its copy of a
Hydra channel); the composition root needs it as much as the party runner does.
"""

from __future__ import annotations

from pathlib import Path


def party_dir(out_dir: Path, party: str) -> Path:
    """Where a party keeps its checkpoints, log and result."""
    return out_dir / "parties" / party
