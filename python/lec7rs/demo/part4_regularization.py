"""Part 4: regularization on a deliberately small training set (10 images
per digit) and a wide net (512 hidden units): no dropout vs dropout
(``lec7rs.regularization.dropout``) vs dropout plus data augmentation
(``lec7rs.augment``: random crops of the image padded by one pixel, i.e.
shifts by up to a pixel, and brightness and contrast jitter; no flips,
which would turn digits into other shapes).

A one-pixel shift is an eighth of an 8x8 digit: shifting every training
image hurts this (not translation-invariant) net, so the crop is applied to
a random half of each batch, as torchvision's ``RandomApply(p=0.5)`` would.
"""

from __future__ import annotations

import time

import numpy as np

from .. import optim
from ..random import Generator
from .context import Context, verdict_line
from .train import train

TITLE = "Regularization"
SHORT_CLAIM = "dropout and augmentation narrow the train/validation gap"
CLAIM = (
    "On a small training set, regularization (here dropout plus data augmentation) "
    "narrows the train/validation gap and raises validation accuracy"
)

#: Training images per class: 10 of each digit, 100 in all.
PER_CLASS = 10
HIDDEN = 512
BATCH_SIZE = 50
DROPOUT = 0.5
PADDING = 1
CROP_PROBABILITY = 0.5
BRIGHTNESS = 0.2
CONTRAST = 0.2
LR = 1e-3
#: Random draws of the small training set (and of the initialization) the
#: results are averaged over.
DRAWS = 3
QUICK_DRAWS = 1


def augment(images: np.ndarray, rng: Generator) -> np.ndarray:
    """A random crop of the padded image (a shift by up to ``PADDING``
    pixels) for a random ``CROP_PROBABILITY`` of the images, then
    brightness and contrast jitter for all (torchvision's ``ColorJitter``:
    factors uniform in ``[1 - b, 1 + b]``, results clamped to [0, 1])."""
    from .. import augment as aug

    out = images.copy()
    pick = rng.random(len(images), dtype=np.float32) < CROP_PROBABILITY
    if pick.any():
        out[pick] = aug.random_crop(images[pick], images.shape[1], rng=rng, padding=PADDING)
    return aug.color_jitter(out, rng=rng, brightness=BRIGHTNESS, contrast=CONTRAST)


def run(ctx: Context) -> dict:
    cfg = ctx.config
    rng = np.random.default_rng([cfg.seed, 4])
    draws = QUICK_DRAWS if cfg.quick else DRAWS
    sets = [ctx.data.train.per_class(PER_CLASS, rng) for _ in range(draws)]
    batch = min(BATCH_SIZE, len(sets[0]))
    variants = {
        "no dropout": (0.0, None),
        f"dropout p={DROPOUT}": (DROPOUT, None),
        f"dropout p={DROPOUT} + augmentation": (DROPOUT, augment),
    }
    runs = {}
    for name, (p, aug) in variants.items():
        start = time.perf_counter()
        histories = []
        label = name.replace(f"dropout p={DROPOUT}", "dropout").replace("augmentation", "augment")
        with ctx.reporter.task(f"4 · {label}", total=ctx.steps * draws) as advance:
            for r, small in enumerate(sets):
                net = ctx.net(hidden_dim=HIDDEN, dropout=p, reg=0.0, seed_offset=r)
                offset = r * ctx.steps
                histories.append(
                    train(
                        net,
                        optim.Adam(net.params, lr=LR),
                        ctx.data,
                        steps=ctx.steps,
                        batch_size=batch,
                        seed=cfg.seed + r,
                        reporter=ctx.reporter,
                        name=name,
                        train_set=small,
                        eval_every=ctx.steps_per_epoch,
                        augment=aug,
                        progress=lambda step, info, o=offset: advance(o + step, info),
                    ).to_json()
                )
        mean = {
            k: np.mean([h[k] for h in histories], axis=0).tolist()
            for k in ("train_loss", "train_acc", "val_loss", "val_acc")
        }
        history = {"step": histories[0]["step"], "epoch": histories[0]["epoch"], **mean}
        final = {k: v[-1] for k, v in mean.items()}
        runs[name] = {
            "dropout": p,
            "augmentation": aug is not None,
            "history": history,
            "final": final,
            "gap": final["train_acc"] - final["val_acc"],
            "per_draw": [{k: h[k][-1] for k in mean} for h in histories],
            "seconds": time.perf_counter() - start,
        }
    return {
        "title": TITLE,
        "claim": CLAIM,
        "train_images": len(sets[0]),
        "per_class": PER_CLASS,
        "draws": draws,
        "hidden": HIDDEN,
        "batch_size": batch,
        "optimizer": f"Adam(lr={LR})",
        "augmentation": (
            f"lec7rs.augment.random_crop(size=8, padding={PADDING}) on a random "
            f"{CROP_PROBABILITY:.0%} of the images, then "
            f"color_jitter(brightness={BRIGHTNESS}, contrast={CONTRAST})"
        ),
        "steps": ctx.steps,
        "runs": runs,
    }


def table(res: dict) -> tuple[list, list]:
    columns = ["regularization", "train acc", "val acc", "gap", "val loss"]
    rows = []
    for name, r in res["runs"].items():
        f = r["final"]
        rows.append(
            [
                name,
                f"{f['train_acc']:.1%}",
                f"{f['val_acc']:.1%}",
                f"{r['gap']:.1%}",
                f"{f['val_loss']:.4f}",
            ]
        )
    return columns, rows


COLORS = ["#7f7f7f", "#1f77b4", "#d62728"]


def _mean_of(draws: int) -> str:
    return f" (means over {draws} draws of the images)" if draws > 1 else ""


def draw(fig, res: dict) -> None:
    ax = fig.add_subplot()
    for color, (name, r) in zip(COLORS, res["runs"].items()):
        h = r["history"]
        f = r["final"]
        ax.plot(h["step"], h["train_acc"], color=color, lw=1.2, ls="--")
        ax.plot(
            h["step"],
            h["val_acc"],
            color=color,
            lw=2,
            label=f"{name}: val {f['val_acc']:.1%}, gap {r['gap']:.1%}",
        )
    ax.plot([], [], color="k", ls="--", lw=1.2, label="dashed: training accuracy")
    ax.set_ylim(0.5, 1.01)
    ax.set_xlabel(f"optimizer steps (Adam, batch {res['batch_size']})")
    ax.set_ylabel("accuracy")
    fig.suptitle(
        f"4. Regularization with only {res['train_images']} training images "
        f"({res['per_class']} per digit), {res['hidden']} hidden units\n"
        f"solid: validation accuracy; gap = train - validation accuracy at the end"
        f"{_mean_of(res['draws'])}\n{verdict_line(SHORT_CLAIM, res)}"
    )
    ax.legend(fontsize=9, loc="lower right")
    ax.grid(True, alpha=0.3)


def verdict(res: dict) -> dict:
    none, drop, both = res["runs"].values()
    return {
        "reproduced": both["gap"] < none["gap"]
        and both["final"]["val_acc"] > none["final"]["val_acc"],
        "measured": (
            f"train/val gap: no dropout {none['gap']:.1%}, dropout {drop['gap']:.1%}, "
            f"dropout + augmentation {both['gap']:.1%}; val acc "
            f"{none['final']['val_acc']:.1%} / {drop['final']['val_acc']:.1%} / "
            f"{both['final']['val_acc']:.1%}"
        ),
    }
