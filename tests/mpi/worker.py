"""Checks run on every rank under ``mpiexec -n K`` by tests/test_distributed.py:
``python worker.py CHECK [ARGS]``. Each check asserts; the launcher checks
the exit status and the lines printed by rank 0."""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
from lec7rs import checkpoint, distributed, optim
from lec7rs.optim import lr_scheduler
from mpi4py import MPI

comm = MPI.COMM_WORLD
K, RANK = comm.Get_size(), comm.Get_rank()


def say(*a):
    if RANK == 0:
        print(*a, flush=True)


def rank_order_mean(local, op="mean"):
    """The NumPy reference: every rank's array, summed in rank order."""
    every = comm.allgather(local)
    acc = every[0].copy()
    for x in every[1:]:
        acc += x
    if op == "mean":
        acc /= acc.dtype.type(K)
    return acc


def check_allreduce():
    rng = np.random.default_rng(100 + RANK)
    shapes = [(0,), (1,), (7, 3), (1000,), (distributed.BUCKET + 5,), (33,)]
    for dtype in (np.float32, np.float64):
        for op in ("mean", "sum"):
            grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
            want = [rank_order_mean(g, op) for g in grads]
            distributed.allreduce_grads(grads, op=op)
            for g, w in zip(grads, want):
                assert g.dtype == dtype and g.tobytes() == w.tobytes()
            # the same bits on every rank
            digest = hashlib.sha256(b"".join(g.tobytes() for g in grads)).hexdigest()
            assert set(comm.allgather(digest)) == {digest}
    d = {"a": np.full(4, float(RANK)), "b": None, "c": np.ones(3, np.float32) * RANK}
    distributed.allreduce_grads(d, op="sum")
    assert (d["a"] == sum(range(K))).all() and d["b"] is None
    assert (d["c"] == np.float32(sum(range(K)))).all()
    # Misuse raises ValueError on every rank (no hang).
    for bad in ("shape", "none", "op"):
        g = [np.ones(3), np.ones(2)]
        op = "mean"
        if bad == "shape" and RANK == K - 1:
            g = [np.ones(3), np.ones(5)]
        if bad == "none" and RANK == 0:
            g = [np.ones(3), None]
        if bad == "op":
            op = "max"
        try:
            distributed.allreduce_grads(g, op=op)
        except ValueError as e:
            assert (K == 1 and bad != "op") or str(e), e
        else:
            assert K == 1 and bad != "op", bad
    say("allreduce ok")


RULES = [
    (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.Adam, dict(lr=0.01, amsgrad=True)),
    (optim.AdamW, dict(lr=0.01)),
    (optim.NAdam, dict(lr=0.01)),
    (optim.RAdam, dict(lr=0.01)),
    (optim.Adamax, dict(lr=0.01)),
    (optim.Adagrad, dict(lr=0.1)),
    (optim.Adadelta, dict()),
    (optim.RMSprop, dict(lr=0.01, centered=True, momentum=0.5)),
    (optim.Rprop, dict()),
    (optim.ASGD, dict(t0=2)),
    (optim.Lion, dict(lr=1e-3, weight_decay=0.1)),
]
SHAPES = [(7,), (3, 5), (1000,), (0,), (13,), (2, 2)]


def groups(params):
    return [
        {"params": {"w": params[0], "x": params[1], "y": params[2]}},
        {"params": {"z": params[3], "u": params[4]}, "lr": 0.05, "frozen": False},
        {"params": {"f": params[5]}, "frozen": True},
    ]


