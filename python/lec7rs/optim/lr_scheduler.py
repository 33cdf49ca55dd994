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

The schedules: ``LambdaLR``, ``MultiplicativeLR``, ``StepLR``,
``MultiStepLR``, ``ConstantLR``, ``LinearLR``, ``ExponentialLR``,
``PolynomialLR``, ``CosineAnnealingLR``, ``CosineAnnealingWarmRestarts``,
``InverseTimeLR``; per batch, ``CyclicLR`` and ``OneCycleLR``, which also
cycle the momentum (``cycle_momentum=True``: ``group["momentum"]`` of SGD
and RMSprop, ``betas[0]`` of the Adam family, written as the new tuple
``(m, betas[1])``; an optimizer with neither raises ``ValueError``) and, as
in PyTorch, write ``max_momentum`` and ``base_momentum`` (OneCycleLR also
``max_lr`` and ``min_lr``) into the groups; ``ReduceLROnPlateau``, stepped
with the metric (``sched.step(val_loss)``); and the combinations
``SequentialLR`` (one after another) and ``ChainedScheduler`` (together:
their factors multiply), which take any of the others but
``ReduceLROnPlateau``.

As in PyTorch, ``step()`` updates the lr with each schedule's *chainable*
(recursive) form, ``lr_t = f(lr_{t-1})``, computed from the group's current
lr, so that changes from elsewhere compose; ``step(epoch)`` jumps to
``epoch`` with the closed form ``lr_t = f(base_lr, t)`` given in each
docstring. Both give the same values up to rounding (the tests bound the
difference over 1000 steps). CyclicLR and OneCycleLR are functions of ``t``
only; MultiplicativeLR has no closed form (``step(epoch)`` multiplies by
``lr_lambda(epoch)``, as PyTorch's). Constructing a scheduler stores each
group's lr as ``group["initial_lr"]`` (the ``base_lrs``) and performs the
step to epoch 0. Resuming with ``last_epoch=k`` needs ``initial_lr`` in the
groups (restore the optimizer's state dict first), as in PyTorch.

Where PyTorch's values are surprising they are kept (StepLR and ConstantLR
resumed with ``last_epoch`` step once at construction; ``MultiStepLR``
milestones may repeat; CyclicLR's step to epoch 0 starts from a group's
``initial_lr`` where a scheduler before it set one; OneCycleLR's step
``total_steps``, one past the schedule, continues the last phase). Differences:
hyperparameters are checked at construction (``TypeError`` / ``ValueError``
naming the argument) and by ``load_state_dict``; a ``step`` that raises (e.g.
in a user's ``lr_lambda`` or ``scale_fn``, or a ChainedScheduler's third
scheduler) changes nothing, in the schedulers and in the param groups; a
computed lr that is not a finite number >= 0 raises ``ValueError`` (a
momentum too, and a ``betas[0]`` outside ``[0, 1)``, which our Adam refuses:
``base_momentum`` and ``max_momentum`` must then be below 1), except that
LinearLR's chainable step gives 0.0 where PyTorch's rounds to about -1e-18
(decaying to ``end_factor=0``; our optimizers refuse a negative lr) and
OneCycleLR's linear step ``total_steps`` gives 0.0 where PyTorch's gives a
negative lr; ConstantLR with ``factor=0`` returns to ``base_lr`` at
``total_iters`` (PyTorch divides by zero); a OneCycleLR phase of zero steps
raises ``ValueError`` (PyTorch: ``ZeroDivisionError``); CyclicLR's
``triangular2`` computes ``0.5 ** (cycle - 1)``, PyTorch's values without its
``OverflowError`` after 1024 cycles; CyclicLR's and OneCycleLR's ``get_lr()``
outside ``step()`` writes no momentum; ``ReduceLROnPlateau.step`` takes a
number (a string raises ``TypeError``; a NaN is a bad epoch, as in PyTorch);
a ChainedScheduler in a SequentialLR starts, and restarts at its milestone,
from ``initial_lr`` with the construction step of each of its schedulers
(PyTorch steps them as usual at construction, which for ExponentialLR
multiplies by ``gamma`` at epoch 0, and raises ``NotImplementedError`` at a
later milestone); state dicts hold plain values only (no functions: a
``scale_fn`` is saved as ``LambdaLR``'s lambdas are, ``None`` for a function;
no ``Counter``), so ``lec7rs.checkpoint`` can store them;
``CosineAnnealingWarmRestarts.step(epoch)`` finds the cycle in exact integer
arithmetic where PyTorch's ``math.log`` can round it to the previous cycle at
a restart; ``InverseTimeLR`` is not in PyTorch.

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
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "InverseTimeLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
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


def _real(
    lo: float = 0.0, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False
) -> Check:
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        value = float(value)
        ok = (
            (value > lo if lo_open else value >= lo)
            and (value < hi if hi_open else value <= hi)
            and math.isfinite(value)
        )
        if not ok:
            low = f"({lo}" if lo_open else f"[{lo}"
            high = f"{hi})" if hi_open else f"{hi}]"
            raise ValueError(f"{name} must be a finite number in {low}, {high}, got {value}")
        return value

    return check


def _choice(*options: str) -> Check:
    def check(name: str, value: Any) -> str:
        names = ", ".join(map(repr, options))
        if not isinstance(value, str):
            raise TypeError(f"{name} must be one of {names}, got {type(value).__name__}")
        if value not in options:
            raise ValueError(f"{name} must be one of {names}, got {value!r}")
        return value

    return check


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


_count = _int(0)
_positive = _int(1)
_non_negative = _real()
_positive_real = _real(lo_open=True)


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


@contextlib.contextmanager
def _groups_kept(optimizer: Any) -> Iterator[None]:
    """Restores the optimizer's param groups (lr, momentum, ...) if the block raises."""
    groups = optimizer.param_groups
    saved = [dict(g) for g in groups]
    try:
        yield
    except BaseException:
        for g, s in zip(groups, saved):
            g.clear()
            g.update(s)
        raise


def _lr_list(
    name: str, value: Any, n: int, check: Check = _non_negative, what: str = "learning rates"
) -> list:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ValueError(f"{name} must be a list of {n} {what} (one per param group)")
    return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]


