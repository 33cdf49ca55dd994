"""Bad input to lec7rs.augment: a clear exception naming the argument, and
nothing changed (no array written, nothing drawn from the generator)."""

from __future__ import annotations

import lec7rs
import numpy as np
import pytest
from lec7rs import augment as A

X = np.arange(2 * 6 * 5 * 3, dtype=np.uint8).reshape(2, 6, 5, 3)
GRAY = np.zeros((2, 6, 5, 1), np.float32)


def readonly(shape, dtype):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


# (id, call(rng, out) -> None, exception, message regex); `out` is a
# writeable array of the right shape that must stay unchanged.
CASES = [
    ("rank 3", lambda g, o: A.random_flip(X[0], rng=g, out=o), ValueError, r"images: .*4-D.*None"),
    ("rank 5", lambda g, o: A.color_jitter(X[None], rng=g, out=o), ValueError, r"4-D"),
    (
        "float64",
        lambda g, o: A.random_flip(X.astype(np.float64), rng=g, out=o),
        TypeError,
        r"images: .*uint8 or float32.*float64",
    ),
    (
        "int16",
        lambda g, o: A.random_crop(X.astype(np.int16), 3, rng=g, out=o),
        TypeError,
        r"images: .*int16",
    ),
    ("list", lambda g, o: A.random_flip(X.tolist(), rng=g, out=o), TypeError, r"images: .*list"),
    (
        "crop larger than padded",
        lambda g, o: A.random_crop(X, (9, 5), rng=g, padding=1, out=o),
        ValueError,
        r"size: .*larger than the padded image 8x7",
    ),
    (
        "crop size 0",
        lambda g, o: A.random_crop(X, 0, rng=g, out=o),
        ValueError,
        r"size must be positive",
    ),
    ("crop size str", lambda g, o: A.random_crop(X, "3", rng=g, out=o), TypeError, r"size"),
    (
        "negative padding",
        lambda g, o: A.random_crop(X, 3, rng=g, padding=-1, out=o),
        ValueError,
        r"padding must be non-negative",
    ),
    (
        "padding of 3",
        lambda g, o: A.random_crop(X, 3, rng=g, padding=(1, 2, 3), out=o),
        TypeError,
        r"padding",
    ),
    (
        "pad mode",
        lambda g, o: A.random_crop(X, 3, rng=g, pad_mode="wrap", out=o),
        ValueError,
        r"pad_mode",
    ),
    (
        "fill out of uint8",
        lambda g, o: A.random_crop(X, 3, rng=g, padding=1, fill=300, out=o),
        ValueError,
        r"fill.*300.*\[0, 255\]",
    ),
    ("p > 1", lambda g, o: A.random_flip(X, rng=g, p=1.5, out=o), ValueError, r"p.*1\.5"),
    ("p NaN", lambda g, o: A.random_flip(X, rng=g, p=float("nan"), out=o), ValueError, r"p"),
    ("p str", lambda g, o: A.random_flip(X, rng=g, p="0.5", out=o), TypeError, r"p must be"),
    ("axis", lambda g, o: A.random_flip(X, rng=g, axis="diagonal", out=o), ValueError, "axis"),
    ("layout", lambda g, o: A.random_flip(X, rng=g, layout="HWC", out=o), ValueError, "layout"),
    (
        "numpy rng",
        lambda g, o: A.random_flip(X, rng=np.random.default_rng(0), out=o),
        TypeError,
        r"rng must be a lec7rs\.Generator",
    ),
    (
        "scale reversed",
        lambda g, o: A.random_resized_crop(X, 4, rng=g, scale=(0.9, 0.1), out=o),
        ValueError,
        r"scale",
    ),
    (
        "ratio zero",
        lambda g, o: A.random_resized_crop(X, 4, rng=g, ratio=(0, 1), out=o),
        ValueError,
        r"ratio",
    ),
    (
        "scale not a pair",
        lambda g, o: A.random_resized_crop(X, 4, rng=g, scale=0.5, out=o),
        TypeError,
        r"scale must be a pair",
    ),
    (
        "hue > 0.5",
        lambda g, o: A.color_jitter(X, rng=g, hue=0.6, out=o),
        ValueError,
        r"hue must be in \[0, 0\.5\]",
    ),
    (
        "hue range",
        lambda g, o: A.color_jitter(X, rng=g, hue=(-0.7, 0.1), out=o),
        ValueError,
        r"hue.*-0\.5, 0\.5",
    ),
    (
        "negative brightness",
        lambda g, o: A.color_jitter(X, rng=g, brightness=-0.1, out=o),
        ValueError,
        r"brightness must be non-negative",
    ),
    (
        "brightness range reversed",
        lambda g, o: A.color_jitter(X, rng=g, brightness=(1.5, 0.5), out=o),
        ValueError,
        r"brightness",
    ),
    (
        "contrast NaN",
        lambda g, o: A.color_jitter(X, rng=g, contrast=float("nan"), out=o),
        ValueError,
        r"contrast",
    ),
    (
        "saturation on gray",
        lambda g, o: A.color_jitter(GRAY, rng=g, saturation=0.3, out=o),
        ValueError,
        r"saturation needs 3 \(RGB\) channels, got 1",
    ),
    (
        "hue on gray",
        lambda g, o: A.color_jitter(GRAY, rng=g, hue=0.1, out=o),
        ValueError,
        r"hue needs 3",
    ),
    (
        "4 channels",
        lambda g, o: A.color_jitter(np.zeros((2, 6, 5, 4), np.uint8), rng=g, out=o),
        ValueError,
        r"1 or 3 channels, got 4",
    ),
    (
        "NCHW read as NHWC",
        lambda g, o: A.color_jitter(X.transpose(0, 3, 1, 2), rng=g, brightness=0.2, out=o),
        ValueError,
        r"1 or 3 channels, got 5",
    ),
    (
        "out wrong shape",
        lambda g, o: A.random_crop(X, 4, rng=g, out=np.zeros((2, 4, 5, 3), np.uint8)),
        ValueError,
        r"out has shape \(2, 4, 5, 3\) but the result has shape \(2, 4, 4, 3\)",
    ),
    (
        "out wrong layout",
        lambda g, o: A.random_flip(X, rng=g, out=np.zeros((2, 3, 6, 5), np.uint8)),
        ValueError,
        r"out has shape",
    ),
    (
        "out wrong dtype",
        lambda g, o: A.random_flip(X, rng=g, out=np.zeros(X.shape, np.float32)),
        TypeError,
        r"out: expected a uint8",
    ),
    (
        "out non-contiguous",
        lambda g, o: A.random_flip(X, rng=g, out=np.zeros((2, 6, 10, 3), np.uint8)[:, :, ::2]),
        ValueError,
        r"out must be C-contiguous",
    ),
    (
        "out read-only",
        lambda g, o: A.color_jitter(X, rng=g, brightness=0.1, out=readonly(X.shape, np.uint8)),
        ValueError,
        r"out is read-only",
    ),
    (
        "out not an array",
        lambda g, o: A.random_flip(X, rng=g, out=[0] * 10),
        TypeError,
        r"out: expected",
    ),
]


@pytest.mark.parametrize(("name", "call", "exc", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(name, call, exc, match):
    g = lec7rs.Generator(42)
    g.random(5)
    state = g.state_dict()
    out = np.full(X.shape, 9, np.uint8)
    x_before = X.copy()
    with pytest.raises(exc, match=match):
        call(g, out)
    assert g.state_dict() == state, "the call consumed random numbers"
    np.testing.assert_array_equal(out, 9)
    np.testing.assert_array_equal(X, x_before)


def test_error_in_out_leaves_given_out_untouched():
    g = lec7rs.Generator(0)
    out = np.full((2, 4, 4, 3), 5, np.uint8)
    with pytest.raises(ValueError, match="hue"):
        A.color_jitter(X[:, :4, :4], rng=g, hue=2.0, out=out)
    np.testing.assert_array_equal(out, 5)
    assert g.state_dict()["counter"] == 0
