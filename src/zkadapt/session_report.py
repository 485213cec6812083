"""The session report as typed values, and its one JSON form (``report.json``).

:func:`zkadapt.summary.build_report` builds a :class:`SessionReport` once from the channel
history; ``report.py`` writes and renders it and the dashboard shows it. ``to_json`` gives
exactly the document README "Reading the report" describes (``json.dumps(...,
sort_keys=True)`` of it is ``report.json``); ``from_json`` reads such a document back, and
also one written by an earlier version that lacked a key (``bytes_decryption_shares``,
``timing_s``, ``failed_parties``...): a missing key reads as empty or None, never as a
made-up number.

Every value is immutable at the attribute level; the metric mappings are fresh dicts owned
by the report and are not to be mutated.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from zkadapt.formatting import primary_metric

#: Metric name -> value (``accuracy``, ``loss``, ``perplexity``, ``train_loss``, ...).
Metrics = Mapping[str, float]
_T = TypeVar("_T")


@dataclass(frozen=True)
class PartyInfo:
    """A party as the report lists it: name, public key, declared training-set size."""

    name: str
    public_key: str | None
    n_train: int | None
    #: With ``[membership]``: its first round as a member (1 for a listed party, the
    #: admission round for a newcomer); None without (every listed party, every round).
    joined_round: int | None = None

    def to_json(self) -> dict[str, Any]:
        joined = {} if self.joined_round is None else {"joined_round": self.joined_round}
        return {"name": self.name, "public_key": self.public_key, "n_train": self.n_train} | joined

    @classmethod
    def from_json(cls, doc: Any, where: str = "party") -> PartyInfo:
        doc = _mapping(doc, where)
        return cls(
            name=_str(doc.get("name"), f"{where}.name"),
            public_key=_optional(doc.get("public_key"), _str, f"{where}.public_key"),
            n_train=_optional(doc.get("n_train"), _count, f"{where}.n_train"),
            joined_round=_optional(doc.get("joined_round"), _count, f"{where}.joined_round"),
        )


@dataclass(frozen=True)
class Rejection:
    """One posted verdict: ``by`` rejected ``party``'s update for ``reason``."""

    party: str
    reason: str
    by: str | None

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "reason": self.reason, "by": self.by}

    @classmethod
    def from_json(cls, doc: Any, where: str = "rejection") -> Rejection:
        doc = _mapping(doc, where)
        return cls(
            party=_str(doc.get("party"), f"{where}.party"),
            reason=_str(doc.get("reason", ""), f"{where}.reason"),
            by=_optional(doc.get("by"), _str, f"{where}.by"),
        )


@dataclass(frozen=True)
class RoundSplit:
    """Where one party's round went (:func:`zkadapt.summary.round_split` picks the party).

    ``round_s`` is the party's whole round (``RoundDone.duration_s``); ``train_s`` its local
    training, ``evaluate_s`` its evaluation of G(r) (own and pooled held-out data),
    ``aggregation_s`` the privacy scheme's own work (:data:`zkadapt.summary.AGGREGATION_PHASES`:
    seal, verify the others' updates, sum, make and check decryption shares, combine and
    unmask), and ``other_s`` the rest: uploads and downloads, waiting for the other parties,
    key set-up, checkpointing.
    """

    party: str
    round_s: float
    train_s: float
    evaluate_s: float
    aggregation_s: float
    other_s: float

    @property
    def aggregation_share(self) -> float | None:
        """``aggregation_s`` as a fraction of the round; None for a zero-length round."""
        return self.aggregation_s / self.round_s if self.round_s > 0 else None

    def to_json(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "round_s": self.round_s,
            "train_s": self.train_s,
            "evaluate_s": self.evaluate_s,
            "aggregation_s": self.aggregation_s,
            "other_s": self.other_s,
            "aggregation_share": self.aggregation_share,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str = "split") -> RoundSplit | None:
        """The split of ``doc``; None for an absent or empty one (``aggregation_share`` is
        derived, so it is not read back)."""
        doc = _mapping(doc or {}, where)
        if not doc:
            return None
        return cls(
            party=_str(doc.get("party", ""), f"{where}.party"),
            **{
                key: _seconds(doc.get(key, 0.0), f"{where}.{key}")
                for key in ("round_s", "train_s", "evaluate_s", "aggregation_s", "other_s")
            },
        )


