"""Refused join requests on the real local ledger (issue 20, docs/membership.md).

Every party's reader of the same ledger records the same refusals with the same reasons: a
duplicate name, a name over ``membership.max_parties``, a reused key. A request whose
signature does not verify against the key it carries never reaches the ledger: the channel
refuses it with a named reason (tests/channel/test_outsiders.py has the Hydra view's drop).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import make_keys
from zkadapt.channel.local import LocalLedger
from zkadapt.channel.outsiders import NOT_SELF_SIGNED, OutsiderPolicy
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ChannelError
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.machine import MachineSpec
from zkadapt.protocol.membership import MembershipRules
from zkadapt.protocol.messages import JoinRequest, PhaseClosed, introduction_reader, sign

SESSION = "a1" * 32
NAMES = ("alice", "bob", "carol")
KEYS, KEYRING = make_keys(list(NAMES))
RULES = MembershipRules(
    admission="open",
    max_parties=4,
    absent_rounds=None,
    listed_keys=frozenset(KEYRING[n].hex for n in NAMES),
)
POLICY = OutsiderPolicy(introduction=introduction_reader(SESSION))


def _request(name: str, key: IdentityKey, signer: IdentityKey | None = None):
    return sign(JoinRequest(SESSION, 1, name, key.public.hex, 100, 0), name, signer or key)


def _reader(party: str, path: Path) -> SessionHistory:
    ledger = LocalLedger(path, KEYRING, outsiders=POLICY)
    rules = MachineSpec(party, NAMES, 4, 2, close_votes=2, membership=RULES)
    history = SessionHistory(SESSION, NAMES, rules)
    history.extend(ledger.history(0))
    ledger.close()
    return history


def test_every_party_records_the_same_refusals_with_the_same_reasons(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = LocalLedger(path, KEYRING, outsiders=POLICY)
    dave, dave2, erin, frank = (IdentityKey.from_seed(bytes([i]) * 32) for i in range(1, 5))
    ledger.post(_request("dave", dave))  # pending: a member from round 2 at round 1's cut
    ledger.post(_request("dave", dave2))  # the same name with another key
    ledger.post(_request("erin", dave))  # dave's key again
    ledger.post(_request("frank", frank))  # a fifth member: over max_parties = 4
    with pytest.raises(ChannelError, match=NOT_SELF_SIGNED):
        ledger.post(_request("erin", erin, signer=frank))
    for name in ("alice", "bob"):  # cut round 1: dave is admitted
        ledger.post(sign(PhaseClosed(SESSION, 1, "submit", "deadline"), name, KEYS[name]))
    ledger.close()

    rosters = [_reader(party, path).roster for party in ("alice", "bob", "carol", "")]
    assert all(r == rosters[0] for r in rosters)  # every party and an observer agree
    roster = rosters[0]
    assert roster is not None
    assert [(n.name, n.round) for n in roster.admitted] == [("dave", 2)]
    assert [(f.name, f.reason) for f in roster.refused] == [
        ("dave", "the name dave is taken"),
        ("erin", "its public key is already used in this session"),
        ("frank", "over membership.max_parties (4)"),
    ]


ESCROW_RULES = MembershipRules(
    admission="vote",
    votes=2,
    max_parties=6,
    absent_rounds=None,
    listed_keys=RULES.listed_keys,
    min_deposit=10_000_000,
    lock_required=True,
)
LOCK = "ab" * 32 + "#0"


def test_with_a_layer1_escrow_a_request_without_deposit_or_lock_is_refused_alike(
    tmp_path: Path,
) -> None:
    """``SessionConfig.membership_rules`` with the escrow on layer 1 (tests/test_config.py):
    the deposit is required and the request must name its lock; the refusal is channel
    data, recorded the same way by every party and an observer."""
    path = tmp_path / "ledger.sqlite"
    ledger = LocalLedger(path, KEYRING, outsiders=POLICY)
    dave, erin, frank = (IdentityKey.from_seed(bytes([i]) * 32) for i in range(5, 8))
    asks = [
        ("dave", dave, 0, ""),  # no deposit at all
        ("erin", erin, 10_000_000, ""),  # the deposit declared, but no lock named
        ("frank", frank, 10_000_000, LOCK),  # both: pending until two members vote
    ]
    for name, key, deposit, lock in asks:
        request = JoinRequest(SESSION, 1, name, key.public.hex, 100, deposit, lock)
        ledger.post(sign(request, name, key))
    ledger.close()

    def roster_of(party: str):
        ledger = LocalLedger(path, KEYRING, outsiders=POLICY)
        rules = MachineSpec(party, NAMES, 4, 2, close_votes=2, membership=ESCROW_RULES)
        history = SessionHistory(SESSION, NAMES, rules)
        history.extend(ledger.history(0))
        ledger.close()
        return history.roster

    rosters = [roster_of(party) for party in ("alice", "bob", "carol", "")]
    assert all(r == rosters[0] for r in rosters)
    roster = rosters[0]
    assert roster is not None
    assert [(f.name, f.reason) for f in roster.refused] == [
        ("dave", "deposit 0 is below the required 10000000"),
        ("erin", "no escrow lock named (the escrow is on layer 1: lock the deposit first)"),
    ]
    assert [(q.name, q.lock, q.approved) for q in roster.pending] == [("frank", LOCK, False)]
