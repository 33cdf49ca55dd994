"""lec7rs.Generator: Philox known answers, the word layout against the NumPy
reference, uniforms, reproducibility across SIMD levels and threads,
state_dict / copies / spawn, bad input."""

from __future__ import annotations

import copy
import pickle
import threading

import lec7rs
import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from lec7rs import _core
from lec7rs.reference import random as ref

CHUNK = 1 << 14

# Random123's examples/kat_vectors for philox4x32 with 10 rounds (the first
# three), and three from its generated tests (gentests.py).
KAT = [
    ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [1, 0],
        [0x38527B8F, 0xFAD9A48C, 0x20E675C0, 0xF2FEA26A],
    ),
    ([0, 0, 0, 0x80000000], [0, 0x80000000], [0xF7A0B371, 0xE51DC93D, 0x56CE135D, 0x1D4B5580]),
    (
        [0x452821E6, 0x38D01377, 0xBE5466CF, 0x34E90C6C],
        [0, 0xFFFFFFFF],
        [0x72CE44B3, 0xB44F9B78, 0x49AF0267, 0x726813AC],
    ),
]


def gen_at(counter: int, key=(7, 9), spawned=0) -> lec7rs.Generator:
    g = lec7rs.Generator(0)
    g.load_state_dict(
        {
            "algorithm": "philox4x32-10",
            "version": 1,
            "key": list(key),
            "counter": counter,
            "spawned": spawned,
        }
    )
    return g


@pytest.mark.parametrize(("ctr", "key", "want"), KAT)
def test_known_answers(ctr, key, want):
    assert list(_core.philox_block(ctr, key)) == want
    got = ref.philox4x32_10(np.array([ctr], np.uint32), tuple(key))[0]
    assert [int(v) for v in got] == want


# Counters where the low word wraps inside a group, where the carry reaches
# word 2, and near the end of the 128-bit counter.
COUNTERS = [0, 5, 2**32 - 5, 2**32 - 16, 2**64 - 40, 2**128 - 2**20]


@pytest.mark.parametrize("counter", COUNTERS)
@pytest.mark.parametrize("n", [1, 17, 64, 65, 1000, 3 * CHUNK + 7])
def test_words_match_the_reference_layout(counter, n):
    g = gen_at(counter)
    r = ref.Generator.from_state_dict(g.state_dict())
    got = g._stream.words(n)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, r.words(n))
    assert g.state_dict() == r.state_dict()
    assert g.state_dict()["counter"] == counter + -(-n // 64) * 16


def test_word_layout_by_definition():
    # Word i of a call is word (i % 64) // 16 of the block of counter
    # start + 16 * (i // 64) + i % 16.
    g = gen_at(1000, key=(3, 4))
    words = g._stream.words(200)
    for i in (0, 1, 15, 16, 17, 63, 64, 100, 199):
        ctr = 1000 + 16 * (i // 64) + i % 16
        block = _core.philox_block([ctr, 0, 0, 0], [3, 4])
        assert words[i] == block[(i % 64) // 16], i


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), 0, 1, 7, (3, 5), (2, 0, 3), (129, 130)])
def test_random_matches_the_reference(dtype, shape):
    g = lec7rs.Generator(2024)
    r = ref.Generator(2024)
    for _ in range(2):
        a, b = g.random(shape, dtype), r.random(shape, dtype)
        assert a.dtype == dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
        assert a.size == 0 or (a.min() >= 0 and a.max() < 1)


def test_random_default_dtype_and_dtype_spellings():
    assert lec7rs.Generator(1).random(4).dtype == np.float64
    a = lec7rs.Generator(1).random(4, "float32")
    b = lec7rs.Generator(1).random(4, np.dtype("f4"))
    assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


def test_uniform_values_are_the_top_bits():
    g = gen_at(0)
    words = gen_at(0)._stream.words(8)
    f32 = g.random(8, np.float32)
    np.testing.assert_array_equal(f32, (words >> 8).astype(np.float32) / 2**24)
    w = gen_at(0)._stream.words(16).astype(np.uint64)
    f64 = gen_at(0).random(8)
    np.testing.assert_array_equal(f64, ((w[1::2] << 32 | w[0::2]) >> 11) / 2**53)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_results_on_every_level_and_thread_count(dtype):
    n = 2 * CHUNK + 321
    want = gen_at(2**32 - 100).random(n, dtype)
    for level in LEVELS:
        for t in (1, 2, 3):
            with simd(level), threads(t):
                got = gen_at(2**32 - 100).random(n, dtype)
                assert got.tobytes() == want.tobytes(), (level, t)


def test_same_seed_same_sequence_and_calls_differ():
    a, b = lec7rs.Generator(5), lec7rs.Generator(5)
    first = [a.random(100) for _ in range(3)]
    second = [b.random(100) for _ in range(3)]
    for x, y in zip(first, second):
        assert x.tobytes() == y.tobytes()
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], lec7rs.Generator(6).random(100))


def test_state_dict_resumes_exactly():
    g = lec7rs.Generator(11)
    g.random(1000)
    saved = g.state_dict()
    assert saved == {
        "algorithm": "philox4x32-10",
        "version": 1,
        "key": [11, 0],
        "counter": 16 * 32,
        "spawned": 0,
    }
    assert all(type(v) in (str, int, list) for v in saved.values())
    want = [g.random(77, np.float32) for _ in range(3)]
    g.random(5)
    g.load_state_dict(saved)
    for w in want:
        assert g.random(77, np.float32).tobytes() == w.tobytes()


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda g: pickle.loads(pickle.dumps(g))]
)
def test_copies_are_independent_generators_in_the_same_state(clone):
    g = lec7rs.Generator(3)
    g.random(10)
    g.spawn(2)
    c = clone(g)
    assert isinstance(c, lec7rs.Generator)
    assert c.state_dict() == g.state_dict()
    assert c.random(50).tobytes() == g.random(50).tobytes()
    c.random(10)
    assert c.state_dict() != g.state_dict()


