"""Pure-NumPy references of the optimizers beyond torch.optim (the ones
people install extra packages for), in the order of operations of their
reference implementations, with the paper's algorithm box in each
docstring. ``rule(param, grad, state, **hyper) -> (new_param, new_state)``
as in ``reference.optim``."""

from __future__ import annotations

import math

import numpy as np

from .optim import State, _lerp, _prepare


def lion(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-4,
    betas: tuple = (0.9, 0.99),
    weight_decay: float = 0.0,
    maximize: bool = False,
):
    r"""Lion (Chen et al. 2023, Algorithm 2): state ``exp_avg``.

    The paper's box (per element)::

        c_t = beta1 m_{t-1} + (1 - beta1) g_t
        theta_t = theta_{t-1} - lr (sign(c_t) + lambda theta_{t-1})
        m_t = beta2 m_{t-1} + (1 - beta2) g_t

    lion-pytorch's order, followed here (and by lec7rs.optim.Lion):
    ``p *= 1 - lr * wd``; ``p += -lr * sign(m * beta1 + (1 - beta1) * g)``;
    ``m = m * beta2 + (1 - beta2) * g``. The box's ``lr * lambda * theta``
    with the same theta is the same decay, applied first.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    m = state.get("exp_avg")
    m = np.zeros_like(p) if m is None else m
    if weight_decay != 0:
        p = p * dt(1 - lr * weight_decay)
    c = m * dt(beta1) + dt(1 - beta1) * g
    p = p + dt(-lr) * np.sign(c)
    m = m * dt(beta2) + dt(1 - beta2) * g
    state["exp_avg"] = m
    state["step"] = state.get("step", 0) + 1
    return p, state


# -- the deterministic sums of lec7rs's norms -------------------------------------

_CHUNK = 16384  # lec7rs.parallel's fixed chunk
_BLOCK = 32  # accumulator slots per chunk (optimize/reduce.rs)


def fixed_sum(terms: np.ndarray) -> float:
    """The sum of ``terms`` in the order of lec7rs's reductions (the norms
    of LAMB, LARS and gradient clipping): chunks of 16384 elements; in a
    chunk, element ``j`` goes to slot ``j % 32`` in order, in the terms'
    dtype; the 32 slots are summed in float64 in a fixed pairwise tree and
    the chunks added in order. Bit-identical to the kernels' sums."""
    flat = np.ascontiguousarray(terms).ravel()
    dt = flat.dtype
    total = 0.0
    for start in range(0, max(flat.size, 1), _CHUNK):
        c = flat[start : start + _CHUNK]
        body = c.size - c.size % _BLOCK
        slots = np.zeros(_BLOCK, dtype=dt)
        if body:
            # cumsum accumulates row after row, in the terms' dtype.
            slots = np.cumsum(c[:body].reshape(-1, _BLOCK), axis=0, dtype=dt)[-1].copy()
        slots[: c.size - body] += c[body:]
        s = slots.astype(np.float64)
        w = _BLOCK // 2
        while w:
            s[:w] += s[w : 2 * w]
            w //= 2
        total += s[0]
    return float(total)


def _trust_ratio(p_sq: float, u_sq: float, clip: bool) -> float:
    """``||p|| / ||u||``, 1 unless both are > 0; clipped at 1 with ``clip``."""
    pn, un = math.sqrt(p_sq), math.sqrt(u_sq)
    r = pn / un if pn > 0 and un > 0 else 1.0
    return 1.0 if clip and r > 1.0 else r


