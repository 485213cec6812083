"""A party joins a running session (issue 20, docs/membership.md), with the real round driver.

Three listed parties run in threads over the in-memory channel and store; a fourth, dave,
whom no session file lists, starts once round 1 is cut: it posts its ``JoinRequest``,
follows the rounds before its admission by recomputing each G(r) from the channel (it is
sent no model), and takes part from the round after the boundary its request fell in. Every
party must end with the same digest of every round; with ``paillier`` the key epoch changes
at the admission so that dave holds a share of the new key and his update is in the sum.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fakes import MemoryChannel, MemoryStore, TinyLearner, make_keys
from tests.protocol.harness import NAMES, SESSION, digests, targets
from zkadapt.aggregation.strategy import make_strategy
from zkadapt.protocol.checkpoints import RoundCheckpoints
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.machine import MachineSpec
from zkadapt.protocol.masked import MaskedScheme
from zkadapt.protocol.membership import Candidacy, MembershipRules
from zkadapt.protocol.messages import KeyDealt, Submitted, decode
from zkadapt.protocol.round import PartyContext, RoundOutcome, RoundProtocol
from zkadapt.protocol.secure_aggregation import PaillierScheme

ROUNDS = 4
RULES = MembershipRules(admission="open", absent_rounds=None)
SAMPLES = {"alice": 100, "bob": 200, "carol": 300, "dave": 150}


class _Joining:
    """Three listed parties and dave, sharing one channel (outsiders allowed) and store."""

    def __init__(self, tmp: Path, scheme: str) -> None:
        self.tmp, self.scheme = tmp, scheme
        self.keys = make_keys([*NAMES, "dave"])[0]
        self.keyring = make_keys(NAMES)[1]
        self.channel = MemoryChannel(self.keyring, outsiders=True)
        self.store = MemoryStore()

    def protocol(self, name: str) -> RoundProtocol:
        candidacy = None
        if name not in NAMES:
            candidacy = Candidacy(self.keys[name].public.hex, SAMPLES[name])
        ctx = PartyContext(
            SESSION,
            name,
            tuple(NAMES),
            ROUNDS,
            2,
            5.0,
            0.01,
            close_votes=2,
            membership=RULES,
            candidacy=candidacy,
        )
        target = {**targets(), "dave": np.full(8, 9.0, dtype=np.float32)}[name]
        return RoundProtocol(
            ctx,
            identity=self.keys[name],
            channel=self.channel,
            store=self.store,
            learner=TinyLearner(target, SAMPLES[name]),
            strategy=make_strategy("fedavg"),
            checkpoints=RoundCheckpoints(self.tmp / name, session_id=SESSION, model_type="tiny"),
            scheme=self._scheme(name),
        )

    def _scheme(self, name: str) -> Any:
        if self.scheme == "none":
            return None
        cls = MaskedScheme if self.scheme == "masked" else PaillierScheme
        return cls(
            keyring=self.keyring,
            n_samples=SAMPLES[name],
            key_bits=512,
            threshold=2,
            keygen="dealer",
            dealer="alice",
            quant_bits=16,
            clip=10.0,
            refresh_every=None,
            timeout_s=5.0,
            workers=1,
            max_parties=8,
        )

    def run(self) -> dict[str, list[RoundOutcome] | Exception]:
        results: dict[str, list[RoundOutcome] | Exception] = {}

        def go(name: str) -> None:
            try:
                results[name] = self.protocol(name).run()
            except Exception as exc:  # asserted on below
                results[name] = exc

        threads = [threading.Thread(target=go, args=(n,)) for n in NAMES]
        for t in threads:
            t.start()
        self._await_cut_of_round_1()
        late = threading.Thread(target=go, args=("dave",))
        late.start()
        for t in [*threads, late]:
            t.join(120)
        return results

    def _await_cut_of_round_1(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            history = self.history()
            if history.cut(1) is not None:
                return
            time.sleep(0.005)
        raise AssertionError("round 1 was never cut")

    def history(self) -> SessionHistory:
        rules = MachineSpec("", tuple(NAMES), ROUNDS, 2, close_votes=2, membership=RULES)
        history = SessionHistory(SESSION, NAMES, rules)
        history.extend(self.channel.history(0))
        return history


@pytest.mark.parametrize("scheme", ["none", "paillier", "masked"])
def test_a_newcomer_joins_at_a_boundary_and_everyone_agrees(tmp_path: Path, scheme: str) -> None:
    session = _Joining(tmp_path, scheme)
    results = session.run()
    for name, result in results.items():
        assert isinstance(result, list), f"{name}: {result!r}"
    history = session.history()
    roster = history.roster
    assert roster is not None and [n.name for n in roster.admitted] == ["dave"], roster
    first = roster.admitted[0].round
    assert 2 < first <= ROUNDS  # dave asked once round 1 was cut: from round 3 at the earliest
    submitted = [
        p.message.round
        for p in history.posted
        if p.sender == "dave" and isinstance(p.message, Submitted)
    ]
    assert submitted == list(range(first, ROUNDS + 1))  # a member from its round, not before
    for r in range(first, ROUNDS + 1):
        done = history.round_done(r)
        assert "dave" in done and "dave" in done["alice"].accepted, (r, done)
    # dave recomputed every round before its admission himself: the same G(r) as everyone
    every = {name: digests(results[name]) for name in [*NAMES, "dave"]}  # type: ignore[arg-type]
    assert every["dave"] == every["alice"] == every["bob"] == every["carol"]
    assert len(every["dave"]) == ROUNDS
    assert not history.dropped and not history.violating
    if scheme != "none":
        dealt = [decode(e.envelope.payload) for e in session.channel.history(0)]
        keys = sorted((m.epoch, tuple(sorted(m.shares))) for m in dealt if isinstance(m, KeyDealt))
        assert keys == [(0, tuple(NAMES)), (1, (*NAMES, "dave"))]
