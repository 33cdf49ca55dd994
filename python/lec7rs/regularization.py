"""Regularization by noise: dropout, DropConnect, stochastic depth and
fractional max pooling on NumPy arrays, drawing from a ``lec7rs.Generator``.

Masks come from the counter-based stream: the same generator state gives the
same masks for any thread count and SIMD level, and
``lec7rs.reference.regularization`` reproduces them bit for bit. A Bernoulli
draw with keep probability ``q`` keeps element ``i`` iff the ``i``-th random
32-bit word of the call is below ``round(q * 2**32)``: the realized keep
probability is within ``2**-33`` of ``q``; ``q = 1`` keeps everything and
``q = 0`` nothing.

Arithmetic: a dropped element is ``x * 0`` and a kept one ``x * s`` with the
scale ``s`` computed in float64 and rounded once to the array's dtype, as
PyTorch computes ``input * noise``: NaN and inf inputs stay NaN where
dropped, and negative inputs give ``-0.0``. (PyTorch rounds ``1 / (1 - p)``
through its dtype differently, so a kept value can differ from PyTorch's in
the last bit.)

Arrays are float32 or float64 (a ``TypeError`` names any other); inputs may
have any strides; ``out=`` must be C-contiguous and writeable. Every check
runs before anything is drawn or written: a call that raises has consumed no
random numbers and changed no array.

Long calls can be interrupted: Ctrl-C (SIGINT) stops a call within about
0.1 s with ``KeyboardInterrupt``; the generator is left as it was and new
arrays are discarded, but an ``out=`` array (or ``x`` itself, in place) may
be partly written.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from . import _core
from .random import _MAX_SIZE, Generator, _is_int, stream_of

_MODES = ("row", "batch")


def _prob(p: Any) -> float:
    # The range, [0, 1] without NaN, is checked by the kernels.
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"p must be a real number, got {type(p).__name__}")
    return float(p)


def _check_out(x: Any, out: Any) -> None:
    if (
        out is not None
        and out is not x
        and isinstance(out, np.ndarray)
        and isinstance(x, np.ndarray)
        and np.may_share_memory(x, out)
    ):
        raise ValueError("out overlaps x: pass out=x itself to compute in place")


def dropout(
    x: np.ndarray,
    p: float,
    *,
    rng: Generator,
    training: bool = True,
    inverted: bool = True,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Dropout (Srivastava et al. 2014): zero each element with probability
    ``p`` (the drop probability, in [0, 1]).

    Returns ``(y, mask)``; ``mask`` is a bool array of ``x.shape``, True =
    kept, or ``None`` when not training. One pass over memory writes both.

    - ``inverted=True`` (PyTorch's ``nn.functional.dropout``): training
      ``y = x * mask / (1 - p)``, test ``y = x``. With ``p = 1`` every
      element is dropped and ``y = x * 0`` (zeros), never ``0 * inf``.
    - ``inverted=False`` (the lecture's original form): training
      ``y = x * mask``, test ``y = x * (1 - p)`` (the expected value of the
      training output).

    ``out`` receives ``y`` (C-contiguous, writeable, ``x``'s shape and
    dtype); ``out=x`` computes in place. Otherwise ``y`` is a new array, also
    at test time (never ``x`` itself); from 1 MiB up its memory may be
    that of an output freed before (``LEC7RS_BUFFER_CACHE_MB``), which
    spares a training loop the page faults of a fresh array at every step.
    An output of 8 MiB or more whose pages were written before is written
    with streaming stores (bypassing the caches, same values). At test time nothing is drawn from
    ``rng``; in training the call consumes ``x.size`` words of the stream.
    The gradient is ``dropout_backward(dout, mask, p)``.

    Example: kept elements are scaled by ``1 / (1 - p)``; the same seed
    gives the same mask on any machine, thread count and SIMD level.

    >>> import numpy as np
    >>> from lec7rs import Generator
    >>> from lec7rs.regularization import dropout
    >>> y, mask = dropout(np.ones(8, np.float32), 0.5, rng=Generator(0))
    >>> y
    array([2., 0., 2., 0., 0., 2., 0., 0.], dtype=float32)
    >>> mask.dtype, int(mask.sum())
    (dtype('bool'), 3)
    """
    stream = stream_of(rng)
    p = _prob(p)
    _check_out(x, out)
    return _core.dropout(x, p, stream, bool(training), bool(inverted), out)


