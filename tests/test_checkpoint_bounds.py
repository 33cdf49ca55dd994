"""lec7rs.checkpoint.load on crafted files: whatever a file holds, loading it
costs a small multiple of its size in memory and time, and a bad file is a
short ``ValueError`` naming the file and where in it the problem is.

The files here have valid checksums (a crafted file, not a corrupt one):
payload ranges used many times over, arrays overlapping, huge declared
shapes, deep nesting, long keys, a huge scalar node, numbers too big for
the objects. The memory bounds are measured in a child process
(``ru_maxrss``), under an address-space limit so that a regression fails
instead of exhausting the machine."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from lec7rs import Generator, checkpoint
from lec7rs.checkpoint import _format
from lec7rs.optim import SGD, Adam
from lec7rs.optim.lr_scheduler import StepLR

#: The most characters a message may have besides the file's path.
SHORT = 400
MiB = 1 << 20


def tree_hash(content: bytes) -> bytes:
    top = hashlib.sha256(_format.TREE_TAG)
    for i in range(0, len(content), _format.PIECE):
        top.update(hashlib.sha256(content[i : i + _format.PIECE]).digest())
    return top.digest()


def assemble(manifest: bytes | dict, payload: bytes) -> bytes:
    """A checkpoint file with this manifest and payload and a valid checksum."""
    if isinstance(manifest, dict):
        manifest = json.dumps(manifest, separators=(",", ":")).encode()
    head = _format.HEADER.pack(_format.MAGIC, _format.VERSION, 0, len(manifest), len(payload))
    pad = bytes(-(-(32 + len(manifest)) // 64) * 64 - 32 - len(manifest))
    content = head + manifest + pad + payload
    return content + tree_hash(content)


def split(data: bytes) -> tuple[dict, bytes]:
    """The manifest and the payload of a checkpoint file."""
    _, _, _, mlen, plen = _format.HEADER.unpack(data[:32])
    start = -(-(32 + mlen) // 64) * 64
    return json.loads(data[32 : 32 + mlen]), data[start : start + plen]


def entry(node: dict, key):
    """The value node of ``key`` in a dict node."""
    for k, v in node["v"]:
        if k["v"] == key:
            return v
    raise KeyError(key)


def put(node: dict, key, value: dict) -> None:
    """Sets ``key`` of a dict node to the node ``value``."""
    for pair in node["v"]:
        if pair[0]["v"] == key:
            pair[1] = value
            return
    node["v"].append([{"t": "str", "v": key}, value])


class Setup:
    """A small run: SGD with momentum or Adam, a StepLR and a Generator."""

    def __init__(self, n: int = 12, adam: bool = False):
        self.params = {"w": np.arange(n, dtype=np.float32), "b": np.ones(3, np.float32)}
        kind = Adam if adam else SGD
        self.opt = kind(self.params, lr=0.1, **({} if adam else {"momentum": 0.9}))
        self.opt.step({k: np.ones_like(v) for k, v in self.params.items()})
        self.sched = StepLR(self.opt, step_size=2)
        self.sched.step()
        self.rng = Generator(7)

    def parts(self) -> dict:
        return {"optimizer": self.opt, "scheduler": self.sched, "rng": self.rng}

    def save(self, path) -> bytes:
        checkpoint.save(path, self.params, **self.parts())
        return path.read_bytes()

    def state(self) -> str:
        return repr(
            (
                {k: v.tobytes() for k, v in self.params.items()},
                self.opt.state_dict(),
                self.sched.state_dict(),
                self.rng.state_dict(),
            )
        )


@pytest.fixture
def valid(tmp_path):
    setup = Setup()
    return setup, split(setup.save(tmp_path / "valid.ckpt"))


def rejected(path, setup: Setup, match: str = "", seconds: float = 2.0) -> str:
    """``load`` raises a short ValueError that names the file, quickly, and
    changes nothing; returns the message."""
    target = Setup(n=setup.params["w"].size, adam=isinstance(setup.opt, Adam))
    target.params["w"][:] = -1
    before = target.state()
    start = time.perf_counter()
    with pytest.raises(ValueError) as info:
        checkpoint.load(path, target.params, **target.parts())
    took = time.perf_counter() - start
    message = str(info.value)
    assert message.startswith(f"{path}: "), message[:500]
    assert len(message) - len(str(path)) < SHORT, message[:500]
    assert match in message, message
    assert took < seconds, f"{took:.2f} s: {message}"
    assert target.state() == before
    return message


def with_raw(manifest: dict, place, raw: str) -> bytes:
    """The manifest as JSON, with the raw JSON text ``raw`` as the node at
    ``place(root)`` (a dict node) under the key "extra": for JSON that
    ``json.dumps`` will not write (too deep, too many digits)."""
    m = json.loads(json.dumps(manifest))
    put(place(m["root"]), "extra", {"t": "str", "v": "@PLACE@"})
    text = json.dumps(m, separators=(",", ":"))
    marker = '{"t":"str","v":"@PLACE@"}'
    assert text.count(marker) == 1
    return text.replace(marker, raw).encode()


def array_node(dtype="float32", shape=(12,), offset=0, nbytes=None) -> dict:
    size = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    return {
        "t": "array",
        "dtype": dtype,
        "shape": list(shape),
        "offset": offset,
        "nbytes": size if nbytes is None else nbytes,
    }


def test_repeated_and_overlapping_payload_ranges_are_refused(valid, tmp_path):
    setup = Setup(n=64)
    manifest, payload = split(setup.save(tmp_path / "valid.ckpt"))
    root = manifest["root"]
    w = entry(entry(root, "params"), "w")
    bad = tmp_path / "bad.ckpt"
    # The params' range used again, in each part that loads (the old load
    # copied each use of it before the part could refuse the state).
    for part in ("scheduler", "rng", "optimizer"):
        m = json.loads(json.dumps(manifest))
        put(entry(m["root"], part), "extra", {"t": "list", "v": [dict(w)] * 1000})
        bad.write_bytes(assemble(m, payload))
        message = rejected(bad, setup, "overlap")
        assert f"['{part}']['extra'][0]" in message
    # The second array starting where the first one does, or inside it.
    first, second = (pair[1] for pair in entry(root, "params")["v"])
    assert first["nbytes"] > 64 and second["offset"] > first["offset"]
    for offset in (first["offset"], first["offset"] + 64):
        m = json.loads(json.dumps(manifest))
        entry(m["root"], "params")["v"][1][1]["offset"] = offset
        bad.write_bytes(assemble(m, payload))
        rejected(bad, setup, "overlap")
    # Empty arrays take no bytes: any number of them may share an offset.
    m = json.loads(json.dumps(manifest))
    put(entry(m["root"], "rng"), "extra", {"t": "list", "v": [array_node(shape=(0, 5))] * 50})
    bad.write_bytes(assemble(m, payload))
    rejected(bad, setup, "rng state does not fit")  # the Generator refuses it, not the file


def test_array_nodes_are_checked_before_any_array_is_made(valid, tmp_path):
    setup, (manifest, payload) = valid
    bad = tmp_path / "bad.ckpt"
    w = entry(entry(manifest["root"], "params"), "w")
    cases = [
        (array_node(shape=(2**40, 2**40)), "outside the payload"),
        (array_node(shape=(2**62,) * 64), "outside the payload"),
        (array_node(shape=(0, 2**62, 2**62)), "too big"),
        (array_node(shape=(0, 2**64)), "bad array shape"),
        (array_node(shape=(0,) * 65), "bad array shape"),
        (array_node(shape=(-1, -12), nbytes=48), "bad array shape"),
        (array_node(shape=(2,), nbytes=2**70), "outside the payload"),
        (array_node(offset=2**64), "outside the payload"),
        (array_node(offset=-(2**64)), "outside the payload"),
        (array_node(offset=1), "not a multiple of 64"),
        ({**w, "dtype": "bool", "shape": [48]}, "bool array"),
        ({**w, "dtype": "O"}, "not allowed"),
        ({**w, "dtype": "x" * 10**6}, "not allowed"),
        ({**w, "extra": 1}, "other entries"),
        ({**w, "shape": [12.0]}, "bad array shape"),
        ({**w, "shape": [True] * 12}, "bad array shape"),
        ({**w, "offset": "0"}, "bad array shape"),
    ]
    for node, match in cases:
        m = json.loads(json.dumps(manifest))
        put(entry(m["root"], "params"), "w", node)
        bad.write_bytes(assemble(m, payload))
        message = rejected(bad, setup, match)
        assert "['params']['w']" in message


def test_numbers_too_big_for_the_objects_are_value_errors(valid, tmp_path):
    setup, (manifest, payload) = valid
    bad = tmp_path / "bad.ckpt"

    def with_int(part, key, value):
        m = json.loads(json.dumps(manifest))
        node = entry(m["root"], part)
        if key == "step":
            node = entry(entry(node, "state"), 0)
        put(node, key, {"t": "int", "v": value})
        bad.write_bytes(assemble(m, payload))

    huge = [2**64, 2**200, -(2**100), 10**4000]
    for value in huge:
        # Refused by the optimizer and the Generator: ValueError, not OverflowError.
        for part, key in [
            ("optimizer", "skipped_steps"),
            ("optimizer", "step"),
            ("rng", "spawned"),
        ]:
            with_int(part, key, value)
            rejected(bad, setup, f"the {part} state does not fit")
        # Taken or refused, but never another exception.
        for part, key in [
            ("scheduler", "last_epoch"),
            ("scheduler", "step_size"),
            ("rng", "counter"),
        ]:
            with_int(part, key, value)
            target = Setup()
            try:
                checkpoint.load(bad, target.params, **target.parts())
            except ValueError as e:
                assert str(e).startswith(f"{bad}: the {part} state does not fit")
                assert len(str(e)) - len(str(bad)) < SHORT
    # More digits than an int may have (json itself would take them).
    for digits in (4302, 10**6):
        raw = '{"t":"int","v":' + "9" * digits + "}"
        bad.write_bytes(assemble(with_raw(manifest, lambda r: entry(r, "rng"), raw), payload))
        rejected(bad, setup, "digits")
    # Floats: only what repr writes, at most 64 characters.
    for text in ("x", "9" * 400, "1" * 10**5, ""):
        m = json.loads(json.dumps(manifest))
        put(entry(m["root"], "scheduler"), "gamma", {"t": "float", "v": text})
        bad.write_bytes(assemble(m, payload))
        rejected(bad, setup, "bad float")


def test_deep_nesting_is_refused(valid, tmp_path):
    setup, (manifest, payload) = valid
    bad = tmp_path / "bad.ckpt"
    # Deeper than the format allows, as nodes ...
    for depth in (62, 63, 5000, 200_000):  # the rng state's "extra" is at depth 2
        raw = '{"t":"list","v":[' * depth + '{"t":"none"}' + "]}" * depth
        bad.write_bytes(assemble(with_raw(manifest, lambda r: entry(r, "rng"), raw), payload))
        if depth == 62:
            rejected(bad, setup, "rng state does not fit")
        elif depth == 63:
            rejected(bad, setup, "checkpoint['rng']: nested more than 64 levels deep")
        else:
            rejected(bad, setup, "nested")
    # ... as raw JSON, and deep dicts of nodes.
    raw = ("[" * 100_000 + "]" * 100_000).encode()
    bad.write_bytes(assemble(b'{"format":"lec7rs.checkpoint","root":' + raw + b"}", payload))
    rejected(bad, setup, "malformed manifest")
    node = {"t": "none"}
    for i in range(64):
        node = {"t": "dict", "v": [[{"t": "str", "v": f"k{i}"}, node]]}
    m = json.loads(json.dumps(manifest))
    put(entry(m["root"], "rng"), "extra", {"t": "list", "v": [node]})
    bad.write_bytes(assemble(m, payload))
    message = rejected(bad, setup, "nested more than 64")
    assert "['rng']['extra']" in message


def test_a_node_that_nests_exactly_64_levels_loads(tmp_path):
    class Holder:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, d):
            self.state = d

    value: object = [np.arange(3)]
    for i in range(61):  # with the root, the rng state and its "x": depth 64
        value = {i: value} if i % 2 else [value]
    params = [np.ones(2)]
    checkpoint.save(tmp_path / "deep", params, rng=Holder({"x": value}))
    out = Holder(None)
    checkpoint.load(tmp_path / "deep", params, rng=out)
    assert repr(out.state) == repr({"x": value})
    with pytest.raises(ValueError, match="nested more than 64"):
        checkpoint.save(tmp_path / "deeper", params, rng=Holder({"x": [value]}))


def test_huge_nodes_keys_and_tags_give_short_messages(valid, tmp_path):
    setup, (manifest, payload) = valid
    bad = tmp_path / "bad.ckpt"
    long = "z" * (2 * MiB)
    nodes = [
        ({"t": "scalar", "dtype": "float32", "v": "00" * MiB}, "hex digits"),
        ({"t": "scalar", "dtype": long, "v": "00"}, "not allowed"),
        ({"t": "scalar", "dtype": "bool", "v": "02"}, "bool scalar"),
        ({"t": "scalar", "dtype": "float32", "v": "zzzzzzzz"}, "bad scalar bytes"),
        ({"t": long}, "unknown"),
        ({"t": "str", "v": long, "extra": long}, "other entries"),
        ({"t": "int", "v": long}, "int node"),
        ({"t": "bool", "v": long}, "bool node"),
        ({"t": "float", "v": long}, "bad float"),
        ({"t": "list", "v": long}, "list node"),
        ({"t": "dict", "v": [[{"t": "str", "v": long}, {"t": "pickle", "v": long}]]}, "unknown"),
        ({"t": "dict", "v": [[{"t": "str", "v": long}, long]]}, "tagged node"),
        ({"t": "dict", "v": [[{"t": "float", "v": "1.0"}, {"t": "none"}]]}, "keys"),
        ({"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "none"}]]}, "keys"),
        ({"t": "dict", "v": [[{"t": "bool", "v": True}, {"t": "none"}]]}, "keys"),
        ({"t": "dict", "v": [long]}, "pairs"),
        ({"t": "list", "v": [1, 2]}, "tagged node"),
        ({"t": "list", "v": [{"format": "lec7rs.checkpoint"}]}, "tagged node"),
    ]
    for node, match in nodes:
        m = json.loads(json.dumps(manifest))
        put(entry(m["root"], "rng"), long[:100_000], {"t": "list", "v": [{"t": "none"}, node]})
        bad.write_bytes(assemble(m, payload))
        message = rejected(bad, setup, match)
        assert "['rng']['zzzz" in message, message
    # A long dict key the state does not expect, and a duplicate one.
    m = json.loads(json.dumps(manifest))
    put(entry(m["root"], "rng"), long, {"t": "none"})
    bad.write_bytes(assemble(m, payload))
    rejected(bad, setup, "rng state does not fit")
    m = json.loads(json.dumps(manifest))
    params = entry(m["root"], "params")
    params["v"].append([{"t": "str", "v": long}, {"t": "str", "v": long}])
    bad.write_bytes(assemble(m, payload))
    rejected(bad, setup, "params do not fit")
    params["v"][-1][1] = {"t": "int", "v": 3}
    params["v"][-1][0]["v"] = "w"
    bad.write_bytes(assemble(m, payload))
    rejected(bad, setup, "duplicate key 'w'")


def test_top_level_and_framing_problems_are_short_value_errors(valid, tmp_path):
    setup, (manifest, payload) = valid
    bad = tmp_path / "bad.ckpt"
    for text in [
        b"",
        b"[]",
        b"\xff\xfe",
        b'{"format":"lec7rs.checkpoint"}',
        b'{"format":"lec7rs.checkpoint","root":{"t":"none"},"x":1}',
        b'{"format":"lec7rs.checkpoint","root":' + b"1" * 10**6 + b"}",
        b'{"format":"lec7rs.checkpoint","root":NaN}',
        b'{"format":"lec7rs.checkpoint","root":{"t":"none"}}',
        b'{"format":"lec7rs.checkpoint","root":{"format":"lec7rs.checkpoint"}}',
        json.dumps({**manifest, "format": "x" * 10**6}).encode(),
        b'{"format":"lec7rs.checkpoint","root":"' + b"x" * 10**6 + b"}",
    ]:
        bad.write_bytes(assemble(text, payload))
        rejected(bad, setup)
    # Header fields at their limits: a truncated file, not an overflow.
    for mlen, plen in [(2**64 - 1, 0), (0, 2**64 - 1), (2**63, 2**63)]:
        head = _format.HEADER.pack(_format.MAGIC, _format.VERSION, 0, mlen, plen)
        bad.write_bytes(head + bytes(100))
        rejected(bad, setup, "truncated")
    for version, flags in [(2**32 - 1, 0), (1, 2**32 - 1)]:
        head = _format.HEADER.pack(_format.MAGIC, version, flags, 0, 0)
        bad.write_bytes(head + bytes(100))
        rejected(bad, setup, "version")
    # Non-zero padding after the manifest (covered by the checksum).
    data = bytearray(assemble(manifest, payload))
    mlen = _format.HEADER.unpack(data[:32])[3]
    if (32 + mlen) % 64:
        data[32 + mlen] = 1
        content = bytes(data[:-32])
        bad.write_bytes(content + tree_hash(content))
        rejected(bad, setup, "padding")


CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, tempfile, time
    import numpy as np
    import lec7rs
    from lec7rs import Generator, checkpoint
    from lec7rs.optim import SGD
    from lec7rs.optim.lr_scheduler import StepLR

    path, n, budget = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lec7rs.set_num_threads(2)  # the checksum's threads: few, whatever the machine
    with tempfile.TemporaryDirectory() as tmp:  # threads, imports: as after a first load
        warm = os.path.join(tmp, "warm")
        checkpoint.save(warm, [np.ones(3)], rng=Generator(1))
        checkpoint.load(warm, [np.ones(3)], rng=Generator(1))
    params = {"w": np.arange(n, dtype=np.float32), "b": np.ones(3, np.float32)}
    opt = SGD(params, lr=0.1, momentum=0.9)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    sched = StepLR(opt, step_size=2)
    rng = Generator(7)

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024

    # A regression should fail, not take the machine: cap the address space.
    limit = status("VmSize") + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here
    before = status("VmRSS")
    start = time.perf_counter()
    try:
        checkpoint.load(path, params, optimizer=opt, scheduler=sched, rng=rng)
        outcome, message = "loaded", ""
    except ValueError as e:
        outcome, message = "ValueError", str(e)
    except BaseException as e:
        outcome, message = type(e).__name__, str(e)[:300]
    seconds = time.perf_counter() - start
    grew = status("VmHWM") - before
    print(json.dumps(dict(outcome=outcome, message=message[:2000], length=len(message),
                          grew=grew, seconds=seconds)))
    """
)


