"""Coverage-guided fuzzing of ``lec7rs.checkpoint.load`` with atheris.

Not a pytest module (pytest collects ``test_*.py`` only); run it by hand::

    pip install atheris
    python tests/fuzz/fuzz_checkpoint.py -max_total_time=300 -timeout=10
    python tests/fuzz/fuzz_checkpoint.py CRASH_FILE    # replay one input

It mutates valid checkpoints written by ``checkpoint.save`` of small runs
(SGD with momentum + StepLR + Generator; Adam with two groups + a
SequentialLR + PolyakAverage + Generator; L-BFGS + Generator; SGD +
Generator + a part of the user's own holding every kind of value the format
stores, nested 64 deep), in two ways, picked by the input's first byte:

* the manifest and the payload, re-assembled with a valid header and
  checksum (so that the mutations reach the decoder and the objects'
  state checks, not just the checksum): the rest of the input is the
  manifest, a NUL byte, and the payload;
* the raw file (the checksum and the framing must catch it).

A failure is: any exception from ``load`` other than ``ValueError``; a
``ValueError`` whose message does not start with the file's path or has
more than 400 characters besides it; a load that takes more than a
second; a load that fails yet changes the params or the objects.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import sys
import tempfile
import time

import atheris

with atheris.instrument_imports(include=["lec7rs"]):
    import numpy as np
    from lec7rs import Generator, checkpoint
    from lec7rs.averaging import PolyakAverage
    from lec7rs.checkpoint import _format
    from lec7rs.optim import LBFGS, SGD, Adam
    from lec7rs.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR, StepLR

SECONDS = 1.0
SHORT = 400


def sgd_run() -> dict:
    params = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, np.float32)}
    opt = SGD(params, lr=0.1, momentum=0.9, nesterov=True)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    return {"params": params, "optimizer": opt, "scheduler": sched, "rng": Generator(3)}


def adam_run() -> dict:
    params = {"w": np.linspace(-1, 1, 10).astype(np.float64), "b": np.zeros(2)}
    opt = Adam(
        [{"params": {"w": params["w"]}}, {"params": {"b": params["b"]}, "lr": 0.01}],
        lr=0.05,
        amsgrad=True,
    )
    warm = LinearLR(opt, start_factor=0.5, total_iters=2)
    sched = SequentialLR(opt, [warm, CosineAnnealingLR(opt, T_max=5)], milestones=[2])
    return {
        "params": params,
        "optimizer": opt,
        "scheduler": sched,
        "averager": PolyakAverage(params, decay=0.9),
        "rng": Generator(2**64 - 1),
    }


def lbfgs_run() -> dict:
    params = [np.array([1.5, -2.0, 0.5])]
    return {"params": params, "optimizer": LBFGS(params, lr=1, history_size=3), "rng": Generator(9)}


class Holder:
    """A part of the user's own (one-phase load) that takes any state: the
    decoder's every kind of node reaches it as the file has it."""

    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return self.state

    def load_state_dict(self, d):
        self.state = d


def plain_state() -> dict:
    deep: object = [np.arange(3, dtype=np.int16)]
    for i in range(59):  # depth 64 with the root, "averager", "deep" and the list
        deep = {i: deep} if i % 2 else [deep]
    return {
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True), np.uint8(255), np.complex64(1j)],
        "plain": (None, True, False, 0, -(2**70), 0.1, -0.0, float("inf"), float("nan"), "ü"),
        "arrays": [np.zeros((0, 4)), np.array([True, False]), np.arange(6.0).reshape(2, 3)],
        7: {-3: "int keys", "": "empty key"},
        "deep": deep,
    }


def plain_run() -> dict:
    params = {"w": np.ones(5, np.float32)}
    return {
        "params": params,
        "optimizer": SGD(params, lr=0.1),
        "averager": Holder(plain_state()),
        "rng": Generator(11),
    }


RUNS = [sgd_run, adam_run, lbfgs_run, plain_run]


def advance(run: dict, steps: int) -> None:
    """A few training steps, so that every part has state."""
    params = run["params"]
    arrays = list(params.values()) if isinstance(params, dict) else params
    for _ in range(steps):
        opt = run["optimizer"]
        if isinstance(opt, LBFGS):

            def closure():
                p = arrays[0]
                return float(np.sum((p - 1) ** 2)), [2 * (p - 1)]

            opt.step(closure)
        else:
            grads = {k: np.ones_like(v) * 0.5 for k, v in params.items()}
            opt.step(grads)
        if "scheduler" in run:
            run["scheduler"].step()
        if isinstance(run.get("averager"), PolyakAverage):
            run["averager"].update()
        run["rng"].spawn(1)


def parts(run: dict) -> dict:
    return {k: v for k, v in run.items() if k != "params"}


def snapshot(run: dict) -> str:
    params = run["params"]
    arrays = params.items() if isinstance(params, dict) else enumerate(params)
    return repr(
        (
            [(k, a.tobytes()) for k, a in arrays],
            {k: v.state_dict() for k, v in parts(run).items()},
        )
    )


