r"""Learning-rate schedules with the arguments, defaults and values of
``torch.optim.lr_scheduler``, for the ``lec7rs.optim`` optimizers.

A scheduler writes ``group["lr"]`` of every param group of its optimizer;
the optimizer reads it afresh at each step. Call ``scheduler.step()`` after
``optimizer.step()``, once per epoch (or per iteration, if the schedule is
counted in iterations)::

    opt = SGD(params, lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        for x, y in batches:
            opt.step(grads(params, x, y))
        sched.step()

As in PyTorch, ``step()`` updates the lr with each schedule's *chainable*
(recursive) form, ``lr_t = f(lr_{t-1})``, computed from the group's current
lr, so that changes from elsewhere compose; ``step(epoch)`` jumps to
``epoch`` with the closed form ``lr_t = f(base_lr, t)`` given in each
docstring. Both give the same values up to rounding (the tests bound the
difference over 1000 steps). Constructing a scheduler stores each group's
lr as ``group["initial_lr"]`` (the ``base_lrs``) and performs the step to
epoch 0. Resuming with ``last_epoch=k`` needs ``initial_lr`` in the groups
(restore the optimizer's state dict first), as in PyTorch.

Where PyTorch's values are surprising they are kept (StepLR resumed with
``last_epoch`` steps once at construction; ``MultiStepLR`` milestones may
repeat). Differences: hyperparameters are checked at construction
(``TypeError`` / ``ValueError``) and by ``load_state_dict``; a ``step`` that
raises (e.g. in a user's ``lr_lambda``) changes nothing; a computed lr that
is not a finite number >= 0 raises ``ValueError``, except that LinearLR's
chainable step gives 0.0 where PyTorch's rounds to about -1e-18 (decaying to
``end_factor=0``; our optimizers refuse a negative lr); state dicts hold plain
values only (no functions, no ``Counter``), so ``lec7rs.checkpoint`` can
store them; ``CosineAnnealingWarmRestarts.step(epoch)`` finds the cycle in
exact integer arithmetic where PyTorch's ``math.log`` can round it to the
previous cycle at a restart; ``InverseTimeLR`` is not in PyTorch.

The lecture's exponential decay ``alpha = alpha0 * exp(-k t)`` is
``ExponentialLR(opt, gamma=math.exp(-k))``; its 1/t decay
``alpha = alpha0 / (1 + k t)`` is ``InverseTimeLR(opt, k)``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Callable, ClassVar

__all__ = [
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "InverseTimeLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "SequentialLR",
    "StepLR",
]

Check = Callable[[str, Any], Any]


# -- argument checks: each returns the value to store, or raises TypeError
# (type) / ValueError (range) naming the argument ---------------------------


def _int(minimum: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an int >= {minimum}, got {type(value).__name__}")
        if value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
        return int(value)

    return check


def _real(lo: float = 0.0, hi: float = math.inf, lo_open: bool = False) -> Check:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        value = float(value)
        ok = (value > lo if lo_open else value >= lo) and value <= hi and math.isfinite(value)
        if not ok:
            low = f"({lo}" if lo_open else f"[{lo}"
            raise ValueError(f"{name} must be a finite number in {low}, {hi}], got {value}")
        return value

    return check


_count = _int(0)
_positive = _int(1)
_non_negative = _real()


def _milestones(name: str, value: Any) -> Counter:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of ints, got {type(value).__name__}")
    return Counter(_count(f"{name}[{i}]", m) for i, m in enumerate(value))


def _param_groups(optimizer: Any) -> list:
    groups = getattr(optimizer, "param_groups", None)
    if not (
        isinstance(groups, list)
        and groups
        and all(isinstance(g, dict) and "lr" in g for g in groups)
    ):
        raise TypeError(
            f"{type(optimizer).__name__} is not an optimizer (expected param_groups: "
            "a non-empty list of dicts with 'lr')"
        )
    return groups


@contextlib.contextmanager
def _transaction(*objects: Any) -> Iterator[None]:
    """Restores the attributes of ``objects`` if the block raises."""
    saved = [dict(o.__dict__) for o in objects]
    try:
        yield
    except BaseException:
        for o, s in zip(objects, saved):
            o.__dict__.clear()
            o.__dict__.update(s)
        raise


def _lr_list(name: str, value: Any, n: int) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ValueError(f"{name} must be a list of {n} learning rates (one per param group)")
    return [_non_negative(f"{name}[{i}]", v) for i, v in enumerate(value)]


class LRScheduler:
    """The base of every scheduler (``torch.optim.lr_scheduler.LRScheduler``).

    Attributes: ``optimizer``, ``base_lrs`` (each group's ``initial_lr``),
    ``last_epoch`` (the epoch of the current lr: 0 after construction).
    """

    #: Hyperparameters: name -> check; stored as attributes and in state_dict.
    _hyper: ClassVar[dict[str, Check]] = {}

    def __init__(self, optimizer: Any, last_epoch: int = -1):
        groups = _param_groups(optimizer)
        last_epoch = _int(-1)("last_epoch", last_epoch)
        if last_epoch == -1:
            base_lrs = [g.get("initial_lr", g["lr"]) for g in groups]
        else:
            missing = [i for i, g in enumerate(groups) if "initial_lr" not in g]
            if missing:
                raise ValueError(
                    f"param_groups[{missing[0]}] has no 'initial_lr': resuming with "
                    f"last_epoch={last_epoch} needs the optimizer of a scheduled run "
                    "(load its state_dict first)"
                )
            base_lrs = [g["initial_lr"] for g in groups]
        self.optimizer = optimizer
        self.base_lrs = _lr_list("initial_lr of the param groups", base_lrs, len(groups))
        self.last_epoch = last_epoch
        self._get_lr_called_within_step = False
        self._is_initial = False
        self._initial_step()
        if last_epoch == -1:
            for g, lr in zip(groups, self.base_lrs):
                g.setdefault("initial_lr", lr)

    def _set_hyper(self, **values: Any) -> None:
        """Checks the constructor's hyperparameters and stores them."""
        for name, value in values.items():
            setattr(self, name, self._hyper[name](name, value))

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_last_lr(self) -> list:
        """The lr of each param group set by the latest ``step()``."""
        return list(self._last_lr)

    def get_lr(self) -> list:
        """The chainable form: the next lr of each group from its current lr.
        Called by ``step()``; to read the lr, use ``get_last_lr()``."""
        raise NotImplementedError

    def _get_closed_form_lr(self) -> list:
        raise NotImplementedError

    def _warn_get_lr(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn(
                "To get the last learning rate computed by the scheduler, "
                "please use `get_last_lr()`.",
                UserWarning,
                stacklevel=3,
            )

    def step(self, epoch: int | None = None) -> None:
        """Advances one epoch (chainable form), or jumps to ``epoch`` (closed
        form). A step that raises changes nothing."""
        if epoch is not None:
            epoch = _count("epoch", epoch)
        with _transaction(self):
            self._step_count += 1
            self._update_lr(epoch)

    def _update_lr(self, epoch: int | None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                values = self._get_closed_form_lr()
        except OverflowError:
            # e.g. gamma ** k beyond the float range: an lr that is not finite
            values = [math.inf] * len(self.optimizer.param_groups)
        finally:
            self._get_lr_called_within_step = False
        self._write(values)

    def _write(self, values: Sequence) -> None:
        groups = self.optimizer.param_groups
        values = list(values)
        for i, lr in enumerate(values):
            if not (isinstance(lr, numbers.Real) and not isinstance(lr, bool)) or not (
                math.isfinite(lr) and lr >= 0
            ):
                raise ValueError(
                    f"{type(self).__name__} computed lr={lr!r} for param_groups[{i}] at epoch "
                    f"{self.last_epoch}: expected a finite number >= 0"
                )
        for g, lr in zip(groups, values):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in groups]

    # -- state -------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The scheduler's state as plain values (PyTorch's attribute names):
        ``last_epoch``, ``base_lrs``, ``_step_count``, ``_last_lr`` and the
        hyperparameters. The optimizer's lr lives in the optimizer's state dict."""
        d = {
            "scheduler": type(self).__name__,
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_step_count": self._step_count,
            "_last_lr": list(self._last_lr),
        }
        for name in self._hyper:
            d[name] = _plain(getattr(self, name))
        d.update(self._extra_state())
        return d

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restores a ``state_dict()`` (hyperparameters included). A dict that
        does not fit raises ``ValueError`` and changes nothing."""
        self._stage_load_state_dict(state_dict)()

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        """Checks everything, changes nothing, returns the commit (which cannot fail)."""
        d = state_dict
        if not isinstance(d, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(d).__name__}")
        name = type(self).__name__
        if d.get("scheduler") != name:
            raise ValueError(f"state_dict is for scheduler {d.get('scheduler')!r}, not {name!r}")
        expected = set(self.state_dict())
        if set(d) != expected:
            missing, unknown = expected - set(d), set(d) - expected
            raise ValueError(
                f"state_dict of {name}: missing keys {sorted(missing)}, "
                f"unknown keys {sorted(map(str, unknown))}"
            )
        n = len(self.optimizer.param_groups)
        checks: dict[str, Check] = {
            "last_epoch": _int(-1),
            "_step_count": _count,
            "base_lrs": lambda k, v: _lr_list(k, v, n),
            "_last_lr": lambda k, v: _lr_list(k, v, n),
            **self._hyper,
        }
        values = {k: _load(d, k, check) for k, check in checks.items()}
        commit_extra = self._stage_extra_state(d, values)

        def commit() -> None:
            self.__dict__.update(values)
            commit_extra()

        return commit

    def _extra_state(self) -> dict:
        """State besides the common keys and the hyperparameters."""
        return {}

    def _stage_extra_state(self, d: Mapping, values: dict) -> Callable[[], None]:
        return lambda: None


def _plain(value: Any) -> Any:
    if isinstance(value, Counter):
        return sorted(value.elements())
    return value


def _load(d: Mapping, key: str, check: Check) -> Any:
    try:
        return check(f"state_dict[{key!r}]", d[key])
    except TypeError as e:
        raise ValueError(str(e)) from None


class LambdaLR(LRScheduler):
    r"""``lr_t = base_lr * lr_lambda(t)``, one ``lr_lambda`` for all groups or
    a list of them, one per group.

    ``state_dict()`` holds, per lambda, ``None`` for a plain function or
    lambda (code is never saved) and a copy of ``fn.__dict__`` for a callable
    object, as in PyTorch; ``load_state_dict`` updates the callables'
    ``__dict__`` from it.
    """

    def __init__(
        self,
        optimizer: Any,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ):
        n = len(_param_groups(optimizer))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for i, fn in enumerate(lambdas):
            if not callable(fn):
                raise TypeError(f"lr_lambda[{i}] must be callable, got {type(fn).__name__}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self) -> list:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def _extra_state(self) -> dict:
        return {
            "lr_lambdas": [
                None
                if isinstance(fn, types.FunctionType) or not hasattr(fn, "__dict__")
                else dict(fn.__dict__)
                for fn in self.lr_lambdas
            ]
        }

    def _stage_extra_state(self, d: Mapping, values: dict) -> Callable[[], None]:
        saved = d["lr_lambdas"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.lr_lambdas):
            raise ValueError(f"state_dict['lr_lambdas']: expected {len(self.lr_lambdas)} entries")
        for i, (fn, entry) in enumerate(zip(self.lr_lambdas, saved)):
            if entry is None:
                continue
            if not isinstance(entry, Mapping) or not all(isinstance(k, str) for k in entry):
                raise ValueError(f"state_dict['lr_lambdas'][{i}]: expected None or a dict")
            if not hasattr(fn, "__dict__"):
                raise ValueError(f"lr_lambda[{i}] has no __dict__ to load state into")
        updates = [(fn, dict(e)) for fn, e in zip(self.lr_lambdas, saved) if e is not None]

        def commit() -> None:
            for fn, entry in updates:
                fn.__dict__.update(entry)

        return commit


class StepLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** (t // step_size)``: decay by ``gamma``
    every ``step_size`` epochs (chainable: multiply by ``gamma`` when ``t`` is
    a positive multiple of ``step_size``)."""

    _hyper: ClassVar[dict[str, Check]] = {"step_size": _positive, "gamma": _non_negative}

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self._set_hyper(step_size=step_size, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        return [base * self.gamma ** (self.last_epoch // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** (number of milestones <= t)``: decay by
    ``gamma`` at each milestone (a milestone listed twice decays twice)."""

    _hyper: ClassVar[dict[str, Check]] = {"milestones": _milestones, "gamma": _non_negative}

    def __init__(
        self, optimizer: Any, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ):
        self._set_hyper(milestones=milestones, gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch not in self.milestones:
            return lrs
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        milestones = sorted(self.milestones.elements())
        k = bisect_right(milestones, self.last_epoch)
        return [base * self.gamma**k for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""``lr_t = base_lr * gamma ** t`` (chainable: ``lr_t = lr_{t-1} * gamma``).

    The lecture's exponential decay ``alpha = alpha0 * exp(-k t)`` is
    ``ExponentialLR(opt, gamma=math.exp(-k))``.
    """

    _hyper: ClassVar[dict[str, Check]] = {"gamma": _non_negative}

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1):
        self._set_hyper(gamma=gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self._is_initial:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        return [base * self.gamma**self.last_epoch for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs
    (SGDR, Loshchilov & Hutter 2017, without restarts)::

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past ``T_max`` the cosine continues (back up to ``base_lr`` at
    ``2 T_max``), as in PyTorch. Chainable form::

        lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T_max))
                                              / (1 + cos(pi (t - 1) / T_max))

    with PyTorch's additive step out of the minimum
    (``lr_t = lr_{t-1} + (base_lr - eta_min) * (1 - cos(pi / T_max)) / 2``
    when ``(t - 1 - T_max) % (2 T_max) == 0``).
    """

    _hyper: ClassVar[dict[str, Check]] = {"T_max": _positive, "eta_min": _non_negative}

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self._set_hyper(T_max=T_max, eta_min=eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self._is_initial:
            return lrs
        if self._step_count == 1 and t > 0:
            return [
                eta_min + (base - eta_min) * (1 + math.cos(t * math.pi / T)) / 2
                for base in self.base_lrs
            ]
        if (t - 1 - T) % (2 * T) == 0:
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for base, lr in zip(self.base_lrs, lrs)
            ]
        return [
            (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T)) * (lr - eta_min)
            + eta_min
            for lr in lrs
        ]

    def _get_closed_form_lr(self) -> list:
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        return [
            eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2
            for base in self.base_lrs
        ]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017)::

        lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    ``T_cur`` counts the epochs since the last restart; the first cycle has
    ``T_i = T_0`` epochs, each next one ``T_mult`` times more. At a restart
    the lr jumps back to ``base_lr``. ``step(epoch)`` accepts fractional
    epochs (``scheduler.step(epoch + i / iters_per_epoch)``, as in PyTorch).
    Pairs with ``lec7rs.averaging.SnapshotEnsemble``: a snapshot at the end
    of each cycle (Huang et al. 2017).
    """

    _hyper: ClassVar[dict[str, Check]] = {
        "T_0": _positive,
        "T_mult": _positive,
        "eta_min": _non_negative,
    }

    def __init__(
        self,
        optimizer: Any,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        self._set_hyper(T_0=T_0, T_mult=T_mult, eta_min=eta_min)
        self.T_i = self.T_0
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self) -> list:
        c = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """Advances one epoch, or jumps to ``epoch`` (a float >= 0)."""
        if epoch is not None:
            if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real):
                raise TypeError(f"epoch must be a number, got {type(epoch).__name__}")
            if not (math.isfinite(epoch) and epoch >= 0):
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        with _transaction(self):
            self._step_count += 1
            if epoch is None and self.last_epoch < 0:
                epoch = 0
            if epoch is None:
                epoch = self.last_epoch + 1
                self.T_cur = self.T_cur + 1
                if self.T_cur >= self.T_i:
                    self.T_cur = self.T_cur % self.T_i
                    self.T_i = self.T_i * self.T_mult
            else:
                start, self.T_i = _cycle(epoch, self.T_0, self.T_mult)
                self.T_cur = epoch - start
            self.last_epoch = math.floor(epoch)
            self._get_lr_called_within_step = True
            try:
                values = self.get_lr()
            finally:
                self._get_lr_called_within_step = False
            self._write(values)

    def _extra_state(self) -> dict:
        return {"T_i": self.T_i, "T_cur": self.T_cur}

    def _stage_extra_state(self, d: Mapping, values: dict) -> Callable[[], None]:
        T_i = _load(d, "T_i", _positive)
        T_cur = _load(d, "T_cur", _real(-1.0))
        if not T_cur < T_i:
            raise ValueError(f"state_dict: T_cur={T_cur} is not below T_i={T_i}")
        if isinstance(d["T_cur"], numbers.Integral):
            T_cur = int(T_cur)
        values.update(T_i=T_i, T_cur=T_cur)
        return lambda: None


def _cycle(epoch: float, T_0: int, T_mult: int) -> tuple:
    """The first epoch and the length of the cycle that holds ``epoch``, in
    exact integer steps (PyTorch takes a float log, which can round a
    restart epoch into the previous cycle)."""
    if T_mult == 1:
        start = (math.floor(epoch) // T_0) * T_0
        return start, T_0
    start, length = 0, T_0
    while start + length <= epoch:
        start += length
        length *= T_mult
    return start, length


class LinearLR(LRScheduler):
    r"""Linear change of the lr factor from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs (a warm-up with the defaults)::

        lr_t = base_lr * (start_factor
                          + (end_factor - start_factor) * min(t, total_iters) / total_iters)
    """

    _hyper: ClassVar[dict[str, Check]] = {
        "start_factor": _real(0.0, 1.0, lo_open=True),
        "end_factor": _real(0.0, 1.0),
        "total_iters": _positive,
    }

    def __init__(
        self,
        optimizer: Any,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        self._set_hyper(start_factor=start_factor, end_factor=end_factor, total_iters=total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        s, e, n, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if t == 0:
            return [lr * s for lr in lrs]
        if self._is_initial or t > n:
            return lrs
        # Decaying to end_factor=0 the last factor rounds to about +-1e-17;
        # PyTorch then sets a negative lr, which our optimizers refuse.
        return [max(lr * (1.0 + (e - s) / (n * s + (t - 1) * (e - s))), 0.0) for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        s, e, n, t = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        return [base * (s + (e - s) * min(n, t) / n) for base in self.base_lrs]


class InverseTimeLR(LRScheduler):
    r"""Inverse-time (1/t) decay, the lecture's ``alpha = alpha0 / (1 + k t)``::

        lr_t = base_lr / (1 + k * t)

    Chainable form ``lr_t = lr_{t-1} * (1 + k (t - 1)) / (1 + k t)``.
    ``k >= 0`` is the decay rate per epoch; TensorFlow's
    ``InverseTimeDecay(lr, decay_steps, decay_rate)`` is
    ``k = decay_rate / decay_steps`` stepped every iteration. Not in PyTorch
    (where it is ``LambdaLR(opt, lambda t: 1 / (1 + k * t))``).
    """

    _hyper: ClassVar[dict[str, Check]] = {"k": _non_negative}

    def __init__(self, optimizer: Any, k: float, last_epoch: int = -1):
        self._set_hyper(k=k)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        k, t = self.k, self.last_epoch
        if self._is_initial or t == 0:
            return lrs
        return [lr * (1 + k * (t - 1)) / (1 + k * t) for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        return [base / (1 + self.k * self.last_epoch) for base in self.base_lrs]


class SequentialLR(LRScheduler):
    r"""Runs ``schedulers`` one after the other, switching at ``milestones``
    (``len(schedulers) - 1`` increasing epochs). At a milestone the next
    scheduler starts from its epoch 0 (closed form: ``base_lr`` times its
    factor at 0), e.g. a linear warm-up then cosine annealing::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])

    As in PyTorch, construction resets each group's lr to ``initial_lr``,
    undoes the construction step of every scheduler and redoes the first
    one's. Nested ``SequentialLR`` is not supported.
    """

    def __init__(
        self,
        optimizer: Any,
        schedulers: Sequence[LRScheduler],
        milestones: Sequence[int],
        last_epoch: int = -1,
    ):
        groups = _param_groups(optimizer)
        if isinstance(schedulers, (str, bytes)) or not isinstance(schedulers, Sequence):
            raise TypeError("schedulers must be a list of schedulers")
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(
                    f"schedulers[{i}] must be a scheduler of lec7rs.optim.lr_scheduler "
                    f"(not SequentialLR), got {type(s).__name__}"
                )
            if s.optimizer is not optimizer:
                raise ValueError(
                    f"SequentialLR expects all schedulers to belong to the same optimizer, but "
                    f"schedulers[{i}] ({type(s).__name__}) has another one"
                )
        self._milestones = self._check_milestones("milestones", milestones, len(schedulers))
        last_epoch = _int(-1)("last_epoch", last_epoch)
        missing = [i for i, g in enumerate(groups) if "initial_lr" not in g]
        if missing:
            raise ValueError(f"param_groups[{missing[0]}] has no 'initial_lr'")
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self.last_epoch = last_epoch + 1
        with _transaction(self, *self._schedulers):
            saved_lrs = [g["lr"] for g in groups]
            try:
                for g in groups:
                    g["lr"] = g["initial_lr"]
                for s in self._schedulers:
                    s.last_epoch -= 1
                self._schedulers[0]._initial_step()
            except BaseException:
                for g, lr in zip(groups, saved_lrs):
                    g["lr"] = lr
                raise
        self._last_lr = self._schedulers[0].get_last_lr()

    @staticmethod
    def _check_milestones(name: str, milestones: Any, n: int) -> list:
        if isinstance(milestones, (str, bytes, Mapping)) or not isinstance(milestones, Iterable):
            raise TypeError(f"{name} must be a list of ints")
        milestones = [_positive(f"{name}[{i}]", m) for i, m in enumerate(milestones)]
        if len(milestones) != n - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers {n} and the "
                f"number of milestones to be equal to {len(milestones)}"
            )
        if any(a >= b for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"{name} must be increasing, got {milestones}")
        return milestones

    def step(self) -> None:  # type: ignore[override]
        """Advances one epoch with the scheduler whose turn it is."""
        idx = bisect_right(self._milestones, self.last_epoch + 1)
        scheduler = self._schedulers[idx]
        with _transaction(self, scheduler):
            self.last_epoch += 1
            if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
                scheduler._update_lr(0)
            else:
                scheduler.step()
            self._last_lr = scheduler.get_last_lr()

    def state_dict(self) -> dict:
        """``last_epoch``, ``_milestones``, ``_last_lr`` and each scheduler's
        state dict under ``_schedulers``."""
        return {
            "scheduler": type(self).__name__,
            "last_epoch": self.last_epoch,
            "_milestones": list(self._milestones),
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        d = state_dict
        if not isinstance(d, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(d).__name__}")
        if d.get("scheduler") != "SequentialLR":
            raise ValueError(
                f"state_dict is for scheduler {d.get('scheduler')!r}, not 'SequentialLR'"
            )
        expected = {"scheduler", "last_epoch", "_milestones", "_last_lr", "_schedulers"}
        if set(d) != expected:
            raise ValueError(f"state_dict of SequentialLR: expected the keys {sorted(expected)}")
        n = len(self.optimizer.param_groups)
        last_epoch = _load(d, "last_epoch", _int(0))
        milestones = _load(
            d, "_milestones", lambda k, v: self._check_milestones(k, v, len(self._schedulers))
        )
        last_lr = _load(d, "_last_lr", lambda k, v: _lr_list(k, v, n))
        children = d["_schedulers"]
        if not isinstance(children, (list, tuple)) or len(children) != len(self._schedulers):
            raise ValueError(
                f"state_dict['_schedulers']: expected {len(self._schedulers)} state dicts"
            )
        commits = []
        for i, (s, child) in enumerate(zip(self._schedulers, children)):
            try:
                commits.append(s._stage_load_state_dict(child))
            except (TypeError, ValueError) as e:
                raise ValueError(f"state_dict['_schedulers'][{i}]: {e}") from None

        def commit() -> None:
            for c in commits:
                c()
            self.last_epoch = last_epoch
            self._milestones = milestones
            self._last_lr = last_lr

        return commit
