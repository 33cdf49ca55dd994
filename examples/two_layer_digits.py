"""The cs231n two-layer net on the handwritten digits, trained with lec7rs.

    python examples/two_layer_digits.py
    python examples/two_layer_digits.py --optimizer sgd --epochs 20

The network is plain NumPy with a hand-written backward pass::

    affine - ReLU - dropout - affine - softmax (cross-entropy)

lec7rs does the training-time work: the optimizer (``Adam``, or ``SGD``
with Nesterov momentum), a cosine learning-rate schedule
(``CosineAnnealingLR``, stepped once per epoch) and inverted dropout drawn
from a ``lec7rs.Generator``. The data are scikit-learn's 8x8 digits, shipped
in the package (``lec7rs.data.load_digits()``): 1497 images to train on,
300 (30 per class) to validate on.

The script prints the validation accuracy after every epoch and, last,
``final val accuracy: ...``. The lec7rs part of a run (optimizer steps,
dropout masks) is bit-reproducible; the matrix products are NumPy's (BLAS),
which may round differently on another machine.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from lec7rs import Generator, optim, regularization
from lec7rs.data import load_digits
from lec7rs.optim.lr_scheduler import CosineAnnealingLR

VAL_PER_CLASS = 30


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X_train, y_train, X_val, y_val)``: flattened float32 images in
    [0, 1], minus the per-pixel mean of the training images (cs231n's
    preprocessing)."""
    images, labels = load_digits()  # uint8 (1797, 8, 8) with values 0..16, int64 labels
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(16.0)
    rng = np.random.default_rng(seed)
    val = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), VAL_PER_CLASS, replace=False) for c in range(10)]
    )
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val] = True
    X_train, X_val = X[~is_val], X[is_val]
    mean = X_train.mean(axis=0)
    return X_train - mean, labels[~is_val], X_val - mean, labels[is_val]


def init_params(input_dim: int, hidden_dim: int, num_classes: int, seed: int) -> dict:
    """He initialization for the first layer (it feeds a ReLU), zero biases."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((input_dim, hidden_dim)) * math.sqrt(2.0 / input_dim)
    w2 = rng.standard_normal((hidden_dim, num_classes)) / math.sqrt(hidden_dim)
    return {
        "W1": w1.astype(np.float32),
        "b1": np.zeros(hidden_dim, np.float32),
        "W2": w2.astype(np.float32),
        "b2": np.zeros(num_classes, np.float32),
    }


def loss_and_grads(
    params: dict, X: np.ndarray, y: np.ndarray, *, p_drop: float, rng: Generator
) -> tuple[float, dict]:
    """Forward and backward pass on one minibatch (training mode: dropout on)."""
    n = len(y)
    # forward
    h = X @ params["W1"] + params["b1"]
    a = np.maximum(h, 0)
    a, mask = regularization.dropout(a, p_drop, rng=rng)  # inverted: scaled by 1 / (1 - p)
    scores = a @ params["W2"] + params["b2"]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(n), y].mean())
    # backward
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1
    dscores /= n
    grads = {"W2": a.T @ dscores, "b2": dscores.sum(axis=0)}
    da = regularization.dropout_backward(dscores @ params["W2"].T, mask, p_drop)
    dh = da * (h > 0)
    grads["W1"] = X.T @ dh
    grads["b1"] = dh.sum(axis=0)
    return loss, grads


def accuracy(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    """Test time: no dropout (inverted dropout needs no rescaling)."""
    a = np.maximum(X @ params["W1"] + params["b1"], 0)
    scores = a @ params["W2"] + params["b2"]
    return float(np.mean(scores.argmax(axis=1) == y))


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.25, help="probability of dropping a unit")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    X_train, y_train, X_val, y_val = load_data(args.seed)
    params = init_params(X_train.shape[1], args.hidden, 10, args.seed)
    if args.optimizer == "adam":
        opt = optim.Adam(params, lr=1e-2)
    else:
        opt = optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    sched = CosineAnnealingLR(opt, T_max=args.epochs)
    rng = Generator(args.seed)  # the dropout masks
    order = np.random.default_rng([args.seed, 1])  # the minibatch order

    print(f"{args.optimizer}: {len(y_train)} training images, {len(y_val)} validation images")
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        perm = order.permutation(len(y_train))
        losses = []
        for start in range(0, len(perm), args.batch_size):
            idx = perm[start : start + args.batch_size]
            loss, grads = loss_and_grads(
                params, X_train[idx], y_train[idx], p_drop=args.dropout, rng=rng
            )
            opt.step(grads)  # updates the arrays of params in place
            losses.append(loss)
        sched.step()
        acc = accuracy(params, X_val, y_val)
        print(f"epoch {epoch:3d}  lr {lr:.5f}  train loss {np.mean(losses):.4f}  val acc {acc:.3f}")
    print(f"final val accuracy: {acc:.3f}")
    return acc


if __name__ == "__main__":
    main()
