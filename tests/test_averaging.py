"""lec7rs.averaging: PolyakAverage against the NumPy reference (bit for bit,
every SIMD level, 1 vs N threads), applied(), state dicts, bad input, and
SnapshotEnsemble."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import LEVELS, simd, threads
from hypothesis import given, settings
from hypothesis import strategies as st
from lec7rs import reference as ref
from lec7rs.averaging import PolyakAverage, SnapshotEnsemble
from lec7rs.optim import SGD
from lec7rs.optim.lr_scheduler import CosineAnnealingWarmRestarts

# Around every lane width and the chunk size (16384), and above the inline limit.
LENGTHS = [1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 1000, 16384 + 5, 3 * 16384 + 17]
# The running mean, and EMA decays on both sides of ATen's lerp (1 - decay
# below and above 0.5), plus the ends of the range.
DECAYS = [None, 0.999, 0.9, 0.3, 0.0, 1.0]
DTYPES = [np.float32, np.float64]


def bits(arrays):
    return [a.tobytes() for a in arrays]


def trajectory(decay, dtype, updates=7, seed=3, lengths=LENGTHS):
    """Averages after ``updates`` updates, with the params changing between
    them, and the NumPy reference's."""
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.standard_normal(n).astype(dtype) for i, n in enumerate(lengths)}
    avg = PolyakAverage(params, decay=decay)
    want = [p.copy() for p in params.values()]
    for n in range(updates):
        for p in params.values():
            p += rng.standard_normal(p.shape).astype(dtype)
        avg.update()
        want = [ref.polyak_update(a, p, n, decay) for a, p in zip(want, params.values())]
    assert avg.n_averaged == updates
    return list(avg.averages.values()), want


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", DECAYS)
def test_matches_numpy_reference_bit_for_bit(decay, dtype):
    got, want = trajectory(decay, dtype)
    assert all(g.dtype == dtype for g in got)
    assert bits(got) == bits(want)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [None, 0.999, 0.3])
def test_every_simd_level_is_bit_identical(decay, dtype, level):
    with simd("scalar"):
        want, _ = trajectory(decay, dtype)
    with simd(level):
        got, _ = trajectory(decay, dtype)
    assert bits(got) == bits(want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decay", [None, 0.999, 0.3])
def test_one_and_two_threads_are_bit_identical(decay, dtype):
    lengths = [200_000, 5, 70_001]  # far above the inline limit: the pool runs
    with threads(1):
        want, _ = trajectory(decay, dtype, lengths=lengths)
    with threads(2):
        got, _ = trajectory(decay, dtype, lengths=lengths)
    assert bits(got) == bits(want)


def test_running_mean_and_ema_are_what_they_say():
    rng = np.random.default_rng(0)
    w = np.zeros(1000)
    snaps = []
    mean, ema = PolyakAverage([w]), PolyakAverage([w], decay=0.9)
    for _ in range(50):
        w[:] = rng.standard_normal(1000)
        snaps.append(w.copy())
        mean.update()
        ema.update()
    np.testing.assert_allclose(mean.averages[0], np.mean(snaps, axis=0), rtol=1e-12, atol=1e-14)
    want = snaps[0]
    for s in snaps[1:]:
        want = 0.9 * want + 0.1 * s
    np.testing.assert_allclose(ema.averages[0], want, rtol=1e-12, atol=1e-14)


def test_first_update_copies_and_averages_start_at_the_params():
    p = np.array([1.0, -0.0, np.inf], np.float32)
    avg = PolyakAverage([p], decay=0.5)
    assert bits(avg.averages) == bits([p])
    assert avg.averages[0] is not p
    p[:] = [2.0, -0.0, np.nan]
    avg.update()
    assert bits(avg.averages) == bits([p])


def test_averages_keep_the_structure_of_params():
    a, b = np.zeros(2), np.zeros(3)
    assert isinstance(PolyakAverage({"a": a, "b": b}).averages, dict)
    assert [x.shape for x in PolyakAverage([a, b]).averages] == [(2,), (3,)]
    groups = PolyakAverage([{"params": {"a": a}, "lr": 0.1}, {"params": [b]}]).averages
    assert list(groups[0]["params"]) == ["a"] and groups[1]["params"][0].shape == (3,)


@pytest.mark.parametrize("decay", [None, 0.9])
def test_applied_swaps_in_and_restores_also_on_exception(decay):
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((4, 5)), "b": rng.standard_normal(5)}
    avg = PolyakAverage(params, decay=decay)
    for _ in range(3):
        avg.update()
        for p in params.values():
            p += 1.0
    before = {k: p.copy() for k, p in params.items()}
    averages = {k: a.copy() for k, a in avg.averages.items()}
    with avg.applied():
        for k in params:
            assert params[k].tobytes() == averages[k].tobytes()
        params["w"][:] = 123.0  # discarded on exit
    for k in params:
        assert params[k].tobytes() == before[k].tobytes()
        assert avg.averages[k].tobytes() == averages[k].tobytes()
    with pytest.raises(KeyError), avg.applied():
        params["b"][:] = -1.0
        raise KeyError("in the body")
    for k in params:
        assert params[k].tobytes() == before[k].tobytes()
    with avg.applied():
        with pytest.raises(RuntimeError, match="update"):
            avg.update()
        with pytest.raises(RuntimeError, match="already"), avg.applied():
            pass
    assert avg.n_averaged == 3
    for k in params:
        assert params[k].tobytes() == before[k].tobytes()


