"""The PEP 517 build backend of lec7rs: maturin, behind a Rust check.

Building lec7rs from source compiles its Rust core, so it needs a Rust
toolchain (cargo). Without one, maturin's own backend would try to download
a toolchain into a temporary folder, and fail with a message about that
download when the network or the platform does not allow it. This wrapper
fails first, with a message that says what is missing and how to get it.
Everything else is maturin's backend, unchanged.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import maturin

_MESSAGE = """
lec7rs: building from source needs a Rust toolchain, and none was found
(no `cargo` on PATH). lec7rs's core is written in Rust and compiled during
installation. Install Rust (https://rustup.rs, or your system's package
manager, e.g. `apt install cargo`), make sure `cargo --version` works in this
shell, then run the installation again. Or install a prebuilt lec7rs wheel.
"""


def _require_rust() -> None:
    cargo = os.environ.get("CARGO") or shutil.which("cargo")
    ok = False
    if cargo:
        try:
            out = subprocess.run([cargo, "--version"], capture_output=True, text=True)
            ok = out.returncode == 0 and "cargo" in out.stdout
        except OSError:
            ok = False
    if not ok:
        sys.stderr.write(_MESSAGE)
        sys.stderr.flush()
        raise SystemExit("lec7rs needs Rust (cargo) to build from source: https://rustup.rs")


def get_requires_for_build_wheel(config_settings=None):
    _require_rust()
    return maturin.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings=None):
    _require_rust()
    return maturin.get_requires_for_build_editable(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    _require_rust()
    return maturin.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _require_rust()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _require_rust()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _require_rust()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    _require_rust()
    return maturin.build_sdist(sdist_directory, config_settings)
