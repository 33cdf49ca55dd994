"""Fuzzing every public array function with hypothesis.

Inputs: random shapes (empty, small, and past the inline limit), dtypes
(float16, ints, complex, object, bool besides float32/64), layouts (C,
Fortran, strided, negative strides, zero-stride broadcast views, read-only),
values (NaN, inf, subnormals, huge) and hyperparameters at and beyond their
edges. Property: the call matches the NumPy reference, or raises TypeError
or ValueError having changed nothing (arrays, optimizer state, generator
stream); the process never crashes.

``LEC7RS_FUZZ_EXAMPLES`` scales the number of cases per function (default
150); the count actually run per function is printed at the end of the
session (see ``conftest.py``).
"""

from __future__ import annotations

import inspect
import os
from collections import Counter

import lec7rs
import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import assert_unchanged, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lec7rs import averaging, checkpoint, optim, optimize, regularization
from lec7rs import reference as ref
from lec7rs.optim import lr_scheduler
from lec7rs.reference import random as ref_random

# The NumPy references warn about the NaN and inf they are fed on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

#: Cases run per function, reported by conftest's terminal summary.
FUZZ_COUNTS: Counter = Counter()
EXAMPLES = int(os.environ.get("LEC7RS_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ERRORS = (TypeError, ValueError)

FLOATS = [np.float32, np.float64]
OTHER_DTYPES = [
    np.float16,
    np.int8,
    np.int32,
    np.int64,
    np.uint8,
    np.bool_,
    np.complex64,
    np.complex128,
    object,
]
LAYOUTS = ["c"] * 6 + ["fortran", "strided", "negative", "broadcast", "readonly"]


def counted(name):
    FUZZ_COUNTS[name] += 1


def edge_floats(dtype):
    """Finite and non-finite values of ``dtype``, subnormals and extremes."""
    info = np.finfo(dtype)
    width = 32 if dtype == np.float32 else 64
    return st.one_of(
        st.floats(-10, 10, width=width),
        st.sampled_from(
            [
                0.0,
                -0.0,
                np.nan,
                np.inf,
                -np.inf,
                float(info.max),
                -float(info.max),
                float(info.tiny) / 4,
                float(info.smallest_subnormal),
            ]
        ),
    )


@st.composite
def shapes(draw, min_dims=0, max_dims=3, big=True):
    if big and draw(st.integers(0, 9)) == 0:
        return (draw(st.integers(33_000, 70_000)),)  # past the inline limit: the pool runs
    return draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=7))


def layout(draw, a):
    """``a``'s values in a random memory layout (same logical contents)."""
    kind = draw(st.sampled_from(LAYOUTS))
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided" and a.ndim:
        b = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
        b[..., ::2] = a
        return b[..., ::2]
    if kind == "negative" and a.ndim:
        return np.flip(np.flip(a, 0).copy(), 0)
    if kind == "broadcast" and a.size:
        return np.broadcast_to(a.reshape(-1)[:1].reshape((1,) * a.ndim), a.shape)
    if kind == "readonly":
        a = a.copy()
        a.flags.writeable = False
    return a


@st.composite
def arrays(draw, shape=None, dtype=None, any_dtype=True, any_layout=True):
    """An array of a float dtype (mostly) or any other dtype, any layout."""
    if dtype is None:
        if any_dtype and draw(st.integers(0, 4)) == 0:
            dtype = draw(st.sampled_from(OTHER_DTYPES))
        else:
            dtype = draw(st.sampled_from(FLOATS))
    if shape is None:
        shape = draw(shapes())
    n = int(np.prod(shape))
    if dtype in FLOATS:
        if n > 1000:  # big arrays: random data plus a few edge values
            a = np.random.default_rng(draw(st.integers(0, 2**32))).standard_normal(n)
            a = a.astype(dtype)
            for _ in range(3):
                a[draw(st.integers(0, n - 1))] = draw(edge_floats(dtype))
            a = a.reshape(shape)
        else:
            a = draw(hnp.arrays(dtype, shape, elements=edge_floats(dtype)))
    elif dtype is object:
        a = np.empty(shape, object)
        a[...] = 1.5
    else:
        a = np.ones(shape, dtype)
    return layout(draw, a) if any_layout else a


