"""Multinomial logistic regression (softmax, L2) on the digits with L-BFGS.

    python examples/logreg_lbfgs.py
    python examples/logreg_lbfgs.py --lam 1e-2 --no-scipy

The 1797 8x8 digits of ``lec7rs.data.load_digits()`` (pixels scaled to
[0, 1], plus a constant feature for the bias) are split at random (seed 0)
into 1437 training and 360 test images. The objective is the mean
cross-entropy of a linear softmax classifier plus ``lam / 2 ||W||^2`` on
the weights (not the biases): 650 variables, convex, with its gradient in
closed form. ``lec7rs.optimize.minimize(method="L-BFGS")`` minimizes it
from zero; the script prints the iterations, the evaluations, the final
loss (the objective), the test accuracy and the wall time of the run (the
objective's time included).

When SciPy imports, ``scipy.optimize.minimize(method="L-BFGS-B")`` runs on
the same objective with the same settings (``maxcor=10``, ``gtol=1e-5``,
``ftol=2.2e-9``) and its figures are printed beside. The matrix products
are small, so BLAS is limited to one thread when threadpoolctl imports
(see the BLAS-threads note of the optimize guide). Runs in about a second.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import numpy as np
from lec7rs.data import load_digits
from lec7rs.optimize import minimize

N_CLASSES = 10


def split(seed: int = 0, n_test: int = 360) -> tuple:
    """``(X_train, y_train, X_test, y_test)``: float64 features of 65
    columns (64 pixels in [0, 1] and a constant 1) and int labels."""
    images, labels = load_digits()
    x = images.reshape(len(images), -1).astype(np.float64) / 16.0
    x = np.hstack([x, np.ones((len(x), 1))])
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    return x[train], labels[train], x[test], labels[test]


def make_objective(x: np.ndarray, y: np.ndarray, lam: float):
    """``fun(w) -> (f, g)`` for the flat weights ``w`` of shape
    ``(65 * 10,)``: mean softmax cross-entropy + ``lam / 2`` times the
    squared norm of the weights (the bias row is not penalized)."""
    n, d = x.shape
    onehot = np.zeros((n, N_CLASSES))
    onehot[np.arange(n), y] = 1.0
    penalized = np.ones((d, 1))
    penalized[-1] = 0.0  # the bias row

    def fun(w: np.ndarray) -> tuple:
        wm = w.reshape(d, N_CLASSES)
        z = x @ wm
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -(onehot * log_p).sum() / n
        reg = penalized * wm
        f = loss + 0.5 * lam * float((reg * wm).sum())
        g = x.T @ (np.exp(log_p) - onehot) / n + lam * reg
        return float(f), g.reshape(-1)

    return fun


def accuracy(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(((x @ w.reshape(x.shape[1], N_CLASSES)).argmax(axis=1) == y).mean())


def one_blas_thread():
    """BLAS on one thread for the block, when threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lam", type=float, default=1e-3, help="L2 strength (default 1e-3)")
    ap.add_argument("--no-scipy", action="store_true", help="skip the SciPy comparison")
    args = ap.parse_args()

    x_train, y_train, x_test, y_test = split()
    fun = make_objective(x_train, y_train, args.lam)
    x0 = np.zeros(x_train.shape[1] * N_CLASSES)
    print(
        f"digits: {len(x_train)} training and {len(x_test)} test images, "
        f"{x0.size} variables, lam = {args.lam:g}"
    )

    rows = []
    with one_blas_thread():
        start = time.perf_counter()
        res = minimize(fun, x0, method="L-BFGS", m=10, gtol=1e-5, ftol=2.2e-9)
        seconds = time.perf_counter() - start
        rows.append(("lec7rs L-BFGS", res.nit, res.nfev, res.fun, res.x, seconds, res.message))

        scipy_optimize = None
        if not args.no_scipy:
            try:
                import scipy.optimize as scipy_optimize
            except ImportError:
                print("scipy is not installed: no comparison")
        if scipy_optimize is not None:
            start = time.perf_counter()
            ref = scipy_optimize.minimize(
                fun,
                x0,
                jac=True,
                method="L-BFGS-B",
                options={"maxcor": 10, "gtol": 1e-5, "ftol": 2.2e-9},
            )
            seconds = time.perf_counter() - start
            rows.append(("SciPy L-BFGS-B", ref.nit, ref.nfev, ref.fun, ref.x, seconds, ref.message))

    print(f"{'':16}{'nit':>5}{'nfev':>6}{'loss':>12}{'test acc':>10}{'time':>10}")
    for name, nit, nfev, f, w, seconds, message in rows:
        acc = accuracy(w, x_test, y_test)
        print(f"{name:16}{nit:5d}{nfev:6d}{f:12.6f}{acc:10.4f}{seconds * 1e3:8.1f} ms  ({message})")
    if not res.success:
        raise SystemExit(f"lec7rs's L-BFGS did not converge: {res.message}")


if __name__ == "__main__":
    main()
