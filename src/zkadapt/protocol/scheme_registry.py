"""Privacy schemes by name: what ``privacy.scheme`` may say and how each is built.

A scheme seals, sums and opens the parties' updates (:class:`~zkadapt.protocol.schemes.
UpdateScheme`). A new one is a module plus one :func:`register_scheme` call; the session
file accepts its name from then on. A factory receives the ``[privacy]`` section, the
strategy, and the few facts of the session it may need (:class:`SchemeInputs`), never the
whole session config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zkadapt.errors import ConfigError
from zkadapt.registry import Registry

if TYPE_CHECKING:
    from zkadapt.aggregation.strategy import Strategy
    from zkadapt.crypto.identity import Keyring
    from zkadapt.protocol.schemes import UpdateScheme
    from zkadapt.protocol.settings import PrivacyConfig


@dataclass(frozen=True)
class SchemeInputs:
    """What a scheme may need to know of the session besides ``[privacy]``.

    Attributes:
        keyring: every party's public identity; None while the session file has no keys
            (enough for a scheme that needs none).
        n_samples: this party's training examples (its FedAvg weight).
        threshold: decryption shares needed (the session's resolved value).
        dealer: who deals keys: a party or the KGC's channel name.
        timeout_s: how long a key-dealing phase waits.
        weighting: ``aggregation.weighting`` (:mod:`zkadapt.aggregation.weights`).
        max_share: the largest share of the mean one party may have (None: no cap).
        max_parties: ``membership.max_parties`` when parties may join (the packing leaves
            headroom for sums of that many updates); None: the listed parties only.
    """

    keyring: Keyring | None
    n_samples: int
    threshold: int
    dealer: str
    timeout_s: float
    weighting: str = "declared"
    max_share: float | None = None
    max_parties: int | None = None


SchemeFactory = Callable[["PrivacyConfig", "Strategy", SchemeInputs], "UpdateScheme"]

PRIVACY_SCHEMES: Registry[SchemeFactory] = Registry("privacy scheme")


def register_scheme(name: str, factory: SchemeFactory) -> None:
    """Make ``name`` a valid ``privacy.scheme``, built by ``factory(privacy, strategy, inputs)``.

    Raises:
        ValueError: ``name`` is not lowercase ``[a-z0-9_-]`` or is already registered.
    """
    PRIVACY_SCHEMES.register(name, factory)


def build_scheme(privacy: PrivacyConfig, strategy: Strategy, inputs: SchemeInputs) -> UpdateScheme:
    """The scheme ``privacy.scheme`` names."""
    return PRIVACY_SCHEMES.get(privacy.scheme)(privacy, strategy, inputs)


def _plain(privacy: PrivacyConfig, strategy: Strategy, inputs: SchemeInputs) -> UpdateScheme:
    """``none``: updates travel as plain tensors."""
    from zkadapt.protocol.schemes import PlainScheme

    return PlainScheme(strategy, weighting=inputs.weighting, max_share=inputs.max_share)


def _paillier(privacy: PrivacyConfig, strategy: Strategy, inputs: SchemeInputs) -> UpdateScheme:
    """``paillier``: packed threshold-Paillier ciphertexts with proofs (docs/crypto.md)."""
    from zkadapt.protocol.secure_aggregation import PaillierScheme

    return _threshold_scheme(PaillierScheme, privacy, inputs)


def _masked(privacy: PrivacyConfig, strategy: Strategy, inputs: SchemeInputs) -> UpdateScheme:
    """``masked``: Ring-LWR masks, threshold Paillier for the seeds only (docs/masking.md)."""
    from zkadapt.protocol.masked import MaskedScheme

    return _threshold_scheme(MaskedScheme, privacy, inputs)


def _threshold_scheme(cls: Any, privacy: PrivacyConfig, inputs: SchemeInputs) -> UpdateScheme:
    """A scheme on the session's threshold-Paillier key (both encrypted schemes take these)."""
    if inputs.keyring is None:
        raise ConfigError(
            "parties", "every party needs a public_key (create keys with `zkadapt init`)"
        )
    return cls(  # type: ignore[no-any-return]
        keyring=inputs.keyring,
        n_samples=inputs.n_samples,
        key_bits=privacy.key_bits,
        threshold=inputs.threshold,
        keygen=privacy.keygen,
        dealer=inputs.dealer,
        quant_bits=privacy.quant_bits,
        clip=privacy.clip,
        refresh_every=privacy.refresh_every,
        timeout_s=inputs.timeout_s,
        textbook=privacy.textbook,
        workers=privacy.workers,
        weighting=inputs.weighting,
        max_share=inputs.max_share,
        max_parties=inputs.max_parties,
    )


register_scheme("none", _plain)
register_scheme("paillier", _paillier)
register_scheme("masked", _masked)