@dataclass(frozen=True)
class RoundReport:
    """One completed round, as the parties posted it (the first ``RoundDone`` speaks for all)."""

    round: int
    accepted: tuple[str, ...]
    rejected: tuple[Rejection, ...]
    duration_s: float | None
    bytes_uploaded: int | None
    bytes_decryption_shares: int | None
    timing_s: Metrics
    global_metrics: Metrics
    per_party: Mapping[str, Metrics]
    model_sha256: str | None
    #: Why the round failed (``RoundFailed``; ``model_sha256`` is then G(r-1)'s); None if done.
    failure: str | None = None
    #: Train / evaluate / private aggregation / other of one party; None when not timed.
    split: RoundSplit | None = None
    #: The round's active members with ``[membership]`` (docs/membership.md); None without.
    members: tuple[str, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        optional: dict[str, Any] = {}
        if self.failure is not None:
            optional["failure"] = self.failure
        if self.members is not None:
            optional["members"] = list(self.members)
        if self.split is not None:
            optional["split"] = self.split.to_json()
        return optional | {
            "round": self.round,
            "accepted": list(self.accepted),
            "rejected": [item.to_json() for item in self.rejected],
            "duration_s": self.duration_s,
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_decryption_shares": self.bytes_decryption_shares,
            "timing_s": dict(self.timing_s),
            "metrics": {
                "global": dict(self.global_metrics),
                "per_party": {name: dict(m) for name, m in self.per_party.items()},
            },
            "model_sha256": self.model_sha256,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str = "round") -> RoundReport:
        doc = _mapping(doc, where)
        metrics = _mapping(doc.get("metrics") or {}, f"{where}.metrics")
        return cls(
            round=_count(doc.get("round"), f"{where}.round"),
            accepted=tuple(
                _str(n, f"{where}.accepted")
                for n in _list(doc.get("accepted"), f"{where}.accepted")
            ),
            rejected=tuple(
                Rejection.from_json(item, f"{where}.rejected")
                for item in _list(doc.get("rejected"), f"{where}.rejected")
            ),
            duration_s=_optional(doc.get("duration_s"), _seconds, f"{where}.duration_s"),
            bytes_uploaded=_optional(doc.get("bytes_uploaded"), _count, f"{where}.bytes_uploaded"),
            bytes_decryption_shares=_optional(
                doc.get("bytes_decryption_shares"), _count, f"{where}.bytes_decryption_shares"
            ),
            timing_s=_metrics(doc.get("timing_s"), f"{where}.timing_s"),
            global_metrics=_metrics(metrics.get("global"), f"{where}.metrics.global"),
            per_party=_per_party(metrics.get("per_party"), f"{where}.metrics.per_party"),
            model_sha256=_optional(doc.get("model_sha256"), _str, f"{where}.model_sha256"),
            failure=_optional(doc.get("failure"), _str, f"{where}.failure"),
            split=RoundSplit.from_json(doc.get("split"), f"{where}.split"),
            members=_optional(doc.get("members"), _names, f"{where}.members"),
        )


@dataclass(frozen=True)
class FinalResult:
    """The last completed round's model: its digest and how it evaluated."""

    round: int | None
    metrics: Metrics
    per_party: Mapping[str, Metrics]
    model_sha256: str | None

    @classmethod
    def of(cls, rounds: tuple[RoundReport, ...]) -> FinalResult:
        """The final result of ``rounds`` (round 0 and no digest when none completed)."""
        if not rounds:
            return cls(round=0, metrics={}, per_party={}, model_sha256=None)
        last = rounds[-1]
        return cls(last.round, last.global_metrics, last.per_party, last.model_sha256)

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "metrics": dict(self.metrics),
            "per_party": {name: dict(m) for name, m in self.per_party.items()},
            "model_sha256": self.model_sha256,
        }

    @classmethod
    def from_json(cls, doc: Any, where: str = "final") -> FinalResult:
        doc = _mapping(doc or {}, where)
        return cls(
            round=_optional(doc.get("round"), _count, f"{where}.round"),
            metrics=_metrics(doc.get("metrics"), f"{where}.metrics"),
            per_party=_per_party(doc.get("per_party"), f"{where}.per_party"),
            model_sha256=_optional(doc.get("model_sha256"), _str, f"{where}.model_sha256"),
        )


