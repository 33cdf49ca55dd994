"""ASGD (``torch.optim.ASGD``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky 1992), as ``torch.optim.ASGD``.

    Per element, with step count ``t`` (from 1, per param)::

        g = -g                                 if maximize
        g = g + weight_decay * p               if weight_decay != 0
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + (p - ax) * mu                if mu != 1, else ax = p
        eta = lr / (1 + lambd * lr * t)^alpha  (for the next step)
        mu = 1 / max(1, t - t0)

    ``ax`` is the running average of the iterates from step ``t0`` on: use
    it for evaluation (e.g. swap it in with :class:`lec7rs.averaging`'s
    helpers). State per param: ``eta`` and ``mu`` (floats; torch keeps
    float32 0-d tensors), ``ax``; ``step`` in ``state_dict()``.
    """

    _rule = "asgd"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
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
