"""L-BFGS (``torch.optim.LBFGS``) for full-batch training of NumPy models."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, Callable, ClassVar

import numpy as np

from .. import _core
from ._params import _is_int
from ._strong_wolfe import torch_strong_wolfe
from .optimizer import _MAX_STEP, Optimizer, ParamsT, _brief

_STATE_KEYS = (
    "func_evals",
    "n_iter",
    "d",
    "t",
    "old_dirs",
    "old_stps",
    "ro",
    "H_diag",
    "prev_flat_grad",
    "prev_loss",
)


class _NotFinite(Exception):
    """A closure returned a NaN or inf (with ``check_finite=True``)."""


class LBFGS(Optimizer):
    r"""L-BFGS with the arguments, defaults and semantics of
    ``torch.optim.LBFGS`` (itself after minFunc).

    ``step(closure)`` runs up to ``max_iter`` iterations (and ``max_eval``
    calls of ``closure``, default ``max_iter * 5 // 4``); ``closure()``
    evaluates the model at the current params and returns
    ``(loss, grads)``, grads as in the other optimizers' ``step`` (a list
    aligned with the params or a dict keyed like them; ``None`` counts as
    zeros). The params are updated in place. The history of the last
    ``history_size`` pairs ``s = t d``, ``y = g_new - g_old`` is kept across
    ``step`` calls (a pair is kept only if ``y's > 1e-10``), with
    ``H0 = (y's / y'y) I`` from the newest pair. Per iteration::

        d = -g                       on the very first iteration
        d = -H g                     otherwise (two-loop recursion, in Rust)
        t = min(1, 1 / |g|_1) * lr   on the very first iteration, else lr
        stop if g'd > -tolerance_change
        line_search_fn=None:          x = x + t d, then re-evaluate
        line_search_fn="strong_wolfe": t from PyTorch's strong Wolfe search
                                        (bracketing + zoom, cubic interpolation,
                                        c1 = 1e-4, c2 = 0.9, max_ls = the
                                        evaluations left in the step)
        stop if max|g| <= tolerance_grad, max|t d| <= tolerance_change,
             |loss - prev_loss| < tolerance_change, or a limit is reached

    All params must be of one dtype and in one group (as PyTorch). Returns
    the loss of the first evaluation, as PyTorch. Memory:
    ``2 * history_size`` vectors of the params' total size.

    Evaluations: as recent PyTorch, the strong-Wolfe search is given
    ``max_ls = max_eval - current_evals``; its first trial point is outside
    that budget, so a step makes at most ``max_eval + 1`` calls of
    ``closure`` (without a line search at most ``max(max_eval, 2)``: the
    limit is checked after each iteration's evaluation).

    History: never more than ``history_size`` pairs. A state dict holding
    more pairs than its ``history_size`` keeps the newest ``history_size`` on
    load (PyTorch would keep all and never drop one again), and lowering
    ``param_groups[0]["history_size"]`` between steps drops the oldest pairs
    at the next update.

    A step is atomic: if ``closure`` raises (or a ``KeyboardInterrupt``
    arrives), the params are restored to their values at the start of the
    step, the state is unchanged, and the exception propagates. ``step``,
    ``state_dict`` and ``load_state_dict`` hold the optimizer's lock (a
    re-entrant one: a closure may call ``state_dict()``), so a snapshot taken
    from another thread is never torn.

    With ``check_finite=True``, a step in which any loss or grad is NaN or
    inf is undone (params and state as before the step), sets
    ``last_step_skipped`` and is counted in the state dict; without it, NaN
    and inf propagate as in PyTorch.
    """

    _hyper_keys: ClassVar[tuple[str, ...]] = (
        "lr",
        "max_iter",
        "max_eval",
        "tolerance_grad",
        "tolerance_change",
        "history_size",
        "line_search_fn",
    )

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
        *,
        check_finite: bool = False,
    ):
        if max_eval is None and _is_int(max_iter):
            max_eval = max_iter * 5 // 4
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        self._lbfgs: dict = {}
        self._orig_loss: Any = None
        super().__init__(params, defaults, check_finite=check_finite)
        self._sizes = [p.size for p in self._params]
        self._numel = sum(self._sizes)

    # -- hooks of the base class ---------------------------------------------

    def _validate(self, group: Mapping[str, Any], where: str) -> None:
        g = {**self.defaults, **group}
        for key in ("lr", "tolerance_grad", "tolerance_change"):
            value = g[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not (value >= 0 and math.isfinite(value))
            ):
                raise ValueError(f"{where}invalid {key}: {value!r} (expected a finite number >= 0)")
        for key in ("max_iter", "max_eval", "history_size"):
            value = g[key]
            if not _is_int(value) or value < 1:
                raise ValueError(f"{where}invalid {key}: {value!r} (expected an integer >= 1)")
        if g["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(
                f"{where}invalid line_search_fn: {g['line_search_fn']!r} "
                "(expected None or 'strong_wolfe')"
            )

    def add_param_group(self, param_group: Mapping[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    # -- flat views ----------------------------------------------------------------

    def _gather(self, grads: Any) -> np.ndarray:
        """The grads as one flat vector (``None`` as zeros), checked."""
        grads = self._align(grads)
        dtype = self._params[0].dtype
        flat = np.zeros(self._numel, dtype=dtype)
        off = 0
        for p, g, label, size in zip(self._params, grads, self._labels, self._sizes):
            if g is not None:
                if not isinstance(g, np.ndarray):
                    raise TypeError(f"grads{label}: expected a NumPy array, got {type(g).__name__}")
                if g.dtype != dtype:
                    raise TypeError(
                        f"grads{label}: expected a {dtype} array (the params' dtype), "
                        f"got dtype {g.dtype}"
                    )
                if g.shape != p.shape:
                    raise ValueError(
                        f"shape mismatch: params{label} has shape {p.shape} but grads{label} "
                        f"has shape {g.shape}"
                    )
                flat[off : off + size] = g.reshape(-1)
            off += size
        return flat

    def _flat_params(self) -> np.ndarray:
        return np.concatenate([p.reshape(-1) for p in self._params])

    def _add(self, t: float, d: np.ndarray) -> None:
        """``params += t * d``, in place."""
        off = 0
        for p, size in zip(self._params, self._sizes):
            view = p.reshape(-1)
            view += t * d[off : off + size]
            off += size

    def _set(self, flat: np.ndarray) -> None:
        off = 0
        for p, size in zip(self._params, self._sizes):
            p.reshape(-1)[:] = flat[off : off + size]
            off += size

    # -- the step ---------------------------------------------------------------------

    def step(self, closure: Callable[[], tuple]) -> Any:  # type: ignore[override]
        """Runs one ``torch.optim.LBFGS.step``; returns the first loss."""
        if not callable(closure):
            raise TypeError(f"closure must be callable, got {type(closure).__name__}")
        with self._lock:
            group = self.param_groups[0]
            # The step works on a copy of the state (committed at the end) and
            # moves the params in place: they are put back on any way out but
            # the normal one.
            x_start = self._flat_params()
            self._orig_loss = None
            try:
                orig_loss, state = self._step(closure, group)
            except _NotFinite as e:
                self._set(x_start)
                self.last_step_skipped = True
                self._skipped_steps += 1
                return e.args[0] if self._orig_loss is None else self._orig_loss
            except BaseException:
                self._set(x_start)
                raise
            self._lbfgs = state
            self.last_step_skipped = False
            return orig_loss

    def _evaluate(self, closure: Callable[[], tuple]) -> tuple:
        out = closure()
        if not isinstance(out, tuple) or len(out) != 2:
            raise TypeError(f"closure must return a pair (loss, grads), got {type(out).__name__}")
        loss, grads = out
        flat = self._gather(grads)
        value = float(loss)
        if self.check_finite and not (
            math.isfinite(value) and math.isfinite(float(np.abs(flat).max(initial=0.0)))
        ):
            raise _NotFinite(loss)
        return loss, value, flat

    def _step(self, closure: Callable[[], tuple], group: dict) -> tuple:
        lr = group["lr"]
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        # The state is updated on a copy, committed when the step ends.
        state = dict(self._lbfgs)
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss, loss, flat_grad = self._evaluate(closure)
        self._orig_loss = orig_loss
        current_evals = 1
        state["func_evals"] += 1
        if group["frozen"] or np.abs(flat_grad).max(initial=0.0) <= tolerance_grad:
            return orig_loss, state

        d = state.get("d")
        t = state.get("t")
        old_dirs = list(state.get("old_dirs") or [])
        old_stps = list(state.get("old_stps") or [])
        ro = list(state.get("ro") or [])
        h_diag = state.get("H_diag")
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1.0
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = float(y.dot(s))
                if ys > 1e-10:
                    # PyTorch pops one when full (``==``); ``>=`` also trims a
                    # history longer than a lowered history_size.
                    while len(old_dirs) >= history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / float(y.dot(y))
                d = _core.lbfgs_two_loop(
                    old_stps, old_dirs, flat_grad, rho=ro, gamma=h_diag, negate=True
                )
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / float(np.abs(flat_grad).sum())) * lr
            else:
                t = lr
            gtd = float(flat_grad.dot(d))
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                x_init = self._flat_params()

                def obj_func(x: np.ndarray, t: float, d: np.ndarray) -> tuple:
                    self._add(t, d)
                    try:
                        _, value, grad = self._evaluate(closure)
                    finally:
                        self._set(x)
                    return value, grad

                # Recent PyTorch: the search gets the evaluations left.
                loss, flat_grad, t, ls_func_evals = torch_strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add(t, d)
                if n_iter != max_iter:
                    _, loss, flat_grad = self._evaluate(closure)
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(
            d=d,
            t=t,
            old_dirs=old_dirs,
            old_stps=old_stps,
            ro=ro,
            H_diag=h_diag,
            prev_flat_grad=prev_flat_grad,
            prev_loss=prev_loss,
        )
        return orig_loss, state

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> dict:
        """``{0: {...}}`` once a step ran (the live state, PyTorch's keys)."""
        with self._lock:
            return {0: self._lbfgs} if self._lbfgs else {}

    def state_dict(self) -> dict:
        """A snapshot (copies): PyTorch's LBFGS state under ``state[0]``."""
        with self._lock:
            out = super().state_dict()
            if self._lbfgs:
                out["state"] = {0: _copy_state(self._lbfgs)}
            return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()``; checked first, nothing changes on
        error. A history longer than the dict's ``history_size`` keeps its
        newest ``history_size`` pairs; ``n_iter`` and ``func_evals`` must be
        ints in ``[0, 2**62]``."""
        with self._lock:
            self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks ``state_dict`` and builds the new state without changing the
        optimizer; returns the commit (``lec7rs.checkpoint`` loads in two
        phases through this)."""
        with self._lock:
            if not isinstance(state_dict, Mapping):
                raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
            saved = state_dict.get("state", {})
            if not isinstance(saved, Mapping) or set(saved) - {0}:
                raise ValueError("state_dict 'state' must be {} or {0: LBFGS state}")
            # The groups first: history_size below is then a checked int >= 1.
            commit_groups = self._stage({**state_dict, "state": {}})
            history_size = state_dict["param_groups"][0]["history_size"]
            lbfgs = self._check_state(saved[0], history_size) if 0 in saved else {}

            def commit() -> None:
                with self._lock:
                    commit_groups()
                    self._lbfgs = lbfgs

            return commit

    def _check_state(self, entry: Any, history_size: int) -> dict:
        where = "state_dict state[0]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a dict")
        unknown = set(entry) - set(_STATE_KEYS) - {"al"}
        if unknown:
            raise ValueError(f"{where}: unknown state {sorted(map(str, unknown))}")
        dtype = self._params[0].dtype

        def vector(key: str, value: Any, copy: bool = True) -> np.ndarray:
            if (
                not isinstance(value, np.ndarray)
                or value.shape != (self._numel,)
                or value.dtype != dtype
            ):
                raise ValueError(
                    f"{where}[{key!r}]: expected a {dtype} array of shape ({self._numel},)"
                )
            return value.copy() if copy else value

        out: dict = {}
        for key in ("func_evals", "n_iter"):
            value = entry.get(key, 0)
            if not _is_int(value) or not 0 <= value <= _MAX_STEP:
                raise ValueError(
                    f"{where}[{key!r}]: expected an int in [0, 2**62], got {_brief(value)}"
                )
            out[key] = int(value)
        for key in ("d", "prev_flat_grad"):
            if entry.get(key) is not None:
                out[key] = vector(key, entry[key])
        pairs = []
        for key in ("old_dirs", "old_stps", "ro"):
            value = entry.get(key)
            if value is None:
                value = []
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{where}[{key!r}]: expected a list, got {type(value).__name__}")
            pairs.append(list(value))
        dirs, stps, ro = pairs
        if not len(dirs) == len(stps) == len(ro):
            raise ValueError(f"{where}: old_dirs, old_stps and ro differ in length")
        # Every pair is checked; only the newest history_size are kept (the
        # ones PyTorch's pop-the-oldest would have kept), so the history
        # never exceeds history_size.
        drop = max(len(dirs) - int(history_size), 0)
        out["old_dirs"] = [vector("old_dirs", v, i >= drop) for i, v in enumerate(dirs)][drop:]
        out["old_stps"] = [vector("old_stps", v, i >= drop) for i, v in enumerate(stps)][drop:]
        out["ro"] = [_number(where, "ro", r) for r in ro][drop:]
        for key in ("t", "H_diag", "prev_loss"):
            if entry.get(key) is not None:
                out[key] = _number(where, key, entry[key])
        return out


def _number(where: str, key: str, value: Any) -> float:
    """A real number of the state as a float (NaN and inf allowed: PyTorch
    keeps them); an int must be in ``[-2**62, 2**62]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{where}[{key!r}]: expected a number, got {_brief(value)}")
    if isinstance(value, numbers.Integral) and not -_MAX_STEP <= int(value) <= _MAX_STEP:
        raise ValueError(f"{where}[{key!r}]: int out of [-2**62, 2**62], got {_brief(value)}")
    return float(value)


def _copy_state(state: dict) -> dict:
    out: dict = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            out[key] = value.copy()
        elif isinstance(value, list):
            out[key] = [v.copy() if isinstance(v, np.ndarray) else v for v in value]
        else:
            out[key] = value
    return out
