"""LAMB (You et al. 2020)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class LAMB(Optimizer):
    r"""LAMB, layer-wise adaptive moments for large batches (You et al. 2020,
    "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", Algorithm 2).

    Adam's moments, then a per-tensor trust ratio, per element in the
    order of timm's ``Lamb``::

        g = -g                                      if maximize
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)
        u = u + weight_decay * p
        r = ||p|| / ||u||
        p = p - lr * (r * u)

    with ``bc = 1 - beta^t`` (1 without ``bias_correction``), ``r = 1``
    where either norm is 0, and ``r = min(r, 1)`` with ``trust_clip``.

    ``t`` is each param's own step count. The trust ratio is applied
    whatever the weight decay (timm's ``always_adapt=True``; the paper
    applies it always too), and there is no global gradient clipping
    (timm's ``max_grad_norm=1.0`` default; use :func:`clip_grad_norm_` or
    ``step(grads, grad_scale=...)`` for it). The two norms come from a
    deterministic reduction (a fixed tree, in float64 above the chunk
    sums): bit-identical for any thread count and SIMD level. A step is two
    passes over memory: the moments and the norms, then the update.

    State per param: ``exp_avg``, ``exp_avg_sq``.
    """

    _rule = "lamb"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
        trust_clip: bool = False,
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
