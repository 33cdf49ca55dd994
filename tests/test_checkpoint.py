"""lec7rs.checkpoint: bit-identical round trips and resumed training; every
kind of bad file is a ValueError that changes nothing; a writer killed with
SIGKILL mid-save leaves the old file loadable; no file can run code."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import threads
from lec7rs import checkpoint
from lec7rs.averaging import PolyakAverage, SnapshotEnsemble
from lec7rs.checkpoint import _format
from lec7rs.optim import SGD, Adam, AdamW
from lec7rs.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    SequentialLR,
    StepLR,
)


class StandInGenerator:
    """What the checkpoint needs of ``lec7rs.Generator`` (built on another
    branch): ``state_dict()`` of plain values and a ``load_state_dict(d)``
    that validates and raises ValueError. A counter-based stream: the values
    are a pure function of (seed, position)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.position = 0

    def random(self, n: int) -> np.ndarray:
        idx = np.arange(self.position, self.position + n, dtype=np.uint64)
        self.position += n
        h = (idx + np.uint64(self.seed)) * np.uint64(0x9E3779B97F4A7C15)
        return (h >> np.uint64(11)).astype(np.float64) / 2.0**53

    def state_dict(self) -> dict:
        return {"seed": self.seed, "position": self.position}

    def load_state_dict(self, d: dict) -> None:
        if not isinstance(d, dict) or set(d) != {"seed", "position"}:
            raise ValueError("not a StandInGenerator state")
        if not all(type(d[k]) is int and d[k] >= 0 for k in d):
            raise ValueError("seed and position must be ints >= 0")
        self.seed, self.position = d["seed"], d["position"]


