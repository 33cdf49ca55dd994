"""Muon's speed target, measured side by side in one run.

    python benches/muon_targets.py               # a 1024 x 1024 float32 param
    python benches/muon_targets.py --n 512 --reps 3

Newton-Schulz is three matrix products per iteration (``A = X X^T``, ``b A +
c A A``, ``a X + B X``), five iterations by default. lec7rs runs them on
``matrixmultiply``'s GEMM, one thread per param; the baseline runs the same
products with ``np.matmul`` on one BLAS thread (``threadpoolctl``), in the
reference's code (``reference.optim_torch2._zeropower_via_newtonschulz``:
the same norm, scaling and iterations, in float32).

The lec7rs side is a whole ``Muon.step`` on one thread minus the same step
with ``ns_steps=0`` (the momentum, the norm, the transposes and the param
write), i.e. the iterations alone; the whole step is shown too. Target:
the iterations within 1.5x of NumPy's. Times are the best of ``--reps``.
"""

from __future__ import annotations

import argparse
import sys

import lec7rs
import numpy as np
from lec7rs import optim
from lec7rs.reference import optim_torch2
from targets import best_of, print_table
from threadpoolctl import threadpool_info, threadpool_limits

COEFFS = (3.4445, -4.775, 2.0315)


def muon_step_time(n: int, ns_steps: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    p = rng.standard_normal((n, n)).astype(np.float32)
    g = rng.standard_normal((n, n)).astype(np.float32)
    opt = optim.Muon([p], ns_steps=ns_steps)
    return best_of(lambda: opt.step([g]), reps)


def numpy_ns_time(n: int, ns_steps: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    u = rng.standard_normal((n, n)).astype(np.float32)
    return best_of(
        lambda: optim_torch2._zeropower_via_newtonschulz(u, COEFFS, ns_steps, 1e-7), reps
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="the param is n x n float32")
    ap.add_argument("--ns-steps", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    n, k, reps = args.n, args.ns_steps, args.reps
    blas = [f"{i['internal_api']} {i['version']}" for i in threadpool_info()]
    before = lec7rs.get_num_threads()
    lec7rs.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            step = muon_step_time(n, k, reps)
            rest = muon_step_time(n, 0, reps)
            ours = step - rest
            theirs = numpy_ns_time(n, k, reps)
    finally:
        lec7rs.set_num_threads(before)
    print(f"lec7rs {lec7rs.__version__}, simd={lec7rs.simd_level()}, 1 thread; BLAS: {blas}")
    print(
        f"Muon step, {n}x{n} float32, ns_steps={k}: {step * 1e3:.1f} ms "
        f"(ns_steps=0: {rest * 1e3:.1f} ms)"
    )
    ratio = ours / theirs
    flops = 3 * 2 * n**3 * k
    print_table(
        [
            (
                f"{k} Newton-Schulz iterations, {n}x{n} f32",
                f"{ours * 1e3:.1f} ms ({flops / ours / 1e9:.0f} GFLOP/s)",
                f"{theirs * 1e3:.1f} ms np.matmul, 1 BLAS thread",
                f"{ratio:.2f}x",
                "<= 1.5x",
                "yes" if ratio <= 1.5 else "no",
            )
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
