"""The OpShin escrow validator (one lock per party), compiled to Plutus V3, evaluated with uplc.

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
from tests.escrow.locks import (
    AFTER,
    BEFORE,
    DEADLINE,
    OTHER_SESSION,
    ROUNDS,
    SESSION_ID,
    assert_rejected,
    key_hash,
    make_lock,
    payment_keys,
    release_vote,
    run,
    second_ref,
    vote,
)
from zkadapt.escrow.blueprint import BUILDS, CONTRACT_DIR, opshin_build
from zkadapt.escrow.messages import KillVote, ReleaseVote
from zkadapt.escrow.onchain import (
    BLUEPRINT,
    REFUND,
    EscrowError,
    EscrowScript,
    lock_datum,
    redeemer_for,
    release,
    settlement_payouts,
    settlement_tx,
    slash,
)
from zkadapt.escrow.rules import (
    COMPLETED,
    EscrowView,
    Settlement,
    lock_payouts,
    payouts,
    settlement_of,
)
from zkadapt.escrow.script_context import Transaction, constr, key_address, tx_out, validity_range
from zkadapt.escrow.votes import SignedKillVote, kill_message, release_message

INDEX = {n: i for i, n in enumerate(NAMES)}
HALF = DEPOSIT // 2  # alice's and bob's share of carol's lock when carol is slashed
CAROL_SPLIT = {"alice": HALF, "bob": HALF}


@pytest.fixture(scope="module")
def alice():
    return make_lock("alice")


@pytest.fixture(scope="module")
def carol():
    return make_lock("carol")


def entry(signed, *, round_=None):
    """A kill vote as the redeemer carries it: (voter index, round, key, signature)."""
    said = signed.round if round_ is None else round_
    return (INDEX[signed.voter], said, signed.vkey, signed.signature)


def backing(signed):
    """A release vote as the redeemer carries it: (voter index, key, signature)."""
    return (INDEX[signed.voter], signed.vkey, signed.signature)


#: Carol slashed, her lock's recipients alice and bob each released by the other.
CAROL_RECIPIENTS = [
    [backing(release_vote("bob", "alice"))],
    [backing(release_vote("alice", "bob"))],
]


def slash_carol(*votes):
    """``Slash`` proving carol (datum index 2) slashed with the given votes."""
    return slash([(2, [entry(v) for v in votes])], CAROL_RECIPIENTS)


AGAINST_CAROL = [entry(vote("alice", "carol")), entry(vote("bob", "carol"))]


def settled(members, slashed_):
    return Settlement(COMPLETED, tuple(members), tuple(slashed_), {}, (), DEPOSIT)


# --- the parameter: one script per session -------------------------------------------------


def test_every_session_has_its_own_script_and_address(alice) -> None:
    other = EscrowScript(OTHER_SESSION)
    assert alice.script.script_hash != other.script_hash
    assert alice.script.script_hash != alice.script.traced.script_hash
    assert alice.script.plutus_version == "v3" and len(alice.script.compiled) < 8_000
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


# --- Release: the owner's deposit back, with release votes of the others -------------------


def test_release_with_votes_of_every_other_party_is_accepted(alice) -> None:
    """Three parties: a strict majority of alice's two others is both; nobody signs the tx."""
    redeemer = release(
        (), [backing(release_vote("bob", "alice")), backing(release_vote("carol", "alice"))]
    )
    result = run(alice, settlement_tx(alice, redeemer, {"alice": DEPOSIT}))
    assert result.accepted, result
    assert 0 < result.cpu < 10_000_000_000 and 0 < result.memory < 14_000_000  # V3 tx limits


def test_release_without_a_majority_of_the_others_is_rejected(alice) -> None:
    redeemer = release((), [backing(release_vote("bob", "alice"))])
    tx = settlement_tx(alice, redeemer, {"alice": DEPOSIT}, signers=NAMES)  # signatures: no votes
    assert_rejected(
        alice, tx, "a release needs votes from a strict majority of the other remaining parties"
    )


def test_a_party_cannot_release_itself(alice) -> None:
    """The one path before the deadline the owner could take alone is closed."""
    own = release_vote("alice", "alice")
    redeemer = release((), [backing(own), backing(release_vote("bob", "alice"))])
    tx = settlement_tx(alice, redeemer, {"alice": DEPOSIT}, signers=["alice"])
    assert_rejected(alice, tx, "a party cannot release itself")


