"""Update rules in pure NumPy: the lecture's (cs231n) forms and PyTorch's.

Two families, written for reading and for testing, not for speed:

* ``sgd``, ``sgd_momentum``, ``nesterov_momentum``, ``adagrad``,
  ``rmsprop``, ``adam``: the lecture's formulas in cs231n's style,
  ``update(w, dw, config) -> (next_w, config)``. ``config`` holds the
  hyperparameters and the state (velocity, cache, moments, ``t``); missing
  entries are filled with the defaults below. ``w`` is not modified.

* ``torch_sgd``, ``torch_adagrad``, ``torch_rmsprop``, ``torch_adam``,
  ``torch_adamw``: the algorithm boxes of ``torch.optim`` with PyTorch's
  argument names, defaults and order of operations (which decides the
  rounding), ``rule(param, grad, state, **hyper) -> (new_param, new_state)``.
  All arithmetic runs in the param's dtype; scalars are computed in Python
  floats (f64) and rounded to that dtype, as PyTorch does. ``lec7rs.optim``
  is tested against these.

Where the lecture's form and PyTorch's differ
----------------------------------------------
* Momentum: the lecture keeps a velocity ``v = rho * v - lr * dx`` and adds
  it; PyTorch keeps ``b = mu * b + g`` and subtracts ``lr * b``. With a
  constant lr, ``v = -lr * b``: the same trajectory. When lr changes, the
  lecture's velocity remembers old learning rates and PyTorch's does not.
* Nesterov: the lecture evaluates the gradient at the look-ahead point and
  uses the change of variables ``x~ = x + rho * v`` to write the update as
  ``x~ += -rho * v_old + (1 + rho) * v``. PyTorch's ``g + mu * b`` is the
  same update in those variables: the same trajectory for a constant lr.
* eps: the lecture, cs231n and PyTorch add eps outside the square root
  (``sqrt(v) + eps``); TensorFlow's RMSprop adds it inside, and
  TensorFlow's Adam adds an "epsilon hat" to the uncorrected ``sqrt(v)``.
  The lecture's slides use 1e-7; cs231n's code and PyTorch use 1e-8
  (1e-10 for PyTorch's Adagrad).
* Bias correction: both count ``t`` from 1 at the first update. The lecture
  divides the moments, ``m / (1 - beta1^t)`` and ``v / (1 - beta2^t)``;
  PyTorch folds the same factors into the step size and the denominator,
  ``lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``: equal in
  exact arithmetic, different in the last bits.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Config = dict[str, Any]
State = dict[str, Any]


# ---------------------------------------------------------------------------
# The lecture's forms (cs231n style)
# ---------------------------------------------------------------------------


def _config(config: Config | None, **defaults: Any) -> Config:
    config = {} if config is None else config
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def sgd(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """Vanilla SGD: ``next_w = w - learning_rate * dw``.

    config: ``learning_rate`` (1e-2).
    """
    config = _config(config, learning_rate=1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """SGD + momentum: ``v = momentum * v - learning_rate * dw; next_w = w + v``.

    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros).
    Same trajectory as ``torch.optim.SGD(momentum=...)`` for a constant lr.
    """
    config = _config(config, learning_rate=1e-2, momentum=0.9)
    v = config.get("velocity")
    v = np.zeros_like(w) if v is None else v
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def nesterov_momentum(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """Nesterov momentum in the look-ahead variables (the lecture's form)::

        v_prev = v
        v = momentum * v - learning_rate * dw
        next_w = w - momentum * v_prev + (1 + momentum) * v

    ``dw`` is the gradient at ``w``, which here is the look-ahead point.
    config: ``learning_rate`` (1e-2), ``momentum`` (0.9), ``velocity`` (zeros).
    Same trajectory as ``torch.optim.SGD(momentum=..., nesterov=True)`` for
    a constant lr.
    """
    config = _config(config, learning_rate=1e-2, momentum=0.9)
    v_prev = config.get("velocity")
    v_prev = np.zeros_like(w) if v_prev is None else v_prev
    mu = config["momentum"]
    v = mu * v_prev - config["learning_rate"] * dw
    config["velocity"] = v
    return w - mu * v_prev + (1 + mu) * v, config


def adagrad(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """AdaGrad: ``cache += dw * dw; next_w = w - lr * dw / (sqrt(cache) + eps)``.

    config: ``learning_rate`` (1e-2), ``epsilon`` (1e-7, the lecture's),
    ``cache`` (zeros). ``torch.optim.Adagrad`` with ``lr_decay=0`` and the
    same eps is the same rule.
    """
    config = _config(config, learning_rate=1e-2, epsilon=1e-7)
    cache = config.get("cache")
    cache = np.zeros_like(w) if cache is None else cache
    cache = cache + dw * dw
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """RMSProp: a leaky AdaGrad::

        cache = decay_rate * cache + (1 - decay_rate) * dw * dw
        next_w = w - learning_rate * dw / (sqrt(cache) + epsilon)

    config: ``learning_rate`` (1e-2), ``decay_rate`` (0.99), ``epsilon``
    (1e-8), ``cache`` (zeros). ``torch.optim.RMSprop(alpha=decay_rate)``
    is the same rule.
    """
    config = _config(config, learning_rate=1e-2, decay_rate=0.99, epsilon=1e-8)
    cache = config.get("cache")
    cache = np.zeros_like(w) if cache is None else cache
    rho = config["decay_rate"]
    cache = rho * cache + (1 - rho) * dw * dw
    config["cache"] = cache
    return w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"]), config


def adam(w: np.ndarray, dw: np.ndarray, config: Config | None = None):
    """Adam with bias correction (the lecture's full form)::

        t += 1
        m = beta1 * m + (1 - beta1) * dw
        v = beta2 * v + (1 - beta2) * dw * dw
        m_hat = m / (1 - beta1 ** t);  v_hat = v / (1 - beta2 ** t)
        next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config: ``learning_rate`` (1e-3), ``beta1`` (0.9), ``beta2`` (0.999),
    ``epsilon`` (1e-8), ``m``, ``v`` (zeros), ``t`` (0).
    """
    config = _config(config, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8, t=0)
    m = config.get("m")
    m = np.zeros_like(w) if m is None else m
    v = config.get("v")
    v = np.zeros_like(w) if v is None else v
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    m_hat = m / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    config.update(m=m, v=v, t=t)
    return w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"]), config


# ---------------------------------------------------------------------------
# PyTorch's rules (torch.optim algorithm boxes, single-tensor code path)
# ---------------------------------------------------------------------------


def _lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """ATen's ``lerp``: two formulas, picked by ``|weight| < 0.5``."""
    dt = start.dtype.type
    w = dt(weight)
    if abs(w) < 0.5:
        return start + w * (end - start)
    return end - (end - start) * (dt(1) - w)


def _prepare(param: np.ndarray, grad: np.ndarray, maximize: bool) -> tuple:
    dt = param.dtype.type
    g = np.asarray(grad, dtype=param.dtype)
    g = -g if maximize else g.copy()
    return dt, param.copy(), g


def torch_sgd(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0,
    dampening: float = 0,
    weight_decay: float = 0,
    nesterov: bool = False,
    maximize: bool = False,
):
    """``torch.optim.SGD``: state ``momentum_buffer`` (None before the first
    momentum step, when it is set to the gradient without dampening)."""
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    if momentum != 0:
        b = state.get("momentum_buffer")
        if b is None:
            b = g.copy()
        else:
            b = b * dt(momentum) + dt(1 - dampening) * g
        state["momentum_buffer"] = b
        g = g + dt(momentum) * b if nesterov else b
    return p + dt(-lr) * g, state


def torch_adagrad(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0,
    weight_decay: float = 0,
    initial_accumulator_value: float = 0,
    eps: float = 1e-10,
    maximize: bool = False,
):
    """``torch.optim.Adagrad``: state ``step``, ``sum``."""
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    step = state.get("step", 0) + 1
    s = state.get("sum")
    s = np.full_like(p, initial_accumulator_value) if s is None else s
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    clr = lr / (1 + (step - 1) * lr_decay)
    s = s + g * g
    std = np.sqrt(s) + dt(eps)
    state.update(step=step, sum=s)
    return p + dt(-clr) * g / std, state


def torch_rmsprop(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum: float = 0,
    centered: bool = False,
    maximize: bool = False,
):
    """``torch.optim.RMSprop``: state ``step``, ``square_avg``, and
    ``momentum_buffer`` / ``grad_avg`` when used."""
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    zeros = np.zeros_like(p)
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    v = state.get("square_avg", zeros)
    v = v * dt(alpha) + dt(1 - alpha) * g * g
    state.update(step=state.get("step", 0) + 1, square_avg=v)
    if centered:
        ga = _lerp(state.get("grad_avg", zeros), g, 1 - alpha)
        state["grad_avg"] = ga
        avg = np.sqrt(v + (-ga) * ga)
    else:
        avg = np.sqrt(v)
    avg = avg + dt(eps)
    if momentum > 0:
        b = state.get("momentum_buffer", zeros) * dt(momentum) + g / avg
        state["momentum_buffer"] = b
        return p + dt(-lr) * b, state
    return p + dt(-lr) * g / avg, state


def torch_adam(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    amsgrad: bool = False,
    maximize: bool = False,
    decoupled: bool = False,
    decoupled_weight_decay: bool = False,
):
    """``torch.optim.Adam`` (``decoupled=True`` or torch 2.x's
    ``decoupled_weight_decay=True``: ``torch.optim.AdamW``):
    state ``step``, ``exp_avg``, ``exp_avg_sq``, and ``max_exp_avg_sq`` with
    amsgrad."""
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    zeros = np.zeros_like(p)
    step = state.get("step", 0) + 1
    if weight_decay != 0:
        if decoupled or decoupled_weight_decay:
            p = p * dt(1 - lr * weight_decay)
        else:
            g = g + dt(weight_decay) * p
    m = _lerp(state.get("exp_avg", zeros), g, 1 - beta1)
    v = state.get("exp_avg_sq", zeros) * dt(beta2) + dt(1 - beta2) * g * g
    state.update(step=step, exp_avg=m, exp_avg_sq=v)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(bias_correction2)
    if amsgrad:
        v = np.maximum(state.get("max_exp_avg_sq", zeros), v)
        state["max_exp_avg_sq"] = v
    denom = np.sqrt(v) / dt(bias_correction2_sqrt) + dt(eps)
    return p + dt(-step_size) * m / denom, state


def torch_adamw(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
):
    """``torch.optim.AdamW``: Adam with ``p *= 1 - lr * weight_decay`` first."""
    return torch_adam(
        param,
        grad,
        state,
        lr=lr,
        betas=betas,
        eps=eps,
        weight_decay=weight_decay,
        amsgrad=amsgrad,
        maximize=maximize,
        decoupled=True,
    )
