"""Gradient norms and clipping with the semantics of ``torch.nn.utils``:
``get_total_norm``, ``clip_grads_with_norm_``, ``clip_grad_norm_`` and
``clip_grad_value_``, over a list or dict of NumPy arrays (``None`` entries
are skipped, as torch skips params without a grad).

The norm is one parallel pass over all arrays with fixed reduction trees:
bit-identical for any thread count and SIMD level. It is computed in
float64 above fixed-order partial sums in the grads' dtype (torch computes
in the grads' dtype), as ``(sum_i sum_j |g_ij|^p)^(1/p)``, which is torch's
norm of the per-array norms; ``norm_type=inf`` is the largest ``|g_ij|``.
Empty arrays add nothing, the inf-norm included (an empty list has norm 0).

Clipping without writing the grads folds the factor into the step::

    c = min(1.0, max_norm / (get_total_norm(grads) + 1e-6))
    opt.step(grads, grad_scale=c)

gives the same params, bit for bit, as ``clip_grad_norm_(grads, max_norm)``
followed by ``opt.step(grads)``.

Differences from torch: ``error_if_nonfinite=True`` raises ``ValueError``
(torch: RuntimeError); ``norm_type`` must be a number in ``(0, inf]``;
``clip_value`` must be ``>= 0`` (torch's clamp with ``min > max`` sets every
element to ``-clip_value``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

from .. import _core

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]

GradsLike = Union[np.ndarray, list, tuple, Mapping[Any, Any]]


def _arrays(grads: GradsLike) -> tuple[list, list]:
    """The arrays of ``grads`` (None skipped) and their labels."""
    if isinstance(grads, np.ndarray):
        return [grads], ["[0]"]
    if isinstance(grads, Mapping):
        items = list(grads.items())
    elif isinstance(grads, (list, tuple)):
        items = list(enumerate(grads))
    else:
        raise TypeError(
            f"grads must be an array, a list or a dict of arrays, got {type(grads).__name__}"
        )
    arrays, labels = [], []
    for key, g in items:
        if g is not None:
            arrays.append(g)
            labels.append(f"[{key!r}]")
    return arrays, labels


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def get_total_norm(
    grads: GradsLike, norm_type: float = 2.0, error_if_nonfinite: bool = False
) -> float:
    """The ``norm_type``-norm of all grads together, as a float."""
    p = _number("norm_type", norm_type)
    arrays, labels = _arrays(grads)
    total = _core.grad_norm(arrays, p, labels)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(
            f"the total norm of order {p} of the gradients is {total}: "
            "error_if_nonfinite=True refuses a non-finite norm"
        )
    return total


def clip_grads_with_norm_(grads: GradsLike, max_norm: float, total_norm: float) -> None:
    """Multiplies every grad, in place, by ``min(1, max_norm / (total_norm +
    1e-6))``, computed in float64 and rounded once to the grads' dtype."""
    max_norm = _number("max_norm", max_norm)
    total_norm = _number("total_norm", total_norm)
    coef = max_norm / (total_norm + 1e-6)
    if coef >= 1.0:
        return  # torch clamps the factor to 1: the grads stay as they are
    arrays, labels = _arrays(grads)
    _core.grads_scale(arrays, coef, labels)


def clip_grad_norm_(
    grads: GradsLike,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scales the grads in place so that their total norm is at most
    ``max_norm``; returns the total norm before clipping."""
    max_norm = _number("max_norm", max_norm)
    total = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(grads, max_norm, total)
    return total


def clip_grad_value_(grads: GradsLike, clip_value: float) -> None:
    """Clamps every grad element, in place, to ``[-clip_value, clip_value]``
    (NaN stays NaN)."""
    v = _number("clip_value", clip_value)
    if not v >= 0:
        raise ValueError(f"clip_value must be >= 0, got {v}")
    arrays, labels = _arrays(grads)
    _core.grads_clamp(arrays, v, labels)
