"""Low-precision Adam steps against the float32 step and their bytes-moved bounds.

Run: ``python benches/low_precision_targets.py [--n 50000000] [--threads 2]``
(``LEC7RS_SIMD=avx2`` or ``scalar`` to measure another level).

Each variant of ``lec7rs.optim.Adam`` on one param of ``n`` elements, timed
in turns with the float32 step (best of several, so all see the same memory
bandwidth), and against the bytes it must move per element over the copy
rate at which ``../shared/bench/roofline.c``'s ideal fused float32 Adam
streams in the same run:

* float32 params, grads and state: 28 B (read p, g, m, v; write p, m, v).
* bfloat16 params + bfloat16 grads + float32 state: 22 B.
* the same with float32 master weights: 28 B as computed here (the master
  replaces the param as input; the bfloat16 param is only written); the
  issue counts 30 B (also reading the bfloat16 param).
* bfloat16 params + int8 state: 10 B plus 8 B of absmax per 2048.
* bfloat16 or float16 params with stochastic rounding: 22 B, as rounding
  to nearest (plus one Philox word per element, computed, not moved).

Targets: each within 1.2x of its bound; bfloat16 params + int8 state at
least 2.2x faster than the float32 step. Against torch's fused Adam on
bfloat16 params and bitsandbytes' 8-bit Adam where they import (info).
"""

from __future__ import annotations

import argparse
import os
import sys

import lec7rs
import numpy as np
from lec7rs.optim import Adam

sys.path.insert(0, os.path.dirname(__file__))
from targets import best_of, build_roofline, print_table, roofline


def variants(n: int) -> dict:
    import ml_dtypes

    bf = ml_dtypes.bfloat16
    g32 = (0.01 * (np.arange(n) % 7) - 0.03).astype(np.float32)
    out = {}

    def make(name, param_dtype, grad_dtype, bytes_, **kw):
        p = np.ones(n, param_dtype)
        g = g32.astype(grad_dtype)
        opt = Adam([p], lr=1e-3, **kw)
        out[name] = (lambda: opt.step([g]), bytes_)

    make("f32 params, grads, state", np.float32, np.float32, 28)
    make("bf16 params + bf16 grads, f32 state", bf, bf, 22)
    make("bf16 params + master weights", bf, bf, 28, master_weights=True)
    make("bf16 params + int8 state", bf, bf, 10 + 8 / 2048, state_dtype="int8")
    make("f16 params + f16 grads, f32 state", np.float16, np.float16, 22)
    # Stochastic rounding moves the bytes of rounding to nearest; it adds
    # one Philox word per element.
    for name, dtype in (("bf16", bf), ("f16", np.float16)):
        make(
            f"{name} params + stochastic rounding",
            dtype,
            dtype,
            22,
            stochastic_rounding=True,
            rng=lec7rs.Generator(0),
        )
    return out


def torch_bf16(n: int):
    try:
        import torch
    except ImportError:
        return None
    p = torch.ones(n, dtype=torch.bfloat16, requires_grad=True)
    p.grad = torch.full((n,), 0.01, dtype=torch.bfloat16)
    try:
        opt = torch.optim.Adam([p], lr=1e-3, fused=True)
        opt.step()
    except (RuntimeError, TypeError):
        opt = torch.optim.Adam([p], lr=1e-3, foreach=True)
    return opt.step


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    lec7rs.set_num_threads(args.threads)
    n = args.n
    steps = variants(n)
    times = {name: float("inf") for name in steps}
    for _ in range(args.reps):
        for name, (fn, _) in steps.items():
            times[name] = min(times[name], best_of(fn, 1))
    exe = build_roofline()
    roof = roofline(exe, n, 3, args.threads) if exe else None
    print(f"lec7rs {lec7rs.__version__}, SIMD {lec7rs.simd_level()}, {args.threads} threads")
    if roof:
        print("roofline:", roof["line"])
    rows = []
    t32 = times["f32 params, grads, state"]
    for name, (_, bytes_) in steps.items():
        t = times[name]
        if roof:
            # The rate at which roofline.c's ideal fused float32 Adam streams
            # its 28 B per element (copy's GB/s leave out write-allocate).
            bw = 28 * n / (roof["adam_ms"] * 1e-3)
            bound = bytes_ * n / bw
            ratio = t / bound
            rows.append(
                (
                    f"Adam {name} n={n:,} ({bytes_:.0f} B/elem)",
                    f"{t * 1e3:.1f} ms",
                    f"bound {bound * 1e3:.1f} ms",
                    f"{ratio:.2f}x",
                    "<= 1.2x",
                    ratio <= 1.2,
                )
            )
    t8 = times["bf16 params + int8 state"]
    rows.append(
        (
            "bf16 + int8 state vs f32 step",
            f"{t8 * 1e3:.1f} ms",
            f"f32 {t32 * 1e3:.1f} ms",
            f"{t32 / t8:.2f}x faster",
            ">= 2.2x",
            t32 / t8 >= 2.2,
        )
    )
    step = torch_bf16(n)
    if step is not None:
        tt = best_of(step, args.reps)
        tb = times["bf16 params + bf16 grads, f32 state"]
        rows.append(
            (
                "vs torch Adam bf16",
                f"{tb * 1e3:.1f} ms",
                f"{tt * 1e3:.1f} ms",
                f"{tt / tb:.2f}x",
                "(info)",
                True,
            )
        )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
