"""How a session's numbers are shown: one set of rules for the report and the dashboard (pure).

``report.py`` (console table, Markdown, HTML, PNG axes) and the dashboard (cards, tables,
SVG axes) both format through this module, so the same metric of the same session reads
the same everywhere; ``tests/test_formatting.py`` holds them to it.

Rules:

* **Headline metric** (:func:`primary_metric`): ``accuracy`` when any metric set has it
  (classifiers), else ``perplexity`` (causal LMs), else none yet.
* **Metric values** (:func:`metric`): accuracy as a percentage with two decimals (a value
  above 1 is taken as already in percent), perplexity with two decimals, anything else
  (losses) with four. NaN and infinities are shown as ``nan`` / ``inf`` / ``-inf``: a
  diverged loss is a result, not a missing value.
* **Bytes** (:func:`size`): binary units, ``B`` without decimals, then one decimal.
* **Durations** (:func:`duration`): seconds with two decimals under 10 s, one decimal up to
  120 s, minutes above.
* **Shares of a whole** (:func:`share`): a percentage with one decimal.
* **Lovelace** (:func:`ada`): in ADA, exact (up to six decimals, trailing zeros dropped).
* A value that is absent is :data:`MISSING`; a byte count or a duration that cannot be (a
  negative or non-finite one) raises ValueError rather than printing something plausible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

#: Headline metrics in order of preference: the first one present is the session's.
PRIMARY_METRICS = ("accuracy", "perplexity")
#: What an absent value is shown as.
MISSING = "—"

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
_MINUTES_FROM_S = 120.0


def primary_metric(keys: Iterable[str]) -> str | None:
    """The headline metric among the metric names ``keys``, or None when none is present.

    Args:
        keys: Every metric name the session reported (rounds, final model, baselines).
    """
    present = set(keys)
    return next((key for key in PRIMARY_METRICS if key in present), None)


def ordered_metrics(keys: Iterable[str]) -> list[str]:
    """Metric names with the headline metrics first, then ``loss``, then the rest sorted."""
    order = {key: rank for rank, key in enumerate((*PRIMARY_METRICS, "loss"))}
    return sorted(set(keys), key=lambda key: (order.get(key, len(order)), key))


def metric_title(key: str) -> str:
    """``"train_loss"`` -> ``"Train loss"`` (table headers, chart titles)."""
    return key.replace("_", " ").capitalize()


def number(value: object) -> float | None:
    """``value`` as a float when it is an int or a float (bools are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def finite(value: object) -> float | None:
    """``value`` as a finite float, else None: what a chart can place on an axis."""
    v = number(value)
    return v if v is not None and math.isfinite(v) else None


def metric(key: str, value: float | None) -> str:
    """One metric value as text (see the module docstring for the rules).

    >>> metric("accuracy", 0.9218), metric("perplexity", 45.5), metric("loss", 0.3)
    ('92.18 %', '45.50', '0.3000')
    """
    v = number(value)
    if v is None:
        return MISSING
    if not math.isfinite(v):
        return str(v)  # nan, inf, -inf
    if key == "accuracy":
        return f"{v * 100:.2f} %" if v <= 1.0 else f"{v:.2f} %"
    if key == "perplexity":
        return f"{v:.2f}"
    return f"{v:.4f}"


def axis_metric(key: str, largest: float = 1.0) -> Callable[[float], str]:
    """A tick formatter for a chart of ``key`` whose largest value is ``largest``.

    Accuracy ticks are percentages (whole ones where exact, as the fractions of an axis
    rarely are); other metrics use four significant digits, enough to tell ticks apart.
    """
    if key != "accuracy":
        return lambda v: f"{v:.4g}"
    scale = 100.0 if largest <= 1.0 else 1.0

    def percent(v: float) -> str:
        pct = scale * v
        return f"{pct:.0f} %" if abs(pct - round(pct)) < 1e-6 else f"{pct:.1f} %"

    return percent


def size(value: float | None) -> str:
    """A byte count in binary units: ``397.5 KiB``.

    Raises:
        ValueError: ``value`` is negative or not finite (no byte count is).
    """
    v = number(value)
    if v is None:
        return MISSING
    if v < 0 or not math.isfinite(v):
        raise ValueError(f"a byte count is a finite number >= 0, not {value!r}")
    unit, scale = size_unit(v)
    return f"{v:.0f} B" if unit == "B" else f"{v / scale:.1f} {unit}"


def size_unit(largest: float) -> tuple[str, float]:
    """The unit (and its size in bytes) to show byte counts up to ``largest`` in."""
    for exponent in range(len(_SIZE_UNITS) - 1, 0, -1):
        if largest >= 1024.0**exponent:
            return _SIZE_UNITS[exponent], 1024.0**exponent
    return "B", 1.0


def duration(value: float | None) -> str:
    """Seconds with a unit: ``1.20 s``, ``30.5 s``, ``12.5 min``.

    Raises:
        ValueError: ``value`` is negative or not finite (no measured duration is).
    """
    v = number(value)
    if v is None:
        return MISSING
    if v < 0 or not math.isfinite(v):
        raise ValueError(f"a duration is a finite number of seconds >= 0, not {value!r}")
    if v >= _MINUTES_FROM_S:
        return f"{v / 60:.1f} min"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def share(value: float | None) -> str:
    """A fraction of a whole as a percentage: ``0.0312`` -> ``3.1 %``.

    >>> share(0.0312), share(None)
    ('3.1 %', '—')
    """
    v = finite(value)
    return MISSING if v is None else f"{v * 100:.1f} %"


def clock(timestamp: float | None) -> str:
    """Local wall-clock time of a channel timestamp, to a tenth of a second (informative)."""
    if timestamp is None:
        return MISSING
    tenths = int((timestamp % 1) * 10)
    return f"{time.strftime('%H:%M:%S', time.localtime(timestamp))}.{tenths}"


def ada(lovelace: int) -> str:
    """``15000000`` -> ``"15 ADA"``, ``5000001`` -> ``"5.000001 ADA"`` (exact: 1 ADA is
    1,000,000 lovelace)."""
    whole, part = divmod(int(lovelace), 1_000_000)
    return f"{whole:,} ADA" if not part else f"{whole:,}.{part:06d}".rstrip("0") + " ADA"