def test_four_parties_release_with_two_of_three_others() -> None:
    four = ("alice", "bob", "carol", "dave")
    lock = make_lock("dave", four)
    votes = [release_vote("alice", "dave"), release_vote("carol", "dave")]
    redeemer = release((), [(four.index(v.voter), v.vkey, v.signature) for v in votes])
    assert run(lock, settlement_tx(lock, redeemer, {"dave": DEPOSIT})).accepted
    one = release((), [(0, votes[0].vkey, votes[0].signature)])
    tx = settlement_tx(lock, one, {"dave": DEPOSIT})
    assert_rejected(
        lock, tx, "a release needs votes from a strict majority of the other remaining parties"
    )


FORGED_RELEASES = [
    (release_vote("carol", "alice", session=OTHER_SESSION), "a bad vote signature"),
    (release_vote("carol", "alice", owner="bob"), "a bad vote signature"),
    (release_vote("carol", "alice", signer="mallory"), "a vote's key must be its voter's"),
]


@pytest.mark.parametrize(("forged", "reason"), FORGED_RELEASES, ids=["session", "owner", "key"])
def test_a_release_vote_not_signed_by_its_voter_for_this_owner_is_rejected(
    alice, forged, reason
) -> None:
    redeemer = release((), [backing(release_vote("bob", "alice")), backing(forged)])
    assert_rejected(alice, settlement_tx(alice, redeemer, {"alice": DEPOSIT}), reason)
    assert not forged.verify(SESSION_ID, key_hash("carol"), key_hash("alice"))


def test_a_kill_signature_is_no_release_vote(alice) -> None:
    kill = vote("carol", "alice")
    redeemer = release((), [backing(release_vote("bob", "alice")), (2, kill.vkey, kill.signature)])
    assert_rejected(
        alice, settlement_tx(alice, redeemer, {"alice": DEPOSIT}), "a bad vote signature"
    )


def test_a_release_must_pay_the_owner_its_deposit(alice) -> None:
    votes = [backing(release_vote("bob", "alice")), backing(release_vote("carol", "alice"))]
    short = settlement_tx(alice, release((), votes), {"alice": DEPOSIT - 1})
    assert_rejected(alice, short, "a release must return the deposit")
    elsewhere = settlement_tx(alice, release((), votes), {"bob": DEPOSIT})
    assert_rejected(alice, elsewhere, "a release must return the deposit")


def test_after_a_slash_the_remaining_release_each_other() -> None:
    """Carol slashed: alice's lock needs bob's vote only (carol neither votes nor counts)."""
    lock = make_lock("alice")
    redeemer = release([(2, AGAINST_CAROL)], [backing(release_vote("bob", "alice"))])
    assert run(lock, settlement_tx(lock, redeemer, {"alice": DEPOSIT})).accepted
    unproven = release([(2, AGAINST_CAROL[:1])], [backing(release_vote("bob", "alice"))])
    tx = settlement_tx(lock, unproven, {"alice": DEPOSIT})
    assert_rejected(
        lock, tx, "a slash needs signed votes from two and a strict majority of the others"
    )
    by_carol = release([(2, AGAINST_CAROL)], [backing(release_vote("carol", "alice"))])
    tx = settlement_tx(lock, by_carol, {"alice": DEPOSIT})
    assert_rejected(lock, tx, "a slashed party cannot vote")


def test_a_slashed_owner_cannot_be_released(carol) -> None:
    votes = [backing(release_vote("alice", "carol")), backing(release_vote("bob", "carol"))]
    tx = settlement_tx(carol, release([(2, AGAINST_CAROL)], votes), {"carol": DEPOSIT})
    assert_rejected(carol, tx, "a slashed owner cannot be released")


def test_the_last_party_standing_needs_no_release_vote() -> None:
    lock = make_lock("alice")
    proofs = [
        (1, [entry(vote("alice", "bob")), entry(vote("carol", "bob"))]),
        (2, AGAINST_CAROL),
    ]
    assert run(lock, settlement_tx(lock, release(proofs, []), {"alice": DEPOSIT})).accepted


