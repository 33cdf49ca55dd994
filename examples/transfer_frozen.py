"""Transfer learning with frozen param groups, on the handwritten digits.

    python examples/transfer_frozen.py
    python examples/transfer_frozen.py --per-class 20 --epochs 60

1. Pretrain the two-layer net (affine - ReLU - affine - softmax, NumPy with
   a hand-written backward pass) on the digits 0-4.
2. Learn the digits 5-9 from a few images per class (``--per-class``,
   default 5) with a new, freshly initialized last layer, in two ways:

   - frozen: the first layer is a param group with ``"frozen": True``, so
     ``opt.step`` skips it (its grads may be ``None``) and only the new last
     layer learns: a linear classifier on the pretrained features;
   - fine-tuned: the first layer is a group of its own with a 10x smaller
     learning rate than the last layer's.

   Training from scratch on the same few images is printed as a baseline.

All runs use ``lec7rs.optim.Adam`` with per-group learning rates. The
accuracies are on the held-out images of the digits 5-9. On these 8x8
digits the features learned from five other digits are not much better
than what the net learns from the raw pixels, so do not expect the frozen
features to win here (the lecture's advice is about deep features that are
expensive to learn).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from lec7rs import optim
from lec7rs.data import load_digits

SOURCE = (0, 1, 2, 3, 4)
TARGET = (5, 6, 7, 8, 9)
BACKBONE_LR = 1e-3
HEAD_LR = 1e-2


def load(seed: int, per_class: int) -> dict:
    """Flattened float32 images in [0, 1] minus the pixel mean of the
    pretraining images; labels renumbered 0..4 within each task."""
    images, labels = load_digits()
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(16.0)
    src = np.isin(labels, SOURCE)
    mean = X[src].mean(axis=0)
    X = X - mean
    rng = np.random.default_rng(seed)
    few = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in TARGET]
    )
    held_out = np.setdiff1d(np.flatnonzero(np.isin(labels, TARGET)), few)
    return {
        "source": (X[src], labels[src]),
        "few": (X[few], labels[few] - 5),
        "held_out": (X[held_out], labels[held_out] - 5),
    }


def layer(fan_in: int, fan_out: int, rng: np.random.Generator, gain: float) -> tuple:
    w = rng.standard_normal((fan_in, fan_out)) * math.sqrt(gain / fan_in)
    return w.astype(np.float32), np.zeros(fan_out, np.float32)


def loss_and_grads(params: dict, X: np.ndarray, y: np.ndarray, *, backbone: bool) -> tuple:
    """Softmax cross-entropy and its gradient; ``backbone=False`` leaves the
    first layer's grads out (``None``: the optimizer skips them anyway)."""
    n = len(y)
    h = X @ params["W1"] + params["b1"]
    a = np.maximum(h, 0)
    scores = a @ params["W2"] + params["b2"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(n), y].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    dscores /= n
    grads = {"W2": a.T @ dscores, "b2": dscores.sum(axis=0), "W1": None, "b1": None}
    if backbone:
        dh = (dscores @ params["W2"].T) * (h > 0)
        grads["W1"] = X.T @ dh
        grads["b1"] = dh.sum(axis=0)
    return loss, grads


def accuracy(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    scores = np.maximum(X @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]
    return float(np.mean(scores.argmax(axis=1) == y))


def fit(opt, params: dict, X, y, *, epochs: int, batch_size: int, seed: int, backbone: bool):
    order = np.random.default_rng(seed)
    for _ in range(epochs):
        perm = order.permutation(len(y))
        for start in range(0, len(y), batch_size):
            idx = perm[start : start + batch_size]
            _, grads = loss_and_grads(params, X[idx], y[idx], backbone=backbone)
            opt.step(grads)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--per-class", type=int, default=5, help="training images per new digit")
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=100, help="epochs over the few new images")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    data = load(args.seed, args.per_class)
    rng = np.random.default_rng(args.seed)
    W1, b1 = layer(64, args.hidden, rng, gain=2.0)  # He initialization (feeds a ReLU)
    W2, b2 = layer(args.hidden, len(SOURCE), rng, gain=1.0)
    pretrained = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    X, y = data["source"]
    fit(
        optim.Adam(pretrained, lr=BACKBONE_LR),
        pretrained,
        X,
        y,
        epochs=args.pretrain_epochs,
        batch_size=64,
        seed=args.seed,
        backbone=True,
    )
    print(f"pretrained on digits 0-4 ({len(y)} images): train acc {accuracy(pretrained, X, y):.3f}")

    # Every strategy starts from the same new last layer.
    new_head = layer(args.hidden, len(TARGET), np.random.default_rng([args.seed, 1]), gain=1.0)
    scratch = layer(64, args.hidden, np.random.default_rng([args.seed, 2]), gain=2.0)
    X, y = data["few"]
    X_test, y_test = data["held_out"]
    print(f"digits 5-9: {len(y)} training images, {len(y_test)} held-out images")
    results = {}
    for strategy in ("frozen", "fine-tuned", "from scratch"):
        first = scratch if strategy == "from scratch" else (pretrained["W1"], pretrained["b1"])
        backbone = {"W1": first[0].copy(), "b1": first[1].copy()}
        head = {"W2": new_head[0].copy(), "b2": new_head[1].copy()}
        frozen = strategy == "frozen"
        opt = optim.Adam(
            [
                {"params": backbone, "lr": BACKBONE_LR, "frozen": frozen},
                {"params": head, "lr": HEAD_LR},
            ]
        )
        before = backbone["W1"].copy()
        params = {**backbone, **head}
        fit(
            opt,
            params,
            X,
            y,
            epochs=args.epochs,
            batch_size=len(y),
            seed=args.seed,
            backbone=not frozen,
        )
        if frozen:  # a frozen group is never written
            assert np.array_equal(backbone["W1"], before)
        results[strategy] = accuracy(params, X_test, y_test)
        print(f"  {strategy:13s} held-out accuracy {results[strategy]:.3f}")
    print(
        f"result: frozen {results['frozen']:.3f}, fine-tuned {results['fine-tuned']:.3f}, "
        f"from scratch {results['from scratch']:.3f}"
    )
    return results


if __name__ == "__main__":
    main()