def crafted(kind: str, manifest: dict, payload: bytes) -> bytes:
    """A crafted file of 4 MiB or more, from a valid one's manifest and payload."""
    m = json.loads(json.dumps(manifest))
    root = m["root"]
    w = entry(entry(root, "params"), "w")
    if kind == "repeated ranges":  # 20,000 uses of a 2 MiB array's range
        put(entry(root, "scheduler"), "base_lrs", {"t": "list", "v": [w] * 20_000})
    elif kind == "many nodes":  # 4 MiB of small nodes, the last one bad
        items = [{"t": "none"}] * 320_000 + [{"t": "int", "v": "x"}]
        put(entry(root, "scheduler"), "base_lrs", {"t": "list", "v": items})
    elif kind == "long keys":  # 60 levels of 64 KiB keys, 20,000 leaves at the bottom
        node: dict = {"t": "list", "v": [{"t": "none"}] * 20_000 + [{"t": "bad"}]}
        for i in range(60):
            node = {"t": "dict", "v": [[{"t": "str", "v": f"{i:02}" + "k" * 65_536}, node]]}
        put(entry(root, "rng"), "extra", node)
    elif kind == "huge scalar":  # a bad scalar node of 4 MiB
        node = {"t": "scalar", "dtype": "uint64", "v": "0" * (4 * MiB)}
        put(entry(root, "rng"), "key", {**node, "dtype": "u8"})
    else:
        raise AssertionError(kind)
    return assemble(m, payload)