def dropout_backward(
    dout: np.ndarray, mask: np.ndarray, p: float, *, inverted: bool = True
) -> np.ndarray:
    """The gradient of training-mode ``dropout``: ``dx = dout * mask / (1 - p)``
    (``inverted=True``; 0 where dropped, and 0 everywhere for ``p = 1``) or
    ``dx = dout * mask`` (``inverted=False``). ``mask`` is the bool array
    ``dropout`` returned, of ``dout``'s shape. Returns a new array."""
    return _core.dropout_backward(dout, mask, _prob(p), bool(inverted))


def dropconnect(
    w: np.ndarray, p: float, *, rng: Generator, inverted: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """DropConnect (Wan et al. 2013): drop each *weight* independently with
    probability ``p``, for one forward pass of a layer.

    Returns ``(w_dropped, mask)`` with ``mask`` a bool array of ``w.shape``
    (True = kept): ``w_dropped = w * mask / (1 - p)`` (``inverted=True``, so
    that ``E[w_dropped] = w`` and the layer uses ``w`` unchanged at test
    time) or ``w * mask`` (``inverted=False``: scale the weights by ``1 - p``
    at test time). Any shape works: an ``(out, in)`` matrix, a conv kernel.
    The paper's inference instead averages over masks with a Gaussian
    moment-matching approximation; the scaling is the common shortcut.

    Compute the layer with ``w_dropped``; its gradient with respect to
    ``w_dropped`` goes back through ``dropconnect_backward``.
    """
    stream = stream_of(rng)
    return _core.dropout(w, _prob(p), stream, True, bool(inverted), None)


def dropconnect_backward(
    dw_dropped: np.ndarray, mask: np.ndarray, p: float, *, inverted: bool = True
) -> np.ndarray:
    """The gradient with respect to the weights ``w`` from the gradient with
    respect to ``w_dropped``: ``dw = dw_dropped * mask / (1 - p)``
    (``inverted=True``) or ``dw_dropped * mask``."""
    return _core.dropout_backward(dw_dropped, mask, _prob(p), bool(inverted))


def stochastic_depth(
    x: np.ndarray, p: float, *, rng: Generator, mode: str = "row", training: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Stochastic depth (Huang et al. 2016) with the semantics of
    ``torchvision.ops.stochastic_depth``: drop a residual branch's output
    ``x`` with probability ``p`` and divide the survivors by ``1 - p``.

    ``mode="row"`` draws once per index along axis 0 (per sample),
    ``mode="batch"`` once for the whole input. Returns ``(y, keep)``:
    ``keep`` is a bool array of shape ``(N, 1, ..., 1)`` ("row") or
    ``(1, ..., 1)`` ("batch"), with ``x.ndim`` dimensions, so that
    ``y = x * keep / (1 - p)`` broadcasts (and so does the gradient,
    ``dx = dout * keep / (1 - p)``). With ``p = 1`` nothing survives and
    ``y = x * 0``.

    With ``training=False`` the result is a copy of ``x`` and ``keep`` is
    ``None``, and nothing is drawn. (torchvision returns ``x`` itself there,
    and draws nothing for ``p = 0``; here every training call consumes one
    word per draw, so the stream does not depend on ``p``.)
    """
    stream = stream_of(rng)
    p = _prob(p)
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be 'row' or 'batch', got {mode!r}")
    return _core.stochastic_depth(x, p, stream, mode == "row", bool(training))


def _pair(v: Any, name: str) -> tuple[int, int]:
    pair = (v, v) if _is_int(v) else v
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(_is_int(a) for a in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if any(not 1 <= a <= _MAX_SIZE for a in pair):
        raise ValueError(f"{name} must be positive (and below 2**63), got {v!r}")
    return int(pair[0]), int(pair[1])


def fractional_max_pool2d(
    x: np.ndarray,
    output_size: int | tuple[int, int],
    *,
    rng: Generator,
    kernel_size: int | tuple[int, int] = 2,
    pseudo_random: bool = True,
    overlapping: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Fractional max pooling (Graham 2014) of an NCHW array to
    ``output_size`` (``(H_out, W_out)`` or one int for both): a pooling
    ratio ``alpha = H / H_out`` between 1 and 2 (or more) instead of 2.

    Returns ``(y, argmax)``, both ``(N, C, H_out, W_out)``; ``argmax`` holds
    int64 flat indices into each ``H x W`` input plane (PyTorch's
    ``return_indices``), for ``fractional_max_pool2d_backward``.

    Each (sample, channel) plane gets one random draw, shared by all its
    outputs. Along each dimension (input ``n``, output ``m``) output ``i``
    pools a window:

    - ``overlapping=True`` (``torch.nn.FractionalMaxPool2d``): windows of
      ``kernel_size`` elements whose starts go from 0 to ``n - k`` in steps
      of ``floor`` or ``ceil`` of ``alpha = (n - k) / (m - 1)``; needs
      ``m + k - 1 <= n``. (Graham's overlapping regions ``[a_{i-1}, a_i]``
      are this with windows of the step plus one.)
    - ``overlapping=False``: Graham's disjoint regions ``[a_i, a_{i+1})``,
      ``0 = a_0 < ... < a_m = n``, of ``floor`` or ``ceil`` of ``n / m``
      elements (``kernel_size`` plays no part); needs ``m <= n``.

    The steps come from the pseudo-random sequence (``pseudo_random=True``:
    one uniform ``u`` in [0, 1) per plane and dimension, drawn as
    ``rng.random((N, C, 2), x.dtype)`` with ``[..., 0]`` for the width and
    ``[..., 1]`` for the height as PyTorch's ``_random_samples``; overlapping
    starts are ATen's ``int((i + u) * alpha) - int(u * alpha)`` in the
    array's dtype, so they match PyTorch given the same samples; disjoint
    boundaries are ``floor((i + u) n / m) - floor(u n / m)``, exactly) or
    from the random sequence (``pseudo_random=False``: the same multiset of
    steps in a uniformly shuffled order, a Fisher-Yates shuffle per plane and
    dimension with ``W_out + H_out`` words per plane).

    Within a window the maximum is taken in row-major order with ATen's rule
    ``v > max or isnan(v)``: ties go to the first, NaN propagates.
    """
    stream = stream_of(rng)
    out_h, out_w = _pair(output_size, "output_size")
    k_h, k_w = _pair(kernel_size, "kernel_size")
    return _core.fractional_max_pool2d(
        x, out_h, out_w, k_h, k_w, stream, bool(pseudo_random), bool(overlapping)
    )


def fractional_max_pool2d_backward(
    dout: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """The gradient of ``fractional_max_pool2d``: ``dx`` of ``input_shape``
    (N, C, H, W), zero except ``dx[n, c].flat[argmax[n, c, i, j]] +=
    dout[n, c, i, j]`` (sums where overlapping windows share a maximum).
    ``argmax`` is the int64 array the forward pass returned; every index is
    checked to lie in its plane."""
    if not isinstance(input_shape, (tuple, list)) or not all(_is_int(d) for d in input_shape):
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}")
    if any(d < 0 for d in input_shape):
        raise ValueError(f"input_shape must not have negative sizes, got {input_shape!r}")
    if any(d > _MAX_SIZE for d in input_shape):
        raise ValueError(f"input_shape: sizes must be below 2**63, got {input_shape!r}")
    return _core.fractional_max_pool2d_backward(dout, argmax, [int(d) for d in input_shape])


__all__ = [
    "dropconnect",
    "dropconnect_backward",
    "dropout",
    "dropout_backward",
    "fractional_max_pool2d",
    "fractional_max_pool2d_backward",
    "stochastic_depth",
]
