"""What the cases table does not cover for LAMB, LARS, schedule-free AdamW /
SGD and Lookahead: zero norms, train / eval, the per-group schedule, and
Lookahead around SGD, Adam and Lion."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import threads
from lec7rs import checkpoint, optim
from lec7rs import reference as ref

# -- LAMB and LARS: the trust ratio --------------------------------------------


def test_fixed_sum_is_the_kernels_sum():
    # The reference's sum of squares gives LAMB's ratio bit for bit (the
    # cases table compares whole trajectories; here the sum itself, across
    # chunks and with a tail, against float64 to rounding).
    rng = np.random.default_rng(0)
    for n in (0, 1, 31, 33, 16384, 3 * 16384 + 17):
        x = rng.standard_normal(n).astype(np.float32)
        want = float(np.sum(x.astype(np.float64) ** 2))
        assert math.isclose(ref.fixed_sum(x * x), want, rel_tol=1e-6, abs_tol=1e-30)


def _adam_update(g, lr, eps, t=1, betas=(0.9, 0.999)):
    m = (1 - betas[0]) * g
    v = (1 - betas[1]) * g * g
    return (m / (1 - betas[0] ** t)) / (np.sqrt(v) / math.sqrt(1 - betas[1] ** t) + eps)


def test_lamb_zero_param_has_trust_ratio_one():
    p = np.zeros(1000)
    g = np.linspace(-1, 1, 1000)
    opt = optim.LAMB([p], lr=0.1)
    opt.step([g])
    np.testing.assert_allclose(p, -0.1 * _adam_update(g, 0.1, 1e-6), rtol=1e-12)


def test_lamb_zero_update_has_trust_ratio_one_and_leaves_param():
    p = np.linspace(1, 2, 50)
    q = p.copy()
    optim.LAMB([p], lr=0.1).step([np.zeros(50)])
    np.testing.assert_array_equal(p, q)  # u = 0: ratio 1, p - 0


def test_lamb_ratio_scales_the_step_to_the_param_norm():
    # One step of Adam's update u has ||u|| ~ sqrt(n) (each |u_i| ~ 1), so
    # LAMB moves p by lr * ||p|| in norm: the step is relative to the layer.
    rng = np.random.default_rng(1)
    for scale in (1e-3, 1.0, 1e3):
        p = scale * rng.standard_normal(4096)
        before = p.copy()
        optim.LAMB([p], lr=0.01).step([rng.standard_normal(4096)])
        moved = np.linalg.norm(p - before) / np.linalg.norm(before)
        assert math.isclose(moved, 0.01, rel_tol=1e-9)


def test_lamb_trust_clip_caps_the_ratio_at_one():
    rng = np.random.default_rng(2)
    p = 100.0 * rng.standard_normal(256)  # ||p|| >> ||u||: ratio >> 1
    g = rng.standard_normal(256)
    clipped, free = p.copy(), p.copy()
    optim.LAMB([clipped], lr=0.01, trust_clip=True).step([g])
    optim.LAMB([free], lr=0.01).step([g])
    np.testing.assert_allclose(clipped, p - 0.01 * _adam_update(g, 0.01, 1e-6), rtol=1e-12)
    assert np.linalg.norm(free - p) > 10 * np.linalg.norm(clipped - p)


@pytest.mark.parametrize("zero", ["param", "grad"])
def test_lars_zero_norm_has_local_rate_one(zero):
    rng = np.random.default_rng(3)
    p = np.zeros(300) if zero == "param" else rng.standard_normal(300)
    g = rng.standard_normal(300) if zero == "param" else np.zeros(300)
    q = p.copy()
    optim.LARS([p], lr=0.5, momentum=0.9, weight_decay=0.1).step([g])
    # local = 1: d = lr * (g + wd * p), the first buffer is d, p = p - d.
    np.testing.assert_allclose(p, q - 0.5 * (g + 0.1 * q), rtol=1e-14, atol=1e-300)


def test_lars_local_rate_is_the_papers():
    rng = np.random.default_rng(4)
    p = rng.standard_normal(1000)
    g = 1e-3 * rng.standard_normal(1000)
    q = p.copy()
    optim.LARS([p], lr=0.1, momentum=0.0, trust_coefficient=0.01).step([g])
    local = 0.01 * np.linalg.norm(q) / (np.linalg.norm(g) + 1e-8)
    np.testing.assert_allclose(p, q - 0.1 * local * g, rtol=1e-12)


@pytest.mark.parametrize("cls,kw", [(optim.LAMB, {}), (optim.LARS, {"lr": 0.1})])
def test_norms_of_many_tensors_are_thread_count_independent(cls, kw):
    # 200 tensors of 5000 elements plus two that span several chunks: each
    # tensor's two norms come from the same fixed tree for any thread count.
    rng = np.random.default_rng(5)
    shapes = [(5000,)] * 200 + [(3 * 16384 + 17,), (100, 999)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
    out = []
    for n in (1, 2, 3):
        with threads(n):
            params = [x.copy() for x in init]
            opt = cls(params, **kw)
            for gs in grads:
                opt.step(gs)
            out.append(b"".join(x.tobytes() for x in params))
    assert out[0] == out[1] == out[2]


# -- schedule-free: train / eval and the group's schedule ----------------------

SCHEDULE_FREE = [
    (optim.ScheduleFreeAdamW, ref.schedule_free_adamw, {"lr": 0.01, "warmup_steps": 3}, "betas"),
    (optim.ScheduleFreeSGD, ref.schedule_free_sgd, {"lr": 0.1, "warmup_steps": 3}, "momentum"),
]
SF_IDS = ["AdamW", "SGD"]


def _beta1(opt, key):
    v = opt.param_groups[0][key]
    return v[0] if key == "betas" else v


def _trained(cls, kw, dtype=np.float32, steps=7, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in [(40,), (3, 7), (20000,)]]
    opt = cls(params, **kw)
    for _ in range(steps):
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    return opt, params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_eval_then_train_restores_params_bit_for_bit(cls, rule, kw, key, dtype):
    opt, params = _trained(cls, kw, dtype)
    y = [p.copy() for p in params]
    assert opt.train_mode
    opt.eval()
    assert not opt.train_mode
    for p, yy, entry in zip(params, y, opt.state.values()):
        np.testing.assert_array_equal(p, ref.schedule_free_x(yy, entry["z"], _beta1(opt, key)))
        assert p.tobytes() != yy.tobytes()
    x = [p.copy() for p in params]
    opt.eval()  # idempotent
    assert all(p.tobytes() == xx.tobytes() for p, xx in zip(params, x))
    opt.train()
    assert all(p.tobytes() == yy.tobytes() for p, yy in zip(params, y))
    opt.train()  # idempotent
    assert all(p.tobytes() == yy.tobytes() for p, yy in zip(params, y))


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_step_in_eval_mode_raises_and_changes_nothing(cls, rule, kw, key):
    opt, params = _trained(cls, kw)
    opt.eval()
    before = [p.copy() for p in params]
    sd = opt.state_dict()
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step([np.ones_like(p) for p in params])
    assert all(p.tobytes() == b.tobytes() for p, b in zip(params, before))
    assert opt.param_groups[0]["k"] == sd["param_groups"][0]["k"] == 7


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_eval_before_any_step_leaves_params(cls, rule, kw, key):
    p = np.arange(5.0)
    opt = cls([p], **kw)
    opt.eval()
    np.testing.assert_array_equal(p, np.arange(5.0))
    opt.train()
    np.testing.assert_array_equal(p, np.arange(5.0))


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_schedule_is_per_group_and_skips_frozen_groups(cls, rule, kw, key):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    opt = cls([{"params": [a]}, {"params": [b], "frozen": True}], **kw)
    for _ in range(5):
        opt.step([rng.standard_normal(10), rng.standard_normal(10)])
    g0, g1 = opt.param_groups
    assert (g0["k"], g1["k"]) == (5, 0)
    assert g0["scheduled_lr"] == kw["lr"]  # past the 3 warmup steps
    assert g0["lr_max"] == kw["lr"] and g1["lr_max"] == -1.0
    # weight_lr_power 2: the weights are lr_max^2 at each step so far.
    lrs = [kw["lr"] * min(1.0, (k + 1) / 3) for k in range(5)]
    weights = [max(lrs[: k + 1]) ** 2 for k in range(5)]
    assert math.isclose(g0["weight_sum"], sum(weights), rel_tol=1e-15)
    assert math.isclose(g0["ckp1"], weights[-1] / sum(weights), rel_tol=1e-15)
    # A group added later starts its own schedule, in the current mode.
    c = rng.standard_normal(4)
    opt.eval()
    opt.add_param_group({"params": [c]})
    assert opt.param_groups[2]["k"] == 0 and not opt.param_groups[2]["train_mode"]
    opt.train()
    assert all(g["train_mode"] for g in opt.param_groups)


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_skipped_step_leaves_the_schedule(cls, rule, kw, key):
    opt = cls([np.ones(4)], check_finite=True, **kw)
    opt.step([np.ones(4)])
    before = dict(opt.param_groups[0])
    opt.step([np.array([1.0, np.nan, 1.0, 1.0])])
    assert opt.last_step_skipped
    assert {k: opt.param_groups[0][k] for k in before} == before


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_state_dict_resume_and_eval_mode_state(cls, rule, kw, key):
    opt, params = _trained(cls, kw, np.float64)
    saved_params = [p.copy() for p in params]
    sd = opt.state_dict()
    rng = np.random.default_rng(9)
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(4)]
    for gs in grads:
        opt.step(gs)
    want = [p.copy() for p in params]
    # Resume into a new optimizer from the same params: the same bits.
    params2 = [p.copy() for p in saved_params]
    opt2 = cls(params2, **kw)
    opt2.load_state_dict(sd)
    for gs in grads:
        opt2.step(gs)
    assert all(p.tobytes() == w.tobytes() for p, w in zip(params2, want))
    # Saved in eval mode (the reference's advice): the params hold x; a new
    # optimizer loads the mode and train() returns to y with the reference's
    # lerp, to rounding.
    y = [p.copy() for p in params]
    opt.eval()
    sd_eval = opt.state_dict()
    assert not sd_eval["param_groups"][0]["train_mode"]
    params3 = [p.copy() for p in params]  # x
    opt3 = cls(params3, **kw)
    opt3.load_state_dict(sd_eval)
    assert not opt3.train_mode
    opt3.train()
    for p, yy in zip(params3, y):
        np.testing.assert_allclose(p, yy, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("cls", "rule", "kw", "key"), SCHEDULE_FREE, ids=SF_IDS)
def test_bad_schedule_values_raise_and_change_nothing(cls, rule, kw, key):
    p = np.ones(3)
    opt = cls([p], **kw)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    bad = {**sd, "param_groups": [{**sd["param_groups"][0], "ckp1": 2.0}]}
    with pytest.raises(ValueError, match="ckp1"):
        opt.load_state_dict(bad)
    bad = {**sd, "param_groups": [{**sd["param_groups"][0], "train_mode": "yes"}]}
    with pytest.raises(TypeError, match="train_mode"):
        opt.load_state_dict(bad)
    opt.param_groups[0]["r"] = 1e6  # (k + 1)^r overflows at the next step
    before = (p.copy(), dict(opt.param_groups[0]))
    with pytest.raises(ValueError, match="overflows"):
        opt.step([np.ones(3)])
    np.testing.assert_array_equal(p, before[0])
    assert opt.param_groups[0] == before[1]
    opt.param_groups[0]["r"] = "x"
    with pytest.raises(TypeError, match="r"):
        opt.step([np.ones(3)])
    with pytest.raises(ValueError, match=r"betas|momentum"):
        cls([np.ones(3)], **({"betas": (0.0, 0.9)} if key == "betas" else {"momentum": 0.0}))


def test_schedule_free_sgd_without_warmup_or_decay_is_polyak_averaged_sgd():
    # r = 0, weight_lr_power = 0: every weight is 1, x is the uniform average
    # of the z iterates, and z is plain SGD on the grads taken at y.
    rng = np.random.default_rng(6)
    p = rng.standard_normal(8)
    opt = optim.ScheduleFreeSGD([p], lr=0.1, momentum=0.5, weight_lr_power=0.0)
    z = p.copy()
    zs = [z.copy()]
    for _ in range(6):
        g = rng.standard_normal(8)
        opt.step([g])
        z = z - 0.1 * g
        zs.append(z.copy())
    np.testing.assert_allclose(opt.state[0]["z"], z, rtol=1e-13)
    opt.eval()
    np.testing.assert_allclose(p, np.mean(zs[1:], axis=0), rtol=1e-12)


# -- Lookahead ----------------------------------------------------------------

INNER = [
    (optim.SGD, ref.torch_sgd, {"lr": 0.1, "momentum": 0.9}),
    (optim.Adam, ref.torch_adam, {"lr": 0.01}),
    (optim.Lion, ref.lion, {"lr": 1e-3, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "rule", "kw"), INNER, ids=["SGD", "Adam", "Lion"])
def test_lookahead_matches_the_reference(cls, rule, kw, dtype):
    rng = np.random.default_rng(7)
    shapes = [(17,), (3 * 16384 + 5,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    fast = [p.copy() for p in params]
    slow = [p.copy() for p in params]
    states = [{} for _ in shapes]
    opt = optim.Lookahead(cls(params, **kw), k=3, alpha=0.3)
    for step in range(1, 11):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.step(grads)
        for i, g in enumerate(grads):
            fast[i], states[i] = rule(fast[i], g, states[i], **kw)
            if step % 3 == 0:
                slow[i] = ref.lookahead_sync(slow[i], fast[i], 0.3)
                fast[i] = slow[i].copy()
    for p, f in zip(params, fast):
        np.testing.assert_array_equal(p, f)
    for s, f in zip(opt._slow, slow):
        np.testing.assert_array_equal(s, f)


def test_lookahead_alpha_one_and_zero():
    rng = np.random.default_rng(8)
    p = rng.standard_normal(10)
    p0 = p.copy()
    opt = optim.Lookahead(optim.SGD([p], lr=0.1), k=2, alpha=0.0)
    opt.step([rng.standard_normal(10)])
    assert not np.array_equal(p, p0)
    opt.step([rng.standard_normal(10)])
    np.testing.assert_array_equal(p, p0)  # alpha 0: back to the start


def test_lookahead_state_dict_resume_is_bit_identical():
    rng = np.random.default_rng(9)
    params = [rng.standard_normal(50).astype(np.float32), rng.standard_normal((4, 5))]
    params = [params[0], params[1].astype(np.float32)]
    grads = [[rng.standard_normal(p.shape).astype(np.float32) for p in params] for _ in range(12)]
    opt = optim.Lookahead(optim.Adam(params, lr=0.01), k=5)
    for gs in grads[:7]:
        opt.step(gs)
    sd = opt.state_dict()
    copies = [p.copy() for p in params]
    for gs in grads[7:]:
        opt.step(gs)
    opt2 = optim.Lookahead(optim.Adam(copies, lr=0.01), k=5)
    opt2.load_state_dict(sd)
    assert opt2.state_dict()["step"] == 7
    for gs in grads[7:]:
        opt2.step(gs)
    for a, b in zip(params, copies):
        assert a.tobytes() == b.tobytes()


def test_lookahead_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(10)
    p = rng.standard_normal(30)
    opt = optim.Lookahead(optim.SGD([p], lr=0.1, momentum=0.9), k=2)
    for _ in range(3):
        opt.step([rng.standard_normal(30)])
    path = tmp_path / "ck.lec7rs"
    checkpoint.save(path, [p], optimizer=opt)
    q = p.copy()
    p2 = np.zeros(30)
    opt2 = optim.Lookahead(optim.SGD([p2], lr=0.1, momentum=0.9), k=2)
    checkpoint.load(path, [p2], optimizer=opt2)
    np.testing.assert_array_equal(p2, q)
    g = rng.standard_normal(30)
    opt.step([g])
    opt2.step([g])
    np.testing.assert_array_equal(p, p2)


def test_lookahead_bad_input_raises_and_changes_nothing():
    p = np.ones(4)
    inner = optim.SGD([p], lr=0.1)
    for k, exc in [(0, ValueError), (1.5, TypeError), (True, TypeError), (2**63, ValueError)]:
        with pytest.raises(exc, match="k"):
            optim.Lookahead(inner, k=k)
    for alpha, exc in [(-0.1, ValueError), (1.5, ValueError), (math.nan, ValueError)]:
        with pytest.raises(exc, match="alpha"):
            optim.Lookahead(inner, alpha=alpha)
    with pytest.raises(TypeError, match="alpha"):
        optim.Lookahead(inner, alpha="0.5")
    with pytest.raises(TypeError, match="first-order"):
        optim.Lookahead(optim.LBFGS([np.ones(3)]))
    opt = optim.Lookahead(inner, k=2)
    opt.step([np.ones(4)])
    sd = opt.state_dict()
    before = (p.copy(), opt.state_dict())
    bads = [
        {**sd, "k": 0},
        {**sd, "alpha": 2.0},
        {**sd, "slow": {}},
        {**sd, "slow": {0: np.ones(5)}},
        {**sd, "inner": {**sd["inner"], "optimizer": "Adam"}},
        {**sd, "optimizer": "SGD"},
    ]
    for bad in bads:
        with pytest.raises(ValueError):
            opt.load_state_dict(bad)
        np.testing.assert_array_equal(p, before[0])
        after = opt.state_dict()
        assert after["step"] == before[1]["step"]
        np.testing.assert_array_equal(after["slow"][0], before[1]["slow"][0])


def test_lookahead_counts_only_steps_taken_and_adds_groups():
    p = np.ones(4)
    opt = optim.Lookahead(optim.SGD([p], lr=0.1, momentum=0.9), k=2, alpha=0.5)
    opt.optimizer.check_finite = True
    opt.step([np.full(4, np.nan)])
    assert opt.last_step_skipped and opt.state_dict()["step"] == 0
    q = np.zeros(3)
    opt.add_param_group({"params": [q]})
    assert len(opt.param_groups) == 2 and len(opt.state_dict()["slow"]) == 2
    opt.step([np.ones(4), np.ones(3)])
    opt.step([np.ones(4), np.ones(3)])
    # After the sync each param is halfway between its start and the fast point.
    fast_q = -0.1 * 1 + -0.1 * (0.9 * 1 + 1)
    np.testing.assert_allclose(q, 0.5 * fast_q, rtol=1e-15)
