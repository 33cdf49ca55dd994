"""The ``lec7rs`` command line: ``info``, ``demo`` and ``bench``.

Bad command-line input gets one line on stderr (``lec7rs demo: error:
...``) and exit code 2, never a traceback, and is found before any work
starts: every number is checked against the range its user takes (thread
counts as ``lec7rs.set_num_threads``, seeds as ``lec7rs.Generator``), and
``--plot`` against the formats matplotlib can write.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import pathlib
import platform
import sys
import tempfile

from ._text import brief

#: The demo's parts, for --parts (lec7rs.demo.PARTS has the same keys; not
#: imported here so that ``lec7rs --help`` stays fast).
PARTS = (1, 2, 3, 4, 5, 6)
#: The thread counts ``lec7rs.set_num_threads`` takes: 1..=MAX_THREADS.
MAX_THREADS = 1024
#: ``lec7rs.Generator`` takes seeds below 2**64; the demo also seeds with
#: ``seed + k`` for small ``k`` (one per repetition of a run), so it takes
#: seeds up to this.
MAX_SEED = 2**64 - 1 - 16
#: Passes over the training set; more would run for days.
MAX_EPOCHS = 100_000


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line: ``prog: error: message``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fail(prog: str, message: str, code: int = 2) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def _parts(text: str) -> list:
    parts = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) not in PARTS:
            raise argparse.ArgumentTypeError(
                f"unknown part {item!r} (the parts are {PARTS[0]} to {PARTS[-1]}, e.g. --parts 1,3)"
            )
        if int(item) not in parts:
            parts.append(int(item))
    return sorted(parts)


def _count(what: str, low: int, high: int | None = None, high_text: str | None = None):
    """A parser of ints in ``low..=high``; ``high_text`` spells ``high``."""

    def parse(text: str) -> int:
        body = text.strip()
        digits = body[1:] if body.startswith(("+", "-")) else body
        if not digits.isdigit() or not digits.isascii():
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {brief(text)}")
        if len(digits) > 40:  # beyond any bound; int() would refuse 4300 digits
            bounds = f"{low}..{high_text or high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(
                f"{what} must be {'in ' if high is not None else ''}{bounds}, got a "
                f"{len(digits)}-digit number"
            )
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} must be >= {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(
                f"{what} must be in {low}..{high_text or high}, got {value}"
            )
        return value

    return parse


def _threads(text: str) -> list:
    parse = _count("threads", 1, MAX_THREADS)
    return sorted({parse(t) for t in text.split(",")})


def _missing(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return True
    return False


def _probe_dir(path: pathlib.Path) -> str | None:
    """Why ``path`` cannot hold the output (created if needed), or None."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        return f"cannot write to --out {str(path)!r}: {e.strerror or e}"
    return None


def _probe_plot_format(path: pathlib.Path) -> str | None:
    """Why matplotlib cannot write ``path`` (its extension picks the format,
    as in ``savefig``; none means png), or None: a tiny figure is saved in
    that format, in memory, so that the benchmark does not run for a plot
    that cannot be written."""
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ext = os.path.splitext(str(path))[1][1:].lower()
    if not ext:
        return None
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext not in formats:
        return (
            f"--plot {brief(str(path))}: matplotlib cannot write {brief(ext, 12)} files "
            f"(it writes {', '.join(sorted(formats))})"
        )
    # As the plot is drawn (plot.draw): constrained layout, axes, text.
    fig = Figure(figsize=(1, 1), dpi=10, layout="constrained")
    FigureCanvasAgg(fig)
    fig.add_subplot().set_title("lec7rs")
    try:
        fig.savefig(io.BytesIO(), format=ext)
    except Exception as e:  # e.g. pgf without LaTeX
        why = " ".join(str(e).split())[:150] or type(e).__name__
        return f"--plot {brief(str(path))}: matplotlib cannot write {ext} files here: {why}"
    return None


def _probe_file(path: pathlib.Path) -> str | None:
    """Why ``path`` cannot be written, or None (leaves no file behind)."""
    existed = path.exists()
    try:
        if path.is_dir():
            return f"--plot {str(path)!r} is a directory"
        with open(path, "ab"):
            pass
    except OSError as e:
        return f"cannot write --plot {str(path)!r}: {e.strerror or e}"
    if not existed:
        path.unlink()
    return None


