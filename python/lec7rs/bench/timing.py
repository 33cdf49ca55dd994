"""Timing of one call: the best of several rounds, each long enough to be
measured (as ``timeit`` does; the minimum is the least disturbed run)."""

from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], *, min_time: float, rounds: int) -> float:
    """Seconds per call of ``fn``: one warm-up call (page faults, state
    allocation), then ``rounds`` rounds of ``k`` calls, ``k`` chosen so that
    a round takes at least ``min_time / rounds``; the fastest round wins."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    target = min_time / rounds
    calls = max(1, min(100_000, int(target / max(first, 1e-7))))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best
