"""The lock of a stateful object (``_core.Lock``, rust/python/src/lock.rs):
threading.RLock's behaviour, and a planned small step (which takes it in
Rust) serialised with every other call on its optimizer."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest
from conftest import in_forked_child
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
    # Adagrad with a grad of ones: after k steps its sum is k (exact), so a
    # snapshot taken across a step shows a sum that differs from its count.
    # A switch interval of 1 us makes the threads interleave often.
    p = np.zeros(64, np.float32)
    opt = optim.Adagrad([p], lr=0.5)
    g = [np.ones(64, np.float32)]
    opt.step(g)
    opt.step(g)
    assert opt._fast is not None
    per_thread = 5000
    torn = []

    def stepper():
        for _ in range(per_thread):
            opt.step(g)

    def snapper():
        while any(w.is_alive() for w in steppers):
            sd = opt.state_dict()["state"][0]
            if not (sd["sum"] == sd["step"]).all():
                torn.append(sd["step"])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        steppers = [threading.Thread(target=stepper) for _ in range(2)]
        workers = [*steppers, threading.Thread(target=snapper)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    assert not torn
    assert opt.state[0]["step"] == 2 + 2 * per_thread
    ref = np.zeros(64, np.float32)
    sequential = optim.Adagrad([ref], lr=0.5)
    for _ in range(2 + 2 * per_thread):
        sequential.step(g)
    assert p.tobytes() == ref.tobytes()


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

    def child():  # the holder does not exist here
        opt.step(g)
        return opt.state[0]["step"] == 3

    try:
        assert in_forked_child(child) == 0
    finally:
        stop.set()
        t.join()


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_ctrl_c_stops_a_waiting_acquire():
    # The main thread waits for a lock another thread holds; SIGINT raises
    # KeyboardInterrupt there within a poll slice, and the lock is left
    # to its holder.
    lock = _core.Lock()
    held, stop = threading.Event(), threading.Event()

    def holder():
        with lock:
            held.set()
            stop.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    main = threading.main_thread().ident
    timer = threading.Timer(0.1, signal.pthread_kill, args=(main, signal.SIGINT))
    timer.start()
    start = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.acquire(timeout=5)
        assert time.perf_counter() - start < 2
        assert lock.locked() and not lock._is_owned()
    finally:
        timer.cancel()
        stop.set()
        t.join()
    assert not lock.locked()
