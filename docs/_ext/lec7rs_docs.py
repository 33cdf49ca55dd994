"""Sphinx extension of the lec7rs docs: writes, at build time and from the
installed package, the API reference (``api/``: a page per public module,
an autosummary entry for every name of its ``__all__``) and the generated
material (``_generated/``: ``lec7rs demo --quick``'s figure and numbers,
``lec7rs bench --quick``'s chart and table, the command line's help).

Nothing of it is checked in: the pages and figures are those of the code
being documented. ``public_names()`` is also what ``docs/check_api.py``
walks to list anything public left undocumented.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import subprocess
import sys
import types

# The public modules, in the order their pages appear. A name exported by
# several modules is documented at the first one (lec7rs.Generator, not
# lec7rs.random.Generator).
MODULES = [
    "lec7rs",
    "lec7rs.optim",
    "lec7rs.optim.lr_scheduler",
    "lec7rs.optimize",
    "lec7rs.regularization",
    "lec7rs.augment",
    "lec7rs.random",
    "lec7rs.averaging",
    "lec7rs.checkpoint",
    "lec7rs.data",
    "lec7rs.distributed",
    "lec7rs.reference",
    "lec7rs.reference.random",
    "lec7rs.reference.augment",
    "lec7rs.reference.low_precision",
    "lec7rs.demo",
    "lec7rs.bench",
]

SUMMARY = {
    "lec7rs": "The package: the random stream, threads and SIMD level.",
    "lec7rs.optim": "Optimizers with torch.optim's arguments and rules; gradient clipping.",
    "lec7rs.optim.lr_scheduler": "torch.optim.lr_scheduler's schedules.",
    "lec7rs.optimize": "minimize and minimize_many: L-BFGS(-B), BFGS, Newton, trust-ncg.",
    "lec7rs.regularization": "Dropout, DropConnect, stochastic depth, fractional max pooling.",
    "lec7rs.augment": "Batched data augmentation with torchvision's semantics.",
    "lec7rs.random": "The counter-based Philox4x32-10 stream.",
    "lec7rs.averaging": "Polyak averaging and snapshot ensembles.",
    "lec7rs.checkpoint": "Atomic, checksummed training checkpoints.",
    "lec7rs.data": "The handwritten digits shipped with lec7rs.",
    "lec7rs.distributed": "Data-parallel training over MPI.",
    "lec7rs.reference": "The pure-NumPy references the tests compare against.",
    "lec7rs.reference.random": "Philox4x32-10 and the draws, in NumPy.",
    "lec7rs.reference.augment": "The augmentations, in NumPy.",
    "lec7rs.reference.low_precision": "bfloat16/float16 params and 8-bit state, in NumPy.",
    "lec7rs.demo": "The lecture on real data (``lec7rs demo``).",
    "lec7rs.bench": "The kernels' speed on this machine (``lec7rs bench``).",
}


def module_names(name: str) -> list[str]:
    """The names a public module exports: its ``__all__`` (every public
    module has one), or, for a module without, its public attributes
    defined in it."""
    mod = importlib.import_module(name)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [
            n
            for n, v in vars(mod).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == name
        ]
    return list(names)


def public_names() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for each public name, at the module where
    it is documented (the first of ``MODULES`` that exports it); public
    submodules have pages of their own and are left out."""
    seen: set[int] = set()
    out = []
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in module_names(modname):
            obj = getattr(mod, name)
            if isinstance(obj, types.ModuleType):
                continue
            key = id(obj)
            if key in seen and not isinstance(obj, (str, int, float, tuple, dict, list)):
                continue
            seen.add(key)
            out.append((modname, name, obj))
    return out


def data_doc(modname: str, name: str) -> list[str]:
    """The ``#:`` comment (or string after the assignment) of the data
    ``modname.name``, from the module that assigns it: ``modname`` or one
    of its submodules (``lec7rs.demo.EPOCHS`` is assigned in
    ``lec7rs.demo.context``). Empty when there is none."""
    from sphinx.pycode import ModuleAnalyzer

    mod = importlib.import_module(modname)
    candidates = [modname]
    if hasattr(mod, "__path__"):
        candidates += [m for m in sorted(sys.modules) if m.startswith(modname + ".")]
    for candidate in candidates:
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:  # a compiled module has no source to analyze
            continue
        if ("", name) in docs and getattr(sys.modules[candidate], name, None) is getattr(mod, name):
            return [line for line in docs[("", name)] if line is not None]
    return []


