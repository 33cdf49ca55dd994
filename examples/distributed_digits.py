"""Data-parallel training of the demo's two-layer net on digits over MPI.

    mpiexec -n 2 python examples/distributed_digits.py
    mpiexec -n 4 python examples/distributed_digits.py --exact

Each global batch of 96 images is cut into 12 micro-batches of 8; rank r
computes the gradients of its share of them.

Default: ``lec7rs.distributed.ShardedOptimizer(Adam)`` (ZeRO-1): the mean
of the ranks' gradients is reduce-scattered in rank order, each rank steps
its 1/K of the params' elements, and the params are all-gathered. Rank 0
prints the time of each part per step and the sha256 of the weights, which
are the same on every rank (and, for a given K, on every run).

``--exact``: the same weights for any number of ranks. The global
gradient is the sum of the 12 micro-batch gradients in micro-batch order,
whatever K: rank r adds its micro-batches, in order, to the running sum it
receives from rank r - 1 and passes it on; ``allreduce_grads(op="sum")``
then gives every rank that sum exactly (the other ranks contribute zeros,
and x + 0 = x). Every rank steps a plain Adam on it. ``mpiexec -n 1, 2, 3,
4`` print the same sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np
from lec7rs import distributed, optim
from lec7rs.demo.data import load
from lec7rs.demo.model import TwoLayerNet
from mpi4py import MPI

MICRO = 12  # micro-batches per global batch (divisible by 1, 2, 3, 4, 6)
MICRO_SIZE = 8


def sha(params: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(params):
        h.update(params[k].tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--exact", action="store_true")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    k, rank = comm.Get_size(), comm.Get_rank()
    if MICRO % k:
        raise SystemExit(f"the number of ranks must divide {MICRO}")
    data = load(0)
    X, y = data.features(data.train.images), data.train.labels
    net = TwoLayerNet(X.shape[1], 100, 10, seed=0)
    names = sorted(net.params)
    if args.exact:
        opt = optim.Adam(net.params, lr=1e-3)
    else:
        opt = distributed.ShardedOptimizer(optim.Adam, net.params, lr=1e-3)
    order = np.random.default_rng(1).permutation(len(y))
    mine = range(rank * MICRO // k, (rank + 1) * MICRO // k)
    compute = comm_time = step_time = 0.0
    parts = {"reduce_scatter": 0.0, "step": 0.0, "all_gather": 0.0}
    for step in range(args.steps):
        start = (step * MICRO * MICRO_SIZE) % (len(y) - MICRO * MICRO_SIZE)
        t0 = time.perf_counter()
        grads = []
        for m in mine:
            idx = order[start + m * MICRO_SIZE : start + (m + 1) * MICRO_SIZE]
            grads.append(net.loss(X[idx], y[idx])[1])
        t1 = time.perf_counter()
        compute += t1 - t0
        if args.exact:
            total = {n: np.zeros_like(net.params[n]) for n in names}
            if rank > 0:
                for n in names:
                    comm.Recv(total[n], source=rank - 1)
            for g in grads:  # in micro-batch order
                for n in names:
                    total[n] += g[n]
            if rank < k - 1:
                for n in names:
                    comm.Send(total[n], dest=rank + 1)
                total = {n: np.zeros_like(v) for n, v in total.items()}
            distributed.allreduce_grads(total, op="sum")
            for n in names:
                total[n] /= np.float32(MICRO)
            t2 = time.perf_counter()
            opt.step(total)
            comm_time += t2 - t1
            step_time += time.perf_counter() - t2
        else:
            local = {n: sum(g[n] for g in grads) / np.float32(len(grads)) for n in names}
            opt.step(local)
            for key, v in opt.last_timings.items():
                parts[key] += v
    loss, acc = net.evaluate(data.features(data.val.images), data.val.labels)
    digests = comm.allgather(sha(net.params))
    assert len(set(digests)) == 1, "the ranks' weights differ"
    if rank == 0:
        per = 1e3 / args.steps
        if args.exact:
            split = f"reduce {comm_time * per:.2f} ms, step {step_time * per:.2f} ms"
        else:
            split = ", ".join(f"{key} {v * per:.2f} ms" for key, v in parts.items())
        print(
            f"ranks={k} steps={args.steps} {'exact' if args.exact else 'sharded'}: "
            f"per step compute {compute * per:.2f} ms, {split}; val loss {loss:.4f} "
            f"acc {acc:.1%}; sha256 {digests[0]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
