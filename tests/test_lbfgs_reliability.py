"""lec7rs.optim.LBFGS reliability: the line search is production code (not
the test oracle), a binding max_eval caps the strong-Wolfe search as recent
PyTorch does, the history never exceeds history_size (also after a load), a
step that raises changes nothing, step and snapshots hold the optimizer's
lock, and the int counters of a state dict are bounded."""

from __future__ import annotations

import ast
import inspect
import threading
import time

import numpy as np
import pytest
from lec7rs import checkpoint
from lec7rs.optim import LBFGS, _strong_wolfe
from lec7rs.optim import lbfgs as lbfgs_module
from lec7rs.reference import lbfgs as reference_lbfgs
from lec7rs.reference import torch_lbfgs

C = np.array([1.0, 2.0, 3.0, 0.5, 4.0])


def far_quadratic(centre=1e6):
    """``0.5 sum c (x - centre)^2`` from 0: the first step's t = 1 / |g|_1 is
    about 1e-7 of the minimiser's, so the strong-Wolfe search brackets for
    several evaluations (the evaluation budget binds)."""

    def f(x):
        r = x - centre
        return 0.5 * float(C @ (r * r)), C * r

    return f


def ridge(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((40, 6))
    b = rng.standard_normal(40)

    def f(x):
        r = a @ x - b
        return 0.5 * float(r @ r) / 40 + 0.05 * float(x @ x), a.T @ r / 40 + 0.1 * x

    return f


def counting_pair(f, n, **kw):
    """LBFGS and the reference on ``f`` from zeros, each counting its calls."""
    p = [np.zeros(n)]
    opt = LBFGS(p, **kw)
    calls = {"opt": 0, "ref": 0}

    def closure():
        calls["opt"] += 1
        loss, g = f(p[0])
        return loss, [g]

    def flat_closure(x):
        calls["ref"] += 1
        return f(x)

    return p, opt, closure, flat_closure, calls


def same_tree(a, b):
    """Equal state dicts, arrays bit for bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for k in a:
            same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            same_tree(x, y)
    else:
        assert a == b or (a != a and b != b), (a, b)


# -- 1. the line search is production code --------------------------------------------


def test_the_line_search_lives_in_optim_not_in_the_reference():
    tree = ast.parse(inspect.getsource(lbfgs_module))
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
    assert not [m for m in imported if "reference" in m], imported
    assert lbfgs_module.torch_strong_wolfe is _strong_wolfe.torch_strong_wolfe
    assert _strong_wolfe.torch_strong_wolfe.__module__ == "lec7rs.optim._strong_wolfe"
    # One copy: the oracle uses the production search.
    assert reference_lbfgs.torch_strong_wolfe is _strong_wolfe.torch_strong_wolfe
    source = inspect.getsource(reference_lbfgs)
    assert "def torch_strong_wolfe" not in source and "def _cubic" not in source
    assert "lec7rs.optim._strong_wolfe" in reference_lbfgs.__doc__


# -- 2. max_eval caps the strong-Wolfe search ------------------------------------------


@pytest.mark.parametrize("max_eval", [1, 2, 3, 6])
def test_a_binding_max_eval_caps_the_line_search_as_torch(max_eval):
    f = far_quadratic()
    kw = dict(line_search_fn="strong_wolfe", max_iter=20, max_eval=max_eval)
    p, opt, closure, flat_closure, calls = counting_pair(f, 5, **kw)
    x = np.zeros(5)
    state: dict = {}
    for _ in range(5):
        calls.update(opt=0, ref=0)
        a = opt.step(closure)
        b = torch_lbfgs(flat_closure, x, state, **kw)
        # PyTorch's search evaluates its first trial point before its budget
        # (max_ls = max_eval - current_evals) applies: at most max_eval + 1.
        assert calls["opt"] == calls["ref"] <= max_eval + 1
        assert a == pytest.approx(b, rel=1e-12)
        np.testing.assert_allclose(p[0], x, rtol=1e-10, atol=0)
    mine = opt.state_dict()["state"][0]
    assert mine["func_evals"] == state["func_evals"] and mine["n_iter"] == state["n_iter"]


def test_a_generous_max_eval_is_not_binding():
    f = far_quadratic(1e4)
    kw = dict(line_search_fn="strong_wolfe", max_iter=20, max_eval=200)
    p, opt, closure, flat_closure, calls = counting_pair(f, 5, **kw)
    x = np.zeros(5)
    state: dict = {}
    for _ in range(3):
        opt.step(closure)
        torch_lbfgs(flat_closure, x, state, **kw)
    assert calls["opt"] == calls["ref"]
    np.testing.assert_allclose(p[0], x, rtol=1e-10, atol=1e-9)


def test_without_line_search_a_step_never_exceeds_max_eval():
    f = far_quadratic(10.0)
    for max_eval in (1, 2, 5):
        _, opt, closure, flat_closure, calls = counting_pair(
            f, 5, max_iter=20, max_eval=max_eval, lr=0.01
        )
        x = np.zeros(5)
        state: dict = {}
        for _ in range(3):
            calls.update(opt=0, ref=0)
            opt.step(closure)
            torch_lbfgs(flat_closure, x, state, max_iter=20, max_eval=max_eval, lr=0.01)
            # The limit is checked after an iteration's evaluation (PyTorch):
            # max_eval=1 still makes the first iteration's one.
            assert calls["opt"] == calls["ref"] <= max(max_eval, 2)


# -- 3. the history never exceeds history_size --------------------------------------------


def long_history_state_dict(n_pairs=22, n=6):
    """A real state dict (history_size=100) whose history holds ``n_pairs``
    made-up pairs with y = A s (A SPD, so y's > 0), the newest last."""
    f = ridge()
    p = [np.zeros(n)]
    opt = LBFGS(p, history_size=100, max_iter=3)
    opt.step(lambda: (f(p[0])[0], [f(p[0])[1]]))
    sd = opt.state_dict()
    rng = np.random.default_rng(7)
    m = rng.standard_normal((n, n))
    a = m @ m.T + n * np.eye(n)
    stps = [rng.standard_normal(n) for _ in range(n_pairs)]
    dirs = [a @ s for s in stps]
    sd["state"][0].update(
        old_stps=stps,
        old_dirs=dirs,
        ro=[1.0 / float(y @ s) for y, s in zip(dirs, stps)],
        H_diag=float(dirs[-1] @ stps[-1]) / float(dirs[-1] @ dirs[-1]),
    )
    return sd, p[0].copy()


def test_a_state_dict_with_more_pairs_than_history_size_keeps_the_newest():
    sd, x0 = long_history_state_dict()
    sd["param_groups"][0]["history_size"] = 2
    p = [x0.copy()]
    opt = LBFGS(p, history_size=2, max_iter=3)
    opt.load_state_dict(sd)
    held = opt.state_dict()["state"][0]
    assert len(held["old_dirs"]) == len(held["old_stps"]) == len(held["ro"]) == 2
    same_tree(held["old_dirs"], sd["state"][0]["old_dirs"][-2:])
    same_tree(held["old_stps"], sd["state"][0]["old_stps"][-2:])
    assert held["ro"] == sd["state"][0]["ro"][-2:]

    # It continues as PyTorch does from the newest two pairs.
    f = ridge()
    x = x0.copy()
    ref_state = {k: v for k, v in sd["state"][0].items()}
    for key in ("old_dirs", "old_stps", "ro"):
        ref_state[key] = list(ref_state[key][-2:])
    for _ in range(4):
        opt.step(lambda: (f(p[0])[0], [f(p[0])[1]]))
        torch_lbfgs(f, x, ref_state, history_size=2, max_iter=3)
        assert len(opt.state[0]["old_dirs"]) <= 2
        np.testing.assert_allclose(p[0], x, rtol=1e-10, atol=1e-13)


def test_the_history_never_exceeds_history_size_after_a_load():
    sd, x0 = long_history_state_dict()
    sd["param_groups"][0]["history_size"] = 2
    p = [x0.copy()]
    opt = LBFGS(p, history_size=2)
    opt.load_state_dict(sd)
    f = far_quadratic(3.0)
    for _ in range(6):
        opt.step(lambda: (f(p[0][:5])[0], [np.append(f(p[0][:5])[1], p[0][5])]))
        assert len(opt.state_dict()["state"][0]["old_dirs"]) <= 2


def test_lowering_history_size_between_steps_drops_the_oldest():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, history_size=10, max_iter=6)
    opt.step(lambda: (f(p[0] + 1)[0], [f(p[0] + 1)[1]]))
    assert len(opt.state[0]["old_dirs"]) > 2
    opt.param_groups[0]["history_size"] = 2
    for _ in range(2):
        opt.step(lambda: (f(p[0] - 1)[0], [f(p[0] - 1)[1]]))
        assert len(opt.state[0]["old_dirs"]) <= 2


def test_a_long_history_state_dict_round_trips_through_a_checkpoint(tmp_path):
    sd, x0 = long_history_state_dict()
    sd["param_groups"][0]["history_size"] = 3
    p = [x0.copy()]
    opt = LBFGS(p, history_size=3)
    opt.load_state_dict(sd)
    checkpoint.save(tmp_path / "c.ckpt", p, optimizer=opt)
    q = [np.zeros_like(x0)]
    other = LBFGS(q, history_size=3)
    checkpoint.load(tmp_path / "c.ckpt", q, optimizer=other)
    same_tree(other.state_dict(), opt.state_dict())
    assert q[0].tobytes() == p[0].tobytes()


# -- 4. a step that raises changes nothing ----------------------------------------------------


class Boom(Exception):
    pass


def started_optimizer(line_search_fn):
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, line_search_fn=line_search_fn, max_iter=2, history_size=4)
    for _ in range(2):
        opt.step(lambda: (f(p[0] - 2)[0], [f(p[0] - 2)[1]]))
    return f, p, opt


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("fail_at", [1, 2, 3, 5])
@pytest.mark.parametrize("exc", [Boom, KeyboardInterrupt, "bad grads"])
def test_a_closure_that_raises_mid_step_changes_nothing(line_search_fn, fail_at, exc):
    f, p, opt = started_optimizer(line_search_fn)
    opt.param_groups[0]["max_iter"] = 10
    opt.param_groups[0]["max_eval"] = 12
    before_x = p[0].copy()
    before = opt.state_dict()
    calls = [0]

    def closure():
        calls[0] += 1
        if calls[0] == fail_at:
            if exc == "bad grads":
                return 1.0, [np.zeros(5)]  # a wrong shape: ValueError from the step
            raise exc("from the closure")
        loss, g = f(p[0] + 3)
        return loss, [g]

    with pytest.raises(ValueError if exc == "bad grads" else exc):
        opt.step(closure)
    assert calls[0] == fail_at
    assert p[0].tobytes() == before_x.tobytes()
    same_tree(opt.state_dict(), before)

    # And the next step is the one that would have come without the failure.
    _, q, fresh = started_optimizer(line_search_fn)
    for o, x in ((opt, p), (fresh, q)):
        o.param_groups[0]["max_iter"] = 10
        o.param_groups[0]["max_eval"] = 12
        o.step(lambda x=x: (f(x[0] + 3)[0], [f(x[0] + 3)[1]]))
    assert p[0].tobytes() == q[0].tobytes()
    same_tree(opt.state_dict(), fresh.state_dict())


