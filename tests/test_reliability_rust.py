"""The Rust core and binding under hostile inputs and conditions: strided
inputs of another shape are refused before they are copied, sizes a user
controls never abort the process (MemoryError or ValueError instead), huge
ints are ValueErrors naming their argument, a fork during a pool rebuild
leaves a working child, Ctrl-C stops long calls, and saved states with
out-of-range integers are refused on load.

Tests that need a bound on memory run in a subprocess under
``RLIMIT_AS``, so that an allocation that is too large fails there instead
of being overcommitted (or killing this process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import lec7rs
import numpy as np
import pytest
from lec7rs import augment, averaging, optimize, regularization

# A subprocess prelude: an address-space limit, then the imports.
_LIMITED = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({gib} << 30, {gib} << 30))
import numpy as np
import lec7rs
from lec7rs import _core, augment, optimize, regularization
"""


def run_python(
    code: str, *, gib: int | None = None, timeout: float = 120, env: dict | None = None
) -> str:
    """Runs `code` in a fresh interpreter (under an address-space limit of
    `gib` GiB, with `env` added to the environment) and returns its stdout;
    fails on a non-zero exit (an abort)."""
    prelude = _LIMITED.format(gib=gib) if gib else "import numpy as np\nimport lec7rs\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    return proc.stdout


def outcomes(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.strip()]


def results(stdout: str) -> dict:
    """`label: result` lines as a dict."""
    return dict(line.split(": ", 1) for line in outcomes(stdout))


# A subprocess helper: prints the exception type and message of a call.
_TRY = """
def attempt(label, f):
    try:
        f()
        print(f"{label}: OK")
    except Exception as e:
        message = str(e).replace("\\n", " ")[:300]
        print(f"{label}: {type(e).__name__} {message}")
"""

# Broadcast views of 2**36 elements: 256 GiB if copied.
_HUGE = """
huge = np.broadcast_to(np.ones(1, np.float32), (2**36,))
huge64 = np.broadcast_to(np.ones(1, np.float64), (2**36,))
g = lec7rs.Generator(0)
"""


# -- 1. strided inputs: the shape first, then a fallible copy -------------------


def test_strided_inputs_of_another_shape_are_refused_before_any_copy():
    out = run_python(
        _TRY
        + _HUGE
        + """
small = np.ones(4, np.float32)
attempt("dropout out", lambda: regularization.dropout(huge, 0.5, rng=g, out=small))
attempt("backward mask", lambda: regularization.dropout_backward(
    small, np.broadcast_to(np.ones(1, bool), (2**36,)), 0.5))
attempt("backward dout", lambda: regularization.dropout_backward(
    huge, np.ones(4, bool), 0.5))
attempt("minimize grad", lambda: optimize.minimize(
    lambda x: (float(x @ x), huge), np.ones(3, np.float32)))
options = {"method": "Newton", "line_search": "strong_wolfe", "m": 10, "gtol": 0.0,
           "ftol": 0.0, "max_iter": 5, "max_fun": 5, "max_ls": 5}
attempt("newton step", lambda: _core.minimize(
    lambda x: (float(x @ x), 2 * x), np.ones(3), [3], options, None,
    lambda x, g: huge64))
attempt("two loop", lambda: _core.lbfgs_two_loop([huge64], [np.ones(3)], np.ones(3)))
attempt("pool argmax", lambda: regularization.fractional_max_pool2d_backward(
    np.ones((1, 1, 2, 2), np.float32),
    np.broadcast_to(np.zeros(1, np.int64), (1, 1, 2**18, 2**18)), (1, 1, 4, 4)))
attempt("average", lambda: _core.average_update(
    [np.zeros(3, np.float32)], [huge], 1, None, ["[0]"]))
images = np.broadcast_to(np.zeros(1, np.uint8), (2**30, 8, 8, 1))
attempt("flip out", lambda: augment.random_flip(
    images, rng=g, out=np.zeros((1, 8, 8, 1), np.uint8)))
attempt("crop out", lambda: augment.random_crop(
    images, 4, rng=g, out=np.zeros((1, 4, 4, 1), np.uint8)))
attempt("jitter out", lambda: augment.color_jitter(
    images, rng=g, brightness=0.5, out=np.zeros((1, 8, 8, 1), np.uint8)))
print("state:", g.state_dict()["counter"])
""",
        gib=4,
    )
    got = results(out)
    assert got["state"] == "0"
    del got["state"]
    for label, result in got.items():
        assert result.startswith("ValueError"), (label, result)
    assert "shape mismatch: x has shape (68719476736,) but out has shape (4,)" in got["dropout out"]
    assert "dout has shape (4,) but mask has shape (68719476736,)" in got["backward mask"]
    assert "dout has shape (68719476736,) but mask has shape (4,)" in got["backward dout"]
    assert "x0 has shape (3,) but the gradient" in got["minimize grad"]
    assert "x0 has shape (3,) but the Newton step has shape (68719476736,)" in got["newton step"]
    assert "v has shape (3,) but s[i] has shape (68719476736,)" in got["two loop"]
    assert "dout has shape (1, 1, 2, 2) but argmax has shape" in got["pool argmax"]
    assert "params[0] has shape (68719476736,)" in got["average"]
    for label in ("flip out", "crop out", "jitter out"):
        assert "out has shape (1, " in got[label], (label, got[label])


