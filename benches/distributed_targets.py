"""The speed-and-scale figures of the MPI issue, on this machine:

    mpiexec -n 2 python benches/distributed_targets.py            # 50M f32, Adam
    mpiexec -n 2 python benches/distributed_targets.py --n 5000000

Runs the same training steps twice in fresh processes (peak RSS only grows):
``ShardedOptimizer(Adam)`` and ``allreduce_grads`` + a plain ``Adam`` on
every rank, and prints per rank: the optimizer state held, the peak RSS,
the step time split (reduce-scatter, step, all-gather) and the bytes each
rank sends per step against the ideal ``2 x 4 B x n x (K - 1) / K``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np


def run(mode: str, n: int, steps: int) -> None:
    from lec7rs import distributed, optim
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    k, rank = comm.Get_size(), comm.Get_rank()
    p = np.ones(n, np.float32)
    g = np.full(n, 0.01 * (rank + 1), np.float32)
    if mode == "sharded":
        opt = distributed.ShardedOptimizer(optim.Adam, [p], lr=1e-3)
    else:
        opt = optim.Adam([p], lr=1e-3)
    parts = {"reduce_scatter": [], "step": [], "all_gather": []}
    total = []
    for _ in range(steps):
        comm.Barrier()
        t0 = time.perf_counter()
        if mode == "sharded":
            opt.step([g])
            for key, v in opt.last_timings.items():
                parts[key].append(v)
        else:
            gs = [g.copy()]
            t1 = time.perf_counter()
            distributed.allreduce_grads(gs)
            t2 = time.perf_counter()
            opt.step(gs)
            parts["reduce_scatter"].append(t2 - t1)  # the whole all-reduce
            parts["step"].append(time.perf_counter() - t2)
        total.append(time.perf_counter() - t0)
    inner = opt.optimizer if mode == "sharded" else opt
    state = sum(v.nbytes for e in inner.state.values() for v in e.values() if hasattr(v, "nbytes"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sent = 2 * 4 * n * (k - 1) // k  # the algorithm's bytes (see lec7rs.distributed)
    split = {key: min(v) for key, v in parts.items() if v}
    rows = comm.gather((rank, state, rss, split, min(total)))
    if rank == 0:
        for r, st, rs, split, t in rows:
            split_s = ", ".join(f"{key} {v * 1e3:.1f} ms" for key, v in split.items())
            print(
                f"{mode:8s} rank {r}: state {st / 2**20:7.1f} MiB, peak RSS {rs / 2**20:7.1f} MiB, "
                f"step {t * 1e3:.1f} ms ({split_s}), sent/step {sent / 2**20:.1f} MiB "
                f"(ideal {2 * 4 * n * (k - 1) / k / 2**20:.1f} MiB)",
                flush=True,
            )


def pingpong() -> None:
    """Loopback latency and bandwidth between ranks 0 and 1 (the alpha and
    beta of the cost model)."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        return
    for nbytes in (8, 4 << 20, 64 << 20):
        buf = np.zeros(nbytes // 4, np.float32)
        reps = 2000 if nbytes == 8 else 20
        comm.Barrier()
        t = time.perf_counter()
        for _ in range(reps):
            if comm.Get_rank() == 0:
                comm.Send(buf, 1)
                comm.Recv(buf, 1)
            elif comm.Get_rank() == 1:
                comm.Recv(buf, 0)
                comm.Send(buf, 0)
        dt = (time.perf_counter() - t) / reps / 2
        if comm.Get_rank() == 0:
            rate = nbytes / dt / 1e9
            print(f"ping-pong {nbytes:>10} B: one way {dt * 1e6:9.1f} us, {rate:6.2f} GB/s")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000_000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--mode", choices=["sharded", "plain"])
    args = ap.parse_args()
    if args.mode:
        run(args.mode, args.n, args.steps)
        return 0
    # Launched by mpiexec: rank 0 of each mode's job prints its rows.
    from mpi4py import MPI

    if MPI.COMM_WORLD.Get_size() == 1 and "PMI_RANK" not in os.environ:
        print("run under mpiexec -n K", file=sys.stderr)
    pingpong()
    for mode in ("sharded", "plain"):
        MPI.COMM_WORLD.Barrier()
        if MPI.COMM_WORLD.Get_rank() == 0:
            k = MPI.COMM_WORLD.Get_size()
            mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
            cmd = [mpiexec, "-n", str(k), sys.executable, __file__, "--mode", mode]
            subprocess.run([*cmd, "--n", str(args.n), "--steps", str(args.steps)], check=True)
        MPI.COMM_WORLD.Barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
