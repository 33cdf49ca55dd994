"""The digits, split and prepared for the demo's network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data import load_digits

#: Validation images per class (the rest of each class is for training).
VAL_PER_CLASS = 50


@dataclass(frozen=True)
class Split:
    """Images and labels of one split. ``images`` are float32 NHWC
    ``(N, 8, 8, 1)`` in [0, 1] (pixel counts / 16), the form augmentations
    take; ``features(images)`` turns them into the net's input."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Split:
        return Split(np.ascontiguousarray(self.images[index]), self.labels[index])

    def classes(self, classes: tuple[int, ...], *, relabel: bool = True) -> Split:
        """The images of ``classes`` only; labels renumbered 0..k-1 in that
        order when ``relabel``."""
        keep = np.isin(self.labels, classes)
        labels = self.labels[keep]
        if relabel:
            labels = np.searchsorted(np.asarray(classes), labels)
        return Split(np.ascontiguousarray(self.images[keep]), labels)

    def per_class(self, n: int, rng: np.random.Generator) -> Split:
        """``n`` images of each class, drawn at random (a small training set)."""
        index = np.concatenate(
            [rng.choice(np.flatnonzero(self.labels == c), n, replace=False) for c in self.label_set]
        )
        return self.take(np.sort(index))

    @property
    def label_set(self) -> np.ndarray:
        return np.unique(self.labels)


@dataclass(frozen=True)
class Digits:
    """The train and validation splits and the input normalization.

    ``features(images)`` flattens images to 64 values and subtracts the
    per-pixel mean of the training images (cs231n's preprocessing)."""

    train: Split
    val: Split
    mean: np.ndarray

    def features(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1) - self.mean


def load(seed: int) -> Digits:
    """The 1797 digits split at random (seeded) into ``VAL_PER_CLASS``
    validation images per class and the rest for training (1297)."""
    images, labels = load_digits()
    x = (images.astype(np.float32) / np.float32(16.0))[..., None]
    rng = np.random.default_rng([seed, 0])
    val = np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), VAL_PER_CLASS, replace=False) for c in range(10)]
    )
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val] = True
    train = Split(np.ascontiguousarray(x[~is_val]), labels[~is_val])
    valid = Split(np.ascontiguousarray(x[is_val]), labels[is_val])
    mean = train.images.reshape(len(train), -1).mean(axis=0, dtype=np.float64).astype(np.float32)
    return Digits(train, valid, mean)
