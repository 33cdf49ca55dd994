"""Philox4x32-10 and the ``lec7rs.Generator`` stream in pure NumPy.

The same words, uniforms and spawned keys as the Rust stream, from the same
state: ``Generator.from_state_dict(rng.state_dict())`` continues a
``lec7rs.Generator`` exactly. Written for clarity, vectorized over blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

ALGORITHM = "philox4x32-10"
M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
GROUP_WORDS, GROUP_BLOCKS = 64, 16
SPAWN_DOMAIN = 0x5350574E
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of every row of ``counters`` (shape ``(n, 4)``, uint32,
    word 0 least significant) under ``key`` (two 32-bit words): ``(n, 4)``
    uint32 random words (Salmon et al. 2011, Random123's ``philox4x32``)::

        (hi0, lo0) = M0 * c0;  (hi1, lo1) = M1 * c2        # 64-bit products
        c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        k = (k0 + W0, k1 + W1) mod 2**32                   # between rounds
    """
    c = np.asarray(counters, dtype=np.uint64).reshape(-1, 4)
    c0, c1, c2, c3 = (c[:, i].copy() for i in range(4))
    k0, k1 = int(key[0]), int(key[1])
    for r in range(ROUNDS):
        rk0 = np.uint64((k0 + r * W0) % 2**32)
        rk1 = np.uint64((k1 + r * W1) % 2**32)
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = (
            (p1 >> np.uint64(32)) ^ c1 ^ rk0,
            p1 & _MASK32,
            (p0 >> np.uint64(32)) ^ c3 ^ rk1,
            p0 & _MASK32,
        )
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def counter_words(start: int, count: int) -> np.ndarray:
    """The ``(count, 4)`` uint32 words of the counters ``start`` to
    ``start + count - 1`` (128-bit, wrapping)."""
    j = np.arange(count, dtype=np.uint64)
    lo = np.uint64(start % 2**64) + j  # wraps
    carry = (lo < j).astype(np.uint64)
    hi = np.uint64((start >> 64) % 2**64) + carry
    return np.stack([lo & _MASK32, lo >> np.uint64(32), hi & _MASK32, hi >> np.uint64(32)], axis=1)


def draw_words(key: tuple[int, int], start: int, n: int) -> np.ndarray:
    """Words ``0`` to ``n - 1`` of the draw at block counter ``start``: word ``i`` is
    word ``(i % 64) // 16`` of the block of counter
    ``start + 16 * (i // 64) + i % 16`` (each group of 16 blocks laid out
    word-major)."""
    groups = -(-n // GROUP_WORDS)
    blocks = philox4x32_10(counter_words(start, groups * GROUP_BLOCKS), key)
    return blocks.reshape(groups, GROUP_BLOCKS, 4).transpose(0, 2, 1).reshape(-1)[:n]


class Generator:
    """The stream of ``lec7rs.Generator``: key, next block counter, children
    spawned. ``words(n)`` reserves ``ceil(n / 64) * 16`` blocks."""

    def __init__(self, seed: int):
        self.key = (seed % 2**32, seed >> 32)
        self.counter = 0
        self.spawned = 0

    @classmethod
    def from_state_dict(cls, d: dict) -> Generator:
        """A generator at the position of a ``lec7rs.Generator`` state dict."""
        gen = cls(0)
        gen.load_state_dict(d)
        return gen

    def state_dict(self) -> dict:
        """The same dict as ``lec7rs.Generator.state_dict()``."""
        return {
            "algorithm": ALGORITHM,
            "version": 1,
            "key": list(self.key),
            "counter": self.counter,
            "spawned": self.spawned,
        }

    def load_state_dict(self, d: dict) -> None:
        """Moves to the position of a ``lec7rs.Generator`` state dict."""
        assert d["algorithm"] == ALGORITHM and d["version"] == 1
        self.key = (int(d["key"][0]), int(d["key"][1]))
        self.counter = int(d["counter"])
        self.spawned = int(d["spawned"])

    def words(self, n: int) -> np.ndarray:
        """The next ``n`` random 32-bit words (one call's draw)."""
        start = self.counter
        self.counter += -(-n // GROUP_WORDS) * GROUP_BLOCKS
        return draw_words(self.key, start, n)

    def random(self, shape: Any, dtype: Any = np.float64) -> np.ndarray:
        """Uniform [0, 1): float32 ``(w >> 8) * 2**-24``, float64
        ``((w[2i + 1] << 32 | w[2i]) >> 11) * 2**-53``."""
        dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
        n = int(np.prod(dims, dtype=np.int64))
        if np.dtype(dtype) == np.float32:
            w = self.words(n)
            return ((w >> np.uint32(8)).astype(np.float32) * np.float32(2.0**-24)).reshape(dims)
        w = self.words(2 * n).astype(np.uint64)
        bits = (w[1::2] << np.uint64(32) | w[0::2]) >> np.uint64(11)
        return (bits.astype(np.float64) * 2.0**-53).reshape(dims)

    def spawn(self, n: int) -> list[Generator]:
        """Child ``i`` (counting all children so far) has the key of the first
        two words of the block ``(i mod 2**32, i >> 32, 0, SPAWN_DOMAIN)``."""
        children = []
        for i in range(self.spawned, self.spawned + n):
            ctr = np.array([[i % 2**32, i >> 32, 0, SPAWN_DOMAIN]], dtype=np.uint32)
            w = philox4x32_10(ctr, self.key)[0]
            child = Generator(0)
            child.key = (int(w[0]), int(w[1]))
            children.append(child)
        self.spawned += n
        return children


def keep_threshold(q: float) -> int:
    """``q * 2**32`` rounded half away from zero (Rust's ``f64::round``, not
    Python's half-to-even ``round``): keep iff a word is below it (0: none,
    2**32: all)."""
    t = q * 2.0**32
    whole = math.floor(t)
    return whole + (1 if t - whole >= 0.5 else 0)


def bernoulli(rng: Generator, q: float, shape: Any) -> np.ndarray:
    """Keep mask (True = kept) with keep probability ``q``: one word per
    element, drawn even when ``q`` is 0 or 1."""
    dims = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    w = rng.words(int(np.prod(dims, dtype=np.int64)))
    return (w.astype(np.uint64) < np.uint64(keep_threshold(q))).reshape(dims)
