"""Data augmentation on batches of images: random flips, random crops,
random resized crops and colour jitter, with the semantics of torchvision's
``transforms.v2``, drawing from a ``lec7rs.Generator``.

Images are a 4-D ``uint8`` or ``float32`` array, ``layout="NHWC"`` (the
default: ``(N, H, W, C)``, as images load from files) or ``"NCHW"``
(``(N, C, H, W)``, as torch tensors). ``float32`` images hold values in
[0, 1], as torchvision's float images. Each image of the batch gets its own
random parameters, drawn from one fresh range of the generator's stream
that the call reserves: image ``i`` uses a fixed number of words at offset
``i * K`` of the call, whatever its parameters decide, so the result is a
pure function of (generator state, image index): bit-identical for any
thread count and SIMD level, and reproduced by
``lec7rs.reference.augment`` from the same state. The work runs in Rust,
in parallel over images, with the GIL released.

Every function returns a new array, or writes ``out=`` (C-contiguous,
writeable, the result's shape and the input's dtype; it may be ``images``
itself when the shapes agree) and returns it. With
``return_params=True`` it returns ``(result, params)``, a dict of arrays
with each image's draw (to apply the same transform to masks or boxes).
Inputs may have any strides (read correctly, copied once if needed).
Every argument is checked before anything is drawn or written: a call
that raises consumes no random numbers and changes no array. A long call
stopped by Ctrl-C raises ``KeyboardInterrupt`` within about 0.1 s and
leaves the generator as it was, but ``out=`` may be partly written.

Where results differ from torchvision: ``uint8`` results are rounded to
nearest (ties to even) and saturated, never truncated (torchvision
truncates colour-jitter results and scales hue results by 255.999);
the random numbers are lec7rs's Philox stream, not torch's generator, so
the same seed gives other (equally distributed) parameters.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any, Union

import numpy as np

from . import _core
from .random import _MAX_SIZE, Generator, _is_int, stream_of

_LAYOUTS = ("NHWC", "NCHW")
_AXES = ("horizontal", "vertical")
_PAD_MODES = ("constant", "edge", "reflect", "symmetric")
_OPS = ("brightness", "contrast", "saturation", "hue")

Factor = Union[float, tuple[float, float]]


def _real(v: Any, name: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__}")
    return float(v)


def _layout(layout: Any) -> bool:
    if not isinstance(layout, str) or layout.upper() not in _LAYOUTS:
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
    return layout.upper() == "NCHW"


def _size(size: Any) -> tuple[int, int]:
    if _is_int(size):
        pair: Any = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) in (1, 2):
        pair = (size[0], size[0]) if len(size) == 1 else tuple(size)
    else:
        raise TypeError(f"size must be an int or a pair of ints (height, width), got {size!r}")
    if not all(_is_int(v) for v in pair):
        raise TypeError(f"size must be an int or a pair of ints (height, width), got {size!r}")
    if any(not 1 <= v <= _MAX_SIZE for v in pair):
        raise ValueError(f"size must be positive (and below 2**63), got {size!r}")
    return int(pair[0]), int(pair[1])


def _padding(padding: Any) -> list[int]:
    """torchvision's padding: an int (all sides), (left/right, top/bottom) or
    (left, top, right, bottom); returned as [left, top, right, bottom]."""
    if _is_int(padding):
        pads: list[Any] = [padding] * 4
    elif (
        isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) in (1, 2, 4)
    ):
        p = list(padding)
        pads = p * 4 if len(p) == 1 else [p[0], p[1], p[0], p[1]] if len(p) == 2 else p
    else:
        raise TypeError(
            "padding must be an int or a sequence of 1, 2 or 4 ints "
            f"(left/right, top/bottom or left, top, right, bottom), got {padding!r}"
        )
    if not all(_is_int(v) for v in pads):
        raise TypeError(f"padding must hold ints, got {padding!r}")
    if any(not 0 <= v <= _MAX_SIZE for v in pads):
        raise ValueError(f"padding must be non-negative (and below 2**63), got {padding!r}")
    return [int(v) for v in pads]


def _range_pair(v: Any, name: str) -> tuple[float, float]:
    if (
        not isinstance(v, Sequence)
        or isinstance(v, str)
        or len(v) != 2
        or not all(isinstance(a, numbers.Real) and not isinstance(a, bool) for a in v)
    ):
        raise TypeError(f"{name} must be a pair of numbers (lo, hi), got {v!r}")
    return float(v[0]), float(v[1])


def _factor(v: Any, name: str) -> tuple[float, float]:
    """torchvision's ``ColorJitter._check_input``: a number ``v >= 0`` means
    ``[max(0, 1 - v), 1 + v]`` (hue: ``[-v, v]``, ``v <= 0.5``); a pair is
    the range itself (checked by the kernel)."""
    if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
        v = float(v)
        if not v >= 0:
            raise ValueError(f"{name} must be non-negative, got {v}")
        if name == "hue":
            if v > 0.5:
                raise ValueError(f"hue must be in [0, 0.5], got {v}")
            return -v, v
        return max(0.0, 1.0 - v), 1.0 + v
    return _range_pair(v, name)


def _prepare(images: Any, out: Any) -> Any:
    # An out that overlaps the input (or is the input) reads a copy.
    if (
        out is not None
        and isinstance(out, np.ndarray)
        and isinstance(images, np.ndarray)
        and np.may_share_memory(images, out)
    ):
        return images.copy()
    return images


def random_flip(
    images: np.ndarray,
    *,
    rng: Generator,
    p: float = 0.5,
    axis: str = "horizontal",
    layout: str = "NHWC",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Mirror each image with probability ``p`` (torchvision's
    ``RandomHorizontalFlip`` / ``RandomVerticalFlip``).

    ``axis="horizontal"`` mirrors along the width (column ``x`` becomes
    ``W - 1 - x``), ``"vertical"`` along the height. Image ``i`` is flipped
    iff word ``i`` of the call is below ``round(p * 2**32)`` (one word per
    image; ``p = 1`` flips all, ``p = 0`` none). Any number of channels.
    ``params``: ``{"flipped": bool array (N,)}``.
    """
    stream = stream_of(rng)
    p = _real(p, "p")
    if not isinstance(axis, str) or axis not in _AXES:
        raise ValueError(f"axis must be 'horizontal' or 'vertical', got {axis!r}")
    nchw = _layout(layout)
    images = _prepare(images, out)
    y, flipped = _core.augment_flip(images, stream, p, axis == "vertical", nchw, out)
    if return_params:
        return y, {"flipped": np.array(flipped, dtype=bool)}
    return y


