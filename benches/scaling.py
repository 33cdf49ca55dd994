"""Thread scaling: each kernel at 1, 2, 4, 8, 16 threads (those up to this
machine's core count, or ``--threads``), with the roofline at each count.

    python benches/scaling.py                  # Adam 50M, dropout 16M, L-BFGS 1e6, crop 256
    python benches/scaling.py --quick
    LEC7RS_SIMD=avx2 python benches/scaling.py

Rows: Adam f32 50M (28 B per element, against roofline.c's ideal fused Adam
at the same thread count: the fraction of the machine's streaming rate);
dropout f32 16M (9 B per element: x read, y written, the bool mask
written, against the roofline copy bandwidth); the L-BFGS direction
two-loop recursion, n = 1e6, m = 10, f64; its traffic bound is 4m + 2
vectors at the copy bandwidth); random resized crop to 224 px of a batch of uint8
images (images per second). Speed-up is against 1 thread.
"""

from __future__ import annotations

import argparse
import os
import sys

import lec7rs
import numpy as np
from lec7rs import _core, augment, optim, regularization
from targets import best_of, build_roofline, roofline


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=str, default=None, help="e.g. 1,2,4")
    args = ap.parse_args()
    cpus = os.cpu_count() or 1
    counts = (
        [int(t) for t in args.threads.split(",")]
        if args.threads
        else [t for t in (1, 2, 4, 8, 16) if t <= cpus]
    )
    n_adam, n_drop, n_lbfgs, images = (
        (5_000_000, 2_000_000, 200_000, 32)
        if args.quick
        else (50_000_000, 16_000_000, 1_000_000, 256)
    )
    reps = 3 if args.quick else 6
    print(f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  cpus={cpus}  threads={counts}")
    exe = build_roofline()
    p = np.ones(n_adam, np.float32)
    g = np.full(n_adam, 0.01, np.float32)
    adam = optim.Adam([p])
    x = np.ones(n_drop, np.float32)
    rng = lec7rs.Generator(0)
    m = 10
    r = np.random.default_rng(0)
    s = [r.standard_normal(n_lbfgs) for _ in range(m)]
    y = [si + 0.1 * r.standard_normal(n_lbfgs) for si in s]
    v = r.standard_normal(n_lbfgs)
    imgs = r.integers(0, 256, (images, 256, 256, 3), dtype=np.uint8)
    out = np.empty((images, 224, 224, 3), np.uint8)

    def drop():
        return regularization.dropout(x, 0.5, rng=rng)

    def two_loop():
        return _core.lbfgs_two_loop(s, y, v)

    rows = []
    base: dict = {}
    for t in counts:
        lec7rs.set_num_threads(t)
        roof = roofline(exe, n_adam, reps, t) if exe else None
        res = {
            f"Adam f32 {n_adam:,}": best_of(lambda: adam.step([g]), reps),
            f"dropout f32 {n_drop:,}": best_of(drop, reps),
            f"L-BFGS two-loop f64 {n_lbfgs:,}": best_of(two_loop, reps),
            f"resized crop 224, {images} images": best_of(
                lambda: augment.random_resized_crop(imgs, 224, rng=rng, out=out), max(2, reps // 2)
            ),
        }
        for name, sec in res.items():
            base.setdefault(name, sec)
            if name.startswith("Adam") and roof:
                vs = f"{roof['adam_ms'] / (sec * 1e3):.0%} of roofline Adam"
            elif name.startswith("dropout") and roof:
                bound = 9 * n_drop / (roof["copy_gbs"] * 1e9)
                vs = f"{sec / bound:.2f}x the 9 B/elem bound"
            elif name.startswith("L-BFGS") and roof:
                bound = (4 * m + 2) * 8 * n_lbfgs / (roof["copy_gbs"] * 1e9)
                vs = f"{sec / bound:.2f}x the traffic bound"
            else:
                vs = f"{images / sec:,.0f} img/s" if name.startswith("resized") else "-"
            rows.append(
                (f"{name}, {t} threads", f"{sec * 1e3:.2f} ms", vs, f"{base[name] / sec:.2f}x")
            )
        if roof:
            line = f"copy {roof['copy_gbs']:.1f} GB/s, ideal Adam {roof['adam_ms']:.2f} ms"
            rows.append((f"roofline, {t} threads", line, "", ""))
    head = ("kernel", "time", "against", "speed-up")
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
