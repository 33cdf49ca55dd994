"""The base class of the lec7rs optimizers (torch.optim semantics on NumPy arrays)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any, Callable, ClassVar, Optional, Union

import numpy as np

from .. import _core
from .._serial import attach_lock
from .._text import brief
from ..random import Generator
from ._params import HALF_DTYPES, ParamsT, Spans, _as_groups, _check_param, _is_int

__all__ = ["GradsT", "Optimizer", "ParamsT"]

GradsT = Union[list, tuple, Mapping[Any, Optional[np.ndarray]]]

_STATE_DICT_VERSION = 1
# Values quoted in messages, cut to about this many characters.
_brief = partial(brief, limit=80)
_step = _core.optimizer_step
# Step counts stay below this (int64; the step that would pass it raises).
_MAX_STEP = 2**62
# The state dtypes (None: float32 for 16-bit params, the param's otherwise).
_STATE_DTYPES = (None, "float32", "bfloat16", "int8")
# 8-bit state: elements per absmax, and the smallest param that gets it.
_BLOCK = 2048
_MIN_INT8 = 4096
_PRECISION_KEYS = ("master_weights", "state_dtype", "stochastic_rounding", "rng")


def _bfloat16() -> Any:
    """ml_dtypes' bfloat16, imported only when bfloat16 arrays appear."""
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes is in the test extra
        raise TypeError(
            "bfloat16 state needs the ml_dtypes package (pip install ml_dtypes)"
        ) from None
    return ml_dtypes.bfloat16


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

    ``step(grads, grad_scale=c)`` reads every grad as ``grad * c`` (``c``
    rounded to the grads' dtype, one multiply in that dtype, as NumPy's
    ``g * c``) without writing the grads: clipping by a global norm, loss
    scaling and averaging fold into the step.

    Every argument is checked before anything is written: a call that raises
    has changed no array and no state. The first step is one call into Rust
    like every other: the state is created after every check has passed.
    ``step``, ``state_dict``, ``load_state_dict`` and ``add_param_group``
    of one optimizer are serialised (a lock): called from several threads,
    each sees the others whole, never torn.

    Low precision: params may be float16 or ``ml_dtypes.bfloat16`` (grads
    of the param's dtype or float32); the math is the rule's float32 step,
    rounded to nearest even into the param (as ``astype``).
    ``master_weights=True`` keeps a float32 copy of each 16-bit param in the
    state (``"master"``), steps it and writes its rounded value into the
    param. ``state_dtype`` stores the moments (the slots a rule marks as
    such; others stay float32) as ``"float32"``, ``"bfloat16"`` or
    ``"int8"`` (block-wise 8-bit, Dettmers et al. 2022: blocks of 2048
    elements with a float32 absmax each, ``"<slot>_absmax"`` in the state;
    params under 4096 elements keep float32 moments); the update uses this
    step's float32 moments before they are rounded for storage.
    ``stochastic_rounding=True, rng=Generator(...)`` rounds into 16-bit
    params stochastically, each draw keyed by (the rng's key, the param's
    step, the param's index, the element's index), so results do not depend
    on the thread count; the rng's own stream is not advanced.

    The kernels run with the GIL released, except a step of at most 32768
    elements in all, which runs inline on the calling thread in a few
    microseconds and keeps the GIL (as NumPy does for small arrays:
    releasing it would cost more than the step).

    A subclass names its update rule (``_rule``, a row of the binding's
    table): the hyperparameter names and the state slots come from the
    rule's one description in the Rust core.
    """

    #: The name of the update rule in the core's table (None: not a
    #: first-order rule, e.g. LBFGS).
    _rule: ClassVar[str | None] = None
    #: The state slots of each param and their kinds ("param", "rows",
    #: "cols", "scalar"), in the rule's order; from the core.
    _slots: ClassVar[tuple[str, ...]] = ()
    _kinds: ClassVar[tuple[str, ...]] = ()
    #: The group keys that are hyperparameters (besides ``frozen``).
    _hyper_keys: ClassVar[tuple[str, ...]] = ()
    #: Whether any slice of a param can be stepped alone (element-wise
    #: rules; not LAMB, LARS, Adafactor, Muon): from the core.
    _sliceable: ClassVar[bool] = False
    #: Per slot: "signed" / "unsigned" for a moment (stored in the state
    #: dtype, with that 8-bit code), "" for a slot that stays float32.
    _moments: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        rule = cls.__dict__.get("_rule")
        if rule is not None:
            names, slots, sliceable = _core.optimizer_rule(rule)
            cls._sliceable = sliceable
            cls._hyper_keys = tuple(names)
            cls._slots = tuple(name for name, _, _ in slots)
            cls._kinds = tuple(kind for _, kind, _ in slots)
            cls._moments = tuple(moment for _, _, moment in slots)

    @staticmethod
    def _precision(values: Mapping[str, Any]) -> dict:
        """The low-precision options among a constructor's ``locals()``."""
        return {k: values[k] for k in _PRECISION_KEYS}

    def __init__(
        self,
        params: ParamsT,
        defaults: dict,
        *,
        check_finite: bool = False,
        master_weights: bool = False,
        state_dtype: str | None = None,
        stochastic_rounding: bool = False,
        rng: Generator | None = None,
    ):
        attach_lock(self)
        # What the last small step checked, so that the next checks it by
        # identity (rust/python/src/plan.rs).
        self._cache = _core.StepCache()
        # Its bound ``step`` while it holds a plan (one attribute to load).
        self._fast: Any = None
        # Set while a checked step runs (``_in_step``).
        self._stepping = False
        self.defaults = dict(defaults)
        self._validate(self.defaults, "")
        self.check_finite = _flag("check_finite", check_finite)
        self.master_weights = _flag("master_weights", master_weights)
        self.stochastic_rounding = _flag("stochastic_rounding", stochastic_rounding)
        if not (state_dtype is None or isinstance(state_dtype, str)) or (
            state_dtype not in _STATE_DTYPES
        ):
            raise ValueError(
                f"state_dtype: expected None, 'float32', 'bfloat16' or 'int8', "
                f"got {_brief(state_dtype)}"
            )
        self.state_dtype = state_dtype
        if rng is not None and not isinstance(rng, Generator):
            raise TypeError(f"rng: expected a lec7rs.Generator, got {type(rng).__name__}")
        if self.stochastic_rounding and rng is None:
            raise ValueError("rng: stochastic_rounding=True needs rng=lec7rs.Generator(seed)")
        if rng is not None and not self.stochastic_rounding:
            raise ValueError("rng: given without stochastic_rounding=True (it would not be used)")
        self.rng = rng
        # Set from the first param's dtype (add_param_group).
        self._half: str | None = None
        self._low = False
        self._raw: list[np.ndarray] = []
        self._master: list | None = None
        self._absmax: list[list] = [[] for _ in self._kinds]
        self.last_step_skipped = False
        self._skipped_steps = 0
        self.param_groups: list[dict] = []
        self._params: list[np.ndarray] = []
        self._keys: list[Any] = []
        self._key_set: set = set()
        self._labels: list[str] = []
        self._group_of: list[int] = []
        self._spans = Spans()
        self._state: list = [self._empty_slot(k, 0) for k in self._kinds]
        self._steps = np.zeros(0, dtype=np.int64)
        groups = _as_groups(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        for group in groups:
            self.add_param_group(group)
        if not self._params:
            raise ValueError("optimizer got an empty parameter list")

    @classmethod
    def _pick(cls, values: Mapping[str, Any]) -> dict:
        """The hyperparameters among a constructor's ``locals()``."""
        return {k: values[k] for k in cls._hyper_keys if k in values}

    @staticmethod
    def _empty_slot(kind: str, n: int) -> Any:
        # Array slots: a list (None: no state yet); scalar slots: float64
        # numbers (NaN: no state yet).
        return np.full(n, np.nan) if kind == "scalar" else [None] * n

    # -- groups -------------------------------------------------------------------

    def _validate(self, group: Mapping[str, Any], where: str) -> None:
        _flag(f"{where}frozen", group.get("frozen", False))
        try:
            _core.optimizer_check(self._rule, {**self.defaults, **group})
        except (ValueError, TypeError) as e:
            raise type(e)(f"{where}{e}") from None

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        """Adds a group (a dict with ``"params"`` and optional overrides).
        Between steps only: called from code a step runs (a hyperparameter's
        ``__float__``) it raises ``RuntimeError`` and changes nothing."""
        with self._lock:
            self._add_param_group(param_group)

    def _add_param_group(self, param_group: Mapping[str, Any]) -> None:
        self._refuse_in_step("add_param_group")
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
        self._validate(group, where)
        group["frozen"] = bool(group["frozen"])

        dtype = self._params[0].dtype if self._params else None
        seen: set = set()
        for key, array in zip(keys, arrays):
            label = f"params[{key!r}]"
            _check_param(array, label, half=self._rule is not None)
            if dtype is None:
                dtype = array.dtype
                self._set_precision(dtype)
            elif array.dtype != dtype:
                raise TypeError(
                    f"{label}: dtype {array.dtype} differs from {dtype}, the dtype of the "
                    "other params (one optimizer updates one dtype)"
                )
            if key in self._key_set or key in seen:
                raise ValueError(f"{label}: the name appears more than once")
            seen.add(key)
        clash = self._spans.check_and_add(arrays, len(self._params))
        if clash is not None:
            key = keys[clash - len(self._params)]
            raise ValueError(
                f"params[{key!r}] shares memory with another param (each array may be given once)"
            )

        group["params"] = arrays
        group["param_names"] = keys
        self._forget_plan()
        g = len(self.param_groups)
        self.param_groups.append(group)
        self._params.extend(arrays)
        # 16-bit params reach Rust as their uint16 bits (zero-copy views).
        self._raw.extend(a.view(np.uint16) if self._half else a for a in arrays)
        if self._master is not None:
            self._master.extend([None] * len(arrays))
        for lists in self._absmax:
            lists.extend([None] * len(arrays))
        self._keys.extend(keys)
        self._key_set.update(keys)
        self._labels.extend(f"[{k!r}]" for k in keys)
        self._group_of.extend([g] * len(arrays))
        for k, kind in enumerate(self._kinds):
            if kind == "scalar":
                self._state[k] = np.concatenate([self._state[k], np.full(len(arrays), np.nan)])
            else:
                self._state[k].extend([None] * len(arrays))
        self._steps = np.concatenate([self._steps, np.zeros(len(arrays), dtype=np.int64)])

    def _in_step(self) -> bool:
        """Whether a step of this optimizer is running on this thread, and
        code it calls (a hyperparameter's ``__float__``) called back in. With
        the lock held, which a step holds throughout."""
        if self._stepping:
            return True
        if self._cache is None:
            return False
        try:
            # A step by the plan holds its cache borrowed (plan.rs).
            self._cache.planned  # noqa: B018
        except RuntimeError:
            return True
        return False

    def _refuse_in_step(self, what: str) -> None:
        """Raises before anything changes where ``what`` was called from
        inside a step: the step would go on with lists it no longer owns."""
        if self._in_step():
            raise RuntimeError(
                f"{what}() cannot run during step(): it was called from code the step "
                "runs (such as a hyperparameter's __float__); call it between steps"
            )

    def _forget_plan(self) -> None:
        """Forgets the step plan: for a change of the lists it holds (the
        state, the step counts), made with the lock held."""
        self._fast = None
        if self._cache is not None:
            self._cache.clear()

    def _set_precision(self, dtype: np.dtype) -> None:
        """Decides the storage from the first param's dtype."""
        self._half = dtype.name if dtype.name in HALF_DTYPES else None
        if dtype == np.float64 and self.state_dtype is not None:
            raise ValueError(
                f"state_dtype={self.state_dtype!r} needs float32, float16 or bfloat16 params "
                "(these are float64)"
            )
        if self.state_dtype == "bfloat16":
            _bfloat16()
        self._low = self._half is not None or self.state_dtype in ("bfloat16", "int8")
        if self.master_weights and self._half is not None:
            self._master = []

    def _state_format(self) -> str:
        return "float32" if self.state_dtype is None else self.state_dtype

    def _storage(self, k: int, param: np.ndarray) -> Any:
        """The dtype slot ``k`` of ``param`` is stored in ("int8" for 8-bit)."""
        if not self._low:
            return param.dtype
        if self._kinds[k] != "param" or not self._moments[k]:
            return np.dtype(np.float32)
        fmt = self._state_format()
        if fmt == "bfloat16":
            return np.dtype(_bfloat16())
        if fmt == "int8" and param.size >= _MIN_INT8:
            return np.dtype(np.int8)
        return np.dtype(np.float32)

    def _low_grads(self, grads: list) -> list:
        """The grads of 16-bit params as Rust takes them (their uint16 bits;
        float32 grads as they are), each dtype checked."""
        if self._half is None:
            return grads
        dtype = self._params[0].dtype
        out = []
        for i, g in enumerate(grads):
            if g is None or (isinstance(g, np.ndarray) and g.dtype == np.float32):
                out.append(g)
            elif isinstance(g, np.ndarray) and g.dtype == dtype:
                out.append(g.view(np.uint16))
            else:
                got = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else type(g).__name__
                raise TypeError(
                    f"grads{self._labels[i]}: expected a {dtype} or float32 array "
                    f"(the params are {dtype}), got {got}"
                )
        return out

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
                extra = next(k for k in grads if k not in self._key_set)
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

    def step(self, grads: GradsT, *, grad_scale: float | None = None) -> None:
        """Updates every param that has a grad, in place, in one call into
        Rust; with ``grad_scale`` the grads are read as ``grad * grad_scale``."""
        fast = self._fast
        if fast is not None and type(grads) is list:
            # The plan the last checked step recorded (rust/python/src/plan.rs),
            # taken with the lock taken in Rust; None where it does not hold.
            stepped = fast(grads, self.param_groups, self._lock, self.check_finite, grad_scale)
            if stepped is True:
                if self.last_step_skipped:
                    self.last_step_skipped = False
                return
            if stepped is not None:  # a grad not finite (check_finite)
                with self._lock:
                    self.last_step_skipped = True
                    self._skipped_steps += 1
                return
        if type(grads) is not list or len(grads) != len(self._params):
            grads = self._align(grads)
        # The lock by hand: ``with`` costs twice as much. ``_low`` is fixed
        # at construction.
        lock = self._lock
        lock.acquire()
        stepping, self._stepping = self._stepping, True
        try:
            if self._low:
                stepped = self._step_low(grads, grad_scale)
            else:
                stepped = _step(
                    self._rule,
                    self._params,
                    grads,
                    self._state,
                    self._steps,
                    self.param_groups,
                    self._group_of,
                    self._labels,
                    self.check_finite,
                    grad_scale,
                    None,
                    self._cache,
                )
                # 0 skipped, 1 stepped, 2 stepped with a plan recorded.
                self._fast = self._cache.step if stepped == 2 else None
            if stepped:
                self.last_step_skipped = False
            else:
                self.last_step_skipped = True
                self._skipped_steps += 1
        finally:
            self._stepping = stepping
            lock.release()

    def _step_low(self, grads: list, grad_scale: float | None) -> int:
        """The step of 16-bit params or low-precision state (lock held)."""
        sr = None
        if self.rng is not None:
            key0, key1, _, _ = self.rng._stream.state()
            sr = (key0, key1)
        low = (self._half or "float32", self._state_format(), self._master, self._absmax, sr)
        return _step(
            self._rule,
            self._raw,
            self._low_grads(grads),
            self._state,
            self._steps,
            self.param_groups,
            self._group_of,
            self._labels,
            self.check_finite,
            grad_scale,
            low,
            self._cache,
        )

    # -- state --------------------------------------------------------------------

    def _entry(self, i: int, copy: bool) -> dict:
        entry: dict = {}

        def put(key: str, value: np.ndarray) -> None:
            if value.dtype == np.uint16:  # bfloat16 state, held as its bits
                value = value.view(_bfloat16())
            entry[key] = value.copy() if copy else value

        for k, slot in enumerate(self._slots):
            value = self._state[k][i]
            if self._kinds[k] == "scalar":
                if not math.isnan(value):
                    entry[slot] = float(value)
            elif value is not None:
                put(slot, value)
                if self._low and self._absmax[k][i] is not None:
                    put(f"{slot}_absmax", self._absmax[k][i])
        if self._master is not None and self._master[i] is not None:
            put("master", self._master[i])
        return entry

    @property
    def state(self) -> dict:
        """``key -> {"step": int, slot: array or float}`` for every param
        with state. The arrays are the live state (not copies); use
        ``state_dict()`` for a snapshot."""
        with self._lock:
            out = {}
            for i, key in enumerate(self._keys):
                entry = self._entry(i, copy=False)
                if entry or self._steps[i]:
                    out[key] = {"step": int(self._steps[i]), **entry}
            return out

    def state_dict(self) -> dict:
        """A snapshot (copies) of the hyperparameters and state, PyTorch-style:
        ``state`` is keyed by the flat param index, each group lists its
        indices under ``params`` and its names under ``param_names``."""
        with self._lock:
            state = {}
            for i in range(len(self._params)):
                entry = self._entry(i, copy=True)
                if entry or self._steps[i]:
                    state[i] = {"step": int(self._steps[i]), **entry}
            members: list[list[int]] = [[] for _ in self.param_groups]
            for i, g in enumerate(self._group_of):
                members[g].append(i)
            groups = []
            for g, group in enumerate(self.param_groups):
                saved = {k: v for k, v in group.items() if k not in ("params", "param_names")}
                saved["params"] = members[g]
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
        and changes nothing; so does a call from inside a step
        (``RuntimeError``), as for :meth:`add_param_group`."""
        with self._lock:
            self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks ``state_dict`` and builds the new state without changing the
        optimizer; returns the commit, which cannot fail. ``lec7rs.checkpoint``
        checks every part of a checkpoint this way before committing any."""
        with self._lock:
            return self._stage(state_dict)

    def _stage(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        self._refuse_in_step("load_state_dict")
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        d = state_dict
        name = type(self).__name__
        if d.get("optimizer") != name:
            raise ValueError(
                f"state_dict is for optimizer {_brief(d.get('optimizer'))}, not {name!r}"
            )
        if d.get("version") != _STATE_DICT_VERSION:
            raise ValueError(f"state_dict has unknown format version {_brief(d.get('version'))}")
        for key in ("state", "param_groups"):
            if key not in d:
                raise ValueError(f"state_dict has no {key!r} entry")
        saved_groups = d["param_groups"]
        if not isinstance(saved_groups, list) or len(saved_groups) != len(self.param_groups):
            count = len(saved_groups) if isinstance(saved_groups, list) else "no"
            raise ValueError(
                f"state_dict has {count} param groups, this optimizer has {len(self.param_groups)}"
            )
        members: list[list[int]] = [[] for _ in self.param_groups]
        for i, g in enumerate(self._group_of):
            members[g].append(i)
        new_groups = []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"state_dict param_groups[{g}]: "
            if not isinstance(saved, Mapping):
                raise ValueError(f"{where}expected a dict")
            ours = members[g]
            listed = saved.get("params", ())
            if not isinstance(listed, (list, tuple)) or list(listed) != ours:
                raise ValueError(
                    f"{where}lists params {_brief(listed)}, this group has {_brief(ours)}"
                )
            names = saved.get("param_names", group["param_names"])
            if not isinstance(names, (list, tuple)) or list(names) != list(group["param_names"]):
                raise ValueError(
                    f"{where}param names {_brief(names)} differ from {_brief(group['param_names'])}"
                )
            restored = dict(group)
            for key in (*self._hyper_keys, "frozen"):
                if key not in saved:
                    raise ValueError(f"{where}missing hyperparameter {key!r}")
                restored[key] = saved[key]
            self._validate(restored, where)
            restored["frozen"] = bool(restored["frozen"])
            for key, value in saved.items():
                if key not in ("params", "param_names"):
                    restored[key] = value
            new_groups.append(restored)

        saved_state = d["state"]
        if not isinstance(saved_state, Mapping):
            raise ValueError("state_dict 'state' must be a dict")
        n = len(self._params)
        state = [self._empty_slot(kind, n) for kind in self._kinds]
        absmax: list[list] = [[None] * n for _ in self._kinds]
        master = None if self._master is None else [None] * n
        steps = np.zeros(n, dtype=np.int64)
        for i, entry in saved_state.items():
            if not _is_int(i) or not 0 <= i < n:
                raise ValueError(
                    f"state_dict state has an entry for unknown param index {_brief(i)}"
                )
            where = f"state_dict state[{i}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected a dict")
            known = {"step", *self._slots}
            if self._low:
                known.update(f"{slot}_absmax" for slot in self._slots)
            if master is not None:
                known.add("master")
            unknown = set(entry) - known
            if unknown:
                raise ValueError(f"{where}: unknown state {_brief(sorted(map(str, unknown)))}")
            step = entry.get("step", 0)
            if not _is_int(step) or not 0 <= step <= _MAX_STEP:
                raise ValueError(
                    f"{where}['step']: expected an int in [0, 2**62], got {_brief(step)}"
                )
            steps[i] = step
            param = self._params[i]
            for k, slot in enumerate(self._slots):
                if slot not in entry or entry[slot] is None:
                    continue
                value = entry[slot]
                if self._kinds[k] == "scalar":
                    if isinstance(value, (bool, np.bool_)) or not isinstance(
                        value, (float, int, np.floating, np.integer)
                    ):
                        raise ValueError(f"{where}[{slot!r}]: expected a number")
                    if not math.isfinite(value):
                        raise ValueError(f"{where}[{slot!r}]: expected a finite number")
                    state[k][i] = float(value)
                    continue
                if not isinstance(value, np.ndarray):
                    raise ValueError(f"{where}[{slot!r}]: expected an array")
                shape = tuple(_core.slot_shape(self._kinds[k], list(param.shape)))
                dtype = self._storage(k, param)
                if value.shape != shape or value.dtype != dtype:
                    raise ValueError(
                        f"{where}[{slot!r}]: {value.dtype} array of shape {value.shape} does not "
                        f"fit param {self._labels[i]} (needs {dtype}, shape {shape})"
                    )
                state[k][i] = np.array(value, dtype=dtype, order="C", copy=True)
                if dtype.name == "bfloat16":
                    state[k][i] = state[k][i].view(np.uint16)
                if dtype == np.int8:
                    blocks = (param.size + _BLOCK - 1) // _BLOCK
                    a = entry.get(f"{slot}_absmax")
                    if (
                        not isinstance(a, np.ndarray)
                        or a.dtype != np.float32
                        or a.shape != (blocks,)
                    ):
                        raise ValueError(
                            f"{where}[{slot + '_absmax'!r}]: expected a float32 array of shape "
                            f"({blocks},) beside the int8 {slot!r}"
                        )
                    absmax[k][i] = np.array(a, dtype=np.float32, order="C", copy=True)
            if master is not None and entry.get("master") is not None:
                m = entry["master"]
                if not isinstance(m, np.ndarray) or m.dtype != np.float32 or m.shape != param.shape:
                    raise ValueError(
                        f"{where}['master']: expected a float32 array of shape {param.shape}"
                    )
                master[i] = np.array(m, dtype=np.float32, order="C", copy=True)
        skipped = d.get("skipped_steps", 0)
        if not _is_int(skipped) or not 0 <= skipped <= _MAX_STEP:
            raise ValueError(
                f"state_dict 'skipped_steps': expected an int in [0, 2**62], got {_brief(skipped)}"
            )

        def commit() -> None:
            with self._lock:
                self._forget_plan()
                for group, restored in zip(self.param_groups, new_groups):
                    group.clear()
                    group.update(restored)
                self._state = state
                self._absmax = absmax
                self._master = master
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


def _flag(name: str, value: Any) -> bool:
    """A bool option: True or False (NumPy's bool too), not a truthy value
    (``frozen="False"`` would freeze the group)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
    return bool(value)
