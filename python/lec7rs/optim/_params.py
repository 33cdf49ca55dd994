"""Params as the optimizers, averagers and checkpoints take them: the checks
of one param array, the memory-overlap check, and the normalisation of the
three accepted forms (a list of arrays, a dict name -> array, a list of group
dicts) into a list of group dicts."""

from __future__ import annotations

import numbers
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from typing import Any, Union

import numpy as np

ParamsT = Union[
    Iterable[np.ndarray],
    Mapping[Any, np.ndarray],
    Iterable[Mapping[str, Any]],
]


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


#: The 16-bit float dtypes a first-order optimizer's params may have.
HALF_DTYPES = ("float16", "bfloat16")


def _check_param(array: Any, label: str, half: bool = False) -> None:
    """A param: a C-contiguous, writeable float32 or float64 array (or, with
    ``half``, float16 or ml_dtypes' bfloat16)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{label}: expected a NumPy array, got {type(array).__name__}")
    ok = array.dtype in (np.float32, np.float64) and array.dtype.isnative
    if half and array.dtype.name in HALF_DTYPES:
        ok = True
    if not ok:
        kinds = "float32, float64, float16 or bfloat16" if half else "float32 or float64"
        raise TypeError(f"{label}: expected a {kinds} array, got dtype {array.dtype}")
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


class Spans:
    """The byte ranges of the params registered so far, sorted, to refuse a
    new param that shares memory with one of them in O(log n) (the
    optimizers add groups one at a time: checking each group against all
    params again would be quadratic in the number of groups)."""

    __slots__ = ("_spans",)

    def __init__(self) -> None:
        self._spans: list[tuple[int, int, int]] = []

    def check_and_add(self, arrays: list, first: int) -> int | None:
        """Adds ``arrays`` (numbered from ``first``); returns the number of
        one that overlaps another param (and adds nothing), else None."""
        new = []
        for k, a in enumerate(arrays):
            if a.nbytes:
                start = a.__array_interface__["data"][0]
                new.append((start, start + a.nbytes, first + k))
        new.sort()
        for (_, end, i), (start, _, j) in zip(new, new[1:]):
            if start < end:
                return max(i, j)
        spans = self._spans
        for start, end, i in new:
            at = bisect_left(spans, (start, -1, -1))
            if at > 0 and spans[at - 1][1] > start:
                return i
            if at < len(spans) and spans[at][0] < end:
                return i
        if len(new) < 64:
            for span in new:
                insort(spans, span)
        else:
            self._spans = sorted(spans + new)
        return None
