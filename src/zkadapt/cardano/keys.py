"""A party's payment signing key for its own layer-1 transactions (``[cardano] payment_keys``).

``payment_keys`` names a cardano-cli TextEnvelope per party (``{party}`` replaced), relative
to the session file's directory; unset, the party's identity key (``keys/{party}.skey``, the
same envelope and key type: DESIGN.md section 2) is its payment key. PyCardano reads the
envelope; plain and extended payment keys are both accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkadapt.errors import ConfigError

if TYPE_CHECKING:
    from zkadapt.cardano.settings import CardanoConfig

#: Where ``zkadapt init`` writes identity keys, relative to the session directory.
IDENTITY_KEY = "keys/{party}.skey"
#: TextEnvelope types PyCardano loads as payment signing keys.
PAYMENT_TYPES = (
    "PaymentSigningKeyShelley_ed25519",
    "PaymentExtendedSigningKeyShelley_ed25519_bip32",
)


def payment_key_path(settings: CardanoConfig, party: str, session_dir: Path) -> Path:
    """The file of ``party``'s payment key (``payment_keys``, else its identity key)."""
    pattern = settings.payment_keys or IDENTITY_KEY
    path = Path(pattern.replace("{party}", party))
    return path if path.is_absolute() else session_dir / path


def load_payment_key(settings: CardanoConfig, party: str, session_dir: Path) -> Any:
    """``party``'s payment signing key (PyCardano ``PaymentSigningKey`` or extended).

    Raises:
        ConfigError: the file is missing, unreadable or not a payment signing key envelope
            (naming ``cardano.payment_keys`` and the path; never the key).
    """
    from pycardano import PaymentExtendedSigningKey, PaymentSigningKey

    path = payment_key_path(settings, party, session_dir)
    key = "cardano.payment_keys"
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, f"{party}'s payment key {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            key, f"{path}: not a cardano-cli key envelope ({type(exc).__name__})"
        ) from None
    kind = envelope.get("type") if isinstance(envelope, dict) else None
    if kind not in PAYMENT_TYPES:
        raise ConfigError(key, f"{path}: not a payment signing key (type {kind!r})")
    cls = PaymentSigningKey if kind == PAYMENT_TYPES[0] else PaymentExtendedSigningKey
    try:
        return cls.from_json(json.dumps(envelope))
    except Exception as exc:  # PyCardano raises several kinds on a bad cborHex
        raise ConfigError(key, f"{path}: unreadable key ({type(exc).__name__})") from None