def lamb(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-6,
    weight_decay: float = 0.0,
    bias_correction: bool = True,
    trust_clip: bool = False,
    maximize: bool = False,
):
    r"""LAMB (You et al. 2020, Algorithm 2): state ``exp_avg``, ``exp_avg_sq``.

    The paper's box (per layer, phi the identity)::

        m_t = beta1 m_{t-1} + (1 - beta1) g_t
        v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        m_t = m_t / (1 - beta1^t);  v_t = v_t / (1 - beta2^t)
        r_t = m_t / (sqrt(v_t) + eps)
        x_{t+1} = x_t - lr * phi(||x_t||) / ||r_t + lambda x_t|| * (r_t + lambda x_t)

    timm's order, followed here: ``u = (m / bc1) / (sqrt(v) / sqrt(bc2) +
    eps)`` (the same quantity), ``u += wd * p``, ``p -= lr * (u * r)``.
    Where implementations differ: timm's ``Lamb`` applies the trust ratio
    only when weight_decay != 0 unless ``always_adapt=True`` (here and in the
    paper: always), clips the global grad norm to 1 first by default
    (``max_grad_norm``; not here), and its ``trust_clip`` is ``min(r, 1)``
    (here too); NVIDIA's apex FusedLAMB also clips the global norm and
    offers ``adam_w_mode``. The norms are summed by :func:`fixed_sum`.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    t = state.get("step", 0) + 1
    m = state.get("exp_avg")
    m = np.zeros_like(p) if m is None else m
    v = state.get("exp_avg_sq")
    v = np.zeros_like(p) if v is None else v
    bc1, bc2 = (1 - beta1**t, 1 - beta2**t) if bias_correction else (1.0, 1.0)
    m = m * dt(beta1) + dt(1 - beta1) * g
    v = v * dt(beta2) + dt(1 - beta2) * g * g
    u = (m / dt(bc1)) / (np.sqrt(v) / dt(math.sqrt(bc2)) + dt(eps))
    if weight_decay != 0:
        u = u + dt(weight_decay) * p
    r = _trust_ratio(fixed_sum(p * p), fixed_sum(u * u), trust_clip)
    p = p + dt(-lr) * (u * dt(r))
    state.update(exp_avg=m, exp_avg_sq=v, step=t)
    return p, state


def lars(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    trust_coefficient: float = 1e-3,
    eps: float = 1e-8,
    nesterov: bool = False,
):
    r"""LARS (You et al. 2017, Algorithm 1): state ``momentum_buffer``.

    The paper's box (per layer l, global rate gamma_t, eta the trust
    coefficient)::

        lambda^l = eta ||w^l|| / (||grad^l|| + beta ||w^l||)
        v^l = m v^l + gamma_t lambda^l (grad^l + beta w^l)
        w^l = w^l - v^l

    with ``eps`` added to the denominator, a local rate of 1 where either
    norm is 0 (timm's and most implementations' guard), and torch's SGD
    momentum: the buffer starts as the first scaled grad, and Nesterov
    adds ``momentum * v`` to the scaled grad. Where implementations differ:
    timm's ``Lars`` keeps the global lr out of the buffer (``p -= lr * v``)
    and adapts only with weight decay unless ``always_adapt=True``; NVIDIA's
    LARC clips the local rate (``trust_clip``); many skip biases and norms
    (here: every param of the group; exclude them with a param group).
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, False)
    pn, gn = math.sqrt(fixed_sum(p * p)), math.sqrt(fixed_sum(g * g))
    local = trust_coefficient * pn / (gn + weight_decay * pn + eps) if pn > 0 and gn > 0 else 1.0
    d = g + dt(weight_decay) * p if weight_decay != 0 else g
    d = d * dt(lr * local)
    if momentum != 0:
        b = state.get("momentum_buffer")
        b = d.copy() if b is None else b * dt(momentum) + dt(1) * d
        d = d + dt(momentum) * b if nesterov else b
        state["momentum_buffer"] = b
    p = p + dt(-1.0) * d
    state["step"] = state.get("step", 0) + 1
    return p, state


# -- schedule-free ----------------------------------------------------------------


def _schedule_free_schedule(
    state: dict, lr: float, warmup_steps: int, r: float, weight_lr_power: float
) -> tuple[int, float, float]:
    """The reference's per-group schedule (kept in the reference state under
    ``_k``, ``_lr_max``, ``_weight_sum``): returns ``(k, lr_k, ckp1)``."""
    k = state.get("_k", 0)
    sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
    lr_k = lr * sched
    lr_max = max(lr_k, state.get("_lr_max", -1.0))
    weight = ((k + 1) ** r) * (lr_max**weight_lr_power)
    weight_sum = state.get("_weight_sum", 0.0) + weight
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
    state.update(_k=k + 1, _lr_max=lr_max, _weight_sum=weight_sum)
    return k, lr_k, ckp1


