"""A plaintext party that replays its round-1 update in later rounds (test code only).

``python -m tests.e2e.replaying_party SESSION --party NAME --out OUT`` runs the real
``zkadapt party`` code path with one change: from round 2 on it uploads the object it sealed
for round 1, so the honest parties (and itself) reject it with "replay: object is for
round 1" and the round goes on without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import zkadapt.assembly
import zkadapt.party
from zkadapt.config import load_config
from zkadapt.protocol.schemes import PlainScheme, RoundIO


class ReplayingPlain(PlainScheme):
    """Honest in round 1; replays round 1's object afterwards."""

    first: bytes | None = None

    def seal(self, round_: int, delta: np.ndarray, n_samples: int, io: RoundIO) -> bytes:
        honest = super().seal(round_, delta, n_samples, io)
        if self.first is None:
            self.first = honest
        return honest if round_ == 1 else self.first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("session", type=Path)
    parser.add_argument("--party", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    def make_scheme(config: Any, strategy: Any, **kwargs: Any) -> PlainScheme:
        return ReplayingPlain(strategy)

    zkadapt.assembly.make_scheme = make_scheme
    session = args.session.resolve()
    zkadapt.party.run_party(
        load_config(session),
        args.party,
        out_dir=args.out.resolve(),
        key_path=session.parent / "keys" / f"{args.party}.skey",
        data_root=session.parent,
    )


if __name__ == "__main__":
    main()
