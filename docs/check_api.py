"""Lists every public name of lec7rs that the built site leaves
undocumented, and fails if there is one.

    python docs/check_api.py docs/_build/html

A public name is each entry of a public module's ``__all__`` (the modules
of ``_ext/lec7rs_docs.MODULES``) and each public method, property and
attribute of a public class. Each must have a docstring of its own (a
method may inherit its base class's) and an entry in the site's
``objects.inv`` (so a page documents it and cross-references resolve).
Data (constants) need a ``#:`` comment or docstring, which shows as text
under its entry on its page.
"""

from __future__ import annotations

import inspect
import pathlib
import re
import sys
import zlib

sys.path.insert(0, str(pathlib.Path(__file__).parent / "_ext"))

from lec7rs_docs import data_doc, public_names


def inventory(site: pathlib.Path) -> set[str]:
    """The Python object names in the site's objects.inv."""
    raw = (site / "objects.inv").read_bytes()
    # four header lines, then the zlib-compressed entries
    body = raw.split(b"\n", 4)[4]
    names = set()
    for line in zlib.decompress(body).decode().splitlines():
        m = re.match(r"(\S+)\s+py:\w+\s", line)
        if m:
            names.add(m.group(1))
    return names


def attribute_doc(owner: type, name: str) -> bool:
    """Whether the class attribute ``owner.name`` has a ``#:`` comment or a
    docstring after its assignment."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        docs = ModuleAnalyzer.for_module(owner.__module__).find_attr_docs()
    except Exception:
        return False
    return any(line.strip() for line in docs.get((owner.__qualname__, name), []))


def members(cls: type) -> list[tuple[str, type, object]]:
    """``(name, owner, raw value)`` of the public members lec7rs defines on
    ``cls`` or its lec7rs bases."""
    out = []
    for name, _ in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not owner.__module__.startswith("lec7rs"):
            continue
        out.append((name, owner, vars(owner)[name]))
    return out


def missing(site: pathlib.Path) -> list[str]:
    inv = inventory(site)
    problems = []
    for modname, name, obj in public_names():
        qual = f"{modname}.{name}"
        if qual not in inv:
            problems.append(f"{qual}: no entry in the site")
        if inspect.isclass(obj) or inspect.isroutine(obj):
            own = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
            if not (own or "").strip():
                problems.append(f"{qual}: no docstring")
        elif not data_doc(modname, name):
            problems.append(f"{qual}: no #: comment or docstring")
        if inspect.isclass(obj):
            for mname, owner, value in members(obj):
                mqual = f"{qual}.{mname}"
                if mqual not in inv:
                    problems.append(f"{mqual}: no entry in the site")
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                if callable(value) or isinstance(value, property):
                    documented = bool((inspect.getdoc(getattr(obj, mname)) or "").strip())
                else:
                    documented = attribute_doc(owner, mname)
                if not documented:
                    problems.append(f"{mqual}: no docstring")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    problems = missing(pathlib.Path(argv[0]))
    for p in problems:
        print(p)
    count = len(public_names())
    if problems:
        print(f"{len(problems)} public names undocumented", file=sys.stderr)
        return 1
    print(f"all {count} public names (and their classes' members) are documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
