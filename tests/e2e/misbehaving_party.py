"""A misbehaving party as its own OS process (test code, not a product feature).

``python -m tests.e2e.misbehaving_party SESSION --party NAME --out OUT --fault FAULT`` runs the
real ``zkadapt party`` code path with one change: from round 2 on, the encrypted update it
uploads is corrupted as ``FAULT`` says, while everything else (keys, channel, shares) is honest.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import zkadapt.assembly
import zkadapt.party
from zkadapt.config import load_config
from zkadapt.protocol.ciphertexts import EncryptedUpdate
from zkadapt.protocol.secure_aggregation import PaillierScheme

FAULTS = ("forged-proof", "garbage", "replay")


class MisbehavingPaillier(PaillierScheme):
    """Honest except for the update it seals from round 2 on."""

    fault = "forged-proof"

    def seal(self, round_, delta, n_samples, io):  # type: ignore[no-untyped-def]
        honest = super().seal(round_, delta, n_samples, io)
        if round_ < 2:
            self._first = honest
            return honest
        if self.fault == "garbage":
            return os.urandom(len(honest))
        if self.fault == "replay":
            return self._first
        update = EncryptedUpdate.from_bytes(honest)
        forged = update.proof.replace(b'"z1":"', b'"z1":"1', 1)
        width = self._keys[self.epoch_of(round_)][0].paillier.ciphertext_bytes
        return EncryptedUpdate(**{**update.__dict__, "proof": forged}).to_bytes(width)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("session", type=Path)
    parser.add_argument("--party", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--fault", choices=FAULTS, required=True)
    args = parser.parse_args()
    MisbehavingPaillier.fault = args.fault
    honest_make_scheme = zkadapt.assembly.make_scheme

    def make_scheme(config, strategy, **kwargs):  # type: ignore[no-untyped-def]
        scheme = honest_make_scheme(config, strategy, **kwargs)
        scheme.__class__ = MisbehavingPaillier
        return scheme

    zkadapt.assembly.make_scheme = make_scheme
    config = load_config(args.session.resolve())
    zkadapt.party.run_party(
        config,
        args.party,
        out_dir=args.out.resolve(),
        key_path=args.session.resolve().parent / "keys" / f"{args.party}.skey",
        data_root=args.session.resolve().parent,
    )


if __name__ == "__main__":
    main()
