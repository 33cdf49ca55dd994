"""pytest-benchmark: ``PolyakAverage.update()`` against the NumPy reference.

    pytest benches/test_bench_averaging.py --benchmark-only

Benchmarks measure, they do not assert; ``benches/training_targets.py``
prints the ratio to the machine's memory-traffic bound.
"""

from __future__ import annotations

import numpy as np
import pytest
from lec7rs import reference as ref
from lec7rs.averaging import PolyakAverage

SIZES = [1_000, 1_000_000, 10_000_000]
DECAYS = {"mean": None, "ema": 0.999}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("mode", list(DECAYS))
def test_lec7rs(benchmark, mode, n):
    p = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    avg = PolyakAverage([p], decay=DECAYS[mode])
    avg.update()
    benchmark.group = f"average {mode} n={n}"
    benchmark(avg.update)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("mode", list(DECAYS))
def test_numpy_reference(benchmark, mode, n):
    p = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    state = {"avg": p.copy()}

    def update():
        state["avg"] = ref.polyak_update(state["avg"], p, 5, DECAYS[mode])

    benchmark.group = f"average {mode} n={n}"
    benchmark(update)
