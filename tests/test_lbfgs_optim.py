"""lec7rs.optim.LBFGS: torch.optim.LBFGS's semantics (checked step for step
against the NumPy transcription in lec7rs.reference.torch_lbfgs), multi-array
params, history across steps, state_dict, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from lec7rs.optim import LBFGS
from lec7rs.reference import torch_lbfgs


def problem(dtype=np.float64, seed=0):
    """Ridge regression with two param arrays: w (4, 5) and b (5,)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, 4)).astype(dtype)
    y = rng.standard_normal((60, 5)).astype(dtype)

    def loss_grad(w, b):
        r = x @ w + b - y
        loss = 0.5 * float((r * r).sum()) / 60 + 0.05 * float((w * w).sum())
        return loss, (x.T @ r / 60 + 0.1 * w).astype(dtype), (r.sum(0) / 60).astype(dtype)

    return loss_grad


def run_pair(kw, steps=4, dtype=np.float64):
    loss_grad = problem(dtype)
    params = {"w": np.zeros((4, 5), dtype), "b": np.zeros(5, dtype)}
    opt = LBFGS(params, **kw)

    def closure():
        loss, gw, gb = loss_grad(params["w"], params["b"])
        return loss, {"w": gw, "b": gb}

    flat = np.zeros(25, dtype)
    state: dict = {}

    def flat_closure(v):
        loss, gw, gb = loss_grad(v[:20].reshape(4, 5), v[20:])
        return loss, np.concatenate([gw.reshape(-1), gb])

    out = []
    for _ in range(steps):
        a = opt.step(closure)
        b = torch_lbfgs(flat_closure, flat, state, **kw)
        out.append((a, b, np.concatenate([params["w"].reshape(-1), params["b"]]), flat.copy()))
    return out, opt, state


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(line_search_fn="strong_wolfe"),
        dict(history_size=3, max_iter=7),
        dict(lr=0.5, line_search_fn="strong_wolfe", history_size=2, max_iter=30),
        dict(max_iter=5, max_eval=3),
        dict(lr=1e-3, line_search_fn="strong_wolfe", max_iter=20, max_eval=6),
        dict(tolerance_grad=1e-3, tolerance_change=1e-4),
    ],
)
def test_matches_the_torch_reference_step_for_step(kw):
    out, opt, state = run_pair(kw)
    for a, b, p, ref in out:
        assert a == pytest.approx(b, rel=1e-12, abs=1e-14)
        np.testing.assert_allclose(p, ref, rtol=1e-10, atol=1e-12)
    mine = opt.state_dict()["state"][0]
    assert mine["n_iter"] == state["n_iter"] and mine["func_evals"] == state["func_evals"]
    assert len(mine["old_dirs"]) == len(state["old_dirs"])


def test_float32_params_stay_float32():
    out, opt, _ = run_pair(dict(line_search_fn="strong_wolfe"), dtype=np.float32)
    for _a, _b, p, ref in out:
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, ref, rtol=1e-3, atol=1e-4)
    assert opt.state[0]["d"].dtype == np.float32


def test_first_step_scaling_and_history_kept_across_steps():
    loss_grad = problem()
    params = [np.zeros((4, 5)), np.zeros(5)]
    opt = LBFGS(params, max_iter=1)

    def closure():
        loss, gw, gb = loss_grad(*params)
        return loss, [gw, gb]

    _, gw, gb = loss_grad(*params)
    g = np.concatenate([gw.reshape(-1), gb])
    opt.step(closure)
    # First iteration: t = min(1, 1 / |g|_1) * lr along -g.
    t = min(1.0, 1.0 / np.abs(g).sum())
    np.testing.assert_allclose(np.concatenate([params[0].reshape(-1), params[1]]), -t * g)
    for _ in range(3):
        opt.step(closure)
    assert opt.state[0]["n_iter"] == 4 and len(opt.state[0]["old_dirs"]) == 3


def test_state_dict_resumes_identically():
    loss_grad = problem()

    def make():
        params = {"w": np.zeros((4, 5)), "b": np.zeros(5)}
        opt = LBFGS(params, line_search_fn="strong_wolfe", history_size=4, max_iter=3)

        def closure():
            loss, gw, gb = loss_grad(params["w"], params["b"])
            return loss, {"w": gw, "b": gb}

        return params, opt, closure

    p1, o1, c1 = make()
    for _ in range(2):
        o1.step(c1)
    saved = o1.state_dict()
    snapshot = {k: v.copy() for k, v in p1.items()}
    for _ in range(2):
        o1.step(c1)

    p2, o2, c2 = make()
    for k in p2:
        p2[k][...] = snapshot[k]
    o2.load_state_dict(saved)
    for _ in range(2):
        o2.step(c2)
    for k in p1:
        assert p1[k].tobytes() == p2[k].tobytes()


