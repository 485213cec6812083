"""The composition root: turns a ``SessionConfig`` into running parts.

Every entry point (``zkadapt run``, ``party``, ``audit``, ``keygen``, ``escrow``, ``head``,
the dashboard, the KGC) gets its store, channel, learner, strategy, privacy scheme and
identities here, and nowhere else. Each part is chosen by name from its registry
(:data:`~zkadapt.storage.STORE_BACKENDS`, :data:`~zkadapt.channel.CHANNEL_BACKENDS`,
:data:`~zkadapt.protocol.scheme_registry.PRIVACY_SCHEMES`,
:data:`~zkadapt.aggregation.strategy.STRATEGY_REGISTRY`) and receives only its own typed
settings section, so the leaf packages never import the config (DESIGN.md section 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from zkadapt.aggregation.strategy import Strategy, strategy_from_settings
from zkadapt.channel import CHANNEL_BACKENDS, CopyPlaces, OutsiderPolicy, open_channel
from zkadapt.channel.base import Channel
from zkadapt.config import SessionConfig
from zkadapt.crypto.identity import IdentityKey
from zkadapt.errors import ConfigError, CryptoError, UsageError
from zkadapt.keyfiles import channel_keyring_of, keyring_of
from zkadapt.learning.base import Learner
from zkadapt.out_dirs import party_dir
from zkadapt.protocol.messages import introduction_reader
from zkadapt.protocol.scheme_registry import SchemeInputs, build_scheme
from zkadapt.protocol.schemes import UpdateScheme
from zkadapt.seeds import derive_seed
from zkadapt.storage import STORE_BACKENDS, bucket_locations, open_store
from zkadapt.storage.at_rest import EncryptedStore, key_from_env
from zkadapt.storage.base import ObjectStore
from zkadapt.storage.location import BucketLocation

if TYPE_CHECKING:
    from zkadapt.learning.text_data import OwnText

__all__ = [
    "channel_copies",
    "channel_keyring_of",
    "keyring_of",
    "learner_for",
    "load_identity",
    "make_scheme",
    "make_strategy_for",
    "newcomer_identity",
    "newcomer_learner",
    "open_party_store",
    "open_session_channel",
    "outsider_policy",
    "party_locations",
]


def load_identity(config: SessionConfig, party: str, key_path: Path) -> IdentityKey:
    """Load ``party``'s private key and check it matches the session file's public key."""
    if party not in config.party_names:
        raise ConfigError(
            "--party", f"{party!r} is not a party of this session ({', '.join(config.party_names)})"
        )
    key = IdentityKey.load(key_path)
    expected = keyring_of(config)[party]
    if key.public != expected:
        raise CryptoError(
            f"{key_path} is not {party}'s key: its public key differs from the session file"
        )
    return key


def newcomer_identity(config: SessionConfig, party: str, key_path: Path) -> IdentityKey:
    """The identity key of ``party``, which no session file lists (``zkadapt join``): read
    from ``key_path``, or created there (mode 0600) when the file does not exist yet.

    Raises:
        CryptoError: the key is unreadable, or it is a listed party's key (a newcomer signs
            with its own key; the request would be refused as a reused key).
    """
    if key_path.exists():
        key = IdentityKey.load(key_path)
    else:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        key = IdentityKey.generate()
        key.save(key_path)
    for name, public in keyring_of(config).items():
        if public == key.public:
            raise CryptoError(f"{key_path} is {name}'s key: a newcomer joins with its own key")
    return key


def party_locations(config: SessionConfig) -> dict[str, BucketLocation]:
    """Every party's bucket and prefix, for a bucket backend (``s3`` or ``storj``)."""
    scheme = STORE_BACKENDS.get(config.storage.backend).uri_scheme
    if scheme is None:
        raise ValueError(f"storage backend {config.storage.backend!r} has no buckets")
    return bucket_locations(config.storage, config.parties, scheme)


