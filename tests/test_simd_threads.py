"""Bit-identical results across SIMD levels and thread counts, and a pool
that survives fork."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time

import lec7rs
import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import LEVELS, simd, threads
from lec7rs import _core

# Lengths around every lane width (4, 8, 16) and the chunk / inline limits.
LENGTHS = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000, 16384 + 5, 3 * 16384 + 17]


def trajectory(cls, kw, dtype, seed=7, steps=12):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n).astype(dtype) for n in LENGTHS]
    opt = cls(params, **kw)
    for _ in range(steps):
        opt.step([rng.standard_normal(n).astype(dtype) for n in LENGTHS])
    return params, opt.state_dict()


def assert_same(a, b):
    for x, y in zip(a[0], b[0]):
        assert x.tobytes() == y.tobytes()
    for i, entry in a[1]["state"].items():
        for k, v in entry.items():
            other = b[1]["state"][i][k]
            assert (v.tobytes() == other.tobytes()) if isinstance(v, np.ndarray) else v == other


def test_scalar_is_always_available():
    assert LEVELS[-1] == "scalar"
    assert lec7rs.simd_level() in LEVELS


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_every_simd_level_is_bit_identical_to_scalar(cls, rule, kw, dtype, level):
    with simd("scalar"):
        want = trajectory(cls, kw, dtype)
    with simd(level):
        got = trajectory(cls, kw, dtype)
    assert_same(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_one_and_many_threads_are_bit_identical(cls, rule, kw, dtype):
    # 200k elements in total: far above the inline limit, so the pool runs.
    with threads(1):
        want = trajectory(cls, kw, dtype)
    for n in (2, 3):
        with threads(n):
            assert_same(trajectory(cls, kw, dtype), want)


def test_unsupported_or_unknown_level_is_refused():
    with pytest.raises(ValueError, match="unknown SIMD level"):
        _core.set_simd_level("sse9")
    missing = [lv for lv in ("avx512", "avx2", "neon") if lv not in LEVELS]
    for level in missing:
        with pytest.raises(ValueError, match="does not support"):
            _core.set_simd_level(level)


def test_thread_count_is_validated():
    before = lec7rs.get_num_threads()
    for bad in (0, -1, 10**6):
        with pytest.raises(ValueError, match="threads"):
            lec7rs.set_num_threads(bad)
    with pytest.raises(TypeError):
        lec7rs.set_num_threads(2.5)
    assert lec7rs.get_num_threads() == before


def _child_step(queue):
    p = np.ones(200_000, np.float32)
    opt = lec7rs.optim.Adam([p], lr=0.1)
    opt.step([np.full_like(p, 0.5)])
    queue.put(float(p[0]))


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX-only")
def test_forked_child_can_run_kernels_after_the_pool_started():
    with threads(2):
        # Start the pool in the parent.
        p = np.ones(200_000, np.float32)
        lec7rs.optim.SGD([p], lr=0.1).step([np.ones_like(p)])
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_child_step, args=(queue,))
        child.start()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            pytest.fail("the forked child hung in a kernel")
        assert child.exitcode == 0
        assert queue.get(timeout=5) == pytest.approx(0.9)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_os_fork_child_runs_every_kernel_family():
    with threads(2):
        p = np.ones(200_000, np.float64)
        lec7rs.optim.Adam([p]).step([np.ones_like(p)])
        pid = os.fork()
        if pid == 0:  # child: exit code tells the parent whether it worked
            try:
                q = np.ones(200_000, np.float64)
                lec7rs.optim.Adam([q], lr=0.5).step([np.ones_like(q)])
                # one kernel of every family, each big enough for the pool
                rng = lec7rs.Generator(1)
                x = np.ones(200_000, np.float32)
                lec7rs.regularization.dropout(x, 0.5, rng=rng)
                lec7rs.averaging.PolyakAverage([x]).update()
                lec7rs.augment.random_flip(np.zeros((64, 32, 32, 3), np.uint8), rng=rng)
                res = lec7rs.optimize.minimize(
                    lambda z: (float(np.sum((z - 1) ** 2)), 2 * (z - 1)), np.zeros(100_000)
                )
                os._exit(0 if abs(q[0] - 0.5) < 1e-6 and res.status == 0 else 1)
            except BaseException:
                os._exit(2)
        deadline = 60.0
        start = time.monotonic()
        while time.monotonic() - start < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0
                return
            time.sleep(0.05)
        os.kill(pid, 9)
        pytest.fail("the forked child hung in a kernel")