def test_bad_state_dict_changes_nothing():
    _, opt, _ = run_pair(dict(), steps=1)
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["state"][0]["d"] = np.zeros(3)
    with pytest.raises(ValueError, match="'d'"):
        opt.load_state_dict(bad)
    bad = opt.state_dict()
    bad["param_groups"][0]["history_size"] = 0
    with pytest.raises(ValueError, match="history_size"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["state"][0]["n_iter"] == before["state"][0]["n_iter"]
    np.testing.assert_array_equal(after["state"][0]["d"], before["state"][0]["d"])


def test_bit_identical_across_threads_and_simd_levels():
    n = 3 * 16384 + 5
    rng = np.random.default_rng(3)
    c = rng.uniform(0.5, 4.0, n)

    def trajectory():
        p = [np.ones(n)]
        opt = LBFGS(p, history_size=5, max_iter=8, line_search_fn="strong_wolfe")
        for _ in range(2):
            opt.step(lambda: (0.5 * float(c @ (p[0] - 0.3) ** 2), [c * (p[0] - 0.3)]))
        return p[0].tobytes()

    with threads(1), simd("scalar"):
        want = trajectory()
    for level in LEVELS:
        for k in (1, 2):
            with threads(k), simd(level):
                assert trajectory() == want


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(lr=-1.0), "lr"),
        (dict(max_iter=0), "max_iter"),
        (dict(max_eval=0), "max_eval"),
        (dict(history_size=0), "history_size"),
        (dict(tolerance_grad=-1.0), "tolerance_grad"),
        (dict(line_search_fn="armijo"), "line_search_fn"),
    ],
)
def test_bad_hyperparameters(kw, match):
    with pytest.raises(ValueError, match=match):
        LBFGS([np.zeros(3)], **kw)


def test_one_group_only():
    with pytest.raises(ValueError, match="parameter groups"):
        LBFGS([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)]}])


def test_max_eval_default():
    assert LBFGS([np.zeros(2)], max_iter=8).param_groups[0]["max_eval"] == 10


@pytest.mark.parametrize(
    ("grads", "exc", "match"),
    [
        ({"w": np.zeros((4, 5), np.float32), "b": np.zeros(5)}, TypeError, r"grads\['w'\]"),
        ({"w": np.zeros((5, 4)), "b": np.zeros(5)}, ValueError, r"shape \(4, 5\).*\(5, 4\)"),
        ({"w": np.zeros((4, 5))}, ValueError, "missing key 'b'"),
        ({"w": [0.0] * 20, "b": np.zeros(5)}, TypeError, r"grads\['w'\].*list"),
    ],
)
def test_bad_grads_raise_and_change_nothing(grads, exc, match):
    params = {"w": np.ones((4, 5)), "b": np.ones(5)}
    opt = LBFGS(params)
    with pytest.raises(exc, match=match):
        opt.step(lambda: (1.0, grads))
    assert (params["w"] == 1).all() and (params["b"] == 1).all() and opt.state == {}


def test_closure_must_return_loss_and_grads():
    opt = LBFGS([np.ones(2)])
    with pytest.raises(TypeError, match=r"\(loss, grads\)"):
        opt.step(lambda: 1.0)


def test_check_finite_undoes_a_step_with_nan():
    p = [np.ones(3)]
    opt = LBFGS(p, check_finite=True, line_search_fn="strong_wolfe")
    calls = []

    def closure():
        calls.append(1)
        if len(calls) > 1:
            return float("nan"), [np.full(3, np.nan)]
        return 1.5, [p[0].copy()]

    assert opt.step(closure) == 1.5
    assert opt.last_step_skipped and (p[0] == 1).all() and opt.state == {}
    assert opt.state_dict()["skipped_steps"] == 1


def test_nan_propagates_without_check_finite():
    p = [np.ones(3)]
    opt = LBFGS(p, max_iter=2)
    opt.step(lambda: (float("nan"), [np.full(3, np.nan)]))
    assert np.isnan(p[0]).all()
