"""The documentation site: built with warnings as errors, every example of
its guides and docstrings run and checked (sphinx.ext.doctest), and every
public name documented (docs/check_api.py).

The build writes the generated API pages and figures into docs/api and
docs/_generated (git-ignored) and the site into a temporary folder.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="docs/ is not in this tree")


def _sphinx(builder: str, out: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            builder,
            "-d",
            str(out / "doctrees"),
            str(DOCS),
            str(out / builder),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    proc = _sphinx("html", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_site_builds_without_warnings(site):
    html = site / "html"
    for page in ("index", "guides/quickstart", "guides/from_torch", "api/index", "cli"):
        assert (html / f"{page}.html").is_file(), page
    # the figures are the build's own
    assert (html / "_images").is_dir() and any((html / "_images").glob("*.png"))


def test_every_example_runs(site):
    proc = _sphinx("doctest", site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (site / "doctest" / "output.txt").read_text()
    assert "0 failures in tests" in report and "0 failures in setup code" in report, report
    # the guides' examples were found (a broken directive would run none)
    summary = re.search(r"Doctest summary\s*=+\s*(\d+) tests", report)
    assert summary and int(summary.group(1)) >= 50, report


def test_every_public_name_is_documented(site):
    proc = subprocess.run(
        [sys.executable, str(DOCS / "check_api.py"), str(site / "html")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