def test_seed_is_the_key():
    g = lec7rs.Generator(0x0123456789ABCDEF)
    assert g.state_dict()["key"] == [0x89ABCDEF, 0x01234567]
    assert lec7rs.Generator(np.uint64(2**64 - 1)).state_dict()["key"] == [2**32 - 1] * 2
    assert "0123456789abcdef" in repr(g)


@pytest.mark.parametrize(
    ("seed", "exc"),
    [(-1, ValueError), (2**64, ValueError), (1.0, TypeError), (True, TypeError), ("1", TypeError)],
)
def test_bad_seed(seed, exc):
    with pytest.raises(exc, match="seed"):
        lec7rs.Generator(seed)


def test_spawn():
    g = lec7rs.Generator(99)
    r = ref.Generator(99)
    kids = g.spawn(3)
    more = g.spawn(2)
    assert g.state_dict()["counter"] == 0 and g.state_dict()["spawned"] == 5
    ref_kids = r.spawn(5)
    keys = [tuple(k.state_dict()["key"]) for k in kids + more]
    assert keys == [k.key for k in ref_kids]
    assert len(set(keys) | {tuple(g.state_dict()["key"])}) == 6
    draws = [k.random(64).tobytes() for k in kids + more] + [g.random(64).tobytes()]
    assert len(set(draws)) == 6
    # The same parent state spawns the same children.
    again = lec7rs.Generator(99).spawn(5)
    assert [tuple(k.state_dict()["key"]) for k in again] == keys
    assert g.spawn(0) == []
    with pytest.raises(ValueError, match="n"):
        g.spawn(-1)
    with pytest.raises(TypeError, match="n"):
        g.spawn(1.5)


GOOD = {"algorithm": "philox4x32-10", "version": 1, "key": [1, 2], "counter": 3, "spawned": 4}
BAD_STATES = [
    ("missing key", {k: v for k, v in GOOD.items() if k != "counter"}, "missing keys"),
    ("unknown key", {**GOOD, "seed": 1}, "unknown keys"),
    ("foreign (optimizer)", {"optimizer": "Adam", "version": 1, "state": {}}, "missing keys"),
    ("other algorithm", {**GOOD, "algorithm": "mt19937"}, "algorithm"),
    ("other version", {**GOOD, "version": 2}, "version"),
    ("key too short", {**GOOD, "key": [1]}, "key"),
    ("key out of range", {**GOOD, "key": [1, 2**32]}, "key"),
    ("negative key", {**GOOD, "key": [-1, 0]}, "key"),
    ("key not ints", {**GOOD, "key": [1.0, 2]}, "key"),
    ("key a string", {**GOOD, "key": "12"}, "key"),
    ("bool counter", {**GOOD, "counter": True}, "counter"),
    ("float counter", {**GOOD, "counter": 3.0}, "counter"),
    ("negative counter", {**GOOD, "counter": -1}, "counter"),
    ("counter too big", {**GOOD, "counter": 2**128}, "counter"),
    ("spawned too big", {**GOOD, "spawned": 2**64}, "spawned"),
    ("spawned None", {**GOOD, "spawned": None}, "spawned"),
]


@pytest.mark.parametrize(("name", "state", "match"), BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_bad_state_dict_changes_nothing(name, state, match):
    g = lec7rs.Generator(8)
    g.random(3)
    before = g.state_dict()
    with pytest.raises(ValueError, match=match):
        g.load_state_dict(state)
    assert g.state_dict() == before


def test_state_dict_that_is_not_a_dict():
    g = lec7rs.Generator(8)
    with pytest.raises(TypeError, match="state_dict"):
        g.load_state_dict([("algorithm", "philox4x32-10")])
    assert g.state_dict()["counter"] == 0


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        (((-1,), np.float64), ValueError, "negative"),
        (((2.0,), np.float64), TypeError, "shape"),
        (("3",), TypeError, "shape"),
        ((3, np.int64), TypeError, "dtype"),
        ((3, np.float16), TypeError, "dtype"),
        ((3, "nonsense"), TypeError, "dtype"),
        (((2**40, 2**40),), ValueError, "too large|too big"),
    ],
)
def test_bad_random_arguments_change_nothing(args, exc, match):
    g = lec7rs.Generator(1)
    with pytest.raises(exc, match=match):
        g.random(*args)
    assert g.state_dict()["counter"] == 0


def test_exhausted_stream_raises_and_stays():
    g = gen_at(2**128 - 17)
    g._stream.words(64)  # the last 16 blocks of the counter space
    with pytest.raises(ValueError, match="exhausted"):
        g.random(1)
    assert g.state_dict()["counter"] == 2**128 - 1


def test_concurrent_calls_get_disjoint_ranges():
    g = lec7rs.Generator(77)
    got: list[np.ndarray] = []
    lock = threading.Lock()

    def work():
        for _ in range(50):
            w = g._stream.words(64 * 40)
            with lock:
                got.append(w)

    pool = [threading.Thread(target=work) for _ in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    # Every call had its own 640 blocks: together, exactly the first 200 x 640.
    assert g.state_dict()["counter"] == 200 * 640
    together = np.sort(np.concatenate(got))
    np.testing.assert_array_equal(together, np.sort(lec7rs.Generator(77)._stream.words(200 * 2560)))