def split(data: bytes) -> tuple[bytes, bytes]:
    _, _, _, mlen, plen = _format.HEADER.unpack(data[: _format.HEADER.size])
    start = -(-(32 + mlen) // 64) * 64
    return data[32 : 32 + mlen], data[start : start + plen]


def tree_hash(content: bytes) -> bytes:
    top = hashlib.sha256(_format.TREE_TAG)
    for i in range(0, len(content), _format.PIECE):
        top.update(hashlib.sha256(content[i : i + _format.PIECE]).digest())
    return top.digest()


def assemble(manifest: bytes, payload: bytes) -> bytes:
    head = _format.HEADER.pack(_format.MAGIC, _format.VERSION, 0, len(manifest), len(payload))
    pad = bytes(-(-(32 + len(manifest)) // 64) * 64 - 32 - len(manifest))
    content = head + manifest + pad + payload
    return content + tree_hash(content)


FOLDER = tempfile.mkdtemp(
    prefix="lec7rs-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
PATH = os.path.join(FOLDER, "input.ckpt")
atexit.register(shutil.rmtree, FOLDER, True)


def seeds() -> list:
    """The valid files, one per run, and the corpus entries made of them."""
    files = []
    for i, make in enumerate(RUNS):
        run = make()
        advance(run, 3)
        path = os.path.join(FOLDER, f"seed{i}.ckpt")
        checkpoint.save(path, run["params"], **parts(run))
        with open(path, "rb") as f:
            files.append(f.read())
    return files


FILES = seeds()


def corpus(folder: str) -> None:
    """Writes the seed inputs (both modes, each run) to ``folder``."""
    os.makedirs(folder, exist_ok=True)
    for i, data in enumerate(FILES):
        manifest, payload = split(data)
        for name, entry in [
            (f"structured{i}", bytes([i * 2]) + manifest + b"\0" + payload),
            (f"raw{i}", bytes([i * 2 + 1]) + data),
        ]:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(entry)


#: Tokens of the manifest, for libFuzzer's -dict (written next to the corpus).
TOKENS = [
    *(f'"{t}"' for t in ("t", "v", "dtype", "shape", "offset", "nbytes", "format", "root")),
    *(f'"{t}"' for t in _format._ENTRIES),
    *(f'"{d}"' for d in _format.DTYPES),
    '"lec7rs.checkpoint"',
    '{"t":"none"}',
    '{"t":"int","v":',
    '{"t":"float","v":"',
    '{"t":"list","v":[',
    '{"t":"dict","v":[[',
    "-1",
    "0",
    "64",
    "4294967296",
    "18446744073709551616",
    "9223372036854775807",
    '"nan"',
    '"inf"',
    '"-0.0"',
    "1e999",
]


def dictionary(path: str) -> None:
    with open(path, "w") as f:
        for token in TOKENS:
            escaped = token.replace("\\", "\\\\").replace('"', '\\"')
            f.write(f'"{escaped}"\n')


def build(data: bytes) -> tuple[int, bytes]:
    """The run to load into and the file's bytes, from a fuzz input."""
    if not data:
        return 0, b""
    which, raw = (data[0] >> 1) % len(RUNS), data[0] & 1
    body = data[1:]
    if raw:
        return which, body
    manifest, _, payload = body.partition(b"\0")
    return which, assemble(manifest, payload)


def load_once(run: dict) -> tuple[float, str | None]:
    """Loads the input into ``run``: the seconds taken and the ValueError's
    message (None if it loaded)."""
    start = time.perf_counter()
    try:
        checkpoint.load(PATH, run["params"], **parts(run))
    except ValueError as e:
        return time.perf_counter() - start, str(e)
    return time.perf_counter() - start, None


def test_one_input(data: bytes) -> None:
    which, content = build(data)
    with open(PATH, "wb") as f:
        f.write(content)
    run = RUNS[which]()
    before = snapshot(run)
    took, message = load_once(run)
    if message is not None:
        if not message.startswith(f"{PATH}: ") or len(message) - len(PATH) > SHORT:
            raise AssertionError(f"a bad message ({len(message)} characters): {message[:600]!r}")
        if snapshot(run) != before:
            raise AssertionError(f"a failed load changed the objects: {message[:300]}")
    if took > SECONDS:
        # Slow, or the machine was busy (the CPUs are shared): slow only if
        # it is slow every time.
        took = min([took] + [load_once(RUNS[which]())[0] for _ in range(2)])
        if took > SECONDS:
            raise AssertionError(f"the load took {took:.2f} s ({len(content)} bytes)")


def main() -> None:
    args = list(sys.argv)
    folders = [a for a in args[1:] if not a.startswith("-") and os.path.isdir(a)]
    if not folders and not any(os.path.isfile(a) for a in args[1:] if not a.startswith("-")):
        folder = os.path.join(FOLDER, "corpus")
        corpus(folder)
        args.append(folder)
    else:
        for folder in folders:
            if not os.listdir(folder):
                corpus(folder)
    if not any(a.startswith("-dict=") for a in args):
        dictionary(os.path.join(FOLDER, "manifest.dict"))
        args.insert(1, f"-dict={os.path.join(FOLDER, 'manifest.dict')}")
    if not any(a.startswith("-max_len=") for a in args):
        args.insert(1, "-max_len=20000")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
