"""lec7rs.optim.lr_scheduler: every schedule against its closed form for 1000
steps, resume from state dicts, step(epoch), validation, and "an error
changes nothing"."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from lec7rs import reference as ref
from lec7rs.optim import SGD, Adam
from lec7rs.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    InverseTimeLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    SequentialLR,
    StepLR,
)

U = 2.0**-53  # unit roundoff of float64
STEPS = 1000
BASES = (0.1, 0.02)  # two param groups with different lrs


def make_opt(lrs=BASES, cls=SGD, **kw):
    groups = [{"params": [np.zeros(3)], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def hypers(opt):
    """The param groups without their arrays, for "nothing changed"."""
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


def warm_restart_closed(base, t, T_0, T_mult, eta_min):
    """SGDR's closed form: find the cycle holding t, then the cosine in it."""
    start, length = 0, T_0
    while t >= start + length:
        start, length = start + length, length * T_mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * (t - start) / length)) / 2


def cosine_closed(base, t, T, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


# (id, class, kwargs, closed form f(base, t), tolerance). The chainable form
# multiplies lr_{t-1} by a factor that carries at most m roundings, so after
# t steps its relative error is at most m * t * u to first order, plus one
# rounding for the closed form: ("rel", m) checks |lr - f| <= m (t + 1) u f.
# Cosine annealing is additive near its minimum: its error is absolute, in
# units of base - eta_min; the chainable ratios telescope, so what is left is
# m roundings per step plus the cancellation of 1 - cos(pi / T_max) where the
# lr leaves the minimum (relative error <= T_max^2 u / pi^2, twice):
# ("cos", m) checks |lr - f| <= (m (t + 1) + T_max^2) u (base - eta_min).
SCHEDULES = [
    ("step", StepLR, dict(step_size=7, gamma=0.9), lambda b, t: b * 0.9 ** (t // 7), ("rel", 1)),
    (
        "multistep",
        MultiStepLR,
        dict(milestones=[500, 10, 300, 300], gamma=0.5),
        lambda b, t: b * 0.5 ** ((t >= 10) + 2 * (t >= 300) + (t >= 500)),
        ("rel", 1),
    ),
    ("exponential", ExponentialLR, dict(gamma=0.995), lambda b, t: b * 0.995**t, ("rel", 2)),
    (
        "linear_warmup",
        LinearLR,
        dict(start_factor=0.01, total_iters=1000),
        lambda b, t: b * (0.01 + 0.99 * min(t, 1000) / 1000),
        ("rel", 6),
    ),
    (
        "linear_decay",
        LinearLR,
        dict(start_factor=1.0, end_factor=0.05, total_iters=333),
        lambda b, t: b * (1.0 - 0.95 * min(t, 333) / 333),
        ("rel", 6),
    ),
    (
        "linear_default",
        LinearLR,
        {},
        lambda b, t: b * (1 / 3 + (2 / 3) * min(t, 5) / 5),
        ("rel", 6),
    ),
    ("inverse_time", InverseTimeLR, dict(k=0.37), lambda b, t: b / (1 + 0.37 * t), ("rel", 6)),
    ("lambda", LambdaLR, dict(lr_lambda=lambda t: 1 / math.sqrt(t + 1)), None, ("exact",)),
    *[
        (
            f"cosine_T{T}_eta{eta}",
            CosineAnnealingLR,
            dict(T_max=T, eta_min=eta),
            lambda b, t, T=T, eta=eta: cosine_closed(b, t, T, eta),
            ("cos", 8),
        )
        for T, eta in [(1, 0.0), (2, 0.0), (7, 0.001), (100, 0.0), (100, 0.005), (1000, 0.0)]
    ],
    *[
        (
            f"warm_restarts_T{T_0}x{T_mult}",
            CosineAnnealingWarmRestarts,
            dict(T_0=T_0, T_mult=T_mult, eta_min=eta),
            lambda b, t, T_0=T_0, T_mult=T_mult, eta=eta: warm_restart_closed(
                b, t, T_0, T_mult, eta
            ),
            ("exact",),
        )
        for T_0, T_mult, eta in [(10, 1, 0.0), (7, 2, 0.001), (1, 3, 0.0), (50, 1, 0.01)]
    ],
]
IDS = [s[0] for s in SCHEDULES]


def closed_form(case, group, t):
    _, _, kw, f, _ = case
    base = BASES[group]
    return base * kw["lr_lambda"](t) if f is None else f(base, t)


def assert_close(case, group, t, got):
    want = closed_form(case, group, t)
    tol = case[4]
    if tol[0] == "exact":
        assert got == want, (group, t)
    elif tol[0] == "rel":
        assert abs(got - want) <= tol[1] * (t + 1) * U * abs(want), (group, t, got, want)
    else:
        kw = case[2]
        scale = BASES[group] - kw["eta_min"]
        bound = (tol[1] * (t + 1) + kw["T_max"] ** 2) * U * scale
        assert abs(got - want) <= bound, (group, t, got, want)


def lrs_over(sched, steps):
    out = [sched.get_last_lr()]
    for _ in range(steps):
        sched.step()
        out.append(sched.get_last_lr())
    return out


@pytest.mark.parametrize("case", SCHEDULES, ids=IDS)
def test_matches_closed_form_for_1000_steps(case):
    _, cls, kw, _, _ = case
    opt = make_opt()
    sched = cls(opt, **kw)
    for t, lrs in enumerate(lrs_over(sched, STEPS)):
        for g, lr in enumerate(lrs):
            assert_close(case, g, t, lr)
    assert sched.last_epoch == STEPS
    # The lr lives in the optimizer's groups, where its steps read it.
    assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASES)


@pytest.mark.parametrize("case", SCHEDULES, ids=IDS)
def test_step_epoch_jumps_with_the_closed_form(case):
    _, cls, kw, _, _ = case
    sched = cls(make_opt(), **kw)
    for t in [0, 1, 5, 333, 999, 7, 1000, 0]:
        sched.step(t)
        assert sched.last_epoch == t
        for g, lr in enumerate(sched.get_last_lr()):
            want = closed_form(case, g, t)
            assert lr == pytest.approx(want, rel=8 * U, abs=8 * U * BASES[g]), (t, g)


@pytest.mark.parametrize("case", SCHEDULES, ids=IDS)
def test_state_dict_resume_is_bit_identical(case):
    _, cls, kw, _, _ = case
    opt = make_opt()
    sched = cls(opt, **kw)
    want = lrs_over(sched, 400)

    opt = make_opt()
    sched = cls(opt, **kw)
    lrs_over(sched, 123)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert all("initial_lr" in g for g in saved_opt["param_groups"])
    # A fresh pair, built the usual way, then restored.
    opt2 = make_opt(lrs=(5.0, 6.0))
    sched2 = cls(opt2, **kw)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    assert sched2.state_dict() == saved_sched
    assert lrs_over(sched2, 400 - 123) == want[123:]


def test_lecture_exponential_decay_is_exponential_lr():
    # alpha = alpha0 * exp(-k t) with gamma = exp(-k): gamma**t differs from
    # exp(-k t) by the rounding of gamma, t times: 3 (t + 1) u covers both.
    for k in (0.01, 0.1, 0.5):
        sched = ExponentialLR(make_opt(), gamma=math.exp(-k))
        for t, lrs in enumerate(lrs_over(sched, STEPS)):
            for base, lr in zip(BASES, lrs):
                want = base * math.exp(-k * t)
                assert abs(lr - want) <= 3 * (t + 1) * U * want, (k, t)


def test_lecture_inverse_time_decay():
    sched = InverseTimeLR(make_opt(lrs=(1.0,)), k=0.5)
    assert [lr for (lr,) in lrs_over(sched, 4)] == [1.0, 1 / 1.5, 0.5, 0.4, 1 / 3]


@pytest.mark.parametrize("start", [1.0, 0.3, 1 / 3, 0.7, 0.1])
def test_linear_decay_to_zero_never_sets_a_negative_lr(start):
    # The chainable factor of the last step rounds to about +-1e-17; PyTorch
    # then sets lr = -2e-18, which the optimizer would refuse.
    for total in range(1, 120):
        opt = make_opt(lrs=(0.1,))
        sched = LinearLR(opt, start_factor=start, end_factor=0.0, total_iters=total)
        for _ in range(total + 2):
            opt.step([np.ones(3)])
            sched.step()
            assert sched.get_last_lr()[0] >= 0.0
        assert sched.get_last_lr()[0] <= 1e-16


def test_optimizer_steps_with_the_scheduled_lr():
    rng = np.random.default_rng(0)
    w = rng.standard_normal(50).astype(np.float32)
    grads = [rng.standard_normal(50).astype(np.float32) for _ in range(20)]
    opt = SGD([w], lr=0.5, momentum=0.9)
    sched = CosineAnnealingLR(opt, T_max=10)
    ref_w, state = w.copy(), {}
    for g in grads:
        lr = opt.param_groups[0]["lr"]
        opt.step([g])
        ref_w, state = ref.torch_sgd(ref_w, g, state, lr=lr, momentum=0.9)
        sched.step()
    assert w.tobytes() == ref_w.tobytes()


def test_sequential_warmup_then_cosine_matches_piecewise_closed_form():
    opt = make_opt()
    warmup = LinearLR(opt, start_factor=0.1, total_iters=20)
    cosine = CosineAnnealingLR(opt, T_max=480)
    decay = ExponentialLR(opt, gamma=0.99)
    sched = SequentialLR(opt, [warmup, cosine, decay], milestones=[20, 500])
    for t, lrs in enumerate(lrs_over(sched, STEPS)):
        for base, lr in zip(BASES, lrs):
            if t < 20:
                want, tol = base * (0.1 + 0.9 * t / 20), 6 * (t + 1) * U * base
            elif t < 500:
                want = cosine_closed(base, t - 20, 480, 0.0)
                tol = (8 * (t - 19) + 480**2) * U * base
            else:
                want, tol = base * 0.99 ** (t - 500), 2 * (t - 499) * U * base
            assert abs(lr - want) <= tol, (t, lr, want)
    assert sched.last_epoch == STEPS


def test_sequential_resume_and_validation():
    def build(opt):
        return SequentialLR(
            opt,
            [ExponentialLR(opt, gamma=0.9), StepLR(opt, step_size=3, gamma=0.5)],
            milestones=[4],
        )

    opt = make_opt()
    want = lrs_over(build(opt), 12)
    opt = make_opt()
    sched = build(opt)
    lrs_over(sched, 5)
    saved = (opt.state_dict(), sched.state_dict())
    opt2 = make_opt()
    sched2 = build(opt2)
    opt2.load_state_dict(saved[0])
    sched2.load_state_dict(saved[1])
    assert lrs_over(sched2, 7) == want[5:]

    other = make_opt()
    with pytest.raises(ValueError, match="same optimizer"):
        SequentialLR(opt, [ExponentialLR(opt, 0.9), ExponentialLR(other, 0.9)], [3])
    with pytest.raises(ValueError, match="milestone"):
        SequentialLR(opt, [ExponentialLR(opt, 0.9), ExponentialLR(opt, 0.9)], [3, 5])
    with pytest.raises(ValueError, match="increasing"):
        SequentialLR(opt, [ExponentialLR(opt, 0.9)] * 3, [5, 5])
    with pytest.raises(TypeError):
        SequentialLR(opt, [sched], [])
    bad = sched.state_dict()
    bad["_schedulers"][1]["gamma"] = -1.0
    before = sched.state_dict()
    with pytest.raises(ValueError, match=r"_schedulers'\]\[1\].*gamma"):
        sched.load_state_dict(bad)
    assert sched.state_dict() == before


def test_warm_restarts_fractional_epochs_and_restart_boundaries():
    # Per iteration inside an epoch, as in PyTorch's docstring.
    sched = CosineAnnealingWarmRestarts(make_opt(lrs=(1.0,)), T_0=2, T_mult=2, eta_min=0.0)
    for epoch, want_t, want_i in [(0.5, 0.5, 2), (2.25, 0.25, 4), (5.75, 3.75, 4), (6.0, 0.0, 8)]:
        sched.step(epoch)
        assert (sched.T_cur, sched.T_i, sched.last_epoch) == (want_t, want_i, math.floor(epoch))
        assert sched.get_last_lr() == [(1 + math.cos(math.pi * want_t / want_i)) / 2]
    # Restart epochs where a float log rounds down (log(1000, 10) < 3):
    # the lr must be back at base_lr.
    sched = CosineAnnealingWarmRestarts(make_opt(lrs=(1.0,)), T_0=1, T_mult=10)
    for restart in (1, 11, 111, 1111):
        sched.step(restart)
        assert sched.get_last_lr() == [1.0] and sched.T_i == 10 ** len(str(restart))
    sequential = CosineAnnealingWarmRestarts(make_opt(lrs=(1.0,)), T_0=1, T_mult=10)
    jumping = CosineAnnealingWarmRestarts(make_opt(lrs=(1.0,)), T_0=1, T_mult=10)
    for t in range(1, 1200):
        sequential.step()
        jumping.step(t)
        assert jumping.get_last_lr() == sequential.get_last_lr(), t
    with pytest.raises(ValueError, match="non-negative"):
        sched.step(-1)


def test_lambda_state_dict_holds_no_functions():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, t):
            return self.rate**t

    opt = make_opt()
    sched = LambdaLR(opt, [lambda t: 1.0, Decay(0.5)])
    lrs_over(sched, 3)
    d = sched.state_dict()
    assert d["lr_lambdas"] == [None, {"rate": 0.5}]
    assert not any(callable(v) for v in d.values())
    opt2 = make_opt()
    fn = Decay(0.9)
    sched2 = LambdaLR(opt2, [lambda t: 1.0, fn])
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(d)
    assert fn.rate == 0.5
    assert lrs_over(sched2, 2) == lrs_over(sched, 2)


def test_construction_stores_initial_lr_and_resume_needs_it():
    opt = make_opt()
    sched = StepLR(opt, step_size=2)
    assert sched.base_lrs == list(BASES)
    for g in opt.param_groups:
        g["lr"] = 1.0
    # A second scheduler keeps the first one's initial_lr.
    assert ExponentialLR(opt, gamma=0.5).base_lrs == list(BASES)
    with pytest.raises(ValueError, match="initial_lr"):
        ExponentialLR(make_opt(), gamma=0.5, last_epoch=10)
    resumed = ExponentialLR(opt, gamma=0.5, last_epoch=10)
    assert resumed.last_epoch == 11 and resumed.get_last_lr() == [1.0, 1.0]


BAD_ARGS = [
    (StepLR, dict(step_size=0), ValueError),
    (StepLR, dict(step_size=2.5), TypeError),
    (StepLR, dict(step_size=2, gamma=-0.1), ValueError),
    (StepLR, dict(step_size=2, gamma=float("nan")), ValueError),
    (StepLR, dict(step_size=2, gamma="0.1"), TypeError),
    (MultiStepLR, dict(milestones=[1, -2]), ValueError),
    (MultiStepLR, dict(milestones=5), TypeError),
    (ExponentialLR, dict(gamma=True), TypeError),
    (ExponentialLR, dict(gamma=0.9, last_epoch=-2), ValueError),
    (CosineAnnealingLR, dict(T_max=0), ValueError),
    (CosineAnnealingLR, dict(T_max=10, eta_min=-1.0), ValueError),
    (CosineAnnealingWarmRestarts, dict(T_0=0), ValueError),
    (CosineAnnealingWarmRestarts, dict(T_0=5, T_mult=0), ValueError),
    (CosineAnnealingWarmRestarts, dict(T_0=5, T_mult=1.5), TypeError),
    (LinearLR, dict(start_factor=0.0), ValueError),
    (LinearLR, dict(start_factor=1.5), ValueError),
    (LinearLR, dict(end_factor=-0.1), ValueError),
    (LinearLR, dict(total_iters=0), ValueError),
    (InverseTimeLR, dict(k=-1.0), ValueError),
    (InverseTimeLR, dict(k=math.inf), ValueError),
    (LambdaLR, dict(lr_lambda=3), TypeError),
    (LambdaLR, dict(lr_lambda=[lambda t: 1.0]), ValueError),
]


@pytest.mark.parametrize(("cls", "kw", "exc"), BAD_ARGS)
def test_bad_arguments_raise_and_change_nothing(cls, kw, exc):
    opt = make_opt()
    before = hypers(opt)
    with pytest.raises(exc):
        cls(opt, **kw)
    assert hypers(opt) == before


def test_not_an_optimizer_is_a_type_error():
    with pytest.raises(TypeError, match="not an optimizer"):
        StepLR(object(), step_size=3)
    with pytest.raises(TypeError, match="not an optimizer"):
        StepLR([np.zeros(3)], step_size=3)


def test_a_step_that_raises_changes_nothing():
    def lam(t):
        if t == 3:
            raise RuntimeError("boom")
        return 1.0 / (t + 1)

    opt = make_opt()
    sched = LambdaLR(opt, lam)
    lrs_over(sched, 2)
    state, groups = sched.state_dict(), hypers(opt)
    with pytest.raises(RuntimeError, match="boom"):
        sched.step()
    assert sched.state_dict() == state and hypers(opt) == groups
    # A lambda returning a negative or non-numeric lr is refused the same way.
    for bad in (-1.0, float("nan"), float("inf"), "x", None):
        sched = LambdaLR(make_opt(), lambda t, bad=bad: 1.0 if t == 0 else bad)
        state = sched.state_dict()
        with pytest.raises((ValueError, TypeError)):
            sched.step()
        assert sched.state_dict() == state and sched.optimizer.param_groups[0]["lr"] == 0.1


def test_load_state_dict_rejects_what_does_not_fit():
    opt = make_opt()
    sched = StepLR(opt, step_size=3)
    lrs_over(sched, 4)
    good = sched.state_dict()
    cases = [
        {**good, "scheduler": "ExponentialLR"},
        {**good, "step_size": 0},
        {**good, "step_size": "3"},
        {**good, "gamma": float("inf")},
        {**good, "last_epoch": -5},
        {**good, "base_lrs": [0.1]},
        {**good, "_last_lr": [0.1, None]},
        {k: v for k, v in good.items() if k != "gamma"},
        {**good, "extra": 1},
    ]
    fresh = StepLR(make_opt(), step_size=9, gamma=0.7)
    before = fresh.state_dict()
    for bad in cases:
        with pytest.raises(ValueError):
            fresh.load_state_dict(bad)
        assert fresh.state_dict() == before
    with pytest.raises(TypeError):
        fresh.load_state_dict([1, 2])
    fresh.load_state_dict(good)
    assert fresh.state_dict() == good and fresh.step_size == 3


def test_get_lr_outside_step_warns():
    sched = ExponentialLR(make_opt(), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched.step()


def test_works_with_every_optimizer_and_frozen_groups():
    w = np.ones(4, np.float32)
    opt = Adam([{"params": [w], "lr": 0.1}, {"params": [np.ones(2, np.float32)], "frozen": True}])
    sched = MultiStepLR(opt, milestones=[1], gamma=0.1)
    opt.step([np.ones(4, np.float32), None])
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 1e-4])
    opt.step([np.ones(4, np.float32), None])
