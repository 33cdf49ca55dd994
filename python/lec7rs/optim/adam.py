"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    r"""Adam: momentum on the gradient and RMSProp-style scaling, bias-corrected.

    The algorithm box of ``torch.optim.Adam``, per element, with step count
    ``t`` (from 1, per param)::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0 (L2 penalty)
        m = lerp(m, g, 1 - beta1)                = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                    if amsgrad, then v = v_max
        p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The lecture (cs231n) writes the bias correction on the moments,
    ``m_hat = m / (1 - beta1^t)``, ``v_hat = v / (1 - beta2^t)``,
    ``x -= lr * m_hat / (sqrt(v_hat) + eps)``: equal in exact arithmetic,
    PyTorch folds it into the step size and the denominator, as here. eps is
    added outside the root. ``t`` counts this param's steps, including the
    current one; the lecture's ``t`` is the same count.

    "Adam with beta1 = 0.9, beta2 = 0.999 and learning_rate = 1e-3 or 5e-4 is
    a great starting point for many models" (the lecture).

    ``decoupled_weight_decay=True`` is AdamW's rule (torch 2.x): the param
    is multiplied by ``1 - lr * weight_decay`` instead of the penalty on the
    gradient; bit-identical to :class:`AdamW` with the same arguments.

    State per param: ``exp_avg``, ``exp_avg_sq``, and ``max_exp_avg_sq``
    with amsgrad; ``step`` in ``state_dict()``.

    Example: the first step moves each element by about ``lr`` against the
    sign of its gradient (a zero gradient leaves it).

    >>> import numpy as np
    >>> from lec7rs.optim import Adam
    >>> w = np.ones(3, np.float32)
    >>> opt = Adam([w], lr=0.1)
    >>> opt.step([np.array([1.0, -2.0, 0.0], np.float32)])
    >>> w
    array([0.90000004, 1.1       , 1.        ], dtype=float32)
    """

    _rule = "adam"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
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


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter).

    As :class:`Adam`, but weight decay shrinks the param directly,
    ``p = p * (1 - lr * weight_decay)``, before the Adam update, instead of
    adding ``weight_decay * p`` to the gradient (an L2 penalty, which Adam's
    scaling would weaken for large-gradient weights). Default
    ``weight_decay=1e-2``, as ``torch.optim.AdamW``. Its groups hold
    ``decoupled_weight_decay=True``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        *,
        check_finite: bool = False,
        master_weights: bool = False,
        state_dtype: str | None = None,
        stochastic_rounding: bool = False,
        rng: Generator | None = None,
    ):
        hyper = {**self._pick(locals()), "decoupled_weight_decay": True}
        Optimizer.__init__(
            self, params, hyper, check_finite=check_finite, **self._precision(locals())
        )
