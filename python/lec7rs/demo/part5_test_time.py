"""Part 5: better results at test time from the same training.

Both use part 3's noisy setting (batch 16, lr 0.3, momentum 0.9, weight
penalty 3e-3), where the iterates of a constant lr bounce around the
minimum.

- Polyak averaging: SGD+momentum at that constant lr, with
  ``lec7rs.averaging.PolyakAverage`` keeping an exponential moving average
  of the params; both evaluated along the run.
- Snapshot ensemble (Huang et al. 2017): SGD+momentum with cosine annealing
  and warm restarts (``CosineAnnealingWarmRestarts``, stepped per
  iteration), a snapshot at the end of each cycle
  (``lec7rs.averaging.SnapshotEnsemble``), their softmax outputs averaged;
  against a single model trained for the same number of steps with one
  cosine cycle, and against the last snapshot alone.
"""

from __future__ import annotations

import time

import numpy as np

from .. import optim
from ..averaging import PolyakAverage, SnapshotEnsemble
from ..optim import lr_scheduler
from .context import Context, verdict_line
from .model import cross_entropy
from .part3_schedules import BATCH_SIZE, LR, MOMENTUM, REG
from .train import steps_per_epoch, train

TITLE = "Better test-time results"
SHORT_CLAIM = "weight averages and snapshot ensembles beat one model"
CLAIM = (
    "Averaging the weights along training (Polyak) beats the last iterate; "
    "an ensemble of snapshots of one run beats a single model"
)

EMA_DECAY = 0.99
CYCLES = 5


def _nll_acc(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = np.clip(probs[np.arange(len(y)), y], 1e-12, None)
    return float(-np.mean(np.log(p))), float(np.mean(probs.argmax(axis=1) == y))


def run(ctx: Context) -> dict:
    steps = ctx.config.epochs * steps_per_epoch(len(ctx.data.train), BATCH_SIZE)
    return {
        "title": TITLE,
        "claim": CLAIM,
        "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
        "batch_size": BATCH_SIZE,
        "reg": REG,
        "polyak": _polyak(ctx, steps),
        "snapshots": _snapshots(ctx, steps),
    }


def _polyak(ctx: Context, steps: int) -> dict:
    cfg = ctx.config
    net = ctx.net(reg=REG)
    opt = optim.SGD(net.params, lr=LR, momentum=MOMENTUM)
    ema = PolyakAverage(net.params, decay=EMA_DECAY)
    Xv, yv = ctx.data.features(ctx.data.val.images), ctx.data.val.labels

    def observe() -> dict:
        with ema.applied():
            loss, acc = net.evaluate(Xv, yv)
        return {"ema_val_loss": loss, "ema_val_acc": acc}

    start = time.perf_counter()
    history = train(
        net,
        opt,
        ctx.data,
        steps=steps,
        batch_size=BATCH_SIZE,
        seed=cfg.seed,
        reporter=ctx.reporter,
        name="5 · Polyak averaging (EMA)",
        after_step=lambda t: ema.update(),
        observe=observe,
    )
    h = history.to_json()
    return {
        "averaging": f"PolyakAverage(decay={EMA_DECAY})",
        "history": h,
        "last_iterate": {"val_loss": h["val_loss"][-1], "val_acc": h["val_acc"][-1]},
        "polyak": {"val_loss": h["ema_val_loss"][-1], "val_acc": h["ema_val_acc"][-1]},
        "seconds": time.perf_counter() - start,
    }


def _snapshots(ctx: Context, steps: int) -> dict:
    cfg = ctx.config
    cycles = min(CYCLES, cfg.epochs)
    cycle_steps = steps // cycles
    steps = cycle_steps * cycles
    Xv, yv = ctx.data.features(ctx.data.val.images), ctx.data.val.labels

    # The snapshot run: a snapshot at the end of each cycle (lr at its minimum).
    net = ctx.net(reg=REG)
    opt = optim.SGD(net.params, lr=LR, momentum=MOMENTUM)
    sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=cycle_steps)
    ensemble = SnapshotEnsemble()
    probs = []  # each snapshot's validation softmax

    def after_step(t: int) -> None:
        sched.step()
        if t % cycle_steps == 0:
            ensemble.add(net.params)
            probs.append(net.predict_proba(Xv))

    start = time.perf_counter()
    history = train(
        net,
        opt,
        ctx.data,
        steps=steps,
        batch_size=BATCH_SIZE,
        seed=cfg.seed,
        reporter=ctx.reporter,
        name=f"5 · snapshots ({cycles} cycles)",
        after_step=after_step,
    )
    ensemble_loss, ensemble_acc = _nll_acc(ensemble.predict(net.predict_proba, Xv), yv)
    # Ensembles of the last k snapshots, k = 1 .. cycles (k = 1: the last one alone).
    last_k = [_nll_acc(np.mean(probs[-k:], axis=0), yv) for k in range(1, len(probs) + 1)]

    # A single model with the same number of steps and one cosine cycle.
    single = ctx.net(reg=REG)
    opt1 = optim.SGD(single.params, lr=LR, momentum=MOMENTUM)
    sched1 = lr_scheduler.CosineAnnealingLR(opt1, T_max=steps)
    single_history = train(
        single,
        opt1,
        ctx.data,
        steps=steps,
        batch_size=BATCH_SIZE,
        seed=cfg.seed,
        reporter=ctx.reporter,
        name="5 · single model (1 cycle)",
        after_step=lambda t: sched1.step(),
    )
    single_loss, single_acc = cross_entropy(single.scores(Xv), yv)
    return {
        "schedule": f"CosineAnnealingWarmRestarts(T_0={cycle_steps}), stepped per step",
        "cycles": cycles,
        "cycle_steps": cycle_steps,
        "steps": steps,
        "history": history.to_json(),
        "single_history": single_history.to_json(),
        "snapshots": [dict(zip(("val_loss", "val_acc"), _nll_acc(p, yv))) for p in probs],
        "ensemble_of_last_k": [
            {"k": k, "val_loss": loss, "val_acc": acc}
            for k, (loss, acc) in enumerate(last_k, start=1)
        ],
        "ensemble": {"val_loss": ensemble_loss, "val_acc": ensemble_acc},
        "last_snapshot": {"val_loss": last_k[0][0], "val_acc": last_k[0][1]},
        "single_model": {"val_loss": single_loss, "val_acc": single_acc},
        "seconds": time.perf_counter() - start,
    }


