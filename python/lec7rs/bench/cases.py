"""The kernels ``lec7rs bench`` times, each with the baselines it is
compared with.

``CASES`` maps a kernel's name to a :class:`Case`. ``Case.setup(n)``
builds the inputs for ``n`` elements and returns ``{implementation: call}``:
``"lec7rs"`` always, ``"numpy"`` always, and ``"torch"``, ``"scipy"`` or
``"albumentations"`` where that package is importable. A call does one
step (or one batch) on inputs it keeps, so repeated calls measure the
steady state.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import optim, regularization
from .. import reference as ref
from ..optimize import LbfgsInvHessProduct
from ..random import Generator

Setup = Callable[[int], dict]

#: Optional packages compared against, with the names shown in the table.
OPTIONAL = {"torch": "PyTorch", "scipy": "SciPy", "albumentations": "albumentations"}


def optional(name: str) -> Any:
    """The module ``name`` if it imports, else None (never required)."""
    try:
        return importlib.import_module(name)
    except Exception:  # ImportError, or a broken install
        return None


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    dtype: str
    sizes: tuple
    quick_sizes: tuple
    baselines: dict
    setup: Setup
    #: The module the kernel needs, if it is optional in this build.
    needs: str | None = None
    #: "elements" per call for n (crops: n images of 32x32x3).
    elements: Callable[[int], int] = lambda n: n


def _guarded(build: Callable[[], Callable]) -> Callable:
    """The call that ``build()`` makes, or, if building fails, a call that
    raises its error: a broken optional package shows up as an error in the
    results, it does not stop the bench."""
    try:
        return build()
    except Exception as e:
        message = f"setup failed: {type(e).__name__}: {e}"

        def failed() -> None:
            raise RuntimeError(message)

        return failed


def _vectors(n: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(dtype)
    g = (rng.standard_normal(n) * 1e-3).astype(dtype)
    return p, g


def _optimizer(
    lec7rs_cls, torch_name: str | None, ref_rule, hyper: dict, matrix: bool = False
) -> Setup:
    """An optimizer's step against its NumPy reference and, if ``torch_name``
    names one, ``torch.optim``'s; ``matrix``: on a (n / 256, 256) matrix
    instead of a vector (Muon takes matrices only)."""

    def setup(n: int) -> dict:
        p, g = _vectors(n, np.float32)
        if matrix:
            rows = max(1, n // 256)
            p, g = p[: rows * 256].reshape(rows, 256), g[: rows * 256].reshape(rows, 256)
        opt = lec7rs_cls([p], **hyper)
        impl = {"lec7rs": lambda: opt.step([g])}
        state = {"p": p.copy(), "s": None}

        def numpy_step() -> None:
            state["p"], state["s"] = ref_rule(state["p"], g, state["s"], **hyper)

        impl["numpy"] = numpy_step
        torch = optional("torch") if torch_name else None
        if torch is not None:

            def build() -> Callable:
                tp = torch.from_numpy(p.copy()).requires_grad_()
                tp.grad = torch.from_numpy(g.copy())
                return getattr(torch.optim, torch_name)([tp], **hyper).step

            impl["torch"] = _guarded(build)
        return impl

    return setup


def _dropout(n: int) -> dict:
    x, _ = _vectors(n, np.float32)
    gen = Generator(0)
    rng = np.random.default_rng(0)
    p = 0.5

    def numpy_dropout() -> np.ndarray:
        mask = rng.random(x.shape, dtype=np.float32) >= p
        return x * mask / np.float32(1 - p)

    impl = {
        "lec7rs": lambda: regularization.dropout(x, p, rng=gen),
        "numpy": numpy_dropout,
    }
    torch = optional("torch")
    if torch is not None:

        def build() -> Callable:
            tx = torch.from_numpy(x.copy())
            return lambda: torch.nn.functional.dropout(tx, p, training=True)

        impl["torch"] = _guarded(build)
    return impl


def _two_loop(n: int) -> dict:
    m = 10
    rng = np.random.default_rng(0)
    s = [rng.standard_normal(n) for _ in range(m)]
    y = [si * (1.0 + rng.random(n)) for si in s]  # s'y > 0
    v = rng.standard_normal(n)
    op = LbfgsInvHessProduct(s, y)
    impl = {
        "lec7rs": lambda: op.matvec(v),
        "numpy": lambda: ref.lbfgs_two_loop(s, y, v),
    }
    scipy_optimize = optional("scipy.optimize")
    if scipy_optimize is not None:

        def build() -> Callable:
            sp = scipy_optimize.LbfgsInvHessProduct(np.array(s), np.array(y))
            return lambda: sp.matvec(v)

        impl["scipy"] = _guarded(build)
    return impl


CROP, PAD = 32, 4


def _crop(n: int) -> dict:
    augment = importlib.import_module("lec7rs.augment")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, CROP, CROP, 3), dtype=np.uint8)
    gen = Generator(0)

    def numpy_crop() -> np.ndarray:
        padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
        top = rng.integers(0, 2 * PAD + 1, size=n)
        left = rng.integers(0, 2 * PAD + 1, size=n)
        rows = (top[:, None] + np.arange(CROP))[:, :, None]
        cols = (left[:, None] + np.arange(CROP))[:, None, :]
        return padded[np.arange(n)[:, None, None], rows, cols]

    impl = {
        "lec7rs": lambda: augment.random_crop(images, CROP, rng=gen, padding=PAD),
        "numpy": numpy_crop,
    }
    albu = optional("albumentations")
    if albu is not None:

        def build() -> Callable:
            side = CROP + 2 * PAD
            pipeline = albu.Compose(
                [
                    albu.PadIfNeeded(min_height=side, min_width=side, border_mode=0),
                    albu.RandomCrop(height=CROP, width=CROP),
                ]
            )
            return lambda: [pipeline(image=im)["image"] for im in images]

        impl["albumentations"] = _guarded(build)
    return impl


_ADAM = {"lr": 1e-3}
#: Kernel name -> its ``Case`` (sizes, set-up, the implementations): what
#: ``lec7rs bench`` times.
CASES = {
    "adam": Case(
        "adam",
        "one Adam step on a float32 vector",
        "float32",
        (10_000, 1_000_000, 10_000_000),
        (100_000,),
        {"numpy": "lec7rs.reference.torch_adam", "torch": "torch.optim.Adam"},
        _optimizer(optim.Adam, "Adam", ref.torch_adam, _ADAM),
    ),
    "sgd_momentum": Case(
        "sgd_momentum",
        "one SGD step with momentum 0.9 on a float32 vector",
        "float32",
        (10_000, 1_000_000, 10_000_000),
        (100_000,),
        {"numpy": "lec7rs.reference.torch_sgd", "torch": "torch.optim.SGD"},
        _optimizer(optim.SGD, "SGD", ref.torch_sgd, {"lr": 1e-2, "momentum": 0.9}),
    ),
    "adagrad": Case(
        "adagrad",
        "one Adagrad step on a float32 vector",
        "float32",
        (10_000, 1_000_000, 10_000_000),
        (100_000,),
        {"numpy": "lec7rs.reference.torch_adagrad", "torch": "torch.optim.Adagrad"},
        _optimizer(optim.Adagrad, "Adagrad", ref.torch_adagrad, {"lr": 1e-2}),
    ),
    "rmsprop": Case(
        "rmsprop",
        "one RMSprop step on a float32 vector",
        "float32",
        (10_000, 1_000_000, 10_000_000),
        (100_000,),
        {"numpy": "lec7rs.reference.torch_rmsprop", "torch": "torch.optim.RMSprop"},
        _optimizer(optim.RMSprop, "RMSprop", ref.torch_rmsprop, {"lr": 1e-2}),
    ),
    **{
        name: Case(
            name,
            f"one {cls.__name__} step on a float32 vector",
            "float32",
            (10_000, 1_000_000, 10_000_000),
            (100_000,),
            {
                "numpy": f"lec7rs.reference.{rule.__name__}",
                **({"torch": f"torch.optim.{torch_name}"} if torch_name else {}),
            },
            _optimizer(cls, torch_name, rule, hyper, matrix=name == "muon"),
        )
        for name, cls, torch_name, rule, hyper in [
            ("adamw", optim.AdamW, "AdamW", ref.torch_adamw, {"lr": 1e-3}),
            ("nadam", optim.NAdam, "NAdam", ref.torch_nadam, {"lr": 2e-3}),
            ("radam", optim.RAdam, "RAdam", ref.torch_radam, {"lr": 1e-3}),
            ("adamax", optim.Adamax, "Adamax", ref.torch_adamax, {"lr": 2e-3}),
            ("adadelta", optim.Adadelta, "Adadelta", ref.torch_adadelta, {"lr": 1.0}),
            ("rprop", optim.Rprop, "Rprop", ref.torch_rprop, {"lr": 1e-2}),
            ("asgd", optim.ASGD, "ASGD", ref.torch_asgd, {"lr": 1e-2}),
            ("lion", optim.Lion, None, ref.lion, {"lr": 1e-4}),
            ("lamb", optim.LAMB, None, ref.lamb, {"lr": 1e-3}),
            ("lars", optim.LARS, None, ref.lars, {"lr": 0.1}),
            (
                "schedulefreeadamw",
                optim.ScheduleFreeAdamW,
                None,
                ref.schedule_free_adamw,
                {"lr": 2.5e-3},
            ),
            ("schedulefreesgd", optim.ScheduleFreeSGD, None, ref.schedule_free_sgd, {"lr": 1.0}),
            ("adafactor", optim.Adafactor, "Adafactor", ref.torch_adafactor, {"lr": 1e-2}),
            ("muon", optim.Muon, "Muon", ref.torch_muon, {"lr": 1e-3}),
        ]
    },
    "lbfgs_two_loop": Case(
        "lbfgs_two_loop",
        "the L-BFGS two-loop recursion H v, m = 10 pairs, float64",
        "float64",
        (10_000, 100_000, 1_000_000),
        (100_000,),
        {
            "numpy": "lec7rs.reference.lbfgs_two_loop",
            "scipy": "scipy.optimize.LbfgsInvHessProduct.matvec",
        },
        _two_loop,
    ),
    "dropout": Case(
        "dropout",
        "inverted dropout, p = 0.5, float32 (new output and mask)",
        "float32",
        (10_000, 1_000_000, 10_000_000),
        (100_000,),
        {
            "numpy": "numpy.random mask: x * (u >= p) / (1 - p)",
            "torch": "torch.nn.functional.dropout",
        },
        _dropout,
    ),
    "random_crop": Case(
        "random_crop",
        f"random crop of uint8 {CROP}x{CROP}x3 images padded by {PAD} (NHWC)",
        "uint8",
        (64, 512, 4096),
        (128,),
        {
            "numpy": "numpy: np.pad + fancy indexing",
            "albumentations": "PadIfNeeded + RandomCrop, image by image",
        },
        _crop,
        needs="lec7rs.augment",
        elements=lambda n: n * CROP * CROP * 3,
    ),
}
