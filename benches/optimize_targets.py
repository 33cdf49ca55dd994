"""The speed targets of lec7rs.optimize, measured side by side in one run.

    python benches/optimize_targets.py            # n = 1e6 target + table up to 1e7
    python benches/optimize_targets.py --quick    # smaller sizes, for a smoke run

Extended Rosenbrock, m = 10, objective in NumPy; lec7rs.optimize.minimize
and SciPy's L-BFGS-B run in the same process with the same gtol, ftol and
x0. The optimizer's own time per iteration is the total time minus the time
spent inside the objective, divided by the iterations. The script re-runs
itself twice: once with OPENBLAS_NUM_THREADS=1 (and OMP/MKL) set before
NumPy and SciPy are imported, once with BLAS at its default thread count.
It also builds ../shared/bench/roofline.c to report the copy bandwidth, the
memory-traffic bound of the L-BFGS direction ((4m + 3) n doubles: the
compact representation reads every s_i, y_i and g twice and writes d; the
two-loop recursion it replaced streamed (8m + 2) n), and a table of the cost
per iteration against n (1e3 ... 1e7) and m (5, 10, 20), measured once the
history is full (BLAS single-threaded run only).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROOFLINE_C = ROOT.parent / "shared" / "bench" / "roofline.c"
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def copy_bandwidth(threads: int) -> float | None:
    """Copy GB/s of roofline.c at 50M floats (memory-bound), or None."""
    if not ROOFLINE_C.exists() or shutil.which("gcc") is None:
        return None
    exe = os.path.join(tempfile.mkdtemp(), "roofline")
    cmd = ["gcc", "-O3", "-march=native", "-fno-math-errno", "-fopenmp", str(ROOFLINE_C)]
    subprocess.run([*cmd, "-o", exe, "-lm"], check=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([exe, "50000000", "5"], env=env, capture_output=True, text=True).stdout
    m = re.search(r"copy ([\d.]+) GB/s", out)
    return float(m.group(1)) if m else None


def ext_rosen(np):
    def fun(x):
        a, b = x[0::2], x[1::2]
        t1 = b - a * a
        t2 = 1 - a
        g = np.empty_like(x)
        g[0::2] = -400 * a * t1 - 2 * t2
        g[1::2] = 200 * t1
        return float(100 * t1 @ t1 + t2 @ t2), g

    return fun


def timed(fun):
    spent = [0.0]

    def wrapper(x):
        t = time.perf_counter()
        out = fun(x)
        spent[0] += time.perf_counter() - t
        return out

    return wrapper, spent


def own_per_iter(run, fun, x0):
    """(own seconds per iteration, iterations, total seconds)."""
    wrapper, spent = timed(fun)
    t = time.perf_counter()
    nit = run(wrapper, x0)
    total = time.perf_counter() - t
    return (total - spent[0]) / max(nit, 1), nit, total


def steady_state(minimize, fun, x0, m, iters=10):
    """Own seconds per iteration over iterations m+1 .. m+iters (full history)."""
    wrapper, spent = timed(fun)
    marks = []

    def callback(res):
        marks.append((time.perf_counter(), spent[0]))

    minimize(wrapper, x0, m=m, gtol=0.0, ftol=0.0, max_iter=m + iters, callback=callback)
    (t0, f0), (t1, f1) = marks[m - 1], marks[-1]
    return ((t1 - t0) - (f1 - f0)) / (len(marks) - m)


def child(args) -> int:
    import lec7rs
    import numpy as np
    import scipy
    import scipy.optimize as so
    from lec7rs.optimize import minimize

    lec7rs.set_num_threads(args.threads)
    fun = ext_rosen(np)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(
        f"-- BLAS threads: {blas}  lec7rs {lec7rs.__version__} simd={lec7rs.simd_level()} "
        f"threads={args.threads}  numpy {np.__version__}  scipy {scipy.__version__}"
    )

    def ours(m):
        return lambda f, x0: minimize(f, x0, m=m).nit

    def scipy_run(f, x0):
        opts = dict(maxcor=10, gtol=1e-5, ftol=2.2e-9, maxiter=15000, maxfun=15000)
        return so.minimize(f, x0, jac=True, method="L-BFGS-B", options=opts).nit

    n = args.n
    x0 = np.tile([-1.2, 1.0], n // 2)
    own_per_iter(ours(10), fun, x0[:1000])  # warm up the pool
    t_ours, nit_ours, tot_ours = own_per_iter(ours(10), fun, x0)
    t_sp, nit_sp, tot_sp = own_per_iter(scipy_run, fun, x0)
    ratio = t_sp / t_ours
    print(
        f"extended Rosenbrock n={n:,} m=10: lec7rs {t_ours * 1e3:.2f} ms/iter own "
        f"({nit_ours} it, {tot_ours:.2f} s total) | SciPy L-BFGS-B {t_sp * 1e3:.2f} ms/iter own "
        f"({nit_sp} it, {tot_sp:.2f} s total) | {ratio:.1f}x less (target >= 4x: "
        f"{'met' if ratio >= 4 else 'NOT met'})"
    )
    if args.copy_gbs:
        bound = (4 * 10 + 3) * n * 8 / (args.copy_gbs * 1e9)
        print(
            f"L-BFGS direction memory-traffic bound at n={n:,}, m=10: {bound * 1e3:.2f} ms "
            f"(43 n doubles at copy {args.copy_gbs:.1f} GB/s); own time / bound = "
            f"{t_ours / bound:.2f}"
        )
    if args.table:
        sizes = [10**k for k in range(3, 8 if not args.quick else 7)]
        print(
            "\nlec7rs own time per iteration, ms [ns per element per pair], over the 10 "
            "iterations after the history is full:"
        )
        print(f"{'n':>12}" + "".join(f"{'m=' + str(m):>22}" for m in (5, 10, 20)))
        for size in sizes:
            x = np.tile([-1.2, 1.0], size // 2)
            cells = []
            for m in (5, 10, 20):
                t = steady_state(minimize, fun, x, m)
                cells.append(f"{t * 1e3:10.3f} [{t / (size * m) * 1e9:6.3f}]")
            print(f"{size:>12,}" + "".join(f"{c:>22}" for c in cells))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="n = 1e5 and a table up to 1e6")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--table", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--copy-gbs", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.n is None:
        args.n = 100_000 if args.quick else 1_000_000
    if args.child:
        return child(args)

    gbs = copy_bandwidth(args.threads)
    print(f"roofline.c copy bandwidth, {args.threads} threads: {gbs} GB/s")
    base = [sys.executable, __file__, "--child", "--threads", str(args.threads), "--n", str(args.n)]
    if gbs:
        base += ["--copy-gbs", str(gbs)]
    if args.quick:
        base.append("--quick")
    single = {**os.environ, **dict.fromkeys(BLAS_VARS, "1")}
    default = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
    rc = subprocess.run([*base, "--table"], env=single).returncode
    rc |= subprocess.run(base, env=default).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
