"""Every script of examples/ runs with its default arguments and prints its
result (distributed_digits.py runs under mpiexec in test_distributed.py).
A new script without an entry here fails ``test_every_example_is_run``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> (arguments, a pattern its output must match)
RUNS = {
    "two_layer_digits.py": ([], r"final val accuracy: 0\.9\d"),
    "transfer_frozen.py": ([], r"result: frozen 0\.\d+, fine-tuned 0\.\d+, from scratch 0\.\d+"),
    "logreg_lbfgs.py": ([], r"lec7rs L-BFGS +\d+ +\d+ +0\.\d+ +0\.9\d"),
    "bf16_training.py": ([], r"bfloat16"),
}
ELSEWHERE = {"distributed_digits.py": "tests/test_distributed.py (under mpiexec)"}


def test_every_example_is_run():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(RUNS) | set(ELSEWHERE), scripts ^ (set(RUNS) | set(ELSEWHERE))


@pytest.mark.parametrize("script", sorted(RUNS))
def test_example_runs(script):
    args, pattern = RUNS[script]
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert re.search(pattern, r.stdout), r.stdout[-2000:]
