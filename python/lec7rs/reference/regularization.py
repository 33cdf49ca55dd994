"""Dropout, DropConnect, stochastic depth and fractional max pooling in pure
NumPy, drawing from the reference Philox stream (``reference.random``): given
the same generator state they give the same masks and values as
``lec7rs.regularization``, bit for bit. Written for clarity (fractional max
pooling loops in Python: use small inputs).

The lecture's dropout (cs231n)::

    mask = (np.random.rand(*x.shape) < keep)   # keep = 1 - p
    train: y = x * mask                        # "multiply by p at test time"
    test:  y = x * keep

and the inverted form every framework uses::

    train: y = x * mask / keep                 test: y = x
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .random import Generator, bernoulli, draw_words


def _scale(p: float, inverted: bool) -> float:
    """The factor of kept elements in training (0 for inverted ``p = 1``)."""
    if not inverted:
        return 1.0
    return 1.0 / (1.0 - p) if p < 1.0 else 0.0


def _masked(x: np.ndarray, mask: np.ndarray, s: float) -> np.ndarray:
    """``x * (mask ? s : 0)`` with ``s`` rounded once to ``x``'s dtype."""
    factor = np.where(mask, x.dtype.type(s), x.dtype.type(0))
    return x * factor


def dropout(
    x: np.ndarray, p: float, *, rng: Generator, training: bool = True, inverted: bool = True
) -> tuple[np.ndarray, Any]:
    """``(y, mask)``; ``mask`` is None at test time (and nothing is drawn)."""
    if not training:
        return (x.copy() if inverted else x * x.dtype.type(1.0 - p)), None
    mask = bernoulli(rng, 1.0 - p, x.shape)
    return _masked(x, mask, _scale(p, inverted)), mask


def dropout_backward(
    dout: np.ndarray, mask: np.ndarray, p: float, *, inverted: bool = True
) -> np.ndarray:
    """The gradient of :func:`dropout`: ``dout`` where ``mask`` kept the
    element, times the same scale (``1 / (1 - p)`` when inverted), else 0."""
    return _masked(dout, mask.astype(bool), _scale(p, inverted))


def dropconnect(
    w: np.ndarray, p: float, *, rng: Generator, inverted: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``(w_dropped, mask)``: :func:`dropout` of the weights ``w`` in
    training (DropConnect drops weights, not activations); the backward
    pass is ``dropconnect_backward``, the same as ``dropout_backward``."""
    y, mask = dropout(w, p, rng=rng, training=True, inverted=inverted)
    return y, mask


dropconnect_backward = dropout_backward


def stochastic_depth(
    x: np.ndarray, p: float, *, rng: Generator, mode: str = "row", training: bool = True
) -> tuple[np.ndarray, Any]:
    """torchvision's ``stochastic_depth``: ``y = x * keep / (1 - p)``."""
    if not training:
        return x.copy(), None
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    keep = bernoulli(rng, 1.0 - p, shape)
    return _masked(x, keep, _scale(p, True)), keep


def generate_intervals(u: Any, n: int, m: int, k: int) -> list[int]:
    """ATen's ``generate_intervals`` in ``u``'s dtype: window starts."""
    t = type(u)
    starts = [0] * m
    if m > 1:
        alpha = t(n - k) / t(m - 1)
        offset = int(u * alpha)
        for i in range(m - 1):
            starts[i] = int((t(i) + u) * alpha) - offset
    starts[m - 1] = n - k
    return starts


def exact_increments(u: Any, n: int, m: int) -> list[int]:
    """``floor((i + u) n / m) - floor(u n / m)`` differences, in integers."""
    bits = 24 if isinstance(u, np.float32) else 53
    num = int(float(u) * 2.0**bits)
    den = m << bits
    bound = [((i << bits) + num) * n // den for i in range(m + 1)]
    return [bound[i + 1] - bound[i] for i in range(m)]


def shuffled_increments(total: int, count: int, words: np.ndarray) -> list[int]:
    """``count`` steps summing to ``total``, Fisher-Yates shuffled."""
    if count == 0:
        return []
    q, r = divmod(total, count)
    inc = [q + (1 if i >= count - r else 0) for i in range(count)]
    for step, i in enumerate(range(count - 1, 0, -1)):
        j = (int(words[step]) * (i + 1)) >> 32
        inc[i], inc[j] = inc[j], inc[i]
    return inc


def _windows(n, m, k, overlapping, pseudo, u, words):
    if overlapping and pseudo:
        return [(s, k) for s in generate_intervals(u, n, m, k)]
    if overlapping:
        if m == 1:
            return [(n - k, k)]
        starts = np.concatenate([[0], np.cumsum(shuffled_increments(n - k, m - 1, words))])
        return [(int(s), k) for s in starts]
    inc = exact_increments(u, n, m) if pseudo else shuffled_increments(n, m, words)
    bounds = np.concatenate([[0], np.cumsum(inc)])
    return [(int(bounds[i]), int(inc[i])) for i in range(m)]


def fractional_max_pool2d(
    x: np.ndarray,
    output_size: Any,
    *,
    rng: Generator,
    kernel_size: Any = 2,
    pseudo_random: bool = True,
    overlapping: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(y, argmax)``: Graham's fractional max pooling of ``(n, c, h, w)``
    ``x`` with PyTorch's interval sequence, one plain loop per window;
    ``argmax`` holds the flat ``h * w`` index of each maximum (NaN wins)."""
    oh, ow = (output_size, output_size) if np.ndim(output_size) == 0 else output_size
    kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
    n, c, h, w = x.shape
    if pseudo_random:
        samples = rng.random((n, c, 2), x.dtype)
    else:
        words = rng.words(n * c * (ow + oh)).reshape(n, c, ow + oh)
    y = np.empty((n, c, oh, ow), x.dtype)
    argmax = np.empty((n, c, oh, ow), np.int64)
    for b in range(n):
        for ch in range(c):
            u_w, u_h = (samples[b, ch, 0], samples[b, ch, 1]) if pseudo_random else (None, None)
            w_w, w_h = (None, None) if pseudo_random else (words[b, ch, :ow], words[b, ch, ow:])
            rows = _windows(h, oh, kh, overlapping, pseudo_random, u_h, w_h)
            cols = _windows(w, ow, kw, overlapping, pseudo_random, u_w, w_w)
            plane = x[b, ch]
            for i, (h0, hl) in enumerate(rows):
                for j, (w0, wl) in enumerate(cols):
                    best, at = -math.inf, h0 * w + w0
                    for hh in range(h0, h0 + hl):
                        for ww in range(w0, w0 + wl):
                            v = plane[hh, ww]
                            if v > best or np.isnan(v):
                                best, at = v, hh * w + ww
                    y[b, ch, i, j] = best
                    argmax[b, ch, i, j] = at
    return y, argmax


def fractional_max_pool2d_backward(
    dout: np.ndarray, argmax: np.ndarray, input_shape: Any
) -> np.ndarray:
    """The gradient of :func:`fractional_max_pool2d`: each ``dout`` added
    at its ``argmax``, in output order."""
    n, c, h, w = input_shape
    dx = np.zeros((n, c, h * w), dout.dtype)
    for b in range(n):
        for ch in range(c):
            for g, a in zip(dout[b, ch].ravel(), argmax[b, ch].ravel()):
                dx[b, ch, a] += g  # in output order, like the kernel
    return dx.reshape(n, c, h, w)


__all__ = [
    "draw_words",
    "dropconnect",
    "dropconnect_backward",
    "dropout",
    "dropout_backward",
    "fractional_max_pool2d",
    "fractional_max_pool2d_backward",
    "stochastic_depth",
]
