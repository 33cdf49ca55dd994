"""The one table of (optimizer, hyperparameters) that drives the comparisons
against the reference, across dtypes, shapes, SIMD levels and thread counts."""

from __future__ import annotations

from lec7rs import optim
from lec7rs import reference as ref

# (optimizer class, reference rule, hyperparameters). Each set exercises a
# branch of the kernel: momentum / dampening / Nesterov, L2 vs decoupled
# weight decay, amsgrad, centered, maximize, and both sides of ATen's lerp
# (weight below and above 0.5).
CASES = [
    (optim.SGD, ref.torch_sgd, dict(lr=0.01)),
    (optim.SGD, ref.torch_sgd, dict(lr=0.01, momentum=0.9)),
    (optim.SGD, ref.torch_sgd, dict(lr=0.01, momentum=0.9, dampening=0.5, weight_decay=0.01)),
    (optim.SGD, ref.torch_sgd, dict(lr=0.01, momentum=0.9, nesterov=True)),
    (optim.SGD, ref.torch_sgd, dict(lr=0.05, momentum=0.5, weight_decay=0.1, maximize=True)),
    (optim.Adagrad, ref.torch_adagrad, dict()),
    (
        optim.Adagrad,
        ref.torch_adagrad,
        dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5),
    ),
    (optim.Adagrad, ref.torch_adagrad, dict(lr=0.05, eps=1e-3, maximize=True)),
    (optim.RMSprop, ref.torch_rmsprop, dict(lr=1e-3)),
    (optim.RMSprop, ref.torch_rmsprop, dict(lr=1e-3, centered=True)),
    (optim.RMSprop, ref.torch_rmsprop, dict(lr=1e-3, momentum=0.9)),
    (
        optim.RMSprop,
        ref.torch_rmsprop,
        dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.1, maximize=True),
    ),
    (optim.RMSprop, ref.torch_rmsprop, dict(lr=1e-3, alpha=0.3, centered=True)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01, amsgrad=True)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01, weight_decay=0.1)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01, maximize=True)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01, betas=(0.2, 0.5), eps=1e-3)),
    (optim.AdamW, ref.torch_adamw, dict(lr=0.01)),
    (optim.AdamW, ref.torch_adamw, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    (optim.Adam, ref.torch_adam, dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    (optim.NAdam, ref.torch_nadam, dict()),
    (optim.NAdam, ref.torch_nadam, dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    (
        optim.NAdam,
        ref.torch_nadam,
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    ),
]

CASE_IDS = [
    f"{cls.__name__}-" + ("-".join(f"{k}={v}" for k, v in kw.items()) or "defaults")
    for cls, _, kw in CASES
]
