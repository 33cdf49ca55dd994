"""lec7rs.optimize.minimize: against SciPy's L-BFGS-B, BFGS and Newton on
problems with known solutions, every failure mode, dtypes, and results
bit-identical across thread counts and SIMD levels."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from lec7rs import _core
from lec7rs.optimize import LbfgsInvHessProduct, OptimizeResult, minimize
from lec7rs.reference import lbfgs_two_loop

so = pytest.importorskip("scipy.optimize")

GTOL = 1e-5
FTOL_DEFAULT = 2.2e-9


# -- problems -------------------------------------------------------------------------


def ext_rosen(x):
    """Separable extended Rosenbrock: sum over pairs of 100 (b - a^2)^2 + (1 - a)^2."""
    a, b = x[0::2], x[1::2]
    t1, t2 = b - a * a, 1 - a
    g = np.empty_like(x)
    g[0::2] = -400 * a * t1 - 2 * t2
    g[1::2] = 200 * t1
    return float(100 * t1 @ t1 + t2 @ t2), g


def chained_rosen(x):
    return so.rosen(x), so.rosen_der(x)


def quadratic(n=100, cond=1e5, seed=0):
    """0.5 (x - x*)'A(x - x*), eigenvalues log-spaced in [1, cond]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = (q * np.logspace(0, np.log10(cond), n)) @ q.T
    a = 0.5 * (a + a.T)
    x_star = rng.standard_normal(n)

    def fun(x):
        r = x - x_star
        g = a @ r
        return float(0.5 * r @ g), g

    return fun, a, x_star


