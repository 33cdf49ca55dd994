"""The speed targets of the training utilities, measured side by side in one run.

    python benches/training_targets.py               # 50M-element averages, 1 GB checkpoint
    python benches/training_targets.py --gb 0.25 --quick

* ``PolyakAverage.update()`` on 50M float32 elements (running mean and EMA)
  against its memory-traffic bound: 12 bytes per element (read the param and
  the average, write the average) at the copy bandwidth that
  ``../shared/bench/roofline.c`` measures in the same run, at the same
  thread count. Target: within 1.2x.
* ``checkpoint.save`` / ``checkpoint.load`` of ``--gb`` GB of float32 state
  (params plus Adam's two moments) in MB/s, against ``np.save`` /
  ``np.load`` of the same arrays (one .npy file each) in the same folder.
  ``save`` fsyncs the file and its folder, ``np.save`` does not: the table
  also shows ``np.save`` followed by ``fsync``, the same durability.

Times are the best of several repeats.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import lec7rs
import numpy as np
from lec7rs import checkpoint
from lec7rs.averaging import PolyakAverage
from lec7rs.optim import Adam

# benches/targets.py, next to this script (on sys.path when run as a script).
from targets import best_of, build_roofline, print_table, roofline


def update_time(n: int, decay, reps: int) -> float:
    p = np.ones(n, np.float32)
    avg = PolyakAverage([p], decay=decay)
    avg.update()  # the first update copies; time the averaging ones
    return best_of(avg.update, reps)


def numpy_update_time(n: int, decay, reps: int) -> float:
    """The same update in careful in-place NumPy (one temporary)."""
    p = np.ones(n, np.float32)
    a, tmp = p.copy(), np.empty_like(p)
    w = np.float32(0.5 if decay is None else 1 - decay)

    def update():
        np.subtract(p, a, out=tmp)
        np.multiply(tmp, w, out=tmp)
        np.add(a, tmp, out=a)

    return best_of(update, reps)


def state(gb: float):
    """Params and Adam state (after one step) of ``gb`` GB of float32 in all."""
    per_array = int(gb * 2**30 / 4 / 3 / 8)  # 8 params, 3 arrays each
    params = [np.full(per_array, 0.5 + i, np.float32) for i in range(8)]
    opt = Adam(params)
    opt.step([np.full(per_array, 0.01, np.float32) for _ in params])
    arrays = [*params, *(s["exp_avg"] for s in opt.state.values())]
    arrays += [s["exp_avg_sq"] for s in opt.state.values()]
    return params, opt, arrays


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_rows(gb: float, reps: int, folder: str) -> list:
    params, opt, arrays = state(gb)
    nbytes = sum(a.nbytes for a in arrays)
    mb = nbytes / 1e6
    path = os.path.join(folder, "bench.ckpt")
    npy = [os.path.join(folder, f"a{i}.npy") for i in range(len(arrays))]

    def ours_save():
        checkpoint.save(path, params, optimizer=opt)

    def ours_load():
        checkpoint.load(path, params, optimizer=opt)

    def np_save(sync: bool):
        for f, a in zip(npy, arrays):
            np.save(f, a)
            if sync:
                fsync_file(f)

    def np_load():
        for f in npy:
            np.load(f)

    t = {
        "save": best_of(ours_save, reps),
        "np.save": best_of(lambda: np_save(False), reps),
        "np.save+fsync": best_of(lambda: np_save(True), reps),
        "load": best_of(ours_load, reps),
        "np.load": best_of(np_load, reps),
    }
    rows = []
    for ours, theirs in (("save", "np.save"), ("save", "np.save+fsync"), ("load", "np.load")):
        rows.append(
            (
                f"checkpoint.{ours} {nbytes / 2**30:.2f} GiB f32",
                f"{mb / t[ours]:.0f} MB/s",
                f"{theirs} {mb / t[theirs]:.0f} MB/s",
                f"{t[theirs] / t[ours]:.2f}x",
                "(report)",
                True,
            )
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="5M elements, fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gb", type=float, default=1.0, help="checkpoint state size in GiB")
    ap.add_argument("--dir", default=None, help="folder for the checkpoint files")
    args = ap.parse_args()
    n = 5_000_000 if args.quick else 50_000_000
    reps = 3 if args.quick else 8
    lec7rs.set_num_threads(args.threads)
    print(
        f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  threads={args.threads}  "
        f"numpy {np.__version__}  cpus={os.cpu_count()}"
    )
    rows = []
    exe = build_roofline()
    roof = None
    if exe is None:
        print("roofline.c or gcc not found: the bound is skipped")
    else:
        roof = roofline(exe, n, 10, args.threads)
        print("roofline:", roof["line"])

    for name, decay in (("mean", None), ("EMA", 0.999)):
        t = update_time(n, decay, reps)
        t_np = numpy_update_time(n, decay, max(2, reps // 2))
        if roof:
            bound = 12 * n / (roof["copy_gbs"] * 1e9)
            r = t / bound
            rows.append(
                (
                    f"PolyakAverage.update {name} f32 n={n:,}",
                    f"{t * 1e3:.2f} ms",
                    f"bound {bound * 1e3:.2f} ms (12 B/elem @ copy {roof['copy_gbs']:.1f} GB/s)",
                    f"{r:.3f}x",
                    "<= 1.2x",
                    r <= 1.2,
                )
            )
        rows.append(
            (
                f"PolyakAverage.update {name} vs NumPy",
                f"{t * 1e3:.2f} ms",
                f"in-place NumPy {t_np * 1e3:.2f} ms",
                f"{t_np / t:.1f}x faster",
                "(info)",
                True,
            )
        )

    folder = args.dir or tempfile.mkdtemp(prefix="lec7rs-bench-")
    try:
        rows += checkpoint_rows(args.gb, 2 if args.quick else 3, folder)
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)

    print_table([(*r[:5], "yes" if r[5] else "NO") for r in rows])
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"\n({time.perf_counter() - start:.0f} s)")
    sys.exit(code)