def check_sharded():
    for cls, kw in RULES:
        for dtype in (np.float32, np.float64):
            init = [np.random.default_rng(7).standard_normal(s).astype(dtype) for s in SHAPES]
            ps = [x.copy() for x in init]
            qs = [x.copy() for x in init]
            sharded = distributed.ShardedOptimizer(cls, groups(ps), **kw)
            plain = cls(groups(qs), **kw)
            s1 = lr_scheduler.StepLR(sharded, step_size=2, gamma=0.5)
            s2 = lr_scheduler.StepLR(plain, step_size=2, gamma=0.5)
            rng = np.random.default_rng(1000 + RANK)
            keys = ["w", "x", "y", "z", "u", "f"]
            for step in range(5):
                gs = {k: rng.standard_normal(s).astype(dtype) for k, s in zip(keys, SHAPES)}
                if step % 2:
                    gs["y"] = None  # a None grad, on every rank
                sharded.step(gs)
                reduced = {k: (None if v is None else v.copy()) for k, v in gs.items()}
                distributed.allreduce_grads(reduced)
                plain.step(reduced)
                s1.step()
                s2.step()
                for p, q in zip(ps, qs):
                    assert p.tobytes() == q.tobytes(), (cls.__name__, step)
            a, b = sharded.state_dict(), plain.state_dict()
            assert a["param_groups"] == b["param_groups"]
            assert a["state"].keys() == b["state"].keys()
            for i in a["state"]:
                for key, v in b["state"][i].items():
                    w = a["state"][i][key]
                    same = w.tobytes() == v.tobytes() if isinstance(v, np.ndarray) else w == v
                    assert same, (cls.__name__, i, key)
    # Params over several chunks of the collectives (one larger than a chunk).
    big = [(distributed.BUCKET + 7,), (5,), (2 * distributed.BUCKET // 3,)]
    init = [np.random.default_rng(8).standard_normal(s).astype(np.float32) for s in big]
    ps, qs = [x.copy() for x in init], [x.copy() for x in init]
    sharded = distributed.ShardedOptimizer(optim.Adam, ps, lr=0.01)
    plain = optim.Adam(qs, lr=0.01)
    rng = np.random.default_rng(2000 + RANK)
    for _ in range(3):
        gs = [rng.standard_normal(s).astype(np.float32) for s in big]
        sharded.step(gs)
        distributed.allreduce_grads(gs)
        plain.step(gs)
    assert all(p.tobytes() == q.tobytes() for p, q in zip(ps, qs))
    # Schedule-free: train / eval move the sharded params as the plain ones.
    for cls, kw in [
        (optim.ScheduleFreeAdamW, dict(lr=0.01, warmup_steps=2, weight_decay=0.1)),
        (optim.ScheduleFreeSGD, dict(lr=0.1, momentum=0.8)),
    ]:
        init = [np.random.default_rng(9).standard_normal(s).astype(np.float32) for s in SHAPES]
        ps, qs = [x.copy() for x in init], [x.copy() for x in init]
        sharded = distributed.ShardedOptimizer(cls, ps, **kw)
        plain = cls(qs, **kw)
        rng = np.random.default_rng(3000 + RANK)
        for step in range(6):
            gs = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
            sharded.step(gs)
            distributed.allreduce_grads(gs)
            plain.step(gs)
            if step in (2, 5):
                sharded.eval()
                plain.eval()
                assert not sharded.train_mode
                assert all(p.tobytes() == q.tobytes() for p, q in zip(ps, qs)), "eval"
                sharded.train()
                plain.train()
            assert all(p.tobytes() == q.tobytes() for p, q in zip(ps, qs)), (cls, step)
        a, b = sharded.state_dict(), plain.state_dict()
        assert a["param_groups"] == b["param_groups"]
    for cls in (optim.LAMB, optim.LARS, optim.Adafactor):
        try:
            distributed.ShardedOptimizer(cls, [np.ones((3, 3))], lr=0.1)
        except ValueError as e:
            assert "cannot be sharded" in str(e)
        else:
            raise AssertionError(cls)
    # Low precision is refused up front, naming the argument, with the
    # exception's own class (not a ValueError wrapping its name).
    import ml_dtypes

    refused = [
        (TypeError, "params:", [np.ones(8, ml_dtypes.bfloat16)], {}),
        (TypeError, "params:", [np.ones(8, np.float16)], {}),
        (ValueError, "state_dtype:", [np.ones(8, np.float32)], {"state_dtype": "int8"}),
        (ValueError, "state_dtype:", [np.ones(8, np.float32)], {"state_dtype": "bfloat16"}),
    ]
    for cls, prefix, params, kw in refused:
        try:
            distributed.ShardedOptimizer(optim.Adam, params, **kw)
        except cls as e:
            assert str(e).startswith(prefix) and "Error:" not in str(e), e
        else:
            raise AssertionError((params, kw))
    try:
        distributed.ShardedOptimizer(optim.Lookahead, [np.ones(4)])
    except TypeError as e:
        assert str(e).startswith("optimizer_class:"), e
    else:
        raise AssertionError("Lookahead")
    # Params that differ across ranks: ValueError on every rank.
    shape = (4,) if RANK == 0 else (5,)
    try:
        distributed.ShardedOptimizer(optim.SGD, [np.ones(shape)], lr=0.1)
    except ValueError as e:
        assert (K > 1 and "differ across ranks" in str(e)) or "rank" in str(e), e
    else:
        assert K == 1
    # check_finite: a NaN in any rank's grads skips the step on every rank.
    p = np.ones(10)
    sh = distributed.ShardedOptimizer(optim.SGD, [p], lr=0.1, check_finite=True)
    g = np.ones(10)
    if RANK == K - 1:
        g[-1] = np.nan
    sh.step([g])
    assert sh.last_step_skipped and (p == 1).all()
    assert sh.state_dict()["skipped_steps"] == 1
    say("sharded ok")


def exact_grads(step):
    """The same small-integer grads on every rank: their mean is exact for
    any K, so runs on different K see the same reduced grads."""
    rng = np.random.default_rng(step)
    return [rng.integers(-8, 8, s).astype(np.float32) for s in SHAPES]


def check_resume(phase, path):
    init = [np.random.default_rng(3).standard_normal(s).astype(np.float32) for s in SHAPES]
    ps = [x.copy() for x in init]
    opt = distributed.ShardedOptimizer(optim.Adam, ps, lr=0.01)
    if phase == "save":
        for step in range(4):
            opt.step(exact_grads(step))
        # rank 0 cannot write: every rank raises, with rank 0's error as text
        try:
            checkpoint.save(os.path.join(path + ".missing", "x.ckpt"), ps, optimizer=opt)
        except OSError as e:
            assert str(e).startswith("rank 0 could not write the checkpoint: ") and "('" not in str(
                e
            ), e
            assert "Error: " in str(e), e
        else:
            raise AssertionError("saved into a missing folder")
        checkpoint.save(path, ps, optimizer=opt)
    else:
        checkpoint.load(path, ps, optimizer=opt)
        for step in range(4, 8):
            opt.step(exact_grads(step))
        qs = [x.copy() for x in init]
        plain = optim.Adam(qs, lr=0.01)
        for step in range(8):
            plain.step(exact_grads(step))
        for p, q in zip(ps, qs):
            assert p.tobytes() == q.tobytes()
    say(f"resume {phase} ok")


def check_fault():
    p = np.ones(8)
    opt = distributed.ShardedOptimizer(optim.SGD, [p], lr=0.1)
    for step in range(3):
        if step == 1 and RANK == K - 1:
            raise RuntimeError("boom on the last rank")
        opt.step([np.ones(8)])
    say("fault: not reached")


def check_hang():
    """Rank 0 waits in a collective that the others never join."""
    if RANK == 0:
        distributed.allreduce_grads([np.ones(3)])
    else:
        import time

        time.sleep(600)
    print("hang: finished", flush=True)


if __name__ == "__main__":
    check = sys.argv[1]
    if check == "allreduce":
        check_allreduce()
    elif check == "sharded":
        check_sharded()
    elif check == "resume":
        check_resume(sys.argv[2], sys.argv[3])
    elif check == "fault":
        check_fault()
    elif check == "hang":
        check_hang()
