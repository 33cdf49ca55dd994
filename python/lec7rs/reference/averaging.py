"""Polyak averaging in pure NumPy: the rules ``lec7rs.averaging.PolyakAverage``
implements in Rust, with ``torch.optim.swa_utils``' order of operations.
Arithmetic runs in the average's dtype; scalars are rounded to it."""

from __future__ import annotations

import numpy as np

from .optim import _lerp


def polyak_update(
    average: np.ndarray, param: np.ndarray, n_averaged: int, decay: float | None = None
) -> np.ndarray:
    """The average after folding in ``param``; ``n_averaged`` updates so far.

    * ``n_averaged == 0``: a copy of ``param`` (both modes).
    * ``decay=None``: ``average + (param - average) / (n_averaged + 1)``, the
      running mean (``AveragedModel``'s default ``get_swa_avg_fn``).
    * ``decay``: ``lerp(average, param, 1 - decay)``, the exponential moving
      average (``get_ema_multi_avg_fn``), ``= decay * average + (1 - decay) * param``
      in exact arithmetic.
    """
    param = np.asarray(param, dtype=average.dtype)
    if n_averaged == 0:
        return param.copy()
    if decay is None:
        return average + (param - average) / average.dtype.type(n_averaged + 1)
    return _lerp(average, param, 1 - decay)
