"""LARS (You et al. 2017)."""

from __future__ import annotations

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class LARS(Optimizer):
    r"""LARS, layer-wise adaptive rate scaling (You et al. 2017, "Large Batch
    Training of Convolutional Networks", Algorithm 1).

    Per tensor, a local learning rate from the norms of the param and its
    grad, then torch's SGD momentum (and Nesterov) on the scaled grad::

        local = trust_coefficient * ||p|| / (||g|| + weight_decay * ||p|| + eps)
                                                  (1 where ||p|| or ||g|| is 0)
        d = (lr * local) * (g + weight_decay * p)
        b = d                                     first step
        b = momentum * b + d                      later steps
        d = d + momentum * b                      if nesterov, else d = b
        p = p - d

    As in the paper, the global ``lr`` is inside the momentum buffer (timm's
    ``Lars`` multiplies it in after the buffer instead: the same trajectory
    for a constant lr, a different one under a schedule, and a buffer
    ``lr`` times smaller). timm's ``trust_clip`` (LARC) is not offered.
    ``momentum=0`` keeps no buffer. The norms come from a deterministic
    reduction: bit-identical for any thread count and SIMD level.

    State per param: ``momentum_buffer`` (when momentum != 0).
    """

    _rule = "lars"

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 1e-3,
        eps: float = 1e-8,
        nesterov: bool = False,
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
