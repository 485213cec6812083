"""SessionConfig: the shared session file, parsed and validated once at the edge.

A session file (TOML) is shared by every party; its canonical hash is the session id
(DESIGN.md section 2). Every section is a small pydantic model that forbids unknown keys,
so a typo is a one-line :class:`~zkadapt.errors.ConfigError` naming the key instead of a
silent default. Components receive the typed sub-configs, never the raw dict (STYLE rule 11).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel, Field, ValidationError

from zkadapt.aggregation.settings import AggregationConfig
from zkadapt.cardano.settings import CardanoConfig
from zkadapt.channel.hydra.settings import HydraChannelConfig
from zkadapt.channel.settings import ChannelConfig
from zkadapt.errors import ConfigError
from zkadapt.escrow.settings import EscrowConfig
from zkadapt.learning.settings import DataConfig, ModelConfig, TrainingConfig, check_data
from zkadapt.protocol.machine import MachineSpec
from zkadapt.protocol.membership import MembershipRules
from zkadapt.protocol.settings import MembershipConfig, PrivacyConfig, ProtocolConfig
from zkadapt.sections import Section, added_later, canonical_dump, identity_dump, is_changed
from zkadapt.storage import STORE_BACKENDS
from zkadapt.storage.settings import StorageConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [  # each section's model lives beside its backend; re-exported here
    "AggregationConfig",
    "CardanoConfig",
    "ChannelConfig",
    "DataConfig",
    "EscrowConfig",
    "HydraChannelConfig",
    "MembershipConfig",
    "ModelConfig",
    "PartyConfig",
    "PrivacyConfig",
    "ProtocolConfig",
    "SessionConfig",
    "SessionSection",
    "StorageConfig",
    "TrainingConfig",
    "config_from_dict",
    "config_from_toml",
    "default_party_names",
    "example_config",
    "load_config",
    "with_overrides",
    "with_public_keys",
]

#: Privacy schemes that encrypt under the session's threshold-Paillier key (key epochs,
#: decryption threshold, dealer/KGC settings apply).
ENCRYPTED_SCHEMES = ("paillier", "masked")

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


class SessionSection(Section):
    """Session-wide settings."""

    name: str = "zkadapt-session"
    rounds: int = Field(5, ge=1, le=100_000)
    seed: int = Field(0, ge=0, description="Extra seed mixed into the session id derivations.")


class PartyConfig(Section):
    """One participant: its name, public identity key (hex Ed25519), optional own bucket."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")
    public_key: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    bucket: str | None = Field(None, description="This party's bucket (overrides storage.bucket).")
    payment_key_hash: str | None = added_later(
        None,
        pattern=r"^[0-9a-f]{56}$",
        description="The party's layer-1 payment key hash (hex), when its payment key is not "
        "its identity key (cardano.payment_keys); the escrow's lock datum names it.",
    )


