"""What every part of the demo gets: the settings, the data and the output."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .._console import Reporter
from .data import Digits, load
from .model import TwoLayerNet
from .train import steps_per_epoch

#: Epochs per training run of ``lec7rs demo``.
EPOCHS = 30
#: Epochs per training run of ``lec7rs demo --quick``.
QUICK_EPOCHS = 8


def describe(cls, hyper: dict) -> str:
    """``Adam(lr=0.001)``: an optimizer class and its hyperparameters, for display."""
    return f"{cls.__name__}({', '.join(f'{k}={v}' for k, v in hyper.items())})"


def verdict_line(short_claim: str, res: dict) -> str:
    """A panel's last title line: the lecture's claim and whether it held."""
    mark = "reproduced" if res["verdict"]["reproduced"] else "NOT reproduced here"
    return f"lecture: {short_claim} -> {mark}"


@dataclass(frozen=True)
class Config:
    """The settings shared by the parts.

    ``epochs``: passes over the whole training split of every run on it
    (at that run's batch size: ``batch_size``, or part 3's and part 5's
    16). A run on a smaller training set (parts 4 and 6) makes as many
    steps as ``epochs`` epochs of the whole split at ``batch_size``, so
    that it has the same budget of updates.
    """

    #: The seed of every draw (initialization, batches, dropout, augmentation).
    seed: int = 0
    #: Short runs: ``QUICK_EPOCHS`` epochs unless ``epochs`` is given.
    quick: bool = False
    #: Passes over the whole training split per run (see above).
    epochs: int = EPOCHS
    #: Minibatch size of the parts that do not set their own.
    batch_size: int = 64
    #: Hidden units of the two-layer net.
    hidden: int = 128
    #: L2 weight penalty of the loss.
    reg: float = 1e-4


@dataclass
class Context:
    config: Config
    data: Digits
    reporter: Reporter

    @classmethod
    def create(cls, config: Config, reporter: Reporter) -> Context:
        return cls(config, load(config.seed), reporter)

    @property
    def steps(self) -> int:
        """Steps of one training run (``epochs`` of the full training split)."""
        return self.config.epochs * self.steps_per_epoch

    @property
    def steps_per_epoch(self) -> int:
        return steps_per_epoch(len(self.data.train), self.config.batch_size)

    def net(self, *, seed_offset: int = 0, num_classes: int = 10, **kw) -> TwoLayerNet:
        """A fresh net; the same ``seed_offset`` gives the same initialization."""
        kw.setdefault("hidden_dim", self.config.hidden)
        kw.setdefault("reg", self.config.reg)
        return TwoLayerNet(64, num_classes=num_classes, seed=self.config.seed + seed_offset, **kw)

    def settings(self) -> dict:
        return asdict(self.config)
