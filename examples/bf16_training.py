"""The demo's two-layer net on the digits, trained in bfloat16 next to float32.

    python examples/bf16_training.py
    python examples/bf16_training.py --epochs 30 --seed 1

Needs ml_dtypes (``pip install ml_dtypes``; it is in the ``test`` extra) for
NumPy's bfloat16 dtype.

Two runs of ``lec7rs.optim.Adam(lr=1e-3)`` from the same initialization
(rounded to bfloat16 for the second), on the same mini-batches, 15 epochs by
default (a few seconds):

* float32: float32 params and grads, float32 state (the reference);
* bfloat16: the optimizer owns bfloat16 params, with ``master_weights=True``
  (a float32 copy of each param in the state, stepped in place; the param
  gets its rounded value) and ``state_dtype="int8"`` (block-wise 8-bit
  moments; params under 4096 elements keep float32 moments, so here only
  the moments of ``W1``, 64 x 128 = 8192 elements, are stored in 8 bits).

The net computes its forward and backward passes in float32 on the values
of the bfloat16 params (``astype``) and hands the float32 grads to the
optimizer as they are (bfloat16 params take bfloat16 or float32 grads).

It prints each run's validation accuracy and the bytes per param of the
params and of the optimizer state (the arrays of ``opt.state``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from lec7rs import optim
from lec7rs.data import load_digits
from lec7rs.demo.model import TwoLayerNet

try:
    import ml_dtypes
except ImportError:
    sys.exit("this example needs ml_dtypes for bfloat16 arrays: pip install ml_dtypes")

HIDDEN = 128
BATCH = 64


def split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features (pixels / 16, minus the training mean) and labels: 297
    validation images at random, the other 1500 for training."""
    images, labels = load_digits()
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(16)
    order = np.random.default_rng(seed).permutation(len(labels))
    val, train = order[:297], order[297:]
    mean = x[train].mean(axis=0)
    return x[train] - mean, labels[train], x[val] - mean, labels[val]


def state_bytes(entries) -> int:
    """The bytes of every array in some entries of an optimizer's ``state``."""
    return sum(v.nbytes for entry in entries for v in entry.values() if hasattr(v, "nbytes"))


def train(low: dict, opt: optim.Optimizer, net: TwoLayerNet, data: tuple, args) -> float:
    """Mini-batch training; ``low`` are the params ``opt`` steps (the net's
    own float32 params, or bfloat16 ones copied into the net after each
    step). Returns the validation accuracy."""
    X, y, Xv, yv = data
    batches = np.random.default_rng(args.seed + 1)
    for _ in range(args.epochs):
        order = batches.permutation(len(y))
        for start in range(0, len(y) - BATCH + 1, BATCH):
            idx = order[start : start + BATCH]
            _, grads = net.loss(X[idx], y[idx])
            opt.step(grads)
            if low is not net.params:
                for k, v in low.items():
                    net.params[k][...] = v.astype(np.float32)
    return net.evaluate(Xv, yv)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = split(args.seed)

    net32 = TwoLayerNet(64, HIDDEN, 10, seed=args.seed, reg=1e-4)
    opt32 = optim.Adam(net32.params, lr=1e-3)
    acc32 = train(net32.params, opt32, net32, data, args)

    net16 = TwoLayerNet(64, HIDDEN, 10, seed=args.seed, reg=1e-4)
    low = {k: v.astype(ml_dtypes.bfloat16) for k, v in net16.params.items()}
    for k, v in low.items():  # the net starts from the rounded values
        net16.params[k][...] = v.astype(np.float32)
    opt16 = optim.Adam(low, lr=1e-3, master_weights=True, state_dtype="int8")
    acc16 = train(low, opt16, net16, data, args)

    n = sum(p.size for p in low.values())
    print(f"{n} params, {args.epochs} epochs of {len(data[1]) // BATCH} steps")
    print(f"{'run':32s} {'val acc':>8s} {'param B':>8s} {'state B':>8s}  (bytes per param)")
    for name, acc, params, opt in (
        ("float32", acc32, net32.params, opt32),
        ("bfloat16 + master + int8 state", acc16, low, opt16),
    ):
        pbytes = sum(p.nbytes for p in params.values())
        sbytes = state_bytes(opt.state.values())
        print(f"{name:32s} {acc:8.1%} {pbytes / n:8.2f} {sbytes / n:8.2f}")
    w1 = opt16.state["W1"]  # 8192 elements: 8-bit moments
    print(
        f"bfloat16 W1 alone: master {w1['master'].dtype}, exp_avg {w1['exp_avg'].dtype}, "
        f"exp_avg_sq {w1['exp_avg_sq'].dtype}, "
        f"{state_bytes([w1]) / low['W1'].size:.2f} state B per param"
    )


if __name__ == "__main__":
    main()
