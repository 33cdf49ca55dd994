"""``lec7rs.augment`` in pure NumPy, from the same random words.

Given a ``lec7rs.reference.random.Generator`` in the state of a
``lec7rs.Generator`` (``Generator.from_state_dict(rng.state_dict())``),
each function draws the same words and derives the same per-image
parameters, then computes the same float32 operations in the same order:
flips and crops are exact slices of ``np.pad``; resized crops and colour
jitter reproduce the Rust results bit for bit on uint8 (float32 contrast
may differ in the last bit: its mean is summed in another order).
Written for clarity: loops over images in Python.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .random import Generator, keep_threshold

FLIP_WORDS, CROP_WORDS, RESIZED_CROP_WORDS, JITTER_WORDS = 1, 2, 40, 8
GRAY = (0.299, 0.587, 0.114)
_F32 = np.float32


def unit(w: Any) -> Any:
    """A uniform in [0, 1) from a word: ``(w >> 8) * 2**-24``."""
    return (np.asarray(w, dtype=np.uint64) >> np.uint64(8)).astype(np.float64) * 2.0**-24


def below(w: int, n: int) -> int:
    """An integer in [0, n) from a word: ``(w * n) >> 32``."""
    return (int(w) * n) >> 32


def _words(rng: Generator, n: int, k: int) -> np.ndarray:
    return rng.words(n * k).reshape(n, k)


def _nhwc(images: np.ndarray, layout: str) -> np.ndarray:
    if images.ndim != 4:
        raise ValueError("images must be 4-D")
    return images if layout == "NHWC" else images.transpose(0, 2, 3, 1)


def _back(x: np.ndarray, layout: str) -> np.ndarray:
    return np.ascontiguousarray(x if layout == "NHWC" else x.transpose(0, 3, 1, 2))


def _finish(x: np.ndarray, integer: bool) -> np.ndarray:
    """Clamp to [0, M] and, for uint8, round half to even (in float32)."""
    x = np.clip(x, _F32(0), _F32(255 if integer else 1))
    return np.rint(x) if integer else x


# -- flips and crops --------------------------------------------------------------


def random_flip(
    images: np.ndarray,
    *,
    rng: Generator,
    p: float = 0.5,
    axis: str = "horizontal",
    layout: str = "NHWC",
) -> tuple[np.ndarray, dict]:
    """Flip image ``i`` iff word ``i`` < ``round(p * 2**32)``."""
    x = _nhwc(images, layout)
    words = _words(rng, len(x), FLIP_WORDS)[:, 0]
    flipped = words.astype(np.uint64) < np.uint64(keep_threshold(p))
    y = x.copy()
    ax = 2 if axis == "horizontal" else 1
    y[flipped] = np.flip(x[flipped], axis=ax)
    return _back(y, layout), {"flipped": flipped}


def _pad_widths(padding: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    left, top, right, bottom = padding
    return [(0, 0), (top, bottom), (left, right), (0, 0)]


def random_crop(
    images: np.ndarray,
    size: tuple[int, int],
    *,
    rng: Generator,
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    pad_mode: str = "constant",
    fill: float = 0,
    layout: str = "NHWC",
) -> tuple[np.ndarray, dict]:
    """Pad (``padding`` as (left, top, right, bottom)) with ``np.pad``, then
    slice at ``top = below(word(2i), H_pad - h + 1)``, ``left =
    below(word(2i + 1), W_pad - w + 1)``."""
    x = _nhwc(images, layout)
    kw = {"constant_values": fill} if pad_mode == "constant" else {}
    padded = np.pad(x, _pad_widths(padding), mode=pad_mode, **kw)
    h, w = size
    ph, pw = padded.shape[1:3]
    words = _words(rng, len(x), CROP_WORDS)
    tops = np.array([below(t, ph - h + 1) for t in words[:, 0]], dtype=np.int64)
    lefts = np.array([below(t, pw - w + 1) for t in words[:, 1]], dtype=np.int64)
    y = np.empty((len(x), h, w, x.shape[3]), dtype=x.dtype)
    for i, (t, s) in enumerate(zip(tops, lefts)):
        y[i] = padded[i, t : t + h, s : s + w]
    return _back(y, layout), {"top": tops, "left": lefts}


# -- resized crops ------------------------------------------------------------------


def resized_crop_box(
    words: np.ndarray, height: int, width: int, scale: tuple, ratio: tuple
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` from one image's 40 words: torchvision v2's
    ``RandomResizedCrop.make_params`` with these uniforms."""
    area = height * width
    l0, l1 = math.log(ratio[0]), math.log(ratio[1])
    for k in range(10):
        a, r, t, s = (int(v) for v in words[4 * k : 4 * k + 4])
        target = area * (scale[0] + (scale[1] - scale[0]) * float(unit(a)))
        aspect = math.exp(l0 + (l1 - l0) * float(unit(r)))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return below(t, height - h + 1), below(s, width - w + 1), h, w
    in_ratio = width / height
    w, h = width, height
    if in_ratio < ratio[0]:
        h = min(max(round(w / ratio[0]), 1), height)
    elif in_ratio > ratio[1]:
        w = min(max(round(h * ratio[1]), 1), width)
    return (height - h) // 2, (width - w) // 2, h, w


