"""The escrow terms a session file fixes, for ``zkadapt escrow status`` and the dashboard."""

from __future__ import annotations

import hashlib

from zkadapt.config import SessionConfig
from zkadapt.errors import ConfigError
from zkadapt.escrow.rules import EscrowTerms


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
            key = bytes.fromhex(party.public_key)
            hashes[party.name] = hashlib.blake2b(key, digest_size=28).digest()
        else:
            raise ConfigError(
                "parties", f"{party.name} has no public_key or payment_key_hash (`zkadapt init`)"
            )
    return hashes


def terms_of(config: SessionConfig) -> EscrowTerms:
    """The escrow terms a session file fixes (``[escrow]``, rounds, parties, quorum; on
    layer 1 also the parties' payment key hashes)."""
    return EscrowTerms(
        session=config.session_id,
        parties=tuple(config.party_names),
        deposit=config.escrow.deposit_lovelace,
        rounds=config.session.rounds,
        quorum=config.quorum,
        silent_rounds=config.escrow.silent_rounds,
        payment_keys=payment_key_hashes(config) if on_layer1(config) else {},
    )
