"""The session's escrow on Cardano layer 1: what ``zkadapt escrow lock|vote|settle|refund``
do, and what a party calls before round 1 (docs/escrow.md, "On layer 1").

A session's escrow is on layer 1 when its file sets ``escrow.deadline`` (and ``[cardano]``).
Every party's payment key hash is then known from the file (``parties.payment_key_hash``,
or the hash of its identity key when that is its payment key), so every party derives the
same lock datum for everyone; the lock terms are :func:`session_locks`.

* :func:`lock_deposit` -- a party locks its deposit (returns the out-ref to post in its
  ``EscrowDeposit``); :func:`check_deposit` -- another party's lock is checked from its
  out-ref through the chain context.
* :func:`kill_vote` / :func:`release_votes` -- votes signed with the party's payment key,
  as channel messages.
* :func:`settlement_plan` -- from the channel history, the locks to spend, each with the
  redeemer and payouts the rules imply (:func:`missing_evidence`: which locks still lack
  votes); :func:`settle_locks` and :func:`refund` build, submit and wait for the
  transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt.errors import ConfigError
from zkadapt.escrow.messages import KILL_REASONS, KillVote, ReleaseVote
from zkadapt.escrow.onchain import EscrowError, redeemer_for, settlement_payouts
from zkadapt.escrow.rules import EscrowTerms, EscrowView, Settlement, settle
from zkadapt.operator.escrow import on_layer1, payment_key_hashes, terms_of

if TYPE_CHECKING:
    from zkadapt.channel.base import Entry
    from zkadapt.config import SessionConfig
    from zkadapt.escrow.txs import SessionLocks, Spend
    from zkadapt.protocol.history import SessionHistory


def _layer1(config: SessionConfig) -> None:
    if not on_layer1(config):
        raise ConfigError(
            "escrow.deadline", "the escrow is not on layer 1: set escrow.deadline and [cardano]"
        )


def layer1_terms(
    config: SessionConfig,
    entries: Iterable[Entry] | None = None,
    *,
    history: SessionHistory | None = None,
) -> EscrowTerms:
    """The escrow terms with the payment keys: only payment-signed votes count (with the
    channel's ``entries`` or a ``history`` of them, also the admitted newcomers:
    :func:`terms_of`)."""
    _layer1(config)
    return terms_of(config, entries, history=history)


def session_locks(
    config: SessionConfig, newcomers: Mapping[str, bytes] | None = None
) -> SessionLocks:
    """What every lock of the session's escrow holds (its script, address and datums);
    ``newcomers`` (name -> payment key hash) adds the locks of parties that joined."""
    from pycardano import Network

    from zkadapt.escrow.txs import SessionLocks

    _layer1(config)
    assert config.cardano is not None and config.escrow.deadline_ms is not None  # _layer1
    network = Network.TESTNET if config.cardano.testnet else Network.MAINNET
    return SessionLocks(
        bytes.fromhex(config.session_id),
        payment_key_hashes(config),
        config.escrow.deposit_lovelace,
        config.session.rounds,
        config.escrow.deadline_ms,
        network,
        dict(newcomers or {}),
    )


def newcomer_hashes(terms: EscrowTerms) -> dict[str, bytes]:
    """The admitted newcomers' payment key hashes (their locks' owners)."""
    return {name: terms.payment_keys[name] for name in terms.newcomers}


# --- a party's payment key -----------------------------------------------------------------


@dataclass(frozen=True)
class PaymentKey:
    """A party's payment signing key and the enterprise address it pays from."""

    party: str
    signing_key: Any
    address: Any


def payment_key_path(config: SessionConfig, party: str, session_dir: Path) -> Path:
    """``cardano.payment_keys`` for ``party`` (relative to the session file), else its
    identity key ``keys/PARTY.skey`` (the same cardano-cli envelope)."""
    template = config.cardano.payment_key_for(party) if config.cardano else None
    return session_dir / (template or f"keys/{party}.skey")


def key_file_hash(path: Path) -> bytes:
    """The payment key hash of the signing key in ``path`` (a newcomer's: it joined with it).

    Raises:
        ConfigError: the file is missing, unreadable or no payment signing key.
    """
    return bytes(_read_signing_key(path).to_verification_key().hash().payload)


def _read_signing_key(path: Path) -> Any:
    from pycardano import PaymentExtendedSigningKey, PaymentSigningKey

    for kind in (PaymentSigningKey, PaymentExtendedSigningKey):
        try:
            return kind.load(str(path))
        except Exception:  # pycardano raises many kinds for a file of another kind
            continue
    raise ConfigError("cardano.payment_keys", f"{path}: not a payment signing key file")