def filter_taps(n_in: int, n_out: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(start, weights)``: output ``i`` reads inputs ``start[i] + t`` with
    float32 weights ``weights[i, t]`` (zero beyond its window). The triangle
    filter of Pillow / torch's antialiased bilinear (support ``max(scale, 1)``)
    or, without antialias, plain bilinear with half-pixel centres."""
    scale = n_in / n_out
    fs = scale if antialias and scale > 1.0 else 1.0
    inv = 1.0 / fs
    starts, rows = [], []
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - fs + 0.5), 0)
        hi = min(int(center + fs + 0.5), n_in)
        n = max(hi - lo, 1)
        lo = min(lo, n_in - 1)
        n = min(n, n_in - lo)
        w = [max(0.0, 1.0 - abs(((j + lo) - center + 0.5) * inv)) for j in range(n)]
        total = sum(w)
        if total != 0.0:
            w = [v / total for v in w]
        starts.append(lo)
        rows.append(w)
    taps = max(len(r) for r in rows)
    weights = np.zeros((n_out, taps), dtype=np.float32)
    for i, r in enumerate(rows):
        weights[i, : len(r)] = r
    return np.array(starts, dtype=np.int64), weights


def resize_image(img: np.ndarray, out_h: int, out_w: int, antialias: bool) -> np.ndarray:
    """One ``(h, w, C)`` image resized: vertical pass then horizontal, in
    float32, taps summed in order."""
    h, w, _ = img.shape
    x = img.astype(np.float32)
    ys, wy = filter_taps(h, out_h, antialias)
    xs, wx = filter_taps(w, out_w, antialias)
    v = None
    for t in range(wy.shape[1]):
        term = wy[:, t, None, None] * x[np.minimum(ys + t, h - 1)]
        v = term if v is None else v + term
    # Taps beyond a window have weight 0: what they read does not matter
    # (for finite values), so clamp their index.
    acc = None
    for t in range(wx.shape[1]):
        term = wx[None, :, t, None] * v[:, np.minimum(xs + t, w - 1)]
        acc = term if acc is None else acc + term
    return acc


def random_resized_crop(
    images: np.ndarray,
    size: tuple[int, int],
    *,
    rng: Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    antialias: bool = True,
    layout: str = "NHWC",
) -> tuple[np.ndarray, dict]:
    """Each image's box (``resized_crop_box``) resized to ``size``; uint8
    results rounded (ties to even) and saturated."""
    x = _nhwc(images, layout)
    n, height, width, c = x.shape
    words = _words(rng, n, RESIZED_CROP_WORDS)
    boxes = [resized_crop_box(words[i], height, width, scale, ratio) for i in range(n)]
    out = np.empty((n, size[0], size[1], c), dtype=x.dtype)
    integer = x.dtype == np.uint8
    for i, (t, s, h, w) in enumerate(boxes):
        y = resize_image(x[i, t : t + h, s : s + w], size[0], size[1], antialias)
        out[i] = _finish(y, True) if integer else y
    b = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    params = {"top": b[:, 0], "left": b[:, 1], "height": b[:, 2], "width": b[:, 3]}
    return _back(out, layout), params


# -- colour jitter ------------------------------------------------------------------


def jitter_params(words: np.ndarray, ranges: list[tuple[float, float]]) -> tuple[list, list]:
    """The order (0 brightness, 1 contrast, 2 saturation, 3 hue) and the four
    factors of one image from its 8 words."""
    order = [0, 1, 2, 3]
    for k in range(3):
        j = k + below(words[k], 4 - k)
        order[k], order[j] = order[j], order[k]
    factors = [lo + (hi - lo) * float(unit(words[3 + k])) for k, (lo, hi) in enumerate(ranges)]
    return order, factors


def rotate_hue(r: np.ndarray, g: np.ndarray, b: np.ndarray, shift: np.float32) -> tuple:
    """The hue of each pixel shifted by ``shift`` sectors (sixths of a turn)
    in HSV: the largest and smallest channel stay, float32 throughout."""
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    rng_ = mx - mn
    d = np.where(rng_ == 0, _F32(1), rng_)
    base = np.where(mx == r, _F32(0), np.where(mx == g, _F32(2), _F32(4)))
    num = np.where(mx == r, g - b, np.where(mx == g, b - r, r - g))
    hue = base + num / d + shift
    hue = np.where(hue < 0, hue + _F32(6), hue)
    hue = np.where(hue >= 6, hue - _F32(6), hue)
    k = np.minimum(hue.astype(np.int32), 5)
    f = hue - k.astype(np.float32)
    rise = mn + rng_ * f
    fall = mx - rng_ * f
    nr = np.select([(k == 0) | (k == 5), k == 1, k == 4], [mx, fall, rise], mn)
    ng = np.select([(k == 1) | (k == 2), k == 0, k == 3], [mx, rise, fall], mn)
    nb = np.select([(k == 3) | (k == 4), k == 2, k == 5], [mx, rise, fall], mn)
    return nr, ng, nb


def jitter_image(img: np.ndarray, order: list, factors: list, active: list) -> np.ndarray:
    """One ``(h, w, C)`` image through the active operations in ``order``."""
    integer = img.dtype == np.uint8
    x = img.astype(np.float32)
    pixels = x.shape[0] * x.shape[1]
    for op in order:
        if not active[op]:
            continue
        f = factors[op]
        if op == 0:
            x = _finish(x * _F32(f), integer)
        elif op == 1:
            sums = [float(np.sum(x[..., k], dtype=np.float64)) for k in range(x.shape[2])]
            if x.shape[2] == 3:
                mean = (GRAY[0] * sums[0] + GRAY[1] * sums[1] + GRAY[2] * sums[2]) / pixels
            else:
                mean = sums[0] / pixels
            x = _finish(x * _F32(f) + _F32((1.0 - f) * mean), integer)
        elif op == 2:
            r, g, b = x[..., 0], x[..., 1], x[..., 2]
            gray = _F32(GRAY[0]) * r + _F32(GRAY[1]) * g + _F32(GRAY[2]) * b
            base = gray * _F32(1.0 - f)
            x = _finish(np.stack([r, g, b], axis=-1) * _F32(f) + base[..., None], integer)
        else:
            r, g, b = rotate_hue(x[..., 0], x[..., 1], x[..., 2], _F32(6.0 * f))
            x = _finish(np.stack([r, g, b], axis=-1), integer)
    return x.astype(img.dtype) if any(active) else img.copy()


def _factor(v: Any, hue: bool) -> tuple[float, float]:
    if isinstance(v, (tuple, list)):
        return float(v[0]), float(v[1])
    return (-float(v), float(v)) if hue else (max(0.0, 1.0 - v), 1.0 + v)


def color_jitter(
    images: np.ndarray,
    *,
    rng: Generator,
    brightness: Any = 0,
    contrast: Any = 0,
    saturation: Any = 0,
    hue: Any = 0,
    layout: str = "NHWC",
) -> tuple[np.ndarray, dict]:
    """torchvision's ``ColorJitter`` with lec7rs's draws and rounding (see
    ``lec7rs.augment.color_jitter``)."""
    x = _nhwc(images, layout)
    ranges = [_factor(v, k == 3) for k, v in enumerate((brightness, contrast, saturation, hue))]
    centers = (1.0, 1.0, 1.0, 0.0)
    active = [not (lo == hi == c) for (lo, hi), c in zip(ranges, centers)]
    words = _words(rng, len(x), JITTER_WORDS)
    out = np.empty_like(x)
    orders, factors = [], []
    for i in range(len(x)):
        order, f = jitter_params(words[i], ranges)
        out[i] = jitter_image(x[i], order, f, active)
        orders.append(order)
        factors.append(f)
    f = np.array(factors, dtype=np.float64).reshape(-1, 4)
    params = {"order": np.array(orders, dtype=np.int8).reshape(-1, 4)}
    params.update(
        {name: f[:, k] for k, name in enumerate(("brightness", "contrast", "saturation", "hue"))}
    )
    return _back(out, layout), params
