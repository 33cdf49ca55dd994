"""Adagrad (``torch.optim.Adagrad``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    r"""Per-element step sizes from the running sum of squared gradients.

    The algorithm box of ``torch.optim.Adagrad``, per element, with step
    count ``t`` (from 1, per param)::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g                        (starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(sum) + eps)

    The lecture's AdaGrad, ``grad_squared += dx * dx;
    x -= lr * dx / (sqrt(grad_squared) + 1e-7)``, is this rule with
    ``lr_decay = 0`` and ``eps = 1e-7`` (PyTorch's default eps is 1e-10).

    State per param: ``sum``, created at the param's first step filled with
    ``initial_accumulator_value``.
    """

    _rule = "adagrad"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
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