# --- Slash: a slashed owner's deposit split among the remaining ----------------------------


def test_slash_with_signed_votes_from_a_majority_pays_the_rules_split(carol) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol", round_=3))
    members, lost = NAMES, ("carol",)
    assert lock_payouts(members, lost, DEPOSIT, "carol") == CAROL_SPLIT
    assert payouts(members, lost, DEPOSIT) == {
        "alice": DEPOSIT + HALF,
        "bob": DEPOSIT + HALF,
        "carol": 0,
    }
    tx = settlement_tx(carol, redeemer, CAROL_SPLIT, validity=BEFORE)  # nobody signs the tx
    result = run(carol, tx)
    assert result.accepted, result
    assert result.cpu < 10_000_000_000 and result.memory < 14_000_000


def test_slash_without_a_majority_is_rejected(carol) -> None:
    tx = settlement_tx(carol, slash_carol(vote("alice", "carol")), CAROL_SPLIT, validity=BEFORE)
    assert_rejected(
        carol, tx, "a slash needs signed votes from two and a strict majority of the others"
    )


def test_no_single_party_slashes_another() -> None:
    """Two parties: one vote is a majority of the one other, but never enough alone."""
    bob = make_lock("bob", ("alice", "bob"))
    tx = settlement_tx(
        bob, slash([(1, [entry(vote("alice", "bob"))])]), {"alice": DEPOSIT}, validity=BEFORE
    )
    assert_rejected(
        bob, tx, "a slash needs signed votes from two and a strict majority of the others"
    )


def test_tx_signatures_are_no_votes(carol) -> None:
    tx = settlement_tx(carol, slash([(2, [])]), CAROL_SPLIT, signers=NAMES, validity=BEFORE)
    assert_rejected(
        carol, tx, "a slash needs signed votes from two and a strict majority of the others"
    )


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
def test_a_vote_not_signed_by_its_voter_over_this_kill_is_rejected(carol, forged, reason) -> None:
    redeemer = slash_carol(vote("alice", "carol"), forged)
    assert_rejected(carol, settlement_tx(carol, redeemer, CAROL_SPLIT, validity=BEFORE), reason)


@pytest.mark.parametrize("forged", [f for f, _ in FORGED], ids=FORGED_IDS)
def test_votes_are_checked_off_chain_as_on_chain(forged) -> None:
    good = vote("bob", "carol")
    assert good.verify(SESSION_ID, key_hash("bob"), key_hash("carol"))
    assert not forged.verify(SESSION_ID, key_hash("bob"), key_hash("carol"))


def test_a_vote_must_carry_the_round_it_signed(carol) -> None:
    signed = vote("bob", "carol", round_=2)
    redeemer = slash([(2, [entry(vote("alice", "carol")), entry(signed, round_=3)])])
    tx = settlement_tx(carol, redeemer, CAROL_SPLIT, validity=BEFORE)
    assert_rejected(carol, tx, "a bad vote signature")


@pytest.mark.parametrize("round_", [0, ROUNDS + 1])
def test_a_vote_must_name_a_round_of_the_session(carol, round_) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol", round_=round_))
    tx = settlement_tx(carol, redeemer, CAROL_SPLIT, validity=BEFORE)
    assert_rejected(carol, tx, "a vote names a session round")


def test_a_voter_counts_once_and_never_against_itself(carol) -> None:
    twice = slash_carol(vote("alice", "carol"), vote("alice", "carol", round_=3))
    tx = settlement_tx(carol, twice, CAROL_SPLIT, validity=BEFORE)
    assert_rejected(carol, tx, "voters must be increasing party indices")
    itself = slash_carol(vote("alice", "carol"), vote("carol", "carol"))
    tx = settlement_tx(carol, itself, CAROL_SPLIT, validity=BEFORE)
    assert_rejected(carol, tx, "a party cannot vote against itself")


def test_a_slash_must_end_before_the_deadline(carol) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol"))
    for late in (
        validity_range(DEADLINE - 60_000, DEADLINE, upper_closed=True),  # includes the deadline
        validity_range(DEADLINE - 60_000),  # no upper bound
        AFTER,
    ):
        tx = settlement_tx(carol, redeemer, CAROL_SPLIT, validity=late)
        assert_rejected(carol, tx, "a slash must end before the deadline")


