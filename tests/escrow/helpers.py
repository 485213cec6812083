"""Channel histories for escrow tests, built with real signed entries."""

from __future__ import annotations

import json
import time

from tests.fakes import make_keys
from zkadapt.channel.base import Entry, SignedEnvelope
from zkadapt.escrow.messages import Claim, EscrowDeposit, EscrowMessage, KillVote
from zkadapt.escrow.rules import EscrowTerms

SESSION = "5e" * 32
NAMES = ("alice", "bob", "carol")
KEYS, KEYRING = make_keys(list(NAMES))
DEPOSIT = 10_000_000


def terms(**overrides: object) -> EscrowTerms:
    base = dict(
        session=SESSION, parties=NAMES, deposit=DEPOSIT, rounds=3, quorum=2, silent_rounds=1
    )
    base.update(overrides)
    return EscrowTerms(**base)  # type: ignore[arg-type]


class History:
    """Appends signed entries in order, like a channel would."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def post(self, sender: str, payload: bytes) -> History:
        env = SignedEnvelope(sender, payload, KEYS[sender].sign(payload))
        self.entries.append(Entry(len(self.entries) + 1, env, time.time()))
        return self

    def message(self, sender: str, message: EscrowMessage) -> History:
        return self.post(sender, message.to_bytes())

    def protocol(self, sender: str, kind: str, round_: int, party: str | None = None) -> History:
        body = {"type": kind, "v": 1, "session": SESSION, "round": round_, "party": party or sender}
        return self.post(sender, json.dumps(body, sort_keys=True).encode())

    def deposits(self, *names: str, amount: int = DEPOSIT) -> History:
        for name in names:
            self.message(name, EscrowDeposit(SESSION, 0, name, amount, f"{name}#0"))
        return self

    def rounds(self, upto: int, *names: str, start: int = 1) -> History:
        for r in range(start, upto + 1):
            for name in names:
                self.protocol(name, "Submitted", r)
            for name in names:
                self.protocol(name, "RoundDone", r)
        return self

    def kill(self, voter: str, target: str, reason: str = "silent", round_: int = 2) -> History:
        return self.message(voter, KillVote(SESSION, round_, voter, target, reason))

    def claim(self, name: str) -> History:
        return self.message(name, Claim(SESSION, 3, name))