def test_a_strided_input_too_large_to_copy_is_a_memory_error():
    out = run_python(
        _TRY
        + _HUGE
        + """
attempt("dropout", lambda: regularization.dropout(huge, 0.5, rng=g))
attempt("dropout eval", lambda: regularization.dropout(huge, 0.5, rng=g, training=False))
attempt("stochastic depth", lambda: regularization.stochastic_depth(
    np.broadcast_to(np.ones(1, np.float32), (2**18, 2**18)), 0.5, rng=g))
attempt("minimize x0", lambda: _core.minimize(
    lambda x: (0.0, x), huge, [2**36],
    {"method": "L-BFGS", "line_search": "strong_wolfe", "m": 10, "gtol": 0.0,
     "ftol": 0.0, "max_iter": 1, "max_fun": 1, "max_ls": 1}))
print("state:", g.state_dict()["counter"])
""",
        gib=4,
    )
    got = results(out)
    assert got.pop("state") == "0"
    for label, result in got.items():
        assert result.startswith("MemoryError"), (label, result)
        assert "274877906944 bytes" in result, (label, result)


def test_strided_inputs_that_fit_are_still_read_correctly():
    g = lec7rs.Generator(3)
    x = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]
    y, mask = regularization.dropout(x, 0.25, rng=lec7rs.Generator(3))
    y2, mask2 = regularization.dropout(np.ascontiguousarray(x), 0.25, rng=g)
    assert y.tobytes() == y2.tobytes() and (mask == mask2).all()
    out = np.empty((4, 3), np.float32)
    regularization.dropout(x, 0.25, rng=lec7rs.Generator(3), out=out)
    assert out.tobytes() == y.tobytes()


# -- 2. sizes a user controls: fallible or bounded, never an abort or a panic ---


def test_a_huge_lbfgs_history_is_a_memory_error_not_an_abort():
    out = run_python(
        _TRY
        + """
f = lambda x: (float(x @ x), 2 * x)
attempt("m", lambda: optimize.minimize(f, np.ones(3), m=100_000))
attempt("m32", lambda: optimize.minimize(f, np.ones(3, np.float32), m=3_000_000))
attempt("direction", lambda: _core.lbfgs_direction([], [], np.ones(3), m=100_000))
r = optimize.minimize(f, np.ones(3), m=5)
print("after:", r.status)
""",
        gib=8,
    )
    got = results(out)
    assert got.pop("after") == "0"
    assert len(got) == 3
    for label, result in got.items():
        assert result.startswith("MemoryError") and "(m + 1)^2" in result, (label, result)


@pytest.mark.parametrize(
    "kwargs",
    [{"m": 2**64}, {"m": 2**200}, {"max_iter": 2**64}, {"max_fun": 2**64}, {"max_ls": 2**63}],
)
def test_huge_minimize_counts_are_value_errors_naming_the_option(kwargs):
    (name,) = kwargs
    with pytest.raises(ValueError, match=rf"^{name} must be an integer in \[") as info:
        optimize.minimize(lambda x: (float(x @ x), 2 * x), np.ones(3), **kwargs)
    assert "RunOptions" not in str(info.value)


