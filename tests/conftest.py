"""Shared fixtures: a seeded RNG, and helpers that force SIMD levels and
thread counts and always restore them."""

from __future__ import annotations

import contextlib
import os

import lec7rs
import numpy as np
import pytest
from hypothesis import settings
from lec7rs import _core

# Property tests and fuzzing draw the same examples on every run, so that a
# test run (and CI) passes or fails reproducibly; LEC7RS_FUZZ_RANDOM=1 draws
# new ones each run (with LEC7RS_FUZZ_EXAMPLES=1000, say) to explore more.
RANDOM_EXAMPLES = os.environ.get("LEC7RS_FUZZ_RANDOM") == "1"
settings.register_profile("lec7rs", derandomize=not RANDOM_EXAMPLES)
settings.load_profile("lec7rs")

# Every SIMD level this CPU has, best first (scalar is always last).
LEVELS = _core.simd_levels()


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@contextlib.contextmanager
def simd(level: str):
    before = lec7rs.simd_level()
    _core.set_simd_level(level)
    try:
        yield
    finally:
        _core.set_simd_level(before)


def in_forked_child(fn) -> int:
    """Runs ``fn()`` in a forked child; its exit code: 0 when ``fn``
    returned True, 1 when it raised, 2 when it returned something else."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if fn() is True else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@contextlib.contextmanager
def threads(n: int):
    before = lec7rs.get_num_threads()
    lec7rs.set_num_threads(n)
    try:
        yield
    finally:
        lec7rs.set_num_threads(before)


def snapshot(opt) -> dict:
    """Copies of everything an optimizer owns or updates, for "nothing changed"."""
    return {
        "params": [p.copy() for p in opt._params],
        "state": opt.state_dict(),
        "groups": [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
    }


def assert_unchanged(opt, before: dict) -> None:
    after = snapshot(opt)
    assert len(after["params"]) == len(before["params"])
    for a, b in zip(after["params"], before["params"]):
        np.testing.assert_array_equal(a, b)
    assert_state_equal(after["state"], before["state"])
    assert after["groups"] == before["groups"]


def assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert a["param_groups"] == b["param_groups"]
    assert a["skipped_steps"] == b["skipped_steps"]
    assert a["state"].keys() == b["state"].keys()
    for i in a["state"]:
        sa, sb = a["state"][i], b["state"][i]
        assert sa.keys() == sb.keys(), i
        for k in sa:
            if isinstance(sa[k], np.ndarray):
                assert sa[k].dtype == sb[k].dtype
                np.testing.assert_array_equal(sa[k], sb[k])
            else:
                assert sa[k] == sb[k]


def pytest_terminal_summary(terminalreporter):
    """How many fuzz cases ran per function (tests/test_fuzz.py)."""
    import sys

    fuzz = sys.modules.get("test_fuzz")
    counts = getattr(fuzz, "FUZZ_COUNTS", None)
    if counts:
        mode = "random" if RANDOM_EXAMPLES else "fixed (LEC7RS_FUZZ_RANDOM=1: random)"
        terminalreporter.section(f"fuzz cases per function, examples {mode}")
        for name, n in sorted(counts.items()):
            terminalreporter.write_line(f"{n:8d}  {name}")
