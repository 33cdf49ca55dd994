"""lec7rs.optimize.minimize_many: every row against minimize on that row
alone (bit for bit), rows that stop at different rounds or fail alone, the
number of evaluations per row, dtypes, limits, thread counts and SIMD
levels, and every kind of bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from lec7rs.optimize import OptimizeResult, minimize, minimize_many

LAM = 1e-2


def problems(k, n=20, samples=30, dtype=np.float64, seed=0):
    """k L2-regularized logistic regressions of n weights, each on its own
    data (features scaled per row, so that rows need different numbers of
    iterations), and their starting points."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.3, 3.0, size=(k, 1, 1))
    a = (rng.standard_normal((k, samples, n)) * scale).astype(dtype)
    w = rng.standard_normal((k, n))
    p = 1 / (1 + np.exp(-np.einsum("ksn,kn->ks", a.astype(np.float64), w)))
    y = np.where(rng.random((k, samples)) < p, 1.0, -1.0).astype(dtype)
    x0 = (0.1 * rng.standard_normal((k, n))).astype(dtype)
    return a, y, x0


class Objective:
    """The vectorized objective ``fun(X, active) -> (f, G)``: each row's f and
    G computed from that row alone (so a row gives the same bits whichever
    rows are evaluated with it). Counts the evaluations of each row; rows in
    ``nan_after`` return NaN from their evaluation ``nan_after[i] + 1`` on."""

    def __init__(self, a, y, nan_after=None):
        self.a, self.y = a, y
        self.nan_after = dict(nan_after or {})
        self.counts = np.zeros(a.shape[0], dtype=np.int64)
        self.calls = 0

    def __call__(self, x, active):
        assert isinstance(active, np.ndarray) and active.dtype == np.int64
        assert x.shape == (len(active), self.a.shape[2]) and x.dtype == self.a.dtype
        assert np.all(np.diff(active) > 0)
        self.calls += 1
        self.counts[active] += 1
        a, y = self.a[active], self.y[active]
        z = y * np.einsum("asn,an->as", a, x)
        f = np.logaddexp(0, -z).mean(axis=1) + 0.5 * LAM * np.einsum("an,an->a", x, x)
        coef = -y / (1 + np.exp(z)) / a.shape[1]
        g = np.einsum("as,asn->an", coef, a) + LAM * x
        for i, after in self.nan_after.items():
            j = np.searchsorted(active, i)
            if j < len(active) and active[j] == i and self.counts[i] > after:
                f[j] = np.nan
                g[j] = np.nan
        return f.astype(np.float64), g.astype(x.dtype)

    def row(self, i):
        """Row ``i`` alone, as ``minimize`` takes it."""

        def fun(x):
            f, g = self(x[None, :], np.array([i], dtype=np.int64))
            return float(f[0]), g[0]

        return fun


def alone(a, y, x0, nan_after=None, **options):
    """``minimize`` on every row by itself."""
    runs = []
    for i in range(x0.shape[0]):
        obj = Objective(a, y, nan_after)
        runs.append(minimize(obj.row(i), x0[i], **options))
    return runs


def assert_rows_equal(got, want):
    assert isinstance(got, OptimizeResult)
    assert got.x.shape == (len(want), want[0].x.shape[0])
    for i, w in enumerate(want):
        assert got.x[i].tobytes() == w.x.tobytes(), i
        assert got.fun[i].tobytes() == np.float64(w.fun).tobytes(), i
        assert (got.nit[i], got.nfev[i], got.status[i]) == (w.nit, w.nfev, w.status), i
        assert got.message[i] == w.message, i
        assert got.success[i] == w.success


def test_thousand_logistic_regressions_equal_minimize_row_by_row():
    a, y, x0 = problems(1000)
    x0_before = x0.copy()
    obj = Objective(a, y)
    got = minimize_many(obj, x0)
    assert np.array_equal(x0, x0_before)
    assert got.x.dtype == np.float64 and got.fun.dtype == np.float64
    for name in ("nit", "nfev", "status"):
        assert got[name].dtype == np.int64 and got[name].shape == (1000,)
    assert got.success.dtype == np.bool_ and got.success.all()
    assert isinstance(got.message, list) and all(isinstance(s, str) for s in got.message)
    assert_rows_equal(got, alone(a, y, x0))
    # Rows stop at different rounds, each evaluated exactly nfev times.
    assert len(set(got.nit.tolist())) > 10
    np.testing.assert_array_equal(obj.counts, got.nfev)
    assert obj.calls == got.nfev.max()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounded_rows_equal_minimize_with_bounds_row_by_row(dtype):
    # Box-bounded logistic regressions (L-BFGS-B per row), bounds active on
    # some coordinates, one fixed variable, x0 partly outside the box.
    a, y, x0 = problems(200, dtype=dtype, seed=3)
    x0 = (x0 * 10).astype(dtype)
    lo = np.full(20, -0.2)
    hi = np.full(20, 0.25)
    lo[::3] = -np.inf
    lo[5] = hi[5] = 0.1
    obj = Objective(a, y)
    got = minimize_many(obj, x0, bounds=(lo, hi))
    want = alone(a, y, x0, bounds=(lo, hi))
    assert_rows_equal(got, want)
    assert np.all(got.x >= lo.astype(dtype)) and np.all(got.x <= hi.astype(dtype))
    assert np.all(got.x[:, 5] == dtype(0.1))
    np.testing.assert_array_equal(obj.counts, got.nfev)
    assert (got.x == hi.astype(dtype)).any()
    if dtype == np.float64:  # float32 objectives stop short of gtol (status 2)
        assert got.success.all()


