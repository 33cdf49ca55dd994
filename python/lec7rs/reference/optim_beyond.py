"""Pure-NumPy references of the optimizers beyond torch.optim (the ones
people install extra packages for), in the order of operations of their
reference implementations, with the paper's algorithm box in each
docstring. ``rule(param, grad, state, **hyper) -> (new_param, new_state)``
as in ``reference.optim``."""

from __future__ import annotations

import numpy as np

from .optim import State, _prepare


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