def logistic(n_samples=400, d=20, lam=1e-2, seed=1):
    """Mean logistic loss + lam/2 |w|^2 on generated data, with its Hessian."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_samples, d))
    w_true = rng.standard_normal(d)
    y = np.where(rng.random(n_samples) < 1 / (1 + np.exp(-x @ w_true)), 1.0, -1.0)

    def fun(w):
        z = y * (x @ w)
        f = np.logaddexp(0, -z).mean() + 0.5 * lam * w @ w
        return float(f), x.T @ (-y / (1 + np.exp(z))) / n_samples + lam * w

    def hess(w):
        p = 1 / (1 + np.exp(-(x @ w)))
        return (x.T * (p * (1 - p))) @ x / n_samples + lam * np.eye(d)

    return fun, hess, d


def scipy_lbfgsb(fun, x0, m=10, ftol=0.0):
    return so.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        options=dict(maxcor=m, gtol=GTOL, ftol=ftol, maxiter=15000, maxfun=15000),
    )


def assert_at_least_as_good(ours, theirs):
    """Converged; f and max|g_i| at least as good as SciPy's, with f up to
    the resolution of L-BFGS-B's default stopping rule; at most 1.5x the
    iterations."""
    assert ours.status == 0 and ours.success, ours.message
    assert theirs.status == 0, theirs.message
    assert ours.fun <= theirs.fun + FTOL_DEFAULT * max(1.0, abs(theirs.fun))
    assert np.abs(ours.jac).max() <= max(GTOL, np.abs(theirs.jac).max())
    assert ours.nit <= 1.5 * theirs.nit, (ours.nit, theirs.nit)


# -- against SciPy --------------------------------------------------------------------
# Both runs use ftol=0 so that gtol decides: with the default ftol, both stop
# as soon as one step reduces f by less than 2.2e-9 (relative), and where in
# the last digits two runs of the same algorithm stop is a coin flip.


@pytest.mark.parametrize("n", [2, 100, 10_000, 100_000])
def test_extended_rosenbrock_against_scipy(n):
    x0 = np.tile([-1.2, 1.0], n // 2)
    ours = minimize(ext_rosen, x0, m=10, gtol=GTOL, ftol=0.0)
    assert_at_least_as_good(ours, scipy_lbfgsb(ext_rosen, x0))
    np.testing.assert_allclose(ours.x, 1.0, atol=1e-4)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50, 100, 1000])
def test_chained_rosenbrock_against_scipy(n):
    x0 = np.full(n, -1.2) if n > 2 else np.array([-1.2, 1.0])
    ours = minimize(chained_rosen, x0, m=10, gtol=GTOL, ftol=0.0)
    assert_at_least_as_good(ours, scipy_lbfgsb(chained_rosen, x0))


@pytest.mark.parametrize("m", [5, 10, 20])
def test_ill_conditioned_quadratic_against_scipy(m):
    fun, _, x_star = quadratic()
    x0 = np.zeros(100)
    ours = minimize(fun, x0, m=m, ftol=0.0)
    assert_at_least_as_good(ours, scipy_lbfgsb(fun, x0, m=m))
    # Condition 1e5 and max|g| <= 1e-5: |x - x*| <= 1e-5 / lambda_min.
    assert np.abs(ours.x - x_star).max() < 1e-4


def test_logistic_regression_against_scipy():
    fun, _, d = logistic()
    x0 = np.zeros(d)
    assert_at_least_as_good(minimize(fun, x0, ftol=0.0), scipy_lbfgsb(fun, x0))
    # With the default ftol too: the same iterations as L-BFGS-B.
    ours, theirs = minimize(fun, x0), scipy_lbfgsb(fun, x0, ftol=FTOL_DEFAULT)
    assert ours.status == 0 and ours.nit <= 1.5 * theirs.nit


def test_trajectory_matches_scipy_step_for_step():
    # Same line search (dcsrch, c1 = 1e-3, c2 = 0.9), same first step, same
    # curvature guard: on a small problem the runs agree to rounding.
    x0 = np.array([-1.2, 1.0])
    ours = minimize(chained_rosen, x0)
    theirs = scipy_lbfgsb(chained_rosen, x0, ftol=FTOL_DEFAULT)
    assert (ours.nit, ours.nfev) == (theirs.nit, theirs.nfev)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-7)


# -- BFGS and Newton ----------------------------------------------------------------------


@pytest.mark.parametrize("line_search", ["strong_wolfe", "backtracking"])
@pytest.mark.parametrize("method", ["BFGS", "Newton", "L-BFGS"])
def test_quadratic_reaches_the_known_optimum(method, line_search):
    fun, a, x_star = quadratic(n=60, cond=1e5, seed=3)
    r = minimize(
        fun,
        np.zeros(60),
        method=method,
        hess=(lambda x: a) if method == "Newton" else None,
        ftol=0.0,
        line_search=line_search,
        max_iter=20000,
    )
    assert r.status == 0, r.message
    assert np.abs(r.x - x_star).max() < 1e-4
    assert np.abs(r.jac).max() <= GTOL


@pytest.mark.parametrize("method", ["BFGS", "Newton"])
def test_logistic_regression_reaches_the_optimum(method):
    fun, hess, d = logistic()
    w_star = minimize(fun, np.zeros(d), method="Newton", hess=hess, gtol=1e-12, ftol=0.0).x
    r = minimize(fun, np.zeros(d), method=method, hess=hess if method == "Newton" else None)
    assert r.status == 0, r.message
    # Strongly convex with lam = 1e-2: |w - w*| <= max|g| sqrt(d) / lam.
    np.testing.assert_allclose(r.x, w_star, atol=GTOL * np.sqrt(d) / 1e-2)
    assert np.abs(r.jac).max() <= GTOL


def test_newton_on_a_quadratic_takes_at_most_two_iterations():
    fun, a, x_star = quadratic(n=50, cond=1e5, seed=4)
    r = minimize(fun, np.zeros(50), method="Newton", hess=lambda x: a)
    assert r.status == 0 and r.nit <= 2, (r.nit, r.message)
    assert r.hess_shift == 0.0 and r.nhev == r.nit
    np.testing.assert_allclose(r.x, x_star, atol=1e-8)


def test_newton_shifts_an_indefinite_hessian_and_says_so():
    # Rosenbrock from (-1.2, 1) ... (0.5, ...): indefinite Hessians on the way.
    x0 = np.full(20, 0.5)
    r = minimize(chained_rosen, x0, method="Newton", hess=so.rosen_hess)
    assert r.status == 0, r.message
    assert r.hess_shift > 0
    assert "not positive definite" in r.message and "tau" in r.message
    np.testing.assert_allclose(r.x, 1.0, atol=1e-5)


def test_bfgs_hess_inv_is_the_dense_inverse_hessian():
    fun, a, _ = quadratic(n=8, cond=10, seed=2)
    r = minimize(fun, np.ones(8), method="BFGS", ftol=0.0, gtol=1e-10)
    assert r.hess_inv.shape == (8, 8)
    # On a quadratic BFGS's H approaches A^-1 along the directions explored.
    assert np.abs(r.hess_inv - np.linalg.inv(a)).max() < 0.1


# -- the two-loop recursion and hess_inv ----------------------------------------------


def random_pairs(n, k, dtype, seed=0):
    rng = np.random.default_rng(seed)
    s = [rng.standard_normal(n).astype(dtype) for _ in range(k)]
    # y = B s with B symmetric positive definite: s'y > 0.
    b = rng.uniform(0.5, 5.0, n)
    y = [(b * si).astype(dtype) for si in s]
    return s, y, rng.standard_normal(n).astype(dtype)


@pytest.mark.parametrize("n", [1, 7, 33, 1000, 3 * 16384 + 17])
@pytest.mark.parametrize("k", [0, 1, 2, 5, 10])
def test_two_loop_matches_the_numpy_reference(n, k):
    if n > 1000 and k > 5:
        k = 5
    s, y, v = random_pairs(n, k, np.float64)
    want = lbfgs_two_loop(s, y, v)
    got = _core.lbfgs_two_loop(s, y, v)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    neg = _core.lbfgs_two_loop(s, y, v, negate=True)
    assert neg.tobytes() == (-got).tobytes()
    s32, y32, v32 = (
        [a.astype(np.float32) for a in s],
        [a.astype(np.float32) for a in y],
        v.astype(np.float32),
    )
    got32 = _core.lbfgs_two_loop(s32, y32, v32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, lbfgs_two_loop(s32, y32, v32), rtol=2e-4, atol=2e-4)


def test_two_loop_is_bit_identical_across_levels_and_threads():
    s, y, v = random_pairs(5 * 16384 + 3, 4, np.float64)
    with threads(1), simd("scalar"):
        want = _core.lbfgs_two_loop(s, y, v).tobytes()
    for level in LEVELS:
        for n in (1, 2, 3):
            with threads(n), simd(level):
                assert _core.lbfgs_two_loop(s, y, v).tobytes() == want, (level, n)


# -- the search direction of minimize: the compact representation -----------------------


def lbfgs_run_pairs(n=60, cond=1e4, iters=30):
    """The pairs of an L-BFGS run on a quadratic of condition ``cond``
    (consecutive steps nearly parallel: an ill-conditioned ``R = triu(S'Y)``)."""
    fun, _, _ = quadratic(n=n, cond=cond, seed=7)
    x0 = np.zeros(n)
    xs, gs = [x0], [fun(x0)[1]]

    def keep(r):
        xs.append(r.x.copy())
        gs.append(r.jac.copy())

    minimize(fun, x0, m=5, max_iter=iters, gtol=0.0, ftol=0.0, callback=keep)
    s = [b - a for a, b in zip(xs, xs[1:])]
    y = [b - a for a, b in zip(gs, gs[1:])]
    return s, y, gs[-1]


def ill_conditioned_pairs(n, k, cond=1e4, seed=3):
    """y = B s, B diagonal with eigenvalues log-spaced in [1, cond]."""
    rng = np.random.default_rng(seed)
    b = np.logspace(0, np.log10(cond), n)
    s = [rng.standard_normal(n) for _ in range(k)]
    return s, [b * si for si in s], rng.standard_normal(n)


def with_rejected(s, y, at):
    """The pairs with one more, at ``at``, that fails the curvature guard."""
    s, y = list(s), list(y)
    s.insert(at, s[at].copy())
    y.insert(at, -y[at])
    return s, y


def direction_reference(s, y, g, m):
    """-H g by the NumPy two-loop recursion over the last m pairs with s'y > 0."""
    kept = [(si, yi) for si, yi in zip(s, y) if float(si @ yi) > 0][-m:]
    return -lbfgs_two_loop([p[0] for p in kept], [p[1] for p in kept], g)


HISTORIES = {
    "well-conditioned": lambda: random_pairs(1000, 14, np.float64, seed=2),
    "diagonal, cond 1e4": lambda: ill_conditioned_pairs(1000, 14),
    "an L-BFGS run, cond 1e4": lambda: lbfgs_run_pairs(),
    "across chunks": lambda: random_pairs(3 * 16384 + 17, 9, np.float64, seed=4),
}


@pytest.mark.parametrize("history", list(HISTORIES))
@pytest.mark.parametrize("m", [1, 3, 5, 10, 20])
def test_direction_matches_the_numpy_two_loop(history, m):
    # The ring wraps (more pairs than m, except m = 20) and one pair fails
    # the curvature guard; the direction is taken after every pair, as in
    # minimize, so each new pair's column of R and Y'Y is filled in turn.
    s, y, g = HISTORIES[history]()
    s, y = with_rejected(s, y, at=len(s) // 2)
    want = direction_reference(s, y, g, m)
    got = _core.lbfgs_direction(s, y, g, m=m)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())
    s32, y32, g32 = (
        [a.astype(np.float32) for a in s],
        [a.astype(np.float32) for a in y],
        g.astype(np.float32),
    )
    got32 = _core.lbfgs_direction(s32, y32, g32, m=m)
    assert got32.dtype == np.float32
    scale = np.abs(want).max()
    assert np.abs(got32 - want).max() <= 1e-4 * scale


def test_direction_without_pairs_is_steepest_descent():
    g = np.random.default_rng(0).standard_normal(100)
    assert _core.lbfgs_direction([], [], g, m=3).tobytes() == (-g).tobytes()
    # Only rejected pairs: the same.
    assert _core.lbfgs_direction([g], [-g], g, m=3).tobytes() == (-g).tobytes()
    for m in (0, -1):
        with pytest.raises(ValueError, match="m"):
            _core.lbfgs_direction([], [], g, m=m)
    with pytest.raises(ValueError):
        _core.lbfgs_direction([g[:5]], [g], g, m=3)


def test_direction_is_bit_identical_across_levels_and_threads():
    s, y, g = random_pairs(5 * 16384 + 3, 9, np.float64, seed=5)
    s, y = with_rejected(s, y, at=4)
    for dtype in (np.float64, np.float32):
        args = [a.astype(dtype) for a in s], [a.astype(dtype) for a in y], g.astype(dtype)
        with threads(1), simd("scalar"):
            want = _core.lbfgs_direction(*args, m=4).tobytes()
        for level in LEVELS:
            for n in (1, 2, 3):
                with threads(n), simd(level):
                    assert _core.lbfgs_direction(*args, m=4).tobytes() == want, (level, n)


def test_hess_inv_uses_the_iterations_gamma():
    fun, _a, _ = quadratic(n=30, cond=100, seed=6)
    r = minimize(fun, np.ones(30), m=5, max_iter=8)
    h = r.hess_inv
    assert isinstance(h, LbfgsInvHessProduct) and h.shape == (30, 30)
    assert 1 <= h.n_pairs <= 5
    v = np.random.default_rng(0).standard_normal(30)
    want = lbfgs_two_loop(h._s, h._y, v)  # gamma = s'y / y'y of the newest pair
    np.testing.assert_allclose(h.matvec(v), want, rtol=1e-12)
    np.testing.assert_allclose(h.dot(v), want, rtol=1e-12)
    np.testing.assert_allclose(h @ v[:, None], want[:, None], rtol=1e-12)
    dense = h.todense()
    np.testing.assert_allclose(dense @ v, want, rtol=1e-10)
    np.testing.assert_allclose(dense, dense.T, atol=1e-10 * np.abs(dense).max())
    assert np.linalg.eigvalsh(dense).min() > 0
    # The next direction of the run would be -H g at the final iterate.
    np.testing.assert_allclose(h.matvec(r.jac), lbfgs_two_loop(h._s, h._y, r.jac), rtol=1e-12)


# -- results, dtypes, shapes ------------------------------------------------------------


def test_result_is_a_dict_with_attributes():
    r = minimize(ext_rosen, np.array([-1.2, 1.0]))
    assert isinstance(r, OptimizeResult) and isinstance(r, dict)
    for key in (
        "x",
        "fun",
        "jac",
        "nit",
        "nfev",
        "njev",
        "success",
        "status",
        "message",
        "hess_inv",
    ):
        assert key in r and getattr(r, key) is r[key]
    assert r.nfev == r.njev >= r.nit
    assert "x:" in repr(r) and "message" in dir(r)
    with pytest.raises(AttributeError):
        _ = r.nope


@pytest.mark.parametrize("method", ["L-BFGS", "BFGS"])
def test_float32_x0_stays_float32(method):
    def fun32(x):
        f, g = ext_rosen(x.astype(np.float64))
        assert x.dtype == np.float32
        return f, g.astype(np.float32)

    x0 = np.tile(np.array([-1.2, 1.0], np.float32), 50)
    r = minimize(fun32, x0, method=method, gtol=1e-3)
    assert r.x.dtype == np.float32 and r.jac.dtype == np.float32
    assert r.status == 0, r.message
    np.testing.assert_allclose(r.x, 1.0, atol=1e-2)
    if method == "L-BFGS":
        assert r.hess_inv.dtype == np.float32


def test_x0_shape_is_kept_and_passed_to_fun():
    target = np.arange(6.0).reshape(2, 3)

    def fun(x):
        assert x.shape == (2, 3)
        return float(((x - target) ** 2).sum()), 2 * (x - target)

    r = minimize(fun, np.zeros((2, 3)))
    assert r.x.shape == r.jac.shape == (2, 3)
    np.testing.assert_allclose(r.x, target, atol=1e-6)


def test_x0_is_not_modified_and_fun_gets_fresh_arrays():
    x0 = np.array([-1.2, 1.0])
    seen = []

    def fun(x):
        seen.append(x)
        return ext_rosen(x)

    r = minimize(fun, x0)
    assert x0.tolist() == [-1.2, 1.0]
    assert len({id(x) for x in seen}) == len(seen) and seen[0].tolist() == [-1.2, 1.0]
    assert not np.shares_memory(r.x, seen[-1])


@pytest.mark.parametrize("jac", [False, None, "2-point"])
def test_finite_differences_when_jac_is_false(jac):
    r = minimize(lambda x: ext_rosen(x)[0], np.array([-1.2, 1.0, -1.2, 1.0]), jac=jac, gtol=1e-4)
    assert r.status == 0, r.message
    np.testing.assert_allclose(r.x, 1.0, atol=1e-3)
    assert r.nfev == r.njev * 5  # one value and 4 differences per gradient


def test_jac_callable():
    r = minimize(so.rosen, np.full(5, -1.2), jac=so.rosen_der)
    assert r.status == 0 and r.nfev == r.njev
    np.testing.assert_allclose(r.x, 1.0, atol=1e-4)


# -- failure modes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_g", "exc", "match"),
    [
        (lambda g: g[:-1], ValueError, r"x0 has shape \(4,\) but the gradient .* \(3,\)"),
        (lambda g: g.reshape(2, 2), ValueError, r"shape \(2, 2\)"),
        (lambda g: g.astype(np.float32), TypeError, r"gradient returned by fun.*float64.*float32"),
        (lambda g: g.astype(np.int64), TypeError, r"gradient returned by fun.*int64"),
        (lambda g: list(g), TypeError, r"gradient returned by fun.*list"),
    ],
)
def test_wrong_gradient_is_a_clear_error(bad_g, exc, match):
    def fun(x):
        f, g = ext_rosen(x)
        return f, bad_g(g)

    with pytest.raises(exc, match=match):
        minimize(fun, np.array([-1.2, 1.0, -1.2, 1.0]))


def test_fun_must_return_a_pair():
    with pytest.raises(TypeError, match=r"pair \(f, g\)"):
        minimize(lambda x: 1.0, np.ones(2))
    with pytest.raises(TypeError, match="real number"):
        minimize(lambda x: ("a", x), np.ones(2))


def test_exceptions_of_fun_propagate():
    def fun(x):
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        minimize(fun, np.ones(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_not_finite_at_x0_stops_cleanly(bad):
    r = minimize(lambda x: (bad, x.copy()), np.ones(3))
    assert r.status == 2 and not r.success and r.nit == 0 and r.nfev == 1
    assert "not finite at x0" in r.message
    r = minimize(lambda x: (1.0, np.full(3, bad)), np.ones(3))
    assert r.status == 2 and "not finite" in r.message


def test_not_finite_everywhere_but_x0_stops_cleanly():
    def fun(x):
        if np.array_equal(x, np.ones(3)):
            return 3.0, np.ones(3)
        return np.nan, np.full(3, np.nan)

    r = minimize(fun, np.ones(3))
    assert r.status == 2 and "not finite" in r.message
    np.testing.assert_array_equal(r.x, np.ones(3))
    assert r.fun == 3.0


def test_not_finite_beyond_a_boundary_shrinks_the_step():
    # f = -log(1 - |x|^2) is +inf outside the unit ball; L-BFGS steps out.
    def fun(x):
        r2 = float(x @ x)
        if r2 >= 1:
            return np.inf, np.full_like(x, np.inf)
        return -np.log1p(-r2) + float((x - 0.5) @ (x - 0.5)), 2 * x / (1 - r2) + 2 * (x - 0.5)

    r = minimize(fun, np.full(4, 0.1))
    assert r.status == 0, r.message
    assert float(r.x @ r.x) < 1


@pytest.mark.parametrize("line_search", ["strong_wolfe", "backtracking"])
@pytest.mark.parametrize("method", ["L-BFGS", "BFGS"])
def test_gradient_with_the_wrong_sign_fails_the_line_search(method, line_search):
    def fun(x):
        f, g = ext_rosen(x)
        return f, -g

    r = minimize(fun, np.array([-1.2, 1.0]), method=method, line_search=line_search)
    assert r.status == 2 and not r.success
    assert r.message.startswith("line search failed")
    # x is the last accepted iterate: f never went up.
    assert r.fun <= ext_rosen(np.array([-1.2, 1.0]))[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(method="CG"), "unknown method 'CG'"),
        (dict(method="CG"), "unknown method"),
        (dict(line_search="wolfe"), "unknown line search 'wolfe'"),
        (dict(tol=1e-3), "unknown option 'tol'"),
        (dict(m=0), "m must be >= 1"),
        (dict(gtol=-1.0), "gtol must be a finite number >= 0"),
        (dict(ftol=np.nan), "ftol must be"),
        (dict(max_fun=0), "max_fun must be >= 1"),
        (dict(max_ls=0), "max_ls must be >= 1"),
        (dict(max_iter=-1), "max_iter must be >= 0"),
        (dict(jac="3-point"), "jac must be"),
        (dict(method="Newton"), "needs the Hessian"),
    ],
)
def test_unknown_method_or_option_is_a_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        minimize(ext_rosen, np.ones(2), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(x0=np.ones(2, np.int64)), "x0: expected a float32 or float64 array"),
        (dict(x0=np.ones(2, np.float16)), "x0.*float16"),
        (dict(m=2.0), "m must be an int"),
        (dict(callback=3), "callback must be callable"),
        (dict(hess="exact"), "hess must be callable"),
    ],
)
def test_wrong_types_are_type_errors(kwargs, match):
    kwargs = {"x0": np.ones(2), **kwargs}
    x0 = kwargs.pop("x0")
    with pytest.raises(TypeError, match=match):
        minimize(ext_rosen, x0, **kwargs)