def test_slash_that_underpays_a_remaining_party_is_rejected(carol) -> None:
    redeemer = slash_carol(vote("alice", "carol"), vote("bob", "carol"))
    tx = settlement_tx(carol, redeemer, {"alice": DEPOSIT}, validity=BEFORE)
    assert_rejected(carol, tx, "every remaining party must get its share")


def test_a_slash_pays_the_remainder_lovelace_as_the_rules_do() -> None:
    """Four parties, an odd deposit, dave slashed: 10,000,001 split three ways, remainder 2."""
    four = ("alice", "bob", "carol", "dave")
    dave = make_lock("dave", four, deposit=10_000_001)
    paid = lock_payouts(four, ("dave",), 10_000_001, "dave")
    assert paid == {"alice": 3_333_334, "bob": 3_333_334, "carol": 3_333_333}
    redeemer = redeemer_for(
        settled(four, ("dave",)),
        "dave",
        [vote(v, "dave") for v in ("alice", "carol")],
        [release_vote(v, t) for t in four[:3] for v in four[:3] if v != t],
    )
    assert run(dave, settlement_tx(dave, redeemer, paid, validity=BEFORE)).accepted
    short = {**paid, "bob": paid["bob"] - 1}
    tx = settlement_tx(dave, redeemer, short, validity=BEFORE)
    assert_rejected(dave, tx, "every remaining party must get its share")


def test_two_slashed_the_proof_names_both_and_the_split_skips_both() -> None:
    """Five parties, dave and erin slashed: dave's lock goes to alice, bob, carol only."""
    dave = make_lock("dave", FIVE)
    redeemer = redeemer_for(settled(FIVE, ("dave", "erin")), "dave", FIVE_KILLS, FIVE_RELEASES)
    paid = lock_payouts(FIVE, ("dave", "erin"), DEPOSIT, "dave")
    assert paid == {"alice": 3_333_334, "bob": 3_333_333, "carol": 3_333_333}
    result = run(dave, settlement_tx(dave, redeemer, paid, validity=BEFORE))
    assert result.accepted, result
    # erin is no remaining party: proving her slashed is what keeps her out of the split
    with_erin = lock_payouts(FIVE, ("dave",), DEPOSIT, "dave")
    assert with_erin["erin"] == 2_500_000


# --- The slashed set's completeness: a saboteur left out of the proofs gains nothing --------

FIVE = ("alice", "bob", "carol", "dave", "erin")
FIVE_INDEX = {n: i for i, n in enumerate(FIVE)}
HONEST = ("alice", "bob", "carol")
#: dave and erin were silent: the three honest parties voted against both, and released
#: each other (never dave or erin).
FIVE_KILLS = [vote(v, t) for t in ("dave", "erin") for v in HONEST]
FIVE_RELEASES = [release_vote(v, t) for t in HONEST for v in HONEST if v != t]


def _five(*signed):
    return [(FIVE_INDEX[v.voter], v.vkey, v.signature) for v in signed]


def _against(target):
    return (FIVE_INDEX[target], [entry5(v) for v in FIVE_KILLS if v.target == target])


def entry5(signed):
    return (FIVE_INDEX[signed.voter], signed.round, signed.vkey, signed.signature)


#: What erin pays herself by proving dave slashed and leaving herself out: a quarter of
#: dave's deposit instead of nothing (the hole the recipients' release votes close).
ERIN_TAKES = lock_payouts(FIVE, ("dave",), DEPOSIT, "dave")
HONEST_RECIPIENTS = [
    _five(release_vote("bob", "alice"), release_vote("carol", "alice")),
    _five(release_vote("alice", "bob"), release_vote("carol", "bob")),
    _five(release_vote("alice", "carol"), release_vote("bob", "carol")),
]