@pytest.mark.parametrize("decay", [None, 0.99])
def test_state_dict_resume_is_bit_identical(decay):
    rng = np.random.default_rng(2)
    steps = [rng.standard_normal(10).astype(np.float32) for _ in range(8)]

    def run(resume_at=None):
        w = np.zeros(10, np.float32)
        avg = PolyakAverage({"w": w}, decay=decay)
        for i, s in enumerate(steps):
            if i == resume_at:
                saved = avg.state_dict()
                w2 = w.copy()
                avg = PolyakAverage({"w": w2}, decay=0.5)
                avg.load_state_dict(saved)
                w = w2
            w[:] = s
            avg.update()
        return avg.averages["w"]

    assert run().tobytes() == run(resume_at=4).tobytes()


def test_load_state_dict_rejects_what_does_not_fit_and_changes_nothing():
    params = {"w": np.ones(3, np.float32), "b": np.ones(2, np.float32)}
    avg = PolyakAverage(params, decay=0.9)
    avg.update()
    good = avg.state_dict()
    live = avg.averages["w"]
    bad = [
        {**good, "averager": "SnapshotEnsemble"},
        {**good, "version": 2},
        {**good, "decay": 1.5},
        {**good, "decay": "0.9"},
        {**good, "n_averaged": -1},
        {**good, "n_averaged": 1.0},
        {**good, "param_names": ["w", "c"]},
        {**good, "averages": good["averages"][:1]},
        {**good, "averages": [np.ones(3, np.float64), np.ones(2, np.float32)]},
        {**good, "averages": [np.ones(4, np.float32), np.ones(2, np.float32)]},
        {**good, "averages": [[1, 2, 3], np.ones(2, np.float32)]},
        {**good, "extra": 0},
    ]
    target = PolyakAverage(params)
    before = target.state_dict()
    for d in bad:
        with pytest.raises(ValueError):
            target.load_state_dict(d)
        after = target.state_dict()
        assert after["decay"] is None and after["n_averaged"] == 0
        assert bits(after["averages"]) == bits(before["averages"])
    with pytest.raises(TypeError):
        target.load_state_dict(None)
    target.load_state_dict(good)
    assert target.decay == 0.9 and target.n_averaged == 1
    # Loaded in place: arrays handed out before stay live.
    avg.load_state_dict(target.state_dict())
    assert avg.averages["w"] is live


