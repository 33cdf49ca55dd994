"""The cache of freed output buffers: a new output array of 1 MiB or more
may reuse the memory of one freed before, so every kernel that returns one
must write every byte of it, and a buffer must never be reused while any
view of it is alive."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading

import lec7rs
import numpy as np
import pytest
from lec7rs import _core
from lec7rs import augment as A
from lec7rs import regularization as R

MIB = 1 << 20

_x32 = np.random.default_rng(0).standard_normal(600_000).astype(np.float32)
_x64 = _x32.astype(np.float64)
_w = np.random.default_rng(1).standard_normal((600, 700)).astype(np.float32)
_img = np.random.default_rng(2).standard_normal((4, 8, 96, 96)).astype(np.float32)
_batch = np.random.default_rng(3).integers(0, 256, (48, 128, 128, 3), dtype=np.uint8)
_rgb = np.random.default_rng(4).random((16, 3, 96, 96), dtype=np.float32)
_mask32 = R.dropout(_x32, 0.3, rng=lec7rs.Generator(9))[1]
_mask_w = R.dropconnect(_w, 0.3, rng=lec7rs.Generator(9))[1]
_pool_y, _pool_arg = R.fractional_max_pool2d(_img, (64, 64), rng=lec7rs.Generator(9))


# Each case draws from `g` (or not) and returns arrays, some of them new
# outputs of at least 1 MiB.
CASES = {
    "dropout f32": lambda g: R.dropout(_x32, 0.3, rng=g),
    "dropout f64, original form": lambda g: R.dropout(_x64, 0.3, rng=g, inverted=False),
    "dropout p=1": lambda g: R.dropout(_x32, 1.0, rng=g),
    "dropout p=0": lambda g: R.dropout(_x64, 0.0, rng=g),
    "dropout eval": lambda g: R.dropout(_x32, 0.3, rng=g, training=False),
    "dropout_backward": lambda g: R.dropout_backward(_x32, _mask32, 0.3),
    "dropconnect": lambda g: R.dropconnect(_w, 0.4, rng=g),
    "dropconnect_backward": lambda g: R.dropconnect_backward(_w, _mask_w, 0.4),
    "stochastic_depth row": lambda g: R.stochastic_depth(_img, 0.5, rng=g, mode="row"),
    "stochastic_depth batch": lambda g: R.stochastic_depth(_img, 0.5, rng=g, mode="batch"),
    "stochastic_depth eval": lambda g: R.stochastic_depth(_img, 0.5, rng=g, training=False),
    "fractional_max_pool2d": lambda g: R.fractional_max_pool2d(_img, (64, 64), rng=g),
    "fractional_max_pool2d disjoint": lambda g: R.fractional_max_pool2d(
        _img, (64, 64), rng=g, overlapping=False, pseudo_random=False
    ),
    "fractional_max_pool2d_backward": lambda g: R.fractional_max_pool2d_backward(
        _pool_y, _pool_arg, _img.shape
    ),
    "random_flip": lambda g: A.random_flip(_batch, rng=g),
    "random_flip vertical": lambda g: A.random_flip(_batch, rng=g, axis="vertical"),
    "random_crop constant": lambda g: A.random_crop(_batch, 120, rng=g, padding=8, fill=7),
    "random_crop zero fill": lambda g: A.random_crop(_batch, 128, rng=g, padding=16),
    "random_crop reflect": lambda g: A.random_crop(
        _batch, 128, rng=g, padding=(4, 12), pad_mode="reflect"
    ),
    "random_crop float32 NCHW": lambda g: A.random_crop(_rgb, 90, rng=g, padding=5, layout="NCHW"),
    "random_resized_crop": lambda g: A.random_resized_crop(_batch, 112, rng=g),
    "color_jitter": lambda g: A.color_jitter(
        _batch, rng=g, brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1
    ),
    "color_jitter identity": lambda g: A.color_jitter(_batch, rng=g),
    "Generator.random f32": lambda g: g.random(400_000, dtype=np.float32),
    "Generator.random f64": lambda g: g.random((300, 700)),
}


def _arrays(result) -> list[np.ndarray]:
    items = result if isinstance(result, tuple) else (result,)
    return [a for a in items if isinstance(a, np.ndarray)]


def _big(arrays) -> set[int]:
    return {a.ctypes.data for a in arrays if a.nbytes >= MIB}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_reused_buffer_is_overwritten_completely(name):
    f = CASES[name]
    _core._clear_buffer_cache()
    g = lec7rs.Generator(5)
    state = g.state_dict()
    first = _arrays(f(g))
    want = [a.copy() for a in first]
    addresses = _big(first)
    assert addresses, "the case must return a new array of at least 1 MiB"
    # Poison the outputs, then free them: the next call gets their memory.
    for a in first:
        a.view(np.uint8)[...] = 0xA5
    del first, a
    assert _core._buffer_cache()[0] >= 1
    g.load_state_dict(state)
    second = _arrays(f(g))
    assert _big(second) & addresses, "the second call did not reuse a buffer"
    assert len(second) == len(want)
    for got, expected in zip(second, want):
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_cached_arrays_are_ordinary_arrays():
    y, mask = R.dropout(_x32, 0.5, rng=lec7rs.Generator(1))
    for a in (y, mask):
        assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
        assert a.ctypes.data % 16 == 0
        b = pickle.loads(pickle.dumps(a))
        np.testing.assert_array_equal(a, b)
    y += 1  # writeable in place
    assert np.array_equal(mask, y != 1)


def test_a_buffer_is_not_reused_while_a_view_of_it_lives():
    _core._clear_buffer_cache()
    g = lec7rs.Generator(3)
    y, mask = R.dropout(_x32, 0.5, rng=g)
    view = y[::3]
    kept = view.copy()
    mask_view = mask.reshape(-1, 8)
    kept_mask = mask_view.copy()
    address = y.ctypes.data
    del y, mask
    for _ in range(3):
        y2, mask2 = R.dropout(_x32, 0.5, rng=g)
        assert y2.ctypes.data != address
        y2[...] = -1
        mask2[...] = False
        del y2, mask2
    np.testing.assert_array_equal(view, kept)
    np.testing.assert_array_equal(mask_view, kept_mask)
    # Once the views are gone, the buffer is free to reuse.
    del view, mask_view
    y3, _ = R.dropout(_x32, 0.5, rng=g)
    assert y3.ctypes.data == address


def test_the_cache_is_bounded_and_can_be_cleared():
    _core._clear_buffer_cache()
    assert _core._buffer_cache()[:2] == (0, 0)
    cap = _core._buffer_cache()[2]
    assert cap == 256 * MIB
    g = lec7rs.Generator(0)
    held = [g.random(n) for n in range(200_000, 200_030)]  # 30 sizes of ~1.6 MB
    del held
    count, size, _ = _core._buffer_cache()
    assert 1 <= count <= 16 and size <= cap
    small = g.random(1000)  # below 1 MiB: plain NumPy memory
    assert small.base is None
    _core._clear_buffer_cache()
    assert _core._buffer_cache()[:2] == (0, 0)


def test_concurrent_calls_on_separate_arrays_match_sequential_ones():
    inputs = [
        np.random.default_rng(i).standard_normal(400_000).astype(np.float32) for i in range(4)
    ]

    def run(i):
        g = lec7rs.Generator(100 + i)
        out = []
        for _ in range(15):
            y, m = R.dropout(inputs[i], 0.5, rng=g)
            out.append((float(y.sum(dtype=np.float64)), int(m.sum())))
        return out

    want = [run(i) for i in range(4)]
    got = [None] * 4

    def worker(i):
        got[i] = run(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def _run(code: str, **env) -> str:
    full = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_environment_sets_the_cap_and_zero_turns_the_cache_off():
    code = (
        "import numpy as np, lec7rs\n"
        "from lec7rs import _core\n"
        "y = lec7rs.Generator(0).random(1 << 20)\n"
        "print(_core._buffer_cache()[2], y.base is None, y.flags.owndata)\n"
        "del y\n"
        "print(_core._buffer_cache()[0])\n"
    )
    assert _run(code, LEC7RS_BUFFER_CACHE_MB="0").split() == ["0", "True", "True", "0"]
    assert _run(code, LEC7RS_BUFFER_CACHE_MB="64").split() == [str(64 * MIB), "False", "False", "1"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_uses_the_cache():
    code = (
        "import os, numpy as np, lec7rs\n"
        "from lec7rs import regularization as R\n"
        "x = np.ones(1 << 20, np.float32)\n"
        "g = lec7rs.Generator(0)\n"
        "for _ in range(3):\n"
        "    R.dropout(x, 0.5, rng=g)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    for _ in range(3):\n"
        "        y, m = R.dropout(x, 0.5, rng=g)\n"
        "        assert np.array_equal(y, m * np.float32(2))\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print(os.waitstatus_to_exitcode(status))\n"
    )
    assert _run(code) == "0"