@dataclass(frozen=True)
class Baselines:
    """What collaboration is measured against (:func:`zkadapt.baselines.compute_baselines`).

    ``local_only[party]``: that party trained alone; ``centralized``: all data pooled;
    ``base_model``: the untouched G(0) (causal LMs only). None where it was not computed
    (its key is then absent from the JSON form).
    """

    local_only: Mapping[str, Metrics] | None = None
    centralized: Metrics | None = None
    base_model: Metrics | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.local_only is not None:
            doc["local_only"] = {name: dict(m) for name, m in self.local_only.items()}
        for key, value in (("centralized", self.centralized), ("base_model", self.base_model)):
            if value is not None:
                doc[key] = dict(value)
        return doc

    @classmethod
    def from_json(cls, doc: Any, where: str = "baseline") -> Baselines | None:
        """The baselines of ``doc``; None for ``{}`` (baselines were skipped)."""
        doc = _mapping(doc or {}, where)
        if not doc:
            return None
        return cls(
            local_only=_optional(doc.get("local_only"), _per_party, f"{where}.local_only"),
            centralized=_optional(doc.get("centralized"), _metrics, f"{where}.centralized"),
            base_model=_optional(doc.get("base_model"), _metrics, f"{where}.base_model"),
        )

    def local(self, party: str) -> Metrics | None:
        """``party``'s local-only metrics, or None when it has none."""
        return (self.local_only or {}).get(party)


@dataclass(frozen=True)
class Timing:
    """Wall time of the whole run (the local runner measures it) and each round's duration."""

    wall_s: float | None
    per_round_s: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {"wall_s": self.wall_s, "per_round_s": list(self.per_round_s)}

    @classmethod
    def from_json(cls, doc: Any, where: str = "timing") -> Timing | None:
        """The timing of ``doc``; None for ``{}`` (the report was built without a run)."""
        doc = _mapping(doc or {}, where)
        if not doc:
            return None
        return cls(
            wall_s=_optional(doc.get("wall_s"), _seconds, f"{where}.wall_s"),
            per_round_s=tuple(
                _seconds(v, f"{where}.per_round_s")
                for v in _list(doc.get("per_round_s"), f"{where}.per_round_s")
            ),
        )


