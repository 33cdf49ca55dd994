"""Type stubs of the compiled extension ``lec7rs._core`` (private API: the
public names are re-exported by ``lec7rs`` and used by ``lec7rs.optim``)."""

from collections.abc import Callable, Sequence
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_SPAWN",
    "Lock",
    "PhiloxStream",
    "StepCache",
    "__version__",
    "_buffer_cache",
    "_clear_buffer_cache",
    "_panic_in_pool",
    "augment_color_jitter",
    "augment_crop",
    "augment_flip",
    "augment_resized_crop",
    "average_check",
    "average_update",
    "cholesky_solve",
    "dropout",
    "dropout_backward",
    "env_warnings",
    "fractional_max_pool2d",
    "fractional_max_pool2d_backward",
    "get_num_threads",
    "grad_norm",
    "grads_clamp",
    "grads_scale",
    "lbfgs_direction",
    "lbfgs_two_loop",
    "lookahead_sync",
    "minimize",
    "minimize_many",
    "minimize_trust",
    "optimizer_check",
    "optimizer_rule",
    "optimizer_step",
    "philox_algorithm",
    "philox_block",
    "set_num_threads",
    "set_simd_level",
    "simd_level",
    "simd_levels",
    "slot_shape",
    "stochastic_depth",
]

__version__: str

def simd_level() -> str: ...
def simd_levels() -> list[str]: ...
def set_simd_level(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

MAX_SPAWN: int

def env_warnings() -> list[str]: ...

# lec7rs.optim: the generic step of every first-order rule (see
# rust/python/src/step.rs). `state` has one entry per slot of the rule: a
# list of arrays (None: not created yet) or a float64 array of per-tensor
# numbers (NaN: not created yet). Returns False when the step was skipped.
def optimizer_step(
    rule: str,
    params: list[np.ndarray],
    grads: list[np.ndarray | None],
    state: list[Any],
    steps: npt.NDArray[np.int64],
    groups: list[dict[str, Any]],
    group_of: list[int],
    labels: list[str],
    check_finite: bool,
    grad_scale: float | None = None,
    low: tuple[str, str, list[Any] | None, list[list[Any]], tuple[int, int] | None] | None = None,
    cache: StepCache | None = None,
) -> int: ...

# What an optimizer's last small step checked (rust/python/src/plan.rs).
@final
class StepCache:
    def __new__(cls) -> StepCache: ...
    @property
    def planned(self) -> bool: ...
    def clear(self) -> None: ...
    def step(
        self,
        grads: Any,
        groups: Any,
        lock: Lock,
        check_finite: bool,
        grad_scale: float | None,
    ) -> bool | None: ...

# The re-entrant lock of a stateful object (threading.RLock's methods).
@final
class Lock:
    def __new__(cls) -> Lock: ...
    def acquire(self, blocking: bool = True, timeout: float = -1.0) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *_args: object) -> None: ...
    def locked(self) -> bool: ...
    def _is_owned(self) -> bool: ...

def optimizer_check(rule: str, group: dict[str, Any]) -> None: ...
def optimizer_rule(rule: str) -> tuple[list[str], list[tuple[str, str, str]], bool]: ...
def slot_shape(kind: str, shape: Sequence[int]) -> list[int] | None: ...

# lec7rs.optim's gradient utilities (torch.nn.utils semantics).
def grad_norm(grads: list[np.ndarray], norm_type: float, labels: list[str]) -> float: ...
def grads_scale(grads: list[np.ndarray], c: float, labels: list[str]) -> None: ...
def grads_clamp(grads: list[np.ndarray], v: float, labels: list[str]) -> None: ...
def lookahead_sync(
    fast: list[np.ndarray], slow: list[np.ndarray], alpha: float, labels: list[str]
) -> None: ...

# lec7rs.optimize: the minimize loop; returns (x, f, g, nit, nfev, status,
# message, hess) with hess None, ("lbfgs", s, y, order) or ("dense", h).
def minimize(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    shape: Sequence[int],
    options: dict[str, Any],
    callback: Callable[[np.ndarray, float, np.ndarray, int, int], bool] | None = None,
    direction: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Any, ...]: ...

# lec7rs.optimize.minimize_many: k L-BFGS runs, the rows of a (k, n) x0;
# fun(X, active) -> (f, G) for the rows still running; returns (x, f, nit,
# nfev, status, message), one entry per row.
def minimize_many(
    fun: Callable[[np.ndarray, npt.NDArray[np.int64]], tuple[Any, np.ndarray]],
    x0: np.ndarray,
    options: dict[str, Any],
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[
    np.ndarray,
    npt.NDArray[np.float64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    list[str],
]: ...
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

# lec7rs.optimize trust-ncg: the loop with hessp(x, p) -> H p; returns
# (x, f, g, nit, nfev, nhev, status, message).
def minimize_trust(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    hessp: Callable[[np.ndarray, np.ndarray], np.ndarray],
    x0: np.ndarray,
    shape: Sequence[int],
    options: dict[str, Any],
    callback: Callable[[np.ndarray, float, np.ndarray, int, int], bool] | None = None,
) -> tuple[Any, ...]: ...

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

@final
class PhiloxStream:
    def __new__(cls, key0: int, key1: int, counter: int, spawned: int) -> PhiloxStream: ...
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