def test_a_first_step_that_raises_leaves_no_state():
    p = [np.ones(4)]
    opt = LBFGS(p, line_search_fn="strong_wolfe")
    calls = [0]

    def closure():
        calls[0] += 1
        if calls[0] == 3:
            raise Boom
        return float(p[0] @ p[0]), [2 * p[0]]

    with pytest.raises(Boom):
        opt.step(closure)
    assert (p[0] == 1).all() and opt.state == {} and not opt.last_step_skipped


# -- 5. the lock ------------------------------------------------------------------------------


def in_thread(fn, timeout=20.0):
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # reported below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "deadlock"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_a_closure_may_call_state_dict():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, line_search_fn="strong_wolfe", max_iter=3)
    seen = []

    def closure():
        seen.append(opt.state_dict())
        return f(p[0])[0], [f(p[0])[1]]

    in_thread(lambda: opt.step(closure))
    # Inside the step the committed state is still the one before it.
    assert all(sd["state"] == {} for sd in seen) and len(seen) > 1
    assert opt.state_dict()["state"][0]["func_evals"] == len(seen)


def slow_step(opt, p, f, entered):
    def closure():
        entered.set()
        time.sleep(0.05)
        return f(p[0])[0], [f(p[0])[1]]

    return lambda: opt.step(closure)