@pytest.mark.parametrize("n", [0, -1, 1025, 2**64, 2**100])
def test_thread_counts_out_of_range_are_value_errors_naming_n(n):
    before = lec7rs.get_num_threads()
    with pytest.raises(
        ValueError, match=r"^n \(the number of threads\) must be an integer in \[1, 1024\]"
    ):
        lec7rs.set_num_threads(n)
    assert lec7rs.get_num_threads() == before


def test_spawning_too_many_is_a_value_error_and_changes_nothing():
    # In a subprocess: spawn(10**9) used to abort the process.
    out = run_python(
        _TRY
        + """
g = lec7rs.Generator(5)
before = g.state_dict()
for n in [10**9, 2**20 + 1, 2**62, 2**64, 2**100]:
    attempt(f"spawn {n}", lambda: g.spawn(n))
    # The binding refuses it too (never pyo3's PanicException).
    attempt(f"keys {n}", lambda: g._stream.spawn_keys(min(n, 2**64 - 1)))
print("same:", g.state_dict() == before)
""",
        gib=4,
    )
    got = results(out)
    assert got.pop("same") == "True"
    assert len(got) == 10
    for label, result in got.items():
        assert result.startswith("ValueError") and " n" in result, (label, result)


def test_spawn_near_the_bound_allocates_fallibly():
    # The most children one call makes, under a 2 GiB limit: they fit, or
    # it is a MemoryError, never an abort, and a failed spawn spawns nothing.
    out = run_python(
        _TRY
        + """
g = lec7rs.Generator(5)
attempt("max", lambda: g.spawn(2**20))
print("spawned:", g.state_dict()["spawned"])
""",
        gib=2,
    )
    got = results(out)
    assert got["max"] == "OK" or got["max"].startswith("MemoryError"), got
    assert got["spawned"] == ("1048576" if got["max"] == "OK" else "0"), got


def test_a_resized_crop_to_a_huge_output_refuses_its_filter_tables():
    # The output (2**30 x 1 x 3 bytes, 3 GiB) fits in the limit; its
    # vertical filter tables (about 24 GiB) do not.
    out = run_python(
        _TRY
        + """
g = lec7rs.Generator(0)
images = np.zeros((1, 4, 4, 3), np.uint8)
attempt("tall", lambda: augment.random_resized_crop(images, (2**30, 1), rng=g))
attempt("wide", lambda: augment.random_resized_crop(images, (1, 2**29), rng=g))
print("state:", g.state_dict()["counter"])
y = augment.random_resized_crop(images, (8, 8), rng=g)
print("after:", y.shape)
""",
        gib=8,
    )
    got = results(out)
    assert got["tall"].startswith("MemoryError") and "filter" in got["tall"], got
    assert got["wide"].startswith("MemoryError"), got
    assert got["state"] == "0", got
    assert got["after"] == "(1, 8, 8, 3)", got


@pytest.mark.parametrize(
    "call",
    [
        lambda g: regularization.fractional_max_pool2d(
            np.zeros((1, 1, 4, 4), np.float32), 2, rng=g, kernel_size=2**64
        ),
        lambda g: regularization.fractional_max_pool2d(
            np.zeros((1, 1, 4, 4), np.float32), (2**64, 2), rng=g
        ),
        lambda g: regularization.fractional_max_pool2d(
            np.zeros((1, 1, 4, 4), np.float32), 2, rng=g, kernel_size=2**62
        ),
        lambda g: regularization.fractional_max_pool2d_backward(
            np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2), np.int64), (1, 1, 2**64, 4)
        ),
        lambda g: regularization.fractional_max_pool2d_backward(
            np.zeros((1, 1, 2, 2), np.float32),
            np.zeros((1, 1, 2, 2), np.int64),
            (1, 1, 2**40, 2**40),
        ),
        lambda g: augment.random_crop(np.zeros((1, 4, 4, 1), np.uint8), 2**64, rng=g),
        lambda g: augment.random_crop(np.zeros((1, 4, 4, 1), np.uint8), 2, rng=g, padding=2**64),
        lambda g: augment.random_crop(np.zeros((1, 4, 4, 1), np.uint8), 2, rng=g, padding=2**62),
        lambda g: augment.random_resized_crop(np.zeros((1, 4, 4, 1), np.uint8), 2**64, rng=g),
        lambda g: augment.random_resized_crop(np.zeros((1, 4, 4, 1), np.uint8), 2**40, rng=g),
        lambda g: g.random((2**64,)),
        lambda g: g.random((2**40, 2**40)),
        lambda g: g._stream.words(2**62),
    ],
)
def test_huge_sizes_are_value_or_memory_errors_never_panics(call):
    g = lec7rs.Generator(1)
    before = g.state_dict()
    with pytest.raises((ValueError, MemoryError)) as info:
        call(g)
    assert type(info.value).__name__ != "PanicException"
    assert g.state_dict() == before


