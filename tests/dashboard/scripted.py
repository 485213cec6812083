"""A session whose ledger the test writes itself, with the protocol's own messages.

The channel is a real :class:`~zkadapt.channel.local.LocalLedger` file (what the dashboard
reads), every entry is signed by the party's real identity key, and messages are the
protocol's dataclasses — only the training is left out, so each step is instant and the
test decides exactly what the channel holds.
"""

from __future__ import annotations

from pathlib import Path

from zkadapt.channel.base import SignedEnvelope
from zkadapt.channel.local import LocalLedger
from zkadapt.config import SessionConfig, example_config, with_overrides, with_public_keys
from zkadapt.crypto.identity import IdentityKey, Keyring
from zkadapt.escrow.messages import EscrowMessage
from zkadapt.keyfiles import SESSION_FILE
from zkadapt.protocol.messages import (
    SUBMIT_PHASE,
    Message,
    PhaseClosed,
    Rejected,
    RoundDone,
    RoundFailed,
    Submitted,
    sign,
)

NAMES = ("alice", "bob", "carol")


class ScriptedSession:
    """Writes ``OUT/session.toml`` and appends signed messages to ``OUT/ledger.sqlite``."""

    def __init__(self, out_dir: Path, *, rounds: int = 3) -> None:
        self.keys = {
            name: IdentityKey.from_seed(bytes([i + 1]) * 32) for i, name in enumerate(NAMES)
        }
        base = with_overrides(example_config("mnist"), rounds=rounds, parties=len(NAMES))
        self.config: SessionConfig = with_public_keys(
            base, {name: key.public.hex for name, key in self.keys.items()}
        )
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.session_file = out_dir / SESSION_FILE
        self.session_file.write_text(self.config.to_toml(), encoding="utf-8")
        self.ledger_path = out_dir / self.config.channel.path
        self._ledger: LocalLedger | None = None

    @property
    def sid(self) -> str:
        """The session id."""
        return self.config.session_id

    def ledger(self) -> LocalLedger:
        """The ledger, created on first use (as the first party to start would)."""
        if self._ledger is None:
            keyring = Keyring({n: k.public for n, k in self.keys.items()})
            self._ledger = LocalLedger(self.ledger_path, keyring)
        return self._ledger

    def post(self, sender: str, message: Message) -> int:
        """Sign ``message`` as ``sender`` and append it; returns its seq."""
        return self.ledger().post(sign(message, sender, self.keys[sender])).seq

    def post_escrow(self, sender: str, message: EscrowMessage) -> int:
        """Post an escrow message (deposit, kill vote, claim) signed by ``sender``."""
        payload = message.to_bytes()
        envelope = SignedEnvelope(sender, payload, self.keys[sender].sign(payload))
        return self.ledger().post(envelope).seq

    def submit(self, r: int, party: str) -> int:
        """``party`` submits its round-``r`` update."""
        digest = f"{r:02x}{NAMES.index(party):02x}" * 16
        uri = f"file:///store/zkadapt/{self.sid}/round-{r}/update/{party}.bin"
        return self.post(party, Submitted(self.sid, r, party, uri, digest, 407_336, 1000))

    def close_phase(self, r: int, by: str = "alice") -> int:
        """``by`` closes round ``r``'s submit phase."""
        return self.post(by, PhaseClosed(self.sid, r, SUBMIT_PHASE, "all submitted"))

    def reject(self, r: int, party: str, reason: str, by: str = "alice") -> int:
        """``by`` rejects ``party``'s round-``r`` update."""
        return self.post(by, Rejected(self.sid, r, party, reason))

    def done(self, r: int, party: str, accepted: tuple[str, ...], accuracy: float) -> int:
        """``party`` posts its ``RoundDone`` for ``r`` with made-up metrics."""
        metrics = {
            "accuracy": accuracy + 0.01 * NAMES.index(party),
            "loss": 2.0 - accuracy,
            "global_accuracy": accuracy,
            "global_loss": 2.0 - accuracy,
        }
        timing = {"train_s": 1.0 + r, "collect_s": 0.5}
        return self.post(
            party, RoundDone(self.sid, r, party, "ab" * 32, accepted, metrics, 2.0 + r, timing)
        )

    def fail(self, r: int, reason: str, by: str = "alice") -> int:
        """``by`` declares round ``r`` below quorum."""
        return self.post(by, RoundFailed(self.sid, r, reason))

    def play_round(
        self, r: int, *, rejected: str | None = None, reason: str = "digest mismatch"
    ) -> None:
        """A whole round: everyone submits, the phase closes, ``rejected`` is rejected, done."""
        for name in NAMES:
            self.submit(r, name)
        for name in NAMES[:2]:  # close_votes: a majority of the three
            self.close_phase(r, by=name)
        accepted = tuple(n for n in NAMES if n != rejected)
        if rejected:
            for name in NAMES:
                self.reject(r, rejected, reason, by=name)
        for name in NAMES:
            self.done(r, name, accepted, 0.5 + 0.1 * r)

    def close(self) -> None:
        """Close the ledger connection."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
