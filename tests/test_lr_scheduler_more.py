"""lec7rs.optim.lr_scheduler: ConstantLR, PolynomialLR, MultiplicativeLR,
ChainedScheduler, ReduceLROnPlateau, CyclicLR and OneCycleLR against the
expected sequences of PyTorch's test/optim/test_lrscheduler.py (hard-coded
here: PyTorch is not a dependency), closed form against chainable form,
resume from state dicts, argument checks and "an error changes nothing"."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from lec7rs import checkpoint
from lec7rs.optim import SGD, Adagrad, Adam, AdamW, RMSprop
from lec7rs.optim.lr_scheduler import (
    ChainedScheduler,
    ConstantLR,
    CosineAnnealingLR,
    CyclicLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiplicativeLR,
    MultiStepLR,
    OneCycleLR,
    PolynomialLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

U = 2.0**-53  # unit roundoff of float64


def make_opt(lrs=(0.05, 0.5), cls=SGD, **kw):
    """PyTorch's test fixture: SGD with two param groups, lr 0.05 and 0.5."""
    return cls([{"params": [np.zeros(3)], "lr": lr} for lr in lrs], **kw)


def hypers(opt):
    """The param groups without their arrays, for "nothing changed"."""
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


def momentum(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def approx(values):
    return pytest.approx(np.asarray(values, dtype=float), rel=1e-12, abs=1e-15)


def run(sched, epochs):
    """Each group's lr at each epoch, read before the step (PyTorch's _test)."""
    groups = sched.optimizer.param_groups
    out = [[] for _ in groups]
    for _ in range(epochs):
        for g, lrs in zip(groups, out):
            lrs.append(g["lr"])
        sched.step()
    return out


def run_cycle(sched, batches):
    """Each group's lr and momentum at each batch, read before the step
    (PyTorch's _test_cycle_lr)."""
    groups = sched.optimizer.param_groups
    lrs, ms = [[] for _ in groups], [[] for _ in groups]
    for _ in range(batches):
        for g, lr, m in zip(groups, lrs, ms):
            lr.append(g["lr"])
            m.append(momentum(g))
        sched.step()
    return lrs, ms


def trace(sched, steps):
    """lrs and momenta after construction and after each of ``steps`` steps."""

    def snap():
        return [
            (g["lr"], momentum(g) if ("betas" in g or "momentum" in g) else None)
            for g in sched.optimizer.param_groups
        ]

    out = [snap()]
    for _ in range(steps):
        sched.step()
        out.append(snap())
    return out


def plain(value):
    """Whether a state dict holds plain values only (lec7rs.checkpoint's)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    return False


# -- ConstantLR, PolynomialLR, MultiplicativeLR ---------------------------------


def test_constant_lr_values():
    # test_constantlr: factor 1/2 for 5 epochs.
    want = [0.025] * 5 + [0.05] * 5
    got = run(ConstantLR(make_opt(), factor=1.0 / 2, total_iters=5), 10)
    assert got == approx([want, [10 * x for x in want]])
    # Defaults: factor 1/3, total_iters 5.
    sched = ConstantLR(make_opt(lrs=(0.3,)))
    assert (sched.factor, sched.total_iters) == (1 / 3, 5)
    assert run(sched, 7) == approx([[0.1] * 5 + [0.3] * 2])


def test_constant_lr_with_epoch_and_constant_epoch():
    # test_constantlr_with_epoch: step(epoch) before reading.
    sched = ConstantLR(make_opt(), factor=1.0 / 2, total_iters=5)
    got = []
    for epoch in range(10):
        sched.step(epoch)
        got.append(sched.get_last_lr()[0])
    assert got == approx([0.025] * 5 + [0.05] * 5)
    # test_constantlr_is_constant_for_constant_epoch
    for cls in (ConstantLR, PolynomialLR):
        sched = cls(make_opt())
        seen = set()
        for _ in range(10):
            sched.step(2)
            seen.add(sched.optimizer.param_groups[0]["lr"])
        assert len(seen) == 1


def test_constant_lr_factor_zero_returns_to_base():
    opt = make_opt(lrs=(0.2,))
    assert run(ConstantLR(opt, factor=0.0, total_iters=3), 5) == [[0.0, 0.0, 0.0, 0.2, 0.2]]


def test_polynomial_lr_values():
    # test_poly_lr: power 0.9 over 5 epochs, then 0.
    want = [(1.0 - x / 5) ** 0.9 * 0.05 for x in range(5)] + [0.0] * 5
    got = run(PolynomialLR(make_opt(), power=0.9, total_iters=5), 10)
    assert got == approx([want, [10 * x for x in want]])
    sched = PolynomialLR(make_opt(lrs=(1.0,)))  # defaults: 5 iters, power 1 (linear)
    assert run(sched, 7) == approx([[1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0]])


def test_multiplicative_lr_values():
    # test_multiplicative_lr: lambdas 0.9 and 0.8, lrs 0.05 and 0.4.
    sched = MultiplicativeLR(make_opt(lrs=(0.05, 0.4)), lr_lambda=[lambda e: 0.9, lambda e: 0.8])
    got = run(sched, 10)
    assert got == approx([[0.05 * 0.9**x for x in range(10)], [0.4 * 0.8**x for x in range(10)]])
    # The factor depends on the epoch; step(epoch) multiplies by lr_lambda(epoch).
    sched = MultiplicativeLR(make_opt(lrs=(1.0,)), lambda e: 1.0 / (e + 1))
    assert run(sched, 4) == approx([[1.0, 1 / 2, 1 / 6, 1 / 24]])
    sched.step(10)
    assert sched.last_epoch == 10 and sched.get_last_lr() == approx([1 / 24 / 5 / 11])


# Closed form vs chainable form: (class, kwargs, closed form f(base, t), m):
# the chainable form carries at most m roundings per step, so after t steps
# |lr - f| <= m (t + 1) u f (+ one rounding when f is 0).
CLOSED = [
    (ConstantLR, dict(factor=1.0 / 3, total_iters=4), lambda b, t: b * (1 / 3 if t < 4 else 1), 3),
    (ConstantLR, dict(factor=0.7, total_iters=300), lambda b, t: b * (0.7 if t < 300 else 1), 3),
    (PolynomialLR, dict(power=0.9), lambda b, t: b * (1 - min(t, 5) / 5) ** 0.9, 8),
    (
        PolynomialLR,
        dict(total_iters=997, power=2.5),
        lambda b, t: b * (1 - min(t, 997) / 997) ** 2.5,
        8,
    ),
    (PolynomialLR, dict(total_iters=50, power=0.0), lambda b, t: b, 1),
]


@pytest.mark.parametrize(("cls", "kw", "f", "m"), CLOSED)
def test_chainable_form_matches_closed_form(cls, kw, f, m):
    chained = cls(make_opt(), **kw)
    jumping = cls(make_opt(), **kw)
    for t in range(1001):
        if t:
            chained.step()
            jumping.step(t)
        for base, a, b in zip((0.05, 0.5), chained.get_last_lr(), jumping.get_last_lr()):
            want = f(base, t)
            assert abs(b - want) <= 4 * U * want, (t, b, want)
            assert abs(a - want) <= m * (t + 1) * U * want + U * base, (t, a, want)


# -- ChainedScheduler ---------------------------------------------------------


def test_chained_scheduler_values():
    # test_chained_lr1 .. test_chained_lr4
    opt = make_opt()
    sched = ChainedScheduler([StepLR(opt, gamma=0.1, step_size=3)])
    assert run(sched, 10)[0] == approx([0.05] * 3 + [0.005] * 3 + [0.0005] * 3 + [0.00005])
    opt = make_opt()
    sched = ChainedScheduler([LinearLR(opt, start_factor=0.4, total_iters=3)])
    assert run(sched, 10)[0] == approx([0.02, 0.03, 0.04] + [0.05] * 7)
    opt = make_opt()
    scheds = [
        LinearLR(opt, start_factor=0.4, total_iters=3),
        MultiStepLR(opt, milestones=[4, 8, 10], gamma=0.1),
    ]
    sched = ChainedScheduler(scheds)
    assert sched.get_last_lr() == scheds[-1].get_last_lr()  # before any step
    want = [0.02, 0.03, 0.04, 0.05] + [0.005] * 4 + [0.0005] * 2
    assert run(sched, 10)[0] == approx(want)
    assert sched.get_last_lr() == scheds[-1].get_last_lr()
    opt = make_opt()
    sched = ChainedScheduler(
        [
            ExponentialLR(opt, gamma=0.9),
            ConstantLR(opt, factor=0.2, total_iters=4),
            StepLR(opt, gamma=0.1, step_size=3),
        ]
    )
    want = (
        [0.05 * 0.2 * 0.9**x for x in range(3)]
        + [0.05 * 0.2 * 0.9**3 * 0.1]
        + [0.05 * 0.9**x * 0.1 for x in range(4, 6)]
        + [0.05 * 0.9**x * 0.01 for x in range(6, 9)]
    )
    assert run(sched, 9)[0] == approx(want)
    # test_chained_lr5: PolynomialLR then ConstantLR, both groups.
    opt = make_opt()
    sched = ChainedScheduler(
        [PolynomialLR(opt, power=0.9, total_iters=5), ConstantLR(opt, factor=0.1)], optimizer=opt
    )
    poly = [(1.0 - x / 5) ** 0.9 for x in range(5)] + [0.0] * 5
    assert run(sched, 10) == approx([[0.005 * p for p in poly], [0.05 * p for p in poly]])


def test_sequential_with_a_chain():
    # test_sequentiallr5: a ChainedScheduler as SequentialLR's first scheduler.
    opt = make_opt()
    chained = ChainedScheduler(
        [
            LinearLR(optimizer=opt, start_factor=0.1, total_iters=5),
            ConstantLR(optimizer=opt, factor=0.1, total_iters=5),
        ]
    )
    sched = SequentialLR(opt, [chained, ConstantLR(opt, factor=0.5, total_iters=5)], [5])
    want = [0.0005, 0.0014, 0.0023, 0.0032, 0.0041] + [0.025] * 5
    assert run(sched, 10)[0] == approx(want)
    # A chain after a milestone restarts from initial_lr with its factors at
    # epoch 0 (PyTorch raises NotImplementedError); one that comes first
    # starts with them too (PyTorch's ordinary step would give 0.9 * 0.5).
    opt = make_opt(lrs=(1.0,))
    first = ChainedScheduler([ExponentialLR(opt, 0.9), ConstantLR(opt, factor=0.5, total_iters=2)])
    second = ChainedScheduler([ConstantLR(opt, factor=0.5, total_iters=2), ExponentialLR(opt, 0.9)])
    sched = SequentialLR(opt, [first, ExponentialLR(opt, 0.5), second], milestones=[3, 5])
    want = [0.5, 0.45, 0.81, 1.0, 0.5, 0.5, 0.45, 0.81, 0.729]
    assert run(sched, 9) == approx([want])


def test_chain_composes_with_every_scheduler():
    # Factors multiply: a warm-up under a cosine, under a cyclic momentum.
    opt = make_opt(lrs=(1.0,), momentum=0.9)
    cyc = CyclicLR(opt, base_lr=0.1, max_lr=0.5, step_size_up=2)
    sched = ChainedScheduler([cyc, MultiplicativeLR(opt, lambda e: 0.5)])
    lrs, ms = run_cycle(sched, 5)
    assert lrs == approx([[0.1, 0.15, 0.25, 0.15, 0.05]])
    assert ms == approx([[0.9, 0.85, 0.8, 0.85, 0.9]])
    opt = make_opt(lrs=(1.0,))
    cos = CosineAnnealingLR(opt, T_max=10)
    sched = ChainedScheduler([LinearLR(opt, start_factor=0.5, total_iters=2), cos])
    lrs = run(sched, 12)[0]
    cosine = [(1 + math.cos(math.pi * t / 10)) / 2 for t in range(12)]
    factor = [0.5, 0.75] + [1.0] * 10
    assert lrs == approx([c * f for c, f in zip(cosine, factor)])


# -- ReduceLROnPlateau ----------------------------------------------------------

PLATEAU = [
    # test_reduce_lr_on_plateau1 .. 7: (kwargs, metrics, lr of group 0 after each step)
    (
        dict(threshold_mode="abs", mode="min", threshold=0.01, patience=5, cooldown=5),
        [10 - i * 0.0167 for i in range(10)],
        [0.5] * 10,
    ),
    (
        dict(patience=5, cooldown=0, threshold_mode="abs", mode="min", threshold=0.1),
        [10 - i * 0.0165 for i in range(22)],
        [0.5] * 6 + [0.05] * 7 + [0.005] * 7 + [0.0005] * 2,
    ),
    (
        dict(mode="max", patience=5, cooldown=5, threshold_mode="abs"),
        [-0.8] * 2 + [-0.234] * 20,
        [0.5] * (2 + 6) + [0.05] * (5 + 6) + [0.005] * 3,
    ),
    (
        dict(mode="max", patience=3, threshold_mode="rel", threshold=0.1),
        [1.5 * (1.025**i) for i in range(20)],
        [0.5] * 20,
    ),
    (
        dict(mode="max", threshold_mode="rel", threshold=0.1, patience=5, cooldown=5),
        [1.5 * (1.005**i) for i in range(20)],
        [0.5] * 6 + [0.05] * (5 + 6) + [0.005] * 3,
    ),
    (
        dict(mode="min", threshold_mode="rel", threshold=0.1),
        [1.5 * (0.85**i) for i in range(20)],
        [0.5] * 20,
    ),
    (
        dict(mode="min", threshold_mode="rel", threshold=0.1, patience=5, cooldown=5),
        [1] * 7 + [0.6] + [0.5] * 12,
        [0.5] * 6 + [0.05] * (5 + 6) + [0.005] * 3,
    ),
]


@pytest.mark.parametrize(("kw", "metrics", "want"), PLATEAU)
def test_reduce_lr_on_plateau_values(kw, metrics, want):
    opt = make_opt(lrs=(0.5, 0.5))
    sched = ReduceLROnPlateau(opt, **kw)
    assert sched.get_last_lr() == [0.5, 0.5]  # before any step
    got = []
    for m in metrics:
        sched.step(m)
        got.append(opt.param_groups[0]["lr"])
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
    assert got == approx(want)


def test_reduce_lr_on_plateau_min_lr_list_and_eps():
    # test_reduce_lr_on_plateau8: a min_lr per group.
    opt = make_opt(lrs=(0.5, 0.5))
    sched = ReduceLROnPlateau(
        opt,
        mode="max",
        threshold_mode="rel",
        min_lr=[0.4, 0.3],
        threshold=0.1,
        patience=5,
        cooldown=5,
    )
    got = [[], []]
    for i in range(20):
        sched.step(1.5 * (1.005**i))
        for g, lrs in zip(opt.param_groups, got):
            lrs.append(g["lr"])
    assert got == [[0.5] * 6 + [0.4] * 14, [0.5] * 6 + [0.3] * 14]
    # A reduction of eps or less is ignored.
    for eps, want in [(1e-7, [1e-7, 0.5]), (0.0, [5e-8, 0.5])]:
        sched = ReduceLROnPlateau(make_opt(lrs=(1e-7, 1.0)), factor=0.5, patience=0, eps=eps)
        sched.step(1.0)
        sched.step(2.0)
        assert sched.get_last_lr() == want
    # Defaults, as PyTorch's.
    sched = ReduceLROnPlateau(make_opt())
    assert (sched.mode, sched.factor, sched.patience, sched.threshold) == ("min", 0.1, 10, 1e-4)
    assert (sched.threshold_mode, sched.cooldown, sched.min_lrs, sched.eps) == (
        "rel",
        0,
        [0, 0],
        1e-8,
    )
    assert sched.best == math.inf and sched.last_epoch == 0


def test_reduce_lr_on_plateau_nan_metric_is_a_bad_epoch():
    sched = ReduceLROnPlateau(make_opt(lrs=(1.0,)), patience=1)
    sched.step(float("nan"))  # the best stays inf
    assert (sched.best, sched.num_bad_epochs) == (math.inf, 1)
    sched.step(1.0)
    sched.step(float("nan"))
    assert sched.get_last_lr() == [1.0] and sched.num_bad_epochs == 1
    sched.step(np.float32("nan"))
    assert sched.get_last_lr() == [0.1] and sched.best == 1.0
    sched.step(np.array(0.5))  # a 0-d array is a number
    assert sched.best == 0.5 and sched.last_epoch == 5
    for bad in ("1.0", None, [1.0], True, np.ones(2)):
        state = sched.state_dict()
        with pytest.raises(TypeError, match="metrics"):
            sched.step(bad)
        assert sched.state_dict() == state


@pytest.mark.parametrize("min_lr", ["scalar", "list"])
def test_add_param_group_does_not_break_reduce_lr_on_plateau(min_lr):
    opt = make_opt(lrs=(0.5, 0.5))
    sched = ReduceLROnPlateau(
        opt,
        mode="min",
        threshold_mode="rel",
        threshold=0.1,
        patience=5,
        cooldown=5,
        min_lr=0 if min_lr == "scalar" else [1e-5, 1e-4],
    )
    metrics = [1] * 7 + [0.6] + [0.5] * 12
    want = [0.5] * 6 + [0.05] * (5 + 6) + [0.005] * 3
    got = []
    for epoch, m in enumerate(metrics):
        if epoch == 8:
            opt.add_param_group({"params": [np.zeros(2)], "lr": 0.05})
            if min_lr == "list":
                sched.min_lrs.append(1e-6)
        sched.step(m)
        got.append(opt.param_groups[0]["lr"])
    assert got == approx(want)
    assert opt.param_groups[2]["lr"] == approx(0.005)


def test_add_param_group_errors_reduce_lr_on_plateau():
    opt = make_opt()
    sched = ReduceLROnPlateau(opt, threshold=1e-5, patience=0, min_lr=[1e-5, 1e-4])
    opt.add_param_group({"params": [np.zeros(2)], "lr": 0.05})
    sched.step(1)
    state, groups = sched.state_dict(), hypers(opt)
    with pytest.raises(RuntimeError, match="The number of param groups in the"):
        sched.step(1.3)
    assert sched.state_dict() == state and hypers(opt) == groups


def test_reduce_lr_on_plateau_checkpoint(tmp_path):
    # best = inf before the first step, default_min_lr = None with a list.
    for min_lr, steps in [([0.01, 0.02], 0), (0.001, 4)]:
        opt = make_opt()
        sched = ReduceLROnPlateau(opt, patience=1, min_lr=min_lr)
        for m in [3.0, 2.0, 2.5, 2.5][:steps]:
            sched.step(m)
        params = [p for g in opt.param_groups for p in g["params"]]
        checkpoint.save(tmp_path / "p.ckpt", params, optimizer=opt, scheduler=sched)
        opt2 = make_opt(lrs=(1.0, 1.0))
        sched2 = ReduceLROnPlateau(opt2, mode="max", min_lr=0.5)
        params2 = [p for g in opt2.param_groups for p in g["params"]]
        checkpoint.load(tmp_path / "p.ckpt", params2, optimizer=opt2, scheduler=sched2)
        assert sched2.state_dict() == sched.state_dict()
        for m in [2.5, 2.5, 1.0, 3.0]:
            sched.step(m)
            sched2.step(m)
            assert sched2.get_last_lr() == sched.get_last_lr()
            assert hypers(opt2) == hypers(opt)


def test_reduce_lr_on_plateau_state_dict():
    # test_reduce_lr_on_plateau_state_dict: loads into one built otherwise.
    opt = make_opt()
    sched = ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=2)
    for score in [1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 5.0, 3.0, 2.0, 1.0]:
        sched.step(score)
    copy = ReduceLROnPlateau(make_opt(), mode="max", factor=0.5, patience=10, min_lr=[0.1, 0.2])
    copy.load_state_dict(sched.state_dict())
    assert copy.state_dict() == sched.state_dict()
    assert (copy.mode, copy.mode_worse, copy.default_min_lr) == ("min", math.inf, 0.0)
    opt2 = make_opt()
    opt2.load_state_dict(opt.state_dict())
    copy.optimizer = opt2
    for score in [1.5, 2.0, 0.2, 3.0, 3.0, 3.0]:
        sched.step(score)
        copy.step(score)
        assert copy.state_dict() == sched.state_dict()
    assert plain(sched.state_dict())
    good = sched.state_dict()
    for bad in (
        {**good, "mode_worse": -math.inf},
        {**good, "mode": "avg"},
        {**good, "factor": 1.0},
        {**good, "best": float("nan")},
        {**good, "num_bad_epochs": -1},
        {**good, "min_lrs": [0.1, -1.0]},
        {**good, "_last_lr": [0.1]},
        {k: v for k, v in good.items() if k != "best"},
    ):
        before = copy.state_dict()
        with pytest.raises(ValueError):
            copy.load_state_dict(bad)
        assert copy.state_dict() == before


# -- CyclicLR -----------------------------------------------------------------

# PyTorch's expected values (test_cycle_lr_triangular2_mode*).
# fmt: off
TRI2_LR = [1, 2, 3, 4, 5, 4, 3, 2, 1, 1.5, 2.0, 2.5, 3.0, 2.5, 2.0, 1.5, 1, 1.25, 1.50, 1.75,
           2.00, 1.75]
TRI2_M = [5.0, 4.0, 3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0, 4.5, 4.0, 3.5, 3.0, 3.5, 4.0, 4.5, 5.0,
          4.75, 4.5, 4.25, 4.0, 4.25]
XS = [0, 0.25, 0.5, 0.75, 1, 0.75, 0.50, 0.25, 0, 0.25, 0.5, 0.75, 1]
XS_UP_DOWN = [0.0, 0.5, 1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0, 0.5, 1.0, 5 / 6, 4 / 6]
TRI2_UP_DOWN_LR = [1.0, 3.0, 5.0, 13 / 3, 11 / 3, 9 / 3, 7 / 3, 5 / 3, 1.0, 2.0, 3.0, 8 / 3, 7 / 3,
                   6 / 3, 5 / 3, 4 / 3, 1.0, 3 / 2, 2.0, 11 / 6, 10 / 6, 9 / 6, 8 / 6, 7 / 6]
TRI2_UP_DOWN_M = [5.0, 3.0, 1.0, 5 / 3, 7 / 3, 3.0, 11 / 3, 13 / 3, 5.0, 4.0, 3.0, 10 / 3, 11 / 3,
                  4.0, 13 / 3, 14 / 3, 5.0, 4.5, 4.0, 25 / 6, 13 / 3, 4.5, 14 / 3, 29 / 6]
# fmt: on

CYCLIC = [
    # PyTorch's test_cycle_lr_*: (kwargs, lr targets, momentum targets) per group.
    (
        dict(base_lr=1, max_lr=5, step_size_up=4, base_momentum=1, max_momentum=5),
        [[1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]] * 2,
        [[5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3]] * 2,
    ),
    (
        dict(base_lr=1, max_lr=5, step_size_up=4, cycle_momentum=False),
        [[1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]] * 2,
        [[0] * 11] * 2,
    ),
    (
        dict(
            base_lr=1, max_lr=5, step_size_up=4, base_momentum=1, max_momentum=5, mode="triangular2"
        ),
        [TRI2_LR] * 2,
        [TRI2_M] * 2,
    ),
    (
        dict(
            base_lr=1,
            max_lr=5,
            step_size_up=4,
            base_momentum=1,
            max_momentum=5,
            mode="exp_range",
            gamma=0.9,
        ),
        [[1 + x * 4 * 0.9**i for i, x in enumerate(XS)]] * 2,
        [[5 - x * 4 * 0.9**i for i, x in enumerate(XS)]] * 2,
    ),
    (
        dict(
            base_lr=[1, 2], max_lr=[5, 6], step_size_up=4, base_momentum=[1, 2], max_momentum=[5, 6]
        ),
        [[1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3], [2, 3, 4, 5, 6, 5, 4, 3, 2, 3, 4]],
        [[5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3], [6, 5, 4, 3, 2, 3, 4, 5, 6, 5, 4]],
    ),
    (
        dict(
            base_lr=[1, 3],
            max_lr=[5, 7],
            step_size_up=4,
            base_momentum=[1, 3],
            max_momentum=[5, 7],
            mode="triangular2",
        ),
        [TRI2_LR, [x + 2 for x in TRI2_LR]],
        [TRI2_M, [x + 2 for x in TRI2_M]],
    ),
    (
        dict(
            base_lr=[1, 5],
            max_lr=[5, 12],
            step_size_up=4,
            base_momentum=[1, 5],
            max_momentum=[5, 12],
            mode="exp_range",
            gamma=0.9,
        ),
        [
            [1 + x * 4 * 0.9**i for i, x in enumerate(XS)],
            [5 + x * 7 * 0.9**i for i, x in enumerate(XS)],
        ],
        [
            [5 - x * 4 * 0.9**i for i, x in enumerate(XS)],
            [12 - x * 7 * 0.9**i for i, x in enumerate(XS)],
        ],
    ),
    (
        dict(
            base_lr=1, max_lr=5, step_size_up=4, step_size_down=6, base_momentum=1, max_momentum=5
        ),
        [[1.0, 2.0, 3.0, 4.0, 5.0, 13 / 3, 11 / 3, 9 / 3, 7 / 3, 5 / 3, 1.0]] * 2,
        [[5.0, 4.0, 3.0, 2.0, 1.0, 5 / 3, 7 / 3, 3.0, 11 / 3, 13 / 3, 5.0]] * 2,
    ),
    (
        dict(
            base_lr=[1, 3],
            max_lr=[5, 7],
            step_size_up=2,
            step_size_down=6,
            base_momentum=[1, 3],
            max_momentum=[5, 7],
            mode="triangular2",
        ),
        [TRI2_UP_DOWN_LR, [x + 2 for x in TRI2_UP_DOWN_LR]],
        [TRI2_UP_DOWN_M, [x + 2 for x in TRI2_UP_DOWN_M]],
    ),
    (
        dict(
            base_lr=1,
            max_lr=5,
            step_size_up=2,
            step_size_down=6,
            base_momentum=1,
            max_momentum=5,
            mode="exp_range",
            gamma=0.9,
        ),
        [[1 + x * 4 * 0.9**i for i, x in enumerate(XS_UP_DOWN)]] * 2,
        [[5 - x * 4 * 0.9**i for i, x in enumerate(XS_UP_DOWN)]] * 2,
    ),
    # A scale_fn, given the cycle or the iteration (no PyTorch test: the
    # values of PyTorch's formula worked out by hand).
    (
        dict(
            base_lr=1,
            max_lr=5,
            step_size_up=2,
            scale_fn=lambda x: 0.5**x,
            scale_mode="cycle",
            base_momentum=0.8,
            max_momentum=0.9,
        ),
        [[1, 2, 3, 2, 1, 1.5, 2, 1.5, 1]] * 2,
        [[0.9, 0.875, 0.85, 0.875, 0.9, 0.8875, 0.875, 0.8875, 0.9]] * 2,
    ),
    (
        dict(
            base_lr=1,
            max_lr=5,
            step_size_up=2,
            scale_fn=lambda x: 0.5**x,
            scale_mode="iterations",
            base_momentum=0.8,
            max_momentum=0.9,
        ),
        [[1, 2, 2, 1.25, 1, 1.0625, 1.0625, 1.015625, 1]] * 2,
        [[0.9, 0.875, 0.875, 0.89375, 0.9, 0.8984375, 0.8984375, 0.899609375, 0.9]] * 2,
    ),
]


@pytest.mark.parametrize(("kw", "lrs", "ms"), CYCLIC)
def test_cyclic_lr_values(kw, lrs, ms):
    sched = CyclicLR(make_opt(), **kw)
    got_lrs, got_ms = run_cycle(sched, len(lrs[0]))
    assert got_lrs == approx(lrs)
    assert got_ms == approx(ms)


def test_cyclic_lr_modes_and_momentum_keys():
    opt = make_opt(momentum=0.5)
    # The built-in modes set scale_mode; PyTorch's defaults.
    sched = CyclicLR(opt, base_lr=0.01, max_lr=0.1, mode="exp_range", scale_mode="cycle")
    assert sched.scale_mode == "iterations"
    sched = CyclicLR(opt, base_lr=0.01, max_lr=0.1, mode="triangular2", scale_mode="iterations")
    assert sched.scale_mode == "cycle"
    assert (sched.total_size, sched.step_ratio, sched.gamma) == (4000.0, 0.5, 1.0)
    assert (sched.base_momentums, sched.max_momentums) == ([0.8, 0.8], [0.9, 0.9])
    # test_constant_initial_params_cyclelr: the groups' keys stay put.
    opt = SGD([np.zeros(1)], lr=0.1)
    sched = CyclicLR(opt, base_lr=0.1, max_lr=0.2, base_momentum=0.8, max_momentum=0.9)
    group = opt.param_groups[0]
    assert (group["initial_lr"], group["max_momentum"], group["base_momentum"]) == (0.1, 0.9, 0.8)
    for i in range(2):
        sched.step(i)
        assert (group["initial_lr"], group["max_momentum"], group["base_momentum"]) == (
            0.1,
            0.9,
            0.8,
        )
        assert sched.base_lrs == [0.1] and sched.max_lrs == [0.2]
    # As in PyTorch, the step to epoch 0 starts from an initial_lr set before.
    opt = SGD([np.zeros(1)], lr=0.3)
    StepLR(opt, step_size=2)
    sched = CyclicLR(opt, base_lr=0.1, max_lr=0.2, step_size_up=2, cycle_momentum=False)
    assert sched.get_last_lr() == [0.3] and sched.base_lrs == [0.1]
    sched.step()
    assert sched.get_last_lr() == approx([0.15])
    # RMSprop cycles its momentum too.
    opt = RMSprop([np.zeros(2)], lr=0.1, momentum=0.3)
    CyclicLR(opt, base_lr=0.1, max_lr=0.2, step_size_up=2).step()
    assert opt.param_groups[0]["momentum"] == approx(0.85)


def test_cyclic_lr_with_adam_and_without_momentum():
    # test_cycle_lr_with_momentumless_optimizer: Adam, cycle_momentum=False.
    opt = make_opt(cls=Adam)
    sched = CyclicLR(opt, base_lr=1, max_lr=5, step_size_up=4, cycle_momentum=False)
    lrs, ms = run_cycle(sched, 11)
    assert lrs == approx([[1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3]] * 2)
    assert ms == [[0.9] * 11] * 2 and "max_momentum" not in opt.param_groups[0]
    # test_cycle_lr_cycle_momentum_with_beta1_optimizer: betas[0] cycles, a new tuple.
    opt = make_opt(cls=Adam, betas=(0.5, 0.99))
    sched = CyclicLR(opt, base_lr=1, max_lr=5, step_size_up=2, base_momentum=0.6, max_momentum=0.8)
    assert opt.param_groups[0]["betas"] == (0.8, 0.99)
    sched.step()
    assert opt.param_groups[0]["betas"] == approx((0.7, 0.99))
    assert type(opt.param_groups[0]["betas"]) is tuple
    opt.step([np.ones(3), np.ones(3)])  # the optimizer accepts what was written
    # test_cycle_lr_cycle_momentum_fail_with_momentumless_optimizer
    with pytest.raises(ValueError, match="momentum or beta1"):
        CyclicLR(make_opt(cls=Adagrad), base_lr=1, max_lr=5, cycle_momentum=True)
    CyclicLR(make_opt(cls=Adagrad), base_lr=1, max_lr=5, cycle_momentum=False)


def test_cyclic_lr_scale_fn_state_dict():
    # test_cycle_lr_state_dict_picklable / _scale_fn_restored_from_state_dict
    opt = make_opt(cls=Adam)
    sched = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False)
    assert sched.state_dict()["_scale_fn_custom"] is None

    def half(_):
        return 0.5

    sched = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False, scale_fn=half)
    assert sched.state_dict()["_scale_fn_custom"] is None

    class ScaleFn:
        def __init__(self, x):
            self.x = x

        def __call__(self, _):
            return self.x

    fn = ScaleFn(0.5)
    sched = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False, scale_fn=fn, mode="any")
    d = sched.state_dict()
    assert d["_scale_fn_custom"] == {"x": 0.5} and plain(d)
    other = ScaleFn(0.25)
    restored = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False, scale_fn=other)
    restored.load_state_dict(d)
    assert other.x == 0.5 and restored._scale_fn_custom is other and restored.mode == "any"
    # A built-in mode is restored with its scale_mode.
    tri2 = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False, mode="triangular2")
    exp = CyclicLR(opt, base_lr=1, max_lr=5, cycle_momentum=False, mode="exp_range")
    exp.load_state_dict(tri2.state_dict())
    assert (exp.mode, exp.scale_mode, exp._scale_fn_custom) == ("triangular2", "cycle", None)
    with pytest.raises(ValueError, match="_scale_fn_custom"):
        exp.load_state_dict({**d, "mode": "triangular"})  # a callable's state, exp has none


def test_cosine_then_cyclic():
    # test_cosine_then_cyclic (pytorch#21965)
    opt = SGD([np.zeros(2)], lr=0.5)
    cosine = CosineAnnealingLR(opt, T_max=20, eta_min=0.1)
    cyclic = CyclicLR(opt, base_lr=0.1, max_lr=0.3, step_size_up=1, step_size_down=3)
    for i in range(40):
        if i <= cosine.T_max:
            cosine.step()
        else:
            cyclic.step()
    assert opt.param_groups[0]["lr"] <= 0.3


def test_triangular2_has_no_overflow():
    sched = CyclicLR(
        make_opt(lrs=(1.0,)),
        base_lr=0.0,
        max_lr=1.0,
        step_size_up=1,
        mode="triangular2",
        cycle_momentum=False,
    )
    sched.step(2 * 1030 + 1)  # cycle 1031: PyTorch's 2.0 ** 1030 overflows
    assert sched.get_last_lr() == [0.5**1030]


# -- OneCycleLR ---------------------------------------------------------------


def annealing_cos(start, end, pct):
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


ONECYCLE = [
    # test_onecycle_lr_linear_annealing
    (
        dict(
            max_lr=25,
            final_div_factor=2,
            base_momentum=1,
            max_momentum=22,
            total_steps=10,
            anneal_strategy="linear",
        ),
        [1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5],
        [22, 11.5, 1, 4, 7, 10, 13, 16, 19, 22],
    ),
    # test_onecycle_lr_linear_annealing_three_phases
    (
        dict(
            max_lr=25,
            div_factor=25,
            base_momentum=1,
            max_momentum=22,
            total_steps=10,
            anneal_strategy="linear",
            pct_start=0.4,
            final_div_factor=4,
            three_phase=True,
        ),
        [1, 9, 17, 25, 17, 9, 1, 0.75, 0.5, 0.25],
        [22, 15, 8, 1, 8, 15, 22, 22, 22, 22],
    ),
    # test_onecycle_lr_cosine_annealing
    (
        dict(max_lr=25, final_div_factor=2, base_momentum=1, max_momentum=22, total_steps=10),
        [1, 13, 25] + [annealing_cos(25, 0.5, k / 7) for k in range(1, 7)] + [0.5],
        [22, 11.5, 1] + [annealing_cos(1, 22, k / 7) for k in range(1, 7)] + [22],
    ),
    # three phases, cosine, by epochs and steps per epoch (hand-computed)
    (
        dict(
            max_lr=10,
            div_factor=10,
            final_div_factor=10,
            epochs=2,
            steps_per_epoch=5,
            pct_start=0.25,
            three_phase=True,
            base_momentum=0.5,
            max_momentum=0.9,
        ),
        [1, annealing_cos(1, 10, 2 / 3), annealing_cos(10, 1, 1 / 3), 1]
        + [annealing_cos(1, 0.1, k / 6) for k in range(1, 7)],
        [0.9, annealing_cos(0.9, 0.5, 2 / 3), annealing_cos(0.5, 0.9, 1 / 3)] + [0.9] * 7,
    ),
]


@pytest.mark.parametrize(("kw", "lrs", "ms"), ONECYCLE)
def test_one_cycle_lr_values(kw, lrs, ms):
    opt = make_opt()
    sched = OneCycleLR(opt, **kw)
    got_lrs, got_ms = run_cycle(sched, 10)
    assert got_lrs == approx([lrs, lrs])
    assert got_ms == approx([ms, ms])
    group = opt.param_groups[0]
    assert (group["max_lr"], group["initial_lr"]) == (kw["max_lr"], lrs[0])
    assert (group["max_momentum"], group["base_momentum"]) == (ms[0], kw["base_momentum"])


def test_one_cycle_lr_with_adam_betas():
    # test_cycle_lr_with_adam, with the momenta / 100 (betas[0] must be < 1).
    opt = make_opt(cls=Adam)
    sched = OneCycleLR(
        opt,
        max_lr=25,
        final_div_factor=2,
        base_momentum=0.01,
        max_momentum=0.22,
        total_steps=10,
        anneal_strategy="linear",
    )
    lrs, ms = run_cycle(sched, 10)
    assert lrs == approx([[1, 13, 25, 21.5, 18, 14.5, 11, 7.5, 4, 0.5]] * 2)
    m = [22, 11.5, 1, 4, 7, 10, 13, 16, 19, 22]
    assert ms == approx([[x / 100 for x in m]] * 2)
    assert all(g["betas"][1] == 0.999 and type(g["betas"]) is tuple for g in opt.param_groups)


def test_one_cycle_lr_end_and_defaults():
    # Step total_steps continues the last phase (PyTorch allows it): the cosine
    # comes back up a little; linear would go below 0 (PyTorch: lr = -3).
    opt = make_opt()
    sched = OneCycleLR(opt, max_lr=25, final_div_factor=2, total_steps=10)
    run(sched, 10)
    assert sched.last_epoch == 10 and sched.get_last_lr() == approx(
        [annealing_cos(25, 0.5, 8 / 7)] * 2
    )
    sched = OneCycleLR(
        make_opt(), max_lr=25, final_div_factor=2, total_steps=10, anneal_strategy="linear"
    )
    run(sched, 10)
    assert sched.get_last_lr() == [0.0, 0.0]
    state, groups = sched.state_dict(), hypers(sched.optimizer)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()
    assert sched.state_dict() == state and hypers(sched.optimizer) == groups
    # PyTorch's defaults; test_constant_initial_params_onecyclelr.
    opt = SGD([np.zeros(1)], lr=0.1)
    sched = OneCycleLR(opt, max_lr=0.1, total_steps=10)
    group = dict(opt.param_groups[0])
    assert group["initial_lr"] == 0.1 / 25 and group["min_lr"] == 0.1 / 25 / 1e4
    assert (group["max_momentum"], group["base_momentum"], group["momentum"]) == (0.95, 0.85, 0.95)
    assert sched._anneal_func_type == "cos" and sched.total_steps == 10
    for i in range(2):
        sched.step(i)
        for k in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert opt.param_groups[0][k] == group[k]


def test_step_epoch_of_cyclic_schedules_equals_stepping():
    for make in (
        lambda o: CyclicLR(
            o,
            base_lr=0.1,
            max_lr=1.0,
            step_size_up=3,
            step_size_down=5,
            mode="exp_range",
            gamma=0.99,
        ),
        lambda o: OneCycleLR(o, max_lr=1.0, total_steps=50, three_phase=True),
    ):
        stepping = make(make_opt(momentum=0.9))
        jumping = make(make_opt(momentum=0.9))
        want = trace(stepping, 50)
        for t in [*range(50, -1, -7), *range(51)]:
            jumping.step(t)
            assert trace(jumping, 0)[0] == want[t], t


# -- state dicts ---------------------------------------------------------------


class Decay:
    def __init__(self, rate):
        self.rate = rate

    def __call__(self, t):
        return self.rate


BUILDERS = {
    "constant": lambda o: ConstantLR(o, factor=0.25, total_iters=7),
    "polynomial": lambda o: PolynomialLR(o, total_iters=15, power=1.5),
    "multiplicative": lambda o: MultiplicativeLR(o, [lambda t: 0.9, Decay(0.8)]),
    "cyclic": lambda o: CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="triangular2"),
    "cyclic_scale_fn": lambda o: CyclicLR(
        o,
        base_lr=0.01,
        max_lr=0.1,
        step_size_up=2,
        step_size_down=3,
        scale_fn=Decay(0.5),
        scale_mode="iterations",
    ),
    "one_cycle": lambda o: OneCycleLR(
        o, max_lr=[0.1, 0.2], total_steps=25, three_phase=True, anneal_strategy="linear"
    ),
    "chained": lambda o: ChainedScheduler(
        [ConstantLR(o, factor=0.5, total_iters=4), ExponentialLR(o, gamma=0.9)]
    ),
    "sequential_chain": lambda o: SequentialLR(
        o,
        [
            ExponentialLR(o, gamma=0.8),
            ChainedScheduler([LinearLR(o, start_factor=0.2, total_iters=4), StepLR(o, 3)]),
        ],
        milestones=[5],
    ),
    "chained_cyclic": lambda o: ChainedScheduler(
        [CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4), MultiplicativeLR(o, Decay(0.95))]
    ),
}


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
@pytest.mark.parametrize("name", list(BUILDERS))
def test_state_dict_resume_is_identical(name, opt_cls, tmp_path):
    build = BUILDERS[name]
    kw = {"momentum": 0.9} if opt_cls is SGD else {}
    opt = make_opt(lrs=(0.05, 0.5), cls=opt_cls, **kw)
    want = trace(build(opt), 20)

    opt = make_opt(lrs=(0.05, 0.5), cls=opt_cls, **kw)
    sched = build(opt)
    for _ in range(7):
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    assert plain(saved), saved
    opt2 = make_opt(lrs=(3.0, 4.0), cls=opt_cls, **kw)
    sched2 = build(opt2)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    assert sched2.state_dict() == saved
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert trace(sched2, 13) == want[7:]

    # The same through a checkpoint file.
    params = [p for g in opt.param_groups for p in g["params"]]
    checkpoint.save(tmp_path / "run.ckpt", params, optimizer=opt, scheduler=sched)
    opt3 = make_opt(lrs=(3.0, 4.0), cls=opt_cls, **kw)
    sched3 = build(opt3)
    params3 = [p for g in opt3.param_groups for p in g["params"]]
    checkpoint.load(tmp_path / "run.ckpt", params3, optimizer=opt3, scheduler=sched3)
    assert trace(sched3, 13) == want[7:]


@pytest.mark.parametrize(
    "build",
    [
        lambda o, **kw: ConstantLR(o, **kw),
        lambda o, **kw: PolynomialLR(o, **kw),
        lambda o, **kw: MultiplicativeLR(o, lambda e: 0.95, **kw),
        lambda o, **kw: CyclicLR(o, base_lr=0.01, max_lr=0.1, **kw),
        lambda o, **kw: OneCycleLR(o, max_lr=0.01, total_steps=10, **kw),
    ],
)
def test_resume_with_last_epoch(build):
    # test_lr_scheduler_checkpoint: resume from the optimizer's state dict.
    opt = AdamW([np.zeros(3)])
    sched = build(opt)
    opt.step([np.ones(3)])
    sched.step()
    opt2 = AdamW([np.zeros(3)])
    opt2.load_state_dict(opt.state_dict())
    sched2 = build(opt2, last_epoch=0)
    assert sched2.get_last_lr() == [opt.param_groups[0]["lr"]]
    assert opt2.param_groups[0]["betas"] == opt.param_groups[0]["betas"]
    with pytest.raises(ValueError, match=r"initial_lr|max_lr"):
        build(AdamW([np.zeros(3)]), last_epoch=0)


# -- argument checks -----------------------------------------------------------

CYC = dict(base_lr=0.01, max_lr=0.1)
ONE = dict(max_lr=0.1, total_steps=10)
BAD_ARGS = [
    (ConstantLR, dict(factor=1.5), ValueError, "factor"),
    (ConstantLR, dict(factor=-0.1), ValueError, "factor"),
    (ConstantLR, dict(factor="0.5"), TypeError, "factor"),
    (ConstantLR, dict(total_iters=0), ValueError, "total_iters"),
    (ConstantLR, dict(total_iters=2.5), TypeError, "total_iters"),
    (ConstantLR, dict(last_epoch=-2), ValueError, "last_epoch"),
    (PolynomialLR, dict(total_iters=0), ValueError, "total_iters"),
    (PolynomialLR, dict(power=-1.0), ValueError, "power"),
    (PolynomialLR, dict(power=float("nan")), ValueError, "power"),
    (PolynomialLR, dict(power="1"), TypeError, "power"),
    (MultiplicativeLR, dict(lr_lambda=0.95), TypeError, "lr_lambda"),
    (MultiplicativeLR, dict(lr_lambda=[0.95, 0.95]), TypeError, "lr_lambda"),
    (MultiplicativeLR, dict(lr_lambda=[lambda e: 1.0]), ValueError, "lr_lambdas"),
    (ReduceLROnPlateau, dict(mode="CATS"), ValueError, "mode"),
    (ReduceLROnPlateau, dict(mode=1), TypeError, "mode"),
    (ReduceLROnPlateau, dict(factor=1.0), ValueError, "factor"),
    (ReduceLROnPlateau, dict(factor=-0.1), ValueError, "factor"),
    (ReduceLROnPlateau, dict(patience=-1), ValueError, "patience"),
    (ReduceLROnPlateau, dict(patience=1.5), TypeError, "patience"),
    (ReduceLROnPlateau, dict(threshold=-1e-4), ValueError, "threshold"),
    (ReduceLROnPlateau, dict(threshold_mode="relative"), ValueError, "threshold_mode"),
    (ReduceLROnPlateau, dict(cooldown=-1), ValueError, "cooldown"),
    (ReduceLROnPlateau, dict(min_lr=[0.1]), ValueError, "min_lr"),
    (ReduceLROnPlateau, dict(min_lr=[0.1, -1.0]), ValueError, r"min_lr\[1\]"),
    (ReduceLROnPlateau, dict(min_lr=-1.0), ValueError, "min_lr"),
    (ReduceLROnPlateau, dict(eps="x"), TypeError, "eps"),
    (CyclicLR, dict(CYC, mode="CATS"), ValueError, "mode"),
    (CyclicLR, dict(base_lr=[0.01], max_lr=0.1), ValueError, "base_lr"),
    (CyclicLR, dict(base_lr=0.01, max_lr=-0.1), ValueError, "max_lr"),
    (CyclicLR, dict(base_lr="a", max_lr=0.1), TypeError, "base_lr"),
    (CyclicLR, dict(CYC, step_size_up=0), ValueError, "step_size_up"),
    (CyclicLR, dict(CYC, step_size_down=-1), ValueError, "step_size_down"),
    (CyclicLR, dict(CYC, gamma=-1.0), ValueError, "gamma"),
    (CyclicLR, dict(CYC, scale_fn=3), TypeError, "scale_fn"),
    (CyclicLR, dict(CYC, scale_mode="epochs"), ValueError, "scale_mode"),
    (CyclicLR, dict(CYC, cycle_momentum=1), TypeError, "cycle_momentum"),
    (CyclicLR, dict(CYC, base_momentum=-0.1), ValueError, "base_momentum"),
    (CyclicLR, dict(CYC, max_momentum=[0.9]), ValueError, "max_momentum"),
    (CyclicLR, dict(CYC, last_epoch=-3), ValueError, "last_epoch"),
    (OneCycleLR, dict(max_lr=0.1), ValueError, "total_steps"),
    (OneCycleLR, dict(max_lr=0.1, epochs=3), ValueError, "steps_per_epoch"),
    (OneCycleLR, dict(max_lr=0.1, total_steps=0), ValueError, "total_steps"),
    (OneCycleLR, dict(max_lr=0.1, total_steps=2.5), TypeError, "total_steps"),
    (OneCycleLR, dict(max_lr=0.1, epochs=0, steps_per_epoch=5), ValueError, "epochs"),
    (OneCycleLR, dict(max_lr=0.1, epochs=2, steps_per_epoch=-5), ValueError, "steps_per_epoch"),
    (OneCycleLR, dict(ONE, pct_start=1.1), ValueError, "pct_start"),
    (OneCycleLR, dict(ONE, pct_start="0.3"), TypeError, "pct_start"),
    (OneCycleLR, dict(ONE, anneal_strategy="CATS"), ValueError, "anneal_strategy"),
    (OneCycleLR, dict(max_lr=[0.1], total_steps=10), ValueError, "max_lr"),
    (OneCycleLR, dict(ONE, div_factor=0.0), ValueError, "div_factor"),
    (OneCycleLR, dict(ONE, final_div_factor=-1.0), ValueError, "final_div_factor"),
    (OneCycleLR, dict(ONE, three_phase="yes"), TypeError, "three_phase"),
    (OneCycleLR, dict(ONE, base_momentum=-1.0), ValueError, "base_momentum"),
    (OneCycleLR, dict(ONE, pct_start=0.1), ValueError, "pct_start"),  # a phase of 0 steps
]


@pytest.mark.parametrize(("cls", "kw", "exc", "name"), BAD_ARGS)
def test_bad_arguments_raise_naming_them_and_change_nothing(cls, kw, exc, name):
    opt = make_opt(momentum=0.9)
    before = hypers(opt)
    with pytest.raises(exc, match=name):
        cls(opt, **kw)
    assert hypers(opt) == before


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda o: CyclicLR(o, **CYC), "momentum or beta1"),
        (lambda o: OneCycleLR(o, **ONE), "momentum or beta1"),
        (lambda o: CyclicLR(o, **CYC, cycle_momentum=False, scale_fn=1.0), "scale_fn"),
    ],
)
def test_cycle_momentum_needs_momentum_or_betas(make, match):
    opt = make_opt(cls=Adagrad)
    before = hypers(opt)
    with pytest.raises((ValueError, TypeError), match=match):
        make(opt)
    assert hypers(opt) == before


def test_betas_momenta_must_be_below_one():
    for cls, kw in ((CyclicLR, CYC), (OneCycleLR, ONE)):
        opt = make_opt(cls=Adam)
        before = hypers(opt)
        with pytest.raises(ValueError, match="max_momentum"):
            cls(opt, **kw, max_momentum=1.0)
        with pytest.raises(ValueError, match=r"base_momentum\[1\]"):
            cls(opt, **kw, base_momentum=[0.5, 1.5])
        assert hypers(opt) == before
        cls(make_opt(), **kw, max_momentum=5.0)  # SGD's momentum may be >= 1


def test_chained_scheduler_checks():
    opt, other = make_opt(), make_opt()
    with pytest.raises(ValueError, match="at least one"):
        ChainedScheduler([])
    with pytest.raises(TypeError, match=r"schedulers\[1\]"):
        ChainedScheduler([ExponentialLR(opt, 0.9), object()])
    with pytest.raises(TypeError, match="schedulers"):
        ChainedScheduler(ExponentialLR(opt, 0.9))
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        ChainedScheduler([ExponentialLR(opt, 0.9), ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="same optimizer"):
        ChainedScheduler([ExponentialLR(opt, 0.9), ExponentialLR(other, 0.9)])
    with pytest.raises(ValueError, match="same optimizer"):
        ChainedScheduler([ExponentialLR(opt, 0.9)], optimizer=other)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        SequentialLR(opt, [ExponentialLR(opt, 0.9), ReduceLROnPlateau(opt)], [2])
    inner = SequentialLR(opt, [ExponentialLR(opt, 0.9)], [])
    with pytest.raises(TypeError, match="SequentialLR"):
        SequentialLR(opt, [ChainedScheduler([inner])], [])
    chain = ChainedScheduler([inner, ExponentialLR(opt, 0.5)])  # a SequentialLR may be chained
    chain.step()
    assert isinstance(chain, LRScheduler) and isinstance(ReduceLROnPlateau(opt), LRScheduler)


# -- a step that raises changes nothing ------------------------------------------


def test_steps_that_raise_change_nothing():
    def boom_at(t, value=1.0):
        def fn(x):
            if x == t:
                raise RuntimeError("boom")
            return value

        return fn

    def boom_on_call(n):
        calls = []

        def fn(_):
            calls.append(1)
            if len(calls) == n:
                raise RuntimeError("boom")
            return 1.0

        return fn

    cases = [
        (lambda o: MultiplicativeLR(o, boom_at(3, 0.5)), RuntimeError),
        (lambda o: MultiplicativeLR(o, lambda t: -1.0 if t == 3 else 0.5), ValueError),
        (lambda o: CyclicLR(o, **CYC, scale_fn=boom_at(3), scale_mode="iterations"), RuntimeError),
        (
            lambda o: CyclicLR(
                o, **CYC, scale_fn=lambda x: math.nan if x == 3 else 1, scale_mode="iterations"
            ),
            ValueError,
        ),
        # a momentum below 0 (the lr is fine): neither is written
        (
            lambda o: CyclicLR(
                o,
                base_lr=0.1,
                max_lr=0.2,
                step_size_up=8,
                base_momentum=0.0,
                max_momentum=0.9,
                scale_fn=lambda x: 1.0 if x < 3 else 9.0,
                scale_mode="iterations",
            ),
            ValueError,
        ),
        (lambda o: OneCycleLR(o, max_lr=0.1, total_steps=2), ValueError),
        (
            lambda o: ChainedScheduler(
                [
                    ExponentialLR(o, 0.5),
                    CyclicLR(o, **CYC, step_size_up=1),
                    MultiplicativeLR(o, boom_at(3)),
                ]
            ),
            RuntimeError,
        ),
        (
            lambda o: SequentialLR(
                o,
                [
                    ExponentialLR(o, 0.5),
                    ChainedScheduler([ConstantLR(o), LambdaLR(o, boom_on_call(3))]),
                ],
                milestones=[3],
            ),
            RuntimeError,
        ),
    ]
    for make, exc in cases:
        for opt_cls in (SGD, Adam):
            opt = make_opt(cls=opt_cls, **({"momentum": 0.9} if opt_cls is SGD else {}))
            sched = make(opt)
            sched.step()
            sched.step()
            state, groups = sched.state_dict(), hypers(opt)
            with pytest.raises(exc):
                sched.step()
            assert sched.state_dict() == state and hypers(opt) == groups, make


def test_construction_that_raises_changes_nothing():
    def boom(_):
        raise RuntimeError("boom")

    for opt_cls in (SGD, Adam):
        opt = make_opt(cls=opt_cls, **({"momentum": 0.9} if opt_cls is SGD else {}))
        before = hypers(opt)
        with pytest.raises(RuntimeError, match="boom"):
            CyclicLR(opt, **CYC, scale_fn=boom)  # the lr and momentum were written first
        with pytest.raises(ValueError, match="initial_lr"):
            OneCycleLR(opt, max_lr=1e308, div_factor=1e-10, total_steps=10)
        assert hypers(opt) == before


def test_get_lr_outside_step_warns_and_writes_nothing():
    opt = make_opt(momentum=0.9)
    sched = CyclicLR(opt, **CYC, step_size_up=2)
    groups = hypers(opt)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    assert hypers(opt) == groups
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()
        ConstantLR(opt).step()
