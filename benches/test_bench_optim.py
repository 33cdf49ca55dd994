"""pytest-benchmark: a whole ``step`` of lec7rs.optim against the NumPy
reference, and against torch.optim (fused) when torch is importable.

    pytest benches/test_bench_optim.py --benchmark-only
    pytest benches/test_bench_optim.py --benchmark-only --benchmark-group-by=param:n

Benchmarks measure, they do not assert; `benches/targets.py` prints the
issue's ratios against the machine's roofline.
"""

from __future__ import annotations

import numpy as np
import pytest
from lec7rs import optim
from lec7rs import reference as ref

try:
    import torch
except ImportError:  # torch is never required
    torch = None

SIZES = [1_000, 1_000_000, 10_000_000]
RULES = {
    "adam": (optim.Adam, ref.torch_adam, {}),
    "sgd_momentum": (optim.SGD, ref.torch_sgd, {"lr": 1e-3, "momentum": 0.9}),
    "adagrad": (optim.Adagrad, ref.torch_adagrad, {}),
    "rmsprop": (optim.RMSprop, ref.torch_rmsprop, {}),
}


def data(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", list(RULES))
def test_lec7rs(benchmark, rule, n):
    cls, _, kw = RULES[rule]
    p, g = data(n)
    opt = cls([p], **kw)
    grads = [g]
    benchmark.group = f"{rule} n={n}"
    benchmark(opt.step, grads)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", list(RULES))
def test_numpy_reference(benchmark, rule, n):
    _, fn, kw = RULES[rule]
    p, g = data(n)
    box = {"p": p, "state": {}}

    def step():
        box["p"], box["state"] = fn(box["p"], g, box["state"], **kw)

    benchmark.group = f"{rule} n={n}"
    benchmark(step)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("rule", ["adam", "sgd_momentum", "adagrad"])
def test_torch_fused(benchmark, rule, n):
    p, g = data(n)
    tp = torch.nn.Parameter(torch.from_numpy(p))
    tp.grad = torch.from_numpy(g)
    opt = {
        "adam": lambda: torch.optim.Adam([tp], fused=True),
        "sgd_momentum": lambda: torch.optim.SGD([tp], lr=1e-3, momentum=0.9, fused=True),
        "adagrad": lambda: torch.optim.Adagrad([tp], fused=True),
    }[rule]()
    benchmark.group = f"{rule} n={n}"
    benchmark(opt.step)
