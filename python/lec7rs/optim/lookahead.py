"""Lookahead (Zhang et al. 2019) over any first-order optimizer."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any, Callable

import numpy as np

from .. import _core
from .._serial import attach_lock
from .._text import brief
from ._params import _is_int
from .optimizer import GradsT, Optimizer

__all__ = ["Lookahead"]

_brief = partial(brief, limit=80)
_STATE_DICT_VERSION = 1


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(
        alpha, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"alpha: expected a number, got {type(alpha).__name__}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {_brief(alpha)}")
    return float(alpha)


def _check_k(k: Any) -> int:
    if not _is_int(k):
        raise TypeError(f"k: expected an int, got {type(k).__name__}")
    if not 1 <= k <= 2**62:
        raise ValueError(f"k: expected an int >= 1, got {_brief(k)}")
    return int(k)


class Lookahead:
    r"""Lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1
    step back", Algorithm 1) around any first-order lec7rs optimizer.

    The wrapped optimizer takes the fast steps; every ``k`` of them (counted
    over steps that were not skipped by ``check_finite``), the slow weights
    move toward the params and the params restart from there::

        slow = slow + alpha * (p - slow)
        p = slow

    one pass over all params in Rust (SIMD, parallel, bit-identical for any
    thread count). The slow weights start as copies of the params at
    construction. The inner optimizer's state (momentum, moments) is kept
    as it is at a synchronisation (the paper's default; some
    implementations reset it). ``param_groups`` and ``state`` are the inner
    optimizer's; ``state_dict()`` nests the inner one under ``"inner"``
    beside the slow weights.
    """

    def __init__(self, optimizer: Optimizer, k: int = 5, alpha: float = 0.5):
        if not isinstance(optimizer, Optimizer) or optimizer._rule is None:
            raise TypeError(
                "optimizer: expected a first-order lec7rs optimizer (SGD, Adam, Lion, ...), "
                f"got {type(optimizer).__name__}"
            )
        attach_lock(self)
        self.k = _check_k(k)
        self.alpha = _check_alpha(alpha)
        self.optimizer = optimizer
        self._count = 0
        with optimizer._lock:
            self._slow = [p.copy() for p in optimizer._params]

    @property
    def param_groups(self) -> list[dict]:
        """The inner optimizer's param groups (set ``lr`` etc. there or here:
        they are the same dicts)."""
        return self.optimizer.param_groups

    @property
    def state(self) -> dict:
        """The inner optimizer's state (the slow weights are in
        ``state_dict()["lookahead"]``)."""
        return self.optimizer.state

    @property
    def last_step_skipped(self) -> bool:
        """Whether the last ``step`` was skipped by the inner optimizer's
        ``check_finite`` (then the slow weights did not move either)."""
        return self.optimizer.last_step_skipped

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Adds a group to the inner optimizer; its slow weights start as
        copies of its params."""
        with self._lock, self.optimizer._lock:
            n = len(self.optimizer._params)
            self.optimizer.add_param_group(param_group)
            self._slow.extend(p.copy() for p in self.optimizer._params[n:])

    def step(self, grads: GradsT, *, grad_scale: float | None = None) -> None:
        """One step of the inner optimizer, then, every ``k`` steps, the
        synchronisation of the slow weights."""
        with self._lock:
            inner = self.optimizer
            inner.step(grads, grad_scale=grad_scale)
            if inner.last_step_skipped:
                return
            self._count += 1
            if self._count % self.k == 0:
                with inner._lock:
                    _core.lookahead_sync(inner._params, self._slow, self.alpha, inner._labels)

    def state_dict(self) -> dict:
        """A snapshot (copies): the inner optimizer's state dict, the slow
        weights by flat param index, ``k``, ``alpha`` and the step count."""
        with self._lock:
            return {
                "optimizer": "Lookahead",
                "version": _STATE_DICT_VERSION,
                "k": self.k,
                "alpha": self.alpha,
                "step": self._count,
                "slow": {i: s.copy() for i, s in enumerate(self._slow)},
                "inner": self.optimizer.state_dict(),
            }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()``; everything is checked first (the inner
        optimizer's part included): a dict that does not fit raises and
        changes nothing."""
        with self._lock:
            self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        with self._lock:
            d = state_dict
            if not isinstance(d, Mapping):
                raise TypeError(f"state_dict must be a dict, got {type(d).__name__}")
            if d.get("optimizer") != "Lookahead":
                raise ValueError(
                    f"state_dict is for optimizer {_brief(d.get('optimizer'))}, not 'Lookahead'"
                )
            if d.get("version") != _STATE_DICT_VERSION:
                raise ValueError(
                    f"state_dict has unknown format version {_brief(d.get('version'))}"
                )
            for key in ("k", "alpha", "step", "slow", "inner"):
                if key not in d:
                    raise ValueError(f"state_dict has no {key!r} entry")
            try:
                k, alpha = _check_k(d["k"]), _check_alpha(d["alpha"])
            except TypeError as e:
                raise ValueError(f"state_dict {e}") from None
            count = d["step"]
            if not _is_int(count) or not 0 <= count <= 2**62:
                raise ValueError(
                    f"state_dict 'step': expected an int in [0, 2**62], got {_brief(count)}"
                )
            params = self.optimizer._params
            slow_in = d["slow"]
            if not isinstance(slow_in, Mapping) or set(slow_in) != set(range(len(params))):
                raise ValueError(
                    f"state_dict 'slow' must hold one array per param (indices 0 to "
                    f"{len(params) - 1})"
                )
            slow = []
            for i, p in enumerate(params):
                s = slow_in[i]
                if not isinstance(s, np.ndarray) or s.shape != p.shape or s.dtype != p.dtype:
                    raise ValueError(
                        f"state_dict 'slow'[{i}]: expected a {p.dtype} array of shape {p.shape}, "
                        f"got {_brief(s)}"
                    )
                slow.append(np.array(s, order="C", copy=True))
            inner_commit = self.optimizer._stage_load_state_dict(d["inner"])

            def commit() -> None:
                with self._lock:
                    inner_commit()
                    self.k, self.alpha, self._count = k, alpha, int(count)
                    self._slow = slow

            return commit

    def __repr__(self) -> str:
        return f"Lookahead(k={self.k}, alpha={self.alpha},\n{self.optimizer!r})"
