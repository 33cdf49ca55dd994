"""The lecture's forms (cs231n style) and the classes follow the same
trajectory where they are mathematically equivalent (a constant lr)."""

from __future__ import annotations

import numpy as np
import pytest
from lec7rs import optim
from lec7rs import reference as ref

# An ill-conditioned quadratic f(x) = 0.5 * sum(h * x^2): the zigzag case.
H = np.array([1.0, 10.0, 100.0, 0.1, 3.0])


def grad(x):
    return H * x


def run_lecture(update, config, steps=100):
    x = np.array([1.0, -1.0, 0.5, 2.0, -0.3])
    path = [x.copy()]
    for _ in range(steps):
        x, config = update(x, grad(x), config)
        path.append(x.copy())
    return np.array(path)


def run_class(opt_cls, steps=100, **kw):
    x = np.array([1.0, -1.0, 0.5, 2.0, -0.3])
    opt = opt_cls([x], **kw)
    path = [x.copy()]
    for _ in range(steps):
        opt.step([grad(x)])
        path.append(x.copy())
    return np.array(path)


PAIRS = [
    ("sgd", ref.sgd, dict(learning_rate=0.005), optim.SGD, dict(lr=0.005)),
    (
        "momentum",
        ref.sgd_momentum,
        dict(learning_rate=0.005, momentum=0.9),
        optim.SGD,
        dict(lr=0.005, momentum=0.9),
    ),
    (
        "nesterov",
        ref.nesterov_momentum,
        dict(learning_rate=0.005, momentum=0.9),
        optim.SGD,
        dict(lr=0.005, momentum=0.9, nesterov=True),
    ),
    ("adagrad", ref.adagrad, dict(learning_rate=0.1), optim.Adagrad, dict(lr=0.1, eps=1e-7)),
    (
        "rmsprop",
        ref.rmsprop,
        dict(learning_rate=0.01, decay_rate=0.9),
        optim.RMSprop,
        dict(lr=0.01, alpha=0.9),
    ),
    ("adam", ref.adam, dict(learning_rate=0.01), optim.Adam, dict(lr=0.01)),
]


@pytest.mark.parametrize(
    ("update", "config", "cls", "kw"), [p[1:] for p in PAIRS], ids=[p[0] for p in PAIRS]
)
def test_lecture_form_and_class_follow_the_same_trajectory(update, config, cls, kw):
    lecture = run_lecture(update, dict(config))
    ours = run_class(cls, **kw)
    # Equal in exact arithmetic; the forms round differently (velocity vs
    # buffer, corrected moments vs corrected step size).
    np.testing.assert_allclose(ours, lecture, rtol=1e-9, atol=1e-12)
    assert np.abs(ours[-1]).sum() < np.abs(ours[0]).sum()  # it optimizes


def test_momentum_forms_differ_when_lr_changes():
    # Documented difference: the lecture's velocity remembers old lrs.
    x_lec = np.ones(3)
    x_cls = np.ones(3)
    config = dict(learning_rate=0.1, momentum=0.9)
    opt = optim.SGD([x_cls], lr=0.1, momentum=0.9)
    for t in range(4):
        lr = 0.1 if t < 2 else 0.01
        config["learning_rate"] = lr
        opt.param_groups[0]["lr"] = lr
        x_lec, config = ref.sgd_momentum(x_lec, np.ones(3), config)
        opt.step([np.ones(3)])
    assert not np.allclose(x_lec, x_cls)


def test_cs231n_config_defaults_are_filled_in():
    w, dw = np.ones(3), np.full(3, 0.5)
    _, c = ref.sgd(w, dw)
    assert c == {"learning_rate": 1e-2}
    _, c = ref.sgd_momentum(w, dw)
    assert c["momentum"] == 0.9 and c["velocity"].shape == (3,)
    _, c = ref.rmsprop(w, dw)
    assert (c["decay_rate"], c["epsilon"]) == (0.99, 1e-8)
    next_w, c = ref.adam(w, dw)
    assert (c["beta1"], c["beta2"], c["t"]) == (0.9, 0.999, 1)
    np.testing.assert_allclose(next_w, w - 1e-3, rtol=1e-6)  # first Adam step ~ lr * sign
    np.testing.assert_array_equal(w, np.ones(3))  # w is not modified