def _info(args: argparse.Namespace) -> int:
    import numpy as np

    import lec7rs
    from lec7rs import _core

    print(f"lec7rs {lec7rs.__version__}")
    print(f"simd level:   {lec7rs.simd_level()} (this CPU: {', '.join(_core.simd_levels())})")
    print(f"threads:      {lec7rs.get_num_threads()}")
    print(f"numpy:        {np.__version__}")
    print(f"python:       {platform.python_version()} on {platform.machine()}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    prog = "lec7rs demo"
    problem = _probe_dir(args.out)
    if problem:
        return _fail(prog, problem)
    if _missing("matplotlib"):
        return _fail(prog, "needs matplotlib: pip install 'lec7rs[demo]'", 1)
    if 4 in args.parts and _missing("lec7rs.augment"):
        return _fail(prog, "part 4 needs lec7rs.augment, missing from this build", 1)
    from lec7rs import demo

    demo.run(args.out, quick=args.quick, seed=args.seed, parts=args.parts, epochs=args.epochs)
    return 0


def _bench(args: argparse.Namespace) -> int:
    prog = "lec7rs bench"
    if args.plot is not None:
        if _missing("matplotlib"):
            return _fail(prog, "--plot needs matplotlib (pip install 'lec7rs[demo]')", 1)
        problem = _probe_plot_format(args.plot) or _probe_file(args.plot)
        if problem:
            return _fail(prog, problem)
    from lec7rs import bench
    from lec7rs._console import Reporter
    from lec7rs._json import dumps

    reporter = None if args.json else Reporter()
    res = bench.run(quick=args.quick, threads=args.threads, reporter=reporter)
    if args.json:
        print(dumps(res))
    else:
        columns, rows = bench.table(res)
        env = res["environment"]
        title = (
            f"lec7rs {env['lec7rs']} ({env['simd_level']}): ns per element, and each "
            "baseline's speed-up (its time / lec7rs's time)"
        )
        Reporter().table(title, columns, rows)
    if args.plot is not None:
        from lec7rs.bench import plot

        plot.draw(res, args.plot)
        if not args.json:
            print(f"wrote {args.plot}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lec7rs", description="Training Neural Networks II, fast on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="version, SIMD level and thread count")
    info.set_defaults(run=_info)

    demo = sub.add_parser(
        "demo",
        help="the lecture, reproduced on handwritten digits",
        description=(
            "Reproduces the claims of 'Training Neural Networks II' with a two-layer NumPy "
            "net on scikit-learn's 8x8 digits (shipped with lec7rs): 1 optimizers, 2 the "
            "zigzag and the saddle, 3 learning-rate decay, 4 regularization, 5 Polyak "
            "averaging and snapshot ensembles, 6 transfer learning. Writes summary.png and "
            "results.json to --out and prints a summary."
        ),
    )
    demo.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("lec7rs-demo"),
        metavar="DIR",
        help="output folder (default: ./lec7rs-demo)",
    )
    demo.add_argument("--quick", action="store_true", help="short runs (8 epochs), for tests")
    demo.add_argument(
        "--seed",
        type=_count("seed", 0, MAX_SEED, "2**64-17"),
        default=0,
        metavar="N",
        help="random seed, 0 to 2**64-17 (default 0)",
    )
    demo.add_argument(
        "--parts",
        type=_parts,
        default=list(PARTS),
        metavar="1,2,...",
        help="the parts to run (default: all six)",
    )
    demo.add_argument(
        "--epochs",
        type=_count("epochs", 1, MAX_EPOCHS),
        default=None,
        metavar="N",
        help=(
            "passes over the training set per run (default 30; 8 with --quick); runs on "
            "small training sets take as many steps as a full one at batch 64"
        ),
    )
    demo.set_defaults(run=_demo)

    bench = sub.add_parser(
        "bench",
        help="speed of the kernels on this machine",
        description=(
            "Times lec7rs's kernels (Adam, SGD with momentum, Adagrad, RMSprop, the L-BFGS "
            "two-loop recursion, dropout, random crops) at a few sizes and thread counts, "
            "against the NumPy reference and PyTorch, SciPy and albumentations where "
            "installed: ns per element and speed-ups."
        ),
    )
    bench.add_argument("--quick", action="store_true", help="one small size, short timings")
    bench.add_argument("--json", action="store_true", help="print the results as JSON")
    bench.add_argument(
        "--plot", type=pathlib.Path, default=None, metavar="FILE", help="save a bar chart"
    )
    bench.add_argument(
        "--threads",
        type=_threads,
        default=None,
        metavar="1,2,...",
        help=(
            f"thread counts, 1 to {MAX_THREADS} (default: 1, 2, 4, ... up to lec7rs's thread count)"
        ),
    )
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"lec7rs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
