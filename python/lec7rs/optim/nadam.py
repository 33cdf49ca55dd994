"""NAdam (``torch.optim.NAdam``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class NAdam(Optimizer):
    r"""Adam with Nesterov momentum (Dozat 2016), as ``torch.optim.NAdam``.

    Per element, with step count ``t`` (from 1, per param) and
    ``psi = momentum_decay``::

        g = -g                                    if maximize
        p = p * (1 - lr * weight_decay)           if decoupled_weight_decay
        g = g + weight_decay * p                  otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96^(t psi));  mu_{t+1} likewise
        mu_product = mu_product * mu_t            (per param, from 1)
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr (1 - mu_t) / (1 - mu_product) * g / d
        p = p - lr mu_{t+1} / (1 - mu_product mu_{t+1}) * m / d

    ``decoupled_weight_decay=True`` is NAdamW (the decay of AdamW).

    State per param: ``mu_product`` (a float; torch keeps a float32 0-d
    tensor, so torch's step sizes differ in about the 8th digit),
    ``exp_avg``, ``exp_avg_sq``; ``step`` in ``state_dict()``.
    """

    _rule = "nadam"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
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