def test_state_dict_from_another_thread_waits_for_the_step():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, max_iter=4)
    entered = threading.Event()
    t = threading.Thread(target=slow_step(opt, p, f, entered), daemon=True)
    t.start()
    assert entered.wait(10)
    during = opt.state_dict()  # blocks until the step has committed
    x_during = p[0].copy()
    t.join(20)
    assert not t.is_alive()
    after = opt.state_dict()
    same_tree(during, after)
    assert x_during.tobytes() == p[0].tobytes()


def test_load_state_dict_from_another_thread_is_not_lost_to_the_step():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, max_iter=4)
    q = [np.zeros(6)]
    other = LBFGS(q, max_iter=2, history_size=7)
    other.step(lambda: (f(q[0] + 5)[0], [f(q[0] + 5)[1]]))
    wanted = other.state_dict()
    entered = threading.Event()
    t = threading.Thread(target=slow_step(opt, p, f, entered), daemon=True)
    t.start()
    assert entered.wait(10)
    opt.load_state_dict(wanted)  # waits for the step, then wins
    t.join(20)
    assert not t.is_alive()
    same_tree(opt.state_dict(), wanted)


def test_concurrent_snapshots_are_never_torn():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, max_iter=2, line_search_fn="strong_wolfe")
    stop = threading.Event()
    snapshots = []

    def watch():
        while not stop.is_set():
            snapshots.append(opt.state_dict())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    ends = []
    try:
        for _ in range(30):
            opt.step(lambda: (f(p[0] + 1)[0], [f(p[0] + 1)[1]]))
            ends.append(opt.state_dict()["state"][0]["func_evals"])
    finally:
        stop.set()
        t.join(20)
    # Every snapshot is the state between two steps, never one mid-step.
    allowed = {0, *ends}
    for sd in snapshots:
        assert sd["state"].get(0, {}).get("func_evals", 0) in allowed


