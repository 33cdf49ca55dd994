"""Param structures, groups, frozen layers, None grads, check_finite, state_dict."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import assert_state_equal, assert_unchanged, snapshot
from lec7rs import optim
from lec7rs import reference as ref


def shapes():
    return {"w1": (6, 5), "b1": (5,), "w2": (5, 3), "b2": (3,)}


def make_params(rng, dtype=np.float32):
    return {k: rng.standard_normal(s).astype(dtype) for k, s in shapes().items()}


def grads_for(params, rng):
    return {k: rng.standard_normal(v.shape).astype(v.dtype) for k, v in params.items()}


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_list_dict_and_group_forms_agree(cls, rule, kw, rng):
    base = make_params(rng)
    keys = list(base)
    as_list = [base[k].copy() for k in keys]
    as_dict = {k: base[k].copy() for k in keys}
    as_groups = [
        {"params": {k: base[k].copy() for k in keys[:2]}},
        {"params": [base[k].copy() for k in keys[2:]]},
    ]
    o_list, o_dict, o_groups = cls(as_list, **kw), cls(as_dict, **kw), cls(as_groups, **kw)
    for _ in range(5):
        g = grads_for(base, rng)
        o_list.step([g[k] for k in keys])
        o_dict.step(g)
        o_groups.step([g[k] for k in keys])  # list aligned with the flattened groups
    flat_groups = [*as_groups[0]["params"].values(), *as_groups[1]["params"]]
    for k, a, b in zip(keys, as_list, flat_groups):
        np.testing.assert_array_equal(a, as_dict[k])
        np.testing.assert_array_equal(a, b)


def test_group_overrides_apply_per_group(rng):
    a, b = np.ones(4, np.float32), np.ones(4, np.float32)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(4, np.float32), np.ones(4, np.float32)])
    np.testing.assert_allclose(a, 0.9)
    np.testing.assert_allclose(b, 0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0  # defaults filled in


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_frozen_group_and_none_grads_are_skipped(cls, rule, kw, rng):
    backbone = {k: v for k, v in make_params(rng).items() if k.endswith("1")}
    head = {k: v for k, v in make_params(rng).items() if k.endswith("2")}
    frozen_before = {k: v.copy() for k, v in backbone.items()}
    opt = cls([{"params": backbone, "frozen": True}, {"params": head}], **kw)
    b2_before = head["b2"].copy()
    for _ in range(3):
        g = grads_for({**backbone, **head}, rng)
        g["b2"] = None
        opt.step(g)
    for k, v in backbone.items():
        np.testing.assert_array_equal(v, frozen_before[k])  # frozen: untouched
    np.testing.assert_array_equal(head["b2"], b2_before)  # None grad: untouched
    assert set(opt.state) == {"w2"}  # no state for skipped params
    assert opt.state["w2"]["step"] == 3
    # Unfreezing later trains the backbone from a fresh state (fine-tuning).
    opt.param_groups[0]["frozen"] = False
    opt.step(grads_for({**backbone, **head}, rng))
    assert not np.array_equal(backbone["w1"], frozen_before["w1"])
    assert opt.state["w1"]["step"] == 1 and opt.state["w2"]["step"] == 4


def test_per_param_step_counts_follow_pytorch(rng):
    # A param that skips steps keeps its own bias-correction count.
    p = [rng.standard_normal(7), rng.standard_normal(7)]
    q = [x.copy() for x in p]
    states = [{}, {}]
    opt = optim.Adam(p, lr=0.05)
    for t in range(6):
        grads = [rng.standard_normal(7), rng.standard_normal(7) if t % 2 else None]
        opt.step(grads)
        for k in range(2):
            if grads[k] is not None:
                q[k], states[k] = ref.torch_adam(q[k], grads[k], states[k], lr=0.05)
    for a, b in zip(p, q):
        np.testing.assert_array_equal(a, b)
    assert [opt.state[k]["step"] for k in range(2)] == [6, 3]


def test_hyperparameters_are_mutable_between_steps(rng):
    p, q = rng.standard_normal(9), None
    q = p.copy()
    state = {}
    opt = optim.Adam([p], lr=0.1)
    for t in range(8):
        lr = 0.1 * 0.5**t
        opt.param_groups[0]["lr"] = lr
        opt.param_groups[0]["amsgrad"] = t >= 4  # state created when switched on
        g = rng.standard_normal(9)
        opt.step([g])
        q, state = ref.torch_adam(q, g, state, lr=lr, amsgrad=t >= 4)
    np.testing.assert_array_equal(p, q)


def test_add_param_group(rng):
    a = rng.standard_normal(3)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    b = rng.standard_normal(4)
    opt.add_param_group({"params": [b], "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.9
    b0 = b.copy()
    opt.step([np.ones(3), np.ones(4)])
    np.testing.assert_allclose(b, b0 - 0.01)
    with pytest.raises(ValueError, match="shares memory"):
        opt.add_param_group({"params": [a]})
    assert len(opt.param_groups) == 2


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_check_finite_skips_the_whole_step(cls, rule, kw, rng):
    params = make_params(rng)
    twin = {k: v.copy() for k, v in params.items()}
    opt = cls(params, check_finite=True, **kw)
    ref_opt = cls(twin, **kw)
    for t in range(6):
        g = grads_for(params, rng)
        if t in (0, 3):
            bad = dict(g)
            bad["b1"] = g["b1"].copy()
            bad["b1"][1] = np.nan if t == 0 else np.inf
            before = snapshot(opt)
            opt.step(bad)
            assert opt.last_step_skipped
            assert_unchanged(
                opt, {**before, "state": {**before["state"], "skipped_steps": opt._skipped_steps}}
            )
        opt.step(g)
        ref_opt.step(g)
        assert not opt.last_step_skipped
    for k in params:
        np.testing.assert_array_equal(params[k], twin[k])
    assert opt.state_dict()["skipped_steps"] == 2


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_state_dict_resume_is_bit_identical(cls, rule, kw, rng):
    params = make_params(rng)
    opt = cls(params, **kw)
    grads = [grads_for(params, rng) for _ in range(30)]
    for g in grads[:15]:
        opt.step(g)
    saved = opt.state_dict()
    saved_copy = copy.deepcopy(saved)
    resumed_params = {k: v.copy() for k, v in params.items()}
    for g in grads[15:]:
        opt.step(g)
    assert_state_equal(saved, saved_copy)  # state_dict holds copies
    other = cls(resumed_params, lr=123.0)  # hyperparameters come from the dict
    other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for g in grads[15:]:
        other.step(g)
    for k in params:
        assert params[k].tobytes() == resumed_params[k].tobytes()
    assert_state_equal(other.state_dict(), opt.state_dict())


def _fresh(cls=optim.Adam):
    rng = np.random.default_rng(3)
    params = make_params(rng)
    opt = cls(params, amsgrad=True) if cls is optim.Adam else cls(params)
    for _ in range(3):
        opt.step(grads_for(params, rng))
    return opt


def _bad_dicts():
    good = _fresh().state_dict()

    def edit(fn):
        d = copy.deepcopy(good)
        fn(d)
        return d

    return [
        ("other optimizer", edit(lambda d: d.update(optimizer="SGD")), r"SGD"),
        ("unknown version", edit(lambda d: d.update(version=99)), r"version"),
        (
            "group count",
            edit(lambda d: d["param_groups"].append(d["param_groups"][0])),
            r"2 param groups",
        ),
        ("param count", edit(lambda d: d["param_groups"][0]["params"].pop()), r"lists params"),
        (
            "renamed param",
            edit(lambda d: d["param_groups"][0]["param_names"].reverse()),
            r"param names",
        ),
        ("bad hyperparameter", edit(lambda d: d["param_groups"][0].update(lr=-1)), r"lr"),
        ("missing hyperparameter", edit(lambda d: d["param_groups"][0].pop("betas")), r"betas"),
        (
            "shape",
            edit(lambda d: d["state"][0].update(exp_avg=np.zeros((5, 6), np.float32))),
            r"shape",
        ),
        ("dtype", edit(lambda d: d["state"][1].update(exp_avg_sq=np.zeros(5))), r"float64"),
        ("not an array", edit(lambda d: d["state"][1].update(exp_avg=[0.0] * 5)), r"array"),
        (
            "unknown slot",
            edit(lambda d: d["state"][1].update(velocity=np.zeros(5, np.float32))),
            r"velocity",
        ),
        ("param index", edit(lambda d: d["state"].update({9: d["state"][0]})), r"index 9"),
        ("negative step", edit(lambda d: d["state"][0].update(step=-1)), r"step"),
        ("float step", edit(lambda d: d["state"][0].update(step=1.5)), r"step"),
        ("skipped steps", edit(lambda d: d.update(skipped_steps="x")), r"skipped_steps"),
    ]


@pytest.mark.parametrize(
    ("bad", "match"), [b[1:] for b in _bad_dicts()], ids=[b[0] for b in _bad_dicts()]
)
def test_load_state_dict_rejects_a_dict_that_does_not_fit(bad, match):
    opt = _fresh()
    before = snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(bad)
    assert_unchanged(opt, before)


def test_load_state_dict_rejects_non_dict():
    opt = _fresh()
    with pytest.raises(TypeError):
        opt.load_state_dict([1, 2])


def test_state_property_is_live_and_state_dict_is_a_copy():
    opt = _fresh()
    assert opt.state["w1"]["exp_avg"] is opt._state[0][0]
    sd = opt.state_dict()
    sd["state"][0]["exp_avg"][...] = 7.0
    assert not np.any(opt.state["w1"]["exp_avg"] == 7.0)
    assert sd["param_groups"][0]["param_names"] == list(shapes())
    assert "Adam (" in repr(opt)
