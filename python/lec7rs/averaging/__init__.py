"""Averaging over training: ``PolyakAverage`` (running mean or exponential
moving average of the params, one Rust call per update) and
``SnapshotEnsemble`` (average the predictions of snapshots of one run)."""

from .polyak import PolyakAverage
from .snapshot import SnapshotEnsemble

__all__ = ["PolyakAverage", "SnapshotEnsemble"]
