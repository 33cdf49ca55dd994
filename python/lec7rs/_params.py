"""Params as the optimizers take them (a list of arrays, a dict name -> array,
or a list of group dicts), flattened to aligned lists of keys and arrays.
Used by ``lec7rs.averaging`` and ``lec7rs.checkpoint``; the checks are the
optimizers' own (``written=False``: arrays that are only read may have any
strides and be read-only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .optim._params import HALF_DTYPES, _as_groups, _check_param, _first_overlap


class FlatParams:
    """The arrays of ``params`` in order, with their keys: the dict key, or
    the position among all arrays for a list (as the optimizers number them).
    ``labels[i]`` is ``"['w']"`` or ``"[3]"``, for messages."""

    __slots__ = ("_layout", "arrays", "keys", "labels")

    def __init__(self, params: Any, *, one_dtype: bool, written: bool = True):
        if isinstance(params, Iterable) and not isinstance(
            params, (Mapping, np.ndarray, str, bytes)
        ):
            params = list(params)  # a generator can be read once only
        groups = _as_groups(params)
        keys: list = []
        arrays: list = []
        layout = []
        for g, group in enumerate(groups):
            if not isinstance(group, Mapping) or "params" not in group:
                raise TypeError("a param group must be a dict with a 'params' entry")
            raw = group["params"]
            if isinstance(raw, np.ndarray):
                raise TypeError(
                    f"param_groups[{g}]: 'params' must be a list or dict of arrays, not an array"
                )
            if isinstance(raw, Mapping):
                group_keys, group_arrays = list(raw.keys()), list(raw.values())
            else:
                group_arrays = list(raw)
                group_keys = list(range(len(arrays), len(arrays) + len(group_arrays)))
            layout.append((isinstance(raw, Mapping), group_keys))
            keys.extend(group_keys)
            arrays.extend(group_arrays)
        if not arrays:
            raise ValueError("got an empty parameter list")
        seen: set = set()
        for key, array in zip(keys, arrays):
            label = f"params[{key!r}]"
            if written:  # C-contiguous, writeable
                _check_param(array, label, half=not one_dtype)
            elif not isinstance(array, np.ndarray) or (
                array.dtype not in (np.float32, np.float64) and array.dtype.name not in HALF_DTYPES
            ):
                what = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else type(array)
                raise TypeError(
                    f"{label}: expected a float32, float64, float16 or bfloat16 array, got {what}"
                )
            if one_dtype and array.dtype != arrays[0].dtype:
                raise TypeError(
                    f"{label}: dtype {array.dtype} differs from {arrays[0].dtype}, the dtype "
                    "of the other params"
                )
            if key in seen:
                raise ValueError(f"{label}: the name appears more than once")
            seen.add(key)
        clash = _first_overlap(arrays) if written else None
        if clash is not None:
            raise ValueError(
                f"params[{keys[clash]!r}] shares memory with another param "
                "(each array may be given once)"
            )
        self.keys = keys
        self.arrays = arrays
        self.labels = [f"[{k!r}]" for k in keys]
        # (is a dict, keys) per group, or of the one implicit group when
        # params is not a list of group dicts.
        is_groups = isinstance(params, list) and any(isinstance(x, Mapping) for x in params)
        self._layout = layout if is_groups else layout[0]

    def rebuild(self, arrays: list) -> Any:
        """``arrays`` (aligned with ``self.arrays``) in the structure of params."""
        items = iter(arrays)

        def one(is_dict: bool, keys: list) -> Any:
            return {k: next(items) for k in keys} if is_dict else [next(items) for _ in keys]

        if isinstance(self._layout, list):
            return [{"params": one(*entry)} for entry in self._layout]
        return one(*self._layout)

    def describe(self) -> list:
        """``(key, shape, dtype)`` of every array, to compare structures."""
        return [(k, a.shape, a.dtype) for k, a in zip(self.keys, self.arrays)]