def test_a_row_with_a_nan_objective_fails_alone():
    a, y, x0 = problems(40, seed=1)
    nan_after = {7: 0, 23: 6}
    obj = Objective(a, y, nan_after)
    got = minimize_many(obj, x0)
    assert_rows_equal(got, alone(a, y, x0, nan_after))
    np.testing.assert_array_equal(obj.counts, got.nfev)
    assert got.status[7] == 2 and got.nfev[7] == 1 and "x0" in got.message[7]
    assert got.status[23] == 2 and got.nfev[23] > 6
    others = np.setdiff1d(np.arange(40), [7, 23])
    assert (got.status[others] == 0).all()
    assert not got.success[7] and not got.success[23]


def test_float32_rows_equal_minimize_row_by_row():
    a, y, x0 = problems(200, dtype=np.float32, seed=2)
    got = minimize_many(Objective(a, y), x0)
    assert got.x.dtype == np.float32 and got.fun.dtype == np.float64
    assert_rows_equal(got, alone(a, y, x0))


@pytest.mark.parametrize(
    "options",
    [{"max_iter": 3}, {"max_iter": 0}, {"max_fun": 4}, {"m": 3, "max_ls": 2, "gtol": 1e-8}],
)
def test_options_and_limits_as_minimize(options):
    a, y, x0 = problems(30, seed=3)
    obj = Objective(a, y)
    got = minimize_many(obj, x0, **options)
    assert_rows_equal(got, alone(a, y, x0, **options))
    np.testing.assert_array_equal(obj.counts, got.nfev)
    if "max_iter" in options:
        assert (got.status == 1).all() and (got.nit == options["max_iter"]).all()
    if "max_fun" in options:
        assert (got.status == 1).all() and (got.nfev == options["max_fun"]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_for_thread_counts_and_simd_levels(dtype):
    a, y, x0 = problems(300, dtype=dtype, seed=4)

    def run():
        r = minimize_many(Objective(a, y), x0, max_iter=25)
        return r.x.tobytes(), r.fun.tobytes(), r.nit.tobytes(), r.nfev.tobytes()

    with threads(1), simd("scalar"):
        want = run()
    for level in LEVELS:
        for n in (1, 2, 3):
            with threads(n), simd(level):
                assert run() == want, (level, n)


def test_strided_and_list_x0():
    a, y, x0 = problems(12, seed=5)
    want = minimize_many(Objective(a, y), x0)
    wide = np.zeros((12, 40))
    wide[:, ::2] = x0
    fortran = np.asfortranarray(x0)
    for start in (wide[:, ::2], fortran, x0.tolist()):
        got = minimize_many(Objective(a, y), start)
        assert got.x.tobytes() == want.x.tobytes()
        assert got.nfev.tolist() == want.nfev.tolist()


def test_converged_at_x0_and_single_row():
    calls = []

    def fun(x, active):
        calls.append(active.copy())
        return np.zeros(len(active)), np.zeros_like(x)

    r = minimize_many(fun, np.ones((3, 2)))
    assert r.status.tolist() == [0, 0, 0] and r.nit.tolist() == [0, 0, 0]
    assert r.nfev.tolist() == [1, 1, 1] and "gtol" in r.message[0]
    assert len(calls) == 1 and calls[0].tolist() == [0, 1, 2]
    a, y, x0 = problems(1, n=5, seed=6)
    assert_rows_equal(minimize_many(Objective(a, y), x0), alone(a, y, x0))


def test_f_of_any_real_dtype_is_read_as_float64():
    def make(cast):
        def fun(x, active):
            return cast(np.sum((x - 1.0) ** 2, axis=1)), 2 * (x - 1.0)

        return fun

    want = minimize_many(make(lambda f: f), np.zeros((4, 3)))
    assert want.success.all()
    for cast in (list, lambda f: f[::-1].copy()[::-1], lambda f: f.astype(">f8")):
        got = minimize_many(make(cast), np.zeros((4, 3)))
        assert got.x.tobytes() == want.x.tobytes()
    ints = minimize_many(lambda x, act: (np.zeros(len(act), np.int32), 0 * x), np.ones((2, 2)))
    assert ints.status.tolist() == [0, 0]


# -- bad input ---------------------------------------------------------------------------


def quad(x, active):
    return np.sum(x * x, axis=1), 2 * x


@pytest.mark.parametrize(
    ("x0", "exc", "match"),
    [
        (np.zeros(5), ValueError, r"x0: expected a 2-D array.*\(5,\)"),
        (np.zeros((2, 3, 4)), ValueError, r"x0: expected a 2-D array.*\(2, 3, 4\)"),
        (np.zeros((0, 3)), ValueError, "x0"),
        (np.zeros((3, 0)), ValueError, "x0"),
        (np.zeros((2, 3), dtype=np.int64), TypeError, "x0.*int64"),
        (np.zeros((2, 3), dtype=np.float16), TypeError, "x0.*float16"),
        ("abc", TypeError, "x0"),
    ],
)
def test_bad_x0(x0, exc, match):
    calls = []
    with pytest.raises(exc, match=match):
        minimize_many(lambda x, a: calls.append(1) or quad(x, a), x0)
    assert calls == []


@pytest.mark.parametrize(
    ("options", "exc", "match"),
    [
        ({"m": 0}, ValueError, "m must be >= 1"),
        ({"m": 2.5}, TypeError, "m must be an int"),
        ({"max_iter": True}, TypeError, "max_iter must be an int"),
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"max_fun": 0}, ValueError, "max_fun"),
        ({"max_ls": 0}, ValueError, "max_ls"),
        ({"gtol": -1.0}, ValueError, "gtol"),
        ({"ftol": float("nan")}, ValueError, "ftol"),
        ({"bounds": [(0, 1)]}, ValueError, "expected 3 .low, high. pairs"),
        ({"bounds": (np.zeros(3), -np.ones(3))}, ValueError, "expected low <= high"),
        ({"method": "BFGS"}, ValueError, "unknown option 'method'"),
    ],
)
def test_bad_options_raise_before_any_call(options, exc, match):
    calls = []
    with pytest.raises(exc, match=match):
        minimize_many(lambda x, a: calls.append(1) or quad(x, a), np.ones((2, 3)), **options)
    assert calls == []