def load_payment_key(
    config: SessionConfig,
    party: str,
    session_dir: Path,
    path: Path | None = None,
    *,
    newcomer_hash: bytes | None = None,
) -> PaymentKey:
    """``party``'s payment key, checked against the hash the session's datums name.

    Args:
        newcomer_hash: for a newcomer (``zkadapt join``), the key hash its lock names (its
            identity key's: docs/membership.md, "Escrow"); None for a listed party.

    Raises:
        ConfigError: ``party`` is not a party, or the file is missing, unreadable or
            holds another key.
    """
    from pycardano import Address

    _layer1(config)
    if newcomer_hash is None and party not in config.party_names:
        raise ConfigError("--party", f"{party!r} is not a party of this session")
    path = path or payment_key_path(config, party, session_dir)
    key = _read_signing_key(path)
    vkey_hash = key.to_verification_key().hash()
    wanted = newcomer_hash if newcomer_hash is not None else payment_key_hashes(config)[party]
    if bytes(vkey_hash.payload) != wanted:
        raise ConfigError(
            "cardano.payment_keys", f"{path} is not {party}'s payment key (its hash differs)"
        )
    network = session_locks(config).network
    return PaymentKey(party, key, Address(payment_part=vkey_hash, network=network))


# --- lock and check -------------------------------------------------------------------------


def lock_deposit(
    config: SessionConfig,
    context: Any,
    key: PaymentKey,
    *,
    timeout_s: float | None = None,
    progress: Callable[[float], None] | None = None,
    newcomers: Mapping[str, bytes] | None = None,
) -> str:
    """Lock ``key.party``'s deposit at the session's address; returns the out-ref text
    (``txid#index``) once the lock is in the UTxO, for the party's ``EscrowDeposit`` (a
    newcomer, named in ``newcomers``: for its ``JoinRequest``).

    Raises:
        EscrowError: the transaction cannot be built (funds), or
        LayerOneError: it is refused or not seen in time.
    """
    from zkadapt.cardano.chain import wait_confirmed
    from zkadapt.escrow.txs import build_lock, ref_text

    locks = session_locks(config, newcomers)
    tx, ref = build_lock(context, locks, key.party, key.address, key.signing_key)
    context.submit_tx(tx)
    wait = timeout_s if timeout_s is not None else _confirm_timeout(config)
    wait_confirmed(context, str(ref.transaction_id), wait, index=ref.index, progress=progress)
    return ref_text(ref)


def check_deposit(
    config: SessionConfig,
    context: Any,
    owner: str,
    ref: str,
    newcomers: Mapping[str, bytes] | None = None,
) -> Any:
    """``owner``'s lock at ``ref`` is unspent and exactly what the session agreed (address,
    datum, amount); returns its UTxO. A newcomer's (named in ``newcomers`` with its key
    hash) lists the session file's parties and itself.

    Raises:
        LockInvalid: it is not (a party that posts such a ref has not deposited).
    """
    from zkadapt.escrow.txs import check_lock

    return check_lock(context, session_locks(config, newcomers), owner, ref)


def _confirm_timeout(config: SessionConfig) -> float:
    return config.cardano.confirm_timeout_s if config.cardano else 600.0


# --- votes ----------------------------------------------------------------------------------


def kill_vote(
    config: SessionConfig,
    key: PaymentKey,
    target: str,
    round_: int,
    reason: str = "silent",
    hashes: Mapping[str, bytes] | None = None,
) -> KillVote:
    """``key.party``'s kill vote against ``target`` (who missed ``round_``), signed with its
    payment key: the message to post on the channel.

    Args:
        hashes: every party's payment key hash, newcomers included (``EscrowTerms
            .payment_keys``); default: the session file's parties.

    Raises:
        ConfigError: an unknown target, a round outside the session, or an unknown reason.
    """
    from zkadapt.escrow.votes import sign_kill_vote

    hashes = hashes if hashes is not None else payment_key_hashes(config)
    if target not in hashes or target == key.party:
        raise ConfigError("--kill", f"{target!r} is not another party of this session")
    if not 1 <= round_ <= config.session.rounds:
        raise ConfigError("--round", f"a round of the session (1..{config.session.rounds})")
    if reason not in KILL_REASONS:
        raise ConfigError("--reason", f"one of {', '.join(KILL_REASONS)}")
    signed = sign_kill_vote(
        key.signing_key,
        session=bytes.fromhex(config.session_id),
        voter=key.party,
        target=target,
        victim=hashes[target],
        round_=round_,
    )
    return KillVote(
        config.session_id,
        round_,
        key.party,
        target,
        reason,
        signed.vkey.hex(),
        signed.signature.hex(),
    )