def test_hess_is_ignored_with_a_warning_by_quasi_newton_methods():
    with pytest.warns(RuntimeWarning, match="does not use the Hessian"):
        r = minimize(ext_rosen, np.array([-1.2, 1.0]), hess=lambda x: np.eye(2))
    assert r.status == 0


def test_wrong_hessian_is_a_clear_error():
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        minimize(ext_rosen, np.ones(2) * 0.5, method="Newton", hess=lambda x: np.eye(3))
    with pytest.raises(TypeError, match="hess must return"):
        minimize(ext_rosen, np.ones(2) * 0.5, method="Newton", hess=lambda x: [[1, 0], [0, 1]])


def test_newton_with_a_nan_hessian_stops_cleanly():
    r = minimize(
        ext_rosen, np.array([-1.2, 1.0]), method="Newton", hess=lambda x: np.full((2, 2), np.nan)
    )
    assert r.status == 2 and "not a descent direction" in r.message


@pytest.mark.parametrize("how", ["true", "stopiteration"])
def test_callback_stops_the_run(how):
    seen = []

    def callback(res):
        assert isinstance(res, OptimizeResult)
        seen.append((res.nit, res.fun, res.x.copy()))
        if res.nit == 3:
            if how == "true":
                return True
            raise StopIteration
        return None

    r = minimize(ext_rosen, np.array([-1.2, 1.0]), callback=callback)
    assert r.status == 3 and not r.success and r.nit == 3
    assert "callback" in r.message
    assert [s[0] for s in seen] == [1, 2, 3]
    assert seen[-1][1] == r.fun and np.array_equal(seen[-1][2], r.x)


