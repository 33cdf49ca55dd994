"""Bad input to lec7rs.regularization: a clear exception naming the argument,
and nothing changed (no array written, nothing drawn from the generator)."""

from __future__ import annotations

import lec7rs
import numpy as np
import pytest
from lec7rs import regularization as R

X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
IMG = np.linspace(-1, 1, 2 * 3 * 8 * 8, dtype=np.float64).reshape(2, 3, 8, 8)


def mask_of(shape):
    return np.ones(shape, bool)


def readonly(shape, dtype):
    a = np.zeros(shape, dtype)
    a.flags.writeable = False
    return a


# (id, call(rng, out) -> None, exception, message regex)
CASES = [
    ("p > 1", lambda g, o: R.dropout(X, 1.5, rng=g, out=o), ValueError, r"p.*1\.5.*\[0, 1\]"),
    ("p < 0", lambda g, o: R.dropout(X, -0.1, rng=g, out=o), ValueError, r"p.*\[0, 1\]"),
    ("p NaN", lambda g, o: R.dropout(X, float("nan"), rng=g, out=o), ValueError, r"p.*NaN"),
    ("p eval", lambda g, o: R.dropout(X, 2.0, rng=g, training=False, out=o), ValueError, "p"),
    ("p str", lambda g, o: R.dropout(X, "0.5", rng=g, out=o), TypeError, "p must be a real"),
    ("p bool", lambda g, o: R.dropout(X, True, rng=g, out=o), TypeError, "p must be a real"),
    (
        "int x",
        lambda g, o: R.dropout(np.ones((4, 6), np.int64), 0.5, rng=g, out=o),
        TypeError,
        r"x: .*float32 or float64.*int64",
    ),
    ("list x", lambda g, o: R.dropout([1.0, 2.0], 0.5, rng=g, out=o), TypeError, r"x: .*list"),
    (
        "float16 x",
        lambda g, o: R.dropout(X.astype(np.float16), 0.5, rng=g, out=o),
        TypeError,
        r"x: .*float16",
    ),
    (
        "numpy rng",
        lambda g, o: R.dropout(X, 0.5, rng=np.random.default_rng(0), out=o),
        TypeError,
        r"rng must be a lec7rs\.Generator.*counter-based",
    ),
    (
        "non-contiguous out",
        lambda g, o: R.dropout(X, 0.5, rng=g, out=np.zeros((4, 12), np.float32)[:, ::2]),
        ValueError,
        r"out must be C-contiguous",
    ),
    (
        "read-only out",
        lambda g, o: R.dropout(X, 0.5, rng=g, out=readonly((4, 6), np.float32)),
        ValueError,
        r"out is read-only",
    ),
    (
        "out shape",
        lambda g, o: R.dropout(X, 0.5, rng=g, out=np.zeros((6, 4), np.float32)),
        ValueError,
        r"x has shape \(4, 6\) but out has shape \(6, 4\)",
    ),
    (
        "out dtype",
        lambda g, o: R.dropout(X, 0.5, rng=g, out=np.zeros((4, 6), np.float64)),
        TypeError,
        r"out: expected a float32",
    ),
    (
        "out overlaps x",
        lambda g, o: R.dropout(o, 0.5, rng=g, out=o[::-1]),
        ValueError,
        r"out overlaps x",
    ),
    (
        "mask shape",
        lambda g, o: R.dropout_backward(X, mask_of((4, 5)), 0.5),
        ValueError,
        r"dout has shape \(4, 6\) but mask has shape \(4, 5\)",
    ),
    (
        "mask dtype",
        lambda g, o: R.dropout_backward(X, np.ones((4, 6), np.uint8), 0.5),
        TypeError,
        r"mask: expected a bool NumPy array, got an array of dtype uint8",
    ),
    (
        "dout int",
        lambda g, o: R.dropout_backward(np.ones((4, 6), np.int32), mask_of((4, 6)), 0.5),
        TypeError,
        r"dout",
    ),
    (
        "backward p",
        lambda g, o: R.dropout_backward(X, mask_of((4, 6)), 1.01),
        ValueError,
        r"p",
    ),
    (
        "dropconnect p",
        lambda g, o: R.dropconnect(X, -1, rng=g),
        ValueError,
        r"p",
    ),
    (
        "dropconnect_backward mask",
        lambda g, o: R.dropconnect_backward(X, mask_of((24,)), 0.5),
        ValueError,
        r"mask has shape \(24,\)",
    ),
    ("depth mode", lambda g, o: R.stochastic_depth(X, 0.5, rng=g, mode="col"), ValueError, "mode"),
    ("depth p", lambda g, o: R.stochastic_depth(X, 1.2, rng=g), ValueError, "p"),
    (
        "depth 0-d row",
        lambda g, o: R.stochastic_depth(np.zeros(()), 0.5, rng=g, mode="row"),
        ValueError,
        r"at least one dimension",
    ),
    (
        "pool output > input",
        lambda g, o: R.fractional_max_pool2d(IMG, 9, rng=g, overlapping=False),
        ValueError,
        r"output_size: output height 9 is larger than the input height 8",
    ),
    (
        "pool kernel too big",
        lambda g, o: R.fractional_max_pool2d(IMG, (4, 8), rng=g, kernel_size=2),
        ValueError,
        r"output_size: output width 8 with kernel width 2 needs an input width of at least 9 "
        r".*, got 8",
    ),
    (
        "pool 3-D",
        lambda g, o: R.fractional_max_pool2d(IMG[0], 4, rng=g),
        ValueError,
        r"x: expected a 4-D \(N, C, H, W\) array, got shape \(3, 8, 8\)",
    ),
    ("pool size 0", lambda g, o: R.fractional_max_pool2d(IMG, 0, rng=g), ValueError, "output_size"),
    (
        "pool size float",
        lambda g, o: R.fractional_max_pool2d(IMG, 4.0, rng=g),
        TypeError,
        "output_size",
    ),
    (
        "pool size triple",
        lambda g, o: R.fractional_max_pool2d(IMG, (4, 4, 4), rng=g),
        TypeError,
        "output_size",
    ),
    (
        "pool kernel 0",
        lambda g, o: R.fractional_max_pool2d(IMG, 4, rng=g, kernel_size=(0, 2)),
        ValueError,
        "kernel_size",
    ),
    (
        "pool int x",
        lambda g, o: R.fractional_max_pool2d(IMG.astype(np.int32), 4, rng=g),
        TypeError,
        r"x: .*int32",
    ),
    (
        "argmax out of range",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((2, 3, 4, 4)), np.full((2, 3, 4, 4), 64, np.int64), IMG.shape
        ),
        ValueError,
        r"argmax: entry 0 is 64, outside an input plane of 8 x 8 = 64",
    ),
    (
        "argmax negative",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((2, 3, 4, 4)), np.full((2, 3, 4, 4), -1, np.int64), IMG.shape
        ),
        ValueError,
        r"argmax: entry 0 is -1",
    ),
    (
        "argmax dtype",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), np.int32), IMG.shape
        ),
        TypeError,
        r"argmax: expected an int64 NumPy array, got an array of dtype int32",
    ),
    (
        "argmax shape",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((2, 3, 4, 4)), np.zeros((2, 3, 4, 3), np.int64), IMG.shape
        ),
        ValueError,
        r"dout has shape \(2, 3, 4, 4\) but argmax has shape \(2, 3, 4, 3\)",
    ),
    (
        "input_shape N mismatch",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((1, 3, 4, 4)), np.zeros((1, 3, 4, 4), np.int64), IMG.shape
        ),
        ValueError,
        r"N and C must match",
    ),
    (
        "input_shape 3-D",
        lambda g, o: R.fractional_max_pool2d_backward(
            np.ones((2, 3, 4, 4)), np.zeros((2, 3, 4, 4), np.int64), (3, 8, 8)
        ),
        ValueError,
        r"input_shape: expected a 4-D",
    ),
]


@pytest.mark.parametrize(("name", "call", "exc", "match"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(name, call, exc, match):
    g = lec7rs.Generator(3)
    g.random(5)
    before = g.state_dict()
    out = np.full((4, 6), 7.0, np.float32)
    with pytest.raises(exc, match=match):
        call(g, out)
    assert g.state_dict() == before
    np.testing.assert_array_equal(out, np.full((4, 6), 7.0, np.float32))


def test_exhausted_generator_changes_nothing():
    g = lec7rs.Generator(0)
    state = {**g.state_dict(), "counter": 2**128 - 1}
    g.load_state_dict(state)
    x = X.copy()
    with pytest.raises(ValueError, match=r"rng: .*exhausted"):
        R.dropout(x, 0.5, rng=g, out=x)
    np.testing.assert_array_equal(x, X)
    assert g.state_dict() == state