BAD_PARAMS = [
    (lambda: [np.zeros(3, np.int64)], TypeError, "float32 or float64"),
    (lambda: [np.zeros(3, np.float32), np.zeros(3)], TypeError, "dtype"),
    (lambda: [np.zeros((3, 4))[:, 1]], ValueError, "C-contiguous"),
    (lambda: [np.zeros(3)[::-1]], ValueError, "C-contiguous"),
    (lambda: [np.broadcast_to(np.zeros(1), (3,))], ValueError, "C-contiguous"),
    (lambda: [np.frombuffer(bytes(24))], ValueError, "read-only"),
    (lambda: [], ValueError, "empty"),
    (lambda: np.zeros(3), TypeError, "single array"),
    (lambda: [[1.0, 2.0]], TypeError, "NumPy array"),
    (lambda: (lambda a: [a, a[:2]])(np.zeros(4)), ValueError, "shares memory"),
]


@pytest.mark.parametrize(("make", "exc", "match"), BAD_PARAMS)
def test_bad_params_are_rejected(make, exc, match):
    with pytest.raises(exc, match=match):
        PolyakAverage(make())


@pytest.mark.parametrize(
    ("decay", "exc"),
    [(-0.1, ValueError), (1.1, ValueError), (math.nan, ValueError), (True, TypeError),
     ("0.9", TypeError)],
)  # fmt: skip
def test_bad_decay_is_rejected(decay, exc):
    with pytest.raises(exc, match="decay"):
        PolyakAverage([np.zeros(3)], decay=decay)


def test_an_update_that_raises_changes_nothing():
    params = [np.ones(5, np.float32), np.full(3, 2.0, np.float32)]
    avg = PolyakAverage(params)
    avg.update()
    params[0][:] = 3.0
    params[1][:] = 5.0
    avg.averages[1].flags.writeable = False  # made read-only behind its back
    before = [a.copy() for a in avg.averages]
    with pytest.raises(ValueError, match=r"averages\[1\] is read-only"):
        avg.update()
    assert bits(avg.averages) == bits(before) and avg.n_averaged == 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 70),
    decay=st.one_of(st.none(), st.floats(0.0, 1.0)),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_length_matches_the_reference(n, decay, dtype, seed):
    got, want = trajectory(decay, dtype, updates=3, seed=seed, lengths=[n, 1])
    assert bits(got) == bits(want)


# -- SnapshotEnsemble ---------------------------------------------------------


def test_snapshots_are_copies_kept_first_in_first_out():
    w = np.zeros(3)
    ens = SnapshotEnsemble(max_snapshots=2)
    for v in (1.0, 2.0, 3.0):
        w[:] = v
        ens.add({"w": w})
    w[:] = 9.0
    assert len(ens) == 2
    assert [s["w"].tolist() for s in ens.snapshots] == [[2.0] * 3, [3.0] * 3]


def test_predict_averages_outputs_and_restores_params():
    w = np.zeros(4, np.float32)
    b = np.zeros(1, np.float32)
    ens = SnapshotEnsemble()
    for v in (1.0, 2.0, 4.0):
        w[:] = v
        b[:] = -v
        ens.add([w, b])
    w[:], b[:] = 7.0, 8.0
    x = np.arange(4, dtype=np.float32)

    out = ens.predict(lambda x: x * w + b, x)
    assert out.dtype == np.float32
    # Summed in float64, divided, then rounded once to float32.
    x64 = x.astype(np.float64)
    assert out.tobytes() == ((7 * x64 - 7) / 3).astype(np.float32).tobytes()
    assert ens.predict(lambda: float(w.sum())) == pytest.approx(4 * 7 / 3)
    assert isinstance(ens.predict(lambda: float(w.sum())), float)
    ints = ens.predict(lambda: (w > 1.5).astype(np.int64))
    assert ints.dtype == np.float64 and ints.tolist() == [2 / 3] * 4
    assert w.tolist() == [7.0] * 4 and b.tolist() == [8.0]

    def bad_shape():
        return np.zeros(int(w[0]))

    for fn, exc in [
        (bad_shape, ValueError),
        (lambda: "x", TypeError),
        (lambda: 1 / 0, ZeroDivisionError),
    ]:
        with pytest.raises(exc):
            ens.predict(fn)
        assert w.tolist() == [7.0] * 4 and b.tolist() == [8.0]
    with pytest.raises(TypeError, match="callable"):
        ens.predict(3)
    with pytest.raises(ValueError, match="no snapshots"):
        SnapshotEnsemble().predict(lambda: 1.0)


