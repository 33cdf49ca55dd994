"""Muon (``torch.optim.Muon``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..random import Generator
from .optimizer import Optimizer, ParamsT


class Muon(Optimizer):
    r"""Momentum orthogonalized by Newton-Schulz, for 2-D params (matrices).

    The algorithm box of ``torch.optim.Muon`` (Keller Jordan's optimizer),
    per param of shape ``(rows, cols)``::

        B = lerp(B, g, 1 - momentum)             momentum_buffer
        U = lerp(g, B, momentum) if nesterov else B
        X = U (transposed when rows > cols);  X = X / max(||X||_F, eps)
        ns_steps times:                          (a, b, c) = ns_coefficients
            A = X @ X.T;  A = b * A + c * A @ A;  X = a * X + A @ X
        p = p * (1 - lr * weight_decay)
        p = p - lr' * X (transposed back)

    with ``lr' = lr * sqrt(max(1, rows / cols))`` for ``adjust_lr_fn`` None
    or ``"original"`` and ``0.2 * lr * sqrt(max(rows, cols))`` for
    ``"match_rms_adamw"``; the weight decay uses the unadjusted ``lr``. The
    quintic iteration drives the singular values of the update towards 1
    (into a band around it, not exactly), an approximate orthogonalization.
    torch keeps the buffer as a moving average (``lerp``): ``1 - momentum``
    times the box's ``mu * B + g``, which the normalization cancels. There
    is no ``maximize``.

    Params must be 2-D: any other shape is a ``ValueError`` naming the param
    (as torch, which leaves biases and embeddings to another optimizer).

    Newton-Schulz runs in the params' dtype (torch: bfloat16), its products
    on ``matrixmultiply``'s GEMM, one thread per param; the params of a step
    run in parallel. Results are bit-identical for any thread count and any
    ``LEC7RS_SIMD`` level on one CPU; the GEMM picks its kernel from the
    CPU's own features, so results may differ in the last bits between CPUs
    with and without FMA (or AVX-512). They agree with torch, and with
    ``lec7rs.reference.torch_muon`` (NumPy's BLAS), to rounding.

    State per param: ``momentum_buffer``; like torch's, the state dict holds
    no ``step``.
    """

    _rule = "muon"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
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

    def _add_param_group(self, param_group: Mapping[str, Any]) -> None:
        raw = param_group.get("params") if isinstance(param_group, Mapping) else None
        if isinstance(raw, (list, tuple, Mapping)):
            start = len(self._params)
            items = raw.items() if isinstance(raw, Mapping) else enumerate(raw, start)
            for key, array in items:
                if isinstance(array, np.ndarray) and array.ndim != 2:
                    raise ValueError(
                        f"params[{key!r}]: Muon only supports 2-D params, got shape {array.shape}"
                    )
        super()._add_param_group(param_group)

    def state_dict(self) -> dict:
        """As :meth:`Optimizer.state_dict`, without ``step`` (torch's Muon
        keeps no step count, and its update does not use one)."""
        d = super().state_dict()
        for entry in d["state"].values():
            entry.pop("step", None)
        d["state"] = {i: entry for i, entry in d["state"].items() if entry}
        return d
