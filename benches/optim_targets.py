"""The speed targets of the "update rules described once" issue (and the
linear-time items of the reliability pass), measured side by side in one run.

    python benches/optim_targets.py              # 50M elements, 2 threads
    python benches/optim_targets.py --quick      # 5M elements
    LEC7RS_SIMD=avx2 python benches/optim_targets.py

* Per call: ``Adam.step`` on one 1k-element float32 param against one
  ``np.add(p, g, out=p)`` on the same arrays (medians of many calls).
  Target: at most 2x. And the cs231n two-layer net (3072x100, 100, 100x10,
  10) per step and the 1k tensor, against torch's fused Adam where torch
  imports.
* Every element-wise rule at ``n`` float32 elements: against Adam's time in
  the same run when it moves as many bytes (28 B per element: NAdam, RAdam,
  Adamax, Adadelta, Rprop), against its bytes-moved bound otherwise (ASGD:
  20 B) at the rate the ideal fused Adam of ``../shared/bench/roofline.c``
  streams memory in the same run.
  Target: within 1.15x.
* ``clip_grad_norm_`` + ``step`` and the fused ``step(grads, grad_scale=c)``
  (with ``get_total_norm`` for ``c``) against a plain step. Target: the
  fused form at most 1.5x a plain step.
* Linear time: building an optimizer with 200 and 2000 groups, and the
  first step over 10k and 200k tensors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import lec7rs
import numpy as np
from lec7rs import optim

# benches/targets.py, next to this script (on sys.path when run as a script).
from targets import best_of, build_roofline, median_call, print_table, roofline


def data(n: int):
    p = np.ones(n, np.float32)
    g = (0.01 * (np.arange(n) % 7) - 0.03).astype(np.float32)
    return p, g


def step_time(make, n: int, reps: int) -> float:
    p, g = data(n)
    opt = make([p])
    gl = [g]
    return best_of(lambda: opt.step(gl), reps)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    n = 5_000_000 if args.quick else 50_000_000
    reps = 5 if args.quick else 8
    lec7rs.set_num_threads(args.threads)
    print(
        f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  threads={args.threads}  "
        f"numpy {np.__version__}  cpus={os.cpu_count()}"
    )
    rows = []

    def row(target, ours, theirs, ratio, goal, ok):
        rows.append((target, ours, theirs, ratio, goal, "yes" if ok else "NO"))

    # -- per call -------------------------------------------------------------
    p1, g1 = data(1000)
    small = optim.Adam([p1])
    gl = [g1]
    t_call = median_call(lambda: small.step(gl), 20000)
    t_add = median_call(lambda: np.add(p1, g1, out=p1), 20000)
    row(
        "Adam.step, one 1k f32 tensor (median/call)",
        f"{t_call * 1e6:.2f} us",
        f"np.add(p, g, out=p) {t_add * 1e6:.2f} us",
        f"{t_call / t_add:.2f}x",
        "<= 2x",
        t_call <= 2 * t_add,
    )
    # The same steps without the plan cache (every call checked by value).
    for k, size in ((1, 1000), (100, 100)):
        ps = [data(size)[0] for _ in range(k)]
        gs = [data(size)[1] for _ in range(k)]
        planned, checked = optim.Adam(ps), optim.Adam([p.copy() for p in ps])
        checked._cache = None
        t_plan = median_call(lambda o=planned, g=gs: o.step(g), 20000 // k)
        t_checked = median_call(lambda o=checked, g=gs: o.step(g), 20000 // k)
        row(
            f"Adam.step, {k} x {size} f32, plan cache vs none",
            f"{t_plan * 1e6:.2f} us",
            f"checked {t_checked * 1e6:.2f} us",
            f"{t_checked / t_plan:.2f}x",
            "(info)",
            True,
        )
    shapes = [(3072, 100), (100,), (100, 10), (10,)]
    rng = np.random.default_rng(0)
    net = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    net_g = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    opt_net = optim.Adam(net, lr=1e-3)
    t_net = median_call(lambda: opt_net.step(net_g), 2000)
    baseline, ratio = "torch not installed", "-"
    try:
        import torch

        torch.set_num_threads(args.threads)
        tp = [torch.from_numpy(x.copy()).requires_grad_() for x in net]
        for t, g in zip(tp, net_g):
            t.grad = torch.from_numpy(g.copy())
        topt = torch.optim.Adam(tp, lr=1e-3, fused=True)
        t_torch = median_call(topt.step, 2000)
        baseline, ratio = f"torch fused Adam {t_torch * 1e6:.1f} us", f"{t_torch / t_net:.2f}x"
        # The per-call row's 1k tensor, through torch's fused Adam.
        t1 = torch.from_numpy(p1.copy()).requires_grad_()
        t1.grad = torch.from_numpy(g1.copy())
        t_torch1 = median_call(torch.optim.Adam([t1], lr=1e-3, fused=True).step, 20000)
    except Exception as e:  # not installed, or no fused CPU Adam
        baseline = f"torch: {type(e).__name__}"
        t_torch1 = None
    row(
        "Adam.step, cs231n net (4 tensors)",
        f"{t_net * 1e6:.1f} us",
        baseline,
        ratio,
        "(info)",
        True,
    )
    if t_torch1 is not None:
        row(
            "Adam.step, one 1k f32 tensor, against torch",
            f"{t_call * 1e6:.2f} us",
            f"torch fused Adam {t_torch1 * 1e6:.1f} us",
            f"{t_torch1 / t_call:.1f}x",
            "(info)",
            True,
        )

    # -- element-wise rules at n ----------------------------------------------
    # Each rule and Adam alternate, step for step, so that both see the same
    # memory bandwidth (on a shared VM it drifts by 1.5x between minutes).
    pa, ga = data(n)
    adam = optim.Adam([pa])

    def adam_step():
        return adam.step([ga])

    t_adam = best_of(adam_step, reps)
    same_bytes = {
        "NAdam": optim.NAdam,
        "RAdam": optim.RAdam,
        "Adamax": optim.Adamax,
        "Adadelta": optim.Adadelta,
        "Rprop": optim.Rprop,
    }
    for name, cls in same_bytes.items():
        p, g = data(n)
        opt = cls([p])

        def step(opt=opt, g=g):
            return opt.step([g])

        step()
        t, t_a = float("inf"), float("inf")
        for _ in range(reps):
            t = min(t, best_of(step, 1))
            t_a = min(t_a, best_of(adam_step, 1))
        r = t / t_a
        row(
            f"{name} f32 n={n:,} (28 B/elem)",
            f"{t * 1e3:.2f} ms",
            f"Adam {t_a * 1e3:.2f} ms",
            f"{r:.3f}x",
            "<= 1.15x",
            r <= 1.15,
        )
        del opt, p, g
    exe = build_roofline()
    if exe is not None:
        roof = roofline(exe, n, reps, args.threads)
        print("roofline:", roof["line"])
        # The machine's streaming rate: the bytes the ideal fused Adam of
        # roofline.c moves per second (28 B per element).
        bw = 28 * n / (roof["adam_ms"] * 1e-3)
        t = step_time(optim.ASGD, n, reps)
        bound = 20 * n / bw
        row(
            f"ASGD f32 n={n:,} (20 B/elem)",
            f"{t * 1e3:.2f} ms",
            f"bound {bound * 1e3:.2f} ms (at {bw / 1e9:.1f} GB/s)",
            f"{t / bound:.3f}x",
            "<= 1.15x",
            t / bound <= 1.15,
        )
        row(
            f"Adam f32 n={n:,} (28 B/elem)",
            f"{t_adam * 1e3:.2f} ms",
            f"roofline's fused Adam {roof['adam_ms']:.2f} ms",
            f"{t_adam / (roof['adam_ms'] * 1e-3):.3f}x",
            "(info)",
            True,
        )

    # -- clipping ---------------------------------------------------------------
    p, g = data(n)
    opt = optim.Adam([p])
    gl = [g]
    t_plain = best_of(lambda: opt.step(gl), reps)
    g_copy = g.copy()

    def clip_then_step():
        g_copy[...] = g  # clip_grad_norm_ writes the grads: start from the same ones
        optim.clip_grad_norm_([g_copy], 1.0)
        opt.step([g_copy])

    t_copy = best_of(lambda: g_copy.__setitem__(Ellipsis, g), reps)
    t_clip = best_of(clip_then_step, reps) - t_copy

    def fused():
        c = min(1.0, 1.0 / (optim.get_total_norm(gl) + 1e-6))
        opt.step(gl, grad_scale=c)

    t_fused = best_of(fused, reps)
    row(
        f"clip_grad_norm_ + step, n={n:,}",
        f"{t_clip * 1e3:.2f} ms",
        f"plain step {t_plain * 1e3:.2f} ms",
        f"{t_clip / t_plain:.2f}x",
        "(info)",
        True,
    )
    row(
        f"get_total_norm + step(grad_scale), n={n:,}",
        f"{t_fused * 1e3:.2f} ms",
        f"plain step {t_plain * 1e3:.2f} ms",
        f"{t_fused / t_plain:.2f}x",
        "<= 1.5x",
        t_fused <= 1.5 * t_plain,
    )

    # -- linear time ------------------------------------------------------------
    for groups in (200, 2000):
        params = [np.zeros(3, np.float32) for _ in range(groups)]
        t0 = time.perf_counter()
        optim.SGD([{"params": [q]} for q in params], lr=0.1)
        t = time.perf_counter() - t0
        row(f"SGD(...) with {groups} groups", f"{t * 1e3:.1f} ms", "-", "-", "linear", True)
    for tensors in (10_000, 200_000):
        params = [np.zeros(3, np.float32) for _ in range(tensors)]
        grads = [np.ones(3, np.float32) for _ in range(tensors)]
        o = optim.Adam(params)
        t0 = time.perf_counter()
        o.step(grads)
        t = time.perf_counter() - t0
        row(f"first Adam step, {tensors:,} tensors", f"{t * 1e3:.1f} ms", "-", "-", "linear", True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
