"""Second-order minimization: L-BFGS, BFGS, Newton's method and the trust-ncg
trust-region method, with SciPy's ``OptimizeResult`` conventions.

The objective stays a Python callable; the optimizer's own work per
iteration (the L-BFGS direction, the BFGS update, the line search's trial
points and dot products, trust-ncg's conjugate gradient steps) runs in Rust
with the GIL released, multi-threaded and bit-identical for any thread count
and SIMD level.

An objective that calls multi-threaded BLAS (``x @ x`` on large arrays)
leaves OpenBLAS's worker threads spinning for a while after each call, on
the cores lec7rs's threads then want: on a 2-core machine, n = 1e6, the
optimizer's own time per iteration is about 19 ms with
``OPENBLAS_NUM_THREADS=1`` and 33-35 ms without (no faster than 1 lec7rs
thread). Limit BLAS to one thread (``OPENBLAS_NUM_THREADS=1``, or
``threadpoolctl.threadpool_limits(1)`` around the run) when the objective's
BLAS calls are small.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable

import numpy as np

from . import _core

__all__ = ["LbfgsInvHessProduct", "OptimizeResult", "minimize", "minimize_many"]

_METHODS = {
    "l-bfgs": "L-BFGS",
    "l-bfgs-b": "L-BFGS",
    "bfgs": "BFGS",
    "newton": "Newton",
    "trust-ncg": "trust-ncg",
}
_LINE_SEARCHES = ("strong_wolfe", "backtracking")


class OptimizeResult(dict):
    """The result of :func:`minimize`: a dict whose keys are also attributes,
    with SciPy's field names.

    ``x`` (the solution, x0's dtype and shape), ``fun`` (f at x), ``jac``
    (the gradient at x), ``nit`` (iterations), ``nfev`` (calls of ``fun``),
    ``njev`` (gradient evaluations), ``success``, ``status`` (0 converged,
    1 iteration or evaluation limit, 2 line search failed, the objective
    is not finite, or (trust-ncg) the model predicts no decrease or the
    trust radius collapsed, 3 stopped by the callback), ``message`` and
    ``hess_inv`` (L-BFGS: an :class:`LbfgsInvHessProduct`; BFGS: the dense
    matrix; Newton and trust-ncg: None). Newton adds ``nhev`` (Hessian
    evaluations) and ``hess_shift`` (the largest multiple of the identity
    added to make a Hessian positive definite, 0.0 if none was needed);
    trust-ncg adds ``nhev`` (calls of ``hessp``, or of ``hess``).
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list:
        return list(self.keys())

    def __repr__(self) -> str:
        if not self:
            return f"{type(self).__name__}()"
        width = max(map(len, map(str, self))) + 1
        return "\n".join(
            f"{str(k).rjust(width)}: {_short(v)}" for k, v in sorted(self.items(), key=_key)
        )


def _key(item: tuple) -> str:
    return str(item[0])


def _short(v: Any) -> str:
    if isinstance(v, np.ndarray) and v.size > 20:
        return np.array2string(v, threshold=20, edgeitems=3)
    return repr(v)


class LbfgsInvHessProduct:
    """The L-BFGS inverse Hessian approximation ``H`` of the last iterate,
    as a linear operator: ``matvec(v) = H v``, ``dot(v)``, ``todense()``.

    ``H`` is what the iterations used: the L-BFGS matrix of the stored
    pairs ``(s_i, y_i)`` with ``H0 = gamma I``, ``gamma = s'y / y'y`` of the
    newest pair (SciPy's ``LbfgsInvHessProduct`` uses ``H0 = I`` instead, so
    its ``H`` is not the one its iterations used). ``H v`` is computed in
    Rust by the two-loop recursion, in the history's dtype (the iterations
    apply the same ``H`` by the compact representation: equal up to
    rounding); ``todense()`` costs ``n`` products (``O(m n^2)``).
    """

    def __init__(self, s: list, y: list):
        if len(s) != len(y):
            raise ValueError(f"s and y: {len(s)} s but {len(y)} y")
        self._s = list(s)
        self._y = list(y)
        self._n = int(s[0].shape[0]) if s else 0
        self.dtype = s[0].dtype if s else np.dtype(np.float64)

    @classmethod
    def _from_core(cls, s: np.ndarray, y: np.ndarray, order: list) -> LbfgsInvHessProduct:
        op = cls([s[j] for j in order], [y[j] for j in order])
        op._n = s.shape[1]
        op.dtype = s.dtype
        return op

    @property
    def shape(self) -> tuple:
        """``(n, n)``, as a SciPy ``LinearOperator``."""
        return (self._n, self._n)

    @property
    def n_pairs(self) -> int:
        """The number of ``(s, y)`` pairs in the approximation."""
        return len(self._s)

    def matvec(self, v: Any) -> np.ndarray:
        """``H v`` for ``v`` of shape ``(n,)`` or ``(n, 1)``."""
        v = np.asarray(v)
        if v.shape not in ((self._n,), (self._n, 1)):
            raise ValueError(f"v: expected shape ({self._n},) or ({self._n}, 1), got {v.shape}")
        flat = np.ascontiguousarray(v.reshape(-1), dtype=self.dtype)
        return _core.lbfgs_two_loop(self._s, self._y, flat).reshape(v.shape)

    def dot(self, v: Any) -> np.ndarray:
        """``H v`` for a vector, or ``H V`` column by column for a matrix."""
        v = np.asarray(v)
        if v.ndim == 2 and v.shape[1] != 1:
            if v.shape[0] != self._n:
                raise ValueError(f"v: expected {self._n} rows, got shape {v.shape}")
            return np.stack([self.matvec(v[:, j]) for j in range(v.shape[1])], axis=1)
        return self.matvec(v)

    rmatvec = matvec

    def __matmul__(self, v: Any) -> np.ndarray:
        return self.dot(v)

    def todense(self) -> np.ndarray:
        """``H`` as a dense ``(n, n)`` array."""
        eye = np.eye(self._n, dtype=self.dtype)
        return np.stack([self.matvec(eye[:, j]) for j in range(self._n)], axis=1)

    def __repr__(self) -> str:
        return (
            f"<{self._n}x{self._n} LbfgsInvHessProduct with dtype={self.dtype}, "
            f"{len(self._s)} pairs>"
        )


def minimize(
    fun: Callable,
    x0: Any,
    *,
    method: str = "L-BFGS",
    jac: bool | Callable | None = True,
    hess: Callable | None = None,
    hessp: Callable | None = None,
    callback: Callable | None = None,
    m: int = 10,
    gtol: float = 1e-5,
    ftol: float = 2.2e-9,
    max_iter: int = 15000,
    max_fun: int = 15000,
    line_search: str = "strong_wolfe",
    max_ls: int = 20,
    initial_trust_radius: float | None = None,
    max_trust_radius: float | None = None,
    eta: float | None = None,
    bounds: Any = None,
    **unknown: Any,
) -> OptimizeResult:
    """Minimizes ``fun`` from ``x0`` with L-BFGS, BFGS, Newton's method or
    trust-ncg.

    Parameters
    ----------
    fun : callable
        With ``jac=True`` (the default), ``fun(x) -> (f, g)``: the value and
        the gradient, an array of x0's dtype and shape. With ``jac`` a
        callable, ``fun(x) -> f`` and ``jac(x) -> g``. With ``jac=False``
        (or ``None``, or ``"2-point"``), ``fun(x) -> f`` and the gradient is
        estimated by forward differences (``n`` extra calls per gradient,
        step ``sqrt(eps) * max(1, |x_i|)``, as SciPy's ``"2-point"``).
        ``x`` is a fresh array of x0's dtype and shape on every call.
    x0 : ndarray
        The starting point, float32 or float64 (a list is read as float64),
        any shape. The result keeps its dtype and shape.
    method : {"L-BFGS", "L-BFGS-B", "BFGS", "Newton", "trust-ncg"} (case-insensitive)
        - ``"L-BFGS"``: the inverse Hessian approximation of the last
          ``m`` pairs ``s = x_{k+1} - x_k``, ``y = g_{k+1} - g_k``, with
          ``H0 = (s'y / y'y) I``, applied as L-BFGS-B does, by the compact
          representation (Byrd, Nocedal & Schnabel 1994): two passes over
          the pairs per iteration, ``(4m + 3) n`` elements of memory
          traffic. A pair with ``s'y <= eps * (-g_k's)`` is skipped
          (L-BFGS-B's curvature guard). Memory ``2 (m + 1) n``.
          With ``bounds`` (``"L-BFGS-B"`` is the same method): the L-BFGS-B
          algorithm of Byrd, Lu, Nocedal & Zhu (1995), in the steps of
          L-BFGS-B 3.0 (SciPy's): the generalized Cauchy point along the
          projected steepest-descent path, subspace minimization over the
          variables free there (the direct primal method, the step
          projected into the box and backtracked when it is not a descent
          direction), a line search along the feasible segment (the first
          step ``min(1, 1 / ||d||)``), and convergence on the projected
          gradient, ``max |P(x - g) - x|_i <= gtol``. ``x0`` is clipped into
          the box, and every ``x`` passed to ``fun`` lies in it. Three
          passes over the pairs per iteration; memory ``2 (m + 1) n`` plus
          six vectors.
        - ``"BFGS"``: a dense ``n x n`` inverse Hessian, ``H0 = I`` for the
          first step and ``(y's / y'y) I`` before the first update (Nocedal
          & Wright eq. 6.20). Memory ``n^2``.
        - ``"Newton"``: ``hess(x)`` returns the dense ``(n, n)`` Hessian;
          the step solves ``(H + tau I) d = -g`` where ``tau = 0`` if the
          Cholesky factorization of ``H`` succeeds, else the smallest
          ``tau`` of the sequence of Nocedal & Wright's Algorithm 3.3
          (starting at ``max(0, beta - min H_ii)``, doubling;
          ``beta = 1e-3 ||H||_F / sqrt(n)``) for which it does. A shift is
          reported in ``message`` and ``hess_shift``. Solved with NumPy's
          LAPACK in float64.
        - ``"trust-ncg"``: the Steihaug-Toint truncated conjugate gradient
          trust-region method, with SciPy's rules: CG on the model
          ``m(p) = f + g'p + p'Hp / 2`` inside ``||p||_2 <= radius`` stops
          when ``||r|| < min(0.5, sqrt(||g||)) ||g||``, at negative
          curvature (the boundary point of lower model value) or on
          leaving the region; with ``rho`` the actual over the predicted
          reduction, ``rho < 0.25`` shrinks the radius by 4, ``rho > 0.75``
          with a step on the boundary doubles it (at most
          ``max_trust_radius``), and the step is taken when ``rho > eta``.
          Needs ``hessp`` or ``hess``; every iteration, taken or not, counts
          in ``nit`` and reaches the callback (as SciPy). Unlike SciPy:
          convergence is on ``max |g_i|``; the model value comes from CG's
          residual (no extra ``hessp`` call); a non-finite ``f`` or gradient
          at a proposed point rejects it and shrinks the radius; a radius
          below ``eps * max(1, ||x||)`` ends the run with status 2; CG stops
          after ``10 n + 100`` products. ``m``, ``ftol``, ``line_search``
          and ``max_ls`` do not apply. Memory ``10 n``.
    jac : bool or callable, default True
        See ``fun``.
    hess : callable, optional
        ``hess(x) -> (n, n) array`` for ``"Newton"`` and ``"trust-ncg"``
        (evaluated once per iterate, then ``H @ p``); ignored with a
        ``RuntimeWarning`` by the other methods (as SciPy).
    hessp : callable, optional
        ``hessp(x, p) -> H p`` for ``"trust-ncg"`` (instead of ``hess``):
        ``x`` the current iterate and ``p`` a vector, both of x0's dtype and
        shape, the product an array of x0's dtype and shape. Only
        ``"trust-ncg"`` takes it.
    callback : callable, optional
        ``callback(intermediate_result)`` after every iteration, with an
        :class:`OptimizeResult` holding ``x``, ``fun``, ``jac``, ``nit`` and
        ``nfev``. Returning ``True`` (or raising ``StopIteration``, as in
        SciPy) stops the run with status 3.
    m : int, default 10
        The number of pairs L-BFGS keeps (L-BFGS-B's ``maxcor``).
    gtol : float, default 1e-5
        Converged when ``max |g_i| <= gtol``.
    ftol : float, default 2.2e-9
        Converged when a step gives ``(f_k - f_{k+1}) / max(|f_k|,
        |f_{k+1}|, 1) <= ftol`` (L-BFGS-B's ``factr * eps``).
    max_iter, max_fun : int, default 15000
        Limits on iterations and on evaluations of ``(f, g)`` (status 1;
        ``x`` is then the last iterate). Unlike SciPy, ``max_fun`` is never
        exceeded: a line search stops at the limit.
    line_search : {"strong_wolfe", "backtracking"}
        ``"strong_wolfe"``: More & Thuente's search (MINPACK-2 ``dcsrch``,
        as L-BFGS-B), with ``c1 = 1e-3`` for L-BFGS (as L-BFGS-B) and
        ``1e-4`` for BFGS and Newton (as SciPy's BFGS), ``c2 = 0.9``.
        ``"backtracking"``: Armijo backtracking with safeguarded quadratic
        interpolation (same ``c1``). The first step is ``1`` (Newton and
        after curvature is known) or ``1 / ||g||_2`` (the first steepest
        descent step).
    max_ls : int, default 20
        Evaluations per line search. A line search that fails (no
        acceptable step within ``max_ls``, no decrease, a non-finite
        objective at every step tried) drops the curvature information and
        retries once along steepest descent (as L-BFGS-B); a second failure
        ends the run with status 2. It never raises.
    initial_trust_radius : float, default 1.0
        trust-ncg: the first radius, ``0 < initial_trust_radius <=
        max_trust_radius``.
    max_trust_radius : float, default 1000.0
        trust-ncg: the largest radius (finite, > 0).
    eta : float, default 0.15
        trust-ncg: a step is taken when ``rho > eta``, ``0 <= eta < 0.25``.
        Only ``"trust-ncg"`` takes these three options.

    bounds : optional
        Box constraints for L-BFGS (L-BFGS-B): a sequence of ``x0.size``
        pairs ``(low, high)`` (``None`` or an infinity for no bound), or a
        tuple of exactly two arrays ``(lower, upper)`` broadcastable to
        ``x0``'s shape, or an object with ``lb`` and ``ub`` (such as
        ``scipy.optimize.Bounds``). ``low == high`` fixes a variable. The
        bounds are cast to x0's dtype. Without any finite bound the run is
        the unconstrained one.

    Returns
    -------
    OptimizeResult
        See :class:`OptimizeResult`. A non-finite ``f`` or gradient at
        ``x0`` ends the run at once with status 2; at a trial step, the
        line search shrinks the step.

    Raises
    ------
    TypeError
        ``x0`` or a returned gradient of another dtype (float32 x0 needs
        float32 gradients), ``fun`` not returning ``(f, g)`` with
        ``jac=True``, non-callable ``fun`` / ``callback`` / ``hess``.
    ValueError
        An unknown method, line search or option, an option out of range,
        a gradient of another shape than x0, ``"Newton"`` without ``hess``,
        bounds of the wrong length, with NaN or with ``low > high``, or
        bounds for another method than L-BFGS,
        ``"trust-ncg"`` without ``hessp`` or ``hess`` (or with both), a
        trust-region option or ``hessp`` with another method, a product of
        ``hessp`` (or a ``hess``) of the wrong shape.
    MemoryError
        BFGS's ``n x n`` matrix (or the L-BFGS history) does not fit.

    Notes
    -----
    Exceptions raised by ``fun``, ``jac``, ``hess``, ``hessp`` or
    ``callback`` propagate.

    Examples
    --------
    The Rosenbrock function from SciPy's usual start:

    >>> import numpy as np
    >>> from lec7rs.optimize import minimize
    >>> def rosen(x):
    ...     f = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    ...     g = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
    ...                   200 * (x[1] - x[0] ** 2)])
    ...     return f, g
    >>> res = minimize(rosen, np.array([-1.2, 1.0]))
    >>> res.success, res.nit, res.x.round(4)
    (True, 36, array([1., 1.]))
    """
    if unknown:
        name = sorted(unknown)[0]
        raise ValueError(
            f"unknown option {name!r} (options: method, jac, hess, hessp, callback, m, gtol, "
            "ftol, max_iter, max_fun, line_search, max_ls, initial_trust_radius, "
            "max_trust_radius, eta, bounds)"
        )
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    method_name = _method(method)
    if not isinstance(line_search, str) or line_search not in _LINE_SEARCHES:
        raise ValueError(
            f"line_search: unknown line search {line_search!r} "
            "(expected 'strong_wolfe' or 'backtracking')"
        )
    options = {
        "method": method_name,
        "line_search": line_search,
        **_counts_and_tolerances(m, gtol, ftol, max_iter, max_fun, max_ls),
    }
    x0 = _x0(x0)
    box = _bounds(bounds, x0)
    if box is not None and method_name != "L-BFGS":
        raise ValueError(
            f"bounds: method {method_name!r} does not take bounds (use 'L-BFGS' or 'L-BFGS-B')"
        )
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if hess is not None and not callable(hess):
        raise TypeError(f"hess must be callable or None, got {type(hess).__name__}")
    trust = _trust_options(method_name, hessp, initial_trust_radius, max_trust_radius, eta)
    if method_name == "trust-ncg":
        return _trust_ncg(fun, x0, jac, hess, hessp, callback, options, trust)
    if method_name == "Newton" and hess is None:
        raise ValueError("method 'Newton' needs the Hessian: pass hess=callable(x) -> (n, n)")
    if method_name != "Newton" and hess is not None:
        warnings.warn(
            f"method {method_name!r} does not use the Hessian: hess is ignored",
            RuntimeWarning,
            stacklevel=2,
        )

    counts = {"nfev": 0, "nhev": 0, "shifts": 0, "hess_shift": 0.0}
    objective = _objective(fun, jac, x0.dtype, counts)
    cb = None if callback is None else _callback(callback)
    solver = None
    if method_name == "Newton":
        solver = _newton_solver(hess, x0.size, x0.dtype, counts)

    flat = np.ascontiguousarray(x0.reshape(-1))
    x, f, g, nit, n_eval, status, message, hess_out = _core.minimize(
        objective, flat, x0.shape, options, cb, solver, box
    )
    if objective is fun:
        counts["nfev"] = n_eval
    result = OptimizeResult(
        x=x,
        fun=f,
        jac=g,
        nit=nit,
        nfev=counts["nfev"],
        njev=n_eval,
        success=status == 0,
        status=status,
        message=message,
        hess_inv=_hess_inv(hess_out),
    )
    if method_name == "Newton":
        result["nhev"] = counts["nhev"]
        result["hess_shift"] = counts["hess_shift"]
        if counts["shifts"]:
            result["message"] = (
                f"{message} (the Hessian was not positive definite at {counts['shifts']} "
                f"of {counts['nhev']} evaluations: tau * I added, largest tau = "
                f"{counts['hess_shift']:.3g})"
            )
    return result


def _bounds(bounds: Any, x0: np.ndarray) -> tuple | None:
    """``(lower, upper)`` as flat contiguous arrays of x0's dtype, or None."""
    if bounds is None:
        return None
    n = x0.size
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):
        pair: Any = (np.asarray(bounds.lb), np.asarray(bounds.ub))
    else:
        pair = bounds
    if isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(b, np.ndarray) for b in pair):
        sides = []
        for name, side, fill in (("lower", pair[0], -np.inf), ("upper", pair[1], np.inf)):
            if side.dtype == object:
                items = [fill if v is None else v for v in side.reshape(-1)]
                for v in items:
                    if isinstance(v, bool) or not isinstance(v, numbers.Real):
                        raise TypeError(
                            f"bounds: expected real numbers or None in the {name} bounds, got {v!r}"
                        )
                side = np.array(items, dtype=np.float64).reshape(side.shape)
            if side.dtype.kind not in "biuf":
                raise TypeError(
                    f"bounds: expected real numbers or None in the {name} bounds, got an "
                    f"array of dtype {side.dtype}"
                )
            try:
                side = np.broadcast_to(np.asarray(side, dtype=np.float64), x0.shape)
            except ValueError:
                raise ValueError(
                    f"bounds: the {name} bounds of shape {side.shape} do not broadcast to "
                    f"x0's shape {x0.shape}"
                ) from None
            sides.append(side.reshape(-1))
        lower, upper = sides
    else:
        try:
            items = list(pair)
        except TypeError:
            raise TypeError(
                "bounds: expected a sequence of (low, high) pairs or a tuple (lower, upper) "
                f"of arrays, got {type(bounds).__name__}"
            ) from None
        if len(items) != n:
            raise ValueError(
                f"bounds: expected {n} (low, high) pairs (one per element of x0), got {len(items)}"
            )
        lower = np.empty(n)
        upper = np.empty(n)
        for i, item in enumerate(items):
            try:
                low, high = item
            except (TypeError, ValueError):
                raise ValueError(
                    f"bounds[{i}]: expected a (low, high) pair, got {item!r}"
                ) from None
            lower[i] = -np.inf if low is None else _bound(i, low)
            upper[i] = np.inf if high is None else _bound(i, high)
    bad = np.isnan(lower) | np.isnan(upper) | (lower > upper)
    bad |= (lower == np.inf) | (upper == -np.inf)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"bounds[{i}]: expected low <= high, no NaN, low < inf and high > -inf, got "
            f"({lower[i]}, {upper[i]})"
        )
    lower = np.ascontiguousarray(lower, dtype=x0.dtype)
    upper = np.ascontiguousarray(upper, dtype=x0.dtype)
    return lower, upper


