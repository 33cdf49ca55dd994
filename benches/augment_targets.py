"""The speed targets of the augmentation issue, side by side in one run.

    python benches/augment_targets.py           # 256 images 224x224x3 uint8
    python benches/augment_targets.py --quick   # 64 images, fewer repeats

Images per second on a batch of 256 uint8 images 224x224x3 (NHWC), at 1 and
2 threads, for ``random_resized_crop(x, 224)`` (scale (0.08, 1), ratio
(3/4, 4/3)) and ``color_jitter(x, brightness=0.4, contrast=0.4,
saturation=0.4, hue=0.1)``; the issue's targets at 1 thread are 4,300 and
1,000 images/s (albumentations' published single-thread figures) and at
least albumentations' own rate measured here, when it is importable (twice
it for the resized crop: the AVX2 issue's target).

Like with like: albumentations (``pip install albumentations``, not a
dependency of lec7rs) runs ``A.RandomResizedCrop(size=(224, 224))`` and
``A.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)``
with ``p=1``, the same factor ranges and random order, image by image as
it is used in a data loader, with OpenCV limited to the same thread count
(``cv2.setNumThreads``). Its resized crop is OpenCV's bilinear
(``INTER_LINEAR``), so lec7rs is timed both with its default
(``antialias=True``, torchvision v2's) and ``antialias=False``; at this
size every crop is an upscale, where the two filters are the same.
lec7rs writes into a reused ``out=`` array and also allocates a new one
(its default). The NumPy references (``lec7rs.reference.augment``) run on 16
images (they loop in Python). Flips and crops are printed for information
against NumPy slicing. Times are the best of several repeats.
"""

from __future__ import annotations

import argparse
import os
import sys

import lec7rs
import numpy as np
from lec7rs import augment as A
from lec7rs.reference import augment as RA
from lec7rs.reference import random as ref_random
from targets import best_of

JITTER = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}


def albumentations_pipelines():
    try:
        import albumentations as alb
        import cv2
    except ImportError:
        return None
    return (
        alb,
        cv2,
        {
            "resized crop": alb.RandomResizedCrop(size=(224, 224), p=1.0),
            "colour jitter": alb.ColorJitter(**JITTER, p=1.0),
        },
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    n = 64 if args.quick else 256
    reps = 2 if args.quick else args.reps
    x = np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)
    alb = albumentations_pipelines()
    print(
        f"lec7rs {lec7rs.__version__}  simd={lec7rs.simd_level()}  numpy {np.__version__}  "
        f"cpus={os.cpu_count()}  batch={x.shape} uint8  "
        + (f"albumentations {alb[0].__version__} (OpenCV {alb[1].__version__})" if alb else "")
    )
    if alb is None:
        print("albumentations is not importable: its rows are skipped")

    g = lec7rs.Generator(0)
    out = np.empty_like(x)
    ours = {
        "resized crop": (
            lambda: A.random_resized_crop(x, 224, rng=g, out=out),
            lambda: A.random_resized_crop(x, 224, rng=g),
        ),
        "resized crop, antialias=False": (
            lambda: A.random_resized_crop(x, 224, rng=g, antialias=False, out=out),
            None,
        ),
        "colour jitter": (
            lambda: A.color_jitter(x, rng=g, **JITTER, out=out),
            lambda: A.color_jitter(x, rng=g, **JITTER),
        ),
        "flip": (lambda: A.random_flip(x, rng=g, out=out), None),
        "crop 224, padding 16 reflect": (
            lambda: A.random_crop(x, 224, rng=g, padding=16, pad_mode="reflect", out=out),
            None,
        ),
    }
    goals = {"resized crop": 4300.0, "colour jitter": 1000.0}
    # Times albumentations' rate (the resized crop's from the AVX2 issue).
    factors = {"resized crop": 2.0, "colour jitter": 1.0}

    rows = []

    def row(what, rate, base, goal=None, ok=None):
        rows.append(
            (
                what,
                f"{rate:,.0f} img/s",
                base,
                "" if goal is None else goal,
                "" if ok is None else ("yes" if ok else "NO"),
            )
        )

    # References and NumPy slicing: single-threaded, measured once.
    k = 16
    xs = x[:k]
    r = ref_random.Generator(0)
    t_ref = {
        "resized crop": best_of(lambda: RA.random_resized_crop(xs, (224, 224), rng=r), 1) / k,
        "colour jitter": best_of(lambda: RA.color_jitter(xs, rng=r, **JITTER), 1) / k,
        "flip": best_of(lambda: np.ascontiguousarray(x[:, :, ::-1]), reps) / n,
        "crop 224, padding 16 reflect": best_of(
            lambda: np.pad(x, [(0, 0), (16, 16), (16, 16), (0, 0)], mode="reflect")[
                :, 5:229, 7:231
            ].copy(),
            reps,
        )
        / n,
    }
    t_ref["resized crop, antialias=False"] = t_ref["resized crop"]
    baseline = {
        "resized crop": "reference",
        "colour jitter": "reference",
        "flip": "np x[:, :, ::-1] copy",
        "crop 224, padding 16 reflect": "np.pad + slice",
    }

    before = lec7rs.get_num_threads()
    for threads in (1, 2):
        lec7rs.set_num_threads(threads)
        t_alb = {}
        if alb is not None:
            alb[1].setNumThreads(threads)
            for name, t in alb[2].items():
                t_alb[name] = best_of(lambda t=t: [t(image=img)["image"] for img in x], reps) / n
                row(f"albumentations {name}, cv2 {threads} thr", 1 / t_alb[name], "")
        for name, (with_out, new) in ours.items():
            t = best_of(with_out, reps) / n
            base = name.split(",")[0]
            ref_name = baseline.get(name, baseline.get(base, "reference"))
            info = f"{t_ref[name] / t:,.0f}x {ref_name}"
            if base in t_alb:
                info += f", {t_alb[base] / t:.1f}x albumentations"
            goal = ok = None
            if threads == 1 and name in goals:
                factor = factors[name]
                vs = "albumentations" if factor == 1 else f"{factor:g}x albumentations"
                goal = f">= {goals[name]:,.0f} img/s" + (f" and {vs}" if t_alb else "")
                ok = 1 / t >= goals[name] and (name not in t_alb or factor * t <= t_alb[name])
            row(f"lec7rs {name}, out=, {threads} thr", 1 / t, info, goal, ok)
            if new is not None:
                t_new = best_of(new, reps) / n
                row(f"lec7rs {name}, new array, {threads} thr", 1 / t_new, "")
    lec7rs.set_num_threads(before)
    for name in ("resized crop", "colour jitter"):
        row(f"NumPy reference {name} (16 images)", 1 / t_ref[name], "")

    head = ("what", "rate", "vs", "goal (1 thread)", "met")
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for r_ in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r_, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
