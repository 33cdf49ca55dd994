"""RMSprop (``torch.optim.RMSprop``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class RMSprop(Optimizer):
    r"""Per-element step sizes from a leaky average of squared gradients.

    The algorithm box of ``torch.optim.RMSprop``, per element::

        g = -g                                  if maximize
        g = g + weight_decay * p                if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            g_avg = lerp(g_avg, g, 1 - alpha);  v~ = v - g_avg * g_avg
        d = sqrt(v~) + eps                      (v~ = v when not centered)
        if momentum > 0:
            b = momentum * b + g / d;  p = p - lr * b
        else:
            p = p - lr * g / d

    The lecture's RMSProp, ``grad_squared = decay_rate * grad_squared +
    (1 - decay_rate) * dx * dx; x -= lr * dx / (sqrt(grad_squared) + 1e-7)``,
    is the uncentered rule without momentum, ``alpha = decay_rate``. Like
    PyTorch, eps is added outside the square root (TensorFlow adds it inside).

    State per param: ``square_avg``, plus ``momentum_buffer`` (momentum > 0)
    and ``grad_avg`` (centered).
    """

    _rule = "rmsprop"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
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