def _bound(i: int, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"bounds[{i}]: expected real numbers or None, got {value!r}")
    return float(value)


def minimize_many(
    fun: Callable,
    x0: Any,
    *,
    m: int = 10,
    gtol: float = 1e-5,
    ftol: float = 2.2e-9,
    max_iter: int = 15000,
    max_fun: int = 15000,
    max_ls: int = 20,
    bounds: Any = None,
    **unknown: Any,
) -> OptimizeResult:
    """Minimizes ``k`` independent problems of ``n`` variables at once, the
    rows of ``x0``, with L-BFGS and the strong Wolfe line search, calling a
    vectorized objective once per round for all the rows still running.

    Each row is its own run of :func:`minimize` (``method="L-BFGS"``,
    ``line_search="strong_wolfe"``, the same options): when ``fun``
    computes each row as it would alone, row ``i``'s iterates, ``x``,
    ``fun``, ``nit``, ``nfev``, ``status`` and ``message`` are exactly,
    bit for bit, those of ``minimize`` on ``x0[i]`` alone, whatever the
    other rows do and for any thread count and SIMD level. A round advances
    every running row (with the GIL released, in parallel over the thread
    pool) until it needs an evaluation or finishes, then calls ``fun`` once.

    Parameters
    ----------
    fun : callable
        ``fun(X, active) -> (f, G)``. ``active`` is an int64 array of the
        indices of the rows that need an evaluation, ascending; ``X`` a
        fresh array of shape ``(len(active), n)`` and x0's dtype, row ``j``
        the point to evaluate for row ``active[j]``. Returns a tuple of
        ``f``, the values, of shape ``(len(active),)`` (float64, or any real
        dtype, which is cast to float64), and ``G``, the gradients, an array
        of X's shape and dtype. Row ``i`` is passed to ``fun`` exactly
        ``nfev[i]`` times, and the number of calls is ``max(nfev)``. A
        non-finite value or gradient affects only its row (see Returns).
    x0 : ndarray
        The starting points, shape ``(k, n)`` with ``k >= 1`` and
        ``n >= 1``, float32 or float64 (a nested list is read as float64);
        copied once if not C-contiguous. The result keeps its dtype.
    m : int, default 10
        The number of pairs each row's L-BFGS keeps (L-BFGS-B's
        ``maxcor``); memory ``2 (m + 1) n`` elements per row, all ``k``
        histories allocated before the first call of ``fun``.
    gtol : float, default 1e-5
        A row has converged when its ``max |g_i| <= gtol``.
    ftol : float, default 2.2e-9
        A row has converged when a step gives ``(f_k - f_{k+1}) /
        max(|f_k|, |f_{k+1}|, 1) <= ftol``.
    max_iter, max_fun : int, default 15000
        Limits on each row's iterations and evaluations (status 1; ``x`` is
        then the row's last iterate).
    max_ls : int, default 20
        Evaluations per line search, as in :func:`minimize`.
    bounds : optional
        One box for every row, as :func:`minimize`'s ``bounds`` for one row
        of ``n`` variables: each row is then an L-BFGS-B run (x0's rows
        clipped into the box, convergence on the projected gradient), equal
        to ``minimize(..., bounds=bounds)`` on that row alone.

    Returns
    -------
    OptimizeResult
        One entry per row, row ``i`` at index ``i``:

        - ``x``: ``(k, n)`` array of x0's dtype, the solutions;
        - ``fun``: float64 ``(k,)``, f at ``x``;
        - ``nit``: int64 ``(k,)``, iterations;
        - ``nfev``: int64 ``(k,)``, evaluations of the row (calls of ``fun``
          that had the row in ``active``);
        - ``status``: int64 ``(k,)``, 0 converged, 1 iteration or
          evaluation limit, 2 line search failed or the objective is not
          finite (a non-finite f or gradient at ``x0[i]`` ends row ``i`` at
          once; at a trial step, its line search shrinks the step);
        - ``success``: bool ``(k,)``, ``status == 0``;
        - ``message``: list of ``k`` str.

    Raises
    ------
    TypeError
        ``x0`` of another dtype, a non-callable ``fun``, an option of the
        wrong type, ``fun`` not returning a tuple ``(f, G)``, ``f`` not
        real numbers, ``G`` not an array of x0's dtype.
    ValueError
        ``x0`` not 2-D or empty, an unknown option or one out of range,
        bounds as for :func:`minimize`, ``f`` not of shape
        ``(len(active),)``, ``G`` not of X's shape.
    MemoryError
        The ``k`` L-BFGS histories do not fit.

    Notes
    -----
    Everything is checked before the first call of ``fun``; exceptions
    raised by ``fun`` propagate.
    """
    if unknown:
        name = sorted(unknown)[0]
        raise ValueError(
            f"unknown option {name!r} (options: m, gtol, ftol, max_iter, max_fun, max_ls, bounds)"
        )
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    options = _counts_and_tolerances(m, gtol, ftol, max_iter, max_fun, max_ls)
    x0 = _x0(x0)
    if x0.ndim != 2 or 0 in x0.shape:
        raise ValueError(
            f"x0: expected a 2-D array of shape (k, n) with k >= 1 and n >= 1, got shape {x0.shape}"
        )
    box = _bounds(bounds, np.empty(x0.shape[1], dtype=x0.dtype))
    x, f, nit, nfev, status, message = _core.minimize_many(fun, x0, options, box)
    return OptimizeResult(
        x=x,
        fun=f,
        nit=nit,
        nfev=nfev,
        status=status,
        success=status == 0,
        message=message,
    )


