"""Part 1: the optimizers of the lecture on the same network and the same
initialization: SGD, SGD+momentum, Nesterov, AdaGrad, RMSProp, Adam, AdamW
(minibatches, ``lec7rs.optim``) and full-batch L-BFGS
(``lec7rs.optimize.minimize`` on the flattened params); beside them, with
the same budget, two newer ones: Lion and schedule-free AdamW (evaluated at
its averaged point ``x``)."""

from __future__ import annotations

import time

from .. import optim
from ..optimize import minimize
from .context import Context, describe, verdict_line
from .train import train

TITLE = "Optimizers"
SHORT_CLAIM = "momentum and adaptive methods train faster than SGD"
CLAIM = (
    "SGD+momentum, Nesterov, AdaGrad, RMSProp and Adam reach a lower training loss "
    "than plain SGD in the same number of epochs"
)

#: name -> (optimizer class, hyperparameters). SGD and the momentum methods
#: share one lr, so that the effect of momentum is seen alone; Adam, AdamW
#: and RMSProp get the lecture's starting point, lr = 1e-3.
OPTIMIZERS = {
    "SGD": (optim.SGD, {"lr": 0.05}),
    "SGD+momentum": (optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "Nesterov": (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "AdaGrad": (optim.Adagrad, {"lr": 0.05}),
    "RMSProp": (optim.RMSprop, {"lr": 1e-3}),
    "Adam": (optim.Adam, {"lr": 1e-3}),
    "AdamW": (optim.AdamW, {"lr": 1e-3, "weight_decay": 1e-2}),
}

#: Newer optimizers shown beside the lecture's (not part of its claim):
#: Lion with the paper's advice (an lr 3-10x smaller than AdamW's, a weight
#: decay 3-10x larger) and schedule-free AdamW with its default lr and a
#: short warmup.
BEYOND = {
    "Lion": (optim.Lion, {"lr": 3e-4, "weight_decay": 3e-2}),
    "Schedule-free AdamW": (optim.ScheduleFreeAdamW, {"lr": 2.5e-3, "warmup_steps": 20}),
}


def run(ctx: Context) -> dict:
    cfg = ctx.config
    runs = {}
    for name, (cls, hyper) in {**OPTIMIZERS, **BEYOND}.items():
        net = ctx.net()  # the same initialization for every optimizer
        start = time.perf_counter()
        history = train(
            net,
            cls(net.params, **hyper),
            ctx.data,
            steps=ctx.steps,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            reporter=ctx.reporter,
            name=f"1 · {name}",
        )
        runs[name] = {
            "optimizer": describe(cls, hyper),
            "hyperparameters": dict(hyper),
            "history": history.to_json(),
            "final": history.final(),
            "seconds": time.perf_counter() - start,
        }
    runs["L-BFGS"] = _lbfgs(ctx)
    return {
        "title": TITLE,
        "claim": CLAIM,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "steps": ctx.steps,
        "runs": runs,
    }


def _lbfgs(ctx: Context) -> dict:
    """Full-batch L-BFGS from the same initialization, with as many passes
    over the training set (evaluations of loss and gradient) as the
    minibatch runs make."""
    data = ctx.data
    net = ctx.net()
    X, y = data.features(data.train.images), data.train.labels
    Xv, yv = data.features(data.val.images), data.val.labels
    passes, train_loss, train_acc, val_loss, val_acc = [0], [], [], [], []

    def record() -> None:
        loss, acc = net.evaluate(X, y)
        vloss, vacc = net.evaluate(Xv, yv)
        train_loss.append(loss + net.reg_loss())
        train_acc.append(acc)
        val_loss.append(vloss)
        val_acc.append(vacc)

    record()
    budget = ctx.config.epochs
    start = time.perf_counter()
    with ctx.reporter.task("1 · L-BFGS (full-batch)", total=budget) as advance:

        def callback(r) -> None:
            net.set_flat(r.x)
            passes.append(int(r.nfev))
            record()
            info = f"loss {train_loss[-1]:.3f} · val acc {val_acc[-1]:.1%}"
            advance(min(int(r.nfev), budget), info)

        result = minimize(
            lambda theta: net.flat_loss(theta, X, y),
            net.get_flat(),
            method="L-BFGS",
            m=10,
            max_fun=budget,
            callback=callback,
        )
    net.set_flat(result.x)
    return {
        "optimizer": f"lec7rs.optimize.minimize(method='L-BFGS', m=10, max_fun={budget})",
        "history": {
            "passes": passes,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
        },
        "final": {
            "train_loss": train_loss[-1],
            "train_acc": train_acc[-1],
            "val_loss": val_loss[-1],
            "val_acc": val_acc[-1],
        },
        "nit": int(result.nit),
        "nfev": int(result.nfev),
        "status": int(result.status),
        "message": str(result.message),
        "seconds": time.perf_counter() - start,
    }


def table(res: dict) -> tuple[list, list]:
    columns = ["optimizer", "train loss", "train acc", "val loss", "val acc", "time"]
    rows = []
    for name, r in res["runs"].items():
        f = r["final"]
        rows.append(
            [
                name,
                f"{f['train_loss']:.4f}",
                f"{f['train_acc']:.1%}",
                f"{f['val_loss']:.4f}",
                f"{f['val_acc']:.1%}",
                f"{r['seconds']:.2f} s",
            ]
        )
    return columns, rows


def draw(fig, res: dict) -> None:
    ax = fig.add_subplot()
    colors = _colors()
    for name, r in res["runs"].items():
        h = r["history"]
        x = h["passes"] if name == "L-BFGS" else h["epoch"]
        style = {"linestyle": "--", "marker": "."} if name == "L-BFGS" else {}
        label = f"{name} ({r['final']['val_acc']:.1%})"
        ax.plot(x, h["train_loss"], label=label, color=colors[name], lw=1.8, **style)
    ax.set_yscale("log")
    ax.set_xlabel("passes over the training set (epochs; L-BFGS: loss + gradient evaluations)")
    ax.set_ylabel("training loss (log scale)")
    fig.suptitle(
        f"1. Optimizers: training loss from the same initialization\n"
        f"(2-layer net on digits, batch {res['batch_size']}; legend: final validation accuracy)"
        f"\n{verdict_line(SHORT_CLAIM, res)}"
    )
    ax.legend(fontsize=9, ncol=2)
    ax.grid(True, which="both", alpha=0.3)


def _colors() -> dict:
    names = [*OPTIMIZERS, "L-BFGS", *BEYOND]
    palette = ["#7f7f7f", "#1f77b4", "#17becf", "#9467bd", "#e377c2", "#d62728", "#ff7f0e", "k"]
    palette += ["#2ca02c", "#8c564b"]
    return dict(zip(names, palette))


def verdict(res: dict) -> dict:
    runs = res["runs"]
    sgd = runs["SGD"]["final"]["train_loss"]
    others = {k: runs[k]["final"]["train_loss"] for k in OPTIMIZERS if k != "SGD"}
    best = min(others, key=others.get)
    lbfgs = runs["L-BFGS"]
    beyond = ", ".join(f"{k} {runs[k]['final']['train_loss']:.3f}" for k in BEYOND if k in runs)
    return {
        "reproduced": all(v < sgd for v in others.values()),
        "measured": (
            f"training loss after {res['epochs']} epochs: SGD {sgd:.3f}, the others "
            f"{min(others.values()):.3f} ({best}) to {max(others.values()):.3f}; "
            f"L-BFGS after {lbfgs['nfev']} full-batch passes {lbfgs['final']['train_loss']:.3f}"
            + (f"; beside them: {beyond}" if beyond else "")
        ),
    }
