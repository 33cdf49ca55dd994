"""The optimizer boundary: one call into Rust per step (the first included),
grad_scale, AdamW as Adam(decoupled_weight_decay=True), strict options, state
dicts that must be whole, and steps that are atomic across threads and fork."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest
from cases import CASE_IDS, CASES
from conftest import assert_unchanged, in_forked_child, snapshot
from lec7rs import _core, optim
from lec7rs.optim import optimizer as optimizer_module


def _run(cls, kw, grads_of, steps=6, seed=3):
    rng = np.random.default_rng(seed)
    shapes = [(5,), (40000,), (3, 7)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    opt = cls(params, **kw)
    for _ in range(steps):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        grads_of(opt, grads)
    return params, opt.state_dict()


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_grad_scale_equals_scaling_the_grads_first(cls, rule, kw):
    c = 0.37

    def scaled(opt, grads):
        opt.step(grads, grad_scale=c)

    def premultiplied(opt, grads):
        opt.step([g * np.float32(c) for g in grads])

    got, want = _run(cls, kw, scaled), _run(cls, kw, premultiplied)
    for a, b in zip(got[0], want[0]):
        assert a.tobytes() == b.tobytes()


def test_grad_scale_never_writes_the_grads_and_is_checked():
    p = np.ones(10, np.float32)
    g = np.full(10, 2.0, np.float32)
    opt = optim.SGD([p], lr=0.1)
    opt.step([g], grad_scale=0.5)
    np.testing.assert_array_equal(g, 2.0)
    np.testing.assert_array_equal(p, np.float32(1) - np.float32(0.1) * np.float32(1.0))
    before = snapshot(opt)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="grad_scale"):
            opt.step([g], grad_scale=bad)
    with pytest.raises(TypeError, match="grad_scale"):
        opt.step([g], grad_scale="2")
    assert_unchanged(opt, before)


def test_adamw_is_adam_with_decoupled_weight_decay():
    def plain(opt, grads):
        opt.step(grads)

    kw = dict(lr=0.01, weight_decay=0.1, amsgrad=True)
    a = _run(optim.AdamW, kw, plain)
    b = _run(optim.Adam, {**kw, "decoupled_weight_decay": True}, plain)
    for x, y in zip(a[0], b[0]):
        assert x.tobytes() == y.tobytes()
    assert a[1]["param_groups"][0]["decoupled_weight_decay"] is True


@pytest.mark.parametrize(("cls", "rule", "kw"), CASES, ids=CASE_IDS)
def test_first_step_is_one_call_into_rust(cls, rule, kw, monkeypatch):
    calls = []
    real = _core.optimizer_step

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(optimizer_module, "_step", counting)
    p = np.ones(8, np.float32)
    opt = cls([p], **kw)
    for _ in range(3):
        # A recorded plan is tried first (one call; the checked step,
        # a second, only where the plan does not hold).
        tried = int(opt._fast is not None)
        before = len(calls)
        opt.step([np.full(8, 0.5, np.float32)])
        assert tried + len(calls) - before == 1
    assert opt.state[0]["step"] == 3


def test_options_are_strict_bools():
    p = np.zeros(3, np.float32)
    with pytest.raises(TypeError, match=r"param_groups\[0\]: frozen"):
        optim.SGD([{"params": [p], "frozen": "False"}], lr=0.1)
    with pytest.raises(TypeError, match="nesterov"):
        optim.SGD([p], lr=0.1, momentum=0.9, nesterov="yes")
    with pytest.raises(TypeError, match="check_finite"):
        optim.SGD([p], lr=0.1, check_finite=1)
    opt = optim.SGD([{"params": [p], "frozen": np.bool_(True)}], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    np.testing.assert_array_equal(p, 0)


def test_state_dict_must_be_whole():
    p = np.ones(4, np.float32)
    opt = optim.Adam([p], lr=0.1)
    opt.step([np.ones(4, np.float32)])
    sd = opt.state_dict()
    before = snapshot(opt)
    for key in ("state", "param_groups"):
        broken = {k: v for k, v in sd.items() if k != key}
        with pytest.raises(ValueError, match=repr(key)):
            opt.load_state_dict(broken)
    huge = {**sd, "state": {0: {**sd["state"][0], "step": 2**63 - 1}}}
    with pytest.raises(ValueError, match="step"):
        opt.load_state_dict(huge)
    assert_unchanged(opt, before)


def test_a_step_count_at_its_limit_raises_and_changes_nothing():
    p = np.ones(4, np.float32)
    opt = optim.Adam([p], lr=0.1)
    opt.step([np.ones(4, np.float32)])
    sd = opt.state_dict()
    sd["state"][0]["step"] = 2**62
    opt.load_state_dict(sd)
    opt._steps[0] = 2**63 - 1  # as if stepped that far
    before = snapshot(opt)
    with pytest.raises(ValueError, match="step count"):
        opt.step([np.ones(4, np.float32)])
    assert_unchanged(opt, before)


def test_scalar_state_round_trips():
    p = np.ones(6, np.float64)
    opt = optim.NAdam([p], lr=0.1)
    for _ in range(3):
        opt.step([np.full(6, 0.25)])
    sd = opt.state_dict()
    assert isinstance(sd["state"][0]["mu_product"], float)
    q = np.ones(6, np.float64)
    other = optim.NAdam([q], lr=0.1)
    other.load_state_dict(sd)
    other._params[0][...] = p
    for o in (opt, other):
        o.step([np.full(6, 0.5)])
    assert p.tobytes() == other._params[0].tobytes()
    bad = {**sd, "state": {0: {**sd["state"][0], "mu_product": "x"}}}
    with pytest.raises(ValueError, match="mu_product"):
        other.load_state_dict(bad)


def test_concurrent_steps_and_snapshots_are_never_torn():
    # Two threads step one optimizer while a third takes state dicts: every
    # snapshot is of a whole number of steps, and no step is lost.
    n = 200_000
    p = np.zeros(n, np.float32)
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    g = np.ones(n, np.float32)
    steps_per_thread = 30
    torn = []

    def stepper():
        for _ in range(steps_per_thread):
            opt.step([g])

    def snapper():
        for _ in range(40):
            sd = opt.state_dict()
            buf = sd["state"].get(0, {}).get("momentum_buffer")
            if buf is not None and not (buf == buf[0]).all():
                torn.append(sd["state"][0]["step"])

    threads = [threading.Thread(target=f) for f in (stepper, stepper, snapper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn
    assert opt.state[0]["step"] == 2 * steps_per_thread
    assert (p == p[0]).all()


def test_concurrent_first_steps_create_state_once():
    for _ in range(20):
        p = np.zeros(100_000, np.float32)
        opt = optim.SGD([p], lr=1.0, momentum=0.9)
        g = np.ones_like(p)
        threads = [threading.Thread(target=opt.step, args=([g],)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert opt.state[0]["step"] == 2
        # b1 = g, b2 = 0.9 * g + g: two updates of the param.
        np.testing.assert_allclose(p[:3], -(1.0 + 1.9))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_another_thread_steps():
    # The child inherits a parent thread's step mid-flight: it must still
    # step that optimizer (no stale lock, no stale borrow).
    n = 2_000_000
    p = np.zeros(n, np.float32)
    opt = optim.Adam([p], lr=0.01)
    g = np.ones(n, np.float32)
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            opt.step([g])

    t = threading.Thread(target=loop)
    t.start()
    try:
        for _ in range(5):
            assert in_forked_child(lambda: opt.step([g]) is None) == 0
    finally:
        stop.set()
        t.join()


@pytest.mark.skipif(sys.platform == "win32", reason="timing of a large setup")
def test_many_groups_and_tensors_build_and_step():
    # Linear in groups and tensors (was quadratic): a smoke check, timed in
    # benches/optim_scaling.py.
    params = [np.zeros(3, np.float32) for _ in range(3000)]
    opt = optim.SGD([{"params": [q]} for q in params], lr=0.1, momentum=0.9)
    opt.step([np.ones(3, np.float32)] * len(params))
    assert opt.state[len(params) - 1]["step"] == 1


def test_polyak_average_snapshots_during_updates_are_never_torn():
    from lec7rs.averaging import PolyakAverage

    n = 300_000
    p = np.zeros(n, np.float32)
    avg = PolyakAverage([p], decay=0.5)
    torn = []

    def updater():
        for k in range(40):
            p[...] = k  # (the params move between updates, as in training)
            avg.update()

    def snapper():
        for _ in range(60):
            a = avg.state_dict()["averages"][0]
            if not (a == a[0]).all():
                torn.append(a[0])

    threads = [threading.Thread(target=f) for f in (updater, snapper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn
    assert avg.n_averaged == 40