CASES = ["repeated ranges", "many nodes", "long keys", "huge scalar"]


@pytest.mark.skipif(
    not os.path.exists("/proc/self/clear_refs"), reason="measures with Linux's /proc"
)
@pytest.mark.parametrize("kind", CASES)
def test_a_crafted_file_costs_a_small_multiple_of_its_size(tmp_path, kind):
    n = MiB // 2  # 2 MiB of float32 params, and as much momentum: 4 MiB of payload
    setup = Setup(n=n)
    manifest, payload = split(setup.save(tmp_path / "valid.ckpt"))
    data = crafted(kind, manifest, payload)
    assert len(data) >= 4 * MiB
    path = tmp_path / "crafted.ckpt"
    path.write_bytes(data)
    budget = 2 << 30  # address space the load may add: 2 GiB (the bound below is far less)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(n), str(budget)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.splitlines()[-1])
    assert res["outcome"] == "ValueError", res
    assert res["message"].startswith(f"{path}: "), res
    assert res["length"] - len(str(path)) < SHORT, res
    assert res["seconds"] < 5, res
    # The file is read into memory once; the decoded manifest costs about
    # as much as its text (the old load: 10 to 100 times the file's size).
    assert res["grew"] <= 4 * len(data), (res["grew"] / len(data), res)


