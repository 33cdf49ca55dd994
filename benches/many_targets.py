"""The speed target of lec7rs.optimize.minimize_many: many small problems at once.

    python benches/many_targets.py              # k = 10,000 problems
    python benches/many_targets.py --k 1000     # a smaller run

k L2-regularized logistic regressions of n = 20 weights, each on its own
fixed data (--samples, default 50, features scaled per problem), solved end to end
three ways in one process with the same m, gtol and ftol (the labels folded
into the features, ``ya = y a``, for all three):

- lec7rs ``minimize_many`` with a vectorized objective (one NumPy call per
  round for all the problems still running), the best of ``--repeat`` runs;
- a Python loop of ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``,
  one problem at a time (row-by-row objective);
- a Python loop of lec7rs ``minimize``, with the same row-by-row objective.

The target is minimize_many at least 20x faster than the SciPy loop. BLAS
is limited to one thread (OPENBLAS_NUM_THREADS=1, set before NumPy is
imported): the objectives make many small BLAS calls. The times of the
objectives themselves are reported beside the totals, and the three
solutions are compared (the largest difference in f, relative).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
N = 20
LAM = 1e-2
OPTIONS = {"m": 10, "gtol": 1e-5, "ftol": 2.2e-9}


def data(np, k: int, samples: int, seed: int):
    """Fixed features (k, samples, N), labels (k, samples) and x0 (k, N)."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=(k, 1, 1))
    a = rng.standard_normal((k, samples, N)) * scale
    w = rng.standard_normal((k, N))
    p = 1 / (1 + np.exp(-np.einsum("ksn,kn->ks", a, w)))
    y = np.where(rng.random((k, samples)) < p, 1.0, -1.0)
    return a, y, np.zeros((k, N))


def vectorized(np, ya, spent):
    """``fun(X, active) -> (f, G)`` over the active problems, from the
    features with the labels folded in (``ya = y a``, so ``z = ya x``); the
    loss as ``max(-z, 0) + log1p(exp(-|z|))``, as the row-by-row objective."""
    k, samples = ya.shape[0], ya.shape[1]

    def fun(x, active):
        t = time.perf_counter()
        yaa = ya if len(active) == k else ya[active]
        z = np.matmul(yaa, x[:, :, None])[:, :, 0]
        e = np.exp(-np.abs(z))
        loss = np.maximum(-z, 0.0) + np.log1p(e)
        f = loss.mean(axis=1) + 0.5 * LAM * np.einsum("an,an->a", x, x)
        # d loss / dz = -sigmoid(-z) = -1 / (1 + exp(z)), without overflow.
        coef = -np.where(z >= 0, e, 1.0) / ((1.0 + e) * samples)
        g = np.matmul(coef[:, None, :], yaa)[:, 0, :] + LAM * x
        spent[0] += time.perf_counter() - t
        return f, g

    return fun


