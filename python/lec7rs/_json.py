"""Results as JSON: plain Python values only, and no NaN (JSON has none)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def plain(x: Any) -> Any:
    """``x`` with NumPy scalars and arrays turned into Python values, tuples
    into lists, keys into strings and non-finite floats into None."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return plain(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def dumps(x: Any) -> str:
    return json.dumps(plain(x), indent=1, allow_nan=False)
