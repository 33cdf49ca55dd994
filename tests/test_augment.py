"""lec7rs.augment against the NumPy reference (same generator state), across
dtypes, layouts, SIMD levels and thread counts, and the semantics the
docstrings promise (torchvision's transforms.v2, NumPy slicing, np.pad)."""

from __future__ import annotations

import math

import lec7rs
import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from hypothesis import given, settings
from hypothesis import strategies as st
from lec7rs import augment as A
from lec7rs.reference import augment as RA
from lec7rs.reference import random as ref_random

LAYOUTS = ["NHWC", "NCHW"]
DTYPES = [np.uint8, np.float32]


def pair(seed=1234):
    """A generator and the reference stream in the same state."""
    g = lec7rs.Generator(seed)
    g.random(3)  # not at counter 0
    return g, ref_random.Generator.from_state_dict(g.state_dict())


def images(shape, dtype, seed=0, layout="NHWC"):
    """A batch in NHWC ``shape``, laid out as ``layout``."""
    r = np.random.default_rng(seed)
    x = r.integers(0, 256, shape, dtype=np.uint8)
    if dtype == np.float32:
        x = (x / 255).astype(np.float32)
    return x if layout == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_nhwc(x, layout):
    return x if layout == "NHWC" else x.transpose(0, 2, 3, 1)


def assert_close(a, b, dtype):
    assert a.dtype == b.dtype and a.shape == b.shape
    if dtype == np.uint8:
        assert np.abs(a.astype(np.int16) - b.astype(np.int16)).max(initial=0) <= 1
    else:
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)


def assert_params_equal(p, q):
    assert p.keys() == q.keys()
    for k in p:
        np.testing.assert_array_equal(p[k], q[k], err_msg=k)