def _per_group(name: str, value: Any, n: int, check: Check = _non_negative) -> list:
    """A value per param group: a list of ``n``, or one value for all (PyTorch's
    ``_format_param``)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(value)} values, param_groups has {n}."
            )
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n


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
        form; for the schedulers without one, the chainable form computed at
        ``epoch``, as in PyTorch). A step that raises changes nothing."""
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
                # As PyTorch: without a closed form, the chainable form at epoch.
                closed = type(self)._get_closed_form_lr is not LRScheduler._get_closed_form_lr
                values = self._get_closed_form_lr() if closed else self.get_lr()
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


def _stage_children(schedulers: list, children: Any) -> list:
    """Stages ``children`` (the state dicts of a SequentialLR's or a
    ChainedScheduler's schedulers) into ``schedulers``; returns their commits.
    Nothing changes if any of them does not fit."""
    if not isinstance(children, (list, tuple)) or len(children) != len(schedulers):
        raise ValueError(f"state_dict['_schedulers']: expected {len(schedulers)} state dicts")
    commits = []
    for i, (s, child) in enumerate(zip(schedulers, children)):
        try:
            commits.append(s._stage_load_state_dict(child))
        except (TypeError, ValueError) as e:
            raise ValueError(f"state_dict['_schedulers'][{i}]: {e}") from None
    return commits


def _plain(value: Any) -> Any:
    if isinstance(value, Counter):
        return sorted(value.elements())
    return value


def _load(d: Mapping, key: str, check: Check) -> Any:
    try:
        return check(f"state_dict[{key!r}]", d[key])
    except TypeError as e:
        raise ValueError(str(e)) from None


