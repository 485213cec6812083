"""A misbehaving party as its own OS process (test code, not a product feature).

``python -m tests.e2e.misbehaving_party SESSION --party NAME --out OUT --fault FAULT`` runs the
real ``zkadapt party`` code path with one change, as ``FAULT`` says:

* ``forged-proof``, ``garbage``, ``replay``: from round 2 on, the encrypted update it uploads
  is corrupted, while everything else (keys, channel, shares) is honest;
* ``overflow``: in round 2 it uploads an update with a valid proof whose every packed slot is
  far outside the quantization range (poisoning: the proof cannot see it; THREATS.md 3);
* ``noisy``: its updates are honest, but it posts every message it can to stall or split
  the others (THREATS.md sections 1-3): after each ``Submitted`` a signed entry of hostile
  JSON (an integer of 5,000 digits and lists nested 5,000 deep), a ``RoundDone`` and a
  ``RoundFailed`` before the cut, a ``PhaseClosed`` for every later round; a ``RoundFailed``
  vote before its decryption share; and a wrong digest in its ``RoundDone``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import zkadapt.assembly
import zkadapt.party
from zkadapt.channel.base import SignedEnvelope
from zkadapt.config import load_config
from zkadapt.protocol import paillier_ops
from zkadapt.protocol.ciphertexts import EncryptedUpdate
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    DecryptionShare,
    Message,
    PhaseClosed,
    RoundDone,
    RoundFailed,
    Submitted,
)
from zkadapt.protocol.round import RoundProtocol
from zkadapt.protocol.secure_aggregation import PaillierScheme

FAULTS = ("forged-proof", "garbage", "replay", "overflow", "noisy")
#: What the noisy party's RoundDone claims G(r) is.
WRONG_DIGEST = "e" * 64


class _OverflowingSpec:
    """The session's packing, except that every plaintext has all its bits set: each slot
    holds 2^w - 1, far above the 2^k - 1 an honest quantized value can reach."""

    def __init__(self, spec: Any) -> None:
        self._spec = spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spec, name)

    def pack(self, values: Any, weight: float) -> list[int]:
        honest = self._spec.pack(values, weight)
        return [(1 << (self._spec.slots_per_plaintext * self._spec.slot_bits)) - 1] * len(honest)


class MisbehavingPaillier(PaillierScheme):
    """Honest except for the update it seals from round 2 on."""

    fault = "forged-proof"

    def seal(self, round_, delta, n_samples, io):  # type: ignore[no-untyped-def]
        if self.fault == "overflow" and round_ == 2:
            public, _ = self.epochs.of_round(round_)
            me = io.ctx.party
            return paillier_ops.seal_update(
                public,
                _OverflowingSpec(self.spec),  # type: ignore[arg-type]
                paillier_ops.ProofContext(io.ctx.session_id, round_, me),
                delta,
                weight=self.weights[me],
                n_samples=self.declared[me],
            )
        honest = super().seal(round_, delta, n_samples, io)
        if self.fault in ("overflow", "noisy"):
            return honest
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
    if args.fault == "noisy":
        RoundProtocol.post = _noisy_post  # type: ignore[method-assign]
    config = load_config(args.session.resolve())
    zkadapt.party.run_party(
        config,
        args.party,
        out_dir=args.out.resolve(),
        key_path=args.session.resolve().parent / "keys" / f"{args.party}.skey",
        data_root=args.session.resolve().parent,
    )


_honest_post = RoundProtocol.post


def _noisy_post(self: RoundProtocol, message: Message) -> None:
    """Post ``message`` (its digest falsified if it is a ``RoundDone``) with the noise."""
    sid, me, r = self.ctx.session_id, self.ctx.party, message.round
    if isinstance(message, DecryptionShare):
        _honest_post(self, RoundFailed(sid, r, f"I say round {r} failed (before my share)"))
    if isinstance(message, RoundDone):
        message = RoundDone(sid, r, me, WRONG_DIGEST, message.accepted, message.metrics)
    _honest_post(self, message)
    if isinstance(message, Submitted):
        _post_hostile_json(self, r)
        _honest_post(self, RoundDone(sid, r, me, WRONG_DIGEST, (me,)))
        _honest_post(self, RoundFailed(sid, r, f"I say round {r} failed (before the cut)"))
        for later in range(r + 1, self.ctx.rounds + 1):
            _honest_post(self, PhaseClosed(sid, later, SUBMIT_PHASE, f"closing early in {r}"))


def _post_hostile_json(self: RoundProtocol, r: int) -> None:
    """Signed entries no parser may crash on: a 5,000-digit integer and deep nesting (each
    signed message once: the audit fails a log where one appears twice, a replayed row)."""
    honest = PhaseClosed(self.ctx.session_id, 1, SUBMIT_PHASE, f"x{r}").to_bytes()
    huge = honest.replace(b'"round":1', b'"round":' + b"9" * 5000, 1)
    assert huge != honest
    deep = b'{"type":"PhaseClosed","round":%d,"nested":' % r + b"[" * 5000 + b"]" * 5000 + b"}"
    for payload in (huge, deep):
        signature = self.identity.sign(payload)  # type: ignore[attr-defined]
        self.channel.post(SignedEnvelope(self.ctx.party, payload, signature))


if __name__ == "__main__":
    main()
