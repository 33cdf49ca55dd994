"""Adamax (``torch.optim.Adamax``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Adamax(Optimizer):
    r"""Adam with the infinity norm (Kingma & Ba 2015, section 7), as
    ``torch.optim.Adamax``.

    Per element, with step count ``t`` (from 1, per param)::

        g = -g                                if maximize
        g = g + weight_decay * p              if weight_decay != 0
        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)         (NaN propagates)
        p = p - lr / (1 - beta1^t) * m / u

    State per param: ``exp_avg``, ``exp_inf``; ``step`` in ``state_dict()``.
    """

    _rule = "adamax"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
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
