"""The demo's two-layer net: its hand-written backward pass against
numerical gradients (cs231n's gradient check)."""

from __future__ import annotations

import copy

import lec7rs
import numpy as np
import pytest
from lec7rs.demo.model import TwoLayerNet


def numerical_gradient(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to ``x``, in place."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = f()
        x[i] = old - h
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_backward_matches_numerical_gradient(dropout):
    rng = np.random.default_rng(0)
    net = TwoLayerNet(6, 7, 4, seed=1, dropout=dropout, reg=0.1, dtype=np.float64)
    for p in net.params.values():  # non-zero biases: their gradients count too
        p += rng.standard_normal(p.shape) * 0.1
    X = rng.standard_normal((5, 6))
    y = np.array([0, 3, 1, 2, 3])
    gen = lec7rs.Generator(7)

    def loss(with_grads=False):
        # The same dropout mask on every evaluation: a copy of one generator state.
        out = net.loss(X, y, rng=copy.deepcopy(gen))
        return out if with_grads else out[0]

    _, grads = loss(with_grads=True)
    if dropout:
        _, mask = lec7rs.regularization.dropout(np.zeros((5, 7)), dropout, rng=copy.deepcopy(gen))
        assert 0 < mask.sum() < mask.size  # the check runs with units actually dropped
    for name, p in net.params.items():
        num = numerical_gradient(loss, p)
        rel = np.max(
            np.abs(num - grads[name]) / np.maximum(1e-8, np.abs(num) + np.abs(grads[name]))
        )
        assert rel < 1e-7, (name, rel)
