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

MAX_SPAWN: int

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

# minimize's L-BFGS direction -H g (compact representation) after offering
# the pairs to a history of m (pairs with s'y <= 0 are dropped).
def lbfgs_direction(
    s: list[np.ndarray], y: list[np.ndarray], g: np.ndarray, *, m: int
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

# Random streams and regularization (lec7rs.Generator, lec7rs.regularization).

class PhiloxStream:
    def __init__(self, key0: int, key1: int, counter: int, spawned: int) -> None: ...
    def state(self) -> tuple[int, int, int, int]: ...
    def spawn_keys(self, n: int) -> list[tuple[int, int]]: ...
    def words(self, n: int) -> npt.NDArray[np.uint32]: ...
    def random(self, shape: list[int], double: bool) -> np.ndarray: ...

def philox_algorithm() -> str: ...
def philox_block(counter: Sequence[int], key: Sequence[int]) -> list[int]: ...
def dropout(
    x: np.ndarray,
    p: float,
    stream: PhiloxStream,
    training: bool,
    inverted: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]: ...
def dropout_backward(
    dout: np.ndarray, mask: np.ndarray, p: float, inverted: bool
) -> np.ndarray: ...
def stochastic_depth(
    x: np.ndarray, p: float, stream: PhiloxStream, row: bool, training: bool
) -> tuple[np.ndarray, np.ndarray | None]: ...
def fractional_max_pool2d(
    x: np.ndarray,
    out_h: int,
    out_w: int,
    kernel_h: int,
    kernel_w: int,
    stream: PhiloxStream,
    pseudo_random: bool,
    overlapping: bool,
) -> tuple[np.ndarray, npt.NDArray[np.int64]]: ...
def fractional_max_pool2d_backward(
    dout: np.ndarray, argmax: npt.NDArray[np.int64], input_shape: list[int]
) -> np.ndarray: ...

# Test hook: a panic in a pool thread (raises pyo3's PanicException).
def _panic_in_pool() -> None: ...

# The cache of freed output buffers (LEC7RS_BUFFER_CACHE_MB): buffers and
# bytes cached now, and the cap in bytes; and a call that frees them all.
def _buffer_cache() -> tuple[int, int, int]: ...
def _clear_buffer_cache() -> None: ...

# Data augmentation (lec7rs.augment).

def augment_flip(
    images: np.ndarray,
    stream: PhiloxStream,
    p: float,
    vertical: bool,
    nchw: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[bool]]: ...
def augment_crop(
    images: np.ndarray,
    stream: PhiloxStream,
    out_h: int,
    out_w: int,
    pad: Sequence[int],
    pad_mode: str,
    fill: float,
    nchw: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[int, int]]]: ...
def augment_resized_crop(
    images: np.ndarray,
    stream: PhiloxStream,
    out_h: int,
    out_w: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    antialias: bool,
    nchw: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]: ...
def augment_color_jitter(
    images: np.ndarray,
    stream: PhiloxStream,
    brightness: tuple[float, float],
    contrast: tuple[float, float],
    saturation: tuple[float, float],
    hue: tuple[float, float],
    nchw: bool,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[list[int]], list[list[float]]]: ...

# Newton's step from a Cholesky factor: solves L L^T x = b (float64).
def cholesky_solve(l: np.ndarray, b: np.ndarray) -> np.ndarray: ...