def test_a_saboteur_left_out_of_the_proofs_cannot_share_a_slashed_deposit() -> None:
    """Five parties, dave and erin slashed by the rules. erin settles dave's lock proving
    only dave slashed, so that she counts as remaining and takes a quarter. Every
    recipient must be released by a strict majority of the other remaining parties: the
    honest ones never release erin, dave's vote does not count (he is proven slashed), her
    own is refused, so the split is rejected whatever votes she brings."""
    dave = make_lock("dave", FIVE)
    assert ERIN_TAKES["erin"] == 2_500_000
    reason = "every recipient of a slash must be released by a strict majority of the others"
    # none, or one (had an honest party erred): a majority of erin's three others is two
    for erins in ([], _five(release_vote("alice", "erin"))):
        redeemer = slash([_against("dave")], [*HONEST_RECIPIENTS, erins])
        tx = settlement_tx(dave, redeemer, ERIN_TAKES, validity=BEFORE)
        assert_rejected(dave, tx, reason)
    by_dave = slash([_against("dave")], [*HONEST_RECIPIENTS, _five(release_vote("dave", "erin"))])
    tx = settlement_tx(dave, by_dave, ERIN_TAKES, validity=BEFORE)
    assert_rejected(dave, tx, "a slashed party cannot vote")
    by_erin = slash([_against("dave")], [*HONEST_RECIPIENTS, _five(release_vote("erin", "erin"))])
    tx = settlement_tx(dave, by_erin, ERIN_TAKES, validity=BEFORE)
    assert_rejected(dave, tx, "a party cannot release itself")
    unnamed = slash([_against("dave")], HONEST_RECIPIENTS)  # erin paid, but no proof for her
    tx = settlement_tx(dave, unnamed, ERIN_TAKES, validity=BEFORE)
    assert_rejected(dave, tx, "a slash proves every remaining party released")


def test_the_full_proof_with_released_recipients_is_still_accepted() -> None:
    """The settlement the rules compute (both proven, alice, bob and carol released) pays
    dave's and erin's locks to the honest three; a recipient one vote short is rejected."""
    paid = lock_payouts(FIVE, ("dave", "erin"), DEPOSIT, "dave")
    proofs = [_against("dave"), _against("erin")]
    for owner in ("dave", "erin"):
        lock = make_lock(owner, FIVE)
        tx = settlement_tx(lock, slash(proofs, HONEST_RECIPIENTS), paid, validity=BEFORE)
        assert run(lock, tx).accepted, owner
    # three remaining: a majority of the other two is both, so one vote is short
    short = [HONEST_RECIPIENTS[0], HONEST_RECIPIENTS[1][:1], HONEST_RECIPIENTS[2]]
    dave = make_lock("dave", FIVE)
    tx = settlement_tx(dave, slash(proofs, short), paid, validity=BEFORE)
    reason = "every recipient of a slash must be released by a strict majority of the others"
    assert_rejected(dave, tx, reason)


def test_a_slashed_party_left_out_of_a_release_is_not_released_by_its_accomplice() -> None:
    """Release's side of the same escape: erin's own lock released with dave left out of
    the proofs (he is slashed, but then counts) and dave's vote: 1 of 4 others is no
    majority; proving dave slashed leaves dave unable to vote and erin with no honest one."""
    erin = make_lock("erin", FIVE)
    reason = "a release needs votes from a strict majority of the other remaining parties"
    accomplice = release((), _five(release_vote("dave", "erin")))
    assert_rejected(erin, settlement_tx(erin, accomplice, {"erin": DEPOSIT}), reason)
    proven = release([_against("dave")], _five(release_vote("dave", "erin")))
    assert_rejected(
        erin, settlement_tx(erin, proven, {"erin": DEPOSIT}), "a slashed party cannot vote"
    )


def test_redeemer_for_builds_the_recipients_votes_from_the_channel_votes() -> None:
    """The off-chain side: a slashed lock's redeemer carries, for each remaining party in
    datum order, a bare majority of release votes; without them it is refused off chain."""
    settlement = settled(FIVE, ("dave", "erin"))
    redeemer = redeemer_for(settlement, "dave", FIVE_KILLS, FIVE_RELEASES)
    evidence, recipients = redeemer.value
    assert [e.value[0] for e in evidence] == [3, 4]
    assert [[v.value[0] for v in r.value[0]] for r in recipients] == [[1, 2], [0, 2], [0, 1]]
    with pytest.raises(EscrowError, match="share of dave's slashed deposit needs signed release"):
        redeemer_for(settlement, "dave", FIVE_KILLS, FIVE_RELEASES[1:])
    with pytest.raises(EscrowError, match="release votes for alice"):
        redeemer_for(settlement, "dave", FIVE_KILLS, [])