def random_crop(
    images: np.ndarray,
    size: int | tuple[int, int],
    *,
    rng: Generator,
    padding: int | Sequence[int] = 0,
    pad_mode: str = "constant",
    fill: float = 0,
    layout: str = "NHWC",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Crop a random ``size`` window (``(height, width)`` or one int) out of
    each image padded by ``padding`` (torchvision's ``RandomCrop``).

    ``padding``: an int for every side, ``(left/right, top/bottom)`` or
    ``(left, top, right, bottom)``. ``pad_mode``: ``"constant"`` (the value
    ``fill``, an integer in [0, 255] for uint8), ``"edge"``, ``"reflect"``
    (mirrored without repeating the border, ``2 1 | 0 1 2``) or
    ``"symmetric"`` (with it, ``1 0 | 0 1``), as ``np.pad`` for any width
    (torchvision refuses ``reflect`` padding wider than the image). The
    padded image is never built.

    The window's offset in the padded image is ``top = below(word(2 i),
    H_pad - h + 1)``, ``left = below(word(2 i + 1), W_pad - w + 1)`` with
    ``below(w, n) = (w * n) >> 32``. A crop larger than the padded image is
    a ``ValueError``. ``params``: ``{"top", "left"}`` int64 arrays (N,), in
    padded coordinates.
    """
    stream = stream_of(rng)
    h, w = _size(size)
    pads = _padding(padding)
    if not isinstance(pad_mode, str) or pad_mode not in _PAD_MODES:
        raise ValueError(
            f"pad_mode must be 'constant', 'edge', 'reflect' or 'symmetric', got {pad_mode!r}"
        )
    fill = _real(fill, "fill")
    nchw = _layout(layout)
    images = _prepare(images, out)
    y, offsets = _core.augment_crop(images, stream, h, w, pads, pad_mode, fill, nchw, out)
    if return_params:
        o = np.array(offsets, dtype=np.int64).reshape(-1, 2)
        return y, {"top": o[:, 0], "left": o[:, 1]}
    return y


def random_resized_crop(
    images: np.ndarray,
    size: int | tuple[int, int],
    *,
    rng: Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    antialias: bool = True,
    layout: str = "NHWC",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Crop a random box of random area and aspect ratio out of each image
    and resize it to ``size`` (torchvision's ``RandomResizedCrop``,
    bilinear).

    The box: up to 10 tries of a target area ``H * W * U(scale)`` and an
    aspect ratio ``exp(U(log ratio))`` (width over height), giving
    ``w = round(sqrt(area * aspect))``, ``h = round(sqrt(area / aspect))``;
    the first that fits is placed at a uniformly random offset; if none
    fits, the centred crop of the whole image clamped to the ratio range
    (``make_params`` of ``transforms.v2``). 40 words per image: try ``k``
    uses words ``40 i + 4 k ..`` for the area, the ratio, the top and the
    left offset.

    Resampling is separable, in f32, with weights computed in f64:
    ``antialias=True`` (torchvision v2's default) is the triangle filter of
    Pillow and ``torch.nn.functional.interpolate(mode="bilinear",
    antialias=True)``, whose support grows with the downscaling factor so
    that shrinking averages instead of aliasing; ``antialias=False`` is
    plain bilinear interpolation with half-pixel centres and clamped
    borders (``interpolate(align_corners=False)``, OpenCV's
    ``INTER_LINEAR``). The two agree when upscaling. uint8 results are
    rounded (ties to even) and saturated; float32 results are not clamped.
    ``params``: ``{"top", "left", "height", "width"}`` int64 arrays (N,).
    """
    stream = stream_of(rng)
    h, w = _size(size)
    scale = _range_pair(scale, "scale")
    ratio = _range_pair(ratio, "ratio")
    nchw = _layout(layout)
    images = _prepare(images, out)
    y, boxes = _core.augment_resized_crop(
        images, stream, h, w, scale, ratio, bool(antialias), nchw, out
    )
    if return_params:
        b = np.array(boxes, dtype=np.int64).reshape(-1, 4)
        return y, {"top": b[:, 0], "left": b[:, 1], "height": b[:, 2], "width": b[:, 3]}
    return y


def color_jitter(
    images: np.ndarray,
    *,
    rng: Generator,
    brightness: Factor = 0,
    contrast: Factor = 0,
    saturation: Factor = 0,
    hue: Factor = 0,
    layout: str = "NHWC",
    out: np.ndarray | None = None,
    return_params: bool = False,
) -> Any:
    """Randomly change the brightness, contrast, saturation and hue of each
    image, in a random order per image (torchvision's ``ColorJitter``).

    Factors: a number ``v >= 0`` draws from ``[max(0, 1 - v), 1 + v]``
    (hue: ``v <= 0.5``, from ``[-v, v]``), or a pair ``(lo, hi)`` gives the
    range (``0 <= lo <= hi``; hue within [-0.5, 0.5]). ``0`` (or a range of
    just 1, for hue 0) skips the operation. With values in [0, M]
    (M = 255 for uint8, 1 for float32), each operation computes in float32
    and clamps to [0, M] (uint8: then rounds, ties to even):

    - brightness ``b``: ``x * b``;
    - contrast ``c``: ``x * c + (1 - c) * mean(gray)``, the mean over the
      whole image as the earlier operations left it;
    - saturation ``s``: ``x * s + gray * (1 - s)`` per pixel;
    - hue ``h``: the hue rotated by ``h`` turns in HSV (the largest and
      smallest channel of each pixel stay, the middle one moves);

    with ``gray = 0.299 R + 0.587 G + 0.114 B`` (ITU-R 601-2). Brightness and
    contrast work on 1 or 3 channels (gray = the channel), saturation and
    hue need 3 (RGB; ``ValueError`` otherwise, where torchvision silently
    skips them). float32 images must hold values in [0, 1] (they are
    clamped to it, as in torchvision).

    Differences from torchvision: uint8 results are rounded, not truncated;
    the gray image is not floored for uint8; torchvision's tensor code uses
    0.2989 for red (its documentation, PIL and this use 0.299).

    8 words per image: 3 shuffle the order (Fisher-Yates), 4 draw the
    factors ``lo + (hi - lo) * u``. ``params``: ``{"order": int8 (N, 4)}``
    (0 brightness, 1 contrast, 2 saturation, 3 hue; skipped operations
    still appear) and ``"brightness"``, ``"contrast"``, ``"saturation"``,
    ``"hue"`` float64 arrays (N,) of the factors.
    """
    stream = stream_of(rng)
    ranges = [_factor(v, n) for v, n in zip((brightness, contrast, saturation, hue), _OPS)]
    nchw = _layout(layout)
    images = _prepare(images, out)
    y, orders, factors = _core.augment_color_jitter(images, stream, *ranges, nchw, out)
    if return_params:
        f = np.array(factors, dtype=np.float64).reshape(-1, 4)
        params = {"order": np.array(orders, dtype=np.int8).reshape(-1, 4)}
        params.update({name: f[:, k] for k, name in enumerate(_OPS)})
        return y, params
    return y


__all__ = ["color_jitter", "random_crop", "random_flip", "random_resized_crop"]
