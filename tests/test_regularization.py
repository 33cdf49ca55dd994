"""lec7rs.regularization against the NumPy reference (bit for bit, same
generator state), across SIMD levels and thread counts, and the semantics
the docstrings promise (torch / torchvision / the lecture)."""

from __future__ import annotations

import lec7rs
import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from hypothesis import given, settings
from hypothesis import strategies as st
from lec7rs import reference as ref
from lec7rs import regularization as R
from lec7rs.reference import random as ref_random

CHUNK = 1 << 14
DTYPES = [np.float32, np.float64]


def pair(seed=1234):
    """A generator and the reference stream in the same state."""
    g = lec7rs.Generator(seed)
    g.random(3)  # not at counter 0
    return g, ref_random.Generator.from_state_dict(g.state_dict())


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


# -- dropout ---------------------------------------------------------------------

SHAPES = [(), (0,), (1,), (17,), (64,), (65,), (3, 7, 11), (2 * CHUNK + 99,)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_matches_reference(dtype, shape, p, inverted):
    x = data(shape, dtype)
    g, r = pair()
    for _ in range(2):  # consecutive calls stay in step
        y, mask = R.dropout(x, p, rng=g, inverted=inverted)
        y_ref, mask_ref = ref.dropout(x, p, rng=r, inverted=inverted)
        same(y, y_ref)
        assert mask.dtype == bool and mask.shape == x.shape
        np.testing.assert_array_equal(mask, mask_ref)
    assert g.state_dict() == r.state_dict()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_test_mode(dtype, inverted):
    x = data((5, 6), dtype)
    g = lec7rs.Generator(1)
    y, mask = R.dropout(x, 0.3, rng=g, training=False, inverted=inverted)
    assert mask is None and y is not x
    same(y, x if inverted else x * dtype(0.7))
    assert g.state_dict()["counter"] == 0  # nothing drawn
    out = np.empty_like(x)
    y2, _ = R.dropout(x, 0.3, rng=g, training=False, inverted=inverted, out=out)
    assert y2 is out
    same(out, y)


def test_dropout_formulas():
    x = np.arange(1, 10001, dtype=np.float64)
    g = lec7rs.Generator(3)
    y, mask = R.dropout(x, 0.2, rng=g)
    np.testing.assert_array_equal(y, np.where(mask, x * 1.25, 0.0))
    y, mask = R.dropout(x, 0.2, rng=g, inverted=False)
    np.testing.assert_array_equal(y, np.where(mask, x, 0.0))
    y, mask = R.dropout(x, 0.0, rng=g)
    assert mask.all() and np.array_equal(y, x)
    y, mask = R.dropout(x, 1.0, rng=g)  # PyTorch: zeros, never 0 * inf
    assert not mask.any() and np.array_equal(y, np.zeros_like(x))


def test_dropout_nan_inf_and_signs_follow_x_times_noise():
    x = np.array([np.nan, np.inf, -np.inf, -2.0, 2.0] * 20, np.float32)
    y, _ = R.dropout(x, 1.0, rng=lec7rs.Generator(0))
    with np.errstate(invalid="ignore"):
        same(y, x * np.float32(0))  # NaN where x is NaN or inf, -0.0 for -2
    assert np.signbit(y[3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_out_and_in_place(dtype):
    x = data((3, CHUNK + 5), dtype)
    y_new, m_new = R.dropout(x, 0.4, rng=lec7rs.Generator(9))
    out = np.full_like(x, 7)
    y, m = R.dropout(x, 0.4, rng=lec7rs.Generator(9), out=out)
    assert y is out
    same(out, y_new)
    np.testing.assert_array_equal(m, m_new)
    z = x.copy()
    y, m = R.dropout(z, 0.4, rng=lec7rs.Generator(9), out=z)
    assert y is z
    same(z, y_new)
    np.testing.assert_array_equal(m, m_new)


@pytest.mark.parametrize("level", LEVELS)
def test_large_out_streaming_stores_write_the_same_values(level):
    # An existing out= of >= 8 MiB is written with streaming stores, whatever
    # its alignment (here 12 bytes past a line); the values do not change.
    n = (8 << 20) // 4 + 333
    x = data((n,), np.float32)
    g, r = pair()
    storage = np.zeros(n + 5, np.float32)
    out = storage[3 : 3 + n]
    with simd(level), threads(2):
        y, mask = R.dropout(x, 0.3, rng=g, out=out)
    y_ref, mask_ref = ref.dropout(x, 0.3, rng=r)
    assert y is out
    same(out, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    assert not storage[:3].any() and not storage[3 + n :].any()


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::2],
        lambda a: a.T,
        lambda a: np.asfortranarray(a),
        lambda a: a[::-1],
        lambda a: a[:, 3:40],
    ],
)
def test_strided_inputs_are_read_correctly(view):
    base = data((40, 60), np.float32)
    x = view(base)
    y, mask = R.dropout(x, 0.5, rng=lec7rs.Generator(4))
    y_ref, mask_ref = R.dropout(np.ascontiguousarray(x), 0.5, rng=lec7rs.Generator(4))
    same(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    dx = R.dropout_backward(x, view(np.ones(base.shape, bool)) & mask, 0.5)
    same(dx, y_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_backward(dtype, inverted, p):
    x, dout = data((4, 33), dtype), data((4, 33), dtype, seed=1)
    _, mask = R.dropout(x, p, rng=lec7rs.Generator(2), inverted=inverted)
    dx = R.dropout_backward(dout, mask, p, inverted=inverted)
    same(dx, ref.dropout_backward(dout, mask, p, inverted=inverted))
    # The gradient of y = x * (mask ? s : 0) is that same scaling.
    y, _ = R.dropout(dout, p, rng=lec7rs.Generator(2), inverted=inverted)
    same(dx, y)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("inverted", [True, False])
def test_dropconnect(dtype, inverted):
    w = data((20, 30), dtype)
    g, r = pair()
    wd, mask = R.dropconnect(w, 0.25, rng=g, inverted=inverted)
    wd_ref, mask_ref = ref.dropconnect(w, 0.25, rng=r, inverted=inverted)
    same(wd, wd_ref)
    np.testing.assert_array_equal(mask, mask_ref)
    dwd = data((20, 30), dtype, seed=5)
    same(
        R.dropconnect_backward(dwd, mask, 0.25, inverted=inverted),
        ref.dropconnect_backward(dwd, mask, 0.25, inverted=inverted),
    )
    # A linear layer with dropped weights: d/dw of sum(x @ w_dropped * G).
    x, grad_out = data((8, 20), dtype, seed=6), data((8, 30), dtype, seed=7)
    dw = R.dropconnect_backward(x.T @ grad_out, mask, 0.25, inverted=inverted)
    s = dtype(1 / 0.75) if inverted else dtype(1)
    np.testing.assert_allclose(dw, (x.T @ grad_out) * mask * s, rtol=1e-6)


@given(n=st.integers(0, 300), p=st.floats(0, 1), seed=st.integers(0, 2**64 - 1))
@settings(max_examples=60, deadline=None)
def test_dropout_property_any_length(n, p, seed):
    x = np.linspace(-3, 3, n, dtype=np.float32)
    g = lec7rs.Generator(seed)
    r = ref_random.Generator(seed)
    y, mask = R.dropout(x, p, rng=g)
    y_ref, mask_ref = ref.dropout(x, p, rng=r)
    same(y, y_ref)
    np.testing.assert_array_equal(mask, mask_ref)


# -- stochastic depth -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["row", "batch"])
@pytest.mark.parametrize("shape", [(8, 3, 5, 5), (1,), (300,), (7, CHUNK // 3), (0, 4)])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_stochastic_depth_matches_reference(dtype, mode, shape, p):
    x = data(shape, dtype)
    g, r = pair()
    y, keep = R.stochastic_depth(x, p, rng=g, mode=mode)
    y_ref, keep_ref = ref.stochastic_depth(x, p, rng=r, mode=mode)
    same(y, y_ref)
    assert keep.dtype == bool and keep.shape == keep_ref.shape
    np.testing.assert_array_equal(keep, keep_ref)
    assert g.state_dict() == r.state_dict()
    # torchvision: input * noise, noise = keep / (1 - p) (0 when p = 1).
    noise = keep / (1 - p) if p < 1 else np.zeros(keep.shape)
    np.testing.assert_allclose(y, x * noise.astype(dtype), rtol=1e-6)


def test_stochastic_depth_row_keeps_whole_samples_and_batch_all_or_nothing():
    x = np.ones((64, 3, 4), np.float32)
    y, keep = R.stochastic_depth(x, 0.5, rng=lec7rs.Generator(1), mode="row")
    assert keep.shape == (64, 1, 1)
    assert 0 < keep.sum() < 64
    for i in range(64):
        assert np.all(y[i] == (2.0 if keep[i, 0, 0] else 0.0))
    outcomes = set()
    for seed in range(20):
        y, keep = R.stochastic_depth(x, 0.5, rng=lec7rs.Generator(seed), mode="batch")
        assert keep.shape == (1, 1, 1)
        outcomes.add(float(y.max()))
        assert np.all(y == y.flat[0])
    assert outcomes == {0.0, 2.0}


def test_stochastic_depth_eval_is_a_copy_and_draws_nothing():
    x = data((4, 5), np.float64)
    g = lec7rs.Generator(1)
    y, keep = R.stochastic_depth(x, 0.5, rng=g, training=False)
    assert keep is None and y is not x
    same(y, x)
    assert g.state_dict()["counter"] == 0
    y, keep = R.stochastic_depth(np.full((), 3.0), 0.5, rng=g, mode="batch")
    assert keep.shape == ()


# -- fractional max pooling -----------------------------------------------------------

POOLS = [
    # (input shape, output_size, kernel_size)
    ((2, 3, 25, 25), 16, 2),
    ((1, 2, 11, 17), (7, 9), (3, 2)),
    ((2, 1, 9, 9), 1, 2),
    ((1, 2, 10, 10), 3, 1),
    ((3, 2, 6, 7), (5, 6), 2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "size", "kernel"), POOLS)
@pytest.mark.parametrize("pseudo", [True, False])
@pytest.mark.parametrize("overlapping", [True, False])
def test_fractional_max_pool_matches_reference(dtype, shape, size, kernel, pseudo, overlapping):
    x = data(shape, dtype)
    g, r = pair()
    kw = dict(kernel_size=kernel, pseudo_random=pseudo, overlapping=overlapping)
    y, argmax = R.fractional_max_pool2d(x, size, rng=g, **kw)
    y_ref, argmax_ref = ref.fractional_max_pool2d(x, size, rng=r, **kw)
    same(y, y_ref)
    assert argmax.dtype == np.int64
    np.testing.assert_array_equal(argmax, argmax_ref)
    assert g.state_dict() == r.state_dict()
    n, c, h, w = shape
    planes = x.reshape(n, c, h * w)
    np.testing.assert_array_equal(
        y, np.take_along_axis(planes, argmax.reshape(n, c, -1), axis=2).reshape(y.shape)
    )
    dout = data(y.shape, dtype, seed=3)
    same(
        R.fractional_max_pool2d_backward(dout, argmax, shape),
        ref.fractional_max_pool2d_backward(dout, argmax, shape),
    )


def test_fractional_windows_by_mode():
    # One plane whose values are their flat index: the max of a window is
    # its bottom-right corner, so argmax reveals the window geometry.
    h = w = 25
    x = np.arange(h * w, dtype=np.float64).reshape(1, 1, h, w)
    for seed in range(5):
        _, a = R.fractional_max_pool2d(x, 16, rng=lec7rs.Generator(seed))
        rows, cols = np.divmod(a[0, 0], w)
        # Overlapping, kernel 2: a window ends at its start + 1; starts go
        # from 0 to 23 in steps of 1 or 2 (alpha = 23 / 15).
        for starts in (cols[0] - 1, rows[:, 0] - 1):
            assert starts[0] == 0 and starts[-1] == 23
            assert set(np.diff(starts)) <= {1, 2}
        _, a = R.fractional_max_pool2d(x, 16, rng=lec7rs.Generator(seed), overlapping=False)
        rows, cols = np.divmod(a[0, 0], w)
        # Disjoint: the region ends partition 25 into 9 steps of 2 and 7 of 1.
        for ends in (cols[0] + 1, rows[:, 0] + 1):
            steps = np.diff(np.concatenate([[0], ends]))
            assert sorted(steps) == [1] * 7 + [2] * 9


def test_random_sequence_is_a_shuffle_of_the_same_steps():
    x = np.arange(30 * 30, dtype=np.float32).reshape(1, 1, 30, 30)
    seen = set()
    for seed in range(10):
        _, a = R.fractional_max_pool2d(
            x, 20, rng=lec7rs.Generator(seed), pseudo_random=False, overlapping=False
        )
        ends = a[0, 0, 0] % 30 + 1
        steps = np.diff(np.concatenate([[0], ends]))
        assert sorted(steps) == [1] * 10 + [2] * 10
        seen.add(tuple(steps))
    assert len(seen) == 10


def test_fractional_nan_and_ties_follow_aten():
    x = np.zeros((1, 1, 4, 4), np.float32)  # all ties: the first wins
    _, a = R.fractional_max_pool2d(x, 2, rng=lec7rs.Generator(0), overlapping=False)
    np.testing.assert_array_equal(a[0, 0], [[0, 2], [8, 10]])
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    y, a = R.fractional_max_pool2d(x, 2, rng=lec7rs.Generator(0), overlapping=False)
    assert np.isnan(y[0, 0, 0, 0]) and a[0, 0, 0, 0] == 4  # the last NaN
    assert y[0, 0, 1, 1] == -np.inf and a[0, 0, 1, 1] == 10  # all -inf: the start


@pytest.mark.parametrize("pseudo", [True, False])
@pytest.mark.parametrize("overlapping", [True, False])
def test_fractional_backward_numerical_gradient(pseudo, overlapping):
    x = data((2, 2, 9, 8), np.float64, seed=11)
    g = lec7rs.Generator(5)
    kw = dict(kernel_size=(2, 3), pseudo_random=pseudo, overlapping=overlapping)
    state = g.state_dict()
    y, argmax = R.fractional_max_pool2d(x, (6, 5), rng=g, **kw)
    dout = data(y.shape, np.float64, seed=12)
    dx = R.fractional_max_pool2d_backward(dout, argmax, x.shape)

    def loss(v):
        g.load_state_dict(state)  # the same windows
        return float(np.sum(R.fractional_max_pool2d(v, (6, 5), rng=g, **kw)[0] * dout))

    eps = 1e-6
    num = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        num.flat[i] = (loss(x + e) - loss(x - e)) / (2 * eps)
    np.testing.assert_allclose(dx, num, atol=1e-7)


# -- SIMD levels and thread counts ---------------------------------------------------


def run_all(dtype):
    x = data((3, CHUNK + 77), dtype)
    img = data((4, 3, 20, 21), dtype)
    g = lec7rs.Generator(31)
    out = []
    out += R.dropout(x, 0.35, rng=g)
    out += R.dropout(x, 0.35, rng=g, inverted=False)
    out += [R.dropout_backward(x, out[1], 0.35)]
    out += R.dropconnect(x, 0.6, rng=g)
    out += R.stochastic_depth(x, 0.5, rng=g, mode="row")
    for pseudo in (True, False):
        for overlapping in (True, False):
            y, a = R.fractional_max_pool2d(
                img, (13, 11), rng=g, pseudo_random=pseudo, overlapping=overlapping
            )
            out += [y, a, R.fractional_max_pool2d_backward(y, a, img.shape)]
    out.append(g.random(1000, dtype))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_bit_identical_across_levels_and_threads(dtype):
    want = run_all(dtype)
    for level in LEVELS:
        for t in (1, 2, 4):
            with simd(level), threads(t):
                got = run_all(dtype)
            for a, b in zip(got, want):
                assert a.tobytes() == b.tobytes(), (level, t)
