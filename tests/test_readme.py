"""The README starts with the two set-up commands, and CI runs the second."""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def commands():
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("not run from a source checkout")
    text = readme.read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_has_exactly_two_setup_commands():
    install, test = commands()
    assert install.startswith(("pip install .", 'pip install ".')) and "lec7rs " in install
    assert test.startswith('pip install ".[test]"')


def test_ci_runs_the_readme_test_command():
    _, test = commands()
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()
