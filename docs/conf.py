"""Sphinx configuration of the lec7rs documentation site.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html``; run
every example: ``sphinx-build -W -b doctest docs docs/_build/doctest``.
The API reference (``api/``) and the figures (``_generated/``) are written
at build time by ``_ext/lec7rs_docs.py``, from the installed package.
"""

from __future__ import annotations

import pathlib
import sys

import lec7rs

sys.path.insert(0, str(pathlib.Path(__file__).parent / "_ext"))

project = "lec7rs"
author = "the lec7rs developers"
copyright = "2026, the lec7rs developers"
release = lec7rs.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "lec7rs_docs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
templates_path = ["_templates"]
nitpicky = True
nitpick_ignore_regex = [
    # NumPy's and the standard library's types (their inventories are not
    # fetched: the build is offline)
    ("py:class", r"numpy\..*|ml_dtypes\..*|collections\..*|typing\..*|pathlib\..*"),
    # private bases of public classes (show-inheritance names them)
    ("py:class", r"lec7rs\..*\._\w+"),
]

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_inherit_docstrings = True
autosummary_generate = True
autosummary_imported_members = True

myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

doctest_global_setup = """
import numpy as np
import lec7rs
try:
    import torch
except ImportError:
    torch = None
"""
doctest_test_doctest_blocks = "default"

html_theme = "pydata_sphinx_theme"
html_title = f"lec7rs {release}"
html_theme_options = {
    "github_url": None,
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# the guides and the other top-level pages have no section to navigate:
# no empty left sidebar on them
html_sidebars = {
    page: [] for page in ("index", "guides/*", "cli", "examples", "low_precision", "developing")
}
html_static_path: list[str] = []
html_show_sourcelink = False
