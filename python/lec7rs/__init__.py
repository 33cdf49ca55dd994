"""lec7rs: the training-time toolkit of "Training Neural Networks II" as fast,
trustworthy Rust kernels for NumPy.

- ``lec7rs.optim``: SGD (momentum, Nesterov), Adagrad, RMSprop, Adam, AdamW
  with ``torch.optim``'s arguments, defaults and update rules.
- ``lec7rs.optimize``: ``minimize`` with L-BFGS, BFGS and Newton's method
  (SciPy's ``OptimizeResult`` conventions), the optimizer's work in Rust.
- ``lec7rs.regularization``: dropout (inverted and the lecture's form),
  DropConnect, stochastic depth and fractional max pooling.
- ``lec7rs.augment``: batched, parallel data augmentation (random flips,
  crops, resized crops, colour jitter) with torchvision's semantics.
- ``lec7rs.Generator``: the counter-based (Philox4x32-10) random stream
  they draw from.
- ``lec7rs.reference``: the same rules (and the lecture's cs231n forms) in
  pure NumPy, which the tests compare against.
- ``lec7rs.optim.lr_scheduler``: ``torch.optim.lr_scheduler``'s schedules.
- ``lec7rs.averaging``: Polyak averaging (running mean / EMA of the params)
  and snapshot ensembles.
- ``lec7rs.checkpoint``: ``save`` / ``load`` of a whole training state in
  one atomically written, checksummed file (no pickle).
- ``lec7rs.data``: the handwritten digits that ``lec7rs demo`` learns,
  shipped in the package (``from lec7rs.data import load_digits``).
- The command line: ``lec7rs demo`` (the lecture reproduced on those digits)
  and ``lec7rs bench`` (the kernels' speed on this machine).

Kernels dispatch at run time to AVX-512, AVX2, NEON or scalar code
(``simd_level()``; ``LEC7RS_SIMD`` forces a level) and run on
``get_num_threads()`` threads (``LEC7RS_NUM_THREADS`` sets the default).
Results are bit-identical for any thread count and SIMD level.
"""

import warnings as _warnings

from . import _core, augment, averaging, checkpoint, optim, optimize, reference, regularization
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
    "augment",
    "averaging",
    "checkpoint",
    "get_num_threads",
    "optim",
    "optimize",
    "reference",
    "regularization",
    "set_num_threads",
    "simd_level",
]