def _method(method: Any) -> str:
    if isinstance(method, str) and method.lower() in _METHODS:
        return _METHODS[method.lower()]
    raise ValueError(
        f"unknown method {method!r} (expected 'L-BFGS', 'BFGS', 'Newton' or 'trust-ncg')"
    )


def _counts_and_tolerances(
    m: Any, gtol: Any, ftol: Any, max_iter: Any, max_fun: Any, max_ls: Any
) -> dict:
    """The checked L-BFGS options shared by ``minimize`` and ``minimize_many``."""
    return {
        "m": _int("m", m, 1),
        "gtol": _real("gtol", gtol),
        "ftol": _real("ftol", ftol),
        "max_iter": _int("max_iter", max_iter, 0),
        "max_fun": _int("max_fun", max_fun, 1),
        "max_ls": _int("max_ls", max_ls, 1),
    }


def _int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def _x0(x0: Any) -> np.ndarray:
    if isinstance(x0, np.ndarray):
        if x0.dtype not in (np.float32, np.float64) or not x0.dtype.isnative:
            raise TypeError(f"x0: expected a float32 or float64 array, got dtype {x0.dtype}")
    else:
        try:
            x0 = np.asarray(x0, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"x0: expected a float32 or float64 array, got {type(x0).__name__}"
            ) from None
    if x0.size == 0:
        raise ValueError("x0 must have at least one element")
    return x0


