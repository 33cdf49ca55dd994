"""Part 3: learning-rate decay. SGD+momentum from the same initialization
with a constant lr and with step, exponential and cosine decay
(``lec7rs.optim.lr_scheduler``, stepped once per epoch).

The setting makes the effect the lecture describes visible: small batches
(16) and a high lr give noisy steps, and an L2 weight penalty of 3e-3 gives
the objective a minimum to settle in (with a tiny penalty the digits are
separated early and every schedule ends near zero loss). With a constant lr
the iterates keep bouncing at a height set by the lr times the gradient
noise; decaying the lr lowers that floor."""

from __future__ import annotations

import math
import time

from .. import optim
from ..optim import lr_scheduler
from .context import Context, verdict_line
from .train import steps_per_epoch, train

TITLE = "Learning-rate decay"
SHORT_CLAIM = "decaying the lr settles into a lower loss than a constant lr"
CLAIM = (
    "Decaying the learning rate lets SGD+momentum settle into a lower loss "
    "than a constant learning rate"
)

LR = 0.3
MOMENTUM = 0.9
BATCH_SIZE = 16
REG = 3e-3


def schedules(epochs: int) -> dict:
    """name -> (description, factory(optimizer) or None for a constant lr).
    Every decay ends near ``LR / 100`` after ``epochs`` epochs."""
    step = max(1, math.ceil(epochs / 3))
    gamma = 0.01 ** (1 / epochs)
    return {
        "constant": (f"lr = {LR}", None),
        "step": (
            f"StepLR(step_size={step}, gamma=0.1): x0.1 every {step} epochs",
            lambda opt: lr_scheduler.StepLR(opt, step_size=step, gamma=0.1),
        ),
        "exponential": (
            f"ExponentialLR(gamma={gamma:.4f}) = lr0 exp(-k t), k = {-math.log(gamma):.4f}",
            lambda opt: lr_scheduler.ExponentialLR(opt, gamma=gamma),
        ),
        "cosine": (
            f"CosineAnnealingLR(T_max={epochs})",
            lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
        ),
    }


def run(ctx: Context) -> dict:
    cfg = ctx.config
    runs = {}
    per_epoch = steps_per_epoch(len(ctx.data.train), BATCH_SIZE)
    for name, (description, make) in schedules(cfg.epochs).items():
        net = ctx.net(reg=REG)
        opt = optim.SGD(net.params, lr=LR, momentum=MOMENTUM)
        sched = None if make is None else make(opt)

        def after_step(t: int, sched=sched) -> None:
            if sched is not None and t % per_epoch == 0:
                sched.step()

        start = time.perf_counter()
        history = train(
            net,
            opt,
            ctx.data,
            steps=cfg.epochs * per_epoch,
            batch_size=BATCH_SIZE,
            seed=cfg.seed,
            reporter=ctx.reporter,
            name=f"3 · {name}",
            after_step=after_step,
        )
        runs[name] = {
            "schedule": description,
            "history": history.to_json(),
            "final": history.final(),
            "best_val_acc": max(history.val_acc),
            "seconds": time.perf_counter() - start,
        }
    return {
        "title": TITLE,
        "claim": CLAIM,
        "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
        "batch_size": BATCH_SIZE,
        "reg": REG,
        "epochs": cfg.epochs,
        "runs": runs,
    }


def table(res: dict) -> tuple[list, list]:
    columns = ["schedule", "final lr", "train loss", "val loss", "val acc"]
    rows = []
    for name, r in res["runs"].items():
        f = r["final"]
        rows.append(
            [
                name,
                f"{r['history']['lr'][-1]:.2g}",
                f"{f['train_loss']:.4f}",
                f"{f['val_loss']:.4f}",
                f"{f['val_acc']:.1%}",
            ]
        )
    return columns, rows


COLORS = {"constant": "#7f7f7f", "step": "#1f77b4", "exponential": "#2ca02c", "cosine": "#d62728"}


def draw(fig, res: dict) -> None:
    ax_lr, ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2.2]})
    for name, r in res["runs"].items():
        h = r["history"]
        ax_lr.plot(h["epoch"], h["lr"], color=COLORS[name], lw=1.8, label=name)
        label = f"{name} ({r['final']['val_acc']:.1%})"
        ax.plot(h["epoch"], h["train_loss"], color=COLORS[name], lw=1.8, label=label)
    ax_lr.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    fig.suptitle(
        f"3. Learning-rate decay: SGD+momentum {MOMENTUM} from lr {LR}, batch "
        f"{res['batch_size']}, weight penalty {res['reg']}\n"
        "top: the schedule; bottom: training loss (legend: final validation accuracy)\n"
        f"{verdict_line(SHORT_CLAIM, res)}"
    )
    ax_lr.tick_params(labelbottom=False)
    ax_lr.grid(True, which="both", alpha=0.3)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (log scale)")
    ax.legend(fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def verdict(res: dict) -> dict:
    runs = res["runs"]
    const = runs["constant"]["final"]
    decays = {k: r["final"] for k, r in runs.items() if k != "constant"}
    return {
        "reproduced": all(f["train_loss"] < const["train_loss"] for f in decays.values()),
        "measured": (
            f"final training loss: constant {const['train_loss']:.3f} "
            f"(val acc {const['val_acc']:.1%}); "
            + ", ".join(
                f"{k} {f['train_loss']:.3f} ({f['val_acc']:.1%})" for k, f in decays.items()
            )
        ),
    }
