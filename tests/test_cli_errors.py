"""Bad ``lec7rs`` command lines are refused before any work: one line on
stderr, exit code 2, no traceback, no benchmark run. The bounds are those
of the APIs the values go to (``lec7rs.set_num_threads``,
``lec7rs.Generator``, matplotlib's ``savefig``)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import time

import lec7rs
import pytest
from lec7rs import cli


def lec7rs_cli(*args: str) -> subprocess.CompletedProcess:
    # A benchmark run (the failure this guards against) takes minutes: the
    # timeout turns it into a failure rather than a slow pass.
    return subprocess.run(
        [sys.executable, "-m", "lec7rs", *args], capture_output=True, text=True, timeout=60
    )


def check_refused(args: list, message: str) -> str:
    start = time.perf_counter()
    proc = lec7rs_cli(*args)
    took = time.perf_counter() - start
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"lec7rs {args[0]}: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert len(lines[0]) < 300, lines[0]
    assert took < 30, f"{took:.1f} s: work was done before the check"
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--threads", "1025"], "threads must be in 1..1024, got 1025"),
        (["bench", "--threads", "99999999999999999999"], "threads must be in 1..1024"),
        (["bench", "--threads", "1,2,4096"], "threads must be in 1..1024, got 4096"),
        (["bench", "--threads", "9" * 5000], "threads must be in 1..1024, got a 5000-digit"),
        (["bench", "--threads", "1,x"], "threads must be an integer, got 'x'"),
        (["bench", "--threads", "+-5"], "threads must be an integer, got '+-5'"),
        (["bench", "--threads", "-5"], "threads must be >= 1, got -5"),
        (["bench", "--threads", "\u00b2"], "threads must be an integer"),  # isdigit(), not int()
        (["bench", "--threads", "0"], "threads must be >= 1"),
        (["demo", "--seed", str(2**64)], "seed must be in 0..2**64-17, got 18446744073709551616"),
        (["demo", "--seed", str(2**64 - 16)], "seed must be in 0..2**64-17"),
        (["demo", "--seed", "-1"], "seed must be >= 0"),
        (["demo", "--seed", "1" * 100], "seed must be in 0..2**64-17, got a 100-digit number"),
        (["demo", "--epochs", str(10**30)], "epochs must be in 1..100000"),
    ],
)
def test_numbers_out_of_range_are_one_line_errors(args, message):
    check_refused(args, message)


def test_the_bounds_are_those_of_the_apis():
    parser = cli._parser()
    top = parser.parse_args(["bench", "--threads", f"1,{cli.MAX_THREADS}"])
    assert top.threads == [1, cli.MAX_THREADS]
    before = lec7rs.get_num_threads()
    try:
        lec7rs.set_num_threads(cli.MAX_THREADS)  # the largest count is taken ...
        with pytest.raises(ValueError):
            lec7rs.set_num_threads(cli.MAX_THREADS + 1)  # ... and one more is not
    finally:
        lec7rs.set_num_threads(before)
    seed = parser.parse_args(["demo", "--seed", str(cli.MAX_SEED)]).seed
    assert seed == 2**64 - 17
    lec7rs.Generator(seed + 16)  # the demo's derived seeds are taken
    with pytest.raises((ValueError, OverflowError)):
        lec7rs.Generator(2**64)


def test_a_plot_format_matplotlib_cannot_write_is_refused_before_the_benchmark(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    target = tmp_path / "x.xyz"
    line = check_refused(["bench", "--plot", str(target)], "matplotlib cannot write 'xyz' files")
    assert "png" in line and "svg" in line
    assert not target.exists()
    # Found before the other checks' side effects, and before --threads is used.
    check_refused(["bench", "--plot", str(tmp_path / "y.XYZ"), "--threads", "2"], "'xyz'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("xelatex") is not None, reason="LaTeX is installed here")
def test_a_format_that_needs_missing_tools_is_refused_before_the_benchmark(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    check_refused(["bench", "--plot", str(tmp_path / "x.pgf")], "cannot write pgf files here")


def test_writable_formats_pass_the_check():
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    for name in ("x.png", "x.PNG", "x.svg", "x.pdf", "no-extension", "dir.d/x.png"):
        assert cli._probe_plot_format(pathlib.Path(name)) is None, name
    assert "cannot write" in cli._probe_plot_format(pathlib.Path("x.docx"))
