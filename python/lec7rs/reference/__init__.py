"""Pure-NumPy references (no Rust): the lecture's formulas in cs231n style and
the ``torch.optim`` rules that ``lec7rs.optim`` implements. The tests compare
the Rust kernels against these; read them for the exact formulas."""

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

__all__ = [
    "adagrad",
    "adam",
    "lbfgs_two_loop",
    "nesterov_momentum",
    "polyak_update",
    "rmsprop",
    "sgd",
    "sgd_momentum",
    "torch_adagrad",
    "torch_adam",
    "torch_adamw",
    "torch_lbfgs",
    "torch_rmsprop",
    "torch_sgd",
]
