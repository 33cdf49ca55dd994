"""Data-parallel training over MPI (mpi4py): a deterministic all-reduce of the
grads and a ZeRO stage 1 sharded optimizer. Needs the ``mpi`` extra
(``pip install "lec7rs[mpi]"``: mpi4py and the MPICH wheel, whose
``mpiexec`` starts the ranks)::

    mpiexec -n 4 python train.py

**Deterministic reduction.** MPI's own ``Allreduce`` may add the ranks'
contributions in any order (the order depends on the library, the number
of ranks and the message size), so its floating-point result can differ
between runs and libraries. Here each buffer is cut into one block per rank
(to the element); every rank sends block ``r`` of its buffer to rank ``r``
(``Alltoallv``: plain copies), rank ``r`` adds the ``K`` copies of its block
in rank order, ``((g_0 + g_1) + g_2) + ...``, divides by ``K`` for the mean
(in the grads' dtype, as NumPy does), and every block is sent back to every
rank (``Allgatherv``: copies again). No arithmetic happens inside MPI, so
the result is the same bits on every rank for any MPI library and
algorithm; each rank sends ``2 (K - 1) / K`` of the buffer's bytes, as a
ring all-reduce does. Small arrays are packed into buckets of about 4 MB.

**Failure.** Importing this module installs a ``sys.excepthook`` that prints
the uncaught exception of a rank and aborts the whole job
(``MPI_Abort``), so the other ranks do not wait forever in a collective.
The collectives of this module first agree on their arguments (a small
``allgather`` of each rank's description of them): a rank whose arrays
differ (names, shapes, dtypes, which grads are None) makes every rank raise
``ValueError``, not hang. A rank that hangs without raising (or catches an
error and leaves a collective unmatched) cannot be detected by MPI itself;
bound the whole job with MPICH's ``MPIEXEC_TIMEOUT=<seconds> mpiexec ...``
(Open MPI: ``mpiexec --timeout``), as the tests do.
"""

from __future__ import annotations

import hashlib
import sys
import time
import traceback
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

try:
    from mpi4py import MPI
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        'lec7rs.distributed needs mpi4py and an MPI library: pip install "lec7rs[mpi]"'
    ) from e

from .optim.optimizer import Optimizer

__all__ = ["ShardedOptimizer", "allreduce_grads"]

#: Elements per bucket of packed small arrays (4 MB of float32).
BUCKET = 1 << 20

_MPI_TYPE = {np.dtype(np.float32): MPI.FLOAT, np.dtype(np.float64): MPI.DOUBLE}


def _abort_on_uncaught(exc_type, exc, tb) -> None:
    """sys.excepthook: print the error (this rank's, prefixed), then end the
    whole job instead of leaving the other ranks in a collective."""
    rank = MPI.COMM_WORLD.Get_rank()
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(f"[lec7rs.distributed] rank {rank}: uncaught exception, aborting:\n{text}")
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(1)


sys.excepthook = _abort_on_uncaught


def _comm(comm: Any) -> Any:
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"comm: expected an mpi4py communicator, got {type(comm).__name__}")
    return comm


_ERRORS = {"TypeError": TypeError, "ValueError": ValueError, "KeyError": KeyError}


def _error(e: Exception) -> tuple[str, str]:
    """An exception as ``(class name, message)``, to send to the other ranks."""
    return type(e).__name__, str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def _agree(comm: Any, error: tuple[str, str] | None, digest: bytes, what: str) -> None:
    """Every rank raises if any rank has an error (its own, or else the
    first failing rank's, of that exception class, its message prefixed
    with ``rank r:``) or a digest different from rank 0's (ValueError);
    else returns on every rank."""
    views = comm.allgather((error, digest))
    if error is not None:
        raise _ERRORS.get(error[0], ValueError)(error[1])
    for r, (err, _) in enumerate(views):
        if err is not None:
            raise _ERRORS.get(err[0], ValueError)(f"rank {r}: {err[1]}")
    bad = [r for r, (_, d) in enumerate(views) if d != views[0][1]]
    if bad:
        raise ValueError(
            f"{what} differ across ranks: rank {bad[0]}'s do not match rank 0's "
            "(names, shapes, dtypes, or which entries are None)"
        )