# One table drives the reference comparisons: (name, lec7rs call, reference
# call, exact). Both calls take (x, rng, layout).
CASES = [
    (
        "flip-h",
        lambda x, g, lay: A.random_flip(x, rng=g, layout=lay, return_params=True),
        lambda x, r, lay: RA.random_flip(x, rng=r, layout=lay),
        True,
    ),
    (
        "flip-v-p0.3",
        lambda x, g, lay: A.random_flip(
            x, rng=g, p=0.3, axis="vertical", layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_flip(x, rng=r, p=0.3, axis="vertical", layout=lay),
        True,
    ),
    (
        "crop-pad-constant",
        lambda x, g, lay: A.random_crop(
            x, (9, 11), rng=g, padding=3, fill=1, layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_crop(
            x, (9, 11), rng=r, padding=(3, 3, 3, 3), fill=1, layout=lay
        ),
        True,
    ),
    (
        "crop-reflect-wide",
        lambda x, g, lay: A.random_crop(
            x, 20, rng=g, padding=(1, 14, 5, 2), pad_mode="reflect", layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_crop(
            x, (20, 20), rng=r, padding=(1, 14, 5, 2), pad_mode="reflect", layout=lay
        ),
        True,
    ),
    (
        "crop-edge-2",
        lambda x, g, lay: A.random_crop(
            x, (13, 6), rng=g, padding=(2, 4), pad_mode="edge", layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_crop(
            x, (13, 6), rng=r, padding=(2, 4, 2, 4), pad_mode="edge", layout=lay
        ),
        True,
    ),
    (
        "crop-symmetric",
        lambda x, g, lay: A.random_crop(
            x, (12, 10), rng=g, padding=7, pad_mode="symmetric", layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_crop(
            x, (12, 10), rng=r, padding=(7, 7, 7, 7), pad_mode="symmetric", layout=lay
        ),
        True,
    ),
    (
        "resized-crop",
        lambda x, g, lay: A.random_resized_crop(x, (16, 20), rng=g, layout=lay, return_params=True),
        lambda x, r, lay: RA.random_resized_crop(x, (16, 20), rng=r, layout=lay),
        False,
    ),
    (
        "resized-crop-down",
        lambda x, g, lay: A.random_resized_crop(
            x, 5, rng=g, scale=(0.5, 1.0), ratio=(0.5, 2.0), layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_resized_crop(
            x, (5, 5), rng=r, scale=(0.5, 1.0), ratio=(0.5, 2.0), layout=lay
        ),
        False,
    ),
    (
        "resized-crop-no-aa",
        lambda x, g, lay: A.random_resized_crop(
            x, (7, 30), rng=g, antialias=False, layout=lay, return_params=True
        ),
        lambda x, r, lay: RA.random_resized_crop(x, (7, 30), rng=r, antialias=False, layout=lay),
        False,
    ),
    (
        "jitter-all",
        lambda x, g, lay: A.color_jitter(
            x,
            rng=g,
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            hue=0.1,
            layout=lay,
            return_params=True,
        ),
        lambda x, r, lay: RA.color_jitter(
            x, rng=r, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, layout=lay
        ),
        False,
    ),
    (
        "jitter-ranges",
        lambda x, g, lay: A.color_jitter(
            x,
            rng=g,
            brightness=(0.2, 2.5),
            contrast=(0.0, 3.0),
            saturation=(0, 2),
            hue=(-0.5, 0.5),
            layout=lay,
            return_params=True,
        ),
        lambda x, r, lay: RA.color_jitter(
            x,
            rng=r,
            brightness=(0.2, 2.5),
            contrast=(0.0, 3.0),
            saturation=(0, 2),
            hue=(-0.5, 0.5),
            layout=lay,
        ),
        False,
    ),
    (
        "jitter-contrast-only",
        lambda x, g, lay: A.color_jitter(x, rng=g, contrast=0.9, layout=lay, return_params=True),
        lambda x, r, lay: RA.color_jitter(x, rng=r, contrast=0.9, layout=lay),
        False,
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_matches_reference(case, dtype, layout):
    _, call, ref_call, exact = case
    x = images((5, 17, 23, 3), dtype, layout=layout)
    g, r = pair()
    for _ in range(2):  # consecutive calls stay in step
        y, params = call(x, g, layout)
        y_ref, params_ref = ref_call(x, r, layout)
        if exact or dtype == np.uint8:
            # The reference reproduces uint8 bit for bit (the issue asks
            # for 1 unit; check both).
            assert_close(y, y_ref, dtype)
            np.testing.assert_array_equal(y, y_ref)
        else:
            assert_close(y, y_ref, dtype)
        assert_params_equal(params, params_ref)
    assert g.state_dict() == r.state_dict()


@pytest.mark.parametrize("case", [c for c in CASES if "jitter" not in c[0]], ids=lambda c: c[0])
@pytest.mark.parametrize("channels", [1, 4])
def test_geometric_any_channels(case, channels):
    _, call, ref_call, _ = case
    x = images((3, 17, 23, channels), np.uint8)
    g, r = pair(7)
    y, _ = call(x, g, "NHWC")
    y_ref, _ = ref_call(x, r, "NHWC")
    np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
def test_jitter_grayscale_reference(dtype):
    # The demo's case: 8x8 grayscale digits, NHWC (N, 8, 8, 1) float32.
    x = images((16, 8, 8, 1), dtype)
    g, r = pair()
    y, p = A.color_jitter(x, rng=g, brightness=0.5, contrast=0.5, return_params=True)
    y_ref, p_ref = RA.color_jitter(x, rng=r, brightness=0.5, contrast=0.5)
    assert_close(y, y_ref, dtype)
    assert_params_equal(p, p_ref)
    assert not np.array_equal(y, x)


# -- determinism ------------------------------------------------------------------

BIG = (12, 40, 44, 3)  # more than one parallel piece


def run_all(x, layout, seed=5):
    g = lec7rs.Generator(seed)
    return [
        A.random_flip(x, rng=g, layout=layout),
        A.random_crop(x, 30, rng=g, padding=4, pad_mode="reflect", layout=layout),
        A.random_resized_crop(x, 24, rng=g, layout=layout),
        A.random_resized_crop(x, (60, 70), rng=g, antialias=False, layout=layout),
        A.color_jitter(
            x, rng=g, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2, layout=layout
        ),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_bit_identical_across_threads_and_levels(dtype, layout):
    x = images(BIG, dtype, layout=layout)
    with threads(1), simd("scalar"):
        want = run_all(x, layout)
    for n in (1, 2, 3):
        for level in LEVELS:
            with threads(n), simd(level):
                got = run_all(x, layout)
            for a, b in zip(got, want):
                assert a.tobytes() == b.tobytes(), (n, level)


def test_reproducible_and_fresh_draws():
    x = images(BIG, np.uint8)
    a = run_all(x, "NHWC", seed=3)
    b = run_all(x, "NHWC", seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    g = lec7rs.Generator(3)
    y1 = A.random_resized_crop(x, 24, rng=g)
    y2 = A.random_resized_crop(x, 24, rng=g)
    assert not np.array_equal(y1, y2)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda x, g: A.random_flip(x, rng=g), 1),
        (lambda x, g: A.random_crop(x, 4, rng=g), 2),
        (lambda x, g: A.random_resized_crop(x, 4, rng=g), 40),
        (lambda x, g: A.color_jitter(x, rng=g, brightness=0.1), 8),
    ],
)
def test_words_per_image(call, words):
    x = images((100, 6, 6, 3), np.uint8)
    g = lec7rs.Generator(0)
    call(x, g)
    assert g.state_dict()["counter"] == -(-100 * words // 64) * 16


def test_image_draw_depends_only_on_its_index():
    # Image i of a batch gets the same transform as image i of a longer batch.
    x = images((9, 20, 20, 3), np.uint8)
    y_short = A.random_resized_crop(x[:4], 8, rng=lec7rs.Generator(11))
    y_long = A.random_resized_crop(x, 8, rng=lec7rs.Generator(11))
    np.testing.assert_array_equal(y_short, y_long[:4])


# -- flips and crops against NumPy slicing -------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", ["horizontal", "vertical"])
def test_flip_is_numpy_flip(layout, axis):
    x = images((40, 5, 7, 3), np.float32, layout=layout)
    y, p = A.random_flip(x, rng=lec7rs.Generator(2), axis=axis, layout=layout, return_params=True)
    ax = {"NHWC": {"horizontal": 2, "vertical": 1}, "NCHW": {"horizontal": 3, "vertical": 2}}
    for i in range(len(x)):
        want = np.flip(x[i], axis=ax[layout][axis] - 1) if p["flipped"][i] else x[i]
        np.testing.assert_array_equal(y[i], want)
    assert 5 < p["flipped"].sum() < 35


def test_flip_probability_extremes():
    x = images((10, 3, 4, 3), np.uint8)
    np.testing.assert_array_equal(A.random_flip(x, rng=lec7rs.Generator(0), p=0), x)
    np.testing.assert_array_equal(A.random_flip(x, rng=lec7rs.Generator(0), p=1), x[:, :, ::-1])


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_crop_is_a_slice_of_np_pad(mode, layout):
    x = images((6, 9, 8, 3), np.uint8, layout=layout)
    pad = (3, 1, 2, 5)  # left, top, right, bottom
    y, p = A.random_crop(
        x,
        (10, 7),
        rng=lec7rs.Generator(4),
        padding=pad,
        pad_mode=mode,
        layout=layout,
        fill=200,
        return_params=True,
    )
    xh = to_nhwc(x, layout)
    kw = {"constant_values": 200} if mode == "constant" else {}
    padded = np.pad(xh, [(0, 0), (1, 5), (3, 2), (0, 0)], mode=mode, **kw)
    for i in range(len(x)):
        t, s = p["top"][i], p["left"][i]
        np.testing.assert_array_equal(to_nhwc(y, layout)[i], padded[i, t : t + 10, s : s + 7])


def test_crop_without_padding_at_full_size_is_a_copy():
    x = images((3, 5, 6, 3), np.float32)
    y = A.random_crop(x, (5, 6), rng=lec7rs.Generator(0))
    np.testing.assert_array_equal(y, x)
    assert y is not x


# -- resized crops -------------------------------------------------------------------


def test_resized_crop_boxes_follow_scale_and_ratio():
    x = np.zeros((2000, 60, 90, 1), np.uint8)
    _, p = A.random_resized_crop(x, 8, rng=lec7rs.Generator(1), return_params=True)
    h, w = p["height"], p["width"]
    assert (p["top"] + h <= 60).all() and (p["left"] + w <= 90).all()
    area = h * w / (60 * 90)
    # Rounding of the sides moves area and ratio a little.
    assert area.min() > 0.06 and area.max() <= 1.0
    ratio = w / h
    assert ratio.min() > 0.7 and ratio.max() < 1.45
    # log-uniform ratio: about as many boxes wider than tall as taller.
    assert 0.4 < (ratio > 1).mean() < 0.6


def test_resized_crop_fallback_is_torchvision_centre_crop():
    x = images((3, 30, 50, 3), np.uint8)
    _, p = A.random_resized_crop(
        x, 10, rng=lec7rs.Generator(0), scale=(5.0, 6.0), return_params=True
    )
    # in_ratio 5/3 > 4/3: h = 30, w = round(30 * 4/3) = 40, centred.
    assert (p["height"] == 30).all() and (p["width"] == 40).all()
    assert (p["top"] == 0).all() and (p["left"] == 5).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("antialias", [True, False])
def test_resized_crop_identity(dtype, antialias):
    x = images((4, 12, 9, 3), dtype)
    y = A.random_resized_crop(
        x,
        (12, 9),
        rng=lec7rs.Generator(0),
        scale=(1, 1),
        ratio=(0.75, 0.75),
        antialias=antialias,
    )
    np.testing.assert_array_equal(y, x)


def bilinear(img, out_h, out_w):
    """Plain bilinear with half-pixel centres and clamped borders, in float64
    (torch's interpolate(align_corners=False)), one (h, w, C) image."""
    h, w, _ = img.shape

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(h, out_h)
    x0, x1, fx = axis(w, out_w)
    img = img.astype(np.float64)
    top = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return top[:, x0] * (1 - fx)[None, :, None] + top[:, x1] * fx[None, :, None]


@pytest.mark.parametrize("size", [(30, 41), (7, 5), (12, 9)])
def test_resized_crop_no_antialias_is_bilinear(size):
    x = images((6, 12, 9, 3), np.uint8)
    y, p = A.random_resized_crop(
        x, size, rng=lec7rs.Generator(8), antialias=False, return_params=True
    )
    for i in range(len(x)):
        t, s, h, w = (int(p[k][i]) for k in ("top", "left", "height", "width"))
        want = bilinear(x[i, t : t + h, s : s + w], *size)
        assert np.abs(y[i].astype(float) - want).max() <= 0.5 + 1e-3


def test_antialias_averages_when_shrinking():
    # A one-pixel checkerboard shrunk 4x: the antialiased filter averages
    # to gray, plain bilinear samples 2 pixels and keeps the aliasing.
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    x = np.repeat(board[None, :, :, None], 3, axis=3)
    kw = {"rng": lec7rs.Generator(0), "scale": (1, 1), "ratio": (1, 1)}
    aa = A.random_resized_crop(x, 16, antialias=True, **kw)
    assert np.abs(aa.astype(int) - 127.5).max() <= 10
    y = A.random_resized_crop(x, 13, antialias=False, **kw)
    assert np.abs(y.astype(int) - 127.5).max() > 60


def test_resized_crop_float_not_clamped_and_u8_saturated():
    x = np.full((1, 4, 4, 1), 2.0, np.float32)
    y = A.random_resized_crop(x, 8, rng=lec7rs.Generator(0))
    np.testing.assert_allclose(y, 2.0, rtol=1e-6)
    x8 = np.full((1, 4, 4, 3), 255, np.uint8)
    np.testing.assert_array_equal(A.random_resized_crop(x8, 9, rng=lec7rs.Generator(0)), 255)


# -- colour jitter semantics -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("channels", [1, 3])
def test_jitter_all_zero_is_identity(dtype, layout, channels):
    x = images((4, 6, 7, channels), dtype, layout=layout)
    g = lec7rs.Generator(0)
    y = A.color_jitter(x, rng=g, layout=layout)
    np.testing.assert_array_equal(y, x)
    y = A.color_jitter(x, rng=g, brightness=(1, 1), contrast=0, hue=(0, 0), layout=layout)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
def test_hue_shift_zero_changes_nothing(dtype):
    x = images((4, 6, 7, 3), dtype)
    y = A.color_jitter(x, rng=lec7rs.Generator(0), hue=(0.0, 0.0))
    np.testing.assert_array_equal(y, x)
    # A full turn and back, in two calls: within a unit.
    y = A.color_jitter(x, rng=lec7rs.Generator(0), hue=(0.3, 0.3))
    back = A.color_jitter(y, rng=lec7rs.Generator(0), hue=(-0.3, -0.3))
    assert_close(back, x, dtype) if dtype == np.uint8 else np.testing.assert_allclose(
        back, x, atol=1e-5
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
def test_saturation_and_hue_leave_gray_images_gray(dtype):
    v = images((5, 6, 7, 1), dtype)
    x = np.repeat(v, 3, axis=3)
    y = A.color_jitter(x, rng=lec7rs.Generator(1), saturation=0.9, hue=0.5)
    assert (y[..., 0] == y[..., 1]).all() and (y[..., 1] == y[..., 2]).all()
    if dtype == np.uint8:
        np.testing.assert_array_equal(y, x)
    else:
        np.testing.assert_allclose(y, x, atol=1e-6)


def test_hue_half_turn_is_the_complement():
    x = np.array([[[[200, 100, 0], [10, 200, 50]]]], np.uint8)
    y = A.color_jitter(x, rng=lec7rs.Generator(0), hue=(0.5, 0.5))
    # max + min - channel: the HSV complement keeps max and min.
    np.testing.assert_array_equal(y, [[[[0, 100, 200], [200, 10, 160]]]])
    red = np.array([[[[255, 0, 0]]]], np.uint8)
    np.testing.assert_array_equal(
        A.color_jitter(red, rng=lec7rs.Generator(0), hue=(1 / 3, 1 / 3)), [[[[0, 255, 0]]]]
    )


def test_brightness_rounds_and_saturates():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    for b in (0.5, 1.3, 2.0):
        y = A.color_jitter(x, rng=lec7rs.Generator(0), brightness=(b, b))
        want = np.clip(np.rint(x.astype(np.float32) * np.float32(b)), 0, 255)
        np.testing.assert_array_equal(y, want)
    xf = x.astype(np.float32) / 255
    y = A.color_jitter(xf, rng=lec7rs.Generator(0), brightness=(3, 3))
    np.testing.assert_array_equal(y, np.minimum(xf * np.float32(3), 1))


def test_contrast_and_saturation_zero():
    x = images((3, 5, 6, 3), np.uint8)
    gray = x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    y = A.color_jitter(x, rng=lec7rs.Generator(0), saturation=(0, 0))
    assert np.abs(y - gray[..., None]).max() <= 0.5 + 1e-3
    y = A.color_jitter(x, rng=lec7rs.Generator(0), contrast=(0, 0))
    mean = gray.mean(axis=(1, 2))
    assert np.abs(y - mean[:, None, None, None]).max() <= 0.5 + 1e-3


def test_jitter_order_is_a_uniform_permutation():
    x = np.zeros((4000, 1, 1, 3), np.uint8)
    _, p = A.color_jitter(x, rng=lec7rs.Generator(2), brightness=0.5, return_params=True)
    order = p["order"]
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    counts = np.array([(order[:, 0] == k).sum() for k in range(4)])
    assert (abs(counts - 1000) < 120).all(), counts
    b = p["brightness"]
    assert b.min() >= 0.5 and b.max() < 1.5 and abs(b.mean() - 1) < 0.02


def test_jitter_factors_as_torchvision():
    x = np.zeros((500, 1, 1, 3), np.uint8)
    _, p = A.color_jitter(
        x, rng=lec7rs.Generator(0), brightness=1.5, contrast=0.2, hue=0.25, return_params=True
    )
    assert p["brightness"].min() >= 0 and p["brightness"].max() < 2.5  # max(0, 1 - 1.5)
    assert p["contrast"].min() >= 0.8 and p["contrast"].max() < 1.2
    assert (p["saturation"] == 1).all()
    assert p["hue"].min() >= -0.25 and p["hue"].max() < 0.25


# -- inputs and outputs -----------------------------------------------------------------

CALLS = [
    lambda x, lay, out=None: A.random_flip(x, rng=lec7rs.Generator(1), layout=lay, out=out),
    lambda x, lay, out=None: A.random_crop(
        x,
        (x.shape[1], x.shape[2]) if lay == "NHWC" else x.shape[2:],
        rng=lec7rs.Generator(1),
        padding=2,
        layout=lay,
        out=out,
    ),
    lambda x, lay, out=None: A.random_resized_crop(
        x,
        (x.shape[1], x.shape[2]) if lay == "NHWC" else x.shape[2:],
        rng=lec7rs.Generator(1),
        layout=lay,
        out=out,
    ),
    lambda x, lay, out=None: A.color_jitter(
        x,
        rng=lec7rs.Generator(1),
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.1,
        layout=lay,
        out=out,
    ),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_non_contiguous_input_is_read_correctly(call, layout):
    big = images((6, 20, 22, 3), np.uint8, layout=layout)
    views = [big[::2], big[:, :, ::2]]
    for v in views:
        assert not v.flags.c_contiguous
        np.testing.assert_array_equal(call(v, layout), call(np.ascontiguousarray(v), layout))
    # A Fortran-ordered batch.
    f = np.asfortranarray(big)
    np.testing.assert_array_equal(call(f, layout), call(big, layout))


@pytest.mark.parametrize("call", CALLS)
def test_out_and_in_place(call):
    x = images((3, 10, 12, 3), np.float32)
    want = call(x, "NHWC")
    out = np.full_like(want, 7)
    assert call(x, "NHWC", out) is out
    np.testing.assert_array_equal(out, want)
    y = x.copy()
    assert call(y, "NHWC", y) is y  # out=images: reads a copy first
    np.testing.assert_array_equal(y, want)


def test_empty_batches():
    x = np.zeros((0, 5, 6, 3), np.uint8)
    g = lec7rs.Generator(0)
    assert A.random_flip(x, rng=g).shape == (0, 5, 6, 3)
    assert A.random_crop(x, 3, rng=g).shape == (0, 3, 3, 3)
    assert A.random_resized_crop(x, (2, 4), rng=g).shape == (0, 2, 4, 3)
    assert A.color_jitter(x, rng=g, hue=0.2).shape == (0, 5, 6, 3)
    assert g.state_dict()["counter"] == 0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    c=st.sampled_from([1, 3]),
    out=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    seed=st.integers(0, 2**64 - 1),
    antialias=st.booleans(),
)
def test_resized_crop_any_size_matches_reference(n, h, w, c, out, seed, antialias):
    x = images((n, h, w, c), np.uint8, seed=seed % 1000)
    g = lec7rs.Generator(seed)
    r = ref_random.Generator.from_state_dict(g.state_dict())
    y = A.random_resized_crop(x, out, rng=g, antialias=antialias)
    y_ref, _ = RA.random_resized_crop(x, out, rng=r, antialias=antialias)
    np.testing.assert_array_equal(y, y_ref)


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    pad=st.tuples(*[st.integers(0, 9)] * 4),
    mode=st.sampled_from(["constant", "edge", "reflect", "symmetric"]),
    seed=st.integers(0, 1000),
)
def test_crop_any_padding_matches_reference(h, w, pad, mode, seed):
    x = images((2, h, w, 3), np.uint8, seed=seed)
    size = (max(1, h + pad[1] + pad[3] - seed % 3), max(1, w + pad[0] + pad[2] - seed % 2))
    g = lec7rs.Generator(seed)
    r = ref_random.Generator.from_state_dict(g.state_dict())
    y = A.random_crop(x, size, rng=g, padding=pad, pad_mode=mode)
    y_ref, _ = RA.random_crop(x, size, rng=r, padding=pad, pad_mode=mode)
    np.testing.assert_array_equal(y, y_ref)


def test_math_matches_torchvision_formulas():
    # The reference box of a try is torchvision's formula.
    words = np.zeros(40, np.uint32)
    words[0], words[1] = 0x80000000, 0x40000000  # area u = 0.5, log-ratio u = 0.25
    top, left, h, w = RA.resized_crop_box(words, 100, 100, (0.08, 1.0), (3 / 4, 4 / 3))
    target = 10000 * (0.08 + 0.92 * 0.5)
    aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * 0.25)
    assert (w, h) == (round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect)))
    assert (top, left) == (0, 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["u8", "f32"])
def test_large_output_streamed_matches_scalar(dtype):
    # >= 8 MiB of output: the AVX-512 path writes it with streaming stores.
    x = images((12, 48, 40, 3), dtype)
    size = (500, 480) if dtype == np.uint8 else (260, 240)
    with simd("scalar"):
        want = A.random_resized_crop(x, size, rng=lec7rs.Generator(6))
    for level in LEVELS:
        for n in (1, 2):
            with simd(level), threads(n):
                out = np.empty_like(want)
                got = A.random_resized_crop(x, size, rng=lec7rs.Generator(6), out=out)
            assert got.tobytes() == want.tobytes(), (level, n)
