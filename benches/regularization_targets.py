"""The speed targets of the regularization issue, side by side in one run.

    python benches/regularization_targets.py           # 16M elements
    python benches/regularization_targets.py --quick   # 4M, for a smoke run

Dropout forward, float32, 16M elements, p = 0.5, against
- NumPy's ``x * ((rng.random(n, dtype=np.float32) < keep) / keep)`` (one
  thread whatever we use): the issue asks for >= 6x on 1 thread and >= 9x on
  2 threads. Written with ``keep`` a Python float, NumPy promotes the mask
  division to float64 (the issue's expression, literally); with
  ``keep = np.float32(...)`` everything stays float32 (the faster, fair
  variant, which the goals are checked against).
- the memory-traffic bound: 9 bytes per element (read x, write y and the
  bool mask) at the copy bandwidth of ``../shared/bench/roofline.c`` run at
  the same thread count: within 2x.

lec7rs is timed allocating its outputs (``dropout(x, p, rng=g)``: a new y and
mask every call, like the NumPy expression; in a loop they reuse the memory
of the previous call's, freed, through lec7rs's output-buffer cache) and
writing into ``out=``. For information, also with the cache emptied before
every call (fresh pages each time, as with ``LEC7RS_BUFFER_CACHE_MB=0`` or
on a first call). Times are the best of several repeats. Also printed, for information: the raw
generator throughput and the cost of a small call.
"""

from __future__ import annotations

import argparse
import os
import sys

import lec7rs
import numpy as np
from lec7rs import regularization as R
from targets import best_of, build_roofline, median_call, print_table, roofline


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    n = (4 << 20) if args.quick else (16 << 20)
    p = 0.5
    keep = 1.0 - p
    print(
        f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  numpy {np.__version__}  "
        f"cpus={os.cpu_count()}  n={n:,}  p={p}"
    )
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    nrng = np.random.default_rng(1)

    t_np64 = best_of(lambda: x * ((nrng.random(n, dtype=np.float32) < keep) / keep), args.reps)
    keep32 = np.float32(keep)
    t_np32 = best_of(lambda: x * ((nrng.random(n, dtype=np.float32) < keep32) / keep32), args.reps)
    print(f"numpy, keep a Python float (float64 result): {t_np64 * 1e3:.2f} ms")
    print(f"numpy, keep = np.float32(keep):               {t_np32 * 1e3:.2f} ms")

    exe = build_roofline()
    rows = []

    def row(target, ours, theirs, ratio, goal, ok):
        rows.append((target, ours, theirs, ratio, goal, "yes" if ok else "NO"))

    g = lec7rs.Generator(2)
    out = np.empty_like(x)
    before = lec7rs.get_num_threads()
    for threads, goal in ((1, 6.0), (2, 9.0)):
        lec7rs.set_num_threads(threads)
        t_new = best_of(lambda: R.dropout(x, p, rng=g), args.reps)
        t_out = best_of(lambda: R.dropout(x, p, rng=g, out=out), args.reps)

        def fresh():
            lec7rs._core._clear_buffer_cache()
            return R.dropout(x, p, rng=g)

        t_fresh = best_of(fresh, args.reps)
        row(
            f"dropout f32 new y, fresh pages, {threads} thr vs NumPy f32",
            f"{t_fresh * 1e3:.2f} ms",
            f"{t_np32 * 1e3:.2f} ms",
            f"{t_np32 / t_fresh:.1f}x faster",
            "(info)",
            True,
        )
        for name, t in (("new y", t_new), ("out=", t_out)):
            row(
                f"dropout f32 {name}, {threads} thr vs NumPy f32",
                f"{t * 1e3:.2f} ms",
                f"{t_np32 * 1e3:.2f} ms",
                f"{t_np32 / t:.1f}x faster",
                f">= {goal:.0f}x",
                t_np32 / t >= goal,
            )
            row(
                f"dropout f32 {name}, {threads} thr vs NumPy (literal)",
                f"{t * 1e3:.2f} ms",
                f"{t_np64 * 1e3:.2f} ms",
                f"{t_np64 / t:.1f}x faster",
                "(info)",
                True,
            )
        if exe is not None:
            roof = roofline(exe, n, 8, threads)
            print(f"roofline: {roof['line']}")
            bound = 9 * n / (roof["copy_gbs"] * 1e9)
            for name, t in (("new y", t_new), ("out=", t_out)):
                row(
                    f"dropout f32 {name}, {threads} thr vs bound",
                    f"{t * 1e3:.2f} ms",
                    f"{bound * 1e3:.2f} ms (9 B/elem @ copy {roof['copy_gbs']:.1f} GB/s)",
                    f"{t / bound:.2f}x",
                    "<= 2x",
                    t / bound <= 2.0,
                )
        # The raw generator, 4 bytes per word (into a new array each call).
        t_words = best_of(lambda: g._stream.words(n), args.reps)
        row(
            f"Philox words, {threads} thr",
            f"{t_words * 1e3:.2f} ms",
            f"{n * 32 / t_words / 1e9 / threads:.1f} Gbit/s per thread",
            f"{n / t_words / 1e9:.2f} Gwords/s",
            "(info)",
            True,
        )
    lec7rs.set_num_threads(before)
    if exe is None:
        print("roofline.c or gcc not found: the bound is not measured")

    small = x[:1000].copy()
    t_small = median_call(lambda: R.dropout(small, p, rng=g), 5000)
    t_small_np = median_call(
        lambda: small * ((nrng.random(1000, dtype=np.float32) < keep32) / keep32), 5000
    )
    row(
        "dropout f32, 1k elements (median/call)",
        f"{t_small * 1e6:.2f} us",
        f"NumPy {t_small_np * 1e6:.2f} us",
        f"{t_small_np / t_small:.1f}x faster",
        "(info)",
        True,
    )

    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
