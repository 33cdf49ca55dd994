"""The demo's two-layer net on digits, trained with bfloat16 params (and
float32 master weights, or int8 state) on the quick settings, ends within
0.5 percentage points of the float32 run's validation accuracy.

The ZeRO-Offload pattern: the optimizer owns the low-precision params; the
net computes its forward and backward pass in float32 on their values
(``astype``), and the float32 grads go to the optimizer as they are.
"""

from __future__ import annotations

import numpy as np
import pytest
from lec7rs import optim
from lec7rs._console import Reporter
from lec7rs.demo.context import QUICK_EPOCHS, Config
from lec7rs.demo.data import load
from lec7rs.demo.model import TwoLayerNet
from lec7rs.demo.train import steps_per_epoch, train

ml_dtypes = pytest.importorskip("ml_dtypes")


class Offload:
    """Steps 16-bit params with float32 grads and copies their values into
    the float32 net after each step."""

    def __init__(self, net: TwoLayerNet, dtype, **options):
        self.net = net
        self.low = {k: v.astype(dtype) for k, v in net.params.items()}
        self.opt = optim.Adam(self.low, lr=1e-3, **options)
        self.param_groups = self.opt.param_groups
        self._sync()

    def _sync(self) -> None:
        for k, v in self.low.items():
            self.net.params[k][...] = v.astype(np.float32)

    def step(self, grads: dict) -> None:
        self.opt.step(grads)
        self._sync()


def final_val_acc(make_optimizer) -> float:
    cfg = Config(quick=True, epochs=QUICK_EPOCHS)
    data = load(cfg.seed)
    net = TwoLayerNet(64, cfg.hidden, 10, seed=cfg.seed, reg=cfg.reg)
    steps = QUICK_EPOCHS * steps_per_epoch(len(data.train), cfg.batch_size)
    history = train(
        net,
        make_optimizer(net),
        data,
        steps=steps,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        reporter=Reporter(quiet=True),
        name="low precision",
    )
    return history.val_acc[-1]


@pytest.fixture(scope="module")
def float32_acc() -> float:
    return final_val_acc(lambda net: optim.Adam(net.params, lr=1e-3))


@pytest.mark.parametrize(
    "options",
    [
        {"master_weights": True},
        {"state_dtype": "int8"},
        {"master_weights": True, "state_dtype": "int8"},
    ],
    ids=["bf16+master", "bf16+int8", "bf16+master+int8"],
)
def test_bf16_training_matches_float32_accuracy(float32_acc, options):
    acc = final_val_acc(lambda net: Offload(net, ml_dtypes.bfloat16, **options))
    print(f"float32 {float32_acc:.4f}, {options}: {acc:.4f}")
    assert float32_acc > 0.9
    assert abs(acc - float32_acc) <= 0.005