def _write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api(srcdir: pathlib.Path) -> None:
    api = srcdir / "api"
    by_module: dict[str, list[str]] = {m: [] for m in MODULES}
    for modname, name, _ in public_names():
        by_module[modname].append(name)
    index = [
        "API reference",
        "=============",
        "",
        "Every public name of lec7rs, generated from its docstring. A name is",
        "documented once, in the module it is usually imported from.",
        "",
        ".. list-table::",
        "   :widths: 35 65",
        "",
    ]
    for modname in MODULES:
        index += [f"   * - :mod:`{modname}`", f"     - {SUMMARY[modname]}"]
    index += ["", ".. toctree::", "   :hidden:", ""]
    index += [f"   {m}" for m in MODULES]
    _write(api / "index.rst", "\n".join(index) + "\n")
    for modname in MODULES:
        lines = [
            modname,
            "=" * len(modname),
            "",
            f".. automodule:: {modname}",
            "   :no-members:",
            "",
            f".. currentmodule:: {modname}",
            "",
        ]
        names = by_module[modname]
        if names:
            lines += [".. autosummary::", "   :toctree: generated", "", *[f"   {n}" for n in names]]
        _write(api / f"{modname}.rst", "\n".join(lines) + "\n")


def _run(args: list[str], out: pathlib.Path | None = None, env: dict | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "lec7rs", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "88", **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"lec7rs {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    if out is not None:
        _write(out, proc.stdout)
    return proc.stdout


def _bench_table(res: dict) -> str:
    from lec7rs import bench

    columns, rows = bench.table(res)
    env = res["environment"]
    head = (
        f"Measured by `lec7rs bench --quick` while this site was built: lec7rs "
        f"{env['lec7rs']}, SIMD level `{env['simd_level']}`, "
        f"{env.get('cpu') or env.get('machine') or 'this machine'}. Nanoseconds per element, "
        "and each baseline's speed-up (its time / lec7rs's time).\n\n"
    )
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return head + "\n".join(lines) + "\n"


def write_generated(srcdir: pathlib.Path, figures: bool) -> None:
    gen = srcdir / "_generated"
    gen.mkdir(exist_ok=True)
    _run(["--help"], gen / "help_main.txt")
    for command in ("info", "demo", "bench"):
        _run([command, "--help"], gen / f"help_{command}.txt")
    done = gen / "demo" / "summary.png"
    if figures or not done.exists() or not (gen / "bench_table.md").exists():
        _run(["demo", "--quick", "--out", str(gen / "demo")], gen / "demo_output.txt")
        res = json.loads(_run(["bench", "--quick", "--json", "--plot", str(gen / "bench.png")]))
        _write(gen / "bench.json", json.dumps(res, indent=1))
        _write(gen / "bench_table.md", _bench_table(res))


def _config_inited(app, config) -> None:
    # before Sphinx lists the source files, so that the pages are read and
    # autosummary generates their entries' stubs
    write_api(pathlib.Path(app.srcdir))


def _builder_inited(app) -> None:
    srcdir = pathlib.Path(app.srcdir)
    # the html build regenerates the figures; others (doctest) reuse them
    write_generated(srcdir, figures=app.builder.name == "html")


def _data_docstring(app, what, name, obj, options, lines) -> None:
    # autodoc falls back to the docstring of the value's type (dict, int)
    # for data assigned in a submodule; show the data's own comment instead
    if what not in ("data", "attribute") or "." not in name:
        return
    modname, _, attr = name.rpartition(".")
    if modname in MODULES:
        own = data_doc(modname, attr)
        type_doc = (type(obj).__doc__ or "").strip().splitlines()
        if own or [line.strip() for line in lines if line.strip()][:1] == type_doc[:1]:
            lines[:] = own


def _numpy_sections(app, what, name, obj, options, lines) -> None:
    # A docstring with NumPy-style sections ("Parameters" underlined with
    # dashes) gets them as field lists, types as plain text (not
    # cross-references); every other docstring is plain reStructuredText.
    if what not in ("function", "method", "class") or not any(
        line.strip() and set(line.strip()) == {"-"} for line in lines
    ):
        return
    from sphinx.ext.napoleon import Config
    from sphinx.ext.napoleon.docstring import NumpyDocstring

    config = Config(napoleon_use_param=False, napoleon_use_rtype=False, napoleon_use_ivar=True)
    lines[:] = NumpyDocstring(lines, config, app, what, name, obj, options).lines()


def _skip_member(app, what, name, obj, skip, options):
    # members documented by the class itself: no dataclass/NamedTuple
    # machinery and no private helpers
    if name.startswith("_") and name not in ("__call__",):
        return True
    return None


def setup(app):
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _data_docstring)
    app.connect("autodoc-process-docstring", _numpy_sections)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


__all__ = ["MODULES", "data_doc", "module_names", "public_names", "setup"]
