"""Gradient norms and clipping (torch.nn.utils semantics): against NumPy,
bit-identical across threads and SIMD levels, bad input, and clipping folded
into the step with grad_scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import LEVELS, simd, threads
from lec7rs.optim import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

SHAPES = [(0,), (1,), (17,), (40000,), (129, 7), (70001,)]


def grads(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def numpy_norm(gs, p):
    flat = np.concatenate([g.astype(np.float64).ravel() for g in gs])
    if p == math.inf:
        return float(np.abs(flat).max(initial=0.0))
    return float(np.sum(np.abs(flat) ** p) ** (1 / p))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 0.5, math.inf])
def test_total_norm_matches_numpy(dtype, p):
    gs = grads(dtype)
    got = get_total_norm(gs, p)
    want = numpy_norm(gs, p)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert got == pytest.approx(want, rel=rtol)
    assert get_total_norm({f"g{i}": g for i, g in enumerate(gs)}, p) == got
    assert get_total_norm([*gs, None], p) == got


@pytest.mark.parametrize("p", [2.0, 1.0, math.inf, 3.0])
def test_total_norm_is_bit_identical_for_threads_and_levels(p):
    gs = grads(np.float32, seed=4)
    with threads(1), simd("scalar"):
        want = get_total_norm(gs, p)
    for n in (1, 2, 3):
        for level in LEVELS:
            with threads(n), simd(level):
                assert get_total_norm(gs, p) == want, (n, level)


def test_empty_and_non_finite():
    assert get_total_norm([]) == 0.0
    assert get_total_norm([np.zeros(0, np.float32)], math.inf) == 0.0
    bad = [np.array([1.0, np.inf])]
    assert get_total_norm(bad) == math.inf
    assert math.isnan(get_total_norm([np.array([np.nan, 1.0])], math.inf))
    with pytest.raises(ValueError, match="error_if_nonfinite"):
        get_total_norm(bad, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="error_if_nonfinite"):
        clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(bad[0], [1.0, np.inf])  # unchanged


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_norm_scales_like_torch(dtype):
    gs = grads(dtype, seed=1)
    want = [g.copy() for g in gs]
    total = clip_grad_norm_(gs, 1.0)
    coef = dtype(min(1.0, 1.0 / (total + 1e-6)))
    for g, w in zip(gs, want):
        np.testing.assert_array_equal(g, w * coef)
    assert get_total_norm(gs) <= 1.0 + 1e-5
    small = [np.full(3, 1e-3, dtype)]
    before = small[0].copy()
    clip_grad_norm_(small, 1.0)
    np.testing.assert_array_equal(small[0], before)


def test_clip_grads_with_norm_uses_the_given_norm():
    g = [np.full(4, 2.0, np.float32)]
    clip_grads_with_norm_(g, 1.0, 4.0)
    np.testing.assert_array_equal(g[0], np.float32(2.0) * np.float32(1.0 / (4.0 + 1e-6)))


def test_clip_grad_value():
    g = np.array([-3.0, -0.5, 0.0, 0.5, 3.0, np.nan], np.float32)
    clip_grad_value_([g], 1.0)
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.5, 1.0, np.nan])
    big = grads(np.float64, seed=2)
    want = [np.clip(b, -0.5, 0.5) for b in big]
    clip_grad_value_(big, 0.5)
    for b, w in zip(big, want):
        np.testing.assert_array_equal(b, w)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda g: get_total_norm(g, 0.0), ValueError, "norm_type"),
        (lambda g: get_total_norm(g, -1.0), ValueError, "norm_type"),
        (lambda g: get_total_norm(g, "2"), TypeError, "norm_type"),
        (lambda g: clip_grad_norm_(g, "1"), TypeError, "max_norm"),
        (lambda g: clip_grad_value_(g, -1.0), ValueError, "clip_value"),
        (lambda g: clip_grad_value_(g, None), TypeError, "clip_value"),
        (lambda g: get_total_norm([g[0], g[1].astype(np.float64)]), TypeError, r"grads\[1\]"),
        (lambda g: get_total_norm([g[0], [1.0]]), TypeError, r"grads\[1\]"),
        (lambda g: clip_grad_value_([g[0], g[0][::2]], 1.0), ValueError, "C-contiguous"),
        (lambda g: clip_grad_norm_([g[0], g[0]], 1e-3), ValueError, "shares memory"),
        (lambda g: get_total_norm(42), TypeError, "grads"),
    ],
)
def test_bad_input_raises_and_changes_nothing(call, exc, match):
    g = [np.full(8, 2.0, np.float32), np.full(8, 3.0, np.float32)]
    before = [x.copy() for x in g]
    with pytest.raises(exc, match=match):
        call(g)
    for x, b in zip(g, before):
        np.testing.assert_array_equal(x, b)


def test_read_only_grads_are_refused_for_clipping():
    g = np.full(8, 2.0, np.float32)
    g.flags.writeable = False
    assert get_total_norm([g]) == pytest.approx(math.sqrt(32))
    with pytest.raises(ValueError, match="read-only"):
        clip_grad_value_([g], 1.0)


def test_strided_grads_are_read_correctly():
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    for view in (base.T, base[:, ::3], base[::-1]):
        assert get_total_norm([view]) == get_total_norm([np.ascontiguousarray(view)])


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_clipping_through_grad_scale_equals_clip_then_step(cls, rule, kw):
    rng = np.random.default_rng(9)
    shapes = [(5,), (40000,), (3, 7)]
    a = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    b = [x.copy() for x in a]
    opt_a, opt_b = cls(a, **kw), cls(b, **kw)
    for _ in range(4):
        gs = [10 * rng.standard_normal(s).astype(np.float32) for s in shapes]
        c = min(1.0, 1.0 / (get_total_norm(gs) + 1e-6))
        opt_a.step(gs, grad_scale=c)
        clipped = [g.copy() for g in gs]
        clip_grad_norm_(clipped, 1.0)
        opt_b.step(clipped)
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()