# -- 3. fork while another thread rebuilds the pool ------------------------------


def test_fork_during_a_pool_rebuild_leaves_a_working_child():
    out = run_python(
        """
import os, threading, time, warnings
from lec7rs import regularization
warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
stop = threading.Event()
x = np.ones(1 << 20, np.float32)

def churn():
    g = lec7rs.Generator(1)
    k = 0
    while not stop.is_set():
        lec7rs.set_num_threads(1 + k % 3)   # a new pool at the next kernel
        k += 1
        regularization.dropout(x[: 1 << 16], 0.5, rng=g)   # above the inline size

worker = threading.Thread(target=churn)
worker.start()
hung = failed = 0
for _ in range(100):
    pid = os.fork()
    if pid == 0:
        try:
            lec7rs.set_num_threads(2)
            y, mask = regularization.dropout(x, 0.5, rng=lec7rs.Generator(2))
            os._exit(0 if mask.size == x.size else 3)
        except BaseException:
            os._exit(4)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            failed += os.WEXITSTATUS(status) != 0
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            hung += 1
            break
        time.sleep(0.002)
stop.set()
worker.join()
print(hung, failed)
""",
        timeout=600,
    )
    assert outcomes(out)[-1] == "0 0"


# -- 4. Ctrl-C stops long calls ----------------------------------------------------

_SIGINT = """
import os, signal, threading, time
from lec7rs import augment, optimize, regularization

def interrupted(label, f, before=None, after=None):
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    t0 = time.perf_counter()
    try:
        f()
        print(label, "finished", round(time.perf_counter() - t0, 2))
    except KeyboardInterrupt:
        same = before is None or before() == after
        print(label, "interrupted", round(time.perf_counter() - t0 - 0.5, 2), same)
"""


def _interrupted(stdout: str) -> dict:
    got = {}
    for line in outcomes(stdout):
        label, what, *rest = line.split()
        got[label] = (what, *rest)
    return got


def test_ctrl_c_stops_a_pooling_that_would_take_hours():
    out = run_python(
        _SIGINT
        + """
g = lec7rs.Generator(0)
x = np.random.default_rng(0).standard_normal((1, 1, 2000, 2000)).astype(np.float32)
state = g.state_dict()
interrupted("pool", lambda: regularization.fractional_max_pool2d(
    x, (1000, 1000), rng=g, kernel_size=1000), g.state_dict, state)
y, _ = regularization.fractional_max_pool2d(x, (1000, 1000), rng=g, kernel_size=3)
print("after", y.shape[2])
""",
        timeout=60,
    )
    got = _interrupted(out)
    what, delay, same = got["pool"]
    assert what == "interrupted" and float(delay) < 0.5 and same == "True", got
    assert got["after"] == ("1000",)


