"""RAdam (``torch.optim.RAdam``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class RAdam(Optimizer):
    r"""Rectified Adam (Liu et al. 2020), as ``torch.optim.RAdam``.

    Per element, with step count ``t`` (from 1, per param)::

        g = -g                                    if maximize
        p = p * (1 - lr * weight_decay)           if decoupled_weight_decay
        g = g + weight_decay * p                  otherwise
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        if rho_t > 5:   (the variance is tractable: rectify)
            l = sqrt(1 - beta2^t) / (sqrt(v) + eps)
            r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p = p - lr * m_hat * l * r
        else:           (momentum SGD for the first steps)
            p = p - lr * m_hat

    With the default ``beta2 = 0.999`` the first 5 steps are not rectified.
    State per param: ``exp_avg``, ``exp_avg_sq``; ``step`` in
    ``state_dict()``.
    """

    _rule = "radam"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        *,
        check_finite: bool = False,
        master_weights: bool = False,
        state_dtype: str | None = None,
        stochastic_rounding: bool = False,
        rng: Generator | None = None,
    ):
        super().__init__(
            params, self._pick(locals()), check_finite=check_finite, **self._precision(locals())
        )
