"""SGD with momentum and Nesterov momentum (``torch.optim.SGD``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with (Nesterov) momentum.

    The algorithm box of ``torch.optim.SGD``, per element, with
    :math:`\mu` = momentum, :math:`\tau` = dampening, :math:`\lambda` = weight_decay::

        g = -g                        if maximize
        g = g + lambda * p            if weight_decay != 0
        b = g                         first momentum step (no dampening)
        b = mu * b + (1 - tau) * g    later steps
        g = g + mu * b                if nesterov, else g = b
        p = p - lr * g

    The lecture's momentum, ``v = rho * v - lr * dx; x += v``, is the same
    trajectory for a constant lr (``v = -lr * b``). Its Nesterov form,
    ``v_old = v; v = rho * v - lr * dx; x += -rho * v_old + (1 + rho) * v``,
    tracks the look-ahead point ``x + rho * v``: PyTorch's rule above is that
    update written in the look-ahead variables, so both follow the same
    trajectory too. Nesterov needs momentum > 0 and dampening = 0.

    State per param: ``momentum_buffer`` (when momentum != 0).

    Example: with momentum the second step moves further than the first
    (``b = 1``, then ``b = 0.9 * 1 + 1``).

    >>> import numpy as np
    >>> from lec7rs.optim import SGD
    >>> w = np.zeros(2, np.float32)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step([np.ones(2, np.float32)])
    >>> w
    array([-0.29, -0.29], dtype=float32)
    """

    _rule = "sgd"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
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
