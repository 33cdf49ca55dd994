"""Adafactor (``torch.optim.Adafactor``)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Adafactor(Optimizer):
    r"""Adam-like steps with a factored second moment and a relative step size.

    The algorithm box of ``torch.optim.Adafactor`` (Shazeer & Stern 2018,
    as torch writes it), with step count ``t`` (from 1, per param)::

        g = -g                                     if maximize
        w = t ** beta2_decay                       (= 1 - beta2_t)
        rho = min(lr, 1 / sqrt(t))
        alpha = max(eps[1], RMS(p)) * rho          (p before the weight decay)
        p = p * (1 - lr * weight_decay)            if weight_decay != 0
        params of 2+ dims, G of shape (..., n, m):
            R = lerp(R, mean(g * g, dim=-1), w)    row_var, shape (..., n, 1)
            C = lerp(C, mean(g * g, dim=-2), w)    col_var, shape (..., 1, m)
            V = (R @ C) / max(mean(R, dim=-2), eps[0])
        params of 0 or 1 dims:
            V = v = lerp(v, g * g, w)              variance, the param's shape
        U = g / sqrt(max(V, eps[0] ** 2))
        p = p - alpha / max(1, RMS(U) / d) * U

    ``eps[0] = None`` is the machine epsilon of the params' dtype. The means
    of ``g * g`` are torch's ``norm(g, dim)**2 / size``; RMS is ``norm /
    sqrt(numel)``. Unlike Adam there is no first moment and no bias
    correction: ``w = 1`` at the first step, and the step size ``alpha``
    follows the param's own scale (``eps[1]`` floors it for params near 0).

    The step needs whole-tensor reductions (the row and column sums of
    ``g * g``, ``||p||``, then ``||U||``) before it can write, so a matrix
    takes three passes over memory and a vector two, all params together in
    each. The reductions have a fixed order, so results are bit-identical
    for any thread count and SIMD level; they agree with torch and with
    ``lec7rs.reference.torch_adafactor`` to rounding (those sum in other
    orders). A param with no elements is left as it is.

    State per param: ``row_var`` and ``col_var`` (2+ dims) or ``variance``;
    ``step`` in ``state_dict()``.
    """

    _rule = "adafactor"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
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