def test_ctrl_c_stops_long_dropout_and_augment_calls():
    # One thread and scalar code, so that each single call runs for one to
    # two seconds here: the signal comes 0.5 s in, well before the end.
    # (Dropout takes 2^28 elements: since the scalar Philox got faster, 2^27
    # of them took 0.57 s on a Zen 3, too close to the signal.)
    out = run_python(
        _SIGINT
        + """
g = lec7rs.Generator(0)
state = g.state_dict()
x = np.ones(1 << 28, np.float32)
interrupted("dropout", lambda: regularization.dropout(x, 0.5, rng=g, out=x), g.state_dict, state)
del x
images = np.zeros((1, 1000, 1000, 3), np.uint8)
interrupted("resized", lambda: augment.random_resized_crop(
    images, (16000, 16000), rng=g, scale=(1.0, 1.0), ratio=(1.0, 1.0)), g.state_dict, state)
images = np.zeros((1, 10000, 10000, 3), np.uint8)
interrupted("jitter", lambda: augment.color_jitter(
    images, rng=g, brightness=0.5, contrast=0.5, saturation=0.5, hue=0.2), g.state_dict, state)
y = augment.color_jitter(images[:, :8, :8], rng=g, hue=0.2)
print("after", y.shape[1])
""",
        timeout=300,
        env={"LEC7RS_NUM_THREADS": "1", "LEC7RS_SIMD": "scalar"},
    )
    got = _interrupted(out)
    for label in ("dropout", "resized", "jitter"):
        what, delay, same = got[label]
        assert what == "interrupted" and float(delay) < 0.5 and same == "True", (label, got)
    assert got["after"] == ("8",)


def test_ctrl_c_stops_minimize():
    out = run_python(
        _SIGINT
        + """
# Ill-conditioned quadratics with both tolerances 0: thousands of
# iterations, far more than 10 s.
def quadratic(n):
    c = np.logspace(0, 8, n)
    return lambda x: (float(c @ (x * x)), 2 * c * x)

opts = dict(gtol=0.0, ftol=0.0, max_iter=10**9, max_fun=10**9)
interrupted("lbfgs", lambda: optimize.minimize(quadratic(20000), np.ones(20000), **opts))
# n = 6000: a 288 MB inverse Hessian, each update a long step in Rust.
interrupted("bfgs", lambda: optimize.minimize(
    quadratic(6000), np.ones(6000), method="BFGS", **opts))
""",
        timeout=120,
    )
    got = _interrupted(out)
    for label in ("lbfgs", "bfgs"):
        what, delay, _ = got[label]
        assert what == "interrupted" and float(delay) < 0.5, (label, got)


# -- 5. saved states: every integer is bounded on load -----------------------------


@pytest.mark.parametrize("n", [2**63, 2**64, 2**100, -1, 1.0, True, "3"])
def test_polyak_state_with_an_out_of_range_count_is_refused_on_load(n):
    p = np.ones(3, np.float32)
    avg = averaging.PolyakAverage([p])
    avg.update()
    good = avg.state_dict()
    before = avg.state_dict()
    with pytest.raises(ValueError, match="n_averaged"):
        avg.load_state_dict({**good, "n_averaged": n})
    after = avg.state_dict()
    assert after["n_averaged"] == before["n_averaged"]
    assert all((a == b).all() for a, b in zip(after["averages"], before["averages"]))
    avg.update()  # still usable
    assert avg.n_averaged == 2


def test_polyak_update_at_the_largest_count_and_beyond():
    p = np.ones(3, np.float32)
    avg = averaging.PolyakAverage([p])
    avg.update()
    state = avg.state_dict()
    avg.load_state_dict({**state, "n_averaged": 2**63 - 2})
    avg.update()
    assert avg.n_averaged == 2**63 - 1
    with pytest.raises(ValueError, match="n_averaged"):
        avg.update()
    avg.n_averaged = 2**64  # set by hand: refused by update, not an OverflowError
    with pytest.raises(ValueError, match="n_averaged"):
        avg.update()


@pytest.mark.parametrize(
    "change",
    [
        {"counter": 2**128},
        {"counter": -1},
        {"counter": 1.5},
        {"spawned": 2**64},
        {"spawned": -1},
        {"key": [2**32, 0]},
        {"key": [0, -1]},
        {"key": [True, 0]},
        {"version": 2**64},
    ],
)
def test_generator_state_with_out_of_range_integers_is_refused_on_load(change):
    g = lec7rs.Generator(9)
    g.random(5)
    before = g.state_dict()
    with pytest.raises(ValueError):
        g.load_state_dict({**before, **change})
    assert g.state_dict() == before