def _schedule_free_y_z(y, z, g, dt, beta1, lr_k, ckp1, weight_decay):
    if weight_decay != 0:
        g = g + dt(weight_decay) * y
    y = _lerp(y, z, ckp1) + dt(lr_k * (beta1 * (1 - ckp1) - 1)) * g
    z = z - dt(lr_k) * g
    return y, z


def schedule_free_adamw(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 2.5e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
):
    r"""Schedule-free AdamW (Defazio et al. 2024, Algorithm 1 with Adam's
    second moment): state ``z``, ``exp_avg_sq``; ``param`` is ``y``.

    The paper's box (c_{t+1} = weight_{t+1} / sum of the weights)::

        y_t = (1 - beta1) z_t + beta1 x_t
        z_{t+1} = z_t - gamma_t grad f(y_t)   (Adam-normalised, wd at y)
        x_{t+1} = (1 - c_{t+1}) x_t + c_{t+1} z_{t+1}

    The reference implementation (facebookresearch/schedule_free,
    ``AdamWScheduleFree``), followed here, keeps only y and z and moves y
    in place: ``y = lerp(y, z, c) + lr_k (beta1 (1 - c) - 1) g``, ``z -= lr_k
    g``, with ``g = g / (sqrt(v / (1 - beta2^(k+1))) + eps) + wd * y``.
    The warmup and weights: ``lr_k = lr * min(1, (k + 1) / warmup_steps)``,
    weight ``(k + 1)^r * max(lr_k so far)^weight_lr_power``. The reference's
    closure and paper versions (``*_closure.py``, ``*_paper.py``) store x
    instead and give the same sequence up to rounding.
    """
    state = dict(state or {})
    dt, y, g = _prepare(param, grad, False)
    beta1, beta2 = betas
    k, lr_k, ckp1 = _schedule_free_schedule(state, lr, warmup_steps, r, weight_lr_power)
    z = state.get("z")
    z = y.copy() if z is None else z
    v = state.get("exp_avg_sq")
    v = np.zeros_like(y) if v is None else v
    v = v * dt(beta2) + dt(1 - beta2) * g * g
    g = g / (np.sqrt(v / dt(1 - beta2 ** (k + 1))) + dt(eps))
    y, z = _schedule_free_y_z(y, z, g, dt, beta1, lr_k, ckp1, weight_decay)
    state.update(z=z, exp_avg_sq=v, step=state.get("step", 0) + 1)
    return y, state


def schedule_free_sgd(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1.0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    warmup_steps: int = 0,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
):
    r"""Schedule-free SGD (Defazio et al. 2024; the reference's
    ``SGDScheduleFree``): state ``z``; ``param`` is ``y``. As
    :func:`schedule_free_adamw` with the raw grad and ``momentum`` for
    ``beta1``."""
    state = dict(state or {})
    dt, y, g = _prepare(param, grad, False)
    _, lr_k, ckp1 = _schedule_free_schedule(state, lr, warmup_steps, r, weight_lr_power)
    z = state.get("z")
    z = y.copy() if z is None else z
    y, z = _schedule_free_y_z(y, z, g, dt, momentum, lr_k, ckp1, weight_decay)
    state.update(z=z, step=state.get("step", 0) + 1)
    return y, state


def schedule_free_x(y: np.ndarray, z: np.ndarray, beta1: float) -> np.ndarray:
    """The average ``x`` from ``y`` and ``z`` (the reference's ``eval()``):
    ``lerp(y, z, 1 - 1 / beta1)``."""
    return _lerp(y, z, 1 - 1 / beta1)


def lookahead_sync(slow: np.ndarray, fast: np.ndarray, alpha: float) -> np.ndarray:
    r"""Lookahead (Zhang et al. 2019, Algorithm 1): every k inner steps,
    ``phi = phi + alpha (theta - phi)``, then ``theta = phi``. Returns the new
    slow (and fast) weights."""
    dt = slow.dtype.type
    return slow + dt(alpha) * (fast - slow)
