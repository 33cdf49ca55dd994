"""Adadelta (``torch.optim.Adadelta``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler 2012), as ``torch.optim.Adadelta``.

    Per element::

        g = -g                                if maximize
        g = g + weight_decay * p              if weight_decay != 0
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    The ratio of the two running RMS values gives the step its units;
    ``lr`` (1 by default) scales it, as in torch.
    State per param: ``square_avg``, ``acc_delta``; ``step`` in
    ``state_dict()``.
    """

    _rule = "adadelta"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
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
