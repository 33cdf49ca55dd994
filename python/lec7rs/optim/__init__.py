"""Optimizers with the constructor arguments, defaults and update rules of
``torch.optim``, for NumPy arrays.

``LBFGS`` (``step(closure)``) is the quasi-Newton method for full-batch
training; its two-loop recursion runs in Rust.

Each ``step(grads)`` is one call into Rust for all param groups: the GIL is
released and every tensor of the step is processed as one parallel job over
fixed-size chunks (SIMD, bit-identical for any thread count).
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .clip import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .lamb import LAMB
from .lars import LARS
from .lbfgs import LBFGS
from .lion import Lion
from .lookahead import Lookahead
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from .sgd import SGD

__all__ = [
    "ASGD",
    "LAMB",
    "LARS",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Lookahead",
    "Muon",
    "NAdam",
    "Optimizer",
    "RAdam",
    "RMSprop",
    "Rprop",
    "ScheduleFreeAdamW",
    "ScheduleFreeSGD",
    "clip_grad_norm_",
    "clip_grad_value_",
    "clip_grads_with_norm_",
    "get_total_norm",
    "lr_scheduler",
]
