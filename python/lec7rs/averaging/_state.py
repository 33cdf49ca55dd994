"""The checks shared by the averagers' ``load_state_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

STATE_DICT_VERSION = 1


def check_header(state_dict: Any, name: str, keys: set) -> Mapping:
    """The checks every averager's state dict starts with: the type, the
    class, the version, the exact set of keys and ``param_names``."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
    if state_dict.get("averager") != name:
        raise ValueError(f"state_dict is for {state_dict.get('averager')!r}, not {name!r}")
    if state_dict.get("version") != STATE_DICT_VERSION:
        raise ValueError(f"state_dict has unknown format version {state_dict.get('version')!r}")
    expected = {"averager", "version", "param_names", *keys}
    if set(state_dict) != expected:
        missing, unknown = expected - set(state_dict), set(state_dict) - expected
        raise ValueError(
            f"state_dict: missing keys {sorted(missing)}, unknown keys {sorted(map(str, unknown))}"
        )
    return state_dict


def check_names(names: Any, keys: list) -> None:
    """``param_names`` of a state dict must be the averager's param keys."""
    if not isinstance(names, (list, tuple)) or list(names) != keys:
        raise ValueError(f"state_dict param names {names!r} differ from {keys!r}")


def check_arrays(arrays: Any, where: str, keys: list, like: list) -> list:
    """``arrays``: a list of arrays with the shapes and dtypes of ``like``."""
    if not isinstance(arrays, (list, tuple)) or len(arrays) != len(like):
        raise ValueError(f"{where}: expected a list of {len(like)} arrays")
    for key, a, p in zip(keys, arrays, like):
        if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
            got = f"{a.dtype} array of shape {a.shape}" if isinstance(a, np.ndarray) else repr(a)
            raise ValueError(
                f"{where}[{key!r}]: {got} does not fit the param ({p.dtype}, shape {p.shape})"
            )
    return list(arrays)
