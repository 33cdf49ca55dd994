"""The demo's network: a two-layer fully connected net in NumPy with a
hand-written backward pass (cs231n style)::

    affine - ReLU - dropout - affine - softmax (cross-entropy)

Dropout is ``lec7rs.regularization.dropout`` (inverted: kept activations are
scaled by ``1 / (1 - p)`` in training, nothing changes at test time), drawn
from a ``lec7rs.Generator``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import regularization
from ..random import Generator

__all__ = ["TwoLayerNet", "cross_entropy", "softmax"]


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed with the row maximum subtracted."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(mean cross-entropy of the softmax of scores, accuracy)`` for labels ``y``."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(len(y)), y].mean(dtype=np.float64))
    return loss, float(np.mean(scores.argmax(axis=1) == y))


class TwoLayerNet:
    """``scores = relu(X W1 + b1) [dropout] W2 + b2``, trained with the
    softmax cross-entropy loss plus ``0.5 * reg * (|W1|^2 + |W2|^2)``.

    ``params`` is a dict ``{"W1": (D, H), "b1": (H,), "W2": (H, C),
    "b2": (C,)}`` of C-contiguous arrays of ``dtype``, ready for the
    ``lec7rs.optim`` optimizers (which update them in place). Weights are
    drawn from ``np.random.default_rng(seed)``: He initialization
    ``N(0, 2 / D)`` for ``W1`` (it feeds a ReLU), ``N(0, 1 / H)`` for
    ``W2``; biases start at zero.

    ``dropout`` is the probability of dropping a hidden unit in training
    (0 disables it).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        num_classes: int,
        *,
        seed: int = 0,
        dropout: float = 0.0,
        reg: float = 0.0,
        dtype: Any = np.float32,
    ):
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if reg < 0:
            raise ValueError(f"reg must be >= 0, got {reg}")
        rng = np.random.default_rng(seed)
        dt = np.dtype(dtype)
        self.dropout = float(dropout)
        self.reg = float(reg)
        self.params: dict[str, np.ndarray] = {
            "W1": (
                rng.standard_normal((input_dim, hidden_dim)) * math.sqrt(2.0 / input_dim)
            ).astype(dt),
            "b1": np.zeros(hidden_dim, dtype=dt),
            "W2": (rng.standard_normal((hidden_dim, num_classes)) / math.sqrt(hidden_dim)).astype(
                dt
            ),
            "b2": np.zeros(num_classes, dtype=dt),
        }

    @property
    def dtype(self) -> np.dtype:
        return self.params["W1"].dtype

    # -- test time ------------------------------------------------------------------

    def features(self, X: np.ndarray) -> np.ndarray:
        """The hidden activations ``relu(X W1 + b1)`` (test time: no dropout)."""
        p = self.params
        return np.maximum(X @ p["W1"] + p["b1"], 0)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores ``(N, C)`` at test time (inverted dropout: no scaling)."""
        return self.features(X) @ self.params["W2"] + self.params["b2"]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, C)`` at test time."""
        return softmax(self.scores(X))

    def reg_loss(self) -> float:
        """``0.5 * reg * (|W1|^2 + |W2|^2)``, the weight penalty of the loss."""
        w1, w2 = self.params["W1"], self.params["W2"]
        return 0.5 * self.reg * (float(np.vdot(w1, w1)) + float(np.vdot(w2, w2)))

    def evaluate(self, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(mean cross-entropy, accuracy)`` at test time (no weight penalty)."""
        return cross_entropy(self.scores(X), y)

    # -- training -------------------------------------------------------------------

    def loss(
        self, X: np.ndarray, y: np.ndarray, *, rng: Generator | None = None
    ) -> tuple[float, dict[str, np.ndarray]]:
        """The loss on ``(X, y)`` and its gradient with respect to every param.

        With ``rng`` (a ``lec7rs.Generator``) and ``dropout > 0`` this is a
        training pass with a fresh dropout mask; without ``rng`` it is the
        deterministic objective (no dropout), as full-batch methods need.
        Returns ``(loss, grads)`` with ``grads`` keyed like ``params``.
        """
        p = self.params
        n = X.shape[0]
        # forward
        h = X @ p["W1"] + p["b1"]
        a = np.maximum(h, 0)
        mask = None
        if rng is not None and self.dropout > 0:
            a, mask = regularization.dropout(a, self.dropout, rng=rng)
        scores = a @ p["W2"] + p["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        log_probs = shifted - log_z
        rows = np.arange(n)
        data_loss = -float(log_probs[rows, y].mean(dtype=np.float64))
        reg_loss = self.reg_loss()
        # backward
        dscores = np.exp(log_probs)
        dscores[rows, y] -= 1
        dscores /= n
        grads = {
            "W2": a.T @ dscores + self.reg * p["W2"],
            "b2": dscores.sum(axis=0),
        }
        da = dscores @ p["W2"].T
        if mask is not None:
            da = regularization.dropout_backward(da, mask, self.dropout)
        dh = da * (h > 0)
        grads["W1"] = X.T @ dh + self.reg * p["W1"]
        grads["b1"] = dh.sum(axis=0)
        dt = self.dtype
        grads = {k: np.asarray(v, dtype=dt) for k, v in grads.items()}
        return data_loss + reg_loss, grads

    # -- flat views, for lec7rs.optimize.minimize ----------------------------------------

    def get_flat(self) -> np.ndarray:
        """All params as one new vector (W1, b1, W2, b2 in that order)."""
        return np.concatenate([self.params[k].ravel() for k in ("W1", "b1", "W2", "b2")])

    def set_flat(self, theta: np.ndarray) -> None:
        """Copies the vector ``theta`` (as ``get_flat`` orders it) into the params."""
        start = 0
        for k in ("W1", "b1", "W2", "b2"):
            a = self.params[k]
            a[...] = theta[start : start + a.size].reshape(a.shape)
            start += a.size
        if start != theta.size:
            raise ValueError(f"theta: expected {start} elements, got {theta.size}")

    def flat_loss(
        self, theta: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> tuple[float, np.ndarray]:
        """``(loss, flat gradient)`` at ``theta``, without dropout: the
        objective for full-batch methods (``minimize(net.flat_loss, ...)``).
        Leaves ``theta`` in the params."""
        self.set_flat(theta)
        loss, grads = self.loss(X, y)
        return loss, np.concatenate([grads[k].ravel() for k in ("W1", "b1", "W2", "b2")])