class SessionConfig(Section):
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
    #: Layer-1 access (optional; absent: no chain context, and the session id of before).
    cardano: CardanoConfig | None = added_later(None)
    #: Absent (None) in sessions recorded before it existed: their ids stay as they were.
    membership: MembershipConfig | None = added_later(None)
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
    def max_weight_share(self) -> float | None:
        """The cap on one party's share of the mean: ``aggregation.max_weight``, else 1/2
        with three or more parties (docs/threats.md section 3), else none."""
        if self.aggregation.max_weight is not None:
            return self.aggregation.max_weight
        return 0.5 if len(self.parties) >= 3 else None

    @property
    def threshold(self) -> int:
        """Decryption shares needed: n for additive keys, else the setting or the quorum."""
        if self.privacy.keygen == "additive":
            return len(self.parties)
        return self.privacy.threshold or self.quorum

    @property
    def encrypted(self) -> bool:
        """Whether updates are sealed under the session's threshold key."""
        return self.privacy.scheme in ENCRYPTED_SCHEMES

    @property
    def close_votes(self) -> int:
        """Distinct ``PhaseClosed`` votes that close a submit phase (docs/threats.md section
        2): the setting, else the decryption threshold t (encrypted) or a majority, never
        more than the quorum (the parties that can finish a round can also close it)."""
        if self.protocol.close_votes is not None:
            return self.protocol.close_votes
        default = self.threshold if self.encrypted else len(self.parties) // 2 + 1
        return min(default, self.quorum)

    @property
    def min_accepted(self) -> int:
        """The smallest accepted set whose sum key holders decrypt (encrypted schemes; 0
        otherwise): the setting, else 3 with three or more parties, else 2."""
        if not self.encrypted:
            return 0
        if self.privacy.min_accepted is not None:
            return self.privacy.min_accepted
        return 3 if len(self.parties) >= 3 else 2

    def channel_rules(self, party: str = "") -> MachineSpec:
        """The round rules every party applies to the channel (quorum, t, close votes,
        ``min_accepted``), as the machine spec of ``party``; the default ``""`` is no party:
        an observer (audit, report, dashboard) reading the channel by the same rules."""
        return MachineSpec(
            party,
            tuple(self.party_names),
            self.session.rounds,
            self.quorum,
            self.threshold if self.encrypted else 0,
            holds_share=False,
            close_votes=self.close_votes,
            min_accepted=self.min_accepted,
            membership=self.membership_rules,
        )

    @property
    def membership_rules(self) -> MembershipRules | None:
        """``[membership]`` as the round machine decides with it (docs/membership.md); None
        without the section (the listed parties are the members of every round)."""
        section = self.membership
        if section is None:
            return None
        layer1 = self.escrow.deadline is not None and self.cardano is not None
        return MembershipRules(
            admission=section.admission,
            votes=section.votes,
            max_parties=section.max_parties,
            absent_rounds=section.absent_rounds,
            listed_keys=frozenset(p.public_key for p in self.parties if p.public_key),
            quorum=self.protocol.quorum,
            close_votes=self.protocol.close_votes,
            threshold=self.threshold if self.encrypted else 0,
            min_deposit=self.escrow.deposit_lovelace if layer1 else 0,
            lock_required=layer1,
        )

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
        """Canonical JSON of what the session is (sorted keys, no whitespace).

        Keys that only say where it runs (:func:`~zkadapt.sections.locator`, such as
        ``channel.hydra.head_id``) are left out: they never change the session id.
        """
        return json.dumps(identity_dump(self), sort_keys=True, separators=(",", ":")).encode()

    @property
    def seed_id(self) -> str:
        """What every random choice of learning is seeded from: G(0), partition, shuffling.

        It hashes only the settings that define the experiment (session seed, model, data,
        training, aggregation and party names), so the same experiment gets the same G(0)
        and data split whatever the privacy scheme, storage, channel or keys. That is what
        makes "paillier vs none" or "s3 vs local" comparisons exact (DESIGN.md section 3).
        """
        full = identity_dump(self)
        doc = {k: full[k] for k in ("model", "data", "training", "aggregation")}
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
        return tomli_w.dumps(_drop_none(canonical_dump(self)))


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
    check_data(config.data)
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
    encrypted = privacy.scheme in ENCRYPTED_SCHEMES
    if encrypted and len(names) > 1 and config.threshold < 2:
        raise ConfigError(
            "privacy.threshold" if privacy.threshold else "protocol.quorum",
            "a decryption threshold of 1 lets any single party decrypt every update; use >= 2",
        )
    if encrypted and len(names) > 1 and config.quorum < 2:
        raise ConfigError(
            "protocol.quorum",
            "with encrypted updates a quorum of 1 would decrypt a single party's update; use >= 2",
        )
    for key, value in (
        ("protocol.close_votes", config.protocol.close_votes),
        ("privacy.min_accepted", privacy.min_accepted),
    ):
        if value is not None and value > len(names):
            raise ConfigError(key, f"{value} exceeds the number of parties ({len(names)})")
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
    _check_cardano(config)
    _check_escrow(config)
    _check_membership(config)
    keyed = [p.public_key is not None for p in config.parties]
    if any(keyed) and not all(keyed):
        missing = ", ".join(p.name for p in config.parties if p.public_key is None)
        raise ConfigError(
            "parties", f"either every party has a public_key or none does (missing for {missing})"
        )


def _check_membership(config: SessionConfig) -> None:
    """``[membership]`` against the listed parties (docs/membership.md)."""
    section = config.membership
    if section is None:
        return
    listed = len(config.parties)
    if section.max_parties < listed:
        raise ConfigError(
            "membership.max_parties", f"{section.max_parties} is below the {listed} listed parties"
        )
    if section.admission != "fixed" and config.external_dealer:
        raise ConfigError(
            "membership.admission",
            "an external key-generation centre deals every key epoch at once, before anyone "
            "joins: admit newcomers with a dealing party or distributed keys",
        )
    if section.admission == "open" and config.escrow.deadline is not None:
        raise ConfigError(
            "membership.admission",
            "with the escrow on layer 1 (escrow.deadline) the members check a newcomer's lock "
            'before they vote to admit it: use admission = "vote" (docs/membership.md, '
            '"Escrow")',
        )
    if section.admission == "vote" and section.votes > listed:
        raise ConfigError(
            "membership.votes",
            f"{section.votes} exceeds the {listed} listed parties: no request could be approved",
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


_changed = is_changed


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


def _check_cardano(config: SessionConfig) -> None:
    """The ``[cardano]`` section's own rules, and its network against the hydra channel's."""
    cardano = config.cardano
    if cardano is None:
        return
    cardano.check()
    hydra = config.channel.hydra
    if config.channel.backend == "hydra" and (hydra.network == "mainnet") != (
        cardano.network == "mainnet"
    ):
        raise ConfigError(
            "cardano.network",
            f"{cardano.network!r} does not match channel.hydra.network = {hydra.network!r}",
        )


def _check_escrow(config: SessionConfig) -> None:
    """A layer-1 escrow (``escrow.deadline``) needs ``[cardano]`` and every payment key hash."""
    if config.escrow.deadline is None:
        return
    if config.cardano is None:
        raise ConfigError("escrow.deadline", "a layer-1 escrow needs a [cardano] section")
    if config.cardano.payment_keys is not None:
        missing = [p.name for p in config.parties if p.payment_key_hash is None]
        if missing:
            raise ConfigError(
                "parties.payment_key_hash",
                "cardano.payment_keys names separate payment keys, so the escrow needs each "
                f"party's payment_key_hash; missing for {', '.join(missing)}",
            )


def _check_storage(config: SessionConfig) -> None:
    """The storage backend's own rules for its keys and each party's place."""
    check = STORE_BACKENDS.get(config.storage.backend).check
    if check is not None:
        check(config.storage, config.parties)


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
        for section, key in (
            ("privacy", "threshold"),
            ("privacy", "min_accepted"),
            ("protocol", "close_votes"),
        ):
            if (raw[section].get(key) or 0) > parties:
                raw[section][key] = None
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