def test_callback_truthy_non_bool_does_not_stop():
    r = minimize(ext_rosen, np.array([-1.2, 1.0]), callback=lambda res: 1)
    assert r.status == 0


def test_max_iter_and_max_fun_reached():
    r = minimize(ext_rosen, np.array([-1.2, 1.0]), max_iter=5)
    assert r.status == 1 and r.nit == 5 and "max_iter" in r.message
    for max_fun in (1, 2, 7):
        r = minimize(ext_rosen, np.array([-1.2, 1.0]), max_fun=max_fun)
        assert r.status == 1 and r.nfev == max_fun and "max_fun" in r.message
    r = minimize(ext_rosen, np.array([-1.2, 1.0]), max_iter=0)
    assert r.status == 1 and r.nit == 0 and r.nfev == 1


def test_converged_at_x0():
    r = minimize(ext_rosen, np.ones(4))
    assert r.status == 0 and r.nit == 0 and r.nfev == 1 and "gtol" in r.message


def test_bfgs_too_large_is_a_memory_error():
    # n = 2^20: the n x n matrix would need 8 TiB, refused up front.
    with pytest.raises(MemoryError, match="BFGS inverse Hessian"):
        minimize(ext_rosen, np.zeros(2**20), method="BFGS")


# -- determinism ---------------------------------------------------------------------------


def trajectory(method, dtype, n):
    x0 = np.tile(np.array([-1.2, 1.0], dtype), n // 2)

    def fun(x):
        f, g = ext_rosen(x.astype(np.float64))
        return f, g.astype(dtype)

    r = minimize(fun, x0, method=method, max_iter=15, gtol=0.0)
    return r.x.tobytes(), r.jac.tobytes(), r.fun, r.nit, r.nfev


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("method", "n"), [("L-BFGS", 3 * 16384 + 18), ("BFGS", 300)])
def test_bit_identical_for_thread_counts_and_simd_levels(method, n, dtype):
    with threads(1), simd("scalar"):
        want = trajectory(method, dtype, n)
    for level in LEVELS:
        for k in (1, 2):
            with threads(k), simd(level):
                assert trajectory(method, dtype, n) == want, (level, k)
