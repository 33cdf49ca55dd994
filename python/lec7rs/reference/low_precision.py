"""NumPy reference for low precision (docs/low_precision.md): the 8-bit
dynamic code, block-wise quantization, stochastic rounding, and
``LowPrecisionReference``, the expected trajectory of an optimizer with
16-bit params, master weights or bfloat16 / int8 state.

The reference steps a float32 lec7rs optimizer of the same class (its
float32 step is tested bit-identical to NumPy elsewhere) and, after each
step, rounds what the low-precision optimizer stores: the params, and the
moment slots (``astype(bfloat16)``, or quantized and dequantized).

int8 bound: a dequantized value differs from the float32 value it stores by
at most half the largest gap between neighbouring codes times its block's
absmax (plus float32 rounding of ``code * absmax``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .random import philox4x32_10

if TYPE_CHECKING:
    from ..optim.optimizer import Optimizer

__all__ = [
    "BLOCK",
    "MIN_INT8",
    "MOMENT_CODES",
    "LowPrecisionReference",
    "dequantize",
    "dynamic_code",
    "quantize",
    "round_stochastic",
]

#: Elements per absmax block.
BLOCK = 2048
#: The smallest param (in elements) whose moments are stored as int8.
MIN_INT8 = 4096
#: The stochastic-rounding counter's domain tag (word 3, xor the step's high word).
_SR_TAG = 0x53524E44

#: Rule name (an optimizer class's ``_rule``) -> moment slot -> its 8-bit code.
#: Slots not listed (ASGD's ``ax``, schedule-free's ``z``, Adafactor's
#: ``row_var`` / ``col_var``, scalars) stay float32.
MOMENT_CODES: dict[str, dict[str, str]] = {
    "sgd": {"momentum_buffer": "signed"},
    "adagrad": {"sum": "unsigned"},
    "rmsprop": {"square_avg": "unsigned", "momentum_buffer": "signed", "grad_avg": "signed"},
    "adam": {"exp_avg": "signed", "exp_avg_sq": "unsigned", "max_exp_avg_sq": "unsigned"},
    "nadam": {"exp_avg": "signed", "exp_avg_sq": "unsigned"},
    "radam": {"exp_avg": "signed", "exp_avg_sq": "unsigned"},
    "lamb": {"exp_avg": "signed", "exp_avg_sq": "unsigned"},
    "adamax": {"exp_avg": "signed", "exp_inf": "unsigned"},
    "adadelta": {"square_avg": "unsigned", "acc_delta": "unsigned"},
    "rprop": {"prev": "signed", "step_size": "unsigned"},
    "asgd": {},
    "lion": {"exp_avg": "signed"},
    "lars": {"momentum_buffer": "signed"},
    "muon": {"momentum_buffer": "signed"},
    "schedule_free_adamw": {"exp_avg_sq": "unsigned"},
    "schedule_free_sgd": {},
    "adafactor": {"variance": "unsigned"},
}


def _bfloat16() -> np.dtype:
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


def dynamic_code(signed: bool) -> np.ndarray:
    """bitsandbytes' ``create_dynamic_map(signed, 7, 8)``: 256 sorted float32
    values (computed in float64, rounded once)."""
    data: list[float] = []
    for i in range(7):
        items = 2**i + 1 if signed else 2 ** (i + 1) + 1
        b = np.linspace(0.1, 1, items)
        means = (b[:-1] + b[1:]) / 2
        data += list(10.0 ** (-6 + i) * means)
        if signed:
            data += list(-(10.0 ** (-6 + i)) * means)
    data += [0.0, 1.0]
    return np.sort(np.array(data, dtype=np.float64).astype(np.float32))


def quantize(x: np.ndarray, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Block-wise absmax quantization of float32 ``x``: (int8 codes of
    ``x``'s shape, float32 absmax of shape ``(ceil(n / BLOCK),)``)."""
    code = dynamic_code(signed)
    mid = (code[:-1].astype(np.float64) + code[1:].astype(np.float64)) / 2
    flat = np.asarray(x, dtype=np.float32).reshape(-1)
    blocks = -(-flat.size // BLOCK)
    absmax = np.array(
        [np.max(np.abs(flat[b * BLOCK : (b + 1) * BLOCK])) for b in range(blocks)],
        dtype=np.float32,
    )
    scale = np.repeat(absmax, BLOCK)[: flat.size]
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.where(scale == 0, np.float32(0), flat / scale)
    index = np.searchsorted(mid, v.astype(np.float64), side="left")
    return index.astype(np.uint8).view(np.int8).reshape(np.shape(x)), absmax


def dequantize(q: np.ndarray, absmax: np.ndarray, signed: bool) -> np.ndarray:
    """``code[index] * absmax`` in float32, of ``q``'s shape."""
    code = dynamic_code(signed)
    flat = np.asarray(q).reshape(-1).view(np.uint8)
    scale = np.repeat(np.asarray(absmax, dtype=np.float32), BLOCK)[: flat.size]
    return (code[flat] * scale).reshape(np.shape(q))


def round_stochastic(
    x32: np.ndarray, dtype: Any, key: tuple[int, int], step: int, param_index: int
) -> np.ndarray:
    """Float32 ``x32`` rounded stochastically to ``dtype`` (float16 or
    bfloat16) with the words of param ``param_index`` at step ``step``."""
    dtype = np.dtype(dtype)
    flat = np.asarray(x32, dtype=np.float32).reshape(-1)
    n = flat.size
    rows = -(-n // 4)
    ctr = np.zeros((rows, 4), dtype=np.uint64)
    ctr[:, 0] = np.arange(rows, dtype=np.uint64)  # e >> 2
    ctr[:, 1] = param_index
    ctr[:, 2] = step & 0xFFFFFFFF
    ctr[:, 3] = _SR_TAG ^ (step >> 32)
    words = philox4x32_10(ctr, key).reshape(-1)[:n]  # word e & 3 of row e >> 2

    near = flat.astype(dtype)  # round to nearest even
    # Toward zero: one step back (in magnitude) where nearest went away from zero.
    with np.errstate(invalid="ignore"):
        away = np.abs(near.astype(np.float32)) > np.abs(flat)
    lo_bits = near.view(np.uint16).astype(np.int32) - away
    lo = lo_bits.astype(np.uint16).view(dtype)
    hi = (lo_bits + 1).astype(np.uint16).view(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN and inf: plain
        lo64 = np.abs(lo.astype(np.float64))
        hi64 = np.abs(hi.astype(np.float64))
        plain = ~np.isfinite(flat) | (lo.astype(np.float32) == flat) | ~np.isfinite(hi64)
        frac = (np.abs(flat.astype(np.float64)) - lo64) / (hi64 - lo64)
        up = words.astype(np.float64) < frac * 2.0**32
    out = np.where(plain, near, np.where(up, hi, lo))
    return out.reshape(np.shape(x32))


class LowPrecisionReference:
    """The expected trajectory of ``cls(params, master_weights=...,
    state_dtype=..., stochastic_rounding=key is not None, **hyper)``.

    ``params``: the low-precision optimizer's params (float16, bfloat16 or
    float32; copied, never written). ``key``: the rng's key for stochastic
    rounding (``rng.state_dict()["key"]``), None for round to nearest even.
    After each ``step(grads)``: ``params[i]`` is the expected param,
    ``expected_state(i)`` the expected stored state of param ``i``.
    """

    def __init__(
        self,
        cls: type[Optimizer],
        params: list[np.ndarray],
        *,
        master_weights: bool = False,
        state_dtype: str | None = None,
        key: tuple[int, int] | None = None,
        **hyper: Any,
    ):
        self.dtype = params[0].dtype
        self.half = self.dtype.itemsize == 2
        self.master = master_weights and self.half
        self.state_dtype = state_dtype
        self.key = None if key is None else (int(key[0]), int(key[1]))
        self.codes = MOMENT_CODES[str(cls._rule)]
        self.params = [p.copy() for p in params]
        self.p32 = [p.astype(np.float32) for p in params]
        self.opt = cls(self.p32, **hyper)
        # Per param: slot -> stored array (bfloat16, int8 and "<slot>_absmax",
        # or float32); "master".
        self.stored: list[dict[str, np.ndarray]] = [{} for _ in params]

    def step(self, grads: list[np.ndarray | None]) -> None:
        """One step: the float32 optimizer's step, then each stepped param's
        moments quantized and its value rounded as docs/low_precision.md
        says."""
        steps = {i: s["step"] for i, s in self.opt.state.items()}
        self.opt.step([None if g is None else np.asarray(g).astype(np.float32) for g in grads])
        for i, st in self.opt.state.items():
            if st["step"] == steps.get(i, 0):
                continue  # not stepped (None grad, frozen group)
            self._store_moments(i, st)
            if self.half:
                self._round_param(i, st["step"])
            else:
                self.params[i][...] = self.p32[i]

    def _store_moments(self, i: int, st: dict) -> None:
        stored = self.stored[i]
        for slot, code in self.codes.items():
            value = st.get(slot)
            if not isinstance(value, np.ndarray):
                continue
            if self.state_dtype == "bfloat16":
                stored[slot] = value.astype(_bfloat16())
                value[...] = stored[slot].astype(np.float32)
            elif self.state_dtype == "int8" and value.size >= MIN_INT8:
                q, absmax = quantize(value, code == "signed")
                stored[slot], stored[f"{slot}_absmax"] = q, absmax
                value[...] = dequantize(q, absmax, code == "signed")
            else:
                stored[slot] = value.copy()

    def _round_param(self, i: int, step: int) -> None:
        p32 = self.p32[i]
        if self.key is None:
            rounded = p32.astype(self.dtype)
        else:
            rounded = round_stochastic(p32, self.dtype, self.key, step, i)
        self.params[i][...] = rounded
        if self.master:
            self.stored[i]["master"] = p32.copy()
        else:
            p32[...] = rounded.astype(np.float32)

    def expected_state(self, i: int) -> dict[str, Any]:
        """Param ``i``'s expected state: the float32 optimizer's, with the
        moments and the master as the low-precision optimizer stores them."""
        st = self.opt.state.get(i, {})
        out = {k: v for k, v in st.items() if k not in self.codes}
        out.update(self.stored[i])
        return out
