"""The cached step plan (rust/python/src/plan.rs): a small step repeated
takes the plan recorded by the last checked one; the result is the checked
step's, bit for bit, and anything the plan did not see (a new lr, a param
made read-only, reshaped or retyped in place, an aliased or retyped grad, a
missing grad, a frozen group, a new slot, a loaded state) is caught: the
step does and raises exactly what the checked step does."""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASE_IDS, CASES
from lec7rs import optim


def _make(cls, kw, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    params = [
        rng.standard_normal((3, 5)).astype(dtype),
        rng.standard_normal(7).astype(dtype),
        rng.standard_normal((2, 2, 3)).astype(dtype),
    ]
    grads = [rng.standard_normal(p.shape).astype(dtype) for p in params]
    second = {"lr": 0.02} if "lr" in kw else {}
    groups = [{"params": params[:2]}, {"params": params[2:], **second}]
    return cls(groups, **kw), params, grads


def _pair(cls, kw, dtype=np.float32):
    """The same optimizer twice: one with its plan cache, one without."""
    a, pa, ga = _make(cls, kw, dtype)
    b, pb, gb = _make(cls, kw, dtype)
    b._cache = None
    return (a, pa, ga), (b, pb, gb)


def _snapshot(opt, params):
    state = opt.state_dict()["state"]
    out = [p.tobytes() for p in params]
    for i in sorted(state):
        for k, v in sorted(state[i].items()):
            out.append((i, k, np.asarray(v).tobytes()))
    return out


def _outcome(opt, params, grads, **kw):
    before = _snapshot(opt, params)
    try:
        opt.step(grads, **kw)
    except (ValueError, TypeError) as err:
        assert _snapshot(opt, params) == before, "a call that raised changed something"
        return (type(err), str(err))
    return None


@pytest.mark.parametrize(("cls", "_ref", "kw"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_planned_step_is_the_checked_step(cls, _ref, kw, dtype):
    (a, pa, ga), (b, pb, gb) = _pair(cls, kw, dtype)
    for t in range(6):
        for g, h in zip(ga, gb):
            g *= 0.9
            h *= 0.9
        a.step(ga)
        b.step(gb)
        assert _snapshot(a, pa) == _snapshot(b, pb), t
    assert a._cache.planned


def _lr(opt, params, grads):
    opt.param_groups[0]["lr"] *= 0.5


def _lr_bad(opt, params, grads):
    opt.param_groups[0]["lr"] = -1.0


def _betas_list(opt, params, grads):
    opt.param_groups[0]["betas"] = [0.9, 0.999]


def _read_only(opt, params, grads):
    params[1].flags.writeable = False


def _reshape(opt, params, grads):
    params[0].shape = (5, 3)


def _retype(opt, params, grads):
    params[1].dtype = np.int32 if params[1].dtype == np.float32 else np.int64


def _alias(opt, params, grads):
    grads[1] = params[1]


def _alias_state(opt, params, grads):
    grads[0] = opt.state[next(iter(opt.state))]["exp_avg"]


def _grad_dtype(opt, params, grads):
    grads[0] = grads[0].astype(np.float16)


def _grad_strided(opt, params, grads):
    grads[0] = np.asfortranarray(grads[0])


def _grad_shape(opt, params, grads):
    grads[1] = grads[1][:-1].copy()


def _grad_none(opt, params, grads):
    grads[1] = None


def _grad_back(opt, params, grads):
    grads[1] = np.full_like(params[1], 0.25)


def _frozen(opt, params, grads):
    opt.param_groups[1]["frozen"] = True


def _thawed(opt, params, grads):
    opt.param_groups[1]["frozen"] = False


def _amsgrad(opt, params, grads):
    opt.param_groups[0]["amsgrad"] = True


def _reload(opt, params, grads):
    opt.load_state_dict(opt.state_dict())


def _add_group(opt, params, grads):
    extra = np.linspace(-1, 1, 9).astype(params[0].dtype)
    params.append(extra)
    grads.append(np.full_like(extra, 0.5))
    opt.add_param_group({"params": [extra]})


def _param_replaced(opt, params, grads):
    # The list item replaced by an equal array at another address.
    fresh = params[0].copy()
    opt.param_groups[0]["params"][0] = fresh
    params[0] = fresh


def _check_finite_nan(opt, params, grads):
    opt.check_finite = True
    grads[2] = grads[2].copy()
    grads[2].flat[0] = np.nan


MUTATIONS = [
    _lr,
    _lr_bad,
    _betas_list,
    _read_only,
    _reshape,
    _retype,
    _alias,
    _alias_state,
    _grad_dtype,
    _grad_strided,
    _grad_shape,
    _grad_none,
    _grad_back,
    _frozen,
    _thawed,
    _amsgrad,
    _reload,
    _add_group,
    _param_replaced,
    _check_finite_nan,
]


@pytest.mark.parametrize("mutate", MUTATIONS, ids=[m.__name__.strip("_") for m in MUTATIONS])
def test_a_change_after_the_plan_gives_the_checked_outcome(mutate):
    (a, pa, ga), (b, pb, gb) = _pair(optim.Adam, dict(lr=0.01))
    for _ in range(3):
        a.step(ga)
        b.step(gb)
    assert a._cache.planned
    mutate(a, pa, ga)
    mutate(b, pb, gb)
    for _ in range(2):  # the changed step, then one more
        assert _outcome(a, pa, ga) == _outcome(b, pb, gb)
        assert _snapshot(a, pa) == _snapshot(b, pb)


def test_a_list_hyperparameter_changed_in_place_is_taken():
    (a, pa, ga), (b, pb, gb) = _pair(optim.Adam, dict(lr=0.01))
    for opt in (a, b):
        opt.param_groups[0]["betas"] = [0.9, 0.999]
    for beta1 in [0.9, 0.9, 0.5, 0.5, 0.7]:
        for opt in (a, b):
            opt.param_groups[0]["betas"][0] = beta1
        a.step(ga)
        b.step(gb)
        assert _snapshot(a, pa) == _snapshot(b, pb)
    assert a._cache.planned


def test_grad_scale_changes_are_taken_each_step():
    (a, pa, ga), (b, pb, gb) = _pair(optim.SGD, dict(lr=0.1, momentum=0.9))
    for scale in [None, 0.5, None, 2.0, float("inf"), None]:
        kw = {} if scale is None else {"grad_scale": scale}
        assert _outcome(a, pa, ga, **kw) == _outcome(b, pb, gb, **kw)
        assert _snapshot(a, pa) == _snapshot(b, pb)


def test_a_scheduler_changing_lr_every_step_keeps_the_plan_exact():
    (a, pa, ga), (b, pb, gb) = _pair(optim.Adam, dict(lr=0.01))
    sa = optim.lr_scheduler.CosineAnnealingLR(a, T_max=7)
    sb = optim.lr_scheduler.CosineAnnealingLR(b, T_max=7)
    for _ in range(10):
        a.step(ga)
        b.step(gb)
        sa.step()
        sb.step()
        assert _snapshot(a, pa) == _snapshot(b, pb)
    assert a._cache.planned


def test_the_plan_cache_starts_empty_and_can_be_cleared():
    opt, _, grads = _make(optim.Adam, dict(lr=0.01))
    assert not opt._cache.planned
    opt.step(grads)  # creates the state: nothing to plan yet
    assert not opt._cache.planned
    opt.step(grads)
    assert opt._cache.planned
    opt._cache.clear()
    assert not opt._cache.planned
    big = optim.SGD([np.zeros(1 << 20, np.float32)], lr=0.1)
    for _ in range(2):
        big.step([np.ones(1 << 20, np.float32)])
    assert not big._cache.planned  # a released step is never planned


class _ReenteringLr:
    """An lr whose conversion steps the optimizer again (once)."""

    def __init__(self, grads):
        self.opt, self.grads, self.inside = None, grads, False

    def __float__(self):
        if self.opt is not None and not self.inside:
            self.inside = True
            try:
                self.opt.step(self.grads)
            finally:
                self.inside = False
        return 0.01


def test_a_step_re_entered_from_a_hyperparameter_is_the_checked_one():
    (a, pa, ga), (b, pb, gb) = _pair(optim.SGD, dict(lr=0.1, momentum=0.9))
    for opt, grads in ((a, ga), (b, gb)):
        opt.step(grads)
        opt.step(grads)
        lr = _ReenteringLr(grads)
        opt.param_groups[0]["lr"] = lr
        lr.opt = opt
    for _ in range(3):
        a.step(ga)
        b.step(gb)
        assert _snapshot(a, pa) == _snapshot(b, pb)


class _ClearingLr:
    """An lr whose conversion empties the grads list (once)."""

    def __init__(self, grads):
        self.grads, self.armed = grads, False

    def __float__(self):
        if self.armed:
            self.armed = False
            self.grads.clear()
        return 0.01


def test_a_hyperparameter_that_changes_the_call_is_checked_after_it_ran():
    # The plan reads a changed group (running the lr's `__float__`) before it
    # checks the lists, so the emptied grads list is seen: the checked
    # step's error, nothing changed.
    outcomes = []
    for cached in (True, False):
        opt, params, grads = _make(optim.SGD, dict(lr=0.1, momentum=0.9))
        if not cached:
            opt._cache = None
        opt.step(grads)
        opt.step(grads)
        lr = _ClearingLr(grads)
        opt.param_groups[0]["lr"] = lr
        opt.step(grads)  # the new lr is read by name: a plan again
        assert opt._cache is None or opt._cache.planned
        lr.armed = True
        outcomes.append(_outcome(opt, params, grads))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is ValueError and "grads" in outcomes[0][1]


class _GrowingLr:
    """An lr whose conversion adds a param group or loads a state dict
    into the optimizer that is stepping (while armed)."""

    def __init__(self, opt, extra, saved):
        self.opt, self.extra, self.saved, self.armed, self.how = opt, extra, saved, False, None

    def __float__(self):
        if self.armed:
            if self.how == "add":
                self.opt.add_param_group({"params": [self.extra]})
            else:
                self.opt.load_state_dict(self.saved)
        return 0.01


@pytest.mark.parametrize("how", ["add", "load"])
@pytest.mark.parametrize("cached", [True, False])
def test_groups_and_state_cannot_change_from_inside_a_step(how, cached):
    # Planned or checked, the step refuses with a clear error, and nothing
    # changes: not the params, the state or the groups (the extra array can
    # still be added afterwards, so it was not half added).
    opt, params, grads = _make(optim.SGD, dict(lr=0.1, momentum=0.9))
    if not cached:
        opt._cache = None
    extra = np.ones(3, np.float32)
    lr = _GrowingLr(opt, extra, opt.state_dict())
    opt.param_groups[0]["lr"] = lr
    opt.step(grads)
    opt.step(grads)
    assert opt._cache is None or opt._cache.planned
    lr.armed, lr.how = True, how
    before, groups = _snapshot(opt, params), len(opt.param_groups)
    # The step reads the lr as a number: the refusal is named in its error.
    with pytest.raises(TypeError, match=r"__float__ raised RuntimeError: .*cannot run during step"):
        opt.step(grads)
    assert _snapshot(opt, params) == before
    assert len(opt.param_groups) == groups
    lr.armed = False
    opt.add_param_group({"params": [extra]})
    assert len(opt.param_groups) == groups + 1
    opt.step([*grads, np.ones(3, np.float32)])