def open_party_store(config: SessionConfig, party: str | None, out_dir: Path) -> ObjectStore:
    """The store ``party`` writes to and reads from; ``party=None`` opens it read-only.

    For ``s3`` and ``storj`` this sends one request to check that the party can use its own
    bucket, so wrong credentials or a missing bucket fail here, in one line naming both.

    Args:
        config: the validated session.
        party: the party whose credentials and bucket to use, or None for an auditor.
        out_dir: the output directory a relative ``storage.path`` resolves against.

    Raises:
        ConfigError: the backend's package or the encryption key is missing.
        StorageError: the party cannot reach or use its bucket.
    """
    store = open_store(
        config.storage.backend,
        settings=config.storage,
        party=party,
        owners=config.parties,
        out_dir=out_dir,
        patience_s=config.protocol.submit_timeout_s,  # retry an outage up to the deadline
    )
    if config.storage.encrypt:
        store = EncryptedStore(store, key_from_env(), party=party)
    return store


def open_session_channel(
    config: SessionConfig,
    out_dir: Path,
    *,
    party: str | None = None,
    identity: IdentityKey | None = None,
    record: bool | None = None,
    api: str | None = None,
) -> Channel:
    """The session's channel; read-only without ``identity`` (runner, audit, dashboard).

    Args:
        config: the session (with every party's public key).
        out_dir: output directory; a relative ``channel.path`` resolves here.
        party: whose node to talk to (hydra: each party has its own hydra-node API);
            observers without one read through the first party's node.
        identity: the party's key, which signs what it posts (hydra: the tx witness).
        record: keep a copy of the channel under ``out_dir`` (hydra: a head's history is
            gone after fanout; :func:`channel_copies`). By default a party with its key
            keeps one; ``zkadapt run`` asks for one as an observer.
        api: the hydra-node to talk to instead of ``party``'s (a newcomer has no node in
            the session file: it posts through a member's).
    """
    return open_channel_at(
        config,
        out_dir / config.channel.path,
        party=party,
        identity=identity,
        out_dir=out_dir,
        record=record,
        api=api,
    )


def channel_copies(out_dir: Path, party: str | None = None, *, record: bool = False) -> CopyPlaces:
    """Where copies of a channel live under ``out_dir`` (docs/hydra.md).

    Each party keeps ``OUT/parties/<name>/hydra-channel.jsonl`` and ``zkadapt run`` keeps
    ``OUT/hydra-channel.jsonl``; a reader tries the runner's copy, then every party's.
    """
    from zkadapt.channel.hydra.record import COPY_FILE

    runner = out_dir / COPY_FILE
    own = party_dir(out_dir, party) / COPY_FILE if party is not None else runner
    parties = sorted((out_dir / "parties").glob(f"*/{COPY_FILE}"))
    return CopyPlaces(own if record else None, (runner, *parties))


def open_channel_at(
    config: SessionConfig,
    path: Path,
    *,
    party: str | None = None,
    identity: IdentityKey | None = None,
    out_dir: Path | None = None,
    record: bool | None = None,
    api: str | None = None,
) -> Channel:
    """The session's channel with its ledger file at ``path`` (a dashboard's own path).

    ``out_dir`` (default: the folder of ``path``) holds the copies a backend like ``hydra``
    keeps and falls back to (:func:`channel_copies`); ``record`` as in
    :func:`open_session_channel`. A session newcomers may join carries their envelopes
    (:func:`outsider_policy`); ``api`` is the hydra-node a newcomer posts through.
    """
    backend = config.channel.backend
    entry = CHANNEL_BACKENDS.get(backend)
    extra: dict[str, object] = {}
    if entry.keeps_copies:
        keep = record if record is not None else (identity is not None and party is not None)
        extra["copies"] = channel_copies(out_dir or path.parent, party, record=keep)
    outsiders = outsider_policy(config)
    if outsiders is not None:
        extra["outsiders"] = outsiders
    if api is not None:
        extra["api"] = api
    return open_channel(
        backend,
        keyring=channel_keyring_of(config),
        path=path,
        party=party or config.party_names[0],  # observers read through the first node
        identity=identity,
        settings=getattr(config.channel, entry.section) if entry.section else None,
        **extra,
    )


def outsider_policy(config: SessionConfig) -> OutsiderPolicy | None:
    """How the session's channel carries parties no session file lists (docs/membership.md):
    with ``membership.admission`` ``"open"`` or ``"vote"``, a newcomer's self-signed
    ``JoinRequest`` of this session introduces its key; None otherwise (outsiders refused)."""
    section = config.membership
    if section is None or section.admission == "fixed":
        return None
    return OutsiderPolicy(introduction=introduction_reader(config.session_id))


