"""The lock of a stateful object (``_core.Lock``, rust/python/src/lock.rs):
threading.RLock's behaviour, and a planned small step (which takes it in
Rust) serialised with every other call on its optimizer."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from lec7rs import _core, optim


def test_it_is_re_entrant_and_owned_by_one_thread():
    lock = _core.Lock()
    assert not lock.locked()
    assert lock.acquire()
    assert lock.acquire(blocking=False)  # again, by its owner
    assert lock.locked() and lock._is_owned()
    got = []
    t = threading.Thread(target=lambda: got.append((lock.acquire(False), lock._is_owned())))
    t.start()
    t.join()
    assert got == [(False, False)]
    lock.release()
    assert lock.locked()  # held once more
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.release()
    with lock:
        assert lock._is_owned()
    assert not lock.locked()


def test_a_waiter_wakes_at_the_release_or_its_timeout():
    lock = _core.Lock()
    lock.acquire()
    start = time.perf_counter()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=0.05)))
    t.start()
    t.join()
    assert got == [False] and time.perf_counter() - start >= 0.05
    order = []

    def waiter():
        with lock:
            order.append("waiter")

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.05)
    order.append("owner")
    lock.release()
    t.join(5)
    assert order == ["owner", "waiter"] and not lock.locked()


def test_bad_arguments_are_refused():
    lock = _core.Lock()
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(False, 1.0)
    for bad in (-2.0, float("nan")):
        with pytest.raises(ValueError, match="non-negative"):
            lock.acquire(True, bad)
    assert not lock.locked()


def _small():
    p = np.zeros(64, np.float32)
    opt = optim.SGD([p], lr=1.0, momentum=0.5)
    g = [np.ones(64, np.float32)]
    opt.step(g)
    opt.step(g)
    assert opt._cache.planned and opt._fast is not None
    return opt, p, g


def test_a_planned_step_waits_for_a_thread_that_holds_the_lock():
    opt, p, g = _small()
    before = p.copy()
    done = threading.Event()

    def step():
        opt.step(g)
        done.set()

    with opt._lock:
        t = threading.Thread(target=step)
        t.start()
        assert not done.wait(0.1)  # blocked: nothing written meanwhile
        assert p.tobytes() == before.tobytes() and opt.state[0]["step"] == 2
    t.join(5)
    assert done.is_set() and opt.state[0]["step"] == 3


def test_a_planned_step_inside_the_owners_section_runs():
    opt, _, g = _small()
    with opt._lock:  # re-entrant, as a subclass's step holding the lock
        opt.step(g)
    assert opt.state[0]["step"] == 3 and not opt._lock.locked()


def test_planned_steps_and_snapshots_from_threads_are_never_torn():
    opt, p, g = _small()
    per_thread = 2000
    torn = []

    def stepper():
        for _ in range(per_thread):
            opt.step(g)

    def snapper():
        for _ in range(300):
            sd = opt.state_dict()["state"][0]
            if not (sd["momentum_buffer"] == sd["momentum_buffer"][0]).all():
                torn.append(sd["step"])

    workers = [threading.Thread(target=f) for f in (stepper, stepper, snapper)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not torn
    assert opt.state[0]["step"] == 2 + 2 * per_thread
    assert (p == p[0]).all()
    ref, q, h = _small()
    for _ in range(2 * per_thread):
        ref.step(h)
    assert p.tobytes() == q.tobytes()


def test_later_steps_take_the_plan_without_the_checked_call(monkeypatch):
    from lec7rs.optim import optimizer as optimizer_module

    opt, _, g = _small()
    calls = []
    real = optimizer_module._step
    monkeypatch.setattr(optimizer_module, "_step", lambda *a: calls.append(1) or real(*a))
    for _ in range(5):
        opt.step(g)
    assert calls == [] and opt.state[0]["step"] == 7


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_another_thread_holds_the_lock_steps():
    opt, _, g = _small()
    held, stop = threading.Event(), threading.Event()

    def holder():
        with opt._lock:
            held.set()
            stop.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        pid = os.fork()
        if pid == 0:  # child: the holder does not exist here
            code = 1
            try:
                opt.step(g)
                code = 0 if opt.state[0]["step"] == 3 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        t.join()
