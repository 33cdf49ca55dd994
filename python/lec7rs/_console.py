"""Terminal output of `lec7rs demo` and `lec7rs bench`: a progress bar per run
(on stderr) and summary tables (on stdout), drawn with rich when it is
installed (``pip install "lec7rs[demo]"``) and as plain text otherwise."""

from __future__ import annotations

import contextlib
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from typing import Callable

try:  # optional: the demo extra
    import rich.box
    import rich.console
    import rich.progress
    import rich.table
    import rich.text
except ImportError:  # pragma: no cover - exercised where rich is missing
    rich = None

#: ``advance(step, info)``: the bar is at ``step``; ``info`` is shown beside it.
Advance = Callable[[int, str], None]


class Reporter:
    """Progress bars and tables; ``quiet`` silences the progress bars."""

    def __init__(self, *, quiet: bool = False):
        self.quiet = quiet
        self._err = rich.console.Console(stderr=True) if rich else None
        self._out = rich.console.Console(highlight=False) if rich else None
        if self._out is not None and not self._out.is_terminal:
            # A pipe or a log file: rich would assume 80 columns; tables need more.
            self._out.width = 120

    @contextlib.contextmanager
    def task(self, name: str, total: int) -> Iterator[Advance]:
        """A progress bar for one run of ``total`` steps; the caller reports
        ``advance(step, info)``. Without rich, one line when the run ends."""
        start = time.perf_counter()
        last = [""]
        if self.quiet:

            def advance(step: int, info: str = "") -> None:
                pass

            yield advance
            return
        if rich is None:

            def advance(step: int, info: str = "") -> None:
                last[0] = info

            yield advance
            took = time.perf_counter() - start
            print(f"  {name:<30} {last[0]}  {took:.1f} s", file=sys.stderr)
            return
        # Fits 80 columns (a pipe or a CI log), with room to spare in a terminal.
        columns = (
            rich.progress.TextColumn("  {task.description:<30}"),
            rich.progress.BarColumn(bar_width=16),
            rich.progress.TextColumn("{task.percentage:>3.0f}%"),
            rich.progress.TextColumn("{task.fields[info]}"),
        )
        with rich.progress.Progress(*columns, console=self._err) as progress:
            tid = progress.add_task(name, total=total, info="")

            def advance(step: int, info: str = "") -> None:
                progress.update(tid, completed=step, info=info)

            yield advance
            progress.update(tid, completed=total)

    def heading(self, text: str) -> None:
        """A section heading on stderr (with the progress bars)."""
        if self.quiet:
            return
        if self._err is not None:
            self._err.rule(f"[bold]{text}", align="left")
        else:
            print(f"\n== {text}", file=sys.stderr)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table on stdout; the first column is left-aligned, the others right."""
        if self._out is not None:
            t = rich.table.Table(title=title, title_justify="left", box=rich.box.SIMPLE_HEAD)
            first = max(len(str(r[0])) for r in [columns, *rows])
            for i, c in enumerate(columns):
                if i == 0:
                    t.add_column(c, justify="left", no_wrap=True, min_width=first)
                else:
                    t.add_column(c, justify="right", no_wrap=True)
            for r in rows:
                t.add_row(*(rich.text.Text(str(x)) for x in r))
            self._out.print(t)
            return
        widths = [max(len(str(x)) for x in col) for col in zip(columns, *rows)]
        print(f"\n{title}")
        for i, r in enumerate([columns, *rows]):
            cells = [
                str(x).ljust(w) if j == 0 else str(x).rjust(w)
                for j, (x, w) in enumerate(zip(r, widths))
            ]
            print("  " + "  ".join(cells))
            if i == 0:
                print("  " + "  ".join("-" * w for w in widths))

    def line(self, text: str, *, indent: int = 0, hanging: int = 0) -> None:
        """A paragraph on stdout, wrapped to the terminal (at most 100
        columns), indented by ``indent`` and its later lines by ``hanging``
        more."""
        width = min(100, self._out.width if self._out is not None else 80)
        lines = textwrap.wrap(
            text,
            width=max(40, width - 1),
            initial_indent=" " * indent,
            subsequent_indent=" " * (indent + hanging),
        ) or [""]
        for one in lines:
            if self._out is not None:
                self._out.print(one, markup=False, highlight=False, soft_wrap=True)
            else:
                print(one)
