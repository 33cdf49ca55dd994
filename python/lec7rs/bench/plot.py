"""``lec7rs bench --plot FILE``: a bar chart of nanoseconds per element, one
panel per kernel, at its largest size (matplotlib, no pyplot state)."""

from __future__ import annotations

import math
import pathlib
import textwrap

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .cases import OPTIONAL

_LABELS = {"numpy": "NumPy", **OPTIONAL}


def draw(res: dict, path: str | pathlib.Path) -> None:
    kernels = {k: e for k, e in res["kernels"].items() if e["available"] and e["results"]}
    cols = min(4, max(1, len(kernels)))
    rows = max(1, math.ceil(len(kernels) / cols))
    fig = Figure(figsize=(4.6 * cols, 4.4 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, entry) in enumerate(kernels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        largest = max(r["size"] for r in entry["results"])
        at = [r for r in entry["results"] if r["size"] == largest]
        labels, values, colors = [], [], []
        for r in at:
            labels.append(f"lec7rs\n{r['threads']} thr.")
            values.append(r["ns_per_element"]["lec7rs"])
            colors.append("#d62728")
        for key in ("numpy", *OPTIONAL):
            runs = [r for r in at if isinstance(r["ns_per_element"].get(key), float)]
            if not runs:
                continue
            if key == "torch":  # timed at each thread count
                for r in runs:
                    labels.append(f"PyTorch\n{r['threads']} thr.")
                    values.append(r["ns_per_element"][key])
                    colors.append("#1f77b4")
            else:
                labels.append(_LABELS[key])
                values.append(runs[0]["ns_per_element"][key])
                colors.append("#7f7f7f")
        bars = ax.bar(range(len(values)), values, color=colors)
        best = min(values[: len(at)])  # lec7rs at its best thread count
        for bar, v, color in zip(bars, values, colors):
            text = f"{v:.3g}" if color == "#d62728" else f"{v:.3g}\n({v / best:.2g}x)"
            ax.annotate(
                text,
                (bar.get_x() + bar.get_width() / 2, v),
                textcoords="offset points",
                xytext=(0, 2),
                ha="center",
                fontsize=8,
            )
        ax.set_ylim(0, max(values) * 1.25)
        ax.set_xticks(range(len(values)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_ylabel("ns per element (lower is faster)")
        what = textwrap.fill(entry["what"], 48)
        ax.set_title(f"{name}, {at[0]['elements']:,} elements\n{what}", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    env = res["environment"]
    fig.suptitle(
        f"lec7rs bench: lec7rs {env['lec7rs']} ({env['simd_level']}, red) vs baselines "
        f"(grey; PyTorch blue) on {env['machine']}; (Nx): the baseline's time / lec7rs's best",
        fontsize=12,
    )
    fig.savefig(path)
