"""``summary.png``: one panel per part of the demo, each a matplotlib
SubFigure with its own title (no pyplot state: the figure is drawn with
the Agg canvas and saved)."""

from __future__ import annotations

import math
import pathlib

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import PARTS


def draw_summary(results: dict, path: pathlib.Path) -> None:
    parts = list(results["parts"].values())
    cols = 1 if len(parts) == 1 else 2
    rows = math.ceil(len(parts) / cols)
    fig = Figure(figsize=(10 * cols, 7 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    panels = np.atleast_1d(fig.subfigures(rows, cols, wspace=0.03, hspace=0.03)).ravel()
    for panel, res in zip(panels, parts):
        PARTS[res["part"]].draw(panel, res)
    s, env = results["settings"], results["environment"]
    fig.suptitle(
        "lec7rs demo: Training Neural Networks II on 8x8 handwritten digits\n"
        f"{results['data']['train_images']} training / {results['data']['val_images']} "
        f"validation images, seed {s['seed']}, {s['epochs']} epochs; "
        f"lec7rs {env['lec7rs']}, {env['simd_level']}, {env['threads']} threads",
        fontsize=14,
        fontweight="bold",
    )
    fig.savefig(path)
