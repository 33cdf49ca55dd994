"""Rprop (``torch.optim.Rprop``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Rprop(Optimizer):
    r"""Resilient backpropagation (Riedmiller & Braun 1993), as
    ``torch.optim.Rprop``: per-element step sizes driven by the sign of the
    gradient only (full-batch training).

    Per element, ``(eta-, eta+) = etas``, ``(lo, hi) = step_sizes``::

        g = -g                                     if maximize
        s = eta+ where g * prev > 0, eta- where < 0, 1 where 0
        step_size = clip(step_size * s, lo, hi)    (starts at lr)
        g = 0 where s == eta-                      (the sign flipped: no step)
        p = p - sign(g) * step_size;  prev = g

    ``lr`` only sets the initial step size. There is no weight decay.
    State per param: ``prev``, ``step_size``; ``step`` in ``state_dict()``.
    """

    _rule = "rprop"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
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