def _digest(parts: list) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def _split(n: int, k: int) -> list[int]:
    """``n`` elements cut into ``k`` blocks, to the element: the first
    ``n % k`` blocks get one more."""
    return [n // k + (r < n % k) for r in range(k)]


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    """The number of elements that ``[a0, a1)`` and ``[b0, b1)`` share."""
    return max(0, min(a1, b1) - max(a0, b0))


def _offsets(counts: list[int]) -> list[int]:
    out, total = [], 0
    for c in counts:
        out.append(total)
        total += int(c)
    return out


def _reduce_blocks(
    comm: Any, buf: np.ndarray, counts: list[int], mean: bool, scratch: np.ndarray | None = None
) -> np.ndarray:
    """This rank's block of the rank-order sum (or mean) of ``buf`` over all
    ranks (``counts``: every rank's block size). ``scratch`` (at least
    ``K * counts[rank]`` elements of ``buf``'s dtype) spares an allocation;
    the result is a view of it then, valid until its next use."""
    k, r = comm.Get_size(), comm.Get_rank()
    t = _MPI_TYPE[buf.dtype]
    mine = counts[r]
    if scratch is None:
        scratch = np.empty(k * mine, dtype=buf.dtype)
    recv = scratch[: k * mine].reshape(k, mine)
    send = [buf, counts, _offsets(counts), t]
    comm.Alltoallv(send, [recv, [mine] * k, [mine * j for j in range(k)], t])
    acc = recv[0]
    for j in range(1, k):
        acc += recv[j]
    if mean:
        acc /= buf.dtype.type(k)
    return acc


def _gather_blocks(comm: Any, block: np.ndarray | None, out: np.ndarray, counts: list[int]) -> None:
    """Every rank's block into ``out`` (rank order); ``block=None``: this
    rank's block is already in place in ``out``."""
    t = _MPI_TYPE[out.dtype]
    send = MPI.IN_PLACE if block is None else [block, t]
    comm.Allgatherv(send, [out, counts, _offsets(counts), t])


def _buckets(sizes: list[int], limit: int = BUCKET) -> list[list[int]]:
    """Consecutive indices grouped into buckets of at most ``limit`` elements
    (an array larger than that is a bucket of its own)."""
    out: list[list[int]] = []
    cur: list[int] = []
    total = 0
    for i, n in enumerate(sizes):
        if cur and total + n > limit:
            out.append(cur)
            cur, total = [], 0
        cur.append(i)
        total += n
    if cur:
        out.append(cur)
    return out


def _as_list(grads: Any, what: str) -> tuple[list, list]:
    if isinstance(grads, Mapping):
        return list(grads.keys()), list(grads.values())
    if isinstance(grads, (list, tuple)):
        return list(range(len(grads))), list(grads)
    raise TypeError(f"{what} must be a list or dict of arrays, got {type(grads).__name__}")


def allreduce_grads(grads: Any, *, comm: Any = None, op: str = "mean") -> None:
    """Replaces every array of ``grads`` (a list or dict; ``None`` entries are
    skipped, and must be None on every rank) by its sum (``op="sum"``) or
    mean (``op="mean"``) over the ranks of ``comm`` (default
    ``MPI.COMM_WORLD``), in place: the sum in rank order, the same bits on
    every rank whatever the MPI library (see the module docs). Arrays must be
    C-contiguous, writeable float32 or float64; arrays of each dtype are
    packed into buckets of about 4 MB."""
    comm = _comm(comm)
    error = None
    keys, arrays = [], []
    try:
        if op not in ("mean", "sum"):
            raise ValueError(f"op: expected 'mean' or 'sum', got {op!r}")
        keys, arrays = _as_list(grads, "grads")
        for key, a in zip(keys, arrays):
            if a is None:
                continue
            if not isinstance(a, np.ndarray) or a.dtype not in _MPI_TYPE:
                raise TypeError(f"grads[{key!r}]: expected a float32 or float64 array")
            if not (a.flags.c_contiguous and a.flags.writeable):
                raise ValueError(f"grads[{key!r}]: must be C-contiguous and writeable")
    except (TypeError, ValueError) as e:
        error = _error(e)
    layout = [
        (repr(k), None if a is None else (a.shape, str(a.dtype)))
        for k, a in zip(keys, arrays)
        if error is None
    ]
    _agree(comm, error, _digest(layout), "grads")
    k = comm.Get_size()
    for dtype in _MPI_TYPE:
        group = [a for a in arrays if a is not None and a.dtype == dtype]
        for bucket in _buckets([a.size for a in group]):
            items = [group[i] for i in bucket]
            if len(items) == 1:
                buf = items[0].reshape(-1)
            else:
                buf = np.concatenate([a.reshape(-1) for a in items])
            counts = _split(buf.size, k)
            block = _reduce_blocks(comm, buf, counts, op == "mean")
            _gather_blocks(comm, block, buf, counts)
            if len(items) > 1:
                start = 0
                for a in items:
                    a.reshape(-1)[...] = buf[start : start + a.size]
                    start += a.size


class ShardedOptimizer:
    """ZeRO stage 1 (Rajbhandari et al. 2020): the optimizer state is split
    across the ranks of ``comm``, each rank stepping only its slice.

    The params (every group's, in order) are seen as one flat range of
    elements, cut evenly across the ranks to the element (not whole tensors
    per rank, as torch's ZeroRedundancyOptimizer does). ``step(grads)``
    takes each rank's local grads (``None`` skips a param: on every rank),
    reduces them to their mean in rank order (deterministic, as
    :func:`allreduce_grads`, each rank receiving only its slice), steps the
    rank's slice with ``optimizer_class`` (the same kernels; state for 1/K
    of the params), and gathers the updated params on every rank. The
    params must start equal on every rank; afterwards they stay equal, and
    equal, bit for bit, to ``allreduce_grads`` + the plain optimizer.

    ``optimizer_class`` must be element-wise (``SGD``, ``Adam``, ``AdamW``,
    ``Lion``, the schedule-free ones, ... : the update of an element depends
    only on it and on per-tensor scalars). LAMB, LARS, Adafactor and Muon
    need whole tensors (norms, row and column statistics, matrix functions)
    and are refused. A schedule-free optimizer's ``train()`` / ``eval()``
    are here too (each rank moves its slice, then the params are gathered).

    ``param_groups`` are the wrapped optimizer's (schedulers may write
    ``lr``; each group's ``params`` there are this rank's slices).
    ``state_dict()`` gathers the full, unsharded state dict of the wrapped
    optimizer, the same on every rank, which ``load_state_dict`` of a
    ShardedOptimizer on any number of ranks, or of the plain optimizer,
    accepts; ``lec7rs.checkpoint.save(path, params, optimizer=sharded)``
    called on every rank gathers it and lets rank 0 write. ``check_finite``
    skips a step on every rank when any rank's slice of the mean grads is
    not finite. ``last_timings`` holds the seconds of the last step's
    reduce-scatter, step and all-gather on this rank. Every method is
    collective: call it on every rank.
    """

    def __init__(
        self,
        optimizer_class: type,
        params: Any,
        *,
        comm: Any = None,
        check_finite: bool = False,
        **hyperparameters: Any,
    ):
        comm = _comm(comm)
        self.comm = comm
        self.check_finite = bool(check_finite)
        error = None
        layout: list = []
        try:
            if not (isinstance(optimizer_class, type) and issubclass(optimizer_class, Optimizer)):
                raise TypeError(
                    f"optimizer_class: expected a lec7rs optimizer class, got {optimizer_class!r}"
                )
            if not optimizer_class._sliceable:
                raise ValueError(
                    f"optimizer_class: {optimizer_class.__name__} cannot be sharded to the "
                    "element (its update needs whole tensors: norms, row and column "
                    "statistics or matrix functions); element-wise rules only: SGD, Adam, "
                    "AdamW, NAdam, RAdam, Adamax, Adagrad, Adadelta, RMSprop, Rprop, ASGD, "
                    "Lion, ScheduleFreeAdamW, ScheduleFreeSGD"
                )
            # A plain optimizer over the full params checks them (and the
            # hyperparameters) as usual; it is only used for that.
            full = optimizer_class(params, **hyperparameters)
            if full._half is not None:
                raise TypeError(
                    f"params: {full._half} params cannot be sharded (low precision is not "
                    "split across ranks); use float32 or float64 params"
                )
            if full._low:
                raise ValueError(
                    f"state_dtype: {full.state_dtype!r} state cannot be sharded (its "
                    "2048-element blocks are not split across ranks); leave state_dtype=None"
                )
            layout = [
                (repr(key), p.shape, str(p.dtype), g)
                for key, p, g in zip(full._keys, full._params, full._group_of)
            ]
        except (TypeError, ValueError) as e:
            error = _error(e)
        _agree(comm, error, _digest(layout), "params")
        k, rank = comm.Get_size(), comm.Get_rank()
        self._cls = optimizer_class
        self._params = full._params
        self._keys = full._keys
        sizes = [p.size for p in self._params]
        total = int(sum(sizes))
        # Rank j owns the flat elements [bounds[j], bounds[j + 1]).
        bounds = [0, *np.cumsum(_split(total, k)).tolist()]
        lo, hi = bounds[rank], bounds[rank + 1]
        self._range = (lo, hi)
        # Each param's slice on this rank, as a flat view of its memory,
        # and every rank's slice sizes of it (for gathers).
        starts = [0, *np.cumsum(sizes).tolist()]
        self._starts = starts
        self._slices = []
        self._pieces = []  # per param: elements of it on each rank
        for i in range(len(self._params)):
            a, b = starts[i], starts[i + 1]
            s0 = min(max(lo, a), b) - a
            self._slices.append((s0, s0 + _overlap(a, b, lo, hi)))
            self._pieces.append([_overlap(a, b, bounds[j], bounds[j + 1]) for j in range(k)])
        views = [p.reshape(-1)[s0:s1] for p, (s0, s1) in zip(self._params, self._slices)]
        groups = []
        for g, group in enumerate(full.param_groups):
            members = [i for i, gi in enumerate(full._group_of) if gi == g]
            local = {key: v for key, v in group.items() if key not in ("params", "param_names")}
            local["params"] = {full._keys[i]: views[i] for i in members}
            groups.append(local)
        self.optimizer = optimizer_class(groups, **hyperparameters)
        self._grads = [np.empty_like(v) for v in views]
        #: Seconds of the last step's parts on this rank.
        self.last_timings: dict[str, float] = {}
        # The flat range in chunks of at most BUCKET elements, each with the
        # pieces of the params it covers: the unit of every collective, so
        # that the buffers stay small whatever the params' sizes.
        self._chunks = []
        i = 0
        for c0 in range(0, total, BUCKET):
            c1 = min(c0 + BUCKET, total)
            pieces = []
            while i < len(sizes) and starts[i + 1] <= c0:
                i += 1
            j = i
            while j < len(sizes) and starts[j] < c1:
                a, b = starts[j], starts[j + 1]
                if b > a:
                    pieces.append((j, max(c0, a) - a, min(c1, b) - a))
                j += 1
            counts = [_overlap(c0, c1, bounds[r], bounds[r + 1]) for r in range(k)]
            self._chunks.append((c0, c1, pieces, counts))
        dtype = self._params[0].dtype if self._params else np.dtype(float)
        self._buf = np.empty(min(BUCKET, total), dtype)
        # The received copies of this rank's part of a chunk (K of them).
        self._scratch = np.empty(k * max([c[3][rank] for c in self._chunks], default=0), dtype)

    # -- the optimizer's interface ------------------------------------------------

    @property
    def param_groups(self) -> list[dict]:
        """The param groups of this rank's optimizer: the hyperparameters as
        given, each group's ``params`` this rank's slices of its params
        (schedulers write ``lr`` here; every rank must set the same values)."""
        return self.optimizer.param_groups

    @property
    def last_step_skipped(self) -> bool:
        """Whether the last ``step`` was skipped by ``check_finite`` (a
        non-finite grad on any rank skips it on every rank)."""
        return self.optimizer.last_step_skipped

    # -- schedule-free: train() / eval() ----------------------------------------------

    def _modes(self) -> Any:
        if not hasattr(self.optimizer, "train_mode"):
            raise AttributeError(
                f"{self._cls.__name__} has no train / eval modes (schedule-free optimizers do)"
            )
        return self.optimizer

    @property
    def train_mode(self) -> bool:
        """A schedule-free optimizer's mode (see ``ScheduleFreeAdamW``)."""
        return self._modes().train_mode

    def eval(self) -> None:
        """Schedule-free: moves every rank's slice to ``x`` and gathers the
        params (the plain optimizer's ``eval()``, bit for bit)."""
        self._modes().eval()
        self._gather_params()

    def train(self) -> None:
        """Schedule-free: back to ``y`` (bit for bit) and gathers the params."""
        self._modes().train()
        self._gather_params()

    def step(self, grads: Any, *, grad_scale: float | None = None) -> None:
        """Reduces every rank's ``grads`` (mean, rank order; only this rank's
        slice arrives here), steps this rank's slice, gathers the params."""
        comm = self.comm
        error = None
        layout: list = []
        try:
            keys, arrays = _as_list(grads, "grads")
            if isinstance(grads, Mapping):
                if set(keys) != set(self._keys):
                    raise ValueError("grads: keys differ from the params' names")
                arrays = [grads[key] for key in self._keys]
            elif len(arrays) != len(self._params):
                raise ValueError(
                    f"grads: expected {len(self._params)} entries (one per param), "
                    f"got {len(arrays)}"
                )
            for key, p, g in zip(self._keys, self._params, arrays):
                if g is None:
                    continue
                if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype:
                    raise ValueError(
                        f"grads[{key!r}]: expected a {p.dtype} array of shape {p.shape}"
                    )
            layout = [g is None for g in arrays]
        except (TypeError, ValueError) as e:
            error = _error(e)
        _agree(comm, error, _digest(layout), "grads")
        t0 = time.perf_counter()
        # Reduce-scatter, chunk by chunk: each rank gets the mean of its part
        # (None grads read as zeros here; their params are not stepped).
        lo, hi = self._range
        for c0, c1, pieces, counts in self._chunks:
            if not any(arrays[i] is not None for i, _, _ in pieces):
                continue
            if len(pieces) == 1 and arrays[pieces[0][0]].flags.c_contiguous:
                i, a0, a1 = pieces[0]
                buf = arrays[i].reshape(-1)[a0:a1]  # no copy: a chunk of one grad
            else:
                buf = self._buf[: c1 - c0]
                pos = 0
                for i, a0, a1 in pieces:
                    g = arrays[i]
                    buf[pos : pos + a1 - a0] = 0 if g is None else g.reshape(-1)[a0:a1]
                    pos += a1 - a0
            block = _reduce_blocks(comm, buf, counts, True, self._scratch)
            m0 = max(c0, lo)
            for i, a0, a1 in pieces:
                first = self._starts[i] + self._slices[i][0]  # flat index of our slice
                x0, x1 = max(self._starts[i] + a0, lo), min(self._starts[i] + a1, hi)
                if x1 > x0:
                    self._grads[i][x0 - first : x1 - first] = block[x0 - m0 : x1 - m0]
        local = [None if arrays[i] is None else self._grads[i] for i in range(len(arrays))]
        if self.check_finite:
            # Each rank sees only its slice: agree, so that all skip together.
            finite = all(np.isfinite(g).all() for g in local if g is not None)
            if not comm.allreduce(bool(finite), op=MPI.LAND):
                self.optimizer.last_step_skipped = True
                self.optimizer._skipped_steps += 1
                return
        t1 = time.perf_counter()
        # The same hyperparameters and layout everywhere: if this raises, it
        # raises on every rank, before anything changed.
        self.optimizer.step(local, grad_scale=grad_scale)
        t2 = time.perf_counter()
        self._gather_params()
        self.last_timings = {
            "reduce_scatter": t1 - t0,
            "step": t2 - t1,
            "all_gather": time.perf_counter() - t2,
        }

    def _gather_params(self) -> None:
        comm = self.comm
        lo, hi = self._range
        for c0, c1, pieces, counts in self._chunks:
            if len(pieces) == 1:
                # A chunk of one param: gather in place, our part is there.
                i, a0, a1 = pieces[0]
                _gather_blocks(comm, None, self._params[i].reshape(-1)[a0:a1], counts)
                continue
            out = self._buf[: c1 - c0]
            for i, a0, a1 in pieces:
                a = self._starts[i]
                x0, x1 = max(a + a0, lo), min(a + a1, hi)
                if x1 > x0:
                    out[x0 - c0 : x1 - c0] = self._params[i].reshape(-1)[x0 - a : x1 - a]
            _gather_blocks(comm, None, out, counts)
            # The ranks' parts are consecutive in flat order: put them back.
            pos = 0
            for i, a0, a1 in pieces:
                self._params[i].reshape(-1)[a0:a1] = out[pos : pos + a1 - a0]
                pos += a1 - a0

    # -- state --------------------------------------------------------------------

    def _gather(self, local: np.ndarray, i: int) -> np.ndarray:
        p = self._params[i]
        out = np.empty(p.size, p.dtype)
        _gather_blocks(self.comm, np.ascontiguousarray(local, p.dtype), out, self._pieces[i])
        return out.reshape(p.shape)

    def state_dict(self) -> dict:
        """The full, unsharded state dict of the wrapped optimizer (gathered;
        the same on every rank): what the plain optimizer's ``state_dict``
        gives for the same steps."""
        sd = self.optimizer.state_dict()
        kinds = dict(zip(self._cls._slots, self._cls._kinds))
        state = {}
        for i in range(len(self._params)):
            entry = sd["state"].get(i)
            # Every rank has the same entries (the same grads were None).
            if entry is None:
                continue
            full = {}
            for key, value in entry.items():
                if key != "step" and kinds.get(key) == "param":
                    full[key] = self._gather(value, i)
                else:
                    full[key] = value
            state[i] = full
        sd["state"] = state
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Loads a full state dict (of a ShardedOptimizer on any number of
        ranks, or of the plain optimizer): each rank keeps its slice. Checked
        on every rank first; if any rank's check fails, every rank raises and
        nothing changes."""
        self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        error = None
        commit: Callable[[], None] = lambda: None  # noqa: E731
        try:
            commit = self.optimizer._stage_load_state_dict(self._local_state(state_dict))
        except (TypeError, ValueError, KeyError) as e:
            error = _error(e)
        _agree(self.comm, error, b"", "state dicts")
        return commit

    def _local_state(self, state_dict: Mapping[str, Any]) -> dict:
        if not isinstance(state_dict, Mapping) or not isinstance(state_dict.get("state"), Mapping):
            raise ValueError("state_dict: expected a dict with a 'state' entry")
        kinds = dict(zip(self._cls._slots, self._cls._kinds))
        local = {}
        for i, entry in state_dict["state"].items():
            if (
                not isinstance(entry, Mapping)
                or not isinstance(i, int)
                or not (0 <= i < len(self._params))
            ):
                raise ValueError(f"state_dict state: unexpected entry {i!r}")
            p = self._params[i]
            s0, s1 = self._slices[i]
            out = {}
            for key, value in entry.items():
                if key != "step" and kinds.get(key) == "param":
                    if not isinstance(value, np.ndarray) or value.shape != p.shape:
                        raise ValueError(
                            f"state_dict state[{i}][{key!r}]: expected an array of shape {p.shape}"
                        )
                    out[key] = np.ascontiguousarray(value).reshape(-1)[s0:s1]
                else:
                    out[key] = value
            local[i] = out
        return {**state_dict, "state": local}

    def _checkpoint_write(self, write: Callable[[], None]) -> None:
        """``lec7rs.checkpoint.save``: rank 0 writes (atomically), the others
        wait for it and raise if it failed."""
        error = None
        if self.comm.Get_rank() == 0:
            try:
                write()
            except Exception as e:
                error = f"{type(e).__name__}: {e}"
        error = self.comm.bcast(error, root=0)
        if error is not None:
            raise OSError(f"rank 0 could not write the checkpoint: {error}")
