"""The minibatch training loop shared by the parts, with its history."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._console import Advance, Reporter
from ..random import Generator
from .data import Digits, Split
from .model import TwoLayerNet


@dataclass
class History:
    """Metrics recorded every ``eval_every`` steps (and at step 0).

    ``train_loss`` is the training objective (cross-entropy plus the weight
    penalty) on the whole training set, evaluated without dropout;
    ``val_loss`` the cross-entropy on the validation set."""

    step: list = field(default_factory=list)
    epoch: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {
            k: getattr(self, k)
            for k in ("step", "epoch", "lr", "train_loss", "train_acc", "val_loss", "val_acc")
        }
        out.update(self.extra)
        return out

    def final(self) -> dict:
        return {
            "train_loss": self.train_loss[-1],
            "train_acc": self.train_acc[-1],
            "val_loss": self.val_loss[-1],
            "val_acc": self.val_acc[-1],
        }


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def train(
    net: TwoLayerNet,
    optimizer,
    data: Digits,
    *,
    steps: int,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    name: str,
    train_set: Split | None = None,
    val_set: Split | None = None,
    eval_every: int | None = None,
    augment: Callable[[np.ndarray, Generator], np.ndarray] | None = None,
    after_step: Callable[[int], None] | None = None,
    observe: Callable[[], dict] | None = None,
    progress: Advance | None = None,
) -> History:
    """Trains ``net`` with ``optimizer`` for ``steps`` minibatch steps.

    Each epoch visits ``train_set`` (default: the whole training split) in a
    fresh random order (``np.random.default_rng(seed)``), in batches of
    ``batch_size`` (the last one smaller). Dropout masks and augmentations
    draw from ``lec7rs.Generator(seed)``. ``augment(images, rng)`` maps a
    batch of NHWC images to augmented ones before ``data.features``.
    ``after_step(t)`` runs after the ``t``-th step (schedulers, averaging);
    ``observe()`` adds metrics to the history at each evaluation.
    Progress goes to a new bar named ``name``, or to ``progress`` (the
    ``advance`` of a bar shared by several runs).
    """
    train_set = data.train if train_set is None else train_set
    val_set = data.val if val_set is None else val_set
    n = len(train_set)
    per_epoch = steps_per_epoch(n, batch_size)
    eval_every = per_epoch if eval_every is None else eval_every
    X_train = data.features(train_set.images)
    X_val = data.features(val_set.images)
    order_rng = np.random.default_rng([seed, 1])
    gen = Generator(seed)
    drop_rng, aug_rng = gen.spawn(2)
    history = History()

    # A schedule-free optimizer trains at y and is evaluated at its average x.
    swap = hasattr(optimizer, "train_mode")

    def record(step: int) -> None:
        if swap:
            optimizer.eval()
        train_loss, train_acc = net.evaluate(X_train, train_set.labels)
        val_loss, val_acc = net.evaluate(X_val, val_set.labels)
        if swap:
            optimizer.train()
        history.step.append(step)
        history.epoch.append(step / per_epoch)
        history.lr.append(float(optimizer.param_groups[-1]["lr"]))
        history.train_loss.append(train_loss + net.reg_loss())
        history.train_acc.append(train_acc)
        history.val_loss.append(val_loss)
        history.val_acc.append(val_acc)
        if observe is not None:
            for key, value in observe().items():
                history.extra.setdefault(key, []).append(value)

    record(0)
    bar = reporter.task(name, total=steps) if progress is None else contextlib.nullcontext(progress)
    with bar as advance:
        step = 0
        while step < steps:
            order = order_rng.permutation(n)
            for start in range(0, n, batch_size):
                batch = order[start : start + batch_size]
                images = train_set.images[batch]
                if augment is not None:
                    images = augment(images, aug_rng)
                _, grads = net.loss(data.features(images), train_set.labels[batch], rng=drop_rng)
                optimizer.step(grads)
                step += 1
                if after_step is not None:
                    after_step(step)
                if step % eval_every == 0 or step == steps:
                    record(step)
                    advance(step, _info(history))
                if step == steps:
                    break
    return history


def _info(history: History) -> str:
    return f"loss {history.train_loss[-1]:.3f} · val acc {history.val_acc[-1]:.1%}"
