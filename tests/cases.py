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
    (optim.RAdam, ref.torch_radam, dict(lr=0.01)),
    (optim.RAdam, ref.torch_radam, dict(lr=0.01, betas=(0.5, 0.6), weight_decay=0.1)),
    (
        optim.RAdam,
        ref.torch_radam,
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    ),
    (optim.Adamax, ref.torch_adamax, dict()),
    (optim.Adamax, ref.torch_adamax, dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1)),
    (optim.Adamax, ref.torch_adamax, dict(eps=0.0, maximize=True)),
    (optim.Adadelta, ref.torch_adadelta, dict()),
    (optim.Adadelta, ref.torch_adadelta, dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    (optim.Rprop, ref.torch_rprop, dict()),
    (optim.Rprop, ref.torch_rprop, dict(lr=0.1, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    (optim.Rprop, ref.torch_rprop, dict(maximize=True)),
    (optim.ASGD, ref.torch_asgd, dict()),
    (optim.ASGD, ref.torch_asgd, dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1)),
    (optim.ASGD, ref.torch_asgd, dict(t0=0, maximize=True)),
    (optim.Lion, ref.lion, dict()),
    (optim.Lion, ref.lion, dict(lr=1e-3, betas=(0.5, 0.7), weight_decay=0.1, maximize=True)),
    (optim.LAMB, ref.lamb, dict()),
    (optim.LAMB, ref.lamb, dict(lr=0.01, weight_decay=0.1, trust_clip=True, maximize=True)),
    (optim.LAMB, ref.lamb, dict(lr=0.01, betas=(0.5, 0.6), bias_correction=False, eps=1e-3)),
    (optim.LARS, ref.lars, dict(lr=0.1)),
    (optim.LARS, ref.lars, dict(lr=0.1, weight_decay=0.01, nesterov=True, trust_coefficient=0.02)),
    (optim.LARS, ref.lars, dict(lr=0.5, momentum=0.0, eps=1e-3)),
    (optim.ScheduleFreeAdamW, ref.schedule_free_adamw, dict()),
    (
        optim.ScheduleFreeAdamW,
        ref.schedule_free_adamw,
        dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, warmup_steps=10, r=0.5),
    ),
    (optim.ScheduleFreeSGD, ref.schedule_free_sgd, dict(lr=0.1)),
    (
        optim.ScheduleFreeSGD,
        ref.schedule_free_sgd,
        dict(lr=0.1, momentum=0.6, weight_decay=0.01, warmup_steps=7, weight_lr_power=0.0),
    ),
]

CASE_IDS = [
    f"{cls.__name__}-" + ("-".join(f"{k}={v}" for k, v in kw.items()) or "defaults")
    for cls, _, kw in CASES
]