def _lr_lambdas(optimizer: Any, lr_lambda: Any) -> list:
    """One callable per param group: ``lr_lambda`` for all, or a list of them."""
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
    return lambdas


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
        self.lr_lambdas = _lr_lambdas(optimizer, lr_lambda)
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
    a positive multiple of ``step_size``).

    >>> import numpy as np
    >>> from lec7rs.optim import SGD
    >>> from lec7rs.optim.lr_scheduler import StepLR
    >>> opt = SGD([np.zeros(1)], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(opt.param_groups[0]["lr"])  # train an epoch at this lr
    ...     sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

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


def _nodes(schedulers: Iterable) -> list:
    """The schedulers and, depth first, those they hold (ChainedScheduler,
    SequentialLR), each once."""
    out: list = []
    seen: set = set()

    def visit(s: Any) -> None:
        if id(s) not in seen:
            seen.add(id(s))
            out.append(s)
            for child in getattr(s, "_schedulers", ()):
                visit(child)

    for s in schedulers:
        visit(s)
    return out


def _leaves(schedulers: Iterable) -> list:
    """The schedulers that step the lr themselves (no ``_schedulers``)."""
    return [s for s in _nodes(schedulers) if not hasattr(s, "_schedulers")]


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
    one's. A ``ChainedScheduler`` may be one of the schedulers (at its
    milestone its schedulers restart together from ``initial_lr``);
    ``ReduceLROnPlateau`` may not (``ValueError``: its ``step`` needs the
    metric), nor may a ``SequentialLR``, nested at any depth.
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
            if not isinstance(s, LRScheduler) or any(
                isinstance(n, SequentialLR) for n in _nodes([s])
            ):
                raise TypeError(
                    f"schedulers[{i}] must be a scheduler of lec7rs.optim.lr_scheduler "
                    f"(not SequentialLR), got {type(s).__name__}"
                )
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(
                    "SequentialLR does not support `ReduceLROnPlateau` scheduler as it requires "
                    "additional kwargs to be specified when calling `step`, but got one at "
                    f"index {i} in the given schedulers sequence."
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
        with _transaction(self, *_nodes(self._schedulers)):
            saved_lrs = [g["lr"] for g in groups]
            try:
                for g in groups:
                    g["lr"] = g["initial_lr"]
                for s in _leaves(self._schedulers):
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
        commits = _stage_children(self._schedulers, d["_schedulers"])

        def commit() -> None:
            for c in commits:
                c()
            self.last_epoch = last_epoch
            self._milestones = milestones
            self._last_lr = last_lr

        return commit


class ConstantLR(LRScheduler):
    r"""``lr_t = base_lr * (factor if t < total_iters else 1)``: a constant
    factor for the first ``total_iters`` epochs (a constant warm-up).

    Chainable: multiply by ``factor`` at epoch 0 and by ``1 / factor`` at
    ``total_iters``. With ``factor=0`` the lr returns to ``base_lr`` at
    ``total_iters`` (PyTorch divides by zero).
    """

    _hyper: ClassVar[dict[str, Check]] = {"factor": _real(0.0, 1.0), "total_iters": _positive}

    def __init__(
        self,
        optimizer: Any,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        self._set_hyper(factor=factor, total_iters=total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        if self.last_epoch == 0:
            return [lr * self.factor for lr in lrs]
        if self.last_epoch != self.total_iters:
            return lrs
        if self.factor == 0:
            return list(self.base_lrs)
        return [lr * (1.0 / self.factor) for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        f, t = self.factor, self.last_epoch
        return [base * (f + (t >= self.total_iters) * (1 - f)) for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 over ``total_iters`` epochs::

        lr_t = base_lr * (1 - min(t, total_iters) / total_iters) ** power

    Chainable form ``lr_t = lr_{t-1} * ((1 - t / n) / (1 - (t - 1) / n)) ** power``
    for ``t <= total_iters``, then constant.
    """

    _hyper: ClassVar[dict[str, Check]] = {"total_iters": _positive, "power": _non_negative}

    def __init__(
        self, optimizer: Any, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ):
        self._set_hyper(total_iters=total_iters, power=power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        lrs = [g["lr"] for g in self.optimizer.param_groups]
        n, t = self.total_iters, self.last_epoch
        if self._is_initial or t > n:
            return lrs
        decay = ((1.0 - t / n) / (1.0 - (t - 1) / n)) ** self.power
        return [lr * decay for lr in lrs]

    def _get_closed_form_lr(self) -> list:
        n, t = self.total_iters, self.last_epoch
        return [base * (1.0 - min(n, t) / n) ** self.power for base in self.base_lrs]


class MultiplicativeLR(LRScheduler):
    r"""``lr_t = lr_{t-1} * lr_lambda(t)`` for ``t >= 1``: one ``lr_lambda``
    for all groups or a list of them, one per group.

    There is no closed form: ``step(epoch)`` multiplies the current lr by
    ``lr_lambda(epoch)``, as in PyTorch. The state dict holds the lambdas as
    ``LambdaLR``'s does (``None`` for a function, ``fn.__dict__`` for a
    callable object).
    """

    def __init__(
        self,
        optimizer: Any,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ):
        self.lr_lambdas = _lr_lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        self._warn_get_lr()
        groups = self.optimizer.param_groups
        if self._is_initial:
            return [g["lr"] for g in groups]
        return [g["lr"] * fn(self.last_epoch) for fn, g in zip(self.lr_lambdas, groups)]

    _extra_state = LambdaLR._extra_state
    _stage_extra_state = LambdaLR._stage_extra_state


class ChainedScheduler(LRScheduler):
    r"""Steps several schedulers of one optimizer together: each ``step()``
    calls ``step()`` of each scheduler in turn, so their chainable factors
    multiply, e.g. a constant warm-up under an exponential decay::

        sched = ChainedScheduler([ConstantLR(opt, factor=0.1, total_iters=20),
                                  ExponentialLR(opt, gamma=0.9)])

    ``optimizer`` defaults to the first scheduler's; every scheduler must
    belong to it. ``ReduceLROnPlateau`` is refused (``ValueError``). A step
    that raises changes nothing: every scheduler and the param groups are
    restored. In a ``SequentialLR`` the chain starts (at construction, or at
    its milestone) from ``initial_lr`` with the construction step of each of
    its schedulers, so that their factors at epoch 0 multiply (PyTorch steps
    them in the ordinary way at construction, which multiplies e.g.
    ``ExponentialLR``'s lr by ``gamma`` at epoch 0, and raises
    ``NotImplementedError`` at a later milestone).
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Any = None):
        if isinstance(schedulers, (str, bytes)) or not isinstance(schedulers, Sequence):
            raise TypeError(
                f"schedulers must be a list of schedulers, got {type(schedulers).__name__}"
            )
        if len(schedulers) < 1:
            raise ValueError(
                "ChainedScheduler expects at least one scheduler to be chained, but got no "
                "scheduler."
            )
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler):
                raise TypeError(
                    f"schedulers[{i}] must be a scheduler of lec7rs.optim.lr_scheduler, "
                    f"got {type(s).__name__}"
                )
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(
                    "ChainedScheduler does not support `ReduceLROnPlateau` scheduler as it "
                    "requires additional kwargs to be specified when calling `step`, but got "
                    f"one at index {i} in the given schedulers sequence."
                )
        if optimizer is None:
            optimizer = schedulers[0].optimizer
        groups = _param_groups(optimizer)
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(
                    "ChainedScheduler expects all schedulers to belong to the same optimizer, "
                    f"but schedulers[{i}] ({type(s).__name__}) has another one"
                )
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = [g["lr"] for g in groups]

    def step(self) -> None:  # type: ignore[override]
        """Steps each scheduler in turn; a step that raises changes nothing."""
        with _transaction(*_nodes([self])), _groups_kept(self.optimizer):
            for s in self._schedulers:
                s.step()
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _initial_step(self) -> None:
        with _transaction(*_nodes([self])), _groups_kept(self.optimizer):
            for s in self._schedulers:
                s._initial_step()
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _update_lr(self, epoch: int | None) -> None:
        """``SequentialLR``'s start at a milestone (``epoch=0``): every
        scheduler of the chain restarts from ``initial_lr``."""
        if epoch is None:
            self.step()
            return
        if epoch != 0:
            raise ValueError(f"a ChainedScheduler restarts at epoch 0 only, got epoch={epoch}")
        groups = self.optimizer.param_groups
        missing = [i for i, g in enumerate(groups) if "initial_lr" not in g]
        if missing:
            raise ValueError(f"param_groups[{missing[0]}] has no 'initial_lr'")
        with _transaction(*_nodes([self])), _groups_kept(self.optimizer):
            for g in groups:
                g["lr"] = g["initial_lr"]
            for s in _leaves(self._schedulers):
                s.last_epoch = -1
            self._initial_step()

    def state_dict(self) -> dict:
        """``_last_lr`` and each scheduler's state dict under ``_schedulers``."""
        return {
            "scheduler": type(self).__name__,
            "_last_lr": list(self._last_lr),
            "_schedulers": [s.state_dict() for s in self._schedulers],
        }

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        d = state_dict
        if not isinstance(d, Mapping):
            raise TypeError(f"state_dict must be a dict, got {type(d).__name__}")
        if d.get("scheduler") != "ChainedScheduler":
            raise ValueError(
                f"state_dict is for scheduler {d.get('scheduler')!r}, not 'ChainedScheduler'"
            )
        expected = {"scheduler", "_last_lr", "_schedulers"}
        if set(d) != expected:
            raise ValueError(
                f"state_dict of ChainedScheduler: expected the keys {sorted(expected)}"
            )
        n = len(self.optimizer.param_groups)
        last_lr = _load(d, "_last_lr", lambda k, v: _lr_list(k, v, n))
        commits = _stage_children(self._schedulers, d["_schedulers"])

        def commit() -> None:
            for c in commits:
                c()
            self._last_lr = last_lr

        return commit


def _not_nan(name: str, value: Any) -> float:
    """A float that may be infinite (the best metric before the first step)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return float(value)


def _metric(value: Any) -> float:
    """The metric of ``ReduceLROnPlateau.step`` as a float: a real number or
    a 0-d array of one (a string is not a number here)."""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise TypeError(f"metrics must be a number, got {type(value).__name__}")
    if isinstance(value, numbers.Real) or (
        getattr(value, "shape", None) == () and getattr(value, "dtype", None) is not None
    ):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"metrics must be a number, got {type(value).__name__}")


class ReduceLROnPlateau(LRScheduler):
    r"""Reduces the lr when a metric has stopped improving: ``step(metrics)``
    once per epoch with e.g. the validation loss::

        sched = ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=10)
        for epoch in range(100):
            train(...)
            sched.step(validation_loss())

    A metric is an improvement when it beats the best so far by the
    threshold: ``a < best * (1 - threshold)`` (``mode="min"``,
    ``threshold_mode="rel"``), ``a < best - threshold`` (``"abs"``), or
    ``a > best * (1 + threshold)`` / ``a > best + threshold`` in
    ``mode="max"``. After more than ``patience`` epochs without one, each
    group's lr becomes ``max(lr * factor, min_lr)`` (unless that changes it
    by ``eps`` or less) and the next ``cooldown`` epochs count no bad
    epochs. ``min_lr`` is one value or a list, one per group. A NaN metric is
    never an improvement (a bad epoch), as in PyTorch; a metric that is not a
    number raises ``TypeError``.

    As in PyTorch 2.x it is an ``LRScheduler`` but has no ``base_lrs`` and
    sets no ``initial_lr``; it cannot be chained (``ChainedScheduler``,
    ``SequentialLR``). Its state dict holds the counters, ``best`` and the
    hyperparameters.
    """

    _hyper: ClassVar[dict[str, Check]] = {
        "mode": _choice("min", "max"),
        "factor": _real(0.0, 1.0, hi_open=True),
        "patience": _count,
        "threshold": _non_negative,
        "threshold_mode": _choice("rel", "abs"),
        "cooldown": _count,
        "eps": _non_negative,
    }

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | Sequence[float] = 0,
        eps: float = 1e-8,
    ):
        groups = _param_groups(optimizer)
        self._set_hyper(
            mode=mode,
            factor=factor,
            patience=patience,
            threshold=threshold,
            threshold_mode=threshold_mode,
            cooldown=cooldown,
            eps=eps,
        )
        if isinstance(min_lr, (list, tuple)):
            self.min_lrs = _per_group("min_lr", min_lr, len(groups))
            self.default_min_lr = None
        else:
            self.default_min_lr = _non_negative("min_lr", min_lr)
            self.min_lrs = [self.default_min_lr] * len(groups)
        self.optimizer = optimizer
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in groups]
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        self._reset()

    def _reset(self) -> None:
        """Resets the best metric, the bad-epoch counter and the cooldown."""
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        """Whether the scheduler is in its cooldown after a reduction (bad
        epochs are not counted then)."""
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: Any, epoch: int | None = None) -> None:  # type: ignore[override]
        """Counts the epoch of ``metrics`` (a number) and reduces the lr
        after more than ``patience`` bad epochs. A step that raises changes
        nothing."""
        current = _metric(metrics)
        if epoch is not None:
            epoch = _count("epoch", epoch)
        with _transaction(self):
            self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
            if self._is_better(current, self.best):
                self.best = current
                self.num_bad_epochs = 0
            else:
                self.num_bad_epochs += 1
            if self.in_cooldown:
                self.cooldown_counter -= 1
                self.num_bad_epochs = 0  # ignore any bad epochs in cooldown
            if self.num_bad_epochs > self.patience:
                self._reduce_lr()
                self.cooldown_counter = self.cooldown
                self.num_bad_epochs = 0
            self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(
                    f"The number of param groups in the `optimizer` ({len(groups)}) differs "
                    f"from when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), "
                    "usually due to a new param group being added to the optimizer. Please "
                    "modify the `min_lrs` field to match the length of the `optimizer` param "
                    "groups."
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        new = []
        for g, min_lr in zip(groups, self.min_lrs):
            old_lr = float(g["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            new.append(new_lr if old_lr - new_lr > self.eps else g["lr"])
        for g, lr in zip(groups, new):
            g["lr"] = lr

    def get_last_lr(self) -> list:
        """The lr of each param group after the latest ``step(metrics)``."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """``last_epoch``, ``_last_lr``, the hyperparameters, ``min_lrs``,
        ``default_min_lr`` and the counters (``best``, ``num_bad_epochs``,
        ``cooldown_counter``, ``mode_worse``), PyTorch's names."""
        d = {
            "scheduler": type(self).__name__,
            "last_epoch": self.last_epoch,
            "_last_lr": list(self._last_lr),
        }
        for name in self._hyper:
            d[name] = getattr(self, name)
        d.update(
            min_lrs=list(self.min_lrs),
            default_min_lr=self.default_min_lr,
            best=self.best,
            num_bad_epochs=self.num_bad_epochs,
            cooldown_counter=self.cooldown_counter,
            mode_worse=self.mode_worse,
        )
        return d

    def _stage_load_state_dict(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
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
            "last_epoch": _count,
            "_last_lr": lambda k, v: _lr_list(k, v, n),
            "num_bad_epochs": _count,
            "cooldown_counter": _count,
            "best": _not_nan,
            **self._hyper,
        }
        values = {k: _load(d, k, check) for k, check in checks.items()}
        default = d["default_min_lr"]
        if default is not None:
            default = _load(d, "default_min_lr", _non_negative)
        saved = d["min_lrs"]
        count = n if default is None else len(saved) if isinstance(saved, (list, tuple)) else 0
        values["min_lrs"] = _load(d, "min_lrs", lambda k, v: _lr_list(k, v, count))
        values["default_min_lr"] = default
        worse = math.inf if values["mode"] == "min" else -math.inf
        if d["mode_worse"] != worse:
            raise ValueError(
                f"state_dict['mode_worse'] must be {worse} for mode={values['mode']!r}, "
                f"got {d['mode_worse']!r}"
            )
        values["mode_worse"] = worse
        return lambda: self.__dict__.update(values)


