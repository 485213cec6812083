"""The OpShin escrow validator, compiled to Plutus V3 and evaluated with uplc.

Each case describes a transaction (inputs with their redeemers, outputs, signatories,
validity range), derives the V3 script context each escrow input is run with, and runs the
committed script with the session applied in uplc's CEK machine (the Plutus V3 cost model),
as a node's phase-2 check would. A rejection is also run through the traced build, whose
logs must hold the contract's own reason, so a case cannot pass by failing elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.escrow.helpers import DEPOSIT, NAMES, History, terms
from tests.escrow.pools import (
    AFTER,
    BEFORE,
    DEADLINE,
    OTHER_SESSION,
    PARTIES,
    ROUNDS,
    SESSION_ID,
    assert_rejected,
    key_hash,
    make_pool,
    run,
    second_ref,
    vote,
)
from zkadapt.escrow.blueprint import BUILDS, CONTRACT_DIR, opshin_build
from zkadapt.escrow.onchain import (
    BLUEPRINT,
    CLAIM,
    REFUND,
    EscrowError,
    EscrowScript,
    SignedKillVote,
    escrow_datum,
    kill_message,
    redeemer_for,
    settlement_tx,
    slash,
)
from zkadapt.escrow.rules import COMPLETED, Settlement, payouts, refunds, settlement_of
from zkadapt.escrow.script_context import Transaction, constr, key_address, tx_out, validity_range

ALL_BACK = {n: DEPOSIT for n in NAMES}
SHARE = DEPOSIT + DEPOSIT // 2  # alice's and bob's payout when carol is slashed


@pytest.fixture(scope="module")
def pool():
    return make_pool()


def entry(signed, *, round_=None):
    """A vote as the redeemer carries it: (voter index, round, key, signature)."""
    said = signed.round if round_ is None else round_
    return (PARTIES.index(signed.voter), said, signed.vkey, signed.signature)


def slash_carol(*votes):
    """``Slash`` against carol (datum index 2) with the given votes."""
    return slash([(2, [entry(v) for v in votes])])


def redeemer_for_shape(pool, slashed, votes):
    """The redeemer :func:`redeemer_for` builds for a settlement slashing ``slashed``."""
    return redeemer_for(Settlement(COMPLETED, pool.names, slashed, {}, ()), votes)


CAROL_SLASHED = {"alice": SHARE, "bob": SHARE}
AGAINST_CAROL = [entry(vote("alice", "carol")), entry(vote("bob", "carol"))]


# --- the parameter: one script per session -------------------------------------------------


def test_every_session_has_its_own_script_and_address(pool) -> None:
    other = EscrowScript(OTHER_SESSION)
    assert pool.script.script_hash != other.script_hash
    assert pool.script.script_hash != pool.script.traced.script_hash
    assert pool.script.plutus_version == "v3" and len(pool.script.compiled) < 8_000
    document = json.loads(BLUEPRINT.read_text())
    (validator,) = document["validators"]
    assert validator["parameters"][0]["schema"] == {"dataType": "bytes"}


def test_a_session_id_must_be_32_bytes_and_a_blueprint_must_take_it(tmp_path: Path) -> None:
    with pytest.raises(EscrowError, match="32 bytes"):
        EscrowScript(b"short")
    document = json.loads(BLUEPRINT.read_text())
    del document["validators"][0]["parameters"]
    (tmp_path / "plutus.json").write_text(json.dumps(document))
    with pytest.raises(EscrowError, match="one-parameter"):
        EscrowScript(SESSION_ID, tmp_path / "plutus.json")


# --- Claim ---------------------------------------------------------------------------------


def test_claim_signed_by_every_party_is_accepted(pool) -> None:
    result = run(pool, settlement_tx(pool, CLAIM, ALL_BACK, signers=NAMES))
    assert result.accepted, result
    assert 0 < result.cpu < 10_000_000_000 and 0 < result.memory < 14_000_000  # V3 tx limits


def test_claim_without_every_signature_is_rejected(pool) -> None:
    tx = settlement_tx(pool, CLAIM, ALL_BACK, signers=["alice", "bob"])
    assert_rejected(pool, tx, "a claim needs every party's signature")


def test_claim_that_does_not_refund_everyone_is_rejected(pool) -> None:
    tx = settlement_tx(pool, CLAIM, {"alice": 2 * DEPOSIT, "bob": DEPOSIT}, signers=NAMES)
    assert_rejected(pool, tx, "a claim must refund every deposit")


# --- Slash: signed kill votes --------------------------------------------------------------


def test_slash_with_signed_votes_from_a_majority_pays_the_rules_shares(pool) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol", round_=3))
    assert payouts(("alice", "bob", "carol"), ("carol",), DEPOSIT) == {**CAROL_SLASHED, "carol": 0}
    tx = settlement_tx(pool, redeemer, CAROL_SLASHED, validity=BEFORE)  # nobody signs the tx
    result = run(pool, tx)
    assert result.accepted, result
    assert result.cpu < 10_000_000_000 and result.memory < 14_000_000


def test_slash_without_a_majority_is_rejected(pool) -> None:
    tx = settlement_tx(pool, slash_carol(vote("alice", "carol")), CAROL_SLASHED, validity=BEFORE)
    assert_rejected(pool, tx, "a slash needs signed votes from a strict majority of the others")


def test_tx_signatures_are_no_votes(pool) -> None:
    """The old rule (signers are voters) no longer slashes: a vote must be signed evidence."""
    tx = settlement_tx(pool, slash([(2, [])]), CAROL_SLASHED, signers=NAMES, validity=BEFORE)
    assert_rejected(pool, tx, "a slash needs signed votes from a strict majority of the others")


def _mallory_signs_for_bob():
    forged = vote("bob", "carol", signer="mallory")
    return SignedKillVote("bob", "carol", 2, vote("bob", "carol").vkey, forged.signature)


FORGED = [
    (vote("bob", "carol", session=OTHER_SESSION), "a bad vote signature"),
    (vote("bob", "carol", victim="alice"), "a bad vote signature"),
    (_mallory_signs_for_bob(), "a bad vote signature"),
    (vote("bob", "carol", signer="mallory"), "a vote's key must be its voter's"),
]
FORGED_IDS = ["other-session", "other-victim", "forged-signature", "other-key"]


@pytest.mark.parametrize(("forged", "reason"), FORGED, ids=FORGED_IDS)
def test_a_vote_not_signed_by_its_voter_over_this_kill_is_rejected(pool, forged, reason) -> None:
    redeemer = slash_carol(vote("alice", "carol"), forged)
    assert_rejected(pool, settlement_tx(pool, redeemer, CAROL_SLASHED, validity=BEFORE), reason)


@pytest.mark.parametrize("forged", [f for f, _ in FORGED], ids=FORGED_IDS)
def test_votes_are_checked_off_chain_as_on_chain(forged) -> None:
    good = vote("bob", "carol")
    assert good.verify(SESSION_ID, key_hash("bob"), key_hash("carol"))
    assert not forged.verify(SESSION_ID, key_hash("bob"), key_hash("carol"))


def test_a_vote_must_carry_the_round_it_signed(pool) -> None:
    signed = vote("bob", "carol", round_=2)
    redeemer = slash([(2, [entry(vote("alice", "carol")), entry(signed, round_=3)])])
    tx = settlement_tx(pool, redeemer, CAROL_SLASHED, validity=BEFORE)
    assert_rejected(pool, tx, "a bad vote signature")


@pytest.mark.parametrize("round_", [0, ROUNDS + 1])
def test_a_vote_must_name_a_round_of_the_session(pool, round_) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol", round_=round_))
    tx = settlement_tx(pool, redeemer, CAROL_SLASHED, validity=BEFORE)
    assert_rejected(pool, tx, "a vote names a session round")


def test_a_voter_counts_once_and_never_against_itself(pool) -> None:
    twice = slash_carol(vote("alice", "carol"), vote("alice", "carol", round_=3))
    tx = settlement_tx(pool, twice, CAROL_SLASHED, validity=BEFORE)
    assert_rejected(pool, tx, "voters must be increasing party indices")
    itself = slash_carol(vote("alice", "carol"), vote("carol", "carol"))
    tx = settlement_tx(pool, itself, CAROL_SLASHED, validity=BEFORE)
    assert_rejected(pool, tx, "a party cannot vote against itself")


def test_a_slash_must_end_before_the_deadline(pool) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol"))
    for late in (
        validity_range(DEADLINE - 60_000, DEADLINE, upper_closed=True),  # includes the deadline
        validity_range(DEADLINE - 60_000),  # no upper bound
        AFTER,
    ):
        tx = settlement_tx(pool, redeemer, CAROL_SLASHED, validity=late)
        assert_rejected(pool, tx, "a slash must end before the deadline")


def test_slash_that_underpays_a_remaining_party_is_rejected(pool) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol"))
    tx = settlement_tx(pool, redeemer, {"alice": 2 * DEPOSIT, "bob": DEPOSIT}, validity=BEFORE)
    assert_rejected(pool, tx, "every remaining party must get its share")


def test_a_slash_pays_the_remainder_lovelace_as_the_rules_do() -> None:
    """Four parties, an odd deposit, dave slashed: 10,000,001 split three ways, remainder 2."""
    four = make_pool(("alice", "bob", "carol", "dave"), deposit=10_000_001)
    paid = payouts(four.names, ("dave",), 10_000_001)
    assert paid == {"alice": 13_333_335, "bob": 13_333_335, "carol": 13_333_334, "dave": 0}
    votes = [vote(v, "dave") for v in ("alice", "carol")]
    redeemer = redeemer_for_shape(four, ("dave",), votes)
    assert run(four, settlement_tx(four, redeemer, paid, validity=BEFORE)).accepted
    short = {**paid, "bob": paid["bob"] - 1}
    tx = settlement_tx(four, redeemer, short, validity=BEFORE)
    assert_rejected(four, tx, "every remaining party must get its share")


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ([(3, [])], "targets must be increasing party indices"),  # no such party
        ([(2, AGAINST_CAROL), (2, AGAINST_CAROL)], "targets must be increasing party indices"),
        ([], "a slash needs a target"),
    ],
)
def test_slash_with_bad_targets_is_rejected(pool, evidence, reason) -> None:
    tx = settlement_tx(pool, slash(evidence), {n: 2 * DEPOSIT for n in NAMES}, validity=BEFORE)
    assert_rejected(pool, tx, reason)


def test_slashing_everyone_is_rejected() -> None:
    two = make_pool(("alice", "bob"))
    redeemer = slash([(0, [entry(vote("bob", "alice"))]), (1, [entry(vote("alice", "bob"))])])
    tx = settlement_tx(two, redeemer, {}, validity=BEFORE)
    assert_rejected(two, tx, "someone must remain to be paid")


# --- Refund after the deadline -------------------------------------------------------------


def test_anyone_may_refund_every_deposit_from_the_deadline_on(pool) -> None:
    assert refunds(pool.names, DEPOSIT) == ALL_BACK
    result = run(pool, settlement_tx(pool, REFUND, ALL_BACK, validity=AFTER))
    assert result.accepted, result
    later = validity_range(DEADLINE + 1, lower_closed=False)
    assert run(pool, settlement_tx(pool, REFUND, ALL_BACK, validity=later)).accepted


def test_no_refund_before_the_deadline(pool) -> None:
    for early in (validity_range(DEADLINE - 1), validity_range(), BEFORE):
        tx = settlement_tx(pool, REFUND, ALL_BACK, validity=early)
        assert_rejected(pool, tx, "no refund before the deadline")


def test_a_refund_must_return_every_deposit(pool) -> None:
    tx = settlement_tx(pool, REFUND, {**ALL_BACK, "carol": DEPOSIT - 1}, validity=AFTER)
    assert_rejected(pool, tx, "a refund must return every deposit")


# --- Double satisfaction -------------------------------------------------------------------


def test_an_untagged_or_wrongly_tagged_payout_does_not_count(pool) -> None:
    untagged = [tx_out(key_address(pool.members[n]), DEPOSIT) for n in NAMES]
    tx = Transaction([pool.spend(CLAIM)], untagged, [pool.members[n] for n in NAMES])
    assert_rejected(pool, tx, "a claim must refund every deposit")
    wrong = pool.payouts(ALL_BACK, tag=second_ref())
    tx = Transaction([pool.spend(CLAIM)], wrong, [pool.members[n] for n in NAMES])
    assert_rejected(pool, tx, "a claim must refund every deposit")


def test_two_pools_of_one_session_cannot_share_payouts(pool) -> None:
    other = make_pool(ref=second_ref())
    signers = [pool.members[n] for n in NAMES]
    tx = Transaction([pool.spend(CLAIM), other.spend(CLAIM)], pool.payouts(ALL_BACK), signers)
    assert run(pool, tx).accepted  # the first pool is paid ...
    assert_rejected(other, tx, "a claim must refund every deposit")  # ... the second is not
    both = Transaction(
        [pool.spend(CLAIM), other.spend(CLAIM)],
        pool.payouts(ALL_BACK) + other.payouts(ALL_BACK),
        signers,
    )
    assert run(pool, both).accepted and run(other, both).accepted  # each paid once: fine


def test_the_issue_19_attack_two_sessions_one_slash_is_rejected() -> None:
    """Two 40 ADA pools of two sessions with the same four parties, dave slashed by two of
    them in both: the old validator let one set of payouts (13.33 ADA each) satisfy both
    pools and 40 ADA go to an outsider. Now each pool only counts payouts tagged for it."""
    four = ("alice", "bob", "carol", "dave")
    first = make_pool(four)
    second = make_pool(four, session=OTHER_SESSION, ref=second_ref())
    paid = payouts(four, ("dave",), DEPOSIT)
    assert sum(paid.values()) == 4 * DEPOSIT == 40_000_000
    redeemers = [
        redeemer_for_shape(p, ("dave",), [vote(v, "dave", session=s) for v in ("alice", "bob")])
        for p, s in ((first, SESSION_ID), (second, OTHER_SESSION))
    ]
    outsider = tx_out(key_address(key_hash("mallory")), 4 * DEPOSIT)
    inputs = [first.spend(redeemers[0]), second.spend(redeemers[1])]
    tx = Transaction(inputs, [*first.payouts(paid), outsider], validity=BEFORE)
    assert run(first, tx).accepted  # the first pool is paid as the rules say
    assert_rejected(second, tx, "every remaining party must get its share")
    untagged = [tx_out(key_address(key_hash(n)), v) for n, v in paid.items() if v]
    tx = Transaction(inputs, [*untagged, outsider], validity=BEFORE)
    assert_rejected(first, tx, "every remaining party must get its share")
    assert_rejected(second, tx, "every remaining party must get its share")


# --- Datum and redeemer shapes -------------------------------------------------------------


def _parties(*names: str) -> list[bytes]:
    return [key_hash(n) for n in names]


@pytest.mark.parametrize(
    ("datum", "reason"),
    [
        (constr(0, _parties(*NAMES), b"10", ROUNDS, DEADLINE), None),  # deposit not an int
        (constr(1, _parties(*NAMES), DEPOSIT, ROUNDS, DEADLINE), None),  # wrong constructor
        (constr(0, _parties(*NAMES), DEPOSIT, ROUNDS), None),  # missing field
        (
            escrow_datum(_parties("alice"), DEPOSIT, ROUNDS, DEADLINE),
            "an escrow needs at least two parties",
        ),
        (
            escrow_datum(_parties("alice", "alice", "bob"), DEPOSIT, ROUNDS, DEADLINE),
            "parties must be distinct",
        ),
        (
            escrow_datum([b"x" * 27, *_parties("bob")], DEPOSIT, ROUNDS, DEADLINE),
            "parties must be payment key hashes",
        ),
        (escrow_datum(_parties(*NAMES), 0, ROUNDS, DEADLINE), "deposit must be positive"),
        (escrow_datum(_parties(*NAMES), DEPOSIT, 0, DEADLINE), "a session has at least one round"),
    ],
)
def test_a_wrong_datum_is_rejected(pool, datum, reason) -> None:
    signers = [pool.members[n] for n in NAMES]
    tx = Transaction([pool.spend(CLAIM, datum=datum)], pool.payouts(ALL_BACK), signers)
    if reason is None:  # the integrity check fails before any contract message
        assert not run(pool, tx).accepted
    else:
        assert_rejected(pool, tx, reason)


def test_a_wrong_redeemer_is_rejected(pool) -> None:
    tx = settlement_tx(pool, constr(5), ALL_BACK, signers=NAMES, validity=AFTER)
    assert not run(pool, tx).accepted


def test_kill_messages_bind_session_round_and_victim() -> None:
    message = kill_message(SESSION_ID, 2, key_hash("carol"))
    assert len(message) == 22 + 32 + 8 + 28
    assert message != kill_message(OTHER_SESSION, 2, key_hash("carol"))
    assert message != kill_message(SESSION_ID, 3, key_hash("carol"))
    assert message != kill_message(SESSION_ID, 2, key_hash("bob"))
    with pytest.raises(ValueError):
        kill_message(SESSION_ID, -1, key_hash("carol"))


# --- From the channel history to an accepted settlement ------------------------------------


def test_the_pure_settlement_is_what_the_validator_accepts(pool) -> None:
    history = History().deposits(*NAMES).rounds(1, *NAMES).rounds(3, "alice", "bob", start=2)
    history.kill("alice", "carol").kill("bob", "carol")
    settlement = settlement_of(history.entries, terms())
    votes = [vote("alice", "carol"), vote("bob", "carol")]
    redeemer = redeemer_for(settlement, votes)
    tx = settlement_tx(pool, redeemer, settlement.payouts, validity=BEFORE)
    assert run(pool, tx).accepted
    with pytest.raises(EscrowError, match="signed votes"):
        redeemer_for(settlement, votes[:1])
    pending = settlement_of(History().deposits(*NAMES).entries, terms())
    with pytest.raises(EscrowError, match="pending"):
        redeemer_for(pending)


# --- The committed blueprints are what the source compiles to (slow: ~40 s) ----------------


@pytest.mark.slow
def test_committed_blueprints_are_what_the_source_compiles_to(tmp_path: Path) -> None:
    for name, flags in BUILDS.items():
        fresh = json.loads(opshin_build(tmp_path / name, "--parameters", "1", *flags).read_text())
        committed = json.loads((CONTRACT_DIR / name).read_text())
        assert fresh["validators"] == committed["validators"], name


@pytest.mark.slow
def test_applying_the_session_equals_compiling_with_it(tmp_path: Path) -> None:
    """What ``EscrowScript`` applies at run time is what opshin builds with the parameter."""
    parameter = json.dumps({"bytes": SESSION_ID.hex()})
    built = opshin_build(tmp_path, *BUILDS["plutus.json"], parameters=(parameter,))
    (validator,) = json.loads(built.read_text())["validators"]
    script = EscrowScript(SESSION_ID)
    assert validator["compiledCode"] == script.compiled.hex()
    assert validator["hash"] == script.script_hash.hex()
