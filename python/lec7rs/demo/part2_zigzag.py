"""Part 2: why plain SGD struggles, on two functions of two variables.

- An ill-conditioned quadratic ``f(x, y) = x^2 / 100 + y^2`` (curvatures
  0.02 and 2, condition number 100): SGD's lr must stay below 2 / 2 = 1 for
  the steep direction, where a large lr makes it zigzag, and is then tiny
  for the shallow direction; momentum averages the zigzag out and builds up
  speed along the valley (its effective step is ``lr / (1 - momentum)``).
- A saddle point, ``f(x, y) = x^2 / 2 + y^4 / 4 - y^2 / 2`` (a saddle at the
  origin, minima at ``(0, +-1)``), started almost on the ridge
  (``y = 1e-3``): the gradient along ``y`` is tiny there and SGD lingers;
  momentum and Adam escape.

Each optimizer is a ``lec7rs.optim`` optimizer stepping a float64 array of
two elements with the exact gradient.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import optim
from .context import Context, describe, verdict_line

TITLE = "The zigzag and the saddle"
SHORT_CLAIM = "SGD zigzags and stalls at a saddle, momentum and Adam don't"
CLAIM = (
    "SGD zigzags across an ill-conditioned valley and stalls near a saddle point; "
    "momentum and Adam do not"
)


def quadratic(w: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = w
    return x * x / 100 + y * y, np.array([x / 50, 2 * y])


def saddle(w: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = w
    return x * x / 2 + y**4 / 4 - y * y / 2, np.array([x, y**3 - y])


#: (function, start, steps, {name: (optimizer class, hyperparameters)})
PROBLEMS = {
    "quadratic": (
        quadratic,
        (-8.0, 2.0),
        40,
        {
            "SGD": (optim.SGD, {"lr": 0.9}),
            "SGD+momentum": (optim.SGD, {"lr": 0.2, "momentum": 0.9}),
            "Nesterov": (optim.SGD, {"lr": 0.2, "momentum": 0.9, "nesterov": True}),
            "Adam": (optim.Adam, {"lr": 0.3}),
        },
    ),
    "saddle": (
        saddle,
        (1.5, 1e-3),
        50,
        {
            "SGD": (optim.SGD, {"lr": 0.1}),
            "SGD+momentum": (optim.SGD, {"lr": 0.1, "momentum": 0.9}),
            "Nesterov": (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
            "Adam": (optim.Adam, {"lr": 0.1}),
        },
    ),
}

COLORS = {"SGD": "#7f7f7f", "SGD+momentum": "#1f77b4", "Nesterov": "#17becf", "Adam": "#d62728"}


def trajectory(
    fn: Callable[[np.ndarray], tuple[float, np.ndarray]], start, steps: int, cls, hyper: dict
) -> tuple[np.ndarray, list]:
    w = np.array(start, dtype=np.float64)
    opt = cls([w], **hyper)
    points, values = [w.copy()], [fn(w)[0]]
    for _ in range(steps):
        _, g = fn(w)
        opt.step([g])
        points.append(w.copy())
        values.append(fn(w)[0])
    return np.array(points), [float(v) for v in values]


def run(ctx: Context) -> dict:
    out = {"title": TITLE, "claim": CLAIM, "problems": {}}
    for key, (fn, start, steps, methods) in PROBLEMS.items():
        runs = {}
        with ctx.reporter.task(f"2 · {key}", total=len(methods)) as advance:
            for i, (name, (cls, hyper)) in enumerate(methods.items()):
                points, values = trajectory(fn, start, steps, cls, hyper)
                runs[name] = {
                    "optimizer": describe(cls, hyper),
                    "path": points.tolist(),
                    "f": values,
                    "final_f": values[-1],
                    "final_point": points[-1].tolist(),
                }
                advance(i + 1, f"{name}: f = {values[-1]:.4f}")
        out["problems"][key] = {
            "function": fn.__name__,
            "formula": {
                "quadratic": "x^2/100 + y^2",
                "saddle": "x^2/2 + y^4/4 - y^2/2",
            }[key],
            "start": list(start),
            "steps": steps,
            "runs": runs,
        }
    return out


def table(res: dict) -> tuple[list, list]:
    columns = ["problem · optimizer", "f after the last step", "final (x, y)"]
    rows = []
    for key, prob in res["problems"].items():
        for name, r in prob["runs"].items():
            x, y = r["final_point"]
            rows.append([f"{key} · {name}", f"{r['final_f']:.4g}", f"({x:+.3f}, {y:+.3f})"])
    return columns, rows


def draw(fig, res: dict) -> None:
    axes = fig.subplots(1, 2)
    views = {"quadratic": ((-9, 3), (-2.5, 2.5)), "saddle": ((-1.8, 1.8), (-0.6, 1.6))}
    titles = {
        "quadratic": "2a. ill-conditioned valley, f = x²/100 + y²",
        "saddle": "2b. saddle at (0, 0), f = x²/2 + y⁴/4 - y²/2",
    }
    for i, (key, prob) in enumerate(res["problems"].items()):
        ax = axes[i]
        (x0, x1), (y0, y1) = views[key]
        xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        fn = quadratic if key == "quadratic" else saddle
        zs = fn(np.stack([xs, ys]))[0]
        levels = 20 if key == "quadratic" else np.linspace(-0.25, 1.6, 20)
        ax.contour(xs, ys, zs, levels=levels, colors="0.75", linewidths=0.7)
        for name, r in prob["runs"].items():
            path = np.asarray(r["path"])
            top = name == "SGD"  # the subject: drawn over the others
            ax.plot(
                path[:, 0],
                path[:, 1],
                ".-",
                ms=4 if top else 3,
                lw=1.6 if top else 1.1,
                color=COLORS[name],
                zorder=5 if top else 3,
                label=f"{_short(r['optimizer'])}: f = {r['final_f']:.3f}",
            )
        sx, sy = prob["start"]
        ax.plot([sx], [sy], "k*", ms=10, label="start")
        if key == "saddle":
            ax.plot([0], [0], "k+", ms=12, mew=2, label="saddle point")
            ax.plot([0, 0], [-1, 1], "kx", ms=8, label="minima")
        else:
            ax.plot([0], [0], "kx", ms=8, label="minimum")
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(f"{titles[key]}\n{prob['steps']} steps each, from the star", fontsize=10)
        ax.legend(fontsize=7.5, loc="lower right" if key == "quadratic" else "lower left")
    fig.suptitle(
        "2. The zigzag and the saddle: SGD, momentum, Nesterov and Adam on two functions\n"
        "(legend: each one's hyperparameters and f at the end)\n"
        f"{verdict_line(SHORT_CLAIM, res)}"
    )


def _short(optimizer: str) -> str:
    """``SGD(lr=0.2, momentum=0.9, nesterov=True)`` -> ``Nesterov, lr 0.2, momentum 0.9``."""
    name, args = optimizer.rstrip(")").split("(")
    parts = dict(a.split("=") for a in args.split(", "))
    label = "Nesterov" if parts.pop("nesterov", None) == "True" else name
    return ", ".join([label, *(f"{k} {v}" for k, v in parts.items())])


def verdict(res: dict) -> dict:
    quad = res["problems"]["quadratic"]["runs"]
    ys = np.asarray(quad["SGD"]["path"])[:, 1]
    flips = float(np.mean(np.sign(ys[1:]) != np.sign(ys[:-1])))
    sgd_f = quad["SGD"]["final_f"]
    faster = all(r["final_f"] < sgd_f for k, r in quad.items() if k != "SGD")
    saddle = res["problems"]["saddle"]["runs"]
    stuck = abs(saddle["SGD"]["final_point"][1]) < 0.5
    escaped = all(abs(r["final_point"][1]) > 0.5 for k, r in saddle.items() if k != "SGD")
    others = [r["final_f"] for k, r in quad.items() if k != "SGD"]
    return {
        "reproduced": flips > 0.9 and faster and stuck and escaped,
        "measured": (
            f"quadratic: SGD's y changes sign on {flips:.0%} of its steps and ends at "
            f"f = {sgd_f:.3f}, the others at {min(others):.3f} to {max(others):.3f}; saddle: "
            f"SGD ends at y = {saddle['SGD']['final_point'][1]:.2f}, the others at "
            + ", ".join(f"{r['final_point'][1]:.2f}" for k, r in saddle.items() if k != "SGD")
        ),
    }
