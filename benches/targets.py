"""The speed targets of the core issue, measured side by side in one run.

    python benches/targets.py            # full sizes (needs ~2 GB of RAM)
    python benches/targets.py --quick    # smaller sizes, for a smoke run

It builds `../shared/bench/roofline.c` (the ideal fused Adam and the copy
bandwidth of this machine) with gcc, runs it at the thread count under test,
then times lec7rs on the same sizes in this process and prints each ratio.
Times are the best of several repeats (as roofline.c does), except the
per-call cost of a small step, which is the median of many calls.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import lec7rs
import numpy as np
from lec7rs import optim
from lec7rs import reference as ref

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROOFLINE_C = ROOT.parent / "shared" / "bench" / "roofline.c"


def build_roofline() -> str | None:
    if not ROOFLINE_C.exists() or shutil.which("gcc") is None:
        return None
    exe = os.path.join(tempfile.mkdtemp(), "roofline")
    cmd = [
        "gcc",
        "-O3",
        "-march=native",
        "-fno-math-errno",
        "-fopenmp",
        str(ROOFLINE_C),
        "-o",
        exe,
        "-lm",
    ]
    subprocess.run(cmd, check=True)
    return exe


def roofline(exe: str, n: int, reps: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [exe, str(n), str(reps)], env=env, capture_output=True, text=True, check=True
    ).stdout
    m = re.search(r"copy ([\d.]+) GB/s.*adam ([\d.]+) ms", out)
    return {"copy_gbs": float(m.group(1)), "adam_ms": float(m.group(2)), "line": out.strip()}


def best_of(fn, reps: int) -> float:
    fn()  # warm: page faults, state allocation
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def median_call(fn, calls: int, rounds: int = 7) -> float:
    fn()
    per_round = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        per_round.append((time.perf_counter() - t) / calls)
    return statistics.median(per_round)


def print_table(rows) -> None:
    """The side-by-side table of the target scripts: rows of (target,
    lec7rs, baseline, ratio, goal, met), columns padded to fit."""
    head = ("target", "lec7rs", "baseline", "ratio", "goal", "met")
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    print()
    for r in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def data(n: int, dtype=np.float32):
    p = np.ones(n, dtype)
    g = (0.01 * (np.arange(n) % 7) - 0.03).astype(dtype)
    return p, g


def adam_time(n: int, reps: int) -> float:
    p, g = data(n)
    opt = optim.Adam([p])
    return best_of(lambda: opt.step([g]), reps)


def numpy_adam_inplace(n: int, reps: int) -> float:
    """A careful NumPy Adam: in place, no temporaries beyond one buffer."""
    p, g = data(n)
    m, v, tmp = np.zeros_like(p), np.zeros_like(p), np.empty_like(p)
    state = {"t": 0}

    def step():
        state["t"] += 1
        t = state["t"]
        np.multiply(m, np.float32(0.9), out=m)
        np.multiply(g, np.float32(0.1), out=tmp)
        np.add(m, tmp, out=m)
        np.multiply(v, np.float32(0.999), out=v)
        np.multiply(g, g, out=tmp)
        np.multiply(tmp, np.float32(0.001), out=tmp)
        np.add(v, tmp, out=v)
        np.sqrt(v, out=tmp)
        np.divide(tmp, np.float32(np.sqrt(1 - 0.999**t)), out=tmp)
        np.add(tmp, np.float32(1e-8), out=tmp)
        np.divide(m, tmp, out=tmp)
        np.multiply(tmp, np.float32(-1e-3 / (1 - 0.9**t)), out=tmp)
        np.add(p, tmp, out=p)

    return best_of(step, reps)


def reference_adam(n: int, reps: int) -> float:
    p, g = data(n)
    state: dict = {}

    def step():
        nonlocal p, state
        p, state = ref.torch_adam(p, g, state)

    return best_of(step, reps)


def bound_rule(name: str, n: int, reps: int) -> float:
    p, g = data(n)
    opt = {
        "sgd_momentum": lambda: optim.SGD([p], lr=1e-3, momentum=0.9),
        "adagrad": lambda: optim.Adagrad([p]),
        "rmsprop": lambda: optim.RMSprop([p]),
    }[name]()
    return best_of(lambda: opt.step([g]), reps)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    big, mid, cached = (
        (5_000_000, 1_000_000, 1_000_000) if args.quick else (50_000_000, 10_000_000, 1_000_000)
    )
    threads = args.threads
    lec7rs.set_num_threads(threads)
    print(
        f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  threads={threads}  "
        f"numpy {np.__version__}  cpus={os.cpu_count()}"
    )
    exe = build_roofline()
    rows = []

    def row(target, ours, theirs, ratio, goal, ok):
        rows.append((target, ours, theirs, ratio, goal, "yes" if ok else "NO"))

    if exe is None:
        print("roofline.c or gcc not found: roofline ratios skipped")
        roof_big = roof_small = None
    else:
        roof_big = roofline(exe, big, 8, threads)
        roof_small = roofline(exe, cached, 200, threads)
        print("roofline:", roof_big["line"])
        print("roofline:", roof_small["line"])

    t_big = adam_time(big, 8)
    if roof_big:
        r = t_big * 1e3 / roof_big["adam_ms"]
        row(
            f"Adam f32 n={big:,}",
            f"{t_big * 1e3:.2f} ms",
            f"roofline {roof_big['adam_ms']:.2f} ms",
            f"{r:.3f}x",
            "<= 1.15x",
            r <= 1.15,
        )
    t_ref = reference_adam(big, 3)
    row(
        f"Adam f32 n={big:,} vs NumPy reference",
        f"{t_big * 1e3:.2f} ms",
        f"reference.torch_adam {t_ref * 1e3:.1f} ms",
        f"{t_ref / t_big:.1f}x faster",
        ">= 8x",
        t_ref / t_big >= 8,
    )
    t_np = numpy_adam_inplace(big, 3)
    row(
        f"Adam f32 n={big:,} vs in-place NumPy",
        f"{t_big * 1e3:.2f} ms",
        f"in-place NumPy {t_np * 1e3:.1f} ms",
        f"{t_np / t_big:.1f}x faster",
        "(info)",
        True,
    )

    t_small = adam_time(cached, 200)
    if roof_small:
        r = t_small * 1e3 / roof_small["adam_ms"]
        row(
            f"Adam f32 n={cached:,} (in cache)",
            f"{t_small * 1e3:.3f} ms",
            f"roofline {roof_small['adam_ms']:.3f} ms",
            f"{r:.3f}x",
            "<= 1.5x",
            r <= 1.5,
        )

    k, per = (200, mid // 200)
    params = [data(per)[0] for _ in range(k)]
    grads = [data(per)[1] for _ in range(k)]
    many = optim.Adam(params)
    t_many = best_of(lambda: many.step(grads), 10)
    t_one = adam_time(mid, 10)
    r = (t_many / (k * per)) / (t_one / mid)
    row(
        f"Adam {k} x {per:,} vs 1 x {mid:,}",
        f"{t_many / (k * per) * 1e9:.3f} ns/elem",
        f"{t_one / mid * 1e9:.3f} ns/elem",
        f"{r:.3f}x",
        "<= 1.5x",
        r <= 1.5,
    )

    p1, g1 = data(1000)
    small = optim.Adam([p1])
    gl = [g1]
    t_call = median_call(lambda: small.step(gl), 20000)
    state: dict = {}
    q = p1.copy()

    def ref_call():
        nonlocal q, state
        q, state = ref.torch_adam(q, g1, state)

    t_ref_call = median_call(ref_call, 5000)
    row(
        "Adam.step, one 1k tensor (median/call)",
        f"{t_call * 1e6:.2f} us",
        f"reference {t_ref_call * 1e6:.2f} us",
        f"{t_ref_call / t_call:.1f}x faster",
        "<= 3 us",
        t_call <= 3e-6,
    )

    if roof_big:
        copy_bw = roof_big["copy_gbs"] * 1e9
        for name, bytes_per in (("sgd_momentum", 20), ("adagrad", 20), ("rmsprop", 20)):
            t = bound_rule(name, big, 8)
            bound = bytes_per * big / copy_bw
            r = t / bound
            row(
                f"{name} f32 n={big:,}",
                f"{t * 1e3:.2f} ms",
                f"bound {bound * 1e3:.2f} ms ({bytes_per} B/elem @ copy {copy_bw / 1e9:.1f} GB/s)",
                f"{r:.3f}x",
                "<= 1.2x",
                r <= 1.2,
            )

    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
