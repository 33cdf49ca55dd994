"""The speed target of L-BFGS-B (minimize with bounds), side by side with SciPy.

    python benches/lbfgsb_targets.py                 # n = 1e6, every SIMD level here
    python benches/lbfgsb_targets.py --n 100000      # smaller
    LEC7RS_SIMD=avx2 python benches/lbfgsb_targets.py --levels env

Bounded extended Rosenbrock, m = 10: the odd coordinates a_i in [-2, 0.5],
the even ones b_i in [-2, 2], from the standard start (-1.2, 1); at the
solution every a_i sits on its upper bound 0.5 (half the coordinates
active) and b_i = 0.25. lec7rs.optimize.minimize(bounds=...) and SciPy's
L-BFGS-B run in the same process with the same m, gtol, ftol, bounds and
x0, with BLAS on one thread (OPENBLAS_NUM_THREADS=1 and its siblings are
set here before NumPy is imported; each level runs in its own process). The
optimizer's own time per iteration is the total time minus the time spent
in the objective, divided by the iterations. Target: lec7rs's own time at
least 4x less than SciPy's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")


def problem(np, n):
    def fun(x):
        a, b = x[0::2], x[1::2]
        t1 = b - a * a
        t2 = 1 - a
        g = np.empty_like(x)
        g[0::2] = -400 * a * t1 - 2 * t2
        g[1::2] = 200 * t1
        return float(100 * t1 @ t1 + t2 @ t2), g

    x0 = np.tile([-1.2, 1.0], n // 2)
    lo = np.tile([-2.0, -2.0], n // 2)
    hi = np.tile([0.5, 2.0], n // 2)
    return fun, x0, lo, hi


def own(run, fun, np):
    """(own seconds per iteration, result, total seconds)."""
    spent = [0.0]

    def timed(x):
        t = time.perf_counter()
        out = fun(x)
        spent[0] += time.perf_counter() - t
        return out

    t = time.perf_counter()
    res = run(timed)
    total = time.perf_counter() - t
    return (total - spent[0]) / max(res.nit, 1), res, total


def child(n: int) -> int:
    import numpy as np
    import scipy.optimize as so
    from lec7rs import _core
    from lec7rs.optimize import minimize

    fun, x0, lo, hi = problem(np, n)

    def ours(f):
        return minimize(f, x0, bounds=(lo, hi), m=10, gtol=1e-5, ftol=2.2e-9)

    def scipy_run(f):
        opts = dict(maxcor=10, gtol=1e-5, ftol=2.2e-9, maxiter=15000)
        box = so.Bounds(lo, hi)
        return so.minimize(f, x0, jac=True, method="L-BFGS-B", bounds=box, options=opts)

    small = problem(np, 1000)
    minimize(small[0], small[1], bounds=(small[2], small[3]))  # warm the pool
    t_ours, r_ours, tot_ours = own(ours, fun, np)
    t_sp, r_sp, tot_sp = own(scipy_run, fun, np)
    pg = lambda r: float(np.abs(np.clip(r.x - r.jac, lo, hi) - r.x).max())  # noqa: E731
    active = float(np.mean((r_ours.x == lo) | (r_ours.x == hi)))
    print(
        f"  level {_core.simd_level():7s} threads {_core.get_num_threads()}: "
        f"lec7rs {t_ours * 1e3:7.2f} ms/iter own ({r_ours.nit} it, f {r_ours.fun:.10g}, "
        f"|pg| {pg(r_ours):.1e}, {tot_ours:.2f} s) | SciPy {t_sp * 1e3:7.2f} ms/iter own "
        f"({r_sp.nit} it, f {r_sp.fun:.10g}, |pg| {pg(r_sp):.1e}, {tot_sp:.2f} s) | "
        f"SciPy / lec7rs own time {t_sp / t_ours:.2f}x | active at the end {active:.0%}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--levels", default="all", help="'all' or 'env' (LEC7RS_SIMD as set)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child or args.levels == "env":
        return child(args.n)
    from lec7rs import _core

    print(f"bounded extended Rosenbrock, n = {args.n:,}, m = 10, BLAS 1 thread")
    for level in _core.simd_levels():
        env = {**os.environ, "LEC7RS_SIMD": level}
        cmd = [sys.executable, __file__, "--child", "--n", str(args.n)]
        subprocess.run(cmd, env=env, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