# -- 6. bounded ints -----------------------------------------------------------------------------


def stepped():
    f = ridge()
    p = [np.zeros(6)]
    opt = LBFGS(p, max_iter=3)
    opt.step(lambda: (f(p[0])[0], [f(p[0])[1]]))
    return opt


@pytest.mark.parametrize("key", ["n_iter", "func_evals"])
@pytest.mark.parametrize("value", [-1, 2**62 + 1, 2**63, 10**30, 1.0, True, "3", None])
def test_out_of_range_counters_are_refused_and_change_nothing(key, value):
    opt = stepped()
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["state"][0][key] = value
    with pytest.raises(ValueError, match=key):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match=key):
        opt._stage_load_state_dict(bad)
    same_tree(opt.state_dict(), before)


@pytest.mark.parametrize("value", [0, 2**62, np.int64(2**62), np.int32(5)])
def test_counters_in_range_are_accepted(value):
    opt = stepped()
    sd = opt.state_dict()
    sd["state"][0]["n_iter"] = value
    sd["state"][0]["func_evals"] = value
    opt.load_state_dict(sd)
    held = opt.state_dict()["state"][0]
    assert held["n_iter"] == held["func_evals"] == int(value)
    assert type(held["n_iter"]) is int


@pytest.mark.parametrize("key", ["t", "H_diag", "prev_loss", "ro"])
def test_huge_ints_in_number_fields_are_a_value_error(key):
    opt = stepped()
    before = opt.state_dict()
    bad = opt.state_dict()
    if key == "ro":
        bad["state"][0]["ro"] = [10**400] * len(bad["state"][0]["ro"])
        assert bad["state"][0]["ro"]
    else:
        bad["state"][0][key] = 10**400
    with pytest.raises(ValueError, match=key):
        opt.load_state_dict(bad)
    same_tree(opt.state_dict(), before)