@dataclass(frozen=True)
class SessionReport:
    """Everything ``report.json`` says about one session.

    ``baselines`` and ``timing`` are None when they were not computed (written as ``{}``);
    ``failed_parties`` (party -> its last log line) is None when no local run watched the
    parties (the key is then left out), ``{}`` when every party finished (a party that
    died and was restarted and then finished is not listed). ``restarts`` (party -> how
    often the runner restarted it) is None, and its key left out, when no runner watched.
    ``escrow`` (a layer-1 escrow's settlement as the parties report it:
    :func:`zkadapt.operator.party_escrow.session_escrow`) is None, and left out, otherwise.
    """

    session_id: str
    zkadapt_version: str
    config: Mapping[str, Any]
    parties: tuple[PartyInfo, ...]
    rounds: tuple[RoundReport, ...]
    completed: bool
    final: FinalResult
    baselines: Baselines | None = None
    timing: Timing | None = None
    failed_parties: Mapping[str, str] | None = None
    restarts: Mapping[str, int] | None = None
    escrow: Mapping[str, Any] | None = None

    @property
    def primary_metric(self) -> str | None:
        """The headline metric (:func:`zkadapt.formatting.primary_metric`) of every metric set."""
        return primary_metric(key for metrics in self.metric_sets() for key in metrics)

    def metric_sets(self) -> list[Metrics]:
        """Every metric set of the report: per round (global, each party), final, baselines."""
        found: list[Metrics] = []
        for entry in self.rounds:
            found.append(entry.global_metrics)
            found.extend(entry.per_party.values())
        found.append(self.final.metrics)
        found.extend(self.final.per_party.values())
        if self.baselines is not None:
            found.extend(m for m in (self.baselines.centralized, self.baselines.base_model) if m)
            found.extend((self.baselines.local_only or {}).values())
        return found

    def party_names(self) -> list[str]:
        """Party names in report order, then any name seen only in metrics or baselines."""
        names = [party.name for party in self.parties]
        extra: set[str] = set()
        for entry in self.rounds:
            extra.update(entry.per_party)
        if self.baselines is not None:
            extra.update(self.baselines.local_only or {})
        return names + sorted(extra - set(names))

    def to_json(self) -> dict[str, Any]:
        """The ``report.json`` document (README "Reading the report")."""
        doc: dict[str, Any] = {
            "session_id": self.session_id,
            "zkadapt_version": self.zkadapt_version,
            "config": dict(self.config),
            "parties": [party.to_json() for party in self.parties],
            "rounds": [entry.to_json() for entry in self.rounds],
            "completed": self.completed,
            "baseline": self.baselines.to_json() if self.baselines else {},
            "final": self.final.to_json(),
            "timing": self.timing.to_json() if self.timing else {},
        }
        if self.failed_parties is not None:
            doc["failed_parties"] = dict(self.failed_parties)
        if self.restarts is not None:
            doc["restarts"] = dict(self.restarts)
        if self.escrow is not None:
            doc["escrow"] = dict(self.escrow)
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> SessionReport:
        """Read a ``report.json`` document back.

        Raises:
            ValueError: a value has the wrong type or an impossible value (a negative byte
                count or duration); the message names it by its path in the document.
        """
        doc = _mapping(doc, "report")
        rounds = tuple(
            RoundReport.from_json(item, f"rounds[{i}]")
            for i, item in enumerate(_list(doc.get("rounds"), "rounds"))
        )
        rounds = tuple(sorted(rounds, key=lambda entry: entry.round))
        failed = doc.get("failed_parties")
        restarts = doc.get("restarts")
        return cls(
            session_id=_str(doc.get("session_id", ""), "session_id"),
            zkadapt_version=_str(doc.get("zkadapt_version", ""), "zkadapt_version"),
            config=dict(_mapping(doc.get("config") or {}, "config")),
            parties=tuple(
                PartyInfo.from_json(item, f"parties[{i}]")
                for i, item in enumerate(_list(doc.get("parties"), "parties"))
            ),
            rounds=rounds,
            completed=bool(doc.get("completed", False)),
            final=FinalResult.from_json(doc.get("final"), "final"),
            baselines=Baselines.from_json(doc.get("baseline"), "baseline"),
            timing=Timing.from_json(doc.get("timing"), "timing"),
            failed_parties=None if failed is None else _strings(failed, "failed_parties"),
            restarts=None if restarts is None else _counts(restarts, "restarts"),
            escrow=None if doc.get("escrow") is None else dict(_mapping(doc["escrow"], "escrow")),
        )


# ------------------------------------------------------------------- reading, with checks


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"report {where}: expected an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    """A JSON array (an absent one is empty)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValueError(f"report {where}: expected an array, got {type(value).__name__}")
    return list(value)


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"report {where}: expected a string, got {value!r}")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"report {where}: expected a whole number >= 0, got {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"report {where}: expected a number, got {value!r}")
    return value


def _seconds(value: Any, where: str) -> float:
    seconds = _number(value, where)
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"report {where}: expected seconds >= 0, got {value!r}")
    return seconds


def _optional(value: Any, read: Callable[[Any, str], _T], where: str) -> _T | None:
    return None if value is None else read(value, where)


def _metrics(value: Any, where: str) -> dict[str, float]:
    doc = _mapping(value or {}, where)
    return {_str(k, where): _number(v, f"{where}.{k}") for k, v in doc.items()}


def _per_party(value: Any, where: str) -> dict[str, dict[str, float]]:
    doc = _mapping(value or {}, where)
    return {_str(name, where): _metrics(m, f"{where}.{name}") for name, m in doc.items()}


def _names(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_str(n, where) for n in _list(value, where))


def _strings(value: Any, where: str) -> dict[str, str]:
    doc = _mapping(value, where)
    return {_str(k, where): _str(v, f"{where}.{k}") for k, v in doc.items()}


def _counts(value: Any, where: str) -> dict[str, int]:
    doc = _mapping(value, where)
    return {_str(k, where): _count(v, f"{where}.{k}") for k, v in doc.items()}