def test_a_slash_must_prove_the_owner_slashed(alice) -> None:
    tx = settlement_tx(
        alice, slash([(2, AGAINST_CAROL)]), {"alice": DEPOSIT, "bob": DEPOSIT}, validity=BEFORE
    )
    assert_rejected(alice, tx, "a slash must prove this lock's owner slashed")


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ([(3, [])], "targets must be increasing party indices"),  # no such party
        ([(2, AGAINST_CAROL), (2, AGAINST_CAROL)], "targets must be increasing party indices"),
        ([], "a slash must prove this lock's owner slashed"),
    ],
)
def test_slash_with_bad_targets_is_rejected(carol, evidence, reason) -> None:
    tx = settlement_tx(carol, slash(evidence), {n: DEPOSIT for n in NAMES}, validity=BEFORE)
    assert_rejected(carol, tx, reason)


def test_slashing_everyone_is_rejected() -> None:
    three = make_lock("alice")
    proofs = [(t, [entry(vote(v, n)) for v in NAMES if v != n]) for t, n in enumerate(NAMES)]
    tx = settlement_tx(three, slash(proofs), {}, validity=BEFORE)
    assert_rejected(three, tx, "someone must remain to be paid")


# --- Refund after the deadline -------------------------------------------------------------


def test_anyone_may_refund_a_deposit_from_the_deadline_on(alice) -> None:
    result = run(alice, settlement_tx(alice, REFUND, {"alice": DEPOSIT}, validity=AFTER))
    assert result.accepted, result
    later = validity_range(DEADLINE + 1, lower_closed=False)
    assert run(alice, settlement_tx(alice, REFUND, {"alice": DEPOSIT}, validity=later)).accepted


def test_no_refund_before_the_deadline(alice) -> None:
    """The owner alone cannot take its deposit back early, signing or not."""
    for early in (validity_range(DEADLINE - 1), validity_range(), BEFORE):
        tx = settlement_tx(alice, REFUND, {"alice": DEPOSIT}, signers=["alice"], validity=early)
        assert_rejected(alice, tx, "no refund before the deadline")


def test_a_refund_must_return_the_deposit_to_its_owner(alice) -> None:
    tx = settlement_tx(alice, REFUND, {"alice": DEPOSIT - 1}, validity=AFTER)
    assert_rejected(alice, tx, "a refund must return the deposit")
    tx = settlement_tx(alice, REFUND, {"bob": DEPOSIT}, validity=AFTER)
    assert_rejected(alice, tx, "a refund must return the deposit")


# --- Double satisfaction -------------------------------------------------------------------


def test_an_untagged_or_wrongly_tagged_payout_does_not_count(alice) -> None:
    untagged = [tx_out(key_address(alice.members["alice"]), DEPOSIT)]
    tx = Transaction([alice.spend(REFUND)], untagged, validity=AFTER)
    assert_rejected(alice, tx, "a refund must return the deposit")
    wrong = alice.payouts({"alice": DEPOSIT}, tag=second_ref())
    tx = Transaction([alice.spend(REFUND)], wrong, validity=AFTER)
    assert_rejected(alice, tx, "a refund must return the deposit")


def test_two_locks_in_one_transaction_are_each_paid_once(carol) -> None:
    """Carol's slashed lock and alice's released lock in one transaction: each counts only
    the outputs tagged with its own out-ref, so one payout cannot satisfy both."""
    alice = make_lock("alice")
    released = release([(2, AGAINST_CAROL)], [backing(release_vote("bob", "alice"))])
    slashed = slash([(2, AGAINST_CAROL)], CAROL_RECIPIENTS)
    inputs = [alice.spend(released), carol.spend(slashed)]
    both = Transaction(
        inputs, alice.payouts({"alice": DEPOSIT}) + carol.payouts(CAROL_SPLIT), validity=BEFORE
    )
    assert run(alice, both).accepted and run(carol, both).accepted
    # alice's refund output also "pays" alice at least her share of carol's: not for carol
    once = Transaction(
        inputs, [*alice.payouts({"alice": DEPOSIT}), *carol.payouts({"bob": HALF})], validity=BEFORE
    )
    assert run(alice, once).accepted
    assert_rejected(carol, once, "every remaining party must get its share")


