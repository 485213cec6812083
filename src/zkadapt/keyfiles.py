"""Where identity keys and resolved session files live on disk (no heavy imports).

``zkadapt init`` and ``zkadapt run`` give every party an Ed25519 identity key, written in
the cardano-cli envelope format with mode 0600, and record the public halves in the
session file, whose hash is the session id (DESIGN.md section 2).
"""

from __future__ import annotations

from pathlib import Path

from zkadapt.config import KGC_NAME, SessionConfig, config_from_dict, with_public_keys
from zkadapt.crypto.identity import IdentityKey, Keyring, PublicIdentity
from zkadapt.errors import ConfigError

#: The resolved session file that ``init`` and ``run`` write.
SESSION_FILE = "session.toml"
#: Extension of identity key files.
KEY_SUFFIX = ".skey"
#: The key-generation centre's identity key that ``zkadapt init --kgc`` writes.
KGC_KEY_FILE = f"{KGC_NAME}{KEY_SUFFIX}"


def ensure_keys(config: SessionConfig, key_dir: Path) -> SessionConfig:
    """Give every party an identity key, creating missing ones in ``key_dir``.

    A session file without public keys (the embedded examples) gets fresh keys, reused on
    a later run with the same output directory so the session id stays the same.
    """
    if config.has_keys:
        return config
    key_dir.mkdir(parents=True, exist_ok=True)
    public = {}
    for name in config.party_names:
        path = key_dir / f"{name}{KEY_SUFFIX}"
        key = IdentityKey.load(path) if path.exists() else IdentityKey.generate()
        if not path.exists():
            key.save(path)
        public[name] = key.public.hex
    return with_public_keys(config, public)


def keyring_of(config: SessionConfig) -> Keyring:
    """Public identities of every party, from the session file."""
    if not config.has_keys:
        raise ConfigError(
            "parties", "every party needs a public_key (create keys with `zkadapt init`)"
        )
    return Keyring({p.name: PublicIdentity.from_hex(p.public_key or "") for p in config.parties})


def channel_keyring_of(config: SessionConfig) -> Keyring:
    """Who may sign channel entries: every party, plus the external key-generation centre.

    The KGC's entries pass the channel's signature check under its configured name
    (``config.dealer``); the protocol then takes only ``KeyDealt`` from it
    (:class:`~zkadapt.protocol.history.SessionHistory`). Sealing and share indices use
    :func:`keyring_of`, which holds the parties only.
    """
    parties = keyring_of(config)
    kgc = config.privacy.kgc_public_key
    if kgc is None:
        return parties
    return Keyring({**dict(parties), config.dealer: PublicIdentity.from_hex(kgc)})


def ensure_kgc_key(config: SessionConfig, key_dir: Path) -> SessionConfig:
    """Give the session an external key-generation centre with a key in ``key_dir``.

    Writes (or reuses) ``key_dir/kgc.skey`` and returns the session with ``privacy.scheme =
    "paillier"`` and ``privacy.kgc_public_key`` set (``zkadapt init --kgc``).
    """
    key_dir.mkdir(parents=True, exist_ok=True)
    path = key_dir / KGC_KEY_FILE
    key = IdentityKey.load(path) if path.exists() else IdentityKey.generate()
    if not path.exists():
        key.save(path)
    raw = config.model_dump(mode="json")
    raw["privacy"].update(scheme="paillier", kgc_public_key=key.public.hex, dealer=None)
    return config_from_dict(raw)
