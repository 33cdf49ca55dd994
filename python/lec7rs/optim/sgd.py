"""SGD with momentum and Nesterov momentum (``torch.optim.SGD``)."""

from __future__ import annotations

from typing import Any, ClassVar

from .. import _core
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
    """

    _slots: ClassVar[tuple[str, ...]] = ("momentum_buffer",)
    _hyper_keys: ClassVar[tuple[str, ...]] = (
        "lr",
        "momentum",
        "dampening",
        "weight_decay",
        "nesterov",
        "maximize",
    )
    _kernel = staticmethod(_core.sgd_step)
    _checker = staticmethod(_core.sgd_check)

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
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults, check_finite=check_finite)

    def _hyper(self, g: Any) -> tuple:
        return (
            g["lr"],
            g["momentum"],
            g["dampening"],
            g["weight_decay"],
            g["nesterov"],
            g["maximize"],
            g["frozen"],
        )