def test_fun_not_callable():
    with pytest.raises(TypeError, match="fun must be callable"):
        minimize_many(None, np.ones((2, 3)))


@pytest.mark.parametrize(
    ("returns", "exc", "match"),
    [
        (lambda x, a: [np.zeros(len(a)), x], TypeError, "fun must return a tuple .*list"),
        (lambda x, a: (np.zeros(len(a)), x, x), TypeError, "fun must return a tuple"),
        (lambda x, a: np.zeros(len(a)), TypeError, "fun must return a tuple"),
        (lambda x, a: (np.zeros(len(a) + 1), x), ValueError, r"f of shape \(5,\).*\(6,\)"),
        (lambda x, a: (np.zeros((len(a), 1)), x), ValueError, r"f of shape \(5,\).*\(5, 1\)"),
        (lambda x, a: (0.0, x), ValueError, r"f of shape \(5,\).*\(\)"),
        (lambda x, a: (np.array(["a"] * len(a)), x), TypeError, "fun must return f as an array"),
        (lambda x, a: (np.zeros(len(a), complex), x), TypeError, "real numbers"),
        (lambda x, a: ([None] * len(a), x), TypeError, "fun must return f"),
        (lambda x, a: (np.zeros(len(a)), x[:, :2]), ValueError, r"G returned by fun.*\(5, 2\)"),
        (lambda x, a: (np.zeros(len(a)), x.T), ValueError, r"X passed to fun has shape \(5, 3\)"),
        (
            lambda x, a: (np.zeros(len(a)), x.astype(np.float32)),
            TypeError,
            "G returned by fun: expected a float64",
        ),
        (lambda x, a: (np.zeros(len(a)), x.tolist()), TypeError, "G returned by fun"),
    ],
)
def test_bad_returns_name_fun_and_the_shape(returns, exc, match):
    with pytest.raises(exc, match=match):
        minimize_many(returns, np.ones((5, 3)))


def test_wrong_shape_for_a_later_round_names_its_active_rows():
    # After the first round only the rows that did not converge at x0 run:
    # f must then have len(active) values.
    def fun(x, active):
        if len(active) == 2:
            return np.zeros(5), 2 * (x - 3.0)
        return np.sum((x - 3.0) ** 2, axis=1), 2 * (x - 3.0)

    x0 = np.full((5, 3), 3.0)
    x0[[1, 4]] = 0.0
    with pytest.raises(ValueError, match=r"f of shape \(2,\).*got shape \(5,\)"):
        minimize_many(fun, x0)


def test_exceptions_raised_by_fun_propagate():
    class Boom(Exception):
        pass

    a, y, x0 = problems(8, seed=7)
    obj = Objective(a, y)

    def fun(x, active):
        if obj.calls == 2:
            raise Boom("third round")
        return obj(x, active)

    with pytest.raises(Boom, match="third round"):
        minimize_many(fun, x0)
    assert obj.calls == 2


def test_histories_that_cannot_fit_are_a_memory_error():
    calls = []
    with pytest.raises(MemoryError, match="minimize_many"):
        minimize_many(lambda x, a: calls.append(1) or quad(x, a), np.ones((4, 8)), m=2**40)
    with pytest.raises(MemoryError, match="minimize_many"):
        minimize_many(lambda x, a: calls.append(1) or quad(x, a), np.ones((1000, 1000)), m=10**6)
    assert calls == []