class Run:
    """A small training run with every kind of state a checkpoint holds."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.params = {
            "w": rng.standard_normal((8, 5)).astype(np.float32),
            "b": rng.standard_normal(5).astype(np.float32),
        }
        # The data set is not training state: the same for every run.
        self.data = np.random.default_rng(123).standard_normal((6, 8)).astype(np.float32)
        self.opt = Adam(
            [{"params": {"w": self.params["w"]}}, {"params": {"b": self.params["b"]}, "lr": 0.01}],
            lr=0.05,
            amsgrad=True,
        )
        warmup = LinearLR(self.opt, start_factor=0.2, total_iters=4)
        self.sched = SequentialLR(
            self.opt, [warmup, CosineAnnealingLR(self.opt, T_max=20)], milestones=[4]
        )
        self.avg = PolyakAverage(self.params, decay=0.9)
        self.rng = StandInGenerator(seed=42)

    def step(self) -> None:
        z = self.data @ self.params["w"] + self.params["b"]
        noise = self.rng.random(z.size).reshape(z.shape).astype(np.float32)
        dz = z - noise
        self.opt.step({"w": self.data.T @ dz, "b": dz.sum(axis=0)})
        self.sched.step()
        self.avg.update()

    def parts(self) -> dict:
        return {
            "optimizer": self.opt,
            "scheduler": self.sched,
            "averager": self.avg,
            "rng": self.rng,
        }

    def save(self, path) -> None:
        checkpoint.save(path, self.params, **self.parts())

    def load(self, path) -> None:
        checkpoint.load(path, self.params, **self.parts())

    def snapshot(self) -> str:
        """Everything the run holds, as one comparable string (exact bits)."""
        return _canonical(
            {
                "params": self.params,
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "averager": self.avg.state_dict(),
                "rng": self.rng.state_dict(),
                "groups": [
                    {k: v for k, v in g.items() if k != "params"} for g in self.opt.param_groups
                ],
            }
        )


def _canonical(value) -> str:
    """A string that differs whenever a value or a bit of an array differs."""
    if isinstance(value, np.ndarray):
        return f"array({value.dtype},{value.shape},{value.tobytes().hex()})"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_canonical(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return type(value).__name__ + "[" + ",".join(_canonical(v) for v in value) + "]"
    if isinstance(value, float):
        return f"float({value.hex()})"
    return f"{type(value).__name__}({value!r})"


@pytest.fixture
def trained(tmp_path):
    run = Run()
    for _ in range(7):
        run.step()
    path = tmp_path / "run.ckpt"
    run.save(path)
    return run, path


def test_round_trip_is_bit_identical(trained):
    run, path = trained
    fresh = Run(seed=1)  # other values everywhere
    assert fresh.snapshot() != run.snapshot()
    fresh.load(path)
    assert fresh.snapshot() == run.snapshot()


def test_training_resumes_bit_identically(tmp_path):
    straight = Run()
    for _ in range(20):
        straight.step()

    first = Run()
    for _ in range(9):
        first.step()
    first.save(tmp_path / "mid.ckpt")
    for _ in range(3):  # progress after the save is discarded by the load
        first.step()
    resumed = Run(seed=5)
    resumed.load(tmp_path / "mid.ckpt")
    for _ in range(11):
        resumed.step()
    assert resumed.snapshot() == straight.snapshot()


def test_plain_values_round_trip_exactly(tmp_path):
    class Holder:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, d):
            self.state = d

    big_endian = np.arange(6, dtype=">f8").reshape(2, 3)
    tree = {
        "none": None,
        "flags": [True, False],
        "ints": [0, -1, 2**70, -(2**63)],
        "floats": [0.1, -0.0, float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308],
        "text": 'ünïcødé \x00 "quoted"',
        "tuple": (1, (2.5, "x"), []),
        7: {-3: "int keys", "": "empty key"},
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True), np.uint8(255), np.float64(0.1)],
        "arrays": [
            np.array(3.5),
            np.zeros((0, 4), np.float32),
            np.arange(24, dtype=np.int16).reshape(2, 3, 4)[:, ::2, 1:],  # not contiguous
            big_endian,
            np.array([True, False, True]),
            np.array([1 + 2j, np.nan], np.complex64),
            np.array([np.nan, -0.0], np.float16),
            np.arange(5, dtype=np.uint64) * (2**63 // 5),
        ],
    }
    params = [np.ones(3)]
    checkpoint.save(tmp_path / "t", params, rng=Holder(tree))
    out = Holder(None)
    checkpoint.load(tmp_path / "t", params, rng=out)
    assert _canonical(out.state) == _canonical(
        {
            **tree,
            "arrays": [np.ascontiguousarray(a, a.dtype.newbyteorder("=")) for a in tree["arrays"]],
        }
    )
    loaded = out.state["arrays"]
    assert loaded[3].dtype == np.float64 and loaded[3].dtype.isnative
    assert all(isinstance(a, np.ndarray) and a.flags.owndata for a in loaded)
    assert type(out.state["scalars"][0]) is np.float32 and type(out.state["tuple"]) is tuple
    assert isinstance(out.state[7], dict) and -3 in out.state[7]


@pytest.mark.parametrize(
    "value",
    [object(), b"bytes", {1.5: "float key"}, {(1, 2): "tuple key"}, np.array(["s"]),
     np.array([None], dtype=object), np.zeros(2, dtype=[("a", "f4")]), {1, 2}, np.float128(1)
     if hasattr(np, "float128") else set()],
    ids=lambda v: type(v).__name__,
)  # fmt: skip
def test_unstorable_values_raise_type_error_and_leave_the_file(tmp_path, value):
    class Holder:
        def state_dict(self):
            return {"deep": [{"x": value}]}

    path = tmp_path / "keep.ckpt"
    params = [np.ones(3)]
    checkpoint.save(path, params)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"checkpoint\['rng'\]\['deep'\]\[0\]\['x'\]"):
        checkpoint.save(path, params, rng=Holder())
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["keep.ckpt"]  # no temporary file left


def check_rejected(run, path, match=None):
    """``load`` raises ValueError and changes nothing."""
    before = run.snapshot()
    with pytest.raises(ValueError, match=match):
        run.load(path)
    assert run.snapshot() == before


def test_truncated_files_are_rejected(trained, tmp_path):
    _run, path = trained
    data = path.read_bytes()
    target = Run(seed=3)
    bad = tmp_path / "bad.ckpt"
    cuts = sorted({0, 1, 7, 8, 31, 32, 33, 100, len(data) // 2, len(data) - 33, len(data) - 1})
    for n in cuts:
        bad.write_bytes(data[:n])
        check_rejected(target, bad)
    bad.write_bytes(data + b"\0")
    check_rejected(target, bad, "trailing")


def test_every_flipped_bit_is_detected(trained, tmp_path):
    _run, path = trained
    data = bytearray(path.read_bytes())
    target = Run(seed=3)
    bad = tmp_path / "flip.ckpt"
    before = target.snapshot()
    rng = np.random.default_rng(0)
    positions = list(range(0, 64)) + list(rng.integers(64, len(data), 300)) + [len(data) - 1]
    for pos in positions:
        flipped = bytearray(data)
        flipped[pos] ^= 1 << int(rng.integers(8))
        bad.write_bytes(flipped)
        with pytest.raises(ValueError):
            target.load(bad)
    assert target.snapshot() == before


def test_empty_and_foreign_files_are_rejected(trained, tmp_path):
    run, _ = trained
    target = Run(seed=3)
    bad = tmp_path / "foreign"
    arrays = io.BytesIO()
    np.save(arrays, target.params["w"])
    for content, match in [
        (b"", "empty"),
        (b"\0" * 100, "not a lec7rs checkpoint"),
        (b"hello, world\n" * 10, "not a lec7rs checkpoint"),
        (arrays.getvalue(), "not a lec7rs checkpoint"),
        (pickle.dumps(run.params), "not a lec7rs checkpoint"),
        (os.urandom(4096), "not a lec7rs checkpoint"),
    ]:
        bad.write_bytes(content)
        check_rejected(target, bad, match)
    with pytest.raises(FileNotFoundError):
        target.load(tmp_path / "missing")


def rewrite(path, edit, *, version=_format.VERSION):
    """Re-encodes a checkpoint with ``edit(manifest)`` applied and a valid
    checksum, as a crafted file would be."""
    data = path.read_bytes()
    _, _, _, mlen, plen = _format.HEADER.unpack(data[:32])
    manifest = json.loads(data[32 : 32 + mlen])
    start = -(-(32 + mlen) // 64) * 64
    payload = data[start : start + plen]
    edit(manifest)  # in place
    body = json.dumps(manifest).encode()
    head = _format.HEADER.pack(_format.MAGIC, version, 0, len(body), len(payload))
    pad = bytes(-(-(32 + len(body)) // 64) * 64 - 32 - len(body))
    content = head + body + pad + payload
    path.write_bytes(content + tree_hash(content))


def root_entry(manifest, key):
    for k, v in manifest["root"]["v"]:
        if k["v"] == key:
            return v
    raise KeyError(key)


def test_other_versions_and_malformed_manifests_are_rejected(trained, tmp_path):
    _run, path = trained
    target = Run(seed=3)
    bad = tmp_path / "crafted"

    def params_w(m):
        return root_entry(m, "params")["v"][0][1]

    edits = [
        (lambda m: None, {"version": 2}, "version 2"),
        (lambda m: m.update(root={"t": "list", "v": []}), {}, "top-level"),
        (lambda m: m.update(format="other"), {}, "malformed"),
        (lambda m: params_w(m).update(dtype="object"), {}, "not allowed"),
        (lambda m: params_w(m).update(dtype="O"), {}, "not allowed"),
        (lambda m: params_w(m).update(dtype="float64"), {}, "wrong length"),
        (lambda m: params_w(m).update(offset=10**9), {}, "outside"),
        (lambda m: params_w(m).update(offset=-64), {}, "outside"),
        (lambda m: params_w(m).update(shape=[4, 5]), {}, "wrong length"),
        (lambda m: params_w(m).update(shape=[-8, -5]), {}, "bad array"),
        (lambda m: params_w(m).update(t="pickle"), {}, "unknown"),
        (lambda m: params_w(m).update(t="ndarray", dtype="float32"), {}, "unknown"),
        (lambda m: root_entry(m, "params")["v"].pop(), {}, "missing"),
        (lambda m: root_entry(m, "params")["v"][0][0].update(v="v"), {}, "missing"),
        (lambda m: root_entry(m, "params")["v"][0][0].update(t="float", v="1.0"), {}, "keys"),
        # (A repeated param entry also repeats its array's payload range,
        # refused first; see test_checkpoint_bounds.py. Repeat a plain one.)
        (lambda m: root_entry(m, "rng")["v"].append(root_entry(m, "rng")["v"][0]), {},
         "duplicate"),
        (lambda m: root_entry(m, "params")["v"].append(root_entry(m, "params")["v"][0]), {},
         "overlap"),
        (lambda m: root_entry(m, "rng")["v"][0][1].update(t="int", v="42"), {}, "rng"),
    ]  # fmt: skip
    for edit, kw, match in edits:
        bad.write_bytes(path.read_bytes())
        rewrite(bad, edit, **kw)
        check_rejected(target, bad, match)


def test_states_that_do_not_fit_are_rejected(trained, tmp_path):
    _, path = trained
    other = Run(seed=3)
    checks = [
        # other param names, shapes, dtypes
        lambda r: r.params.update(extra=np.zeros(2, np.float32)),
        lambda r: r.params.pop("b"),
    ]
    for change in checks:
        run = Run(seed=3)
        change(run)
        before = run.snapshot()
        with pytest.raises(ValueError, match="params"):
            checkpoint.load(path, run.params, **run.parts())
        assert run.snapshot() == before

    w64 = {"w": np.zeros((8, 5)), "b": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match=r"params\['w'\]"):
        checkpoint.load(path, w64)
    wide = {"w": np.zeros((8, 6), np.float32), "b": np.zeros(5, np.float32)}
    with pytest.raises(ValueError, match=r"params\['w'\]"):
        checkpoint.load(path, wide)
    assert not w64["w"].any() and not wide["w"].any()

    # Parts of another kind or shape: nothing changes, the first part included.
    before = other.snapshot()
    for part, obj in [
        ("optimizer", AdamW(other.params)),
        ("optimizer", SGD(other.params)),
        ("optimizer", Adam([np.zeros(3, np.float32)])),
        ("scheduler", StepLR(other.opt, step_size=2)),
        ("averager", PolyakAverage([np.zeros(3, np.float32)])),
        ("averager", SnapshotEnsemble()),
    ]:
        parts = {**other.parts(), part: obj}
        with pytest.raises(ValueError, match=part):
            checkpoint.load(path, other.params, **parts)
        assert other.snapshot() == before


def test_params_are_checked(tmp_path):
    path = tmp_path / "p.ckpt"
    # save only reads: any strides, read-only arrays are fine.
    base = np.arange(20.0).reshape(4, 5)
    view = base[:, ::2]
    view.flags.writeable = False
    checkpoint.save(path, {"v": view})
    out = {"v": np.zeros((4, 3))}
    checkpoint.load(path, out)
    assert out["v"].tobytes() == np.ascontiguousarray(view).tobytes()
    # load writes: C-contiguous and writeable, as the optimizers require.
    for bad, exc in [
        ({"v": np.zeros((5, 4)).T}, ValueError),
        ({"v": np.zeros((4, 3), np.int32)}, TypeError),
        ([np.zeros((4, 3))], ValueError),
        (np.zeros((4, 3)), TypeError),
    ]:
        with pytest.raises(exc):
            checkpoint.load(path, bad)
    readonly = np.zeros((4, 3))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        checkpoint.load(path, {"v": readonly})
    for bad, exc in [({"v": [1.0]}, TypeError), ({"v": np.zeros(3, np.int64)}, TypeError)]:
        with pytest.raises(exc):
            checkpoint.save(path, bad)
    checkpoint.load(path, out)  # the file is still the first one


def test_missing_parts_and_partial_loads(tmp_path):
    run = Run()
    run.step()
    path = tmp_path / "params_only"
    checkpoint.save(path, run.params)
    target = Run(seed=2)
    check_rejected(target, path, "holds no rng state")
    checkpoint.load(path, target.params)  # params alone
    for k in run.params:
        assert target.params[k].tobytes() == run.params[k].tobytes()
    # Loading only some of the saved parts is fine.
    run.save(path)
    opt_before = target.opt.state_dict()
    checkpoint.load(path, target.params, scheduler=target.sched)
    assert target.sched.state_dict() == run.sched.state_dict()
    assert target.opt.state_dict()["state"].keys() == opt_before["state"].keys()


def test_a_foreign_part_that_fails_rolls_back_the_ones_before(trained):
    """Objects without the two-phase load of the lec7rs classes are loaded one
    by one; one that fails restores those loaded before it."""
    _, path = trained

    class Picky(StandInGenerator):
        def load_state_dict(self, d):
            raise ValueError("Picky refuses every state")

    class OneShotScheduler:  # a user's own scheduler: loads in one phase
        def __init__(self, inner):
            self.inner = inner

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, d):
            self.inner.load_state_dict(d)

    run = Run(seed=3)
    before = run.snapshot()
    rng_before = run.rng.state_dict()
    with pytest.raises(ValueError, match="scheduler"):
        checkpoint.load(
            path,
            run.params,
            optimizer=run.opt,
            rng=run.rng,
            scheduler=OneShotScheduler(Picky(0)),
        )
    assert run.rng.state_dict() == rng_before
    assert run.snapshot() == before


def test_crafted_files_cannot_run_code(trained, tmp_path):
    _run, path = trained
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    payload = pickle.dumps(Exploit())
    target = Run(seed=3)
    bad = tmp_path / "crafted"

    # 1. A pickle, or a NumPy file holding an object array, under any name.
    bad.write_bytes(payload)
    check_rejected(target, bad)
    np.save(bad.with_suffix(".npy"), np.array([Exploit()], dtype=object), allow_pickle=True)
    bad.write_bytes(bad.with_suffix(".npy").read_bytes())
    check_rejected(target, bad)

    # 2. A valid checkpoint whose payload holds the pickle, with an array
    # reference that claims an object dtype or a pickle node: refused.
    def smuggle(m, node):
        root_entry(m, "rng")["v"][0][1].update(node)

    for node in (
        {"t": "array", "dtype": "object", "shape": [1], "offset": 0, "nbytes": 8},
        {"t": "array", "dtype": "|O", "shape": [1], "offset": 0, "nbytes": 8},
        {"t": "pickle", "v": payload.hex()},
        {"t": "scalar", "dtype": "object", "v": payload.hex()},
    ):
        bad.write_bytes(path.read_bytes())
        rewrite(bad, lambda m, node=node: smuggle(m, node))
        check_rejected(target, bad)
    assert not marker.exists()
    pickle.loads(payload)  # the exploit is real: it works where pickle is used
    assert marker.exists()


def test_load_never_uses_pickle(trained, monkeypatch):
    _, path = trained

    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)
    target = Run(seed=3)
    target.load(path)


def test_permissions_follow_umask_or_the_replaced_file(tmp_path):
    params = [np.ones(2)]
    path = tmp_path / "perm.ckpt"
    old = os.umask(0o027)
    try:
        checkpoint.save(path, params)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640
    os.chmod(path, 0o604)
    checkpoint.save(path, params)
    assert path.stat().st_mode & 0o777 == 0o604


CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from lec7rs import checkpoint
    from lec7rs.checkpoint import _format

    path, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    params = [np.full(n, 2.0, np.float32), np.full(n // 3, 3.0)]

    if mode == "slow-write":  # report each write, then give the parent time
        real = _format.write

        class Slow:
            def __init__(self, f):
                self.f = f

            def write(self, b):
                out = self.f.write(b)
                self.f.flush()
                print("wrote", flush=True)
                time.sleep(0.05)
                return out

        _format.write = lambda f, tree, what="checkpoint": real(Slow(f), tree, what)
        _format.IO_CHUNK = 1 << 20
    elif mode == "before-rename":  # written and fsynced, not renamed yet
        def stall(src, dst):
            print("wrote", flush=True)
            time.sleep(600)

        os.replace = stall
    print("ready", flush=True)
    while True:
        checkpoint.save(path, params)
        params[0] += 1
        if mode != "loop":
            break
    """
)


