"""Part 6: transfer learning. Pretrain the net on digits 0-4, then learn
digits 5-9 (a new, re-initialized last layer) from very little or quite a
lot of data, either as a linear classifier on the frozen features (the
first layer in a ``frozen=True`` param group) or by fine-tuning all layers;
training from scratch is the baseline. This fills the lecture's table for
the "very similar dataset" column with measured accuracies.

Every strategy uses the same two param groups (first layer: lr 1e-3, or
``frozen=True``; new last layer: lr 1e-2) and the same new last layer at
the start. The accuracies of "very little data" are means over several
random draws of the few training images.

What to expect on these digits: features learned from five digits are not
much better than what a two-layer net learns from the 64 raw pixels of the
new digits itself, so "from scratch" is a strong baseline here; the
lecture's advice is about deep features that are expensive to learn."""

from __future__ import annotations

import time

import numpy as np

from .. import optim
from .context import Context, verdict_line
from .data import Split
from .model import TwoLayerNet
from .train import train

TITLE = "Transfer learning"
SHORT_CLAIM = "little data: train a linear classifier on frozen features; more: fine-tune"
CLAIM = (
    "Similar dataset: with very little data, train a linear classifier on the frozen "
    "pretrained features; with quite a lot of data, fine-tune"
)

SOURCE = (0, 1, 2, 3, 4)
TARGET = (5, 6, 7, 8, 9)
#: "very little data": images per class of the target task, and how many
#: random draws of such a set the accuracies are averaged over.
LITTLE = 5
DRAWS = 5
QUICK_DRAWS = 2
LR = 1e-3
#: The new last layer learns 10x faster than the first (a linear classifier
#: trained with lr 1e-3 is still far from converged after the run).
HEAD_LR = 1e-2
STRATEGIES = ("linear on frozen features", "fine-tune all layers", "from scratch")
SHORT = {
    "very little data": "little data",
    "quite a lot of data": "more data",
    "linear on frozen features": "frozen",
    "fine-tune all layers": "fine-tune",
    "from scratch": "scratch",
}


def run(ctx: Context) -> dict:
    cfg = ctx.config
    data = ctx.data
    source_train = data.train.classes(SOURCE)
    source_val = data.val.classes(SOURCE)
    target_val = data.val.classes(TARGET)

    pretrained = ctx.net(num_classes=len(SOURCE))
    start = time.perf_counter()
    history = train(
        pretrained,
        optim.Adam(pretrained.params, lr=LR),
        data,
        steps=ctx.steps,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        reporter=ctx.reporter,
        name="6 · pretrain on digits 0-4",
        train_set=source_train,
        val_set=source_val,
    )
    full = data.train.classes(TARGET)
    draws = QUICK_DRAWS if cfg.quick else DRAWS
    rng = np.random.default_rng([cfg.seed, 6])
    amounts = {
        "very little data": [full.per_class(LITTLE, rng) for _ in range(draws)],
        "quite a lot of data": [full],
    }
    settings = {}
    for amount, sets in amounts.items():
        runs = {}
        for strategy in STRATEGIES:
            name = f"6 · {SHORT[amount]}: {SHORT[strategy]}"
            with ctx.reporter.task(name, total=ctx.steps * len(sets)) as advance:
                fits = [
                    _fit(ctx, strategy, pretrained, train_set, target_val, r, advance)
                    for r, train_set in enumerate(sets)
                ]
            accs = [f["final"]["val_acc"] for f in fits]
            runs[strategy] = {
                "val_acc": float(np.mean(accs)),
                "val_acc_std": float(np.std(accs)),
                "val_acc_per_draw": accs,
                "fits": fits,
            }
        settings[amount] = {"train_images": len(sets[0]), "draws": len(sets), "runs": runs}
    frozen = [f for s in settings.values() for f in s["runs"]["linear on frozen features"]["fits"]]
    return {
        "title": TITLE,
        "claim": CLAIM,
        "source_classes": list(SOURCE),
        "target_classes": list(TARGET),
        "pretrain": {
            "train_images": len(source_train),
            "history": history.to_json(),
            "final": history.final(),
            "seconds": time.perf_counter() - start,
        },
        "optimizer": (
            f"Adam: lr {LR} for the first layer (unless frozen), {HEAD_LR} for the new last"
        ),
        "settings": settings,
        "frozen_unchanged": all(f["backbone_unchanged"] for f in frozen),
        "frozen_max_abs_change": max(f["backbone_max_abs_change"] for f in frozen),
    }


