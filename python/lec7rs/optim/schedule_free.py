"""Schedule-free AdamW and SGD (Defazio et al. 2024)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np

from ..random import Generator
from .optimizer import GradsT, Optimizer, ParamsT, _flag

__all__ = ["ScheduleFreeAdamW", "ScheduleFreeSGD"]

# The group's schedule as the reference keeps it: these keys start at these
# values in every new group and advance with each step.
_SCHEDULE = {"k": 0, "lr_max": -1.0, "weight_sum": 0.0, "scheduled_lr": 0.0, "ckp1": 0.0}


def _lerp_into(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start = lerp(start, end, weight)`` in place, in ``start``'s dtype
    (ATen's two formulas, picked by ``|weight| < 0.5``)."""
    dt = start.dtype.type
    w = dt(weight)
    diff = np.subtract(end, start)
    if abs(w) < 0.5:
        diff *= w
        start += diff
    else:
        diff *= dt(1) - w
        np.subtract(end, diff, out=start)


class _ScheduleFree(Optimizer):
    """What both schedule-free optimizers share: the per-group schedule,
    and ``train()`` / ``eval()`` moving the params between ``y`` and ``x``."""

    def __init__(self, params: ParamsT, defaults: dict, *, check_finite: bool, **precision: Any):
        # The params' train-mode values saved by eval(), restored by train().
        self._saved_y: dict[int, np.ndarray] = {}
        super().__init__(
            params,
            {**defaults, **_SCHEDULE, "train_mode": True},
            check_finite=check_finite,
            **precision,
        )

    def _beta1(self, group: Mapping[str, Any]) -> float:
        raise NotImplementedError

    def _validate(self, group: Mapping[str, Any], where: str) -> None:
        _flag(f"{where}train_mode", group.get("train_mode", True))
        super()._validate(group, where)
        try:
            self._schedule({**self.defaults, **group})  # the next step's weight is finite
        except ValueError as e:
            raise ValueError(f"{where}{e}") from None

    def _add_param_group(self, param_group: Mapping[str, Any]) -> None:
        # A group added later joins in the optimizer's current mode.
        mode = self.param_groups[0]["train_mode"] if self.param_groups else True
        super()._add_param_group({**param_group, **_SCHEDULE, "train_mode": mode})

    @property
    def train_mode(self) -> bool:
        """True between ``train()`` and ``eval()`` (a new optimizer trains)."""
        return bool(self.param_groups[0]["train_mode"])

    # -- the schedule -------------------------------------------------------------

    @staticmethod
    def _schedule(group: Mapping[str, Any]) -> dict:
        """The group's schedule after this step: the reference's arithmetic
        (Python floats), with ``scheduled_lr`` and ``ckp1`` for the kernel."""
        k = group["k"]
        warmup = group["warmup_steps"]
        sched = (k + 1) / warmup if k < warmup else 1.0
        lr = group["lr"] * sched
        lr_max = max(lr, group["lr_max"])
        try:
            weight = ((k + 1) ** group["r"]) * (lr_max ** group["weight_lr_power"])
        except OverflowError:
            weight = math.inf
        if not math.isfinite(weight):
            raise ValueError(
                f"r={group['r']!r}, weight_lr_power={group['weight_lr_power']!r}: the weight "
                f"of step {k + 1} in the average overflows"
            )
        weight_sum = group["weight_sum"] + weight
        ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
        return {
            "k": k + 1,
            "lr_max": lr_max,
            "weight_sum": weight_sum,
            "scheduled_lr": lr,
            "ckp1": ckp1,
        }

    def step(self, grads: GradsT, *, grad_scale: float | None = None) -> None:
        """One step of every group that is not frozen (train mode only);
        advances each such group's schedule (``k``, ``lr_max``,
        ``weight_sum``) unless the step raised or was skipped."""
        with self._lock:
            if not self.train_mode:
                raise RuntimeError(
                    "step() in eval mode: call optimizer.train() before training steps and "
                    "optimizer.eval() before evaluating or saving the params"
                )
            stepping = [g for g in self.param_groups if not g["frozen"]]
            try:
                new = [self._schedule(g) for g in stepping]
            except (TypeError, ValueError):
                # A hyperparameter changed to a bad value: the core's message.
                for i, g in enumerate(self.param_groups):
                    self._validate(g, f"param_groups[{i}]: ")
                raise
            old = [{key: g[key] for key in _SCHEDULE} for g in stepping]
            # The kernel reads this step's scheduled_lr and ckp1 and the
            # group's k before the step.
            for g, n in zip(stepping, new):
                g["scheduled_lr"], g["ckp1"] = n["scheduled_lr"], n["ckp1"]
            try:
                super().step(grads, grad_scale=grad_scale)
            except BaseException:
                for g, o in zip(stepping, old):
                    g.update(o)
                raise
            for g, n, o in zip(stepping, new, old):
                g.update(n if not self.last_step_skipped else o)

    # -- train / eval -------------------------------------------------------------

    def _z(self, i: int) -> np.ndarray | None:
        return self._state[0][i]

    def eval(self) -> None:
        """Moves the params to ``x``, the average at which to evaluate (and
        save) the model: ``p = lerp(p, z, 1 - 1/beta1)``. Keeps a copy of the
        training point ``y`` so that ``train()`` restores it bit for bit.
        Does nothing in eval mode. A model with BatchNorm needs its running
        statistics recomputed at ``x`` after this (the reference's advice:
        a few dozen forward passes over training batches in train mode)."""
        with self._lock:
            if not self.train_mode:
                return
            for i, p in enumerate(self._params):
                z = self._z(i)
                if z is not None:
                    self._saved_y[i] = p.copy()
                    _lerp_into(p, z, 1 - 1 / self._beta1(self.param_groups[self._group_of[i]]))
            for g in self.param_groups:
                g["train_mode"] = False

    def train(self) -> None:
        """Moves the params back to ``y``, the point where the grads are
        taken: the copy ``eval()`` kept (bit for bit), or, after
        ``load_state_dict`` of a state saved in eval mode, the reference's
        ``p = lerp(p, z, 1 - beta1)``. Does nothing in train mode."""
        with self._lock:
            if self.train_mode:
                return
            for i, p in enumerate(self._params):
                z = self._z(i)
                saved = self._saved_y.get(i)
                if saved is not None:
                    p[...] = saved
                elif z is not None:
                    _lerp_into(p, z, 1 - self._beta1(self.param_groups[self._group_of[i]]))
            self._saved_y.clear()
            for g in self.param_groups:
                g["train_mode"] = True

    def _stage(self, state_dict: Mapping[str, Any]) -> Callable[[], None]:
        commit = super()._stage(state_dict)
        modes = {
            _flag(f"state_dict param_groups[{i}]: train_mode", g["train_mode"])
            for i, g in enumerate(state_dict["param_groups"])
            if "train_mode" in g
        }
        if len(modes) > 1:
            raise ValueError("state_dict param groups disagree on train_mode")

        def commit_all() -> None:
            commit()
            self._saved_y.clear()

        return commit_all


