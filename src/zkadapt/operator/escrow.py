"""The escrow terms a session file fixes (and the channel, for newcomers), for the escrow's
commands, each party's escrow steps and the dashboard."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from zkadapt.channel.base import Entry
from zkadapt.config import SessionConfig
from zkadapt.errors import ConfigError
from zkadapt.escrow.rules import AdmittedDeposit, EscrowTerms
from zkadapt.protocol.history import SessionHistory


def on_layer1(config: SessionConfig) -> bool:
    """Whether the session's escrow is settled on layer 1 (``escrow.deadline`` and
    ``[cardano]`` are set): then only votes signed with the payment keys count."""
    return config.escrow.deadline is not None and config.cardano is not None


def payment_key_hashes(config: SessionConfig) -> dict[str, bytes]:
    """Every party's payment key hash: ``payment_key_hash``, else its identity key's hash
    (the identity key is the payment key unless ``cardano.payment_keys`` says otherwise).

    Raises:
        ConfigError: a party has neither (its identity key is missing from the file).
    """
    hashes = {}
    for party in config.parties:
        if party.payment_key_hash is not None:
            hashes[party.name] = bytes.fromhex(party.payment_key_hash)
        elif party.public_key is not None:
            hashes[party.name] = key_hash(party.public_key)
        else:
            raise ConfigError(
                "parties", f"{party.name} has no public_key or payment_key_hash (`zkadapt init`)"
            )
    return hashes


def membership_reader(config: SessionConfig) -> SessionHistory:
    """A reader of the session's channel by the parties' rules (its roster: who joined and
    who was marked absent, :func:`terms_of`)."""
    return SessionHistory(config.session_id, config.party_names, config.channel_rules())


def key_hash(public_key: str) -> bytes:
    """The payment key hash (blake2b-224) of an Ed25519 public key given in hex: a
    newcomer's identity key is its payment key (the datum of its lock names this hash)."""
    return hashlib.blake2b(bytes.fromhex(public_key), digest_size=28).digest()


def terms_of(
    config: SessionConfig,
    entries: Iterable[Entry] | None = None,
    *,
    history: SessionHistory | None = None,
) -> EscrowTerms:
    """The escrow terms a session file fixes (``[escrow]``, rounds, parties, quorum; on
    layer 1 also the parties' payment key hashes).

    With ``[membership]`` and the channel's ``entries``, the terms also hold the newcomers
    the round machine admitted and the members it marked absent, read by the parties' own
    rules (docs/membership.md): every party reading the same entries gets the same terms.
    A caller that reads the channel again and again passes its own ``history`` (a
    :func:`membership_reader` it extends with each new entry) instead of ``entries``.
    """
    newcomers: dict[str, AdmittedDeposit] = {}
    absent: frozenset[str] = frozenset()
    if config.membership is not None and history is None and entries is not None:
        history = membership_reader(config)
        history.extend(entries)
    if config.membership is not None and history is not None:
        roster = history.roster
        if roster is not None:
            for n in roster.admitted:
                boundary = history.cut(n.round - 1)
                if boundary is not None:  # admitted at that cut, always there
                    joined = AdmittedDeposit(n.key, n.deposit, n.lock, boundary, n.round)
                    newcomers[n.name] = joined
            absent = frozenset(p for p, _ in roster.absent)
    keys: dict[str, bytes] = {}
    if on_layer1(config):
        keys = {**payment_key_hashes(config)}
        keys.update({name: key_hash(n.key) for name, n in newcomers.items()})
    return EscrowTerms(
        session=config.session_id,
        parties=tuple(config.party_names),
        deposit=config.escrow.deposit_lovelace,
        rounds=config.session.rounds,
        quorum=config.quorum,
        silent_rounds=config.escrow.silent_rounds,
        payment_keys=keys,
        newcomers=newcomers,
        absent=absent,
    )
