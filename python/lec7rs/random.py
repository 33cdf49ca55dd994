"""``lec7rs.Generator``: a counter-based random stream (Philox4x32-10).

Every random value lec7rs draws is a pure function of the generator's key,
the position in its stream and the element's index, computed by the
Philox4x32-10 block function (Salmon et al., SC 2011; the generator of
Random123, cuRAND and JAX-style keyed streams). So masks and samples are
bit-identical for any thread count and SIMD level, and
``lec7rs.reference.random`` reproduces them in pure NumPy.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core

#: The name of the generator's algorithm, as the core reports it
#: (``"philox4x32-10"``): stored in state dicts and checked on load.
ALGORITHM: str = _core.philox_algorithm()
_STATE_VERSION = 1
_STATE_KEYS = ("algorithm", "version", "key", "counter", "spawned")
_U32 = 1 << 32
_U64 = 1 << 64
_U128 = 1 << 128
# The largest size or count any argument may have (sizes are 64-bit in
# Rust): larger ints are a ValueError naming the argument, not pyo3's
# OverflowError.
_MAX_SIZE = (1 << 63) - 1


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


class Generator:
    """A counter-based random stream: Philox4x32-10 with a 64-bit key and a
    128-bit block counter.

    ``Generator(seed)`` takes an int ``0 <= seed < 2**64`` (NumPy integers
    too) and uses it as the key: its low 32 bits are key word 0, its high 32
    bits key word 1, as ``philox4x32`` in Random123 and cuRAND. (Larger
    seeds are refused rather than hashed, so that a seed is never silently
    shared; pass ``seed % 2**64`` or a hash of your own if you need to.)

    Each call that takes ``rng=`` reserves a fresh range of the stream,
    ``ceil(n / 64) * 16`` blocks for a call that needs ``n`` random 32-bit
    words, and never reuses it: repeated calls give new masks, the same seed
    gives the same sequence of results, and two threads calling with one
    generator get disjoint ranges. A call that raises consumes nothing.
    Word ``i`` of a call whose range starts at counter ``c`` is word
    ``(i % 64) // 16`` of the block of counter ``c + 16 * (i // 64) + i % 16``
    (see ``lec7rs.reference.random``).

    ``state_dict()`` / ``load_state_dict()`` save and resume the stream
    exactly; ``spawn(n)`` gives independent child streams; copies
    (``copy.copy``, ``copy.deepcopy``, pickling) are independent generators
    in the same state.

    Example: a state dict replays the stream from where it was taken.

    >>> from lec7rs import Generator
    >>> rng = Generator(0)
    >>> rng.random(3)
    array([0.9722412 , 0.78736777, 0.4503262 ])
    >>> saved = rng.state_dict()
    >>> a = rng.random(1000)
    >>> rng.load_state_dict(saved)
    >>> bool((rng.random(1000) == a).all())
    True
    """

    __slots__ = ("_stream",)

    def __init__(self, seed: int):
        if not _is_int(seed):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        seed = int(seed)
        if not 0 <= seed < _U64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self._stream = _core.PhiloxStream(seed % _U32, seed // _U32, 0, 0)

    @classmethod
    def _from_state(cls, key0: int, key1: int, counter: int, spawned: int) -> Generator:
        gen = cls.__new__(cls)
        gen._stream = _core.PhiloxStream(key0, key1, counter, spawned)
        return gen

    def random(self, shape: int | tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """Uniform numbers in [0, 1) of ``shape`` (an int or a tuple of ints).

        float64 values are ``((word(2i + 1) << 32 | word(2i)) >> 11) * 2**-53``
        (53 random bits, as NumPy's ``Generator.random``); float32 values are
        ``(word(i) >> 8) * 2**-24`` (24 bits). Every value is exact; 0 can
        occur, 1 cannot.
        """
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        dims = _shape(shape, "shape")
        return self._stream.random(list(dims), dt == np.float64)

    def spawn(self, n: int) -> list[Generator]:
        """``n`` independent child generators (``numpy.random.Generator.spawn``).

        Child ``i`` gets the key made of the first two words of the Philox
        block of counter ``(i mod 2**32, i // 2**32, 0, 0x5350574E)`` under
        this generator's key, where ``i`` counts every child this generator
        has spawned (so each call gives new children), and its counter starts
        at 0. Spawning does not move this generator's stream. Keys have 64
        bits: among ``m`` streams two share a key with probability about
        ``m**2 / 2**65``. At most ``2**20`` children per call (a
        ``ValueError`` beyond; ``MemoryError`` if even they do not fit).
        """
        if not _is_int(n):
            raise TypeError(f"n must be an int, got {type(n).__name__}")
        if not 0 <= n <= _core.MAX_SPAWN:
            raise ValueError(f"n must be in [0, 2**20], got {n}")
        keys = self._stream.spawn_keys(int(n))
        return [Generator._from_state(k0, k1, 0, 0) for k0, k1 in keys]

    def state_dict(self) -> dict:
        """The stream's state as plain Python values::

            {"algorithm": "philox4x32-10", "version": 1,
             "key": [key0, key1], "counter": c, "spawned": s}

        ``counter`` is the next unused block counter (an int below 2**128),
        ``spawned`` the number of children spawned so far."""
        key0, key1, counter, spawned = self._stream.state()
        return {
            "algorithm": ALGORITHM,
            "version": _STATE_VERSION,
            "key": [key0, key1],
            "counter": counter,
            "spawned": spawned,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resumes a ``state_dict()`` exactly. Everything is checked first: a
        dict from another generator or format, or with a value of the wrong
        type or range, raises ``ValueError`` (``TypeError`` if it is not a
        dict at all) and leaves this generator unchanged."""
        key0, key1, counter, spawned = _parse_state(state_dict)
        self._stream = _core.PhiloxStream(key0, key1, counter, spawned)

    def __getstate__(self) -> dict:
        return self.state_dict()

    def __setstate__(self, state: dict) -> None:
        self._stream = _core.PhiloxStream(*_parse_state(state))

    def __repr__(self) -> str:
        key0, key1, counter, spawned = self._stream.state()
        extra = f", spawned={spawned}" if spawned else ""
        return (
            f"lec7rs.Generator({ALGORITHM}, key=0x{key1:08x}{key0:08x}, counter={counter}{extra})"
        )


def _shape(shape: Any, name: str) -> tuple[int, ...]:
    dims = (shape,) if _is_int(shape) else shape
    if not isinstance(dims, (tuple, list)) or not all(_is_int(d) for d in dims):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {shape!r}")
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} must not have negative sizes, got {shape!r}")
    if any(d > _MAX_SIZE for d in dims):
        raise ValueError(f"{name}: sizes must be below 2**63, got {shape!r}")
    return tuple(int(d) for d in dims)


def _parse_state(d: Any) -> tuple[int, int, int, int]:
    """Checks a saved state completely; returns (key0, key1, counter, spawned)."""
    if not isinstance(d, Mapping):
        raise TypeError(f"state_dict must be a dict, got {type(d).__name__}")
    missing = [k for k in _STATE_KEYS if k not in d]
    unknown = sorted(str(k) for k in d if k not in _STATE_KEYS)
    if missing or unknown:
        raise ValueError(
            f"not a lec7rs.Generator state_dict: missing keys {missing}, unknown keys {unknown}"
        )
    if d["algorithm"] != ALGORITHM:
        raise ValueError(f"state_dict is for algorithm {d['algorithm']!r}, not {ALGORITHM!r}")
    if not _is_int(d["version"]) or d["version"] != _STATE_VERSION:
        raise ValueError(f"state_dict has unknown format version {d['version']!r}")
    key = d["key"]
    if (
        not isinstance(key, (list, tuple))
        or len(key) != 2
        or not all(_is_int(k) and 0 <= k < _U32 for k in key)
    ):
        raise ValueError(f"state_dict 'key' must be two ints in [0, 2**32), got {key!r}")
    for name, limit in (("counter", _U128), ("spawned", _U64)):
        v = d[name]
        if not _is_int(v) or not 0 <= v < limit:
            bound = "2**128" if limit == _U128 else "2**64"
            raise ValueError(f"state_dict {name!r} must be an int in [0, {bound}), got {v!r}")
    return int(key[0]), int(key[1]), int(d["counter"]), int(d["spawned"])


def stream_of(rng: Any, name: str = "rng") -> Any:
    """The Rust stream of a ``lec7rs.Generator`` (for the functions that draw)."""
    if not isinstance(rng, Generator):
        hint = ""
        if isinstance(rng, (np.random.Generator, np.random.RandomState)):
            hint = " (NumPy's generators are not counter-based: use lec7rs.Generator(seed))"
        raise TypeError(f"{name} must be a lec7rs.Generator, got {type(rng).__name__}{hint}")
    return rng._stream


__all__ = ["ALGORITHM", "Generator"]