def release_votes(
    config: SessionConfig,
    key: PaymentKey,
    targets: Iterable[str],
    hashes: Mapping[str, bytes] | None = None,
) -> list[ReleaseVote]:
    """``key.party``'s release votes for ``targets`` (signed with its payment key; ``hashes``
    as for :func:`kill_vote`)."""
    from zkadapt.escrow.votes import sign_release_vote

    hashes = hashes if hashes is not None else payment_key_hashes(config)
    votes = []
    for target in targets:
        if target not in hashes or target == key.party:
            raise ConfigError("--release", f"{target!r} is not another party of this session")
        signed = sign_release_vote(
            key.signing_key,
            session=bytes.fromhex(config.session_id),
            voter=key.party,
            target=target,
            owner=hashes[target],
        )
        votes.append(
            ReleaseVote(
                config.session_id,
                config.session.rounds,
                key.party,
                target,
                signed.vkey.hex(),
                signed.signature.hex(),
            )
        )
    return votes


def release_targets(settlement: Settlement, party: str) -> tuple[str, ...]:
    """Whom an honest ``party`` releases once the settlement is final: every other
    remaining depositor whose lock lists it (a newcomer's votes count on no listed lock).

    Raises:
        EscrowError: the settlement is pending, or ``party`` is no remaining depositor.
    """
    if not settlement.final:
        raise EscrowError("the settlement is pending: nothing to release yet")
    remaining = [p for p in settlement.depositors if p not in settlement.slashed]
    if party not in remaining:
        raise EscrowError(f"{party} is not a remaining depositor of this settlement")
    return tuple(p for p in remaining if p != party and party in settlement.lock_members(p))


