"""Snapshot ensembles: copies of the params along one training run, whose
predictions are averaged at test time."""

from __future__ import annotations

import collections
import numbers
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from .._params import FlatParams
from ..optim._params import ParamsT, _is_int
from ._state import STATE_DICT_VERSION, check_arrays, check_header, check_names


class SnapshotEnsemble:
    r"""An ensemble of snapshots of one model, taken during one training run.

    "Instead of training independent models, we can also use multiple
    snapshots of a single model during training" (the lecture). Snapshot
    ensembles (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for
    free") take a snapshot at the end of each cycle of a cyclic learning-rate
    schedule with warm restarts, where the model sits in a local minimum, and
    average the predictions of the snapshots.

    ``add(params)`` stores copies of the params (a list of arrays, a dict
    ``name -> array`` or a list of group dicts, as the optimizers take them;
    every snapshot has the same names, shapes and dtypes). With
    ``max_snapshots`` only the latest ``max_snapshots`` are kept (first in,
    first out).

    ``predict(fn, *args)`` copies each snapshot in turn into the arrays given
    to the latest ``add()`` (or into ``params=``), calls ``fn(*args)``, and
    returns the mean of the results; the params are restored afterwards,
    also when ``fn`` raises. ``fn`` returns a NumPy array (the same shape
    each time) or a number. The mean is accumulated in float64 (complex128
    for complex results) in snapshot order and returned in the result's
    floating dtype (float64 for integer or bool results); numbers come back
    as a Python float.

    Example, with cosine annealing and warm restarts (SGDR) as in the paper::

        opt = SGD(params, lr=0.2, momentum=0.9)
        sched = CosineAnnealingWarmRestarts(opt, T_0=steps_per_cycle)
        ensemble = SnapshotEnsemble(max_snapshots=5)
        for step in range(cycles * steps_per_cycle):
            opt.step(grad(params, *next(batches)))
            sched.step()
            if (step + 1) % steps_per_cycle == 0:   # lr at its minimum: end of a cycle
                ensemble.add(params)
        probs = ensemble.predict(softmax_of_forward, params, X_test)
    """

    def __init__(self, max_snapshots: int | None = None):
        self.max_snapshots = _check_max(max_snapshots)
        self._snapshots: collections.deque[list[np.ndarray]] = collections.deque()
        # The names of the snapshots' arrays, fixed by the first add() or load.
        self._keys: list | None = None
        # The arrays of the latest add(): where predict() applies snapshots.
        self._params: FlatParams | None = None

    def __len__(self) -> int:
        return len(self._snapshots)

    @property
    def snapshots(self) -> list:
        """The stored snapshots, oldest first, each structured like the params
        of the latest ``add()`` (a flat list before any ``add()``). Live
        copies: don't write them."""
        if self._params is None:
            return [list(s) for s in self._snapshots]
        return [self._params.rebuild(s) for s in self._snapshots]

    def add(self, params: ParamsT) -> None:
        """Stores a copy of ``params`` (dropping the oldest snapshot when
        ``max_snapshots`` are stored)."""
        flat = FlatParams(params, one_dtype=False)
        if self._keys is not None:
            self._check_fits(flat, "params")
        self._snapshots.append([p.copy() for p in flat.arrays])
        if self.max_snapshots is not None and len(self._snapshots) > self.max_snapshots:
            self._snapshots.popleft()
        self._keys = flat.keys
        self._params = flat

    def predict(self, fn: Callable[..., Any], *args: Any, params: ParamsT | None = None) -> Any:
        """The mean of ``fn(*args)`` over the snapshots, each copied into the
        params in turn; the params are restored afterwards (also on error)."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        if not self._snapshots:
            raise ValueError("the ensemble has no snapshots: add() some first")
        target = self._params if params is None else FlatParams(params, one_dtype=False)
        if target is None:
            raise ValueError(
                "no params to apply the snapshots to: pass params= (the ensemble was "
                "loaded from a state dict and add() was not called since)"
            )
        if params is not None:
            self._check_fits(target, "params")
        saved = [p.copy() for p in target.arrays]
        mean = _Mean()
        try:
            for snapshot in self._snapshots:
                for p, s in zip(target.arrays, snapshot):
                    np.copyto(p, s)
                mean.add(fn(*args))
        finally:
            for p, s in zip(target.arrays, saved):
                np.copyto(p, s)
        return mean.result()

    def state_dict(self) -> dict:
        """A snapshot (copies): ``max_snapshots``, ``param_names`` and
        ``snapshots`` (oldest first, each a list aligned with the params)."""
        return {
            "averager": type(self).__name__,
            "version": STATE_DICT_VERSION,
            "max_snapshots": self.max_snapshots,
            "param_names": None if self._keys is None else list(self._keys),
            "snapshots": [[a.copy() for a in s] for s in self._snapshots],
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()``. The snapshots must fit those already
        added, if any. A dict that does not fit raises ``ValueError`` and
        changes nothing."""
        self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks everything, changes nothing, returns the commit (which cannot fail)."""
        d = check_header(state_dict, type(self).__name__, {"max_snapshots", "snapshots"})
        try:
            max_snapshots = _check_max(d["max_snapshots"])
        except TypeError as e:
            raise ValueError(f"state_dict['max_snapshots']: {e}") from None
        snapshots = d["snapshots"]
        if not isinstance(snapshots, (list, tuple)):
            raise ValueError("state_dict['snapshots']: expected a list")
        if max_snapshots is not None and len(snapshots) > max_snapshots:
            raise ValueError(
                f"state_dict holds {len(snapshots)} snapshots, more than max_snapshots="
                f"{max_snapshots}"
            )
        names = d["param_names"]
        keys = self._keys
        like = self._snapshots[0] if self._snapshots else None
        if like is None and self._params is not None:
            like = self._params.arrays
        if snapshots and like is None:
            # The first stored snapshot sets the structure (with the names
            # of the snapshots added before, if any).
            like = snapshots[0]
            if not isinstance(like, (list, tuple)) or not all(
                isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64) for a in like
            ):
                raise ValueError("state_dict['snapshots'][0]: expected a list of float arrays")
            if keys is None:
                if not isinstance(names, (list, tuple)) or len(names) != len(like):
                    raise ValueError(
                        f"state_dict param names {names!r}: expected a list of {len(like)} names"
                    )
                keys = list(names)
        if keys is not None and (snapshots or names is not None):
            check_names(names, keys)
        copies = []
        for i, s in enumerate(snapshots):
            arrays = check_arrays(s, f"state_dict['snapshots'][{i}]", keys, like)
            copies.append([np.array(a, order="C", copy=True) for a in arrays])

        def commit() -> None:
            self.max_snapshots = max_snapshots
            self._snapshots = collections.deque(copies)
            if self._keys is None and copies:
                self._keys = keys

        return commit

    def _check_fits(self, flat: FlatParams, what: str) -> None:
        like = self._snapshots[0] if self._snapshots else None
        if flat.keys != self._keys:
            raise ValueError(
                f"{what}: names {flat.keys!r} differ from the snapshots' {self._keys!r}"
            )
        if like is not None:
            check_arrays(flat.arrays, what, flat.keys, like)

    def __repr__(self) -> str:
        return f"SnapshotEnsemble({len(self)} snapshots, max_snapshots={self.max_snapshots})"


def _check_max(max_snapshots: Any) -> int | None:
    if max_snapshots is None:
        return None
    if not _is_int(max_snapshots):
        raise TypeError(
            f"max_snapshots must be None or an int >= 1, got {type(max_snapshots).__name__}"
        )
    if max_snapshots < 1:
        raise ValueError(f"max_snapshots must be None or an int >= 1, got {max_snapshots}")
    return int(max_snapshots)


class _Mean:
    """The running mean of ``fn``'s results, accumulated in float64."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, out: Any) -> None:
        if isinstance(out, np.ndarray):
            arr = out
        elif isinstance(out, numbers.Number) and not isinstance(out, bool):
            arr = np.asarray(out)
        else:
            raise TypeError(f"fn must return a NumPy array or a number, got {type(out).__name__}")
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"fn must return a numeric array, got dtype {arr.dtype}")
        if self.total is None:
            self.scalar = not isinstance(out, np.ndarray)
            self.dtype = arr.dtype if arr.dtype.kind in "fc" else np.dtype(np.float64)
            acc = np.complex128 if arr.dtype.kind == "c" else np.float64
            self.total = np.array(arr, dtype=acc)
        else:
            if arr.shape != self.total.shape:
                raise ValueError(
                    f"fn returned shape {arr.shape} for snapshot {self.count}, "
                    f"{self.total.shape} before"
                )
            if arr.dtype.kind == "c" and self.total.dtype.kind != "c":
                raise TypeError("fn returned a complex result after real ones")
            np.add(self.total, arr, out=self.total)
        self.count += 1

    def result(self) -> Any:
        mean = (self.total / self.count).astype(self.dtype)
        return mean.item() if self.scalar else mean