def table(res: dict) -> tuple[list, list]:
    columns = ["model used at test time", "val loss", "val acc"]
    p, s = res["polyak"], res["snapshots"]
    rows = [
        ["last iterate (constant lr)", p["last_iterate"]],
        [f"Polyak average (EMA, decay {EMA_DECAY})", p["polyak"]],
        ["single model (1 cosine cycle)", s["single_model"]],
        ["last snapshot alone", s["last_snapshot"]],
        [f"snapshot ensemble ({s['cycles']} snapshots)", s["ensemble"]],
    ]
    return columns, [[name, f"{r['val_loss']:.4f}", f"{r['val_acc']:.1%}"] for name, r in rows]


def verdict(res: dict) -> dict:
    p, s = res["polyak"], res["snapshots"]
    last, avg = p["last_iterate"], p["polyak"]
    single, ens = s["single_model"], s["ensemble"]
    return {
        "reproduced": avg["val_loss"] < last["val_loss"] and ens["val_loss"] < single["val_loss"],
        "measured": (
            f"val loss (acc): last iterate {last['val_loss']:.4f} ({last['val_acc']:.1%}) vs "
            f"Polyak {avg['val_loss']:.4f} ({avg['val_acc']:.1%}); single model "
            f"{single['val_loss']:.4f} ({single['val_acc']:.1%}) vs ensemble of "
            f"{s['cycles']} snapshots {ens['val_loss']:.4f} ({ens['val_acc']:.1%})"
        ),
    }


def draw(fig, res: dict) -> None:
    left, right = fig.subplots(1, 2)
    p, s = res["polyak"], res["snapshots"]
    ax = left
    h = p["history"]
    ax.plot(
        h["epoch"],
        h["val_loss"],
        color="#7f7f7f",
        lw=1.5,
        label=f"last iterate ({p['last_iterate']['val_acc']:.1%})",
    )
    ax.plot(
        h["epoch"],
        h["ema_val_loss"],
        color="#1f77b4",
        lw=2,
        label=f"Polyak average, EMA {EMA_DECAY} ({p['polyak']['val_acc']:.1%})",
    )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss (cross-entropy, log scale)")
    ax.set_title(
        f"5a. Polyak averaging (EMA of the weights)\nSGD+momentum, constant lr {LR}, "
        f"batch {res['batch_size']}",
        fontsize=10,
    )
    ax.legend(fontsize=8, title="(final validation accuracy)", title_fontsize=8)
    ax.grid(True, alpha=0.3)

    ax = right
    ks = [e["k"] for e in s["ensemble_of_last_k"]]
    losses = [e["val_loss"] for e in s["ensemble_of_last_k"]]
    ax.plot(ks, losses, "o-", color="#d62728", lw=2, label="ensemble of the last k snapshots")
    for k, e in zip(ks, s["ensemble_of_last_k"]):
        ax.annotate(
            f"{e['val_acc']:.1%}",
            (k, e["val_loss"]),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
    single = s["single_model"]
    ax.axhline(
        single["val_loss"],
        color="#7f7f7f",
        ls="--",
        label=f"single model, 1 cosine cycle, same steps ({single['val_acc']:.1%})",
    )
    values = [*losses, single["val_loss"]]
    lo, hi = min(values), max(values)
    pad = max(hi - lo, 1e-3) * 0.25
    ax.set_ylim(lo - pad, hi + 2 * pad)
    ax.set_xticks(ks)
    ax.set_xlabel("k: the last k snapshots averaged (k = 1: last snapshot alone)")
    ax.set_ylabel("validation loss (cross-entropy)")
    ax.set_title(
        f"5b. Snapshot ensemble: {s['cycles']} cosine cycles with warm\n"
        "restarts, softmax averaged (labels: val. accuracy)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(
        f"5. Better test-time results from one training run\n{verdict_line(SHORT_CLAIM, res)}"
    )
    ax.grid(True, alpha=0.3)