def test_every_snapshot_must_have_the_same_structure():
    ens = SnapshotEnsemble()
    ens.add({"w": np.zeros(3)})
    for other in ({"v": np.zeros(3)}, {"w": np.zeros(4)}, {"w": np.zeros(3, np.float32)}):
        with pytest.raises(ValueError):
            ens.add(other)
    assert len(ens) == 1
    for bad in (0, -1):
        with pytest.raises(ValueError):
            SnapshotEnsemble(bad)
    with pytest.raises(TypeError):
        SnapshotEnsemble(2.0)


def test_state_dict_round_trip_and_predict_into_given_params():
    w = np.zeros(3)
    ens = SnapshotEnsemble(max_snapshots=3)
    for v in (1.0, 2.0):
        w[:] = v
        ens.add({"w": w})
    d = ens.state_dict()
    fresh = SnapshotEnsemble()
    fresh.load_state_dict(d)
    assert fresh.max_snapshots == 3 and len(fresh) == 2
    with pytest.raises(ValueError, match="params="):
        fresh.predict(lambda: 0.0)
    target = {"w": np.full(3, 5.0)}
    assert fresh.predict(lambda: target["w"].sum(), params=target) == pytest.approx(4.5)
    assert target["w"].tolist() == [5.0] * 3
    with pytest.raises(ValueError):
        fresh.predict(lambda: 0.0, params={"w": np.zeros(4)})
    before = fresh.state_dict()
    for bad in (
        {**d, "snapshots": [[np.zeros(4)]]},
        {**d, "param_names": ["v"]},
        {**d, "max_snapshots": 1},
        {**d, "averager": "PolyakAverage"},
    ):
        with pytest.raises(ValueError):
            fresh.load_state_dict(bad)
        after = fresh.state_dict()
        assert after["param_names"] == before["param_names"]
        assert [bits(s) for s in after["snapshots"]] == [bits(s) for s in before["snapshots"]]


def test_snapshot_ensemble_with_warm_restarts():
    """Huang et al. 2017: a snapshot at the end of each SGDR cycle, where the
    lr is at its minimum; the ensemble predicts as well as its members."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 10))
    y = (X @ rng.standard_normal(10) > 0).astype(float)
    params = {"w": np.zeros(10), "b": np.zeros(1)}
    opt = SGD(params, lr=0.5, momentum=0.9)
    cycle = 25
    sched = CosineAnnealingWarmRestarts(opt, T_0=cycle)
    ens = SnapshotEnsemble(max_snapshots=4)

    def probs(X):
        return 1 / (1 + np.exp(-(X @ params["w"] + params["b"])))

    for step in range(4 * cycle):
        batch = rng.integers(0, 400, 32)
        d = (probs(X[batch]) - y[batch]) / 32
        opt.step({"w": X[batch].T @ d, "b": np.array([d.sum()])})
        sched.step()
        if (step + 1) % cycle == 0:
            assert sched.get_last_lr()[0] == 0.5  # the restart follows the snapshot
            ens.add(params)
    assert len(ens) == 4
    final = params["w"].copy()
    p = ens.predict(probs, X)
    assert np.array_equal(params["w"], final)
    members = []
    for s in ens.snapshots:
        members.append(1 / (1 + np.exp(-(X @ s["w"] + s["b"]))))
    np.testing.assert_allclose(p, np.mean(members, axis=0), rtol=1e-12)
    assert ((p > 0.5) == y).mean() > 0.9