def spawn(path, mode, n):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), mode, str(n)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("mode", "writes"), [("slow-write", 3), ("before-rename", 1)])
def test_writer_killed_mid_save_leaves_the_old_file(tmp_path, mode, writes):
    path = tmp_path / "run.ckpt"
    old = [np.full(3_000_000, 1.0, np.float32), np.full(1_000_000, 1.0)]
    checkpoint.save(path, old)
    child = spawn(path, mode, 3_000_000)
    try:
        seen = 0
        while seen < writes:
            line = child.stdout.readline()
            assert line, child.stderr.read()
            seen += line.strip() == "wrote"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # The temporary file is there, partly or fully written, and ignored.
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".run.ckpt.")
    assert (tmp_path / leftovers[0]).stat().st_size > 0
    loaded = [np.zeros_like(a) for a in old]
    checkpoint.load(path, loaded)
    for a, b in zip(loaded, old):
        assert a.tobytes() == b.tobytes()


def test_writer_killed_at_random_times_always_leaves_a_complete_file(tmp_path):
    path = tmp_path / "run.ckpt"
    n = 4_000_000
    checkpoint.save(path, [np.full(n, 1.0, np.float32), np.full(n // 3, 3.0)])
    rng = np.random.default_rng(0)
    for _ in range(4):
        child = spawn(path, "loop", n)
        try:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
            time.sleep(float(rng.uniform(0.05, 0.4)))
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        loaded = [np.zeros(n, np.float32), np.zeros(n // 3)]
        checkpoint.load(path, loaded)
        first = loaded[0][0]
        assert first >= 1.0 and (loaded[0] == first).all() and (loaded[1] == 3.0).all()


def tree_hash(content: bytes) -> bytes:
    top = hashlib.sha256(_format.TREE_TAG)
    for i in range(0, len(content), _format.PIECE):
        top.update(hashlib.sha256(content[i : i + _format.PIECE]).digest())
    return top.digest()


def test_checksum_is_a_tree_over_fixed_pieces(tmp_path):
    params = [np.arange(5_000_001, dtype=np.float64), np.ones(7, np.float32)]
    files = []
    for n in (1, 2, 3):
        with threads(n):
            checkpoint.save(tmp_path / f"t{n}", params)
        files.append((tmp_path / f"t{n}").read_bytes())
    assert files[0] == files[1] == files[2]
    data = files[0]
    assert len(data) > 2 * _format.PIECE  # three pieces
    assert data[-32:] == tree_hash(data[:-32])
    for pos in (5, _format.PIECE + 3, len(data) - 40):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        (tmp_path / "bad").write_bytes(flipped)
        with pytest.raises(ValueError):
            checkpoint.load(tmp_path / "bad", [np.zeros_like(p) for p in params])


def test_header_layout_is_documented():
    assert _format.HEADER.size == 32
    assert struct.calcsize("<8sIIQQ") == 32 and _format.MAGIC == b"LEC7RSCK"


def test_real_generator_round_trip_resumes_the_same_masks(tmp_path):
    from lec7rs import Generator
    from lec7rs.regularization import dropout

    params = {"w": np.ones((4, 4), np.float32)}
    opt = Adam(params, lr=0.01)
    rng = Generator(1234)
    x = np.ones(10_000, np.float32)
    dropout(x, 0.5, rng=rng)  # move the stream
    path = tmp_path / "with_rng"
    checkpoint.save(path, params, optimizer=opt, rng=rng)
    want = [dropout(x, 0.3, rng=rng)[1] for _ in range(3)]

    other = Generator(99)
    checkpoint.load(path, params, optimizer=opt, rng=other)
    got = [dropout(x, 0.3, rng=other)[1] for _ in range(3)]
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


def test_real_generator_state_that_does_not_fit_changes_nothing(tmp_path):
    from lec7rs import Generator

    params = {"w": np.ones(3, np.float32)}
    rng = Generator(5)
    path = tmp_path / "bad_rng"
    state = rng.state_dict()
    state["algorithm"] = "mt19937"

    class Foreign:
        def state_dict(self):
            return state

    checkpoint.save(path, params, rng=Foreign())
    target = Generator(7)
    before = target.state_dict()
    params_before = params["w"].copy()
    with pytest.raises(ValueError, match="rng"):
        checkpoint.load(path, params, rng=target)
    assert target.state_dict() == before
    np.testing.assert_array_equal(params["w"], params_before)