class ScheduleFreeAdamW(_ScheduleFree):
    r"""Schedule-free AdamW (Defazio et al. 2024, "The Road Less Scheduled";
    the reference implementation facebookresearch/schedule_free's
    ``AdamWScheduleFree``): no learning-rate schedule is needed, and none
    should be used beyond the built-in warmup.

    Three sequences: ``z`` (the base AdamW-like steps), ``x`` (their
    weighted average, where the model is evaluated) and ``y`` (between
    them, where the grads are taken: the params while training). Per
    element, with the group's step ``k`` (from 0) and ``c = ckp1``::

        v = beta2 * v + (1 - beta2) * g * g
        g = g / (sqrt(v / (1 - beta2^(k+1))) + eps)
        g = g + weight_decay * y                if weight_decay != 0
        y = lerp(y, z, c) + lr_k * (beta1 * (1 - c) - 1) * g
        z = z - lr_k * g

    with, per group, ``lr_k = lr * min(1, (k+1) / warmup_steps)``,
    ``lr_max = max(lr_max, lr_k)``, weight ``(k+1)^r * lr_max^weight_lr_power``
    and ``c`` = that weight over the sum of the weights so far. One pass
    over memory, Adam's bytes.

    Call ``eval()`` before evaluating or saving the model (the params become
    ``x``) and ``train()`` before training again; ``step`` raises in eval
    mode. A new optimizer is in train mode (the reference starts in eval
    mode and needs a first ``train()``). Each group keeps ``k``, ``lr_max``,
    ``weight_sum``, ``scheduled_lr`` (this step's lr), ``ckp1`` and
    ``train_mode``, as the reference does (``ckp1`` is ours). State per
    param: ``z`` (a copy of the param at its first step), ``exp_avg_sq``.
    The reference's ``inner_momentum`` is not offered.
    """

    _rule = "schedule_free_adamw"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2.5e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        check_finite: bool = False,
        master_weights: bool = False,
        state_dtype: str | None = None,
        stochastic_rounding: bool = False,
        rng: Generator | None = None,
    ):
        super().__init__(
            params, self._pick(locals()), check_finite=check_finite, **self._precision(locals())
        )

    def _beta1(self, group: Mapping[str, Any]) -> float:
        return float(group["betas"][0])


class ScheduleFreeSGD(_ScheduleFree):
    r"""Schedule-free SGD (Defazio et al. 2024; the reference's
    ``SGDScheduleFree``). As :class:`ScheduleFreeAdamW` without the second
    moment, with ``momentum`` in the place of ``beta1``::

        g = g + weight_decay * y                if weight_decay != 0
        y = lerp(y, z, c) + lr_k * (momentum * (1 - c) - 1) * g
        z = z - lr_k * g

    The reference's advice: an lr 10-50x larger than plain SGD's. State per
    param: ``z``.
    """

    _rule = "schedule_free_sgd"

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        check_finite: bool = False,
        master_weights: bool = False,
        state_dtype: str | None = None,
        stochastic_rounding: bool = False,
        rng: Generator | None = None,
    ):
        super().__init__(
            params, self._pick(locals()), check_finite=check_finite, **self._precision(locals())
        )

    def _beta1(self, group: Mapping[str, Any]) -> float:
        return float(group["momentum"])
