"""Small data sets shipped inside the package (no download at run time).

``load_digits()``: the handwritten digits of scikit-learn's
``sklearn.datasets.load_digits`` (a copy of the test set of the UCI
"Optical Recognition of Handwritten Digits" data, Alpaydin & Kaynak 1998),
1797 grayscale 8x8 images with integer pixels 0..16 and their labels 0..9.
Provenance and licence: ``README.md`` in this folder.
"""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["load_digits"]

_DIGITS = pathlib.Path(__file__).resolve().parent / "digits.npz"


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: ``images`` a uint8 array of shape ``(1797, 8, 8)``
    with values 0..16 (the count of "on" pixels in a 4x4 block of the 32x32
    original), ``labels`` an int64 array of shape ``(1797,)`` with values
    0..9, in scikit-learn's order (``load_digits().images`` and ``.target``)."""
    with np.load(_DIGITS) as z:
        images = np.ascontiguousarray(z["images"], dtype=np.uint8)
        labels = z["labels"].astype(np.int64)
    return images, labels
