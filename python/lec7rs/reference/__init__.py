"""Pure-NumPy references (no Rust): the lecture's formulas in cs231n style and
the ``torch.optim`` rules that ``lec7rs.optim`` implements, and the
regularization functions of ``lec7rs.regularization`` with the Philox stream
of ``lec7rs.Generator`` (``reference.random``). The tests compare the Rust
kernels against these; read them for the exact formulas."""

from . import augment, random
from .averaging import polyak_update
from .lbfgs import lbfgs_two_loop, torch_lbfgs
from .optim import (
    adagrad,
    adam,
    nesterov_momentum,
    rmsprop,
    sgd,
    sgd_momentum,
    torch_adagrad,
    torch_adam,
    torch_adamw,
    torch_rmsprop,
    torch_sgd,
)
from .optim_beyond import (
    fixed_sum,
    lamb,
    lars,
    lion,
    lookahead_sync,
    schedule_free_adamw,
    schedule_free_sgd,
    schedule_free_x,
)
from .optim_torch2 import (
    torch_adadelta,
    torch_adafactor,
    torch_adamax,
    torch_asgd,
    torch_muon,
    torch_nadam,
    torch_radam,
    torch_rprop,
)
from .random import philox4x32_10
from .regularization import (
    dropconnect,
    dropconnect_backward,
    dropout,
    dropout_backward,
    fractional_max_pool2d,
    fractional_max_pool2d_backward,
    stochastic_depth,
)

__all__ = [
    "adagrad",
    "adam",
    "augment",
    "dropconnect",
    "dropconnect_backward",
    "dropout",
    "dropout_backward",
    "fixed_sum",
    "fractional_max_pool2d",
    "fractional_max_pool2d_backward",
    "lamb",
    "lars",
    "lbfgs_two_loop",
    "lion",
    "lookahead_sync",
    "nesterov_momentum",
    "philox4x32_10",
    "polyak_update",
    "random",
    "rmsprop",
    "schedule_free_adamw",
    "schedule_free_sgd",
    "schedule_free_x",
    "sgd",
    "sgd_momentum",
    "stochastic_depth",
    "torch_adadelta",
    "torch_adafactor",
    "torch_adagrad",
    "torch_adam",
    "torch_adamax",
    "torch_adamw",
    "torch_asgd",
    "torch_lbfgs",
    "torch_muon",
    "torch_nadam",
    "torch_radam",
    "torch_rmsprop",
    "torch_rprop",
    "torch_sgd",
]