def learner_for(config: SessionConfig, party: str | None, *, data_root: Path) -> Learner:
    """``party``'s learner for a session (``None``: the pooled, centralized learner).

    The partition seed comes from the session id, so every party splits the data the same way.
    A causal LM reads each party's own text instead (``data.parties``).
    """
    from zkadapt.learning.builder import build_learner

    names = config.party_names
    if config.model.kind == "causal-lm":
        return _causal_lm(config, party, data_root)
    return build_learner(
        model=config.model,
        data=config.data,
        training=config.training,
        party_index=None if party is None else names.index(party),
        n_parties=len(names),
        partition_seed=derive_seed(config.seed_id, "partition") % 2**32,
        data_root=data_root,
    )


def _causal_lm(
    config: SessionConfig, party: str | None, data_root: Path, own: OwnText | None = None
) -> Learner:
    """The session's QLoRA learner for ``party`` (a newcomer's with ``own``, its text)."""
    from zkadapt.learning.builder import build_causal_lm

    return build_causal_lm(
        model=config.model,
        data=config.data,
        training=config.training,
        party=party,
        party_names=config.party_names,
        freeze_a=config.aggregation.strategy == "ffa-lora",
        data_root=data_root,
        own=own,
    )


def newcomer_learner(
    config: SessionConfig, party: str, *, data_root: Path, own: OwnText | None = None
) -> Learner:
    """The learner of ``party``, a newcomer no session file lists (``zkadapt join``).

    A causal LM trains on ``own``, the newcomer's own text (``zkadapt join --data``, which
    ``data.parties`` in the session file cannot name: the session id is the file's hash),
    and is evaluated globally on the listed parties' set (their pooled held-out, or
    ``data.eval``), so its metrics are comparable with theirs
    (:func:`~zkadapt.learning.builder.build_causal_lm`).

    A built-in or shared data set (``data.source``) is split in one more part than the
    listed parties, by a seed of the session and the newcomer's name, and the newcomer
    trains on the last part: data of its own in a demo (it may overlap what the listed
    parties train on, which only a real newcomer's own files avoid: ``data.path`` resolves
    against its ``--data-root``).

    Raises:
        UsageError: a causal LM without ``own``, or ``own`` for another model kind (its
            newcomer's data comes from the split above).
    """
    from zkadapt.learning.builder import build_learner

    names = config.party_names
    if config.model.kind == "causal-lm":
        if own is None:
            raise UsageError(
                "a causal-lm newcomer brings its own text: pass zkadapt join --data PATH "
                "(the session file's data.parties cannot name it)"
            )
        return _causal_lm(config, party, data_root, own)
    if own is not None:
        raise UsageError(
            f'--data is for model.kind = "causal-lm"; with model.kind = '
            f"{config.model.kind!r} a newcomer trains on its part of data.source (data.path "
            "resolves against --data-root)"
        )
    return build_learner(
        model=config.model,
        data=config.data,
        training=config.training,
        party_index=len(names),
        n_parties=len(names) + 1,
        partition_seed=derive_seed(config.seed_id, "partition", "newcomer", party) % 2**32,
        data_root=data_root,
    )


def make_strategy_for(config: SessionConfig) -> Strategy:
    """The aggregation strategy named by ``aggregation.strategy``, with its parameters."""
    return strategy_from_settings(config.aggregation)


def make_scheme(
    config: SessionConfig, strategy: Strategy, *, n_samples: int, timeout_s: float | None = None
) -> UpdateScheme:
    """The update scheme named by ``privacy.scheme`` (``timeout_s`` overrides the deadline)."""
    inputs = SchemeInputs(
        keyring=keyring_of(config) if config.has_keys else None,
        n_samples=n_samples,
        threshold=config.threshold,
        dealer=config.dealer,
        timeout_s=config.protocol.submit_timeout_s if timeout_s is None else timeout_s,
        weighting=config.aggregation.weighting,
        max_share=config.max_weight_share,
        max_parties=config.membership.max_parties if config.membership is not None else None,
    )
    return build_scheme(config.privacy, strategy, inputs)