def test_the_issue_19_attack_two_sessions_one_payout_is_rejected() -> None:
    """Two sessions with the same parties: alice's locks in both released in one
    transaction, paid once and the second deposit sent to an outsider. The old validator
    summed every output; now each lock counts only payouts tagged for it."""
    first = make_lock("alice")
    second = make_lock("alice", session=OTHER_SESSION, ref=second_ref())
    votes = {
        s: [backing(release_vote(v, "alice", session=s)) for v in ("bob", "carol")]
        for s in (SESSION_ID, OTHER_SESSION)
    }
    inputs = [
        first.spend(release((), votes[SESSION_ID])),
        second.spend(release((), votes[OTHER_SESSION])),
    ]
    outsider = tx_out(key_address(key_hash("mallory")), DEPOSIT)
    tx = Transaction(inputs, [*first.payouts({"alice": DEPOSIT}), outsider])
    assert run(first, tx).accepted
    assert_rejected(second, tx, "a release must return the deposit")
    untagged = Transaction(inputs, [tx_out(key_address(key_hash("alice")), DEPOSIT), outsider])
    assert_rejected(first, untagged, "a release must return the deposit")
    assert_rejected(second, untagged, "a release must return the deposit")


# --- Datum and redeemer shapes -------------------------------------------------------------


def _parties(*names: str) -> list[bytes]:
    return [key_hash(n) for n in names]


@pytest.mark.parametrize(
    ("datum", "reason"),
    [
        (constr(0, _parties(*NAMES), 0, b"10", ROUNDS, DEADLINE), None),  # deposit not an int
        (constr(1, _parties(*NAMES), 0, DEPOSIT, ROUNDS, DEADLINE), None),  # wrong constructor
        (constr(0, _parties(*NAMES), 0, DEPOSIT, ROUNDS), None),  # missing field
        (
            lock_datum(_parties("alice"), 0, DEPOSIT, ROUNDS, DEADLINE),
            "an escrow needs at least two parties",
        ),
        (lock_datum(_parties(*NAMES), 3, DEPOSIT, ROUNDS, DEADLINE), "the owner must be a party"),
        (lock_datum(_parties(*NAMES), -1, DEPOSIT, ROUNDS, DEADLINE), "the owner must be a party"),
        (
            lock_datum(_parties("alice", "alice", "bob"), 0, DEPOSIT, ROUNDS, DEADLINE),
            "parties must be distinct",
        ),
        (
            lock_datum([b"x" * 27, *_parties("bob")], 0, DEPOSIT, ROUNDS, DEADLINE),
            "parties must be payment key hashes",
        ),
        (lock_datum(_parties(*NAMES), 0, 0, ROUNDS, DEADLINE), "deposit must be positive"),
        (lock_datum(_parties(*NAMES), 0, DEPOSIT, 0, DEADLINE), "a session has at least one round"),
    ],
)
def test_a_wrong_datum_is_rejected(alice, datum, reason) -> None:
    tx = Transaction(
        [alice.spend(REFUND, datum=datum)], alice.payouts({"alice": DEPOSIT}), validity=AFTER
    )
    if reason is None:  # the integrity check fails before any contract message
        assert not run(alice, tx).accepted
    else:
        assert_rejected(alice, tx, reason)


def test_a_wrong_redeemer_is_rejected(alice) -> None:
    tx = settlement_tx(alice, constr(5), {"alice": DEPOSIT}, validity=AFTER)
    assert not run(alice, tx).accepted


def test_vote_messages_bind_session_party_and_round() -> None:
    message = kill_message(SESSION_ID, 2, key_hash("carol"))
    assert len(message) == 22 + 32 + 8 + 28
    assert message != kill_message(OTHER_SESSION, 2, key_hash("carol"))
    assert message != kill_message(SESSION_ID, 3, key_hash("carol"))
    assert message != kill_message(SESSION_ID, 2, key_hash("bob"))
    released = release_message(SESSION_ID, key_hash("carol"))
    assert len(released) == 25 + 32 + 28 and released != release_message(
        OTHER_SESSION, key_hash("carol")
    )
    with pytest.raises(ValueError):
        kill_message(SESSION_ID, -1, key_hash("carol"))
    with pytest.raises(ValueError):
        release_message(SESSION_ID, b"short")