def _objective(fun: Callable, jac: Any, dtype: np.dtype, counts: dict) -> Callable:
    """``fun`` itself with ``jac=True``, else a wrapper returning ``(f, g)``."""
    if jac is True:
        return fun
    if callable(jac):

        def with_jac(x: np.ndarray) -> tuple:
            counts["nfev"] += 1
            f = fun(x)
            return f, jac(x)

        return with_jac
    if jac is False or jac is None or jac == "2-point":
        rel = math.sqrt(np.finfo(dtype).eps)

        def forward_differences(x: np.ndarray) -> tuple:
            counts["nfev"] += 1 + x.size
            f = _scalar(fun(x))
            g = np.empty(x.shape, dtype=dtype)
            gf = g.reshape(-1)
            for i in range(x.size):
                xi = x.flat[i]
                h = rel * max(1.0, abs(float(xi))) * (1.0 if xi >= 0 else -1.0)
                xp = x.copy()
                xp.flat[i] = xi + dtype.type(h)
                step = float(xp.flat[i]) - float(xi)
                gf[i] = (_scalar(fun(xp)) - f) / step
            return f, g

        return forward_differences
    raise ValueError(f"jac must be True, False, None, '2-point' or a callable, got {jac!r}")


def _scalar(f: Any) -> float:
    try:
        return float(f)
    except (TypeError, ValueError):
        raise TypeError(f"fun must return a real number, got {type(f).__name__}") from None


