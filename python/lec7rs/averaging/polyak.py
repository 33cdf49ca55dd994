"""Polyak averaging: a running mean or exponential moving average of the params."""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np

from .. import _core
from .._params import FlatParams
from .._serial import attach_lock
from ..optim._params import ParamsT, _is_int
from ._state import STATE_DICT_VERSION, check_arrays, check_header, check_names

# The most updates counted: PyTorch's int64 ``n_averaged``. Far beyond any
# run, and the bound that keeps the count a 64-bit integer in Rust.
MAX_UPDATES = (1 << 63) - 1


class PolyakAverage:
    r"""Keeps an average of the params over training, for use at test time.

    "Polyak averaging: keep a moving average of the parameter vector and use
    that at test time" (the lecture). Each ``update()`` folds the current
    params into their averages, per element, in place::

        avg = p                                  first update (both modes)
        avg = avg + (p - avg) / (n + 1)          decay=None: running mean
        avg = lerp(avg, p, 1 - decay)            decay in [0, 1]: EMA
            = decay * avg + (1 - decay) * p

    ``n`` is ``n_averaged``, the number of updates so far. These are the rules
    of ``torch.optim.swa_utils.AveragedModel``: the running mean is its
    default (stochastic weight averaging, Izmailov et al. 2018), with ``n + 1``
    rounded to the params' dtype (exact up to 2**24 updates in float32);
    the EMA is ``get_ema_multi_avg_fn(decay)``, ATen's two-sided ``lerp``
    with ``1 - decay`` rounded to the params' dtype. As in PyTorch the EMA
    starts from the first update's params (no zero-initialized bias to
    correct), and arithmetic runs in the params' dtype.

    ``params``: as the optimizers take them (a list of arrays, a dict
    ``name -> array`` or a list of group dicts; C-contiguous, writeable,
    float32 or float64, one dtype). The arrays are held, not copied: pass the
    same arrays the optimizer updates. An update is one call into Rust over
    all params (SIMD, parallel over fixed chunks, the GIL released),
    bit-identical for any thread count and SIMD level.

    ``averages`` has the structure of ``params`` and holds the live average
    arrays (read them, don't write them); before the first update they equal
    the params at construction. ``with avg.applied(): ...`` puts the averages
    into the params for the block and restores the params after it.

    Example::

        opt = SGD(params, lr=0.1, momentum=0.9)
        ema = PolyakAverage(params, decay=0.999)
        for x, y in batches:
            opt.step(grad(params, x, y))
            ema.update()
        with ema.applied():
            print(accuracy(params, X_val, y_val))   # with the averaged weights

    The running mean (``decay=None``) of three iterates, applied and restored:

    >>> import numpy as np
    >>> from lec7rs.averaging import PolyakAverage
    >>> p = np.zeros(3, np.float32)
    >>> avg = PolyakAverage([p])
    >>> for value in (1.0, 2.0, 3.0):
    ...     p[:] = value  # a training step
    ...     avg.update()
    >>> with avg.applied():
    ...     print(p)
    [2. 2. 2.]
    >>> p
    array([3., 3., 3.], dtype=float32)
    """

    def __init__(self, params: ParamsT, decay: float | None = None):
        self.decay = _check_decay(decay)
        self._params = FlatParams(params, one_dtype=True)
        self._averages = [p.copy() for p in self._params.arrays]
        self.n_averaged = 0
        self._applied = False
        # update / state_dict / load_state_dict / applied are serialised:
        # a snapshot taken during another thread's update is never torn.
        attach_lock(self)

    @property
    def averages(self) -> Any:
        """The average arrays (live, not copies), structured like the params."""
        return self._params.rebuild(self._averages)

    def update(self) -> None:
        """Folds the current params into the averages (one call into Rust)."""
        with self._lock:
            self._update()

    def _update(self) -> None:
        if self._applied:
            raise RuntimeError("update() inside applied(): the params hold the averages there")
        n = self.n_averaged
        if not _is_int(n) or not 0 <= n < MAX_UPDATES:
            raise ValueError(f"n_averaged must be an int in [0, 2**63 - 1) to update, got {n!r}")
        _core.average_update(
            self._averages, self._params.arrays, int(n), self.decay, self._params.labels
        )
        self.n_averaged = int(n) + 1

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Copies the averages into the params for the ``with`` block, then
        restores the params exactly, also when the block raises. What the
        block writes into the params is discarded; the averages are not
        touched. Needs one temporary copy of the params."""
        with self._lock:
            if self._applied:
                raise RuntimeError("applied() is already active for this average")
            params = self._params.arrays
            saved = [p.copy() for p in params]
            self._applied = True
            for p, a in zip(params, self._averages):
                np.copyto(p, a)
        try:
            yield
        finally:
            with self._lock:
                for p, s in zip(params, saved):
                    np.copyto(p, s)
                self._applied = False

    def state_dict(self) -> dict:
        """A snapshot (copies): ``decay``, ``n_averaged``, ``param_names``
        and ``averages`` (a list aligned with the params)."""
        with self._lock:
            return self._state_dict()

    def _state_dict(self) -> dict:
        return {
            "averager": type(self).__name__,
            "version": STATE_DICT_VERSION,
            "decay": self.decay,
            "n_averaged": self.n_averaged,
            "param_names": list(self._params.keys),
            "averages": [a.copy() for a in self._averages],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()`` (the averages are copied into the live
        arrays); later updates continue bit-identically. A dict that does not
        fit raises ``ValueError`` and changes nothing."""
        with self._lock:
            self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks everything, changes nothing, returns the commit (which cannot fail)."""
        d = check_header(state_dict, type(self).__name__, {"decay", "n_averaged", "averages"})
        try:
            decay = _check_decay(d["decay"])
        except TypeError as e:
            raise ValueError(f"state_dict['decay']: {e}") from None
        n = d["n_averaged"]
        if not _is_int(n) or not 0 <= n <= MAX_UPDATES:
            raise ValueError(
                f"state_dict['n_averaged']: expected an int in [0, 2**63 - 1], got {n!r}"
            )
        check_names(d["param_names"], self._params.keys)
        averages = check_arrays(
            d["averages"], "state_dict['averages']", self._params.keys, self._params.arrays
        )

        def commit() -> None:
            with self._lock:
                for mine, saved in zip(self._averages, averages):
                    np.copyto(mine, saved)
                self.decay = decay
                self.n_averaged = int(n)

        return commit

    def __repr__(self) -> str:
        mode = "running mean" if self.decay is None else f"EMA decay={self.decay}"
        return f"PolyakAverage({mode}, {len(self._averages)} params, n_averaged={self.n_averaged})"


def _check_decay(decay: Any) -> float | None:
    if decay is None:
        return None
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real):
        raise TypeError(f"decay must be None or a float in [0, 1], got {type(decay).__name__}")
    decay = float(decay)
    _core.average_check(decay)
    return decay
