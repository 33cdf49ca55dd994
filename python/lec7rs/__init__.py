"""lec7rs: the training-time toolkit of "Training Neural Networks II" as fast,
trustworthy Rust kernels for NumPy.

- ``lec7rs.optim``: the optimizers of ``torch.optim`` (SGD with momentum
  and Nesterov, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam, Adamax,
  Adadelta, Rprop, ASGD, LBFGS, Adafactor, Muon) with its arguments,
  defaults and update rules, and Lion, LAMB, LARS, schedule-free AdamW and
  SGD and Lookahead; gradient clipping; bfloat16 / float16 params with
  master weights and 8-bit state.
- ``lec7rs.optimize``: ``minimize`` with L-BFGS (L-BFGS-B with bounds),
  BFGS, Newton's method and trust-ncg (SciPy's ``OptimizeResult``
  conventions), and ``minimize_many`` for many small problems at once; the
  optimizer's work in Rust.
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
  shipped in the package (``lec7rs.data.load_digits()``).
- ``lec7rs.distributed``: data-parallel training over MPI (the ``mpi``
  extra; ``import lec7rs.distributed``, which imports mpi4py).
- The command line: ``lec7rs demo`` (the lecture reproduced on those digits)
  and ``lec7rs bench`` (the kernels' speed on this machine).

Kernels dispatch at run time to AVX-512, AVX2, NEON or scalar code
(``simd_level()``; ``LEC7RS_SIMD`` forces a level) and run on
``get_num_threads()`` threads (``LEC7RS_NUM_THREADS`` sets the default).
Results are bit-identical for any thread count and SIMD level.
"""

import warnings as _warnings

from . import (
    _core,
    augment,
    averaging,
    checkpoint,
    data,
    optim,
    optimize,
    reference,
    regularization,
)
from ._core import get_num_threads, simd_level
from .random import Generator

#: The version of lec7rs (that of the compiled extension).
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
    "data",
    "get_num_threads",
    "optim",
    "optimize",
    "reference",
    "regularization",
    "set_num_threads",
    "simd_level",
]
