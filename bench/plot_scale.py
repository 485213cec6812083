"""The scale plot: private aggregation cost per party per round against the adapter size.

Usage::

    python bench/plot_scale.py [--json bench/results/masked.json] [--out docs/img/scale.png]

Reads what bench/masked.py wrote and draws, on log-log axes, seconds per round against the
number of values for the masked scheme (measured), the Paillier scheme (scaled per
ciphertext from the size measured in the same run, drawn dashed and labelled so; the
measured point is marked), Flower 1.42 SecAgg+ (measured warm rounds) and, for reference,
Flower's plain FedAvg round. A size where a job failed or was skipped has no point. Uses the
Agg canvas directly, as zkadapt/report.py does, so no display or pyplot state is needed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

ROOT = Path(__file__).resolve().parents[1]


def series(doc: dict[str, Any]) -> dict[str, tuple[list[int], list[float]]]:
    """(values, seconds) per curve; a size without a figure for a curve is left out."""
    curves: dict[str, tuple[list[int], list[float]]] = {}

    def add(name: str, m: int, seconds: float | None) -> None:
        if seconds is not None:
            xs, ys = curves.setdefault(name, ([], []))
            xs.append(m)
            ys.append(seconds)

    for entry in sorted(doc["sizes"], key=lambda e: e["values"]):
        m = entry["values"]
        add("masked", m, entry["masked"].get("total_s"))
        add("paillier", m, entry.get("paillier_scaled_s"))
        for mode in ("secaggplus", "fedavg"):
            add(f"flower_{mode}", m, entry.get(f"flower_{mode}", {}).get("warm_round_s"))
    return curves


def _size_label(values: int) -> str:
    """A tick label: 23,040 / 460.8k / 4.19M / 40M."""
    if values >= 10**6:
        return f"{values / 10**6:.3g}M"
    return f"{values / 1000:.4g}k" if values >= 10**5 else f"{values:,}"


def _label_points(axes: Axes, xs: list[int], ys: list[float], color: str) -> None:
    for x, y in zip(xs, ys, strict=True):
        text = f"{y:,.0f} s" if y >= 10 else f"{y:.1f} s"
        axes.annotate(text, (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8,
                      color=color)  # fmt: skip


def plot(doc: dict[str, Any], out: Path) -> None:
    """Draw the figure described in the module docstring into ``out`` (PNG)."""
    curves = series(doc)
    figure = Figure(figsize=(7.5, 4.8), dpi=130)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    measured = doc["paillier_measured"]
    styles = {
        "paillier": ("Paillier (scaled per ciphertext)", "tab:red", "--", "s"),
        "flower_secaggplus": ("Flower 1.42 SecAgg+ (whole round)", "tab:blue", "-", "^"),
        "flower_fedavg": ("Flower 1.42 FedAvg, no privacy (whole round)", "tab:gray", ":", "v"),
        "masked": ('ZK-ADAPT "masked" (one party)', "tab:green", "-", "o"),
    }
    for name, (label, color, line, marker) in styles.items():
        if name not in curves:
            continue
        xs, ys = curves[name]
        axes.plot(xs, ys, line, marker=marker, color=color, label=label)
        if name != "flower_fedavg":
            _label_points(axes, xs, ys, color)
    axes.plot(
        [measured["values"]],
        [measured["total_s"]],
        "s",
        markerfacecolor="none",
        color="tab:red",
        label=f"Paillier measured ({measured['values']:,} values)",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    ticks = sorted({measured["values"], *(e["values"] for e in doc["sizes"])})
    axes.set_xticks(ticks, [_size_label(m) for m in ticks])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("adapter size (values per party)")
    axes.set_ylabel("seconds per round (log)")
    machine = doc.get("machine", {})
    axes.set_title(
        f"Private aggregation cost, {doc['parties']} parties, {doc['key_bits']}-bit key, "
        f"{machine.get('cpus', '?')} cores",
        fontsize=10,
    )
    axes.margins(x=0.1)
    axes.grid(True, which="major", alpha=0.3)
    figure.text(
        0.01,
        0.01,
        "masked: one party's work in a round; Flower: wall time of a whole simulated round "
        "(3 clients + server); bench/results/masked.json",
        fontsize=7,
        color="dimgray",
    )
    axes.legend(fontsize=8, loc="upper left")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, metadata={"Software": None})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "masked.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "scale.png")
    args = parser.parse_args()
    plot(json.loads(args.json.read_text()), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