# --- From the channel history to accepted settlements of every lock ------------------------


def _signed_history(releases=(("alice", "bob"), ("bob", "alice"))):
    """Carol goes silent after round 1; alice and bob post signed kill and release votes."""
    keys = payment_keys(NAMES)
    layer1 = terms(payment_keys=keys)
    history = History().deposits(*NAMES).rounds(1, *NAMES).rounds(3, "alice", "bob", start=2)
    for voter in ("alice", "bob"):
        v = vote(voter, "carol")
        history.message(
            voter,
            KillVote(layer1.session, 2, voter, "carol", "silent", v.vkey.hex(), v.signature.hex()),
        )
    for voter, target in releases:
        r = release_vote(voter, target)
        history.message(
            voter, ReleaseVote(layer1.session, 3, voter, target, r.vkey.hex(), r.signature.hex())
        )
    return history, layer1


def test_the_pure_settlement_is_what_the_validator_accepts_lock_by_lock() -> None:
    history, layer1 = _signed_history()
    view = EscrowView.from_entries(history.entries, layer1)
    settlement = settlement_of(history.entries, layer1)
    assert settlement.slashed == ("carol",) and len(view.kill_evidence) == 2
    kills, releases = list(view.kill_evidence.values()), list(view.release_evidence.values())
    total = dict.fromkeys(NAMES, 0)
    for owner in NAMES:
        lock = make_lock(owner)
        redeemer = redeemer_for(settlement, owner, kills, releases)
        paid = settlement_payouts(settlement, owner)
        for name, amount in paid.items():
            total[name] += amount
        assert run(lock, settlement_tx(lock, redeemer, paid, validity=BEFORE)).accepted, owner
    assert total == settlement.payouts
    with pytest.raises(EscrowError, match="signed kill votes"):
        redeemer_for(settlement, "alice", kills[:1], releases)
    with pytest.raises(EscrowError, match="release votes"):
        redeemer_for(settlement, "alice", kills, [])
    pending = settlement_of(History().deposits(*NAMES).entries, layer1)
    with pytest.raises(EscrowError, match="pending"):
        redeemer_for(pending, "alice")


def test_a_slashed_lock_waits_for_its_recipients_release_votes_like_their_own_locks() -> None:
    """bob never released alice: alice's lock is short, and so is carol's slashed lock (it
    pays alice); bob's lock, released by alice, is not."""
    from zkadapt.operator.escrow_layer1 import missing_evidence

    history, layer1 = _signed_history(releases=[("alice", "bob")])
    view = EscrowView.from_entries(history.entries, layer1)
    missing = missing_evidence(settlement_of(history.entries, layer1), view)
    assert set(missing) == {"alice", "carol"}
    assert (
        "share of carol's slashed deposit needs signed release votes for alice"
        in (missing["carol"])
    )
    history, layer1 = _signed_history()
    view = EscrowView.from_entries(history.entries, layer1)
    assert missing_evidence(settlement_of(history.entries, layer1), view) == {}


def test_on_layer1_only_votes_signed_with_the_payment_key_count() -> None:
    keys = payment_keys(NAMES)
    layer1 = terms(payment_keys=keys)
    history = History().deposits(*NAMES).rounds(1, *NAMES)
    history.kill("alice", "carol")  # no payment signature
    forged = vote("bob", "carol", signer="mallory")
    history.message(
        "bob",
        KillVote(
            layer1.session, 2, "bob", "carol", "silent", forged.vkey.hex(), forged.signature.hex()
        ),
    )
    assert settlement_of(history.entries, layer1).slashed == ()
    assert settlement_of(history.entries, terms()).slashed == ("carol",)  # both count off chain
    ignored = EscrowView.from_entries(history.entries, layer1).ignored
    assert [r for _, r in ignored] == ["kill vote without a valid payment signature"] * 2


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
