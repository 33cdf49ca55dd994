"""Lion (Chen et al. 2023)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Lion(Optimizer):
    r"""Lion, "EvoLved Sign Momentum" (Chen et al. 2023, "Symbolic Discovery
    of Optimization Algorithms", Algorithm 2).

    Per element, in the order of the authors' lion-pytorch::

        g = -g                                         if maximize
        p = p * (1 - lr * weight_decay)                (decoupled)
        p = p - lr * sign(beta1 * m + (1 - beta1) * g)
        m = beta2 * m + (1 - beta2) * g

    Every element moves by exactly ``lr`` (or 0): use an lr 3-10x smaller
    than AdamW's and a weight decay 3-10x larger (the paper's advice). One
    state array (``exp_avg``) instead of Adam's two. ``sign(0) = 0``; NaN
    propagates. Implementations in the wild (optax's ``lion``, timm's
    ``Lion``, default ``lr=1e-4`` as here) agree on this update.
    """

    _rule = "lion"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
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