def row_by_row(np, ya, i, spent):
    """``fun(x) -> (f, g)`` of problem ``i`` (the same arithmetic as
    :func:`vectorized` on that row)."""
    yai = ya[i]
    samples = yai.shape[0]

    def fun(w):
        t = time.perf_counter()
        z = yai @ w
        e = np.exp(-np.abs(z))
        f = float((np.maximum(-z, 0.0) + np.log1p(e)).mean() + 0.5 * LAM * (w @ w))
        coef = -np.where(z >= 0, e, 1.0) / ((1.0 + e) * samples)
        g = coef @ yai + LAM * w
        spent[0] += time.perf_counter() - t
        return f, g

    return fun


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=10_000, help="number of problems (10,000)")
    ap.add_argument("--samples", type=int, default=50, help="samples per problem (50)")
    ap.add_argument("--threads", type=int, default=None, help="lec7rs threads (its default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeat", type=int, default=3, help="runs of minimize_many, the best compared (3)"
    )
    args = ap.parse_args()
    if args.k < 1 or args.samples < 1 or args.repeat < 1:
        ap.error("--k, --samples and --repeat must be >= 1")
    # Before NumPy and SciPy are imported, so that their BLAS reads it.
    os.environ.update(dict.fromkeys(BLAS_VARS, "1"))
    import lec7rs
    import numpy as np
    import scipy
    import scipy.optimize as so
    from lec7rs.optimize import minimize, minimize_many

    if args.threads is not None:
        lec7rs.set_num_threads(args.threads)
    print(
        f"lec7rs {lec7rs.__version__} simd={lec7rs.simd_level()} "
        f"threads={lec7rs.get_num_threads()}  numpy {np.__version__}  scipy {scipy.__version__}  "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}  cpus={os.cpu_count()}"
    )
    k = args.k
    a, y, x0 = data(np, k, args.samples, args.seed)
    print(
        f"{k:,} L2-regularized logistic regressions, n={N}, {args.samples} samples each, "
        f"lam={LAM}, m={OPTIONS['m']}, gtol={OPTIONS['gtol']}, ftol={OPTIONS['ftol']}"
    )
    # The labels are +-1: y (a x) and (y a) x have the same bits.
    ya = y[:, :, None] * a
    # minimize_many takes seconds, the loops minutes: it runs --repeat times
    # (the first run in a process also pays for its first touch of the
    # temporaries' memory) and its best time is compared; the loops run once.
    many, t_many, f_many, t_first = None, float("inf"), 0.0, 0.0
    for rep in range(args.repeat):
        spent = [0.0]
        t = time.perf_counter()
        many = minimize_many(vectorized(np, ya, spent), x0, **OPTIONS)
        t = time.perf_counter() - t
        if rep == 0:
            t_first = t
        if t < t_many:
            t_many, f_many = t, spent[0]

    spent = [0.0]
    t = time.perf_counter()
    sp_f, sp_nit, sp_ok = np.empty(k), np.empty(k, dtype=np.int64), 0
    sp_opts = {
        "maxcor": OPTIONS["m"],
        "gtol": OPTIONS["gtol"],
        "ftol": OPTIONS["ftol"],
        "maxiter": 15000,
        "maxfun": 15000,
    }
    for i in range(k):
        r = so.minimize(
            row_by_row(np, ya, i, spent), x0[i], jac=True, method="L-BFGS-B", options=sp_opts
        )
        sp_f[i], sp_nit[i], sp_ok = r.fun, r.nit, sp_ok + bool(r.success)
    t_sp, f_sp = time.perf_counter() - t, spent[0]

    spent = [0.0]
    t = time.perf_counter()
    loop_f, loop_nit, loop_ok = np.empty(k), np.empty(k, dtype=np.int64), 0
    for i in range(k):
        r = minimize(row_by_row(np, ya, i, spent), x0[i], **OPTIONS)
        loop_f[i], loop_nit[i], loop_ok = r.fun, r.nit, loop_ok + bool(r.success)
    t_loop, f_loop = time.perf_counter() - t, spent[0]

    def rel(u, v):
        return float(np.max(np.abs(u - v) / np.maximum(np.abs(v), 1.0)))

    rows = [
        ("lec7rs minimize_many", t_many, f_many, int(many.success.sum()), many.nit),
        ("SciPy L-BFGS-B loop", t_sp, f_sp, sp_ok, sp_nit),
        ("lec7rs minimize loop", t_loop, f_loop, loop_ok, loop_nit),
    ]
    print(f"\n{'':24}{'total s':>10}{'objective s':>13}{'converged':>11}{'mean nit':>10}")
    for name, total, obj, ok, nit in rows:
        print(f"{name:24}{total:10.3f}{obj:13.3f}{ok:>11,}{float(np.mean(nit)):10.1f}")
    print(
        f"\nminimize_many: {int(many.nfev.max())} calls of fun (rounds), "
        f"{int(many.nfev.sum()):,} row evaluations"
    )
    print(
        f"largest relative difference in f: vs SciPy {rel(many.fun, sp_f):.1e}, "
        f"vs the minimize loop {rel(many.fun, loop_f):.1e}"
    )
    print(
        f"minimize_many: best of {args.repeat} runs; the first took {t_first:.3f} s "
        f"({t_sp / t_first:.1f}x faster than the SciPy loop)"
    )
    ratio = t_sp / t_many
    print(
        f"minimize_many is {ratio:.1f}x faster than the SciPy loop (target >= 20x: "
        f"{'met' if ratio >= 20 else 'NOT met'}) and {t_loop / t_many:.1f}x faster than the "
        f"lec7rs minimize loop; the minimize loop is {t_sp / t_loop:.2f}x the SciPy loop's speed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
