"""The ``lec7rs`` command line."""

from __future__ import annotations

import argparse
import platform
import sys


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


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lec7rs",
        description="Training Neural Networks II, fast on the CPU.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    info = sub.add_parser("info", help="version, SIMD level and thread count")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
