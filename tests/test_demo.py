"""`lec7rs demo --quick`: runs end to end, writes a valid PNG and a JSON
whose numbers reproduce the lecture's basic claims; bad command-line input
is a one-line error with exit code 2."""

from __future__ import annotations

import hashlib
import importlib
import json
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
from lec7rs.data import load_digits

DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def lec7rs_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lec7rs", *args], capture_output=True, text=True, timeout=timeout
    )


def has(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# Part 4 needs lec7rs.augment; a build without it runs the other parts.
PARTS = [1, 2, 3, 4, 5, 6] if has("lec7rs.augment") else [1, 2, 3, 5, 6]


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> tuple[subprocess.CompletedProcess, pathlib.Path]:
    pytest.importorskip("matplotlib", reason="lec7rs demo needs matplotlib (the demo extra)")
    out = tmp_path_factory.mktemp("demo") / "out"
    parts = ",".join(map(str, PARTS))
    return lec7rs_cli("demo", "--quick", "--parts", parts, "--out", str(out)), out


def test_shipped_digits_are_scikit_learns():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and set(np.unique(labels)) == set(range(10))
    assert images.max() == 16
    digest = hashlib.sha256(images.tobytes() + labels.astype(np.uint8).tobytes()).hexdigest()
    assert digest == DIGITS_SHA256


def test_quick_demo_exits_0_and_writes_a_png(quick):
    proc, out = quick
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = (out / "summary.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1000 and height >= 1000
    from matplotlib.image import imread

    pixels = imread(out / "summary.png")
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.05  # drawn, not blank


def test_quick_demo_json_is_sane(quick):
    proc, out = quick
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    parts = res["parts"]
    assert [p["part"] for p in parts.values()] == PARTS
    for p in parts.values():
        assert isinstance(p["verdict"]["reproduced"], bool)
        assert p["verdict"]["measured"]
        assert p["part"] == 2 or p["seconds"] > 0

    runs = parts["1_optimizers"]["runs"]
    assert set(runs) == {
        "SGD", "SGD+momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam", "AdamW", "L-BFGS",
        "Lion", "Schedule-free AdamW",
    }  # fmt: skip
    for name, run in runs.items():
        final = run["final"]
        assert all(np.isfinite(v) for v in final.values()), name
        assert 0 <= final["val_acc"] <= 1, name
    assert runs["Adam"]["final"]["val_acc"] >= 0.90
    assert runs["SGD+momentum"]["final"]["val_acc"] >= 0.90
    # Momentum vs plain SGD at the same lr: lower loss after each of the first epochs.
    sgd, momentum = runs["SGD"], runs["SGD+momentum"]
    assert sgd["hyperparameters"]["lr"] == momentum["hyperparameters"]["lr"]
    assert momentum["hyperparameters"]["momentum"] > 0
    assert sgd["history"]["epoch"][1:4] == [1.0, 2.0, 3.0]
    assert all(
        m < s
        for m, s in zip(momentum["history"]["train_loss"][1:4], sgd["history"]["train_loss"][1:4])
    )
    # Training went somewhere: every optimizer lowered the loss.
    for name, run in runs.items():
        assert run["history"]["train_loss"][-1] < run["history"]["train_loss"][0], name

    transfer = parts["6_transfer"]
    assert transfer["frozen_unchanged"] is True
    assert transfer["frozen_max_abs_change"] == 0
    for setting in transfer["settings"].values():
        for fit in setting["runs"]["linear on frozen features"]["fits"]:
            assert fit["backbone_unchanged"] is True
        # The check can fail: the same layer does move when it is not frozen.
        for fit in setting["runs"]["fine-tune all layers"]["fits"]:
            assert fit["backbone_max_abs_change"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--parts", "1,7"], "unknown part '7'"),
        (["demo", "--epochs", "-2"], "epochs must be >= 1"),
        (["demo", "--parts", "2", "--out", "{file}/out"], "cannot write to --out"),
        (["bench", "--threads", "0"], "threads must be >= 1"),
    ],
)
def test_bad_command_line_input_is_a_one_line_error(tmp_path, args, message):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    proc = lec7rs_cli(*(a.format(file=a_file) for a in args), timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"lec7rs {args[0]}: error: ")
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
