"""`lec7rs bench --quick --json`: runs, and its JSON has every kernel."""

from __future__ import annotations

import json
import subprocess
import sys

import lec7rs.optim as optim
from lec7rs.bench.cases import CASES

KERNELS = {"lbfgs_two_loop", "dropout", "random_crop"}


def test_bench_covers_every_update_rule():
    # Every first-order optimizer class has a bench case named after it
    # (SGD's is timed with momentum).
    names = {c.__name__.lower() for c in vars(optim).values() if getattr(c, "_rule", None)}
    names = {"sgd_momentum" if n == "sgd" else n for n in names}
    assert names <= set(CASES), names - set(CASES)
    assert KERNELS <= set(CASES)


def test_quick_bench_json_has_every_kernel():
    proc = subprocess.run(
        [sys.executable, "-m", "lec7rs", "bench", "--quick", "--json", "--threads", "1,2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert set(res["kernels"]) == set(CASES)
    assert res["threads"] == [1, 2]
    for name, entry in res["kernels"].items():
        if not entry["available"]:  # an optional kernel missing from this build
            assert name == "random_crop" and entry["reason"]
            continue
        assert entry["results"], name
        assert {r["threads"] for r in entry["results"]} == {1, 2}
        for r in entry["results"]:
            ns = r["ns_per_element"]
            assert ns["lec7rs"] > 0 and ns["numpy"] > 0, name
            assert (
                abs(r["speedup"]["numpy"] - ns["numpy"] / ns["lec7rs"])
                < 1e-9 * r["speedup"]["numpy"]
            )
