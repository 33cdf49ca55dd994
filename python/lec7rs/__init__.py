"""lec7rs: the training-time toolkit of "Training Neural Networks II" as fast,
trustworthy Rust kernels for NumPy.

- ``lec7rs.optim``: SGD (momentum, Nesterov), Adagrad, RMSprop, Adam, AdamW
  with ``torch.optim``'s arguments, defaults and update rules.
- ``lec7rs.regularization``: dropout (inverted and the lecture's form),
  DropConnect, stochastic depth and fractional max pooling.
- ``lec7rs.Generator``: the counter-based (Philox4x32-10) random stream
  they draw from.
- ``lec7rs.reference``: the same rules (and the lecture's cs231n forms) in
  pure NumPy, which the tests compare against.

Kernels dispatch at run time to AVX-512, AVX2, NEON or scalar code
(``simd_level()``; ``LEC7RS_SIMD`` forces a level) and run on
``get_num_threads()`` threads (``LEC7RS_NUM_THREADS`` sets the default).
Results are bit-identical for any thread count and SIMD level.
"""

import warnings as _warnings

from . import _core, optim, reference, regularization
from ._core import get_num_threads, simd_level
from .random import Generator

__version__: str = _core.__version__

for _message in _core.env_warnings():
    _warnings.warn(_message, RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Sets the number of threads the kernels use (``n >= 1``)."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n.__index__())


__all__ = [
    "Generator",
    "__version__",
    "get_num_threads",
    "optim",
    "reference",
    "regularization",
    "set_num_threads",
    "simd_level",
]