def _callback(callback: Callable) -> Callable:
    def call(x: np.ndarray, f: float, g: np.ndarray, nit: int, nfev: int) -> bool:
        intermediate = OptimizeResult(x=x, fun=f, jac=g, nit=nit, nfev=nfev)
        try:
            out = callback(intermediate)
        except StopIteration:
            return True
        return isinstance(out, (bool, np.bool_)) and bool(out)

    return call


def _newton_solver(hess: Callable, n: int, dtype: np.dtype, counts: dict) -> Callable:
    def direction(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        counts["nhev"] += 1
        h = hess(x)
        if not isinstance(h, np.ndarray) or h.dtype not in (np.float32, np.float64):
            what = f"dtype {h.dtype}" if isinstance(h, np.ndarray) else type(h).__name__
            raise TypeError(f"hess must return a float32 or float64 array, got {what}")
        if h.shape != (n, n):
            raise ValueError(f"hess must return an array of shape ({n}, {n}), got {h.shape}")
        gf = g.reshape(-1).astype(np.float64)
        if not np.isfinite(h).all():
            # A NaN step: the run stops cleanly (status 2, not a descent direction).
            return np.full(g.shape, np.nan, dtype=dtype)
        # One n x n float64 array for the symmetric part (the factor is the
        # only other one; a shifted copy only when a shift is needed).
        h = np.add(h, h.T, dtype=np.float64)
        h *= 0.5
        factor, tau = _modified_cholesky(h)
        if factor is None:  # no shift helped: stop cleanly, as for a NaN Hessian
            return np.full(g.shape, np.nan, dtype=dtype)
        if tau > 0:
            counts["shifts"] += 1
            counts["hess_shift"] = max(counts["hess_shift"], tau)
        d = _core.cholesky_solve(factor, -gf)
        return d.astype(dtype).reshape(g.shape)

    return direction


def _modified_cholesky(h: np.ndarray) -> tuple:
    """``(L, tau)``: the Cholesky factor ``L L^T = H + tau I`` (None if no
    shift in 200 doublings works) with the
    smallest ``tau`` of Nocedal & Wright's Algorithm 3.3 (Cholesky with added
    multiple of the identity) for which the factorization succeeds. The step
    then costs two triangular solves (``_core.cholesky_solve``), O(n^2)."""
    n = h.shape[0]
    beta = 1e-3 * max(float(np.linalg.norm(h)) / math.sqrt(n), np.finfo(np.float64).tiny)
    min_diag = float(np.min(np.diagonal(h)))
    tau = 0.0 if min_diag > 0 else beta - min_diag
    shifted = None
    for _ in range(200):
        if tau:
            if shifted is None:
                shifted = np.empty_like(h)
            np.copyto(shifted, h)
            shifted.flat[:: n + 1] += tau
        try:
            return np.linalg.cholesky(shifted if tau else h), tau
        except np.linalg.LinAlgError:
            tau = max(2.0 * tau, beta)
    return None, tau


_TRUST_OPTIONS = ("initial_trust_radius", "max_trust_radius", "eta")


def _trust_options(method_name: str, hessp: Any, initial: Any, largest: Any, eta: Any) -> dict:
    """trust-ncg's radius options, checked (SciPy's defaults for None); for
    another method, a ``ValueError`` if any of them or ``hessp`` is given."""
    given = dict(zip(_TRUST_OPTIONS, (initial, largest, eta)))
    if method_name != "trust-ncg":
        if hessp is not None:
            given["hessp"] = hessp
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise ValueError(
                f"option {named[0]!r} is only for method 'trust-ncg', not {method_name!r}"
            )
        return {}
    if hessp is not None and not callable(hessp):
        raise TypeError(f"hessp must be callable or None, got {type(hessp).__name__}")
    largest = 1000.0 if largest is None else _real("max_trust_radius", largest)
    if not largest > 0:
        raise ValueError(f"max_trust_radius must be > 0, got {largest}")
    initial = 1.0 if initial is None else _real("initial_trust_radius", initial)
    if not 0 < initial <= largest:
        raise ValueError(
            f"initial_trust_radius must be in (0, max_trust_radius = {largest}], got {initial}"
        )
    eta = 0.15 if eta is None else _real("eta", eta)
    if not eta < 0.25:
        raise ValueError(f"eta must be in [0, 0.25), got {eta}")
    return {"initial_trust_radius": initial, "max_trust_radius": largest, "eta": eta}


def _trust_ncg(
    fun: Callable,
    x0: np.ndarray,
    jac: Any,
    hess: Callable | None,
    hessp: Callable | None,
    callback: Callable | None,
    options: dict,
    trust: dict,
) -> OptimizeResult:
    """``minimize(method="trust-ncg")`` once its arguments are checked."""
    if hess is None and hessp is None:
        raise ValueError(
            "method 'trust-ncg' needs the Hessian: pass hessp=callable(x, p) -> H @ p "
            "or hess=callable(x) -> (n, n)"
        )
    if hess is not None and hessp is not None:
        raise ValueError("method 'trust-ncg' takes hessp or hess, not both")
    counts = {"nfev": 0, "nhev": 0}
    objective = _objective(fun, jac, x0.dtype, counts)
    cb = None if callback is None else _callback(callback)
    product = hessp if hess is None else _dense_hessp(hess, x0.size, x0.dtype, counts)
    run_options = {
        "gtol": options["gtol"],
        "max_iter": options["max_iter"],
        "max_fun": options["max_fun"],
        **trust,
    }
    flat = np.ascontiguousarray(x0.reshape(-1))
    x, f, g, nit, n_eval, n_prod, status, message = _core.minimize_trust(
        objective, product, flat, x0.shape, run_options, cb
    )
    if objective is fun:
        counts["nfev"] = n_eval
    return OptimizeResult(
        x=x,
        fun=f,
        jac=g,
        nit=nit,
        nfev=counts["nfev"],
        njev=n_eval,
        nhev=n_prod if hess is None else counts["nhev"],
        success=status == 0,
        status=status,
        message=message,
        hess_inv=None,
    )


def _dense_hessp(hess: Callable, n: int, dtype: np.dtype, counts: dict) -> Callable:
    """``hessp(x, p) = hess(x) @ p``, with ``hess`` called once per iterate
    (CG asks for several products at one ``x``, and a rejected step keeps
    it)."""
    cache: dict = {"x": None, "h": None}

    def product(x: np.ndarray, p: np.ndarray) -> np.ndarray:
        key = x.tobytes()
        if cache["x"] != key:
            h = hess(x)
            if not isinstance(h, np.ndarray) or h.dtype not in (np.float32, np.float64):
                what = f"dtype {h.dtype}" if isinstance(h, np.ndarray) else type(h).__name__
                raise TypeError(f"hess must return a float32 or float64 array, got {what}")
            if h.shape != (n, n):
                raise ValueError(f"hess must return an array of shape ({n}, {n}), got {h.shape}")
            counts["nhev"] += 1
            cache["x"], cache["h"] = key, h
        hp = cache["h"] @ p.reshape(-1)
        return hp.astype(dtype, copy=False).reshape(p.shape)

    return product


def _hess_inv(out: Any) -> Any:
    if out is None:
        return None
    if out[0] == "lbfgs":
        _, s, y, order = out
        return LbfgsInvHessProduct._from_core(s, y, order)
    return out[1]
