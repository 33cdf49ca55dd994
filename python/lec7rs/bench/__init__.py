"""``lec7rs bench``: the speed of lec7rs's kernels on this machine, against
the NumPy reference and, when they are importable, PyTorch, SciPy and
albumentations (never required).

For every kernel of ``cases.CASES``, a few sizes and each thread count,
the time per call of lec7rs and of each baseline, in nanoseconds per
element, and the speed-up (baseline time / lec7rs time; above 1: lec7rs is
faster). lec7rs runs on ``threads`` threads (``lec7rs.set_num_threads``),
PyTorch on the same number (``torch.set_num_threads``); the NumPy, SciPy
and albumentations baselines run as they do by default (NumPy's
element-wise operations on one thread) and are timed once per size.

Times are the best of several rounds after a warm-up call
(``timing.best_time``); on a busy machine they are noisy, so compare
numbers from one run.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Sequence

import numpy as np

from .._console import Reporter
from .cases import CASES, OPTIONAL, Case, optional
from .timing import best_time

__all__ = ["CASES", "default_threads", "run"]


def default_threads() -> list[int]:
    """1, 2, 4, ... up to ``lec7rs.get_num_threads()``, and that number."""
    import lec7rs

    top = lec7rs.get_num_threads()
    counts = {1, top}
    t = 2
    while t < top:
        counts.add(t)
        t *= 2
    return sorted(counts)


def run(
    *,
    quick: bool = False,
    threads: Sequence[int] | None = None,
    kernels: Sequence[str] | None = None,
    reporter: Reporter | None = None,
) -> dict:
    """Times every kernel; returns the results as plain Python values."""
    import lec7rs

    threads = list(default_threads() if threads is None else threads)
    names = list(CASES if kernels is None else kernels)
    min_time, rounds = (0.02, 3) if quick else (0.25, 5)
    before = lec7rs.get_num_threads()
    torch = optional("torch")
    torch_threads = torch.get_num_threads() if torch is not None else None
    out = {
        "lec7rs_bench": 1,
        "quick": quick,
        "threads": threads,
        "environment": _environment(),
        "kernels": {},
    }
    start = time.perf_counter()
    try:
        for name in names:
            out["kernels"][name] = _run_case(
                CASES[name], quick, threads, min_time, rounds, torch, reporter
            )
    finally:
        lec7rs.set_num_threads(before)
        if torch is not None:
            torch.set_num_threads(torch_threads)
    out["seconds"] = time.perf_counter() - start
    return out


def _run_case(
    case: Case,
    quick: bool,
    threads: list,
    min_time: float,
    rounds: int,
    torch,
    reporter: Reporter | None,
) -> dict:
    import lec7rs

    entry = {"what": case.what, "dtype": case.dtype, "baselines": dict(case.baselines)}
    if case.needs is not None and optional(case.needs) is None:
        entry.update(available=False, reason=f"{case.needs} is not in this build")
        return entry
    entry["available"] = True
    sizes = case.quick_sizes if quick else case.sizes
    results = []
    if reporter is not None:
        bar = reporter.task(f"bench · {case.name}", total=len(sizes) * len(threads))
    else:
        bar = contextlib.nullcontext(lambda *args: None)
    with bar as advance:
        for i, n in enumerate(sizes):
            impl = case.setup(n)
            elements = case.elements(n)
            # The baselines that do not depend on lec7rs's thread count.
            fixed = {
                k: _time(fn, min_time, rounds)
                for k, fn in impl.items()
                if k not in ("lec7rs", "torch")
            }
            for j, t in enumerate(threads):
                lec7rs.set_num_threads(t)
                secs = {"lec7rs": _time(impl["lec7rs"], min_time, rounds), **fixed}
                if "torch" in impl:
                    torch.set_num_threads(t)
                    secs["torch"] = _time(impl["torch"], min_time, rounds)
                results.append(_row(n, elements, t, secs))
                plural = "s" if t > 1 else ""
                advance(i * len(threads) + j + 1, f"{elements:,} elements, {t} thread{plural}")
            del impl
    entry["results"] = results
    return entry


def _row(n: int, elements: int, threads: int, secs: dict) -> dict:
    ns = {k: v * 1e9 / elements if isinstance(v, float) else v for k, v in secs.items()}
    mine = ns["lec7rs"]
    speedup = {
        k: v / mine
        for k, v in ns.items()
        if k != "lec7rs" and isinstance(v, float) and isinstance(mine, float)
    }
    return {
        "size": n,
        "elements": elements,
        "threads": threads,
        "ns_per_element": ns,
        "speedup": speedup,
    }


def _time(fn, min_time: float, rounds: int) -> float | str:
    """Seconds per call, or the error of an optional baseline that failed
    (a broken or incompatible optional package must not stop the bench)."""
    try:
        return best_time(fn, min_time=min_time, rounds=rounds)
    except Exception as e:  # reported in the table and the JSON
        return f"error: {type(e).__name__}: {e}"


def _environment() -> dict:
    import lec7rs

    env = {
        "lec7rs": lec7rs.__version__,
        "simd_level": lec7rs.simd_level(),
        "default_threads": lec7rs.get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for module in OPTIONAL:
        mod = optional(module)
        env[module] = getattr(mod, "__version__", "unknown") if mod is not None else None
    return env


def _si(n: int) -> str:
    """``100k``, ``1.57M``: an element count, short."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.3g}{suffix}"
    return str(n)


def table(res: dict) -> tuple[list, list]:
    """The summary table: ns per element and speed-ups, one row per
    (kernel, size, threads)."""
    present = {
        k
        for e in res["kernels"].values()
        for r in e.get("results", ())
        for k in r["ns_per_element"]
    }
    shown = [k for k in ("numpy", *OPTIONAL) if k in present]
    labels = {"numpy": "NumPy", **OPTIONAL}
    columns = ["kernel", "size", "threads", "lec7rs ns/el"]
    columns += [f"{labels[k]} (x)" for k in shown]
    rows = []
    for name, entry in res["kernels"].items():
        if not entry["available"]:
            rows.append([name, "-", "-", f"unavailable: {entry['reason']}", *["-"] * len(shown)])
            continue
        for r in entry["results"]:
            ns, up = r["ns_per_element"], r["speedup"]
            cells = []
            for k in shown:
                if k not in ns:
                    cells.append("-")
                elif k in up:
                    cells.append(f"{ns[k]:.3g} ({up[k]:.2g}x)")
                else:  # the message is in the JSON
                    cells.append("error")
            mine = ns["lec7rs"]
            rows.append(
                [
                    name,
                    _si(r["elements"]),
                    str(r["threads"]),
                    f"{mine:.3g}" if isinstance(mine, float) else "error",
                    *cells,
                ]
            )
    return columns, rows