def _momentum_kind(optimizer: Any) -> bool:
    """Whether ``cycle_momentum`` writes ``betas[0]`` (True: the Adam family)
    or ``momentum`` (False: SGD, RMSprop); ``ValueError`` for an optimizer
    with neither (Adagrad)."""
    groups = optimizer.param_groups
    defaults = getattr(optimizer, "defaults", None)
    keys = defaults if isinstance(defaults, Mapping) else groups[0]
    if "momentum" not in keys and "betas" not in keys:
        raise ValueError(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
        )
    use_beta1 = "betas" in keys
    key = "betas" if use_beta1 else "momentum"
    for i, g in enumerate(groups):
        if key not in g:
            raise ValueError(f"cycle_momentum: param_groups[{i}] has no {key!r}")
        if use_beta1 and not (isinstance(g["betas"], (tuple, list)) and len(g["betas"]) == 2):
            raise ValueError(f"cycle_momentum: param_groups[{i}]['betas'] is not a pair")
    return use_beta1


def _momentum_check(use_beta1: bool) -> Check:
    """A momentum: >= 0, and below 1 where it is Adam's ``betas[0]``."""
    return _real(0.0, 1.0, hi_open=True) if use_beta1 else _non_negative


class _CyclesMomentum:
    """Writes the momenta that ``get_lr`` computed (``_momentums``) with the
    lrs, after both are checked: a step that raises writes neither."""

    optimizer: Any
    last_epoch: int
    use_beta1: bool | None
    _momentums: list | None = None

    def _write(self, values: Sequence) -> None:
        momentums, self._momentums = self._momentums, None
        if momentums is not None:
            check = _momentum_check(bool(self.use_beta1))
            what = "betas[0]" if self.use_beta1 else "momentum"
            for i, m in enumerate(momentums):
                try:
                    check(what, m)
                except (TypeError, ValueError) as e:
                    raise ValueError(
                        f"{type(self).__name__} computed {what}={m!r} for param_groups[{i}] at "
                        f"epoch {self.last_epoch}: {e}"
                    ) from None
        super()._write(values)  # type: ignore[misc]
        if momentums is not None:
            for g, m in zip(self.optimizer.param_groups, momentums):
                _set_momentum(g, m, bool(self.use_beta1))


