"""Adafactor and Muon: the update rules whose step needs whole-tensor
reductions (row / column sums, norms) or matrix products.

Their results cannot be bit-identical to the NumPy reference (NumPy and BLAS
sum in other orders), so unlike the rows of ``cases.py`` they are compared
to it with a tolerance: 50 steps, rtol 1e-5 in float32 and 1e-12 in float64
(with ``atol = rtol * max(1, max |expected|)``, as
``test_reference_torch2.py``). What must be exact is checked bit for bit:
1 vs 2 vs 3 threads, every SIMD level, resuming from a state dict.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEVELS, assert_unchanged, simd, snapshot, threads
from lec7rs import optim
from lec7rs import reference as ref

STEPS = 50
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
DTYPES = [np.float32, np.float64]

# Vectors (one lane, odd, past the chunk and inline limits), matrices (odd
# sizes around the lane widths) and a batch of matrices.
SHAPES = [(1,), (17,), (7, 9), (3, 4, 5), (64, 33), (100003,)]

ADAFACTOR_CASES = [
    dict(),
    dict(lr=0.05, weight_decay=0.1),
    dict(maximize=True, beta2_decay=-0.5),
    # eps1 that floors the second moment, eps2 that floors RMS(p).
    dict(eps=(0.3, 10.0), lr=1e-3),
    dict(eps=(1e-30, 0.0), d=1.5),
    # lr above 1 / sqrt(t): rho switches to 1 / sqrt(t) after a few steps.
    dict(lr=0.5, d=2.0, weight_decay=0.01),
]


def _id(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items()) or "defaults"


def assert_close(actual, expected, rtol, err_msg=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def draw(rng, shapes, dtype):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grads_for(rng, shapes, dtype, steps=STEPS):
    out = [draw(rng, shapes, dtype) for _ in range(steps)]
    for g in out[3]:
        g[...] = 0  # an all-zero grad: the eps floors decide
    return out


def compare_with_reference(cls, rule, kw, shapes, dtype, rng, steps=STEPS):
    """One optimizer over all ``shapes`` (one multi-tensor step) against the
    reference run on each param alone."""
    params = draw(rng, shapes, dtype)
    want = [p.copy() for p in params]
    states = [None] * len(params)
    grads = grads_for(rng, shapes, dtype, steps)
    opt = cls(params, **kw)
    for gs in grads:
        opt.step(gs)
        for k, g in enumerate(gs):
            want[k], states[k] = rule(want[k], g, states[k], **kw)
    rtol = RTOL[dtype]
    for k, shape in enumerate(shapes):
        assert params[k].dtype == dtype
        assert_close(params[k], want[k], rtol, err_msg=f"param {shape}")
        got = opt.state[k]
        for key, value in states[k].items():
            if key == "step":
                assert got["step"] == value
            else:
                assert got[key].dtype == dtype
                assert_close(got[key], value, rtol, err_msg=f"{key} of {shape}")
        assert set(got) - {"step"} == set(states[k]) - {"step"}


def trajectory(cls, kw, shapes, dtype, seed=3, steps=12):
    rng = np.random.default_rng(seed)
    params = draw(rng, shapes, dtype)
    opt = cls(params, **kw)
    for _ in range(steps):
        opt.step(draw(rng, shapes, dtype))
    return params, opt.state_dict()


def assert_same(a, b):
    for x, y in zip(a[0], b[0]):
        assert x.tobytes() == y.tobytes()
    assert a[1]["state"].keys() == b[1]["state"].keys()
    for i, entry in a[1]["state"].items():
        assert entry.keys() == b[1]["state"][i].keys()
        for k, v in entry.items():
            other = b[1]["state"][i][k]
            assert (v.tobytes() == other.tobytes()) if isinstance(v, np.ndarray) else v == other


# ---------------------------------------------------------------------------
# Adafactor
# ---------------------------------------------------------------------------

# Big enough for the pool, several tiles per tensor (rows and column blocks)
# and every tail: vectors past CHUNK, a matrix of two row blocks, a batch
# of wide matrices (two column blocks each), a narrow one.
BIG_SHAPES = [(100003,), (3 * 16384 + 17,), (600, 700), (2, 70, 5000), (20000, 3), (5,)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", ADAFACTOR_CASES, ids=_id)
def test_adafactor_matches_reference(kw, dtype, rng):
    compare_with_reference(optim.Adafactor, ref.torch_adafactor, kw, SHAPES, dtype, rng)


def test_adafactor_state_follows_torch_shapes():
    params = [np.ones(s, np.float32) for s in [(), (4,), (2, 3), (2, 3, 4)]]
    opt = optim.Adafactor(params)
    opt.step([np.ones_like(p) for p in params])
    state = opt.state_dict()["state"]
    assert set(state[0]) == set(state[1]) == {"step", "variance"}
    assert state[0]["variance"].shape == ()
    assert set(state[2]) == {"step", "row_var", "col_var"}
    assert state[2]["row_var"].shape == (2, 1)
    assert state[2]["col_var"].shape == (1, 3)
    assert state[3]["row_var"].shape == (2, 3, 1)
    assert state[3]["col_var"].shape == (2, 1, 4)


def test_adafactor_first_vector_step_by_hand():
    # Step 1: w = 1, so V = g^2, U = sign(g), RMS(U) = 1 (no clipping at d = 1);
    # alpha = max(1e-3, RMS(p)) * min(lr, 1).
    p = np.array([1.0, -2.0, 0.5])
    g = np.array([0.5, 0.25, -4.0])
    q = p.copy()
    optim.Adafactor([q], lr=0.01).step([g])
    alpha = np.sqrt(np.mean(p * p)) * 0.01
    np.testing.assert_allclose(q, p - alpha * np.sign(g), rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_threads_are_bit_identical(dtype):
    kw = dict(lr=0.05, weight_decay=0.1)
    with threads(1):
        want = trajectory(optim.Adafactor, kw, BIG_SHAPES, dtype)
    for n in (2, 3):
        with threads(n):
            assert_same(trajectory(optim.Adafactor, kw, BIG_SHAPES, dtype), want)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_simd_levels_are_bit_identical(dtype, level):
    kw = dict(maximize=True, eps=(1e-3, 1e-3))
    shapes = [*SHAPES, (3, 5000), (40, 31)]
    with simd("scalar"):
        want = trajectory(optim.Adafactor, kw, shapes, dtype)
    with simd(level):
        assert_same(trajectory(optim.Adafactor, kw, shapes, dtype), want)


def test_adafactor_multi_tensor_step_is_bit_identical_to_one_tensor_steps():
    rng = np.random.default_rng(5)
    shapes = [(17,), (64, 33), (3, 4, 5)]
    together = draw(rng, shapes, np.float32)
    alone = [p.copy() for p in together]
    opt = optim.Adafactor(together, weight_decay=0.1)
    singles = [optim.Adafactor([p], weight_decay=0.1) for p in alone]
    for _ in range(5):
        gs = draw(rng, shapes, np.float32)
        opt.step(gs)
        for o, g in zip(singles, gs):
            o.step([g])
    for a, b in zip(together, alone):
        assert a.tobytes() == b.tobytes()


def resume_is_bit_identical(cls, kw, shapes, dtype):
    rng = np.random.default_rng(11)
    params = draw(rng, shapes, dtype)
    grads = [draw(rng, shapes, dtype) for _ in range(10)]
    opt = cls(params, **kw)
    for gs in grads[:5]:
        opt.step(gs)
    saved = opt.state_dict()
    resumed_params = [p.copy() for p in params]
    for gs in grads[5:]:
        opt.step(gs)
    other = cls(resumed_params, **kw)
    other.load_state_dict(saved)
    for gs in grads[5:]:
        other.step(gs)
    assert_same((resumed_params, other.state_dict()), (params, opt.state_dict()))


@pytest.mark.parametrize("dtype", DTYPES)
def test_adafactor_state_dict_resume_is_bit_identical(dtype):
    resume_is_bit_identical(optim.Adafactor, dict(weight_decay=0.1), SHAPES, dtype)


def test_adafactor_grad_scale_reads_grad_times_scale():
    rng = np.random.default_rng(2)
    shapes = [(17,), (7, 9)]
    a = draw(rng, shapes, np.float32)
    b = [p.copy() for p in a]
    oa, ob = optim.Adafactor(a), optim.Adafactor(b)
    for _ in range(3):
        gs = draw(rng, shapes, np.float32)
        oa.step(gs, grad_scale=0.37)
        ob.step([g * np.float32(0.37) for g in gs])
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()


def test_adafactor_frozen_groups_and_none_grads():
    rng = np.random.default_rng(4)
    w, b, head = (rng.standard_normal(s).astype(np.float32) for s in [(6, 5), (5,), (5, 2)])
    frozen, kept = w.copy(), b.copy()
    opt = optim.Adafactor(
        [{"params": [w], "frozen": True}, {"params": [b, head], "lr": 0.1}], weight_decay=0.1
    )
    want, state = head.copy(), None
    for _ in range(4):
        g = rng.standard_normal((5, 2)).astype(np.float32)
        opt.step([np.ones_like(w), None, g])
        want, state = ref.torch_adafactor(want, g, state, lr=0.1, weight_decay=0.1)
    np.testing.assert_array_equal(w, frozen)
    np.testing.assert_array_equal(b, kept)
    assert set(opt.state) == {2}
    assert_close(head, want, 1e-5)


def test_adafactor_empty_param_is_left_alone():
    e = np.zeros((0, 4), np.float32)
    v = np.ones(3, np.float32)
    opt = optim.Adafactor([e, v])
    opt.step([np.zeros_like(e), np.ones_like(v)])
    assert e.shape == (0, 4)
    np.testing.assert_array_equal(opt.state[0]["col_var"], np.zeros((1, 4), np.float32))
    assert np.all(v < 1)


def test_adafactor_nan_grad_propagates():
    p = np.ones((4, 3), np.float32)
    g = np.ones_like(p)
    g[1, 2] = np.nan
    optim.Adafactor([p]).step([g])
    assert np.isnan(p[1]).all() and np.isnan(p[:, 2]).all()


ADAFACTOR_BAD = [
    (dict(lr=-0.1), r"lr: -0.1"),
    (dict(lr=float("nan")), r"lr: NaN"),
    (dict(beta2_decay=0.5), r"beta2_decay: 0.5"),
    (dict(eps=(-1.0, 1e-3)), r"eps\[0\]: -1"),
    (dict(eps=(None, -1e-3)), r"eps\[1\]: -0.001"),
    (dict(eps=(None, 1e-3, 1.0)), r"eps"),
    (dict(d=0.5), r"d: 0.5"),
    (dict(weight_decay=-1.0), r"weight_decay: -1"),
]


@pytest.mark.parametrize(("kw", "match"), ADAFACTOR_BAD, ids=[m for _, m in ADAFACTOR_BAD])
def test_adafactor_invalid_hyperparameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        optim.Adafactor([np.ones(3, np.float32)], **kw)
    # Written into a group: the step raises and changes nothing.
    p = np.ones((3, 2), np.float32)
    opt = optim.Adafactor([p])
    opt.step([np.ones_like(p)])
    before = snapshot(opt)
    opt.param_groups[0].update(kw)
    with pytest.raises(ValueError, match=match):
        opt.step([np.ones_like(p)])
    for key in kw:
        opt.param_groups[0][key] = before["groups"][0][key]
    assert_unchanged(opt, before)


def test_adafactor_wrong_types_raise_type_error():
    with pytest.raises(TypeError, match="eps"):
        optim.Adafactor([np.ones(3, np.float32)], eps="small")
    with pytest.raises(TypeError, match=r"eps\[0\]"):
        optim.Adafactor([np.ones(3, np.float32)], eps=("x", 1e-3))


@pytest.mark.parametrize(
    ("key", "shape"),
    [("row_var", (4, 3)), ("row_var", (1, 3)), ("col_var", (4, 1)), ("col_var", (3,))],
)
def test_adafactor_load_state_dict_refuses_wrong_factor_shapes(key, shape):
    p = np.ones((4, 3), np.float32)
    opt = optim.Adafactor([p])
    opt.step([np.ones_like(p)])
    saved = opt.state_dict()
    saved["state"][0][key] = np.zeros(shape, np.float32)
    opt.step([np.full_like(p, 0.5)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=rf"state\[0\]\['{key}'\].*shape"):
        opt.load_state_dict(saved)
    assert_unchanged(opt, before)
    opt.step([np.ones_like(p)])  # still usable


def test_adafactor_bad_step_changes_nothing():
    p = np.ones((4, 3), np.float32)
    v = np.ones(7, np.float32)
    opt = optim.Adafactor([p, v])
    opt.step([np.ones_like(p), np.ones_like(v)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        opt.step([np.ones_like(p), np.ones(6, np.float32)])
    assert_unchanged(opt, before)
    with pytest.raises(TypeError, match=r"grads\[0\]"):
        opt.step([np.ones(p.shape, np.float64), np.ones_like(v)])
    assert_unchanged(opt, before)


# ---------------------------------------------------------------------------
# Muon
# ---------------------------------------------------------------------------

# Wide, tall (transposed inside), square, one row, one column.
MUON_SHAPES = [(7, 9), (9, 7), (64, 33), (33, 64), (5, 5), (1, 17), (17, 1)]
MUON_BIG = [(300, 200), (200, 300), (128, 128), (64, 33), (5, 7)]

MUON_CASES = [
    dict(),
    dict(nesterov=False, weight_decay=0.0),
    dict(momentum=0.5, lr=0.02, adjust_lr_fn="match_rms_adamw"),
    dict(adjust_lr_fn="original", ns_steps=2, ns_coefficients=(2.0, -1.5, 0.5)),
    # No iteration, and an eps above the norm: X = U / eps.
    dict(ns_steps=0, eps=1e3),
    dict(momentum=0.0, weight_decay=0.3, lr=1e-2),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", MUON_CASES, ids=_id)
def test_muon_matches_reference(kw, dtype, rng):
    compare_with_reference(optim.Muon, ref.torch_muon, kw, MUON_SHAPES, dtype, rng)


def test_muon_update_is_orthogonalized():
    rng = np.random.default_rng(8)
    for shape in [(40, 70), (70, 40)]:
        p = np.zeros(shape)
        optim.Muon([p], lr=1.0, weight_decay=0.0).step([rng.standard_normal(shape)])
        s = np.linalg.svd(-p / np.sqrt(max(1, shape[0] / shape[1])), compute_uv=False)
        assert np.all((s > 0.5) & (s < 1.3)), s


@pytest.mark.parametrize("dtype", DTYPES)
def test_muon_threads_are_bit_identical(dtype):
    kw = dict(lr=0.02)
    with threads(1):
        want = trajectory(optim.Muon, kw, MUON_BIG, dtype, steps=6)
    for n in (2, 3):
        with threads(n):
            assert_same(trajectory(optim.Muon, kw, MUON_BIG, dtype, steps=6), want)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_muon_simd_levels_are_bit_identical(dtype, level):
    kw = dict(nesterov=True, adjust_lr_fn="match_rms_adamw")
    with simd("scalar"):
        want = trajectory(optim.Muon, kw, MUON_SHAPES, dtype)
    with simd(level):
        assert_same(trajectory(optim.Muon, kw, MUON_SHAPES, dtype), want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_muon_state_dict_resume_is_bit_identical(dtype):
    resume_is_bit_identical(optim.Muon, dict(lr=0.02), MUON_SHAPES, dtype)


def test_muon_state_dict_has_no_step_like_torch():
    p = np.ones((3, 4), np.float32)
    opt = optim.Muon([p])
    opt.step([np.ones_like(p)])
    state = opt.state_dict()["state"]
    assert set(state[0]) == {"momentum_buffer"}
    np.testing.assert_array_equal(state[0]["momentum_buffer"], np.full((3, 4), 0.05, np.float32))


def test_muon_grad_scale_reads_grad_times_scale():
    rng = np.random.default_rng(2)
    shapes = [(7, 9), (9, 7)]
    a = draw(rng, shapes, np.float32)
    b = [p.copy() for p in a]
    oa, ob = optim.Muon(a), optim.Muon(b)
    for _ in range(3):
        gs = draw(rng, shapes, np.float32)
        oa.step(gs, grad_scale=0.37)
        ob.step([g * np.float32(0.37) for g in gs])
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()


def test_muon_frozen_groups_and_none_grads():
    rng = np.random.default_rng(4)
    w, v, head = (rng.standard_normal(s).astype(np.float32) for s in [(6, 5), (5, 5), (5, 2)])
    frozen, kept = w.copy(), v.copy()
    opt = optim.Muon([{"params": [w], "frozen": True}, {"params": [v, head], "lr": 0.1}])
    want, state = head.copy(), None
    for _ in range(4):
        g = rng.standard_normal((5, 2)).astype(np.float32)
        opt.step([np.ones_like(w), None, g])
        want, state = ref.torch_muon(want, g, state, lr=0.1)
    np.testing.assert_array_equal(w, frozen)
    np.testing.assert_array_equal(v, kept)
    assert set(opt.state_dict()["state"]) == {2}
    assert_close(head, want, 1e-5)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ([np.ones((3, 4), np.float32), np.ones(4, np.float32)], r"params\[1\]: .*2-D.*\(4,\)"),
        ({"w": np.ones((2, 3, 4))}, r"params\['w'\]: .*2-D.*\(2, 3, 4\)"),
        ([np.ones((), np.float64)], r"params\[0\]: .*2-D.*\(\)"),
    ],
)
def test_muon_refuses_params_that_are_not_matrices(params, match):
    with pytest.raises(ValueError, match=match):
        optim.Muon(params)


def test_muon_add_param_group_refuses_a_vector_and_changes_nothing():
    p = np.ones((3, 4), np.float32)
    opt = optim.Muon([p])
    opt.step([np.ones_like(p)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"params\[1\]: .*2-D"):
        opt.add_param_group({"params": [np.ones(4, np.float32)]})
    assert_unchanged(opt, before)
    assert len(opt._params) == 1
    opt.add_param_group({"params": [np.ones((2, 2), np.float32)]})
    opt.step([np.ones_like(p), np.ones((2, 2), np.float32)])


MUON_BAD = [
    (dict(lr=-1.0), ValueError, r"lr: -1"),
    (dict(momentum=-0.1), ValueError, r"momentum: -0.1"),
    (dict(weight_decay=-1.0), ValueError, r"weight_decay: -1"),
    (dict(ns_steps=100), ValueError, r"ns_steps: 100"),
    (dict(ns_steps=-1), ValueError, r"ns_steps: -1"),
    (dict(adjust_lr_fn="cosine"), ValueError, r"adjust_lr_fn: \"cosine\""),
    (dict(adjust_lr_fn=3), TypeError, r"adjust_lr_fn"),
    (dict(ns_coefficients=(1.0, 2.0)), ValueError, r"ns_coefficients"),
    (dict(ns_coefficients=(1.0, "b", 2.0)), TypeError, r"ns_coefficients\[1\]"),
    (dict(nesterov="yes"), TypeError, r"nesterov"),
]


@pytest.mark.parametrize(("kw", "exc", "match"), MUON_BAD, ids=[m for _, _, m in MUON_BAD])
def test_muon_invalid_hyperparameters_raise(kw, exc, match):
    with pytest.raises(exc, match=match):
        optim.Muon([np.ones((2, 3), np.float32)], **kw)
    # Written into a group: the step raises and changes nothing.
    p = np.ones((3, 2), np.float32)
    opt = optim.Muon([p])
    opt.step([np.ones_like(p)])
    before = snapshot(opt)
    opt.param_groups[0].update(kw)
    with pytest.raises(exc, match=match):
        opt.step([np.ones_like(p)])
    for key in kw:
        opt.param_groups[0][key] = before["groups"][0][key]
    assert_unchanged(opt, before)


def test_muon_bad_step_and_bad_state_change_nothing():
    p = np.ones((4, 3), np.float32)
    q = np.ones((2, 2), np.float32)
    opt = optim.Muon([p, q])
    opt.step([np.ones_like(p), np.ones_like(q)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        opt.step([np.ones_like(p), np.ones((2, 3), np.float32)])
    assert_unchanged(opt, before)
    saved = opt.state_dict()
    saved["state"][0]["momentum_buffer"] = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"state\[0\]\['momentum_buffer'\].*shape"):
        opt.load_state_dict(saved)
    assert_unchanged(opt, before)
