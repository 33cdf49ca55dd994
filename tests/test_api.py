"""The top level, environment variables, the command line, the stubs."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import lec7rs
import pytest
from lec7rs import _core


def run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_top_level_api():
    assert isinstance(lec7rs.__version__, str) and lec7rs.__version__.count(".") == 2
    assert lec7rs.simd_level() in ("avx512", "avx2", "neon", "scalar")
    assert lec7rs.get_num_threads() >= 1
    for name in ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW"):
        assert hasattr(lec7rs.optim, name)
    for name in ("sgd", "sgd_momentum", "nesterov_momentum", "adagrad", "rmsprop", "adam"):
        assert callable(getattr(lec7rs.reference, name))


def test_env_forces_simd_level_and_threads():
    out = run(
        "import lec7rs; print(lec7rs.simd_level(), lec7rs.get_num_threads())",
        LEC7RS_SIMD="scalar",
        LEC7RS_NUM_THREADS="3",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["scalar", "3"]


@pytest.mark.parametrize(
    ("var", "value"),
    [("LEC7RS_SIMD", "sse9"), ("LEC7RS_NUM_THREADS", "zero"), ("LEC7RS_BUFFER_CACHE_MB", "-1")],
)
def test_bad_env_warns_and_falls_back(var, value):
    code = (
        "import lec7rs; from lec7rs import _core; "
        "print(lec7rs.simd_level(), lec7rs.get_num_threads(), _core._buffer_cache()[2])"
    )
    out = run(code, **{var: value})
    assert out.returncode == 0, out.stderr
    assert "RuntimeWarning" in out.stderr and var in out.stderr
    level, n, cache = out.stdout.split()
    assert level == _core.simd_levels()[0] and int(n) >= 1 and int(cache) == 256 << 20


def test_unsupported_env_level_falls_back_with_warning():
    missing = [lv for lv in ("avx512", "avx2", "neon") if lv not in _core.simd_levels()]
    out = run("import lec7rs; print(lec7rs.simd_level())", LEC7RS_SIMD=missing[0])
    assert "does not support" in out.stderr
    assert out.stdout.strip() == _core.simd_levels()[0]


@pytest.mark.parametrize("argv", [["lec7rs"], [sys.executable, "-m", "lec7rs"]])
def test_info_command(argv):
    exe = argv[0]
    if exe == "lec7rs":
        exe = str(pathlib.Path(sys.executable).with_name("lec7rs"))
        if not os.path.exists(exe):
            pytest.skip("console script not installed next to this interpreter")
    out = subprocess.run([exe, *argv[1:], "info"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"lec7rs {lec7rs.__version__}" in out.stdout
    assert f"simd level:   {lec7rs.simd_level()}" in out.stdout
    assert "threads:" in out.stdout


def test_cli_errors_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "lec7rs", "frobnicate"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
    assert "Traceback" not in out.stderr


def test_type_stubs_ship_with_the_package():
    pkg = pathlib.Path(lec7rs.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "_core.pyi").read_text()
    for name in dir(_core):
        if not name.startswith("__"):
            assert f"def {name}(" in stub or f"{name}:" in stub or f"class {name}" in stub, name