def _fit(
    ctx: Context,
    strategy: str,
    pretrained: TwoLayerNet,
    train_set: Split,
    val_set: Split,
    draw: int,
    advance,
) -> dict:
    cfg = ctx.config
    # Every strategy starts from the same new last layer; all but "from
    # scratch" from the pretrained first layer.
    net = ctx.net(num_classes=len(TARGET), seed_offset=6)
    if strategy != "from scratch":
        for k in ("W1", "b1"):
            net.params[k][...] = pretrained.params[k]
    backbone = {k: net.params[k] for k in ("W1", "b1")}
    head = {k: net.params[k] for k in ("W2", "b2")}
    frozen = strategy == "linear on frozen features"
    groups = [{"params": backbone, "frozen": frozen}, {"params": head, "lr": HEAD_LR}]
    before = {k: v.copy() for k, v in backbone.items()}
    offset = draw * ctx.steps
    history = train(
        net,
        optim.Adam(groups, lr=LR),
        ctx.data,
        steps=ctx.steps,
        batch_size=min(cfg.batch_size, len(train_set)),
        seed=cfg.seed + draw,
        reporter=ctx.reporter,
        name=strategy,
        train_set=train_set,
        val_set=val_set,
        eval_every=ctx.steps_per_epoch,
        progress=lambda step, info: advance(offset + step, info),
    )
    change = max(float(np.max(np.abs(backbone[k] - before[k]))) for k in backbone)
    return {
        "train_images": len(train_set),
        "history": history.to_json(),
        "final": history.final(),
        "backbone_unchanged": all(np.array_equal(backbone[k], before[k]) for k in backbone),
        "backbone_max_abs_change": change,
    }


def table(res: dict) -> tuple[list, list]:
    columns = ["digits 5-9 from", "frozen + linear", "fine-tune all", "from scratch"]
    rows = []
    for s in res["settings"].values():
        cells = [_acc(s["runs"][k]) for k in STRATEGIES]
        rows.append([f"{s['train_images']} images", *cells])
    return columns, rows


def _acc(run: dict) -> str:
    if len(run["val_acc_per_draw"]) == 1:
        return f"{run['val_acc']:.1%}"
    return f"{run['val_acc']:.1%} ± {run['val_acc_std']:.1%}"


COLORS = {
    "linear on frozen features": "#1f77b4",
    "fine-tune all layers": "#d62728",
    "from scratch": "#7f7f7f",
}


def _tick(amount: str, s: dict) -> str:
    label = f"{amount}\n({s['train_images']} training images"
    if s["draws"] > 1:
        label += f"; mean and std over {s['draws']} draws"
    return label + ")"


def draw(fig, res: dict) -> None:
    ax = fig.add_subplot()
    settings = list(res["settings"].items())
    width = 0.26
    for j, strategy in enumerate(STRATEGIES):
        xs = np.arange(len(settings)) + (j - 1) * width
        accs = [s["runs"][strategy]["val_acc"] for _, s in settings]
        errs = [s["runs"][strategy]["val_acc_std"] for _, s in settings]
        bars = ax.bar(
            xs,
            accs,
            width * 0.95,
            yerr=errs,
            capsize=4,
            color=COLORS[strategy],
            label=strategy,
            error_kw={"elinewidth": 1, "ecolor": "0.3"},
        )
        for bar, acc, err in zip(bars, accs, errs):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                acc + err + 0.005,
                f"{acc:.1%}",
                ha="center",
                va="bottom",
                fontsize=9,
            )
    ax.set_xticks(np.arange(len(settings)))
    ax.set_xticklabels([_tick(a, s) for a, s in settings])
    lo = min(s["runs"][k]["val_acc"] for _, s in settings for k in STRATEGIES)
    ax.set_ylim(max(0.0, lo - 0.1), 1.04)
    ax.set_ylabel("validation accuracy on digits 5-9")
    pre = res["pretrain"]["final"]["val_acc"]
    fig.suptitle(
        "6. Transfer learning: pretrained on digits 0-4 "
        f"({pre:.1%} val. accuracy there), then digits 5-9\n"
        "with a new last layer: frozen first layer (linear classifier) vs fine-tuning\n"
        f"{verdict_line(SHORT_CLAIM, res)}"
    )
    ax.legend(fontsize=9, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)


def verdict(res: dict) -> dict:
    little, lot = (res["settings"][k]["runs"] for k in ("very little data", "quite a lot of data"))
    frozen, tuned, scratch = STRATEGIES
    return {
        "reproduced": little[frozen]["val_acc"] >= little[tuned]["val_acc"]
        and lot[tuned]["val_acc"] >= lot[frozen]["val_acc"],
        "measured": (
            f"very little data: frozen {little[frozen]['val_acc']:.1%}, fine-tuned "
            f"{little[tuned]['val_acc']:.1%}, from scratch {little[scratch]['val_acc']:.1%}; "
            f"quite a lot: frozen {lot[frozen]['val_acc']:.1%}, fine-tuned "
            f"{lot[tuned]['val_acc']:.1%}, from scratch {lot[scratch]['val_acc']:.1%}"
        ),
    }
