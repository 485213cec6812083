"""Number and time formatting shared by the dashboard's page and charts (pure)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

#: The first of these present in the report is the headline metric (as in report.py).
PRIMARY_METRICS = ("accuracy", "perplexity")
MISSING = "—"


def primary_metric(report: Mapping[str, Any]) -> str:
    """The headline metric: ``"accuracy"`` if any round has it, else ``"perplexity"`` if any.

    With neither (no round yet), ``"accuracy"``.
    """
    present: set[str] = set()
    for round_ in report.get("rounds", []):
        metrics = round_.get("metrics", {})
        present.update(metrics.get("global", {}))
        for own in metrics.get("per_party", {}).values():
            present.update(own)
    return next((key for key in PRIMARY_METRICS if key in present), PRIMARY_METRICS[0])


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, strings and NaN are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def metric(key: str, value: Any) -> str:
    """Accuracy as a percentage, other metrics to four significant digits."""
    v = number(value)
    if v is None:
        return MISSING
    if key == "accuracy":
        return f"{100 * v:.2f} %"
    return f"{v:.4g}"


def axis_metric(key: str) -> Callable[[float], str]:
    """A tick formatter for ``key`` (whole percents for accuracy where exact)."""
    if key != "accuracy":
        return lambda v: f"{v:.4g}"

    def percent(v: float) -> str:
        pct = 100 * v
        return f"{pct:.0f} %" if abs(pct - round(pct)) < 1e-6 else f"{pct:.1f} %"

    return percent


def size(value: Any) -> str:
    """Bytes as B / KiB / MiB / GiB."""
    v = number(value)
    if v is None:
        return MISSING
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f} {unit}" if unit == "B" else f"{v:.1f} {unit}"
        v /= 1024
    return MISSING  # pragma: no cover - the loop always returns


def size_unit(largest: float) -> tuple[str, float]:
    """The unit (and its size in bytes) to show values up to ``largest`` bytes in."""
    for unit, scale in (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0)):
        if largest >= scale:
            return unit, scale
    return "B", 1.0


def seconds(value: Any) -> str:
    """Seconds with a unit; minutes past 120 s."""
    v = number(value)
    if v is None:
        return MISSING
    if v >= 120:
        return f"{v / 60:.1f} min"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def clock(timestamp: float | None) -> str:
    """Local wall-clock time of a channel timestamp (informative only)."""
    if timestamp is None:
        return MISSING
    tenths = int((timestamp % 1) * 10)
    return f"{time.strftime('%H:%M:%S', time.localtime(timestamp))}.{tenths}"
