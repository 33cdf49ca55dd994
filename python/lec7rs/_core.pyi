"""Type stubs of the compiled extension ``lec7rs._core`` (private API: the
public names are re-exported by ``lec7rs`` and used by ``lec7rs.optim``)."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str

def simd_level() -> str: ...
def simd_levels() -> list[str]: ...
def set_simd_level(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def env_warnings() -> list[str]: ...

# A step call returns True (stepped), False (skipped: a grad was not finite)
# or the list of (tensor, slot) pairs whose state must be created first.
_Outcome = bool | list[tuple[int, int]]
_Arrays = list[np.ndarray | None]

def sgd_step(
    params: list[np.ndarray],
    grads: _Arrays,
    momentum_buffer: _Arrays,
    steps: npt.NDArray[np.int64],
    group_of: list[int],
    hypers: list[tuple[Any, ...]],
    fresh: Sequence[int],
    labels: list[str],
    check_finite: bool,
) -> _Outcome: ...
def sgd_check(hyper: tuple[Any, ...]) -> None: ...
def adagrad_step(
    params: list[np.ndarray],
    grads: _Arrays,
    sum: _Arrays,
    steps: npt.NDArray[np.int64],
    group_of: list[int],
    hypers: list[tuple[Any, ...]],
    fresh: Sequence[int],
    labels: list[str],
    check_finite: bool,
) -> _Outcome: ...
def adagrad_check(hyper: tuple[Any, ...]) -> None: ...
def rmsprop_step(
    params: list[np.ndarray],
    grads: _Arrays,
    square_avg: _Arrays,
    momentum_buffer: _Arrays,
    grad_avg: _Arrays,
    steps: npt.NDArray[np.int64],
    group_of: list[int],
    hypers: list[tuple[Any, ...]],
    fresh: Sequence[int],
    labels: list[str],
    check_finite: bool,
) -> _Outcome: ...
def rmsprop_check(hyper: tuple[Any, ...]) -> None: ...
def adam_step(
    params: list[np.ndarray],
    grads: _Arrays,
    exp_avg: _Arrays,
    exp_avg_sq: _Arrays,
    max_exp_avg_sq: _Arrays,
    steps: npt.NDArray[np.int64],
    group_of: list[int],
    hypers: list[tuple[Any, ...]],
    fresh: Sequence[int],
    labels: list[str],
    check_finite: bool,
) -> _Outcome: ...
def adam_check(hyper: tuple[Any, ...]) -> None: ...

# lec7rs.optimize: the minimize loop; returns (x, f, g, nit, nfev, status,
# message, hess) with hess None, ("lbfgs", s, y, order) or ("dense", h).
def minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    shape: Sequence[int],
    options: dict[str, Any],
    callback: Callable[[np.ndarray, float, np.ndarray, int, int], bool] | None = None,
    direction: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> tuple[Any, ...]: ...
def lbfgs_two_loop(
    s: list[np.ndarray],
    y: list[np.ndarray],
    v: np.ndarray,
    *,
    rho: Sequence[float] | None = None,
    gamma: float | None = None,
    negate: bool = False,
) -> np.ndarray: ...

# Polyak averaging (lec7rs.averaging): folds params into averages in place;
# count = updates so far (0 copies), decay None = running mean.
def average_update(
    averages: list[np.ndarray],
    params: list[np.ndarray],
    count: int,
    decay: float | None,
    labels: list[str],
) -> None: ...
def average_check(decay: float | None) -> None: ...
