"""Hypothesis properties: lr=0 changes nothing; a raised error changes
nothing; any length (0, 1, around the lane widths) matches the reference."""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import assert_unchanged, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lec7rs import optim

FINITE = dict(allow_nan=False, allow_infinity=False, width=32)
DTYPES = st.sampled_from([np.float32, np.float64])


def arrays(dtype, n):
    return hnp.arrays(dtype, n, elements=st.floats(-1e3, 1e3, **FINITE))


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(0, 70), dtype=DTYPES)
def test_lr_zero_changes_no_param(cls, rule, kw, data, n, dtype):
    if cls is optim.Rprop or kw.get("eps") == 0.0:
        # Rprop's lr only sets the first step size (clipped to step_sizes);
        # eps = 0 makes 0 / 0 where a grad is 0.
        return
    p = data.draw(arrays(dtype, n))
    before = p.copy()
    opt = cls([p], **{**kw, "lr": 0.0})
    for _ in range(3):
        opt.step([data.draw(arrays(dtype, n))])
    np.testing.assert_array_equal(p, before)


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), n=st.integers(0, 70), dtype=DTYPES)
def test_any_length_matches_reference(cls, rule, kw, data, n, dtype):
    p = data.draw(arrays(dtype, n))
    q, state = p.copy(), {}
    opt = cls([p], **kw)
    for _ in range(3):
        g = data.draw(arrays(dtype, n))
        opt.step([g])
        with np.errstate(all="ignore"):
            q, state = rule(q, g, state, **kw)
    np.testing.assert_array_equal(p, q)


BAD_GRADS = st.sampled_from(
    [
        "wrong dtype",
        "int",
        "wrong shape",
        "too few",
        "too many",
        "alias",
        "not array",
    ]
)


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(1, 40), dtype=DTYPES, bad=BAD_GRADS, warm=st.integers(0, 2))
def test_a_raised_error_changes_nothing(cls, rule, kw, data, n, dtype, bad, warm):
    params = [data.draw(arrays(dtype, n)), data.draw(arrays(dtype, n + 1))]
    opt = cls(params, **kw)
    for _ in range(warm):
        opt.step([data.draw(arrays(dtype, n)), data.draw(arrays(dtype, n + 1))])
    grads = [data.draw(arrays(dtype, n)), data.draw(arrays(dtype, n + 1))]
    k = data.draw(st.integers(0, 1))
    other = np.float64 if dtype == np.float32 else np.float32
    if bad == "wrong dtype":
        grads[k] = grads[k].astype(other)
    elif bad == "int":
        grads[k] = grads[k].astype(np.int32)
    elif bad == "wrong shape":
        grads[k] = np.zeros(params[k].size + 1, dtype)
    elif bad == "too few":
        grads = grads[:1]
    elif bad == "too many":
        grads = [*grads, grads[0]]
    elif bad == "alias":
        grads[k] = params[k]
    else:
        grads[k] = grads[k].tolist()
    before = snapshot(opt)
    with pytest.raises((TypeError, ValueError)):
        opt.step(grads)
    assert_unchanged(opt, before)


@settings(max_examples=40, deadline=None)
@given(lr=st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), st.just(float("inf"))))
def test_out_of_range_lr_always_rejected(lr):
    with pytest.raises(ValueError):
        optim.Adam([np.zeros(2)], lr=lr)