# --- settle and refund ----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The settlement the channel implies and the locks to spend for it.

    Attributes:
        settlement: the rules' settlement.
        spends: the unspent locks, each with its redeemer and payouts.
        done: owners whose lock is already spent (settled or refunded before).
        newcomers: the newcomers' payment key hashes (their locks and payouts).
        missing: owner -> why its lock cannot be settled yet (a partial plan only: the
            channel lacks the signed votes its redeemer needs).
    """

    settlement: Settlement
    spends: tuple[Spend, ...]
    done: tuple[str, ...]
    missing: Mapping[str, str] = field(default_factory=dict)
    newcomers: Mapping[str, bytes] = field(default_factory=dict)


def missing_evidence(settlement: Settlement, view: EscrowView) -> dict[str, str]:
    """Owner -> why the channel's signed votes do not yet settle its lock (pure: no chain).

    Empty when every lock of a final settlement has the evidence its redeemer needs.
    """
    kills = list(view.kill_evidence.values())
    releases = list(view.release_evidence.values())
    missing = {}
    for owner in settlement.depositors:
        try:
            redeemer_for(settlement, owner, kills, releases)
        except EscrowError as exc:
            missing[owner] = str(exc)
    return missing


def settlement_plan(
    config: SessionConfig,
    context: Any,
    entries: Iterable[Entry],
    *,
    partial: bool = False,
    terms: EscrowTerms | None = None,
) -> Plan:
    """The locks to spend as the channel's history says, with the evidence it holds.

    With ``partial``, a lock whose votes are short is left out (named in ``Plan.missing``)
    instead of refusing the whole plan: a party that never released anyone does not keep
    the others' locks, which have their votes, from being settled.

    ``terms``: the escrow terms these entries imply, when the caller keeps them (a party
    process, :class:`~zkadapt.operator.party_escrow.PartyEscrow`); else read from them.

    Raises:
        EscrowError: the settlement is pending, not every party locked (then only the
            refund after the deadline applies), a lock is not what was agreed, or (unless
            ``partial``) the channel lacks the signed votes a redeemer needs.
    """
    from zkadapt.escrow.txs import LockInvalid, Spend, check_lock

    entries = list(entries)
    terms = terms if terms is not None else layer1_terms(config, entries)
    view = EscrowView.from_entries(entries, terms)
    settlement = settle(view, terms)
    if not settlement.final:
        raise EscrowError("the settlement is pending: the session is neither complete nor slashed")
    if not set(terms.parties) <= set(settlement.depositors):
        missing = ", ".join(p for p in terms.parties if p not in settlement.depositors)
        raise EscrowError(
            f"not every party deposited ({missing} did not): the locks can only be refunded "
            "after the deadline"
        )
    locks = session_locks(config, newcomer_hashes(terms))
    kills = list(view.kill_evidence.values())
    releases = list(view.release_evidence.values())
    spends, done, missing = [], [], {}
    for owner in settlement.depositors:
        ref = view.refs.get(owner, "")
        try:
            utxo = check_lock(context, locks, owner, ref)
        except LockInvalid as exc:
            if "not in the UTxO" in str(exc):
                done.append(owner)
                continue
            raise
        try:
            redeemer = redeemer_for(settlement, owner, kills, releases)
        except EscrowError as exc:
            if not partial:
                raise
            missing[owner] = str(exc)
            continue
        spends.append(Spend(utxo, owner, redeemer, settlement_payouts(settlement, owner)))
    return Plan(settlement, tuple(spends), tuple(done), missing, locks.newcomers)


def submit_and_wait(config: SessionConfig, context: Any, tx: Any) -> str:
    """Submit ``tx`` and wait until its first output is in the UTxO; returns its id."""
    from zkadapt.cardano.chain import wait_confirmed

    context.submit_tx(tx)
    tx_id = str(tx.transaction_body.id)
    wait_confirmed(context, tx_id, _confirm_timeout(config))
    return tx_id


def settle_locks(
    config: SessionConfig,
    context: Any,
    spends: Sequence[Spend],
    key: PaymentKey,
    newcomers: Mapping[str, bytes] | None = None,
) -> list[str]:
    """Spend ``spends`` paid by ``key``: in one transaction, or in halves (recursively) when
    their scripts need more than one transaction's execution units (five parties with two
    slashed need about 17.6 M memory units, the limit is 14 M); returns the transaction ids.
    """
    from zkadapt.escrow.txs import TooManyLocks, build_settlement

    locks = session_locks(config, newcomers)
    try:
        tx = build_settlement(context, locks, spends, key.address, key.signing_key)
    except TooManyLocks:
        if len(spends) < 2:
            raise
        half = len(spends) // 2
        first = settle_locks(config, context, spends[:half], key, newcomers)
        return first + settle_locks(config, context, spends[half:], key, newcomers)
    return [submit_and_wait(config, context, tx)]


def refundable_locks(
    config: SessionConfig, context: Any, newcomers: Mapping[str, bytes] | None = None
) -> dict[str, Any]:
    """Every unspent lock at the session's address that is exactly a party's agreed lock
    (owner -> UTxO; the first one per owner; ``newcomers`` adds theirs). Needs no channel:
    after a head is closed and gone, the chain alone says what to refund."""
    from zkadapt.escrow.tx_context import as_data
    from zkadapt.escrow.txs import same_data

    locks = session_locks(config, newcomers)
    datums = {owner: locks.datum(owner) for owner in locks.owners}
    found: dict[str, Any] = {}
    for utxo in context.utxos(locks.address):
        output = utxo.output
        coin = output.amount if isinstance(output.amount, int) else output.amount.coin
        if output.datum is None or coin != locks.deposit:
            continue
        data = as_data(output.datum)
        for owner, datum in datums.items():
            if owner not in found and same_data(data, datum):
                found[owner] = utxo
    return found


def refund(
    config: SessionConfig,
    context: Any,
    key: PaymentKey,
    owners: Iterable[str] = (),
    newcomers: Mapping[str, bytes] | None = None,
) -> tuple[str, tuple[str, ...]]:
    """Return the locks of ``owners`` (default: every lock found; ``newcomers`` adds
    theirs) to their owners, after the deadline; returns the transaction id and whose
    locks it refunded.

    Raises:
        EscrowError: no lock to refund, or the deadline is not reached.
    """
    from zkadapt.escrow.txs import build_refund

    found = refundable_locks(config, context, newcomers)
    wanted = tuple(owners) or tuple(found)
    unknown = [o for o in wanted if o not in found]
    if unknown:
        raise EscrowError(f"no unspent lock of {', '.join(unknown)} at the session's address")
    if not wanted:
        raise EscrowError("no unspent lock at the session's address")
    utxos = {o: found[o] for o in wanted}
    locks = session_locks(config, newcomers)
    tx = build_refund(context, locks, utxos, key.address, key.signing_key)
    return submit_and_wait(config, context, tx), tuple(sorted(utxos))