def test_a_valid_file_with_many_arrays_and_nodes_still_loads(tmp_path):
    class Holder:
        def __init__(self, state):
            self.state = state

        def state_dict(self):
            return self.state

        def load_state_dict(self, d):
            self.state = d

    state = {
        "arrays": [np.full(i % 7, i, np.float64) for i in range(3000)],
        "empty": [np.zeros((0, 3), np.float32)] * 10 + [np.zeros((5, 0, 2**40), np.uint8)],
        "ints": list(range(-(2**70), -(2**70) + 5000)),
        "scalars": [np.bool_(True), np.bool_(False), np.float16(-0.0)],
        "bools": np.array([True, False] * 100),
    }
    params = {"w": np.ones((64, 64), np.float32)}
    checkpoint.save(tmp_path / "many", params, rng=Holder(state))
    out = Holder(None)
    start = time.perf_counter()
    checkpoint.load(tmp_path / "many", params, rng=out)
    assert time.perf_counter() - start < 2
    assert len(out.state["arrays"]) == 3000
    for i, a in enumerate(out.state["arrays"]):
        assert a.shape == (i % 7,) and (a == i).all()
    assert out.state["empty"][-1].shape == (5, 0, 2**40)
    assert out.state["ints"] == state["ints"]
    assert [type(s) for s in out.state["scalars"]] == [np.bool_, np.bool_, np.float16]
    assert out.state["bools"].tolist() == state["bools"].tolist()
    assert os.path.getsize(tmp_path / "many") < 2 * MiB
