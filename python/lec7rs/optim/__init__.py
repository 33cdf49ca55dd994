"""Optimizers with the constructor arguments, defaults and update rules of
``torch.optim``, for NumPy arrays.

``LBFGS`` (``step(closure)``) is the quasi-Newton method for full-batch
training; its two-loop recursion runs in Rust.

Each ``step(grads)`` is one call into Rust for all param groups: the GIL is
released and every tensor of the step is processed as one parallel job over
fixed-size chunks (SIMD, bit-identical for any thread count).
"""

from . import lr_scheduler
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .lbfgs import LBFGS
from .muon import Muon
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "LBFGS",
    "SGD",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Muon",
    "Optimizer",
    "RMSprop",
    "lr_scheduler",
]
