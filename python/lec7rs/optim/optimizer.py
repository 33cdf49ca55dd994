"""The base class of the lec7rs optimizers (torch.optim semantics on NumPy arrays)."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Callable, ClassVar, Optional, Union

import numpy as np

ParamsT = Union[
    Iterable[np.ndarray],
    Mapping[Any, np.ndarray],
    Iterable[Mapping[str, Any]],
]
GradsT = Union[list, tuple, Mapping[Any, Optional[np.ndarray]]]

_STATE_DICT_VERSION = 1


class Optimizer:
    """Updates NumPy arrays in place with one call into Rust per step.

    ``params`` is a list of arrays, a dict ``name -> array``, or a list of
    group dicts ``{"params": [...] or {...}, "lr": ..., "frozen": bool, ...}``
    whose keys override the defaults for that group. Every param must be a
    C-contiguous, writeable float32 or float64 array, all of one dtype.

    ``step(grads)`` takes the gradients as a list aligned with the params in
    the order given (groups flattened in order) or as a dict with the same
    keys as the params. A ``None`` grad skips its param; a group with
    ``frozen=True`` is skipped whole (transfer learning: freeze the backbone,
    train the head). Grads may have any strides; they are read, never written.

    ``param_groups`` is a list of dicts whose hyperparameters may be changed
    between steps (learning-rate schedules write ``group["lr"]``). The arrays
    of a group are fixed at construction; add more with ``add_param_group``.

    With ``check_finite=True`` a step whose grads hold NaN or inf changes
    nothing (params and state), sets ``last_step_skipped`` and counts the
    skip in the state dict; the next finite step proceeds as if the bad one
    never came. Without it, NaN and inf propagate as in PyTorch.

    Every argument is checked before anything is written: a call that raises
    has changed no array and no state.
    """

    #: The state arrays of each param, in the order of the kernel's lists.
    _slots: ClassVar[tuple[str, ...]] = ()
    #: The group keys that are hyperparameters (besides ``frozen``).
    _hyper_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: ParamsT, defaults: dict, *, check_finite: bool = False):
        self.defaults = dict(defaults)
        self._validate(self.defaults, "")
        self.check_finite = bool(check_finite)
        self.last_step_skipped = False
        self._skipped_steps = 0
        self.param_groups: list[dict] = []
        self._params: list[np.ndarray] = []
        self._keys: list[Any] = []
        self._labels: list[str] = []
        self._group_of: list[int] = []
        self._state: list[list[np.ndarray | None]] = [[] for _ in self._slots]
        self._steps = np.zeros(0, dtype=np.int64)
        groups = _as_groups(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for group in groups:
            self.add_param_group(group)
        if not self._params:
            raise ValueError("optimizer got an empty parameter list")

    # -- hooks of the concrete optimizers ---------------------------------------

    _kernel: ClassVar[Callable[..., Any]]
    _checker: ClassVar[Callable[[tuple], None]]

    def _hyper(self, group: Mapping[str, Any]) -> tuple:
        """The group's hyperparameters as the kernel's tuple (frozen last)."""
        raise NotImplementedError

    def _new_state(self, slot: str, param: np.ndarray, group: Mapping[str, Any]) -> np.ndarray:
        """A fresh state array for ``param`` (zeros unless overridden)."""
        return np.zeros(param.shape, dtype=param.dtype)

    # -- groups -------------------------------------------------------------------

    def _validate(self, group: Mapping[str, Any], where: str) -> None:
        try:
            self._checker(self._hyper({**self.defaults, "frozen": False, **group}))
        except KeyError as e:
            raise ValueError(f"{where}missing hyperparameter {e.args[0]!r}") from None
        except (ValueError, TypeError) as e:
            raise type(e)(f"{where}{e}") from None

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Adds a group (a dict with ``"params"`` and optional overrides)."""
        if not isinstance(param_group, Mapping) or "params" not in param_group:
            raise TypeError("a param group must be a dict with a 'params' entry")
        where = f"param_groups[{len(self.param_groups)}]: "
        raw = param_group["params"]
        if isinstance(raw, np.ndarray):
            raise TypeError(f"{where}'params' must be a list or dict of arrays, not an array")
        if isinstance(raw, Mapping):
            keys, arrays = list(raw.keys()), list(raw.values())
        else:
            arrays = list(raw)
            start = len(self._params)
            keys = list(range(start, start + len(arrays)))
        group = {**self.defaults, "frozen": False}
        group.update((k, v) for k, v in param_group.items() if k != "params")
        group["frozen"] = bool(group["frozen"])
        self._validate(group, where)

        dtype = self._params[0].dtype if self._params else None
        seen = set(self._keys)
        for key, array in zip(keys, arrays):
            label = f"params[{key!r}]"
            _check_param(array, label)
            if dtype is None:
                dtype = array.dtype
            elif array.dtype != dtype:
                raise TypeError(
                    f"{label}: dtype {array.dtype} differs from {dtype}, the dtype of the "
                    "other params (one optimizer updates one dtype)"
                )
            if key in seen:
                raise ValueError(f"{label}: the name appears more than once")
            seen.add(key)
        clash = _first_overlap([*self._params, *arrays])
        if clash is not None:
            key = keys[clash - len(self._params)]
            raise ValueError(
                f"params[{key!r}] shares memory with another param (each array may be given once)"
            )

        group["params"] = arrays
        group["param_names"] = keys
        g = len(self.param_groups)
        self.param_groups.append(group)
        self._params.extend(arrays)
        self._keys.extend(keys)
        self._labels.extend(f"[{k!r}]" for k in keys)
        self._group_of.extend([g] * len(arrays))
        for slot in self._state:
            slot.extend([None] * len(arrays))
        self._steps = np.concatenate([self._steps, np.zeros(len(arrays), dtype=np.int64)])

    # -- stepping -----------------------------------------------------------------

    def _align(self, grads: GradsT) -> list:
        n = len(self._params)
        if type(grads) is list and len(grads) == n:
            return grads
        if isinstance(grads, Mapping):
            missing = [k for k in self._keys if k not in grads]
            if missing:
                raise ValueError(f"grads: missing key {missing[0]!r}")
            if len(grads) != n:
                extra = next(k for k in grads if k not in set(self._keys))
                raise ValueError(f"grads: unexpected key {extra!r} (no param has that name)")
            return [grads[k] for k in self._keys]
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(
                "grads must be a list aligned with the params or a dict keyed like them, "
                f"got {type(grads).__name__}"
            )
        if len(grads) != n:
            raise ValueError(f"grads: expected {n} entries (one per param), got {len(grads)}")
        return list(grads)

    def step(self, grads: GradsT) -> None:
        """Updates every param that has a grad, in place, in one call into Rust."""
        grads = self._align(grads)
        hypers = [self._hyper(g) for g in self.param_groups]
        run = self._kernel
        out = run(
            self._params,
            grads,
            *self._state,
            self._steps,
            self._group_of,
            hypers,
            (),
            self._labels,
            self.check_finite,
        )
        if out.__class__ is list:
            # First step of some params: create their state, commit it only
            # if the step goes through.
            state = [list(s) for s in self._state]
            for i, s in out:
                group = self.param_groups[self._group_of[i]]
                state[s][i] = self._new_state(self._slots[s], self._params[i], group)
            fresh = sorted({i for i, _ in out})
            out = run(
                self._params,
                grads,
                *state,
                self._steps,
                self._group_of,
                hypers,
                fresh,
                self._labels,
                self.check_finite,
            )
            if out is True:
                self._state = state
        self.last_step_skipped = out is False
        if out is False:
            self._skipped_steps += 1

    # -- state --------------------------------------------------------------------

    @property
    def state(self) -> dict:
        """``key -> {"step": int, slot: array}`` for every param with state.

        The arrays are the live state (not copies); use ``state_dict()`` for
        a snapshot.
        """
        out = {}
        for i, key in enumerate(self._keys):
            entry = {
                s: self._state[k][i]
                for k, s in enumerate(self._slots)
                if self._state[k][i] is not None
            }
            if entry or self._steps[i]:
                out[key] = {"step": int(self._steps[i]), **entry}
        return out

    def state_dict(self) -> dict:
        """A snapshot (copies) of the hyperparameters and state, PyTorch-style:
        ``state`` is keyed by the flat param index, each group lists its
        indices under ``params`` and its names under ``param_names``."""
        state = {}
        for i in range(len(self._params)):
            entry = {
                s: self._state[k][i].copy()
                for k, s in enumerate(self._slots)
                if self._state[k][i] is not None
            }
            if entry or self._steps[i]:
                state[i] = {"step": int(self._steps[i]), **entry}
        groups = []
        for g, group in enumerate(self.param_groups):
            saved = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            saved["params"] = [i for i, gi in enumerate(self._group_of) if gi == g]
            saved["param_names"] = list(group["param_names"])
            groups.append(saved)
        return {
            "optimizer": type(self).__name__,
            "version": _STATE_DICT_VERSION,
            "state": state,
            "param_groups": groups,
            "skipped_steps": self._skipped_steps,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()``; the optimizer then continues
        bit-identically. Everything is checked first: a dict that does not fit
        (other optimizer, group count, shapes, dtypes) raises ``ValueError``
        and changes nothing."""
        self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks ``state_dict`` and builds the new state without changing the
        optimizer; returns the commit, which cannot fail. ``lec7rs.checkpoint``
        checks every part of a checkpoint this way before committing any."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        d = state_dict
        name = type(self).__name__
        if d.get("optimizer") != name:
            raise ValueError(f"state_dict is for optimizer {d.get('optimizer')!r}, not {name!r}")
        if d.get("version") != _STATE_DICT_VERSION:
            raise ValueError(f"state_dict has unknown format version {d.get('version')!r}")
        saved_groups = d.get("param_groups")
        if not isinstance(saved_groups, list) or len(saved_groups) != len(self.param_groups):
            count = len(saved_groups) if isinstance(saved_groups, list) else "no"
            raise ValueError(
                f"state_dict has {count} param groups, this optimizer has {len(self.param_groups)}"
            )
        new_groups = []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"state_dict param_groups[{g}]: "
            if not isinstance(saved, Mapping):
                raise ValueError(f"{where}expected a dict")
            ours = [i for i, gi in enumerate(self._group_of) if gi == g]
            if list(saved.get("params", ())) != ours:
                raise ValueError(
                    f"{where}lists params {saved.get('params')!r}, this group has {ours}"
                )
            names = saved.get("param_names", group["param_names"])
            if list(names) != list(group["param_names"]):
                raise ValueError(
                    f"{where}param names {names!r} differ from {group['param_names']!r}"
                )
            restored = dict(group)
            for key in (*self._hyper_keys, "frozen"):
                if key not in saved:
                    raise ValueError(f"{where}missing hyperparameter {key!r}")
                restored[key] = saved[key]
            restored["frozen"] = bool(restored["frozen"])
            self._validate(restored, where)
            for key, value in saved.items():
                if key not in ("params", "param_names"):
                    restored[key] = value
            new_groups.append(restored)

        saved_state = d.get("state", {})
        if not isinstance(saved_state, Mapping):
            raise ValueError("state_dict 'state' must be a dict")
        state = [[None] * len(self._params) for _ in self._slots]
        steps = np.zeros(len(self._params), dtype=np.int64)
        for i, entry in saved_state.items():
            if not _is_int(i) or not 0 <= i < len(self._params):
                raise ValueError(f"state_dict state has an entry for unknown param index {i!r}")
            where = f"state_dict state[{i}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected a dict")
            unknown = set(entry) - {"step", *self._slots}
            if unknown:
                raise ValueError(f"{where}: unknown state {sorted(map(str, unknown))}")
            step = entry.get("step", 0)
            if not _is_int(step) or step < 0:
                raise ValueError(f"{where}['step']: expected an int >= 0, got {step!r}")
            steps[i] = step
            param = self._params[i]
            for k, slot in enumerate(self._slots):
                if slot not in entry or entry[slot] is None:
                    continue
                array = entry[slot]
                if not isinstance(array, np.ndarray):
                    raise ValueError(f"{where}[{slot!r}]: expected an array")
                if array.shape != param.shape or array.dtype != param.dtype:
                    raise ValueError(
                        f"{where}[{slot!r}]: {array.dtype} array of shape {array.shape} does not "
                        f"fit param {self._labels[i]} ({param.dtype}, shape {param.shape})"
                    )
                state[k][i] = np.array(array, dtype=param.dtype, order="C", copy=True)
        skipped = d.get("skipped_steps", 0)
        if not _is_int(skipped) or skipped < 0:
            raise ValueError(f"state_dict 'skipped_steps': expected an int >= 0, got {skipped!r}")

        def commit() -> None:
            for group, restored in zip(self.param_groups, new_groups):
                group.clear()
                group.update(restored)
            self._state = state
            self._steps = steps
            self._skipped_steps = int(skipped)

        return commit

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            for key in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _check_param(array: Any, label: str) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{label}: expected a NumPy array, got {type(array).__name__}")
    if array.dtype not in (np.float32, np.float64) or not array.dtype.isnative:
        raise TypeError(f"{label}: expected a float32 or float64 array, got dtype {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{label} must be C-contiguous to be updated in place")
    if not array.flags.writeable:
        raise ValueError(f"{label} is read-only")


def _first_overlap(arrays: list) -> int | None:
    """Index of an array whose memory overlaps an earlier one, or None.

    Params are C-contiguous, so each covers one byte range: sorting the
    ranges finds any overlap in O(n log n).
    """
    spans = []
    for i, a in enumerate(arrays):
        if a.nbytes:
            start = a.__array_interface__["data"][0]
            spans.append((start, start + a.nbytes, i))
    spans.sort()
    reach, owner = -1, -1
    for start, end, i in spans:
        if start < reach:
            return max(i, owner)
        if end > reach:
            reach, owner = end, i
    return None


def _as_groups(params: Any) -> list:
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of arrays, a dict name -> array or a list of group dicts, "
            "not a single array (wrap it in a list)"
        )
    if isinstance(params, Mapping):
        return [{"params": params}]
    if isinstance(params, (str, bytes)) or not isinstance(params, Iterable):
        raise TypeError(
            "params must be a list of arrays, a dict name -> array or a list of group dicts, "
            f"got {type(params).__name__}"
        )
    items = list(params)
    if all(isinstance(x, Mapping) for x in items):
        return items
    if any(isinstance(x, Mapping) for x in items):
        raise TypeError("params mixes group dicts with arrays: use group dicts for all of them")
    return [{"params": items}]
