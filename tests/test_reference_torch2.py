"""The NumPy references of NAdam, RAdam, Adamax, Adadelta, Rprop, ASGD,
Adafactor and Muon (``lec7rs.reference.optim_torch2``).

PyTorch is not installed here, so each reference is checked against an
independent, plain float64 transcription of PyTorch's documented algorithm
box (written below without regard to PyTorch's order of operations), to
~1e-12 relative over 20 steps on several shapes and every option branch;
plus properties (lr=0, inputs untouched, dtypes, state keys, Adafactor's
factored shapes), a few hand-computed first steps, and the Rosenbrock check
of PyTorch's old ``test/optim/test_optim.py`` (``_test_rosenbrock``: from
(1.5, 1.5), the distance to the minimum (1, 1) does not grow).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lec7rs.reference import optim_torch2 as ref

STEPS = 20
SHAPES = [(1,), (7,), (4, 6), (3, 4, 5)]


# ---------------------------------------------------------------------------
# Independent float64 transcriptions of PyTorch's algorithm boxes
# ---------------------------------------------------------------------------


def box_nadam(
    theta,
    grads,
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
):
    b1, b2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    prod = 1.0
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        mu_t = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_t1 = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        prod_t = prod * mu_t
        prod_t1 = prod_t * mu_t1
        prod = prod_t
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = mu_t1 * m / (1 - prod_t1) + (1 - mu_t) * g / (1 - prod_t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta, {"mu_product": prod, "exp_avg": m, "exp_avg_sq": v}


def box_radam(
    theta,
    grads,
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    maximize=False,
):
    b1, b2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    rho_inf = 2 / (1 - b2) - 1
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay:
            if decoupled_weight_decay:
                theta = theta - lr * weight_decay * theta
            else:
                g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho_t > 5:
            l_t = math.sqrt(1 - b2**t) / (np.sqrt(v) + eps)
            r_t = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            theta = theta - lr * m_hat * r_t * l_t
        else:
            theta = theta - lr * m_hat
    return theta, {"exp_avg": m, "exp_avg_sq": v}


def box_adamax(
    theta, grads, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False
):
    b1, b2 = betas
    m = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        u = np.maximum(b2 * u, np.abs(g) + eps)
        theta = theta - lr * m / ((1 - b1**t) * u)
    return theta, {"exp_avg": m, "exp_inf": u}


def box_adadelta(theta, grads, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    v = np.zeros_like(theta)
    u = np.zeros_like(theta)
    for g in grads:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        v = rho * v + (1 - rho) * g**2
        dx = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u = rho * u + (1 - rho) * dx**2
        theta = theta - lr * dx
    return theta, {"square_avg": v, "acc_delta": u}


def box_rprop(theta, grads, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False):
    eta_minus, eta_plus = etas
    lo, hi = step_sizes
    prev = np.zeros_like(theta)
    eta = np.full_like(theta, lr)
    for g in grads:
        g = (-g if maximize else g).copy()
        for i in np.ndindex(theta.shape):
            if prev[i] * g[i] > 0:
                eta[i] = min(eta[i] * eta_plus, hi)
            elif prev[i] * g[i] < 0:
                eta[i] = max(eta[i] * eta_minus, lo)
                g[i] = 0
        theta = theta - eta * np.sign(g)
        prev = g
    return theta, {"prev": prev, "step_size": eta}


def box_asgd(
    theta, grads, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False
):
    eta, mu, ax = lr, 1.0, np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        theta = theta * (1 - lambd * eta) - eta * g
        ax = ax + mu * (theta - ax) if mu != 1 else theta.copy()
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / max(1, t - t0)
    return theta, {"eta": eta, "mu": mu, "ax": ax}


def rms(x):
    return math.sqrt(np.mean(x**2))


def box_adafactor(
    theta,
    grads,
    lr=1e-2,
    beta2_decay=-0.8,
    eps=(None, 1e-3),
    d=1.0,
    weight_decay=0.0,
    maximize=False,
):
    eps1, eps2 = eps
    eps1 = np.finfo(np.float64).eps if eps1 is None else eps1
    factored = theta.ndim > 1
    r = np.zeros((*theta.shape[:-1], 1)) if factored else None
    c = np.zeros((*theta.shape[:-2], 1, theta.shape[-1])) if factored else None
    v = None if factored else np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        g = -g if maximize else g
        beta2_t = 1 - t**beta2_decay
        rho_t = min(lr, 1 / math.sqrt(t))
        alpha_t = max(eps2, rms(theta)) * rho_t
        theta = theta - lr * weight_decay * theta
        if factored:
            r = beta2_t * r + (1 - beta2_t) * np.mean(g * g, axis=-1, keepdims=True)
            c = beta2_t * c + (1 - beta2_t) * np.mean(g * g, axis=-2, keepdims=True)
            v_hat = r * c / np.maximum(np.mean(r, axis=-2, keepdims=True), eps1)
        else:
            v = beta2_t * v + (1 - beta2_t) * g * g
            v_hat = v
        u = g / np.maximum(np.sqrt(v_hat), eps1)
        u_hat = u / max(1, rms(u) / d)
        theta = theta - alpha_t * u_hat
    if factored:
        return theta, {"row_var": r, "col_var": c}
    return theta, {"variance": v}


def newton_schulz(g, coefficients=(3.4445, -4.7750, 2.0315), steps=5, eps=1e-7):
    a, b, c = coefficients
    tall = g.shape[0] > g.shape[1]
    x = g.T if tall else g
    x = x / max(np.sqrt(np.sum(x * x)), eps)
    for _ in range(steps):
        s = x @ x.T
        x = a * x + b * s @ x + c * s @ s @ x
    return x.T if tall else x


def box_muon(
    theta, grads, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, adjust_lr_fn=None
):
    rows, cols = theta.shape
    if adjust_lr_fn == "match_rms_adamw":
        lr_adj = 0.2 * lr * math.sqrt(max(rows, cols))
    else:
        lr_adj = lr * math.sqrt(max(1, rows / cols))
    b = np.zeros_like(theta)
    for g in grads:
        b = momentum * b + g
        b_tilde = g + momentum * b if nesterov else b
        o = newton_schulz(b_tilde)
        theta = theta - lr * weight_decay * theta
        theta = theta - lr_adj * o
    # PyTorch keeps the buffer as a moving average: (1 - momentum) * B_t.
    return theta, {"momentum_buffer": (1 - momentum) * b}


# ---------------------------------------------------------------------------
# Cases: (reference, box, hyperparameters, shapes)
# ---------------------------------------------------------------------------

CASES = [
    (ref.torch_nadam, box_nadam, {}),
    (ref.torch_nadam, box_nadam, {"lr": 0.1, "weight_decay": 0.1}),
    (ref.torch_nadam, box_nadam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    (ref.torch_nadam, box_nadam, {"betas": (0.8, 0.9), "momentum_decay": 0.1, "maximize": True}),
    (ref.torch_radam, box_radam, {}),
    (ref.torch_radam, box_radam, {"lr": 0.1, "betas": (0.5, 0.9), "weight_decay": 0.1}),
    (ref.torch_radam, box_radam, {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    (ref.torch_radam, box_radam, {"eps": 1e-3, "maximize": True}),
    (ref.torch_adamax, box_adamax, {}),
    (ref.torch_adamax, box_adamax, {"lr": 0.1, "betas": (0.5, 0.6), "weight_decay": 0.1}),
    (ref.torch_adamax, box_adamax, {"eps": 0.5, "maximize": True}),
    (ref.torch_adadelta, box_adadelta, {}),
    (ref.torch_adadelta, box_adadelta, {"lr": 0.5, "rho": 0.5, "weight_decay": 0.1}),
    (ref.torch_adadelta, box_adadelta, {"eps": 1e-2, "maximize": True}),
    (ref.torch_rprop, box_rprop, {}),
    (ref.torch_rprop, box_rprop, {"lr": 0.1, "etas": (0.3, 1.7), "step_sizes": (0.05, 0.4)}),
    (ref.torch_rprop, box_rprop, {"maximize": True}),
    (ref.torch_asgd, box_asgd, {}),
    (ref.torch_asgd, box_asgd, {"lr": 0.1, "lambd": 0.3, "alpha": 0.5, "t0": 5}),
    (ref.torch_asgd, box_asgd, {"t0": 0.0, "weight_decay": 0.2, "maximize": True}),
    (ref.torch_adafactor, box_adafactor, {}),
    (ref.torch_adafactor, box_adafactor, {"lr": 0.5, "beta2_decay": -0.5, "weight_decay": 0.1}),
    (ref.torch_adafactor, box_adafactor, {"eps": (1e-3, 1e-1), "d": 2.0, "maximize": True}),
    (ref.torch_adafactor, box_adafactor, {"eps": (0.7, 1e-3), "d": 1e3}),
]
MUON_CASES = [
    {},
    {"nesterov": False, "momentum": 0.5},
    {"adjust_lr_fn": "original", "weight_decay": 0.0, "lr": 0.1},
    {"adjust_lr_fn": "match_rms_adamw", "lr": 0.02},
]
MUON_SHAPES = [(4, 8), (8, 4), (5, 5), (1, 6)]


def _id(case):
    rule, _, kw = case
    return rule.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


def run_rule(rule, theta, grads, kw, state=None):
    for g in grads:
        theta, state = rule(theta, g, state, **kw)
    return theta, state


def grads_for(rng, shape, steps=STEPS):
    gs = [rng.standard_normal(shape) for _ in range(steps)]
    # Exact zeros and repeated signs exercise the sign logic of Rprop.
    gs[3] = np.zeros(shape)
    gs[7] = gs[6].copy()
    return gs


def assert_close(actual, expected, rtol=1e-12, err_msg=""):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_matches_algorithm_box(case, shape, rng):
    rule, box, kw = case
    theta = rng.standard_normal(shape)
    grads = grads_for(rng, shape)
    got, state = run_rule(rule, theta, grads, kw)
    want, want_state = box(theta, grads, **kw)
    assert_close(got, want)
    assert state["step"] == STEPS
    for key, value in want_state.items():
        assert_close(state[key], value, err_msg=key)


@pytest.mark.parametrize("shape", MUON_SHAPES, ids=str)
@pytest.mark.parametrize("kw", MUON_CASES, ids=str)
def test_muon_matches_algorithm_box(kw, shape, rng):
    theta = rng.standard_normal(shape)
    grads = grads_for(rng, shape)
    grads[3] = rng.standard_normal(shape)  # an all-zero grad is not a Muon case
    got, state = run_rule(ref.torch_muon, theta, grads, kw)
    want, want_state = box_muon(theta, grads, **kw)
    assert_close(got, want, rtol=1e-11)
    assert_close(state["momentum_buffer"], want_state["momentum_buffer"])


def test_radam_switches_to_rectified_after_rho_t_exceeds_5():
    # With beta2=0.999, rho_t <= 5 for t <= 5 and > 5 from t = 6: the first
    # five updates are plain bias-corrected momentum, lr * m_hat.
    theta = np.zeros(3)
    g = np.array([1.0, -2.0, 0.5])
    state = None
    for t in range(1, 7):
        before = theta
        theta, state = ref.torch_radam(theta, g, state, lr=0.1)
        if t <= 5:
            np.testing.assert_allclose(before - theta, 0.1 * g, rtol=1e-15)
        else:
            step = before - theta
            rho_inf = 2 / (1 - 0.999) - 1
            rho_t = rho_inf - 2 * t * 0.999**t / (1 - 0.999**t)
            r = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            # constant grad: v_t = (1 - b2^t) g^2, so l_t = 1 / (|g| + eps')
            l_t = math.sqrt(1 - 0.999**t) / (np.sqrt((1 - 0.999**t) * g**2) + 1e-8)
            np.testing.assert_allclose(step, 0.1 * g * r * l_t, rtol=1e-12)


def test_muon_orthogonalizes():
    # Newton-Schulz drives the singular values into a band around 1.
    rng = np.random.default_rng(0)
    for shape in [(4, 8), (8, 4)]:
        o = ref._zeropower_via_newtonschulz(
            rng.standard_normal(shape), (3.4445, -4.775, 2.0315), 5, 1e-7
        )
        assert o.shape == shape
        s = np.linalg.svd(o, compute_uv=False)
        assert np.all((s > 0.5) & (s < 1.3)), s


def test_muon_rejects_non_matrices():
    with pytest.raises(ValueError, match="2D"):
        ref.torch_muon(np.zeros(3), np.ones(3))


def test_muon_adjust_lr():
    assert ref._adjust_lr(1.0, None, (8, 2)) == 2.0
    assert ref._adjust_lr(1.0, "original", (2, 8)) == 1.0
    assert ref._adjust_lr(1.0, "match_rms_adamw", (4, 9)) == pytest.approx(0.6)


# ---------------------------------------------------------------------------
# Hand-computed first steps
# ---------------------------------------------------------------------------


def test_first_steps_by_hand():
    p = np.array([1.0, -2.0, 0.5])
    g = np.array([0.5, 0.25, -4.0])
    # Rprop: prev = 0, so every step size stays lr; theta -= lr * sign(g).
    q, st = ref.torch_rprop(p, g, lr=0.1)
    np.testing.assert_array_equal(q, p - 0.1 * np.sign(g))
    np.testing.assert_array_equal(st["prev"], g)
    # Rprop second step with the sign of element 0 flipped: its step size is
    # halved and its grad is zeroed (no move, prev = 0); the others grow 1.2x.
    g2 = np.array([-1.0, 1.0, -1.0])
    q2, st2 = ref.torch_rprop(q, g2, st, lr=0.1)
    np.testing.assert_allclose(st2["step_size"], [0.05, 0.12, 0.12], rtol=1e-15)
    np.testing.assert_allclose(q2, q - np.array([0.0, 0.12, -0.12]), rtol=1e-15)
    np.testing.assert_array_equal(st2["prev"], [0.0, 1.0, -1.0])
    # Adamax: m = (1 - b1) g, u = |g| + eps, bias correction 1 - b1.
    q, _ = ref.torch_adamax(p, g, lr=0.1)
    np.testing.assert_allclose(q, p - 0.1 * g / (np.abs(g) + 1e-8), rtol=1e-15)
    # RAdam's first step is unrectified: theta -= lr * g.
    q, _ = ref.torch_radam(p, g, lr=0.1)
    np.testing.assert_allclose(q, p - 0.1 * g, rtol=1e-15)
    # Adadelta: delta = sqrt(eps) / sqrt(0.1 g^2 + eps) * g.
    q, _ = ref.torch_adadelta(p, g)
    np.testing.assert_allclose(q, p - math.sqrt(1e-6) / np.sqrt(0.1 * g * g + 1e-6) * g, rtol=1e-14)
    # ASGD: theta (1 - lambd lr) - lr g; ax = theta (mu_0 = 1).
    q, st = ref.torch_asgd(p, g, lr=0.1, lambd=0.5)
    np.testing.assert_allclose(q, p * 0.95 - 0.1 * g, rtol=1e-15)
    np.testing.assert_array_equal(st["ax"], q)
    assert st["eta"] == pytest.approx(0.1 / 1.05**0.75)
    assert st["mu"] == 1.0
    # Adafactor on a vector, step 1: beta2_1 = 0, V = g^2, U = sign(g), RMS(U) = 1;
    # alpha = max(1e-3, RMS(p)) * min(lr, 1).
    q, st = ref.torch_adafactor(p, g, lr=0.01)
    alpha = math.sqrt(np.mean(p * p)) * 0.01
    np.testing.assert_allclose(q, p - alpha * np.sign(g), rtol=1e-14)
    np.testing.assert_allclose(st["variance"], g * g, rtol=1e-15)


def test_rprop_lr_zero_still_moves_by_the_minimum_step():
    # Not a no-op: the step size is clamped to step_sizes[0] at once.
    p = np.array([1.0, 2.0])
    q, st = ref.torch_rprop(p, np.array([1.0, -1.0]), lr=0.0)
    np.testing.assert_allclose(q, p - 1e-6 * np.array([1.0, -1.0]), rtol=1e-15)
    np.testing.assert_array_equal(st["step_size"], [1e-6, 1e-6])


def test_asgd_averages_after_t0():
    rng = np.random.default_rng(1)
    p = rng.standard_normal(5)
    state = None
    iterates = []
    for _ in range(12):
        p, state = ref.torch_asgd(p, rng.standard_normal(5), state, lr=0.05, t0=4)
        iterates.append(p)
    # Step t uses mu_{t-1} = 1 / max(1, t - 1 - t0): 1 up to step t0 + 2 = 6
    # (ax = theta), then 1/2, 1/3, ...: ax is the running mean of the
    # iterates from step 6 on.
    np.testing.assert_allclose(state["ax"], np.mean(iterates[5:], axis=0), rtol=1e-13)


def test_adamax_inf_norm_is_elementwise_max():
    # u_t = max(b2 u_{t-1}, |g| + eps): a big gradient dominates, then decays by b2.
    state = None
    p = np.zeros(2)
    _, state = ref.torch_adamax(p, np.array([10.0, 1.0]), state, betas=(0.9, 0.5), eps=0.0)
    _, state = ref.torch_adamax(p, np.array([1.0, 3.0]), state, betas=(0.9, 0.5), eps=0.0)
    np.testing.assert_array_equal(state["exp_inf"], [5.0, 3.0])


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

ALL_RULES = {
    ref.torch_nadam: {"mu_product", "exp_avg", "exp_avg_sq"},
    ref.torch_radam: {"exp_avg", "exp_avg_sq"},
    ref.torch_adamax: {"exp_avg", "exp_inf"},
    ref.torch_adadelta: {"square_avg", "acc_delta"},
    ref.torch_rprop: {"prev", "step_size"},
    ref.torch_asgd: {"eta", "mu", "ax"},
    ref.torch_adafactor: {"row_var", "col_var"},
    ref.torch_muon: {"momentum_buffer"},
}
STEP_KEY = {ref.torch_muon: set()}  # Muon keeps no step count
ARRAY_KEYS = {
    "exp_avg",
    "exp_avg_sq",
    "exp_inf",
    "square_avg",
    "acc_delta",
    "prev",
    "step_size",
    "ax",
    "row_var",
    "col_var",
    "variance",
    "momentum_buffer",
}
LR_ZERO_NOOP = [r for r in ALL_RULES if r is not ref.torch_rprop]
OPTIONS = {
    ref.torch_nadam: {"weight_decay": 0.1, "decoupled_weight_decay": True},
    ref.torch_radam: {"weight_decay": 0.1},
    ref.torch_adamax: {"weight_decay": 0.1},
    ref.torch_adadelta: {"weight_decay": 0.1},
    ref.torch_rprop: {},
    ref.torch_asgd: {"weight_decay": 0.1, "t0": 2},
    ref.torch_adafactor: {"weight_decay": 0.1},
    ref.torch_muon: {},
}


def _name(rule):
    return rule.__name__


@pytest.mark.parametrize("rule", LR_ZERO_NOOP, ids=_name)
def test_lr_zero_leaves_param_unchanged(rule, rng):
    p = rng.standard_normal((4, 6))
    q, state = p, None
    for _ in range(5):
        q, state = rule(q, rng.standard_normal((4, 6)), state, lr=0.0, **OPTIONS[rule])
    np.testing.assert_array_equal(q, p)


@pytest.mark.parametrize("rule", list(ALL_RULES), ids=_name)
def test_inputs_are_not_modified(rule, rng):
    p = rng.standard_normal((4, 6)).astype(np.float32)
    _, state = rule(p, rng.standard_normal((4, 6)).astype(np.float32), None, **OPTIONS[rule])
    p_copy = p.copy()
    g = rng.standard_normal((4, 6)).astype(np.float32)
    g_copy = g.copy()
    state_copy = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    _, new_state = rule(p, g, state, **OPTIONS[rule])
    np.testing.assert_array_equal(p, p_copy)
    np.testing.assert_array_equal(g, g_copy)
    assert state.keys() == state_copy.keys()
    for key, value in state.items():
        np.testing.assert_array_equal(value, state_copy[key], err_msg=key)
    assert new_state is not state


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", list(ALL_RULES), ids=_name)
def test_dtype_preserved_and_state_keys(rule, dtype, rng):
    p = rng.standard_normal((5, 3)).astype(dtype)
    state = None
    for _ in range(3):
        g = rng.standard_normal((5, 3))  # float64 grads are cast to the param's dtype
        p, state = rule(p, g, state, **OPTIONS[rule])
    assert p.dtype == dtype
    assert p.shape == (5, 3)
    assert np.all(np.isfinite(p))
    expected = ALL_RULES[rule] | STEP_KEY.get(rule, {"step"})
    assert set(state) == expected
    if "step" in state:
        assert type(state["step"]) is int
        assert state["step"] == 3
    for key, value in state.items():
        if key in ARRAY_KEYS:
            assert value.dtype == dtype, key
        elif key != "step":
            assert type(value) is float, key  # mu_product, eta, mu: Python floats


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", [r for r in ALL_RULES if r is not ref.torch_muon], ids=_name)
def test_float32_tracks_float64(rule, dtype, rng):
    # The float32 run stays within float32 rounding of the float64 one.
    p = rng.standard_normal(8)
    grads = [rng.standard_normal(8) for _ in range(10)]
    q64, _ = run_rule(rule, p, grads, OPTIONS[rule])
    q32, _ = run_rule(rule, p.astype(dtype), [g.astype(dtype) for g in grads], OPTIONS[rule])
    tol = 1e-4 if dtype is np.float32 else 0
    np.testing.assert_allclose(q32, q64, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("shape", "row", "col"),
    [
        ((7, 9), (7, 1), (1, 9)),
        ((3, 4, 5), (3, 4, 1), (3, 1, 5)),
        ((2, 1, 6, 2), (2, 1, 6, 1), (2, 1, 1, 2)),
    ],
)
def test_adafactor_factored_shapes(shape, row, col, rng):
    _, state = ref.torch_adafactor(rng.standard_normal(shape), rng.standard_normal(shape))
    assert set(state) == {"step", "row_var", "col_var"}
    assert state["row_var"].shape == row
    assert state["col_var"].shape == col


@pytest.mark.parametrize("shape", [(), (1,), (6,)], ids=str)
def test_adafactor_vectors_keep_full_variance(shape, rng):
    p = np.asarray(rng.standard_normal(shape))
    _, state = ref.torch_adafactor(p, np.asarray(rng.standard_normal(shape)))
    assert set(state) == {"step", "variance"}
    assert np.shape(state["variance"]) == shape


def test_adafactor_default_eps1_is_the_dtype_eps():
    # A gradient of 1e-3 * eps1 has V = g^2 < eps1^2, which is clamped to
    # eps1^2: U = g / eps1 = 1e-3 (the dtype's eps1 decides the step, which
    # would be 1000x larger with U = sign(g)); alpha = RMS(p) * lr = 0.01.
    for dtype in (np.float32, np.float64):
        eps1 = np.finfo(dtype).eps
        p = np.ones(4, dtype)
        g = np.full(4, eps1 * 1e-3, dtype)
        q, _ = ref.torch_adafactor(p, g, d=1e9)
        np.testing.assert_allclose(p - q, 0.01 * 1e-3, rtol=1e-2)


# ---------------------------------------------------------------------------
# PyTorch's Rosenbrock check (old test/optim/test_optim.py, _test_rosenbrock)
# ---------------------------------------------------------------------------


def drosenbrock(t):
    x, y = t
    return np.array([-400 * x * (y - x**2) - 2 * (1 - x), 200 * (y - x**2)])


@pytest.mark.parametrize(
    ("rule", "kw"),
    [
        (ref.torch_adadelta, {}),
        (ref.torch_adamax, {"lr": 1e-1}),
        (ref.torch_rprop, {"lr": 1e-3}),
        (ref.torch_asgd, {"lr": 1e-3}),
        (ref.torch_nadam, {"lr": 1e-2}),
        (ref.torch_radam, {"lr": 1e-3}),
        (ref.torch_adafactor, {}),
    ],
    ids=lambda v: v.__name__ if callable(v) else str(v),
)
def test_rosenbrock_gets_no_farther(rule, kw):
    params = np.array([1.5, 1.5])
    solution = np.array([1.0, 1.0])
    initial_dist = np.linalg.norm(params - solution)
    state = None
    for _ in range(2000):
        params, state = rule(params, drosenbrock(params), state, **kw)
    assert np.linalg.norm(params - solution) <= initial_dist


# ---------------------------------------------------------------------------
# Resuming from a mid-run state (as PyTorch's differentiable-optimizer tests
# do, with step = 10 and random moments)
# ---------------------------------------------------------------------------


def test_resume_from_state_matches_one_box_step(rng):
    p = rng.random(10)
    g = rng.random(10)
    m, v = rng.random(10), rng.random(10)
    state = {"step": 10, "exp_avg": m, "exp_avg_sq": v}
    q, st = ref.torch_radam(p, g, state, lr=0.9)
    b1, b2 = 0.9, 0.999
    m2 = b1 * m + (1 - b1) * g
    v2 = b2 * v + (1 - b2) * g * g
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * 11 * b2**11 / (1 - b2**11)
    assert rho_t > 5
    r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    want = p - 0.9 * m2 / (1 - b1**11) * r * math.sqrt(1 - b2**11) / (np.sqrt(v2) + 1e-8)
    assert_close(q, want)
    assert st["step"] == 11
    # NAdam from step 10 with a given mu_product.
    state = {"step": 10, "mu_product": 0.5, "exp_avg": m, "exp_avg_sq": v}
    q, st = ref.torch_nadam(p, g, state, lr=0.9)
    mu = 0.9 * (1 - 0.5 * 0.96 ** (11 * 4e-3))
    mu1 = 0.9 * (1 - 0.5 * 0.96 ** (12 * 4e-3))
    m_hat = mu1 * m2 / (1 - 0.5 * mu * mu1) + (1 - mu) * g / (1 - 0.5 * mu)
    want = p - 0.9 * m_hat / (np.sqrt(v2 / (1 - b2**11)) + 1e-8)
    assert_close(q, want)
    assert st["mu_product"] == pytest.approx(0.5 * mu, rel=1e-15)
