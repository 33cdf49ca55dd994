"""Checkpoints: the params and the state of the optimizer, the lr scheduler,
the averager and the random generator of a training run, in one file::

    from lec7rs import checkpoint
    checkpoint.save("run.ckpt", params, optimizer=opt, scheduler=sched,
                    averager=ema, rng=rng)
    ...
    checkpoint.load("run.ckpt", params, optimizer=opt, scheduler=sched,
                    averager=ema, rng=rng)    # training resumes bit-identically

Safe to write: ``save`` writes a temporary file next to ``path``, fsyncs
it, renames it over ``path`` and fsyncs the folder, so ``path`` always
holds a complete checkpoint, the old or the new one, even if the process
is killed or the machine loses power mid-save. A killed writer leaves its
temporary file ``.NAME.*.tmp`` behind; it is never read and can be deleted.

Safe to read: the file holds plain values (None, bool, int, float, str,
lists, tuples, dicts with str or int keys) and numeric NumPy arrays,
described by a JSON manifest, with a SHA-256 checksum over everything and a
format version (see ``_format.py``). There is no pickle: a file, even a
crafted one, cannot make ``load`` run code. A file that is empty,
truncated, corrupt (any flipped bit), of another format or version, or
that does not fit (other param names, shapes or dtypes; state that the
optimizer, scheduler, averager or rng rejects) raises ``ValueError`` and
changes nothing: everything is read and checked before the first write.

``params``: as the optimizers take them (a list of arrays, a dict
``name -> array``, or a list of group dicts; float32 or float64). ``save``
reads them (any strides); ``load`` copies the stored arrays into them in
place (C-contiguous, writeable; same names, shapes and dtypes).
``optimizer``, ``scheduler``, ``averager`` and ``rng`` are any objects
with ``state_dict()`` (plain values, as above) and ``load_state_dict(d)``;
each is optional, and ``load`` restores exactly those it is given. ``load``
reads the whole file into memory once, and needs a small multiple of the
file's size whatever the file holds (the arrays of a file never hold more
bytes than it does; see ``_format.py``). Its errors are short: a few hundred
characters, naming the file and the part or entry that is wrong.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from .. import _core
from .._params import FlatParams
from ..optim.optimizer import ParamsT
from . import _format
from ._atomic import write_atomically

__all__ = ["load", "save"]

#: The parts of a checkpoint besides the params, in the order they are loaded.
_PARTS = ("rng", "scheduler", "averager", "optimizer")
#: What a part's ``load_state_dict`` (or ``_stage_load_state_dict``) raises
#: for a state that does not fit: any of these means the file does not fit.
#: (A state is plain values from a file: an int too big for the object, a
#: list too short, a str where a dict should be, ...)
_MISFIT = (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError)


def save(
    path: str | os.PathLike,
    params: ParamsT,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    averager: Any = None,
    rng: Any = None,
) -> None:
    """Writes ``params`` and the state of the given objects to ``path``,
    atomically. A value that cannot be stored raises ``TypeError`` (naming
    where it is) and leaves ``path`` untouched."""
    path = os.fspath(path)
    flat = FlatParams(params, one_dtype=False, written=False)
    given = {"rng": rng, "scheduler": scheduler, "averager": averager, "optimizer": optimizer}
    tree: dict = {"lec7rs": _core.__version__, "params": dict(zip(flat.keys, flat.arrays))}
    for part in _PARTS:
        obj = given[part]
        if obj is None:
            tree[part] = None
            continue
        state = obj.state_dict()
        if not isinstance(state, dict):
            raise TypeError(f"{part}.state_dict() returned {type(state).__name__}, not a dict")
        tree[part] = state

    def write() -> None:
        write_atomically(path, lambda f: _format.write(f, tree))

    # A lec7rs.distributed.ShardedOptimizer: every rank gathered its state
    # above; rank 0 writes, the others wait for it.
    collective = getattr(optimizer, "_checkpoint_write", None)
    if collective is not None:
        collective(write)
    else:
        write()


def load(
    path: str | os.PathLike,
    params: ParamsT,
    *,
    optimizer: Any = None,
    scheduler: Any = None,
    averager: Any = None,
    rng: Any = None,
) -> None:
    """Restores ``params`` (in place) and the given objects from ``path``.
    Everything is checked before anything changes: a file that is not a
    checkpoint, is truncated or corrupt, or does not fit raises ``ValueError``
    and changes nothing."""
    path = os.fspath(path)
    flat = FlatParams(params, one_dtype=False)
    given = {"rng": rng, "scheduler": scheduler, "averager": averager, "optimizer": optimizer}
    tree = _format.read(path)
    if not isinstance(tree, dict) or set(tree) != {"lec7rs", "params", *_PARTS}:
        raise ValueError(f"{path}: malformed checkpoint (unexpected top-level entries)")
    # Each array of the tree is a view of its own range of the file (ranges
    # cannot repeat), so the copies below add up to at most the file's size.
    arrays = _check_params(path, tree["params"], flat)

    commits: list[Callable[[], None]] = []
    foreign = []
    for part in _PARTS:
        obj = given[part]
        if obj is None:
            continue
        state = tree[part]
        if state is None:
            raise ValueError(f"{path}: the checkpoint holds no {part} state")
        if part == "scheduler":
            state = _detach(state)
        if _stages(obj):
            try:
                commits.append(obj._stage_load_state_dict(state))
            except _MISFIT as e:
                raise _misfit(path, part, e) from None
        else:
            foreign.append((part, obj, _detach(state)))
    _load_foreign(path, foreign)
    for commit in commits:
        commit()
    for p, a in zip(flat.arrays, arrays):
        np.copyto(p, a)


def _check_params(path: str, saved: Any, flat: FlatParams) -> list:
    """The stored param arrays, aligned with ``flat``; ``ValueError`` unless
    they have the same names, shapes and dtypes."""
    if not isinstance(saved, dict):
        raise ValueError(f"{path}: malformed checkpoint (params is not a dict)")
    missing = [k for k in flat.keys if k not in saved]
    extra = [k for k in saved if k not in set(flat.keys)]
    if missing or extra:
        raise ValueError(
            f"{path}: the checkpoint's params do not fit: missing {_some(missing)}, "
            f"not in the given params {_some(extra)}"
        )
    out = []
    for key, label, p in zip(flat.keys, flat.labels, flat.arrays):
        a = saved[key]
        if not isinstance(a, np.ndarray) or a.shape != p.shape or a.dtype != p.dtype:
            if isinstance(a, np.ndarray):
                got = f"{a.dtype} array of shape {_format.brief(a.shape, 80)}"
            else:
                got = f"{type(a).__name__} {_format.brief(a)}"
            raise ValueError(
                f"{path}: params{_format.cap(label, 80)} in the checkpoint is a {got}, the "
                f"param is {p.dtype} of shape {p.shape}"
            )
        out.append(a)
    return out


def _some(keys: list, most: int = 4) -> str:
    """The first few of ``keys``, briefly, for a message."""
    shown = ", ".join(_format.brief(k) for k in keys[:most])
    more = f", and {len(keys) - most} more" if len(keys) > most else ""
    return f"[{shown}{more}]"


def _misfit(path: str, part: str, e: BaseException) -> ValueError:
    """The error for a part whose state does not fit: short, whatever ``e``
    says (it may quote a value from the file)."""
    if isinstance(e, KeyError):
        why = f"no entry {_format.brief(e.args[0])}" if e.args else "a missing entry"
    else:
        why = _format.cap(str(e))
    return ValueError(f"{path}: the {part} state does not fit: {why}")


def _stages(obj: Any) -> bool:
    """Whether ``obj`` loads in two phases (the lec7rs classes):
    ``_stage_load_state_dict`` checks and returns a commit that cannot fail.
    A subclass that overrides ``load_state_dict`` alone loads in one."""
    mro = type(obj).__mro__
    stage = next((k for k in mro if "_stage_load_state_dict" in vars(k)), None)
    load = next((k for k in mro if "load_state_dict" in vars(k)), None)
    return stage is not None and load is not None and issubclass(stage, load)


def _load_foreign(path: str, foreign: list) -> None:
    """Loads objects without a two-phase load, one by one; if one fails,
    those loaded before it are restored from snapshots taken first."""
    done: list = []
    try:
        for i, (part, obj, state) in enumerate(foreign):
            before = obj.state_dict() if i < len(foreign) - 1 else None
            try:
                obj.load_state_dict(state)
            except _MISFIT as e:
                raise _misfit(path, part, e) from None
            done.append((obj, before))
    except BaseException:
        for obj, before in reversed(done):
            obj.load_state_dict(before)
        raise


def _detach(value: Any) -> Any:
    """A copy of a state tree whose arrays own their memory (not views of the
    file buffer), for objects that may keep what they are given."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_detach(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_detach(v) for v in value)
    return value
