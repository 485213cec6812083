"""An external key-generation centre: ``zkadapt keygen SESSION.toml --key kgc.skey``.

Someone who is not a party deals the session's threshold key (DESIGN.md section 4, CRYPTO.md
§1; Shoup 2000 as adapted by Damgård–Jurik). The session file names the centre's Ed25519 key
(``privacy.kgc_public_key``; its channel name is ``privacy.dealer``, default ``"kgc"``), so
the session id binds the parties to this dealer and to no one else. The centre

1. waits until every party has posted ``Joined`` (or ``wait_s`` passes on its clock with at
   least the quorum joined), by the same decision as a dealing party
   (:func:`zkadapt.protocol.key_epochs.decide_key`), so that the declared training-set sizes
   before its ``KeyDealt`` fix the FedAvg weights;
2. for every key epoch of the session (one, or ⌈rounds / refresh_every⌉ with key refresh)
   deals a fresh t-of-n key, stores the public key and each share sealed to that party's
   identity key, and posts ``KeyDealt`` signed with its own identity;
3. forgets everything: p, q, d and the shares live only inside :func:`deal_epochs`.

Parties accept a ``KeyDealt`` only from the configured dealer: the channel admits the
centre's signature under its name only because the session lists its key, and the protocol
history takes nothing but ``KeyDealt`` from a signer that is not a party. Since all epochs are
dealt at once, the centre holds every epoch's key for the seconds it takes to deal them;
refreshing therefore protects against parties' key shares leaking later, not against the
centre itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from zkadapt.assembly import open_party_store, open_session_channel
from zkadapt.config import ENCRYPTED_SCHEMES, SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.crypto.threshold import deal_threshold_key
from zkadapt.errors import ConfigError, CryptoError, ProtocolError, UsageError
from zkadapt.keyfiles import keyring_of
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.key_delivery import publish_key
from zkadapt.protocol.key_epochs import KeyDeal, KeyPlan, decide_key
from zkadapt.protocol.messages import KeyDealt, sign
from zkadapt.storage.base import ObjectStore


def check_kgc_session(config: SessionConfig, key_path: Path) -> IdentityKey:
    """Refuse sessions the centre cannot serve; load and check its identity key.

    Raises:
        ConfigError: not a Paillier session with an external dealer, or the key file does not
            hold the key the session names (exit code 2).
        UsageError: a backend the centre cannot reach yet (hydra, bucket stores).
    """
    privacy = config.privacy
    if privacy.scheme not in ENCRYPTED_SCHEMES or privacy.kgc_public_key is None:
        raise ConfigError(
            "privacy.kgc_public_key",
            "this session has no external key-generation centre (set privacy.scheme = "
            "'paillier' and privacy.kgc_public_key, or create it with `zkadapt init --kgc`)",
        )
    if not config.has_keys:
        raise ConfigError("parties", "every party needs a public_key to receive a sealed share")
    if config.channel.backend != "local" or config.storage.backend != "local":
        raise UsageError(
            "zkadapt keygen supports the local channel and store only (the centre has no "
            "hydra head seat or bucket of its own yet)"
        )
    try:
        identity = IdentityKey.load(key_path)
    except CryptoError as exc:
        raise ConfigError("--key", str(exc)) from None
    if identity.public.hex != privacy.kgc_public_key:
        raise ConfigError("--key", f"{key_path} is not the key named by privacy.kgc_public_key")
    return identity


def epoch_starts(config: SessionConfig) -> list[int]:
    """First round of every key epoch: [1] or [1, R + 1, 2R + 1, …] with refresh_every R."""
    every = config.privacy.refresh_every
    return list(range(1, config.session.rounds + 1, every)) if every else [1]


def run_kgc(
    config: SessionConfig,
    *,
    out_dir: Path,
    key_path: Path,
    wait_s: float,
    echo: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
) -> list[KeyDealt]:
    """Wait for the parties, deal every key epoch, announce each, keep nothing.

    Returns:
        The posted ``KeyDealt`` messages (public data only).

    Raises:
        UsageError: the key was dealt already.
        ProtocolError: fewer than the quorum joined within ``wait_s``.
    """
    identity = check_kgc_session(config, key_path)
    session, dealer = config.session_id, config.dealer
    store = open_party_store(config, None, out_dir)
    channel = open_session_channel(config, out_dir, identity=identity)
    history = SessionHistory(session, config.party_names)
    try:
        history.extend(channel.history(0))
        if history.key_dealt(0, dealer) is not None:
            raise UsageError(f"the key of session {session[:12]} was dealt already")
        plan = KeyPlan(
            tuple(config.party_names),
            config.privacy.keygen,
            dealer,
            config.threshold,
            config.privacy.key_bits,
            config.privacy.refresh_every,
        )
        expires = clock() + wait_s
        while True:
            joined = history.joined()
            deadline_passed = clock() > expires
            step = decide_key(
                plan, 0, dealer, joined=joined, dealt=False, deadline_passed=deadline_passed
            )
            if isinstance(step, KeyDeal):
                break
            history.extend(channel.wait(history.last_seq, 1.0))
        if len(joined) < config.quorum:
            raise ProtocolError(
                f"only {len(joined)} of {len(config.parties)} parties joined within {wait_s:g} s "
                f"(the quorum is {config.quorum}); start them with `zkadapt party`"
            )
        echo(f"{len(joined)} of {len(config.parties)} parties joined: {', '.join(sorted(joined))}")
        posted = []
        for epoch, first_round in enumerate(epoch_starts(config)):
            message = _deal_epoch(
                config, store, epoch, first_round, lambda m: channel.post(sign(m, dealer, identity))
            )
            echo(f"dealt key epoch {epoch} (rounds {first_round}+), key id {message.key_id[:16]}")
            posted.append(message)
        return posted
    finally:
        channel.close()


def _deal_epoch(
    config: SessionConfig,
    store: ObjectStore,
    epoch: int,
    first_round: int,
    post: Callable[[KeyDealt], object],
) -> KeyDealt:
    """Deal one epoch's key, store it and post ``KeyDealt``; the shares die with this frame."""
    names = config.party_names
    privacy = config.privacy
    public, shares = deal_threshold_key(
        privacy.key_bits, config.threshold, len(names), privacy.keygen
    )
    return publish_key(
        store,
        post,
        keyring_of(config),
        session=config.session_id,
        epoch=epoch,
        round_=first_round,
        sender=config.dealer,
        public=public,
        shares=dict(zip(names, shares, strict=True)),
    )
