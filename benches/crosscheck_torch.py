"""lec7rs's Lion, LAMB, LARS, schedule-free AdamW/SGD and Lookahead against the
implementations people install (lion-pytorch, timm.optim, schedulefree) on
the same params and grads, 50 steps, float32 and float64:

    pip install torch timm schedulefree lion-pytorch   # not lec7rs dependencies
    python benches/crosscheck_torch.py

Prints, per pair, whether the params are bit-identical and the largest
relative difference (|ours - theirs| / (|theirs| + 1e-6)). torch's vectorized
CPU loops round differently (fused multiply-adds, norms summed in float32),
so only rounding-level differences are expected where the semantics agree.
timm's Lookahead creates its slow weights at the first sync (the paper, and
lec7rs, at construction): it is compared with the paper's box written
around torch.optim.SGD instead.
"""

from __future__ import annotations

import numpy as np
import schedulefree as sf
import timm.optim as to
import torch
from lec7rs import optim
from lion_pytorch import Lion as TorchLion

RNG = np.random.default_rng(0)


def run(ours, okw, theirs, tkw, dt, schedule_free=False, shapes=((1000,), (64, 33)), steps=50):
    ps = [RNG.standard_normal(s).astype(dt) for s in shapes]
    tps = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in ps]
    opt, topt = ours(ps, **okw), theirs(tps, **tkw)
    if schedule_free:
        topt.train()
    for _ in range(steps):
        gs = [RNG.standard_normal(s).astype(dt) for s in shapes]
        for tp, g in zip(tps, gs):
            tp.grad = torch.from_numpy(g.copy())
        opt.step(gs)
        topt.step()
    if schedule_free:  # compare x, the point to evaluate
        opt.eval()
        topt.eval()
    bits, worst = True, 0.0
    for p, tp in zip(ps, tps):
        t = tp.detach().numpy()
        bits &= np.array_equal(p, t)
        worst = max(worst, float(np.max(np.abs(p - t) / (np.abs(t) + 1e-6))))
    return bits, worst


def cases():
    lamb = dict(always_adapt=True, max_grad_norm=None)
    yield (
        "Lion vs lion-pytorch",
        optim.Lion,
        {"lr": 1e-3, "weight_decay": 0.1},
        TorchLion,
        {
            "lr": 1e-3,
            "weight_decay": 0.1,
        },
    )
    yield (
        "Lion vs timm",
        optim.Lion,
        {"lr": 1e-3, "weight_decay": 0.1},
        to.Lion,
        {
            "lr": 1e-3,
            "weight_decay": 0.1,
        },
    )
    for extra in ({}, {"trust_clip": True}):
        kw = {"lr": 1e-2, "weight_decay": 0.01, **extra}
        yield f"LAMB {extra} vs timm Lamb", optim.LAMB, kw, to.Lamb, {**kw, **lamb}
    kw = {"lr": 1e-2, "bias_correction": False, "weight_decay": 0.0}  # timm: 0.01
    yield "LAMB no bias correction vs timm", optim.LAMB, kw, to.Lamb, {**kw, **lamb}
    for extra in ({"weight_decay": 1e-4}, {"nesterov": True}):
        kw = {"lr": 0.1, "momentum": 0.9, **extra}
        yield f"LARS {extra} vs timm Lars", optim.LARS, kw, to.Lars, {**kw, "always_adapt": True}
    kw = {"lr": 1e-2, "warmup_steps": 10, "weight_decay": 0.01}
    yield (
        "ScheduleFreeAdamW vs schedulefree",
        optim.ScheduleFreeAdamW,
        kw,
        (sf.AdamWScheduleFree),
        {**kw, "foreach": False},
    )
    kw = {"lr": 0.1, "warmup_steps": 5, "weight_decay": 0.01}
    yield (
        "ScheduleFreeSGD vs schedulefree",
        optim.ScheduleFreeSGD,
        kw,
        sf.SGDScheduleFree,
        {
            **kw,
            "foreach": False,
        },
    )


def lookahead() -> float:
    """Lookahead(SGD) against the paper's box around torch.optim.SGD."""
    ps = [RNG.standard_normal(500).astype(np.float32)]
    tps = [torch.nn.Parameter(torch.from_numpy(ps[0].copy()))]
    la = optim.Lookahead(optim.SGD(ps, lr=0.1, momentum=0.9), k=5, alpha=0.5)
    topt = torch.optim.SGD(tps, lr=0.1, momentum=0.9)
    slow = tps[0].detach().clone()
    for i in range(23):
        g = RNG.standard_normal(500).astype(np.float32)
        tps[0].grad = torch.from_numpy(g.copy())
        la.step([g])
        topt.step()
        if (i + 1) % 5 == 0:
            with torch.no_grad():
                slow = slow + 0.5 * (tps[0] - slow)
                tps[0].copy_(slow)
    return float(np.abs(ps[0] - tps[0].detach().numpy()).max())


def main() -> None:
    torch.set_num_threads(1)
    for name, ours, okw, theirs, tkw in cases():
        for dt in (np.float32, np.float64):
            bits, worst = run(ours, okw, theirs, tkw, dt, schedule_free="Schedule" in name)
            print(f"{name:45s} {np.dtype(dt).name}: bit-identical={bits} max rel diff={worst:.2e}")
    print(
        f"Lookahead(SGD) vs the paper's box around torch.optim.SGD: max abs diff {lookahead():.2e}"
    )


if __name__ == "__main__":
    main()