def same_shape_maybe(draw, shape):
    """Usually ``shape``; sometimes a different one."""
    if draw(st.integers(0, 5)) == 0:
        return draw(shapes(big=False))
    return shape


def probability():
    return st.one_of(
        st.floats(0, 1),
        st.sampled_from([0.0, 1.0, -0.1, 1.1, np.nan, np.inf, -1e-300, 0.5]),
        st.sampled_from(["0.5", None, [0.5]]),
    )


def is_float_array(a):
    return isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) and a.dtype.isnative


def valid_out(out, x):
    return (
        is_float_array(out)
        and out.dtype == x.dtype
        and out.shape == x.shape
        and out.flags.c_contiguous
        and out.flags.writeable
    )


def copies(*xs):
    return [x.copy() if isinstance(x, np.ndarray) else x for x in xs]


def unchanged(a, b):
    """``a`` still holds what its copy ``b`` held (any dtype, bit for bit)."""
    if a is None:
        return
    assert a.dtype == b.dtype and a.shape == b.shape
    if a.dtype == object:
        assert a.tolist() == b.tolist()
    else:
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def assert_same(a, b):
    """Equal values, dtype and shape (NaN == NaN whatever its sign and
    payload, and the sign of zeros)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    numbers = ~np.isnan(a)
    assert np.array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))


# -- optimizers ----------------------------------------------------------------


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
@FUZZ
@given(data=st.data())
def test_fuzz_optimizer_step(cls, rule, kw, data):
    counted(f"optim.{cls.__name__}.step")
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(shapes())
    p = data.draw(arrays(shape=shape, dtype=dtype, any_layout=False))
    opt = cls([p], **kw)
    q, state = p.copy(), {}
    for _ in range(data.draw(st.integers(0, 2))):  # some history first
        g = data.draw(arrays(shape=shape, dtype=dtype, any_layout=False))
        opt.step([g])
        with np.errstate(all="ignore"):
            q, state = rule(q, g, state, **kw)
    grad = data.draw(arrays(shape=same_shape_maybe(data.draw, shape)))
    before = snapshot(opt)
    try:
        opt.step([grad])
    except ERRORS:
        assert_unchanged(opt, before)
        return
    assert grad.dtype == dtype and grad.shape == shape
    counted(f"optim.{cls.__name__}.step (valid)")
    with np.errstate(all="ignore"):
        q, state = rule(q, np.asarray(grad), state, **kw)
    assert_same(p, q)


def _hyper_names(cls) -> list:
    """The constructor's hyperparameters of ``cls`` (every rule of the
    cases table): all but the flags, fuzzed one at a time."""
    sig = inspect.signature(cls.__init__)
    return [
        name
        for name, p in sig.parameters.items()
        if p.kind is p.POSITIONAL_OR_KEYWORD
        and name not in ("self", "params")
        and not isinstance(p.default, bool)
    ]


OPT_HYPER = {cls: _hyper_names(cls) for cls, _, _ in CASES}


@pytest.mark.parametrize("cls", list(OPT_HYPER), ids=lambda c: c.__name__)
@FUZZ
@given(data=st.data())
def test_fuzz_optimizer_hyperparameters(cls, data):
    counted(f"optim.{cls.__name__}(hyperparameters)")
    name = data.draw(st.sampled_from(OPT_HYPER[cls]))
    value = data.draw(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0, 1, -1, 1e300, True, "0.1", None]),
            st.tuples(st.floats(-1, 2), st.floats(-1, 2)),
        )
    )
    p = np.zeros(5, np.float32)
    try:
        opt = cls([p], **{name: value})
    except ERRORS:
        return
    opt.step([np.ones(5, np.float32)])  # an accepted value must work
    assert p.dtype == np.float32


@FUZZ
@given(data=st.data())
def test_fuzz_optimizer_params(data):
    counted("optim.Adam(params)")
    params = data.draw(st.lists(arrays(), min_size=0, max_size=3))
    try:
        opt = optim.Adam(params)
    except ERRORS:
        return
    for p in params:  # accepted params are writable float arrays of one dtype
        low = p.dtype == np.float16  # 16-bit params: the float32 step, rounded
        assert (is_float_array(p) or low) and p.flags.c_contiguous and p.flags.writeable
        assert p.dtype == params[0].dtype
    opt.step([np.ones_like(p) for p in params])


# -- the generator and regularization -------------------------------------------


@FUZZ
@given(
    seed=st.one_of(st.integers(-5, 2**70), st.floats(), st.sampled_from(["1", None, True])),
    shape=st.one_of(shapes(big=False), st.integers(-3, 5), st.sampled_from([(2, -1), "3"])),
    dtype=st.sampled_from([np.float32, np.float64, np.float16, np.int32, "float64", None]),
)
def test_fuzz_generator(seed, shape, dtype):
    counted("Generator / Generator.random")
    try:
        rng = lec7rs.Generator(seed)
    except ERRORS:
        return
    assert isinstance(seed, int) and 0 <= seed < 2**64
    before = rng.state_dict()
    reference = ref_random.Generator.from_state_dict(before)
    try:
        u = rng.random(shape) if dtype is None else rng.random(shape, dtype)
    except ERRORS:
        assert rng.state_dict() == before
        return
    counted("Generator / Generator.random (valid)")
    want = reference.random(shape) if dtype is None else reference.random(shape, dtype)
    assert_same(u, want)
    assert ((u >= 0) & (u < 1)).all()
    assert rng.state_dict() == reference.state_dict()


@FUZZ
@given(data=st.data())
def test_fuzz_generator_load_state_dict(data):
    counted("Generator.load_state_dict")
    rng = lec7rs.Generator(7)
    good = rng.state_dict()
    d = dict(good)
    key = data.draw(st.sampled_from([*good, "extra"]))
    d[key] = data.draw(
        st.one_of(
            st.integers(-2, 2**130),
            st.text(max_size=3),
            st.none(),
            st.lists(st.integers(-1, 2**33), max_size=3),
        )
    )
    try:
        rng.load_state_dict(d)
    except ERRORS:
        assert rng.state_dict() == good
        return
    assert rng.state_dict() == {k: d[k] for k in good}


def call_regularization(fn, rng, *args, **kw):
    """Runs ``fn``; on error checks that the stream did not move."""
    before = rng.state_dict()
    try:
        return fn(*args, rng=rng, **kw)
    except ERRORS:
        assert rng.state_dict() == before
        raise


@FUZZ
@given(data=st.data())
def test_fuzz_dropout(data):
    counted("regularization.dropout")
    x = data.draw(arrays())
    p = data.draw(probability())
    training = data.draw(st.booleans())
    inverted = data.draw(st.booleans())
    out = None
    if data.draw(st.booleans()) and isinstance(x, np.ndarray):
        out = data.draw(arrays(shape=same_shape_maybe(data.draw, x.shape)))
    rng = lec7rs.Generator(data.draw(st.integers(0, 2**64 - 1)))
    reference = ref_random.Generator.from_state_dict(rng.state_dict())
    x_before, out_before = copies(x, out)
    try:
        y, mask = call_regularization(
            regularization.dropout, rng, x, p, training=training, inverted=inverted, out=out
        )
    except ERRORS:
        unchanged(x, x_before)
        unchanged(out, out_before)
        return
    assert is_float_array(x) and isinstance(p, float) and 0 <= p <= 1
    counted("regularization.dropout (valid)")
    assert out is None or valid_out(out, x)
    with np.errstate(all="ignore"):
        want_y, want_mask = ref.dropout(
            np.asarray(x), p, rng=reference, training=training, inverted=inverted
        )
    assert_same(y, want_y)
    if training:
        np.testing.assert_array_equal(mask, want_mask)
    else:
        assert mask is None
    if out is not None:
        assert y is out
    assert rng.state_dict() == reference.state_dict()


@FUZZ
@given(data=st.data())
def test_fuzz_dropout_backward(data):
    counted("regularization.dropout_backward / dropconnect_backward")
    dout = data.draw(arrays())
    shape = dout.shape if isinstance(dout, np.ndarray) else (3,)
    mask = data.draw(
        arrays(
            shape=same_shape_maybe(data.draw, shape),
            dtype=data.draw(st.sampled_from([np.bool_, np.bool_, np.uint8, np.float32])),
        )
    )
    p = data.draw(probability())
    inverted = data.draw(st.booleans())
    fn = data.draw(
        st.sampled_from([regularization.dropout_backward, regularization.dropconnect_backward])
    )
    dout_before, mask_before = copies(dout, mask)
    try:
        dx = fn(dout, mask, p, inverted=inverted)
    except ERRORS:
        unchanged(dout, dout_before)
        unchanged(mask, mask_before)
        return
    assert is_float_array(dout) and mask.shape == dout.shape and 0 <= p <= 1
    counted("regularization.dropout_backward / dropconnect_backward (valid)")
    with np.errstate(all="ignore"):
        want = ref.dropout_backward(np.asarray(dout), np.asarray(mask), p, inverted=inverted)
    assert_same(dx, want)


@FUZZ
@given(data=st.data())
def test_fuzz_dropconnect(data):
    counted("regularization.dropconnect")
    w = data.draw(arrays())
    p = data.draw(probability())
    inverted = data.draw(st.booleans())
    rng = lec7rs.Generator(data.draw(st.integers(0, 2**64 - 1)))
    reference = ref_random.Generator.from_state_dict(rng.state_dict())
    w_before = w.copy()
    try:
        y, mask = call_regularization(regularization.dropconnect, rng, w, p, inverted=inverted)
    except ERRORS:
        unchanged(w, w_before)
        return
    counted("regularization.dropconnect (valid)")
    with np.errstate(all="ignore"):
        want_y, want_mask = ref.dropconnect(np.asarray(w), p, rng=reference, inverted=inverted)
    assert_same(y, want_y)
    np.testing.assert_array_equal(mask, want_mask)


@FUZZ
@given(data=st.data())
def test_fuzz_stochastic_depth(data):
    counted("regularization.stochastic_depth")
    x = data.draw(arrays())
    p = data.draw(probability())
    mode = data.draw(st.sampled_from(["row", "batch", "row", "ROW", None]))
    training = data.draw(st.booleans())
    rng = lec7rs.Generator(data.draw(st.integers(0, 2**64 - 1)))
    reference = ref_random.Generator.from_state_dict(rng.state_dict())
    x_before = x.copy()
    try:
        y, keep = call_regularization(
            regularization.stochastic_depth, rng, x, p, mode=mode, training=training
        )
    except ERRORS:
        unchanged(x, x_before)
        return
    counted("regularization.stochastic_depth (valid)")
    with np.errstate(all="ignore"):
        want_y, want_keep = ref.stochastic_depth(
            np.asarray(x), p, rng=reference, mode=mode, training=training
        )
    assert_same(y, want_y)
    if training:
        np.testing.assert_array_equal(keep, want_keep)


@settings(
    max_examples=max(EXAMPLES // 3, 20), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_fuzz_fractional_max_pool2d(data):
    counted("regularization.fractional_max_pool2d (+ backward)")
    overlapping = data.draw(st.booleans())
    pseudo = data.draw(st.booleans())
    k = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    h, w = data.draw(st.integers(k[0], 9)), data.draw(st.integers(k[1], 9))
    limit = (h - k[0] + 1, w - k[1] + 1) if overlapping else (h, w)
    out_size = (data.draw(st.integers(1, limit[0])), data.draw(st.integers(1, limit[1])))
    shape = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)), h, w)
    x = data.draw(arrays(shape=shape, dtype=data.draw(st.sampled_from(FLOATS)), any_dtype=False))
    output_size, kernel_size = out_size, k
    corrupt = data.draw(st.integers(0, 5))
    if corrupt == 1:
        x = data.draw(arrays())  # any dtype, rank, layout
    elif corrupt == 2:
        output_size = data.draw(st.sampled_from([(h + 1, 1), (0, 1), -1, (2, 2, 2), "3", 2.5]))
    elif corrupt == 3:
        kernel_size = data.draw(st.sampled_from([0, (h + 1, 1), (1, 2, 3), -2, 1.5]))
    rng = lec7rs.Generator(data.draw(st.integers(0, 2**64 - 1)))
    reference = ref_random.Generator.from_state_dict(rng.state_dict())
    x_before = x.copy()
    try:
        y, argmax = call_regularization(
            regularization.fractional_max_pool2d,
            rng,
            x,
            output_size,
            kernel_size=kernel_size,
            pseudo_random=pseudo,
            overlapping=overlapping,
        )
    except ERRORS:
        unchanged(x, x_before)
        return
    counted("regularization.fractional_max_pool2d (+ backward) (valid)")
    want_y, want_arg = ref.fractional_max_pool2d(
        np.asarray(x),
        output_size,
        rng=reference,
        kernel_size=kernel_size,
        pseudo_random=pseudo,
        overlapping=overlapping,
    )
    assert_same(y, want_y)
    np.testing.assert_array_equal(argmax, want_arg)
    # The backward pass, with a valid or a corrupted argmax.
    dout = data.draw(arrays(shape=y.shape, dtype=y.dtype, any_layout=True))
    bad = argmax.copy()
    if bad.size and data.draw(st.booleans()):
        bad.flat[data.draw(st.integers(0, bad.size - 1))] = data.draw(
            st.sampled_from([-1, x.shape[2] * x.shape[3], 2**40])
        )
    try:
        dx = regularization.fractional_max_pool2d_backward(dout, bad, x.shape)
    except ERRORS:
        assert not np.array_equal(bad, argmax)
        return
    np.testing.assert_array_equal(bad, argmax)
    want = ref.fractional_max_pool2d_backward(np.asarray(dout), argmax, x.shape)
    np.testing.assert_allclose(dx, want, rtol=1e-6 if y.dtype == np.float32 else 1e-12)


# -- averaging -------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_fuzz_polyak_average(data):
    counted("averaging.PolyakAverage.update")
    dtype = data.draw(st.sampled_from(FLOATS))
    shape = data.draw(shapes())
    p = data.draw(arrays(shape=shape, dtype=dtype, any_layout=False))
    decay = data.draw(st.one_of(st.none(), st.floats(0, 1), st.sampled_from([-0.1, 1.5, np.nan])))
    try:
        avg = averaging.PolyakAverage([p], decay=decay)
    except ERRORS:
        assert decay is None or not 0 <= decay <= 1
        return
    want = np.zeros_like(p)  # ignored by the first update, which copies
    count = 0
    for _ in range(data.draw(st.integers(1, 3))):
        p[...] = data.draw(arrays(shape=shape, dtype=dtype, any_layout=False))
        avg.update()
        want = ref.polyak_update(want, p, count, decay)
        count += 1
    assert_same(avg.averages[0], want)


# -- minimize --------------------------------------------------------------------


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None)
@given(data=st.data())
def test_fuzz_minimize(data):
    counted("optimize.minimize")
    x0 = data.draw(
        arrays(
            shape=data.draw(shapes(min_dims=0, max_dims=2, big=False)),
            dtype=data.draw(st.sampled_from(FLOATS)),
            any_dtype=False,
        )
    )
    method = data.draw(st.sampled_from(["L-BFGS", "BFGS", "Newton"]))
    line_search = data.draw(st.sampled_from(["strong_wolfe", "backtracking"]))
    m = data.draw(st.sampled_from([10, 1, 5]))
    fault = "none"
    corrupt = data.draw(st.integers(0, 4))
    if corrupt == 1:
        # Any dtype and layout; past the inline limit only for L-BFGS: at
        # n = 33,000 .. 70,000 a dense n x n matrix (BFGS's, or the one this
        # test's Newton Hessian builds) is 4 to 39 GB.
        x0 = data.draw(arrays(shape=data.draw(shapes(big=method == "L-BFGS"))))
    elif corrupt == 2:
        method, line_search, m = data.draw(
            st.sampled_from(
                [
                    ("CG", line_search, m),
                    (method, "armijo", m),
                    (method, line_search, 0),
                    (method, line_search, -1),
                ]
            )
        )
    elif corrupt == 3:
        fault = data.draw(st.sampled_from(["shape", "dtype", "nan", "inf", "tuple"]))
    calls = []

    def fun(x):
        calls.append(1)
        with np.errstate(all="ignore"):
            g = 2 * (x - 1)
            f = float(np.sum((x - 1) ** 2))
        if fault == "shape":
            g = np.append(g, 0)
        elif fault == "dtype":
            g = g.astype(np.complex128)
        elif fault == "nan" and len(calls) > 2:
            f = np.nan
        elif fault == "inf" and len(calls) > 2:
            g = g + np.inf
        elif fault == "tuple":
            return f
        return f, g

    def hess(x):
        return 2 * np.eye(x.size, dtype=x.dtype)

    x0_before = x0.copy()
    try:
        res = optimize.minimize(
            fun,
            x0,
            method=method,
            hess=hess if method == "Newton" else None,
            m=m,
            line_search=line_search,
            max_iter=50,
        )
    except ERRORS:
        unchanged(x0, x0_before)
        return
    unchanged(x0, x0_before)  # x0 is never written
    counted("optimize.minimize (valid)")
    assert res.status in (0, 1, 2, 3)
    assert res.x.dtype == x0.dtype and res.x.shape == x0.shape
    if fault == "none" and res.status == 0 and np.isfinite(x0).all() and np.abs(x0).max() < 1e3:
        np.testing.assert_allclose(res.x, 1, atol=1e-2)


# -- augmentation -------------------------------------------------------------------


@st.composite
def images(draw):
    dtype = draw(
        st.sampled_from(
            [np.uint8, np.uint8, np.float32, np.float32, np.float64, np.int16, np.bool_]
        )
    )
    if draw(st.integers(0, 19)) == 0:
        shape = draw(shapes(big=False))  # usually the wrong rank
    else:
        shape = (
            draw(st.integers(0, 3)),
            draw(st.integers(1, 9)),
            draw(st.integers(1, 9)),
            draw(st.sampled_from([1, 3, 3, 4])),
        )
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    if dtype == np.uint8:
        a = rng.integers(0, 256, shape, dtype=np.uint8)
    elif dtype in (np.float32, np.float64):
        a = rng.random(shape).astype(dtype)
        if a.size and draw(st.integers(0, 4)) == 0:
            a.flat[draw(st.integers(0, a.size - 1))] = draw(
                st.sampled_from([np.nan, np.inf, -1.0, 2.0, 1e-40])
            )
    else:
        a = np.ones(shape, dtype)
    return layout(draw, a)


def augment_case(data, fn_name):
    """Calls ``lec7rs.augment.<fn_name>`` and its reference on fuzzed input;
    returns None when the call raised (after checking nothing changed)."""
    from lec7rs import augment
    from lec7rs.reference import augment as ref_augment

    # Valid arguments by construction; then, one time in three, one of them
    # is replaced by an invalid or unusual one.
    n, h, w = (
        data.draw(st.integers(0, 3)),
        data.draw(st.integers(1, 9)),
        data.draw(st.integers(1, 9)),
    )
    c = data.draw(st.sampled_from([3, 1]))
    dtype = data.draw(st.sampled_from([np.uint8, np.float32]))
    nchw = data.draw(st.booleans())
    layout_name = "NCHW" if nchw else "NHWC"
    base = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    shape = (n, c, h, w) if nchw else (n, h, w, c)
    x = (
        base.integers(0, 256, shape, dtype=np.uint8)
        if dtype == np.uint8
        else base.random(shape).astype(np.float32)
    )
    x = layout(data.draw, x)
    kw: dict = {}
    if fn_name == "random_flip":
        kw = dict(
            p=data.draw(st.floats(0, 1)),
            axis=data.draw(st.sampled_from(["horizontal", "vertical"])),
        )
    elif fn_name == "random_crop":
        pad = data.draw(st.integers(0, 3))
        kw = dict(
            size=(data.draw(st.integers(1, h + 2 * pad)), data.draw(st.integers(1, w + 2 * pad))),
            padding=data.draw(st.sampled_from([pad, [pad, pad], [pad] * 4])),
            pad_mode=data.draw(st.sampled_from(["constant", "reflect", "edge", "symmetric"])),
        )
    elif fn_name == "random_resized_crop":
        lo = data.draw(st.floats(0.05, 1.0))
        kw = dict(
            size=(data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12))),
            scale=(lo, data.draw(st.floats(lo, 1.0))),
            antialias=data.draw(st.booleans()),
        )
    else:

        def factor(top):
            return data.draw(st.one_of(st.just(0), st.floats(0, top)))

        kw = dict(
            brightness=factor(2),
            contrast=factor(2),
            saturation=factor(2) if c == 3 else 0,
            hue=factor(0.5) if c == 3 else 0,
        )
    out = None
    if fn_name in ("random_flip", "color_jitter") and data.draw(st.booleans()):
        out = np.zeros(x.shape, x.dtype)
    corrupt = data.draw(st.integers(0, 2)) == 1
    if corrupt:
        what = data.draw(st.sampled_from(["images", "layout", "arg", "out"]))
        if what == "images":
            x = data.draw(st.one_of(images(), arrays()))
        elif what == "layout":
            layout_name = data.draw(st.sampled_from(["HWC", "nchw", "NHCW", None]))
        elif what == "out":
            out = data.draw(
                arrays(
                    shape=data.draw(st.sampled_from([x.shape, (1, 1, 1, 1)])),
                    dtype=data.draw(st.sampled_from([x.dtype, np.float64])),
                )
            )
        else:
            key = data.draw(st.sampled_from(sorted(kw)))
            # A huge padding is valid, but the reference builds the padded
            # image with np.pad: 10**3 per side still fits in memory there.
            huge = 10**3 if key == "padding" else 10**6
            kw[key] = data.draw(
                st.sampled_from(
                    [-1, 0, 1.5, np.nan, (2, 1), (0, 1), "x", None, (1, 2, 3), 0.6, huge]
                )
            )
    rng = lec7rs.Generator(data.draw(st.integers(0, 2**64 - 1)))
    before_state = rng.state_dict()
    reference = ref_random.Generator.from_state_dict(before_state)
    x_before, out_before = copies(x, out)
    fn = getattr(augment, fn_name)
    args = (x, kw.pop("size")) if "size" in kw else (x,)
    try:
        y = fn(*args, rng=rng, layout=layout_name, out=out, **kw)
    except ERRORS:
        unchanged(x, x_before)
        unchanged(out, out_before)
        assert rng.state_dict() == before_state
        return None
    assert x.dtype in (np.uint8, np.float32) and x.ndim == 4
    unchanged(x, x_before)
    if "size" in kw or len(args) == 2:
        args = (np.asarray(x), augment._size(args[1]))
    else:
        args = (np.asarray(x),)
    if "padding" in kw:
        kw["padding"] = tuple(augment._padding(kw["padding"]))
    with np.errstate(all="ignore"):
        want, _ = getattr(ref_augment, fn_name)(
            *args, rng=reference, layout=layout_name.upper(), **kw
        )
    assert rng.state_dict() == reference.state_dict()
    return y, want


@pytest.mark.parametrize(
    "fn_name", ["random_flip", "random_crop", "random_resized_crop", "color_jitter"]
)
@settings(
    max_examples=max(EXAMPLES // 2, 20),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzz_augment(fn_name, data):
    counted(f"augment.{fn_name}")
    result = augment_case(data, fn_name)
    if result is None:
        return
    counted(f"augment.{fn_name} (valid)")
    y, want = result
    assert y.dtype == want.dtype and y.shape == want.shape
    if fn_name in ("random_flip", "random_crop") or y.dtype == np.uint8:
        # exact, and uint8 results are rounded in both (within 1 unit allowed)
        tol = 0 if fn_name in ("random_flip", "random_crop") else 1
        diff = np.abs(y.astype(np.float64) - want.astype(np.float64))
        assert np.nanmax(diff, initial=0) <= tol
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    else:
        finite = np.isfinite(want) & np.isfinite(y)
        np.testing.assert_allclose(y[finite], want[finite], rtol=1e-5, atol=2e-6)


# -- schedules, LBFGS, checkpoints ------------------------------------------------

SCHEDULERS = {
    "StepLR": lambda opt, a, b: lr_scheduler.StepLR(opt, step_size=a, gamma=b),
    "MultiStepLR": lambda opt, a, b: lr_scheduler.MultiStepLR(opt, milestones=[a, 2 * a], gamma=b),
    "ExponentialLR": lambda opt, a, b: lr_scheduler.ExponentialLR(opt, gamma=b),
    "CosineAnnealingLR": lambda opt, a, b: lr_scheduler.CosineAnnealingLR(opt, T_max=a, eta_min=b),
    "CosineAnnealingWarmRestarts": lambda opt, a, b: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=a, T_mult=2, eta_min=b
    ),
    "LinearLR": lambda opt, a, b: lr_scheduler.LinearLR(opt, start_factor=b, total_iters=a),
    "InverseTimeLR": lambda opt, a, b: lr_scheduler.InverseTimeLR(opt, k=b),
}


@pytest.mark.parametrize("name", list(SCHEDULERS))
@FUZZ
@given(
    a=st.one_of(st.integers(-2, 50), st.sampled_from([0.5, None, "3"])),
    b=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, 1, -1, 0.5, None])
    ),
    steps=st.integers(0, 30),
)
def test_fuzz_lr_scheduler(name, a, b, steps):
    counted(f"lr_scheduler.{name}")
    p = np.zeros(3)
    opt = optim.SGD([p], lr=0.1)
    before = dict(opt.param_groups[0])
    try:
        sched = SCHEDULERS[name](opt, a, b)
    except ERRORS:
        assert {k: v for k, v in opt.param_groups[0].items() if k != "params"} == {
            k: v for k, v in before.items() if k != "params"
        }
        return
    counted(f"lr_scheduler.{name} (valid)")
    for _ in range(steps):
        try:
            sched.step()
        except ValueError:  # a schedule whose lr would leave [0, inf)
            break
        lr = opt.param_groups[0]["lr"]
        assert np.isfinite(lr) and lr >= 0
        opt.step([np.ones(3)])
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None)
@given(data=st.data())
def test_fuzz_lbfgs_closure(data):
    counted("optim.LBFGS.step")
    dtype = data.draw(st.sampled_from(FLOATS))
    p = data.draw(arrays(shape=(data.draw(st.integers(1, 20)),), dtype=dtype, any_layout=False))
    p[~np.isfinite(p) | (np.abs(p) > 1e3)] = 0.5
    opt = optim.LBFGS(
        [p],
        line_search_fn=data.draw(st.sampled_from([None, "strong_wolfe"])),
        max_iter=data.draw(st.integers(1, 5)),
    )
    fault = data.draw(st.sampled_from(["none", "none", "shape", "dtype", "list", "nan", "str"]))

    def closure():
        with np.errstate(all="ignore"):
            loss = float(np.sum((p - 1) ** 2))
            g = 2 * (p - 1)
        if fault == "shape":
            g = g[:-1]
        elif fault == "dtype":
            g = g.astype(np.float16)
        elif fault == "list":
            return loss, g.tolist()
        elif fault == "nan":
            loss = float("nan")
        elif fault == "str":
            return "loss", [g]
        return loss, [g]

    before = p.copy()
    try:
        opt.step(closure)
    except ERRORS:
        unchanged(p, before)
        return
    counted("optim.LBFGS.step (valid)")
    if fault == "none":
        assert np.sum((p - 1) ** 2) <= np.sum((before - 1) ** 2) + 1e-6


@settings(
    max_examples=max(EXAMPLES // 3, 20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_fuzz_checkpoint_load(tmp_path, data):
    counted("checkpoint.load (mutated files)")
    params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float32)}
    opt = optim.Adam(params)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    path = tmp_path / "ck"
    checkpoint.save(path, params, optimizer=opt)
    raw = bytearray(path.read_bytes())
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "zero-run"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif kind == "extend":
        raw += bytes(data.draw(st.binary(min_size=1, max_size=64)))
    else:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i : i + 16] = bytes(len(raw[i : i + 16]))
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(raw))
    target = {k: np.zeros_like(v) for k, v in params.items()}
    target_opt = optim.Adam(target)
    before = snapshot(target_opt)
    try:
        checkpoint.load(bad, target, optimizer=target_opt)
    except ValueError:
        assert_unchanged(target_opt, before)
        return
    # Only a mutation that changes nothing (e.g. zeros over zeros) may load.
    assert bytes(raw) == path.read_bytes()
    for k in params:
        np.testing.assert_array_equal(target[k], params[k])
