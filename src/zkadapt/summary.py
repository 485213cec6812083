"""The session report, derived from the channel history alone (pure; no I/O).

Everything a round report says — who was accepted or rejected and why, how many bytes
were uploaded, how long the round took, how each party evaluated G(r) — was posted on the
channel by the parties themselves, so any party (or an auditor) rebuilds the same report
from the same history. Baselines are computed separately and merged in by the caller.
"""

from __future__ import annotations

from typing import Any

from zkadapt import __version__
from zkadapt.config import SessionConfig
from zkadapt.protocol.history import SessionHistory
from zkadapt.protocol.messages import RoundDone

_GLOBAL = "global_"


def split_metrics(metrics: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Split a ``RoundDone.metrics`` dict into (global-test metrics, the party's own metrics)."""
    global_ = {k[len(_GLOBAL) :]: v for k, v in metrics.items() if k.startswith(_GLOBAL)}
    own = {k: v for k, v in metrics.items() if not k.startswith(_GLOBAL)}
    return global_, own


def round_summaries(config: SessionConfig, history: SessionHistory) -> list[dict[str, Any]]:
    """One summary per completed round (a round is complete once any ``RoundDone`` exists)."""
    rounds = []
    for r in range(1, config.session.rounds + 1):
        done = history.round_done(r)
        if not done:
            break
        first = done[sorted(done)[0]]
        global_metrics, _ = split_metrics(first.metrics)
        rounds.append(
            {
                "round": r,
                "accepted": list(first.accepted),
                "rejected": [
                    {"party": rej.party, "reason": rej.reason, "by": sender}
                    for sender, rej in history.rejections(r)
                ],
                "duration_s": max(d.duration_s for d in done.values()),
                "bytes_uploaded": sum(p.message.size for p in history.submissions(r).values()),  # type: ignore[attr-defined]
                "bytes_decryption_shares": sum(
                    p.message.size  # type: ignore[attr-defined]
                    for p in history.decryption_shares(r)
                ),
                "timing_s": _slowest_phases(done),
                "metrics": {
                    "global": global_metrics,
                    "per_party": {
                        name: split_metrics(d.metrics)[1] for name, d in sorted(done.items())
                    },
                },
                "model_sha256": first.model_sha256,
            }
        )
    return rounds


def _slowest_phases(done: dict[str, RoundDone]) -> dict[str, float]:
    """Per phase (train, seal, collect, aggregate incl. decrypt, ...): the slowest party."""
    phases: dict[str, float] = {}
    for message in done.values():
        for phase, seconds in message.timing.items():
            phases[phase] = max(phases.get(phase, 0.0), seconds)
    return dict(sorted(phases.items()))


def party_summaries(config: SessionConfig, history: SessionHistory) -> list[dict[str, Any]]:
    """Name, public key and declared training-set size of every party."""
    sizes: dict[str, int] = {}
    for r in range(1, config.session.rounds + 1):
        for name, posted in history.submissions(r).items():
            sizes.setdefault(name, posted.message.n_samples)  # type: ignore[attr-defined]
    return [
        {"name": p.name, "public_key": p.public_key, "n_train": sizes.get(p.name)}
        for p in sorted(config.parties, key=lambda p: p.name)
    ]


def build_report(
    config: SessionConfig,
    history: SessionHistory,
    *,
    baseline: dict[str, Any] | None = None,
    timing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The report.json document (schema in README "Reading the report")."""
    rounds = round_summaries(config, history)
    final: dict[str, Any] = {"round": 0, "metrics": {}, "per_party": {}, "model_sha256": None}
    if rounds:
        last = rounds[-1]
        final = {
            "round": last["round"],
            "metrics": last["metrics"]["global"],
            "per_party": last["metrics"]["per_party"],
            "model_sha256": last["model_sha256"],
        }
    return {
        "session_id": config.session_id,
        "zkadapt_version": __version__,
        "config": config.model_dump(mode="json"),
        "parties": party_summaries(config, history),
        "rounds": rounds,
        "completed": len(rounds) == config.session.rounds,
        "baseline": baseline or {},
        "final": final,
        "timing": timing or {},
    }
