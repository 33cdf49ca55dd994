"""``lec7rs demo``: the lecture "Training Neural Networks II", reproduced on
real data with lec7rs doing the work.

A two-layer NumPy network (``model.TwoLayerNet``: affine - ReLU - dropout -
affine - softmax, hand-written backward pass) learns scikit-learn's 8x8
handwritten digits (shipped in ``lec7rs.data``; no download). Each part
tests one claim of the lecture and says whether the measurement supports it:

1. optimizers (``part1_optimizers``), 2. the zigzag and the saddle point
(``part2_zigzag``), 3. learning-rate decay (``part3_schedules``),
4. regularization (``part4_regularization``), 5. Polyak averaging and
snapshot ensembles (``part5_test_time``), 6. transfer learning
(``part6_transfer``).

``run()`` writes ``results.json`` (every number) and ``summary.png`` (a
panel per part) to the output folder and prints a summary. Everything is
seeded: the same seed gives the same numbers on the same machine (lec7rs's
kernels are bit-identical for any thread count; NumPy's matrix products
come from the BLAS, which the demo limits to one thread when threadpoolctl
is installed: the net's matrices are small, so one BLAS thread is faster
than several competing with lec7rs's own threads).
"""

from __future__ import annotations

import contextlib
import pathlib
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._console import Reporter
from .._json import dumps
from . import (
    part1_optimizers,
    part2_zigzag,
    part3_schedules,
    part4_regularization,
    part5_test_time,
    part6_transfer,
)
from .context import EPOCHS, QUICK_EPOCHS, Config, Context

#: Part number -> the module that runs it (each has ``run(ctx)``): 1 optimizers,
#: 2 the zigzag, 3 learning-rate decay, 4 regularization, 5 test-time
#: averaging, 6 transfer learning.
PARTS = {
    1: part1_optimizers,
    2: part2_zigzag,
    3: part3_schedules,
    4: part4_regularization,
    5: part5_test_time,
    6: part6_transfer,
}

__all__ = ["EPOCHS", "PARTS", "QUICK_EPOCHS", "Config", "run"]


def run(
    out: str | pathlib.Path,
    *,
    quick: bool = False,
    seed: int = 0,
    parts: Sequence[int] = tuple(PARTS),
    epochs: int | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Runs the parts, writes ``results.json`` and ``summary.png`` into
    ``out`` (created if needed) and returns the results.

    ``epochs``: passes over the whole training split of every run on it
    (default 30, or 8 with ``quick``); the runs on small training sets
    (parts 4 and 6) make as many steps as such a run at batch 64.
    ``parts``: some of 1 to 6 (part 4 needs ``lec7rs.augment``).
    """
    from .figure import draw_summary  # matplotlib: the demo extra

    reporter = Reporter() if reporter is None else reporter
    if epochs is None:
        epochs = QUICK_EPOCHS if quick else EPOCHS
    config = Config(seed=seed, quick=quick, epochs=epochs)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _one_blas_thread() as blas_threads:
        results = _run_parts(config, parts, reporter)
    results["environment"]["blas_threads"] = blas_threads
    t = time.perf_counter()
    draw_summary(results, out / "summary.png")
    results["seconds_figure"] = time.perf_counter() - t
    (out / "results.json").write_text(dumps(results))
    _print_summary(reporter, results, out)
    return results


@contextlib.contextmanager
def _one_blas_thread():
    """Limits the BLAS to one thread for the block (with threadpoolctl, if
    installed); yields the limit, or "default"."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield "default"
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield 1


def _run_parts(config: Config, parts: Sequence[int], reporter: Reporter) -> dict:
    start = time.perf_counter()
    ctx = Context.create(config, reporter)
    parts_out: dict[str, Any] = {}
    for number in parts:
        module = PARTS[number]
        reporter.heading(f"Part {number}: {module.TITLE}")
        t = time.perf_counter()
        result = module.run(ctx)
        result["part"] = number
        result["verdict"] = module.verdict(result)
        result["seconds"] = time.perf_counter() - t
        parts_out[_key(number)] = result
    results = {
        "lec7rs_demo": 1,
        "settings": ctx.settings(),
        "data": {
            "name": "handwritten digits (scikit-learn's load_digits, UCI test set)",
            "train_images": len(ctx.data.train),
            "val_images": len(ctx.data.val),
            "image_shape": [8, 8],
        },
        "environment": _environment(),
        "parts": parts_out,
        "seconds_training": time.perf_counter() - start,
    }
    return results


def _key(number: int) -> str:
    return f"{number}_{PARTS[number].__name__.rsplit('.', 1)[1].split('_', 1)[1]}"


def _environment() -> dict:
    import lec7rs

    return {
        "lec7rs": lec7rs.__version__,
        "simd_level": lec7rs.simd_level(),
        "threads": lec7rs.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _print_summary(reporter: Reporter, results: dict, out: pathlib.Path) -> None:
    for number, res in zip(
        (r["part"] for r in results["parts"].values()), results["parts"].values()
    ):
        columns, rows = PARTS[number].table(res)
        reporter.table(f"Part {number}: {res['title']}", columns, rows)
    reporter.line("")
    reporter.line("The lecture's claims, as measured here:")
    for res in results["parts"].values():
        v = res["verdict"]
        mark = "reproduced" if v["reproduced"] else "NOT reproduced"
        reporter.line(f"{res['part']}. {res['claim']}: {mark}.", indent=2, hanging=3)
        reporter.line(f"measured: {v['measured']}", indent=5, hanging=2)
    s = results["settings"]
    reporter.line("")
    reporter.line(
        f"seed {s['seed']}, {s['epochs']} epochs; training {results['seconds_training']:.1f} s, "
        f"figure {results['seconds_figure']:.1f} s"
    )
    reporter.line(f"wrote {out / 'summary.png'} and {out / 'results.json'}")
