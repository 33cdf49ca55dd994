"""Every optimizer x option set x dtype x shape against the NumPy reference.

Tolerance: none. The kernels perform the same IEEE-754 operations as the
reference (add, sub, mul, div, sqrt, each correctly rounded), in the same
order, in the param's dtype, with the same scalars (computed in f64 and
rounded once). So the results are bit-identical for float32 and float64, which
is stronger than the 1e-12 relative bound asked of float64; the float32
tolerance is therefore 0 as well.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASE_IDS, CASES

SHAPES = [(0,), (1,), (15,), (16,), (17,), (1023,), (100003,), (7, 9), (3, 4, 5), (2, 1, 33)]
STEPS = 50


def run_both(cls, rule, kw, shape, dtype, rng, steps=STEPS):
    p = rng.standard_normal(shape).astype(dtype)
    q = p.copy()
    state = {}
    opt = cls([p], **kw)
    for _ in range(steps):
        g = rng.standard_normal(shape).astype(dtype)
        opt.step([g])
        q, state = rule(q, g, state, **kw)
    return opt, p, q, state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_matches_reference(cls, rule, kw, shape, dtype, rng):
    opt, p, q, state = run_both(cls, rule, kw, shape, dtype, rng)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p, q)
    ours = opt.state[0]
    for key, value in state.items():
        if key.startswith("_"):
            continue  # the reference's own bookkeeping (schedule-free's group schedule)
        if key == "step":
            assert ours["step"] == value == STEPS
        else:
            np.testing.assert_array_equal(ours[key], value, err_msg=key)


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_multi_tensor_step_matches_per_tensor_reference(cls, rule, kw, rng):
    # One call updates tensors of many sizes (some below, some above the
    # chunk size) as one job; each must match its own reference.
    shapes = [(3,), (40000,), (129, 7), (17,), (70001,)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    copies = [p.copy() for p in params]
    states = [{} for _ in shapes]
    opt = cls(params, **kw)
    for _ in range(20):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        opt.step(grads)
        for k, g in enumerate(grads):
            copies[k], states[k] = rule(copies[k], g, states[k], **kw)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_non_finite_grads_propagate_like_pytorch(cls, rule, kw, dtype, rng):
    p = rng.standard_normal(40).astype(dtype)
    q = p.copy()
    state = {}
    opt = cls([p], **kw)
    for step in range(6):
        g = rng.standard_normal(40).astype(dtype)
        if step == 2:
            g[[3, 10, 33]] = [np.nan, np.inf, -np.inf]
        opt.step([g])
        with np.errstate(all="ignore"):
            q, state = rule(q, g, state, **kw)
    np.testing.assert_array_equal(p, q)  # NaN == NaN here
    assert not np.isfinite(p).all()