def _set_momentum(group: dict, m: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (m, group["betas"][1])
    else:
        group["momentum"] = m


def _fn_state(fn: Any) -> Any:
    """A user's function in a state dict: ``None`` for a function (code is
    never saved), a copy of ``__dict__`` for a callable object."""
    if fn is None or isinstance(fn, types.FunctionType) or not hasattr(fn, "__dict__"):
        return None
    return dict(fn.__dict__)


def _stage_fn_state(key: str, fn: Any, entry: Any) -> Callable[[], None]:
    if entry is None:
        return lambda: None
    if not isinstance(entry, Mapping) or not all(isinstance(k, str) for k in entry):
        raise ValueError(f"state_dict[{key!r}]: expected None or a dict")
    if fn is None or not hasattr(fn, "__dict__"):
        raise ValueError(f"state_dict[{key!r}]: this scheduler has no callable object to load")
    entry = dict(entry)
    return lambda: fn.__dict__.update(entry)


class CyclicLR(_CyclesMomentum, LRScheduler):
    r"""Cyclical learning rates (CLR, Smith 2017), stepped once per batch.

    The lr goes from ``base_lr`` up to ``max_lr`` in ``step_size_up``
    iterations and back down in ``step_size_down`` (default: as up), the
    amplitude scaled per cycle or per iteration::

        cycle = floor(1 + t / (up + down)),  x = 1 + t / (up + down) - cycle
        s = x / r if x <= r else (x - 1) / (r - 1)         (r = up / (up + down))
        lr_t = base_lr + (max_lr - base_lr) * s * scale_fn(cycle or t)

    ``mode``: ``"triangular"`` (``scale_fn = 1``), ``"triangular2"``
    (halved each cycle: ``0.5 ** (cycle - 1)``, which is PyTorch's
    ``1 / 2.0 ** (cycle - 1)`` without its OverflowError after 1024 cycles),
    ``"exp_range"`` (``gamma ** t``, per iteration). A ``scale_fn`` of one
    argument replaces the mode; ``scale_mode`` (``"cycle"`` or
    ``"iterations"``) says what it is given (the built-in modes set it).

    With ``cycle_momentum=True`` the momentum cycles inversely, from
    ``max_momentum`` down to ``base_momentum``: ``group["momentum"]`` (SGD,
    RMSprop) or ``betas[0]`` (the Adam family: ``betas`` becomes the new
    tuple ``(m, betas[1])``; both momenta must then be in ``[0, 1)``); an
    optimizer with neither raises ``ValueError``. As in PyTorch the
    construction sets each group's lr to ``base_lr``, its momentum to
    ``max_momentum``, and its ``max_momentum`` and ``base_momentum`` keys
    (with ``last_epoch=-1``). ``get_lr()`` outside ``step()`` computes the
    momentum without writing it.

    The schedule is a function of ``t`` (no chainable form); ``step(epoch)``
    jumps to iteration ``epoch``. The state dict holds ``_scale_fn_custom``
    as ``LambdaLR`` holds its lambdas (``None`` for a function).
    """

    _hyper: ClassVar[dict[str, Check]] = {
        "total_size": _positive_real,
        "step_ratio": _real(0.0, 1.0, lo_open=True),
        "gamma": _non_negative,
        "cycle_momentum": _flag,
    }
    _modes: ClassVar[tuple[str, ...]] = ("triangular", "triangular2", "exp_range")

    def __init__(
        self,
        optimizer: Any,
        base_lr: float | Sequence[float],
        max_lr: float | Sequence[float],
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.8,
        max_momentum: float | Sequence[float] = 0.9,
        last_epoch: int = -1,
    ):
        groups = _param_groups(optimizer)
        n = len(groups)
        last_epoch = _int(-1)("last_epoch", last_epoch)
        base_lrs = _per_group("base_lr", base_lr, n)
        max_lrs = _per_group("max_lr", max_lr, n)
        up = _positive_real("step_size_up", step_size_up)
        down = up if step_size_down is None else _non_negative("step_size_down", step_size_down)
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError(f"scale_fn must be callable or None, got {type(scale_fn).__name__}")
        mode = (_choice(*self._modes) if scale_fn is None else _text)("mode", mode)
        scale_mode = _choice("cycle", "iterations")("scale_mode", scale_mode)
        self._set_hyper(
            total_size=up + down,
            step_ratio=up / (up + down),
            gamma=gamma,
            cycle_momentum=cycle_momentum,
        )
        if self.cycle_momentum:
            self.use_beta1 = _momentum_kind(optimizer)
            check = _momentum_check(self.use_beta1)
            self.base_momentums = _per_group("base_momentum", base_momentum, n, check)
            self.max_momentums = _per_group("max_momentum", max_momentum, n, check)
        else:
            self.use_beta1 = self.base_momentums = self.max_momentums = None
        self.max_lrs = max_lrs
        self.mode = mode
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        with _groups_kept(optimizer):
            if last_epoch == -1:
                for g, lr in zip(groups, base_lrs):
                    g["lr"] = lr
                if self.cycle_momentum:
                    for g, m_max, m_base in zip(groups, self.max_momentums, self.base_momentums):
                        _set_momentum(g, m_max, self.use_beta1)
                        g["max_momentum"] = m_max
                        g["base_momentum"] = m_base
            super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The amplitude's scale at cycle (or iteration) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 0.5 ** (x - 1)
        return self.gamma**x

    def get_lr(self) -> list:
        self._warn_get_lr()
        t = self.last_epoch
        cycle = math.floor(1 + t / self.total_size)
        x = 1.0 + t / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        arg = cycle if self.scale_mode == "cycle" else t
        lrs = []
        for base_lr, max_lr in zip(self.base_lrs, self.max_lrs):
            base_height = (max_lr - base_lr) * scale_factor
            lrs.append(base_lr + base_height * self.scale_fn(arg))
        if self.cycle_momentum:
            momentums = []
            for base_m, max_m in zip(self.base_momentums, self.max_momentums):
                base_height = (max_m - base_m) * scale_factor
                momentums.append(max_m - base_height * self.scale_fn(arg))
            self._momentums = momentums
        return lrs

    def _extra_state(self) -> dict:
        return {
            "max_lrs": list(self.max_lrs),
            "mode": self.mode,
            "scale_mode": self.scale_mode,
            "_scale_fn_custom": _fn_state(self._scale_fn_custom),
            "use_beta1": self.use_beta1,
            "base_momentums": None if self.base_momentums is None else list(self.base_momentums),
            "max_momentums": None if self.max_momentums is None else list(self.max_momentums),
        }

    def _stage_extra_state(self, d: Mapping, values: dict) -> Callable[[], None]:
        n = len(self.optimizer.param_groups)
        custom = self._scale_fn_custom
        values["max_lrs"] = _load(d, "max_lrs", lambda k, v: _lr_list(k, v, n))
        values["mode"] = _load(d, "mode", _choice(*self._modes) if custom is None else _text)
        scale_mode = _load(d, "scale_mode", _choice("cycle", "iterations"))
        if custom is None:
            scale_mode = "iterations" if values["mode"] == "exp_range" else "cycle"
        values["scale_mode"] = scale_mode
        commit = _stage_fn_state("_scale_fn_custom", custom, d["_scale_fn_custom"])
        values.update(_stage_momentum_state(self.optimizer, d, values["cycle_momentum"]))
        return commit


def _stage_momentum_state(optimizer: Any, d: Mapping, cycle_momentum: bool) -> dict:
    """``use_beta1``, ``base_momentums`` and ``max_momentums`` of a state dict
    (those of them it has), checked against ``cycle_momentum`` and the optimizer."""
    keys = [k for k in ("use_beta1", "base_momentums", "max_momentums") if k in d]
    if not cycle_momentum:
        if any(d[k] is not None for k in keys):
            raise ValueError(f"state_dict: {keys} must be None with cycle_momentum=False")
        return {k: None for k in keys}
    use_beta1 = _momentum_kind(optimizer)
    if d["use_beta1"] is not use_beta1:
        raise ValueError(
            f"state_dict['use_beta1'] is {d['use_beta1']!r}, but this optimizer cycles "
            f"{'betas[0]' if use_beta1 else 'momentum'}"
        )
    n = len(optimizer.param_groups)
    check = _momentum_check(use_beta1)
    out: dict = {"use_beta1": use_beta1}
    for k in keys[1:]:
        out[k] = _load(d, k, lambda k, v: _lr_list(k, v, n, check, "momenta"))
    return out


def _one_cycle_phases(pct_start: float, total_steps: int, three_phase: bool) -> list:
    """PyTorch's ``_schedule_phases``: where each phase ends, and the group
    keys it anneals between."""
    up = {"start_lr": "initial_lr", "end_lr": "max_lr"}
    up_m = {"start_momentum": "max_momentum", "end_momentum": "base_momentum"}
    if three_phase:
        return [
            {"end_step": float(pct_start * total_steps) - 1, **up, **up_m},
            {
                "end_step": float(2 * pct_start * total_steps) - 2,
                "start_lr": "max_lr",
                "end_lr": "initial_lr",
                "start_momentum": "base_momentum",
                "end_momentum": "max_momentum",
            },
            {
                "end_step": total_steps - 1,
                "start_lr": "initial_lr",
                "end_lr": "min_lr",
                "start_momentum": "max_momentum",
                "end_momentum": "max_momentum",
            },
        ]
    return [
        {"end_step": float(pct_start * total_steps) - 1, **up, **up_m},
        {
            "end_step": total_steps - 1,
            "start_lr": "max_lr",
            "end_lr": "min_lr",
            "start_momentum": "base_momentum",
            "end_momentum": "max_momentum",
        },
    ]


def _phases(name: str, value: Any) -> list:
    lr_keys, m_keys = ("initial_lr", "max_lr", "min_lr"), ("max_momentum", "base_momentum")
    keys = {"end_step", "start_lr", "end_lr", "start_momentum", "end_momentum"}
    if not isinstance(value, (list, tuple)) or len(value) not in (2, 3):
        raise ValueError(f"{name} must be a list of 2 or 3 phases")
    out = []
    for i, p in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(p, Mapping) or set(p) != keys:
            raise ValueError(f"{where} must be a dict with the keys {sorted(keys)}")
        end = p["end_step"]
        if isinstance(end, bool) or not isinstance(end, numbers.Real) or not math.isfinite(end):
            raise ValueError(f"{where}['end_step'] must be a finite number, got {end!r}")
        for k, allowed in (("start_lr", lr_keys), ("end_lr", lr_keys)):
            if p[k] not in allowed:
                raise ValueError(f"{where}[{k!r}] must be one of {allowed}, got {p[k]!r}")
        for k in ("start_momentum", "end_momentum"):
            if p[k] not in m_keys:
                raise ValueError(f"{where}[{k!r}] must be one of {m_keys}, got {p[k]!r}")
        out.append(dict(p))
    return out


class OneCycleLR(_CyclesMomentum, LRScheduler):
    r"""The 1cycle policy (Smith & Topin 2017, "Super-Convergence"), stepped
    once per batch, for ``total_steps`` (or ``epochs * steps_per_epoch``)
    steps.

    The lr anneals from ``initial_lr = max_lr / div_factor`` up to
    ``max_lr`` over the first ``pct_start`` of the steps, then down to
    ``min_lr = initial_lr / final_div_factor`` (fastai's two phases); with
    ``three_phase=True`` back down to ``initial_lr`` symmetrically, then to
    ``min_lr`` (the paper's). ``anneal_strategy``: ``"cos"``
    (``end + (start - end) * (1 + cos(pi * pct)) / 2``) or ``"linear"``.
    ``cycle_momentum=True`` anneals the momentum inversely between
    ``max_momentum`` and ``base_momentum``, as ``CyclicLR`` does. As in
    PyTorch the construction writes ``initial_lr``, ``max_lr``, ``min_lr``
    (and ``max_momentum``, ``base_momentum``) into each group, from which
    the steps read them; resuming with ``last_epoch=k`` needs them there.

    The schedule is a function of the step (no chainable form);
    ``step(epoch)`` jumps to step ``epoch``. As in PyTorch, step
    ``total_steps`` (one past the last, reached by a ``step()`` after the
    last batch) continues the last phase's curve and a later one raises
    ``ValueError``; there ``"linear"`` gives 0.0 where PyTorch gives a
    negative lr. A phase of zero steps that is reached raises ``ValueError``
    (PyTorch: ``ZeroDivisionError``).
    """

    _hyper: ClassVar[dict[str, Check]] = {
        "total_steps": _positive,
        "_anneal_func_type": _choice("cos", "linear"),
        "cycle_momentum": _flag,
    }

    def __init__(
        self,
        optimizer: Any,
        max_lr: float | Sequence[float],
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float | Sequence[float] = 0.85,
        max_momentum: float | Sequence[float] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ):
        groups = _param_groups(optimizer)
        n = len(groups)
        last_epoch = _int(-1)("last_epoch", last_epoch)
        if total_steps is not None:
            total = _positive("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            total = _positive("epochs", epochs) * _positive("steps_per_epoch", steps_per_epoch)
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        pct_start = _real(0.0, 1.0)("pct_start", pct_start)
        anneal_strategy = _choice("cos", "linear")("anneal_strategy", anneal_strategy)
        three_phase = _flag("three_phase", three_phase)
        max_lrs = _per_group("max_lr", max_lr, n)
        div_factor = _positive_real("div_factor", div_factor)
        final_div_factor = _positive_real("final_div_factor", final_div_factor)
        self._set_hyper(
            total_steps=total, _anneal_func_type=anneal_strategy, cycle_momentum=cycle_momentum
        )
        if self.cycle_momentum:
            self.use_beta1 = _momentum_kind(optimizer)
            check = _momentum_check(self.use_beta1)
            max_momentums = _per_group("max_momentum", max_momentum, n, check)
            base_momentums = _per_group("base_momentum", base_momentum, n, check)
        else:
            self.use_beta1 = None
        if last_epoch != -1:
            keys = ["max_lr", "min_lr"] + ["max_momentum", "base_momentum"] * self.cycle_momentum
            for i, g in enumerate(groups):
                for k in keys:
                    if k not in g:
                        raise ValueError(
                            f"param_groups[{i}] has no {k!r}: resuming with "
                            f"last_epoch={last_epoch} needs the optimizer of a scheduled run "
                            "(load its state_dict first)"
                        )
        self._schedule_phases = _one_cycle_phases(pct_start, total, three_phase)
        with _groups_kept(optimizer):
            if last_epoch == -1:
                for g, m in zip(groups, max_lrs):
                    g["initial_lr"] = m / div_factor
                    g["max_lr"] = m
                    g["min_lr"] = g["initial_lr"] / final_div_factor
                if self.cycle_momentum:
                    for g, m_max, m_base in zip(groups, max_momentums, base_momentums):
                        _set_momentum(g, m_max, self.use_beta1)
                        g["max_momentum"] = m_max
                        g["base_momentum"] = m_base
            super().__init__(optimizer, last_epoch)

    @staticmethod
    def _annealing_cos(start: float, end: float, pct: float) -> float:
        """Cosine anneal from ``start`` to ``end`` as ``pct`` goes from 0 to 1."""
        cos_out = math.cos(math.pi * pct) + 1
        return end + (start - end) / 2.0 * cos_out

    @staticmethod
    def _annealing_linear(start: float, end: float, pct: float) -> float:
        """Linear anneal from ``start`` to ``end`` as ``pct`` goes from 0 to 1."""
        return (end - start) * pct + start

    def _anneal_func(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return self._annealing_cos(start, end, pct)
        return self._annealing_linear(start, end, pct)

    def get_lr(self) -> list:
        self._warn_get_lr()
        step_num = self.last_epoch
        if step_num > self.total_steps:
            raise ValueError(
                f"Tried to step {step_num} times. The specified number of total steps is "
                f"{self.total_steps}"
            )
        phases = self._schedule_phases
        lrs, momentums = [], []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(phases):
                end_step = phase["end_step"]
                if step_num <= end_step or i == len(phases) - 1:
                    if end_step == start_step:
                        raise ValueError(
                            f"OneCycleLR: phase {i} has no steps (it ends at step {end_step}, "
                            f"where it starts; total_steps={self.total_steps}): choose another "
                            "pct_start"
                        )
                    pct = (step_num - start_step) / (end_step - start_step)
                    lr = self._anneal_func(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentums.append(
                            self._anneal_func(
                                group[phase["start_momentum"]], group[phase["end_momentum"]], pct
                            )
                        )
                    break
                start_step = phase["end_step"]
            # Past the last step "linear" continues below min_lr (PyTorch: lr < 0).
            lrs.append(max(lr, 0.0))
        if self.cycle_momentum:
            self._momentums = momentums
        return lrs

    def _extra_state(self) -> dict:
        return {
            "_schedule_phases": [dict(p) for p in self._schedule_phases],
            "use_beta1": self.use_beta1,
        }

    def _stage_extra_state(self, d: Mapping, values: dict) -> Callable[[], None]:
        values["_schedule_phases"] = _load(d, "_schedule_phases", _phases)
        values.update(_stage_momentum_state(self.optimizer, d, values["cycle_momentum"]))
        return lambda: None
