"""Bad input: a clear exception naming the argument, and nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
from cases import CASES
from conftest import assert_unchanged, snapshot
from lec7rs import optim

# Every rule of the cases table with its largest option set (the most
# state), and Adafactor (not bit-exact with NumPy, so not in the table).
_WIDEST: dict = {}
for _cls, _, _kw in CASES:
    if len(_kw) >= len(_WIDEST.get(_cls, {})):
        _WIDEST[_cls] = _kw
OPTIMIZERS = [*_WIDEST.items(), (optim.Adafactor, dict(weight_decay=0.1))]
OPT_IDS = [cls.__name__ for cls, _ in OPTIMIZERS]


def make(cls, kw, dtype=np.float32, stepped=True):
    """An optimizer over a dict of two params, stepped twice (state exists)."""
    rng = np.random.default_rng(0)
    params = {
        "w1": rng.standard_normal((4, 3)).astype(dtype),
        "b1": rng.standard_normal(3).astype(dtype),
    }
    opt = cls(params, **kw)
    if stepped:
        for _ in range(2):
            opt.step({k: rng.standard_normal(v.shape).astype(dtype) for k, v in params.items()})
    return opt, params


def good_grads(params):
    return {k: np.full(v.shape, 0.1, v.dtype) for k, v in params.items()}


# (id, function of (params, good grads, optimizer) -> grads for step(),
#  exception type, regex the message must match)
STEP_CASES = [
    (
        "grad float64 for float32 param",
        lambda p, g, o: {**g, "b1": g["b1"].astype(np.float64)},
        TypeError,
        r"grads\['b1'\].*float32.*float64",
    ),
    (
        "int grad",
        lambda p, g, o: {**g, "w1": np.ones((4, 3), np.int64)},
        TypeError,
        r"grads\['w1'\].*int64",
    ),
    (
        "float16 grad",
        lambda p, g, o: {**g, "w1": g["w1"].astype(np.float16)},
        TypeError,
        r"grads\['w1'\].*float16",
    ),
    ("bool grad", lambda p, g, o: {**g, "w1": np.ones((4, 3), bool)}, TypeError, r"grads\['w1'\]"),
    ("list grad", lambda p, g, o: {**g, "b1": [0.1, 0.2, 0.3]}, TypeError, r"grads\['b1'\].*list"),
    (
        "big-endian grad",
        lambda p, g, o: {**g, "b1": g["b1"].astype(">f4")},
        TypeError,
        r"grads\['b1'\].*byte order",
    ),
    (
        "shape mismatch",
        lambda p, g, o: {**g, "w1": np.zeros((3, 4), np.float32)},
        ValueError,
        r"params\['w1'\] has shape \(4, 3\) but grads\['w1'\] has shape \(3, 4\)",
    ),
    (
        "broadcastable is not enough",
        lambda p, g, o: {**g, "b1": np.zeros((1, 3), np.float32)},
        ValueError,
        r"shape \(3,\).*shape \(1, 3\)",
    ),
    ("missing dict key", lambda p, g, o: {"w1": g["w1"]}, ValueError, r"missing key 'b1'"),
    ("unknown dict key", lambda p, g, o: {**g, "w2": g["w1"]}, ValueError, r"unexpected key 'w2'"),
    ("list too short", lambda p, g, o: [g["w1"]], ValueError, r"expected 2 entries"),
    (
        "list too long",
        lambda p, g, o: [g["w1"], g["b1"], g["b1"]],
        ValueError,
        r"expected 2 entries",
    ),
    ("not a list", lambda p, g, o: g["w1"], TypeError, r"grads must be a list"),
    (
        "grad is the param",
        lambda p, g, o: {**g, "b1": p["b1"]},
        ValueError,
        r"grads\['b1'\] shares memory",
    ),
    (
        "grad is a view of the param",
        lambda p, g, o: {**g, "w1": p["w1"][::1]},
        ValueError,
        r"grads\['w1'\] shares memory",
    ),
    (
        "grad is another param",
        lambda p, g, o: {**g, "b1": p["w1"][0]},
        ValueError,
        r"grads\['b1'\] shares memory",
    ),
]


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
@pytest.mark.parametrize(
    ("make_grads", "exc", "match"), [c[1:] for c in STEP_CASES], ids=[c[0] for c in STEP_CASES]
)
def test_bad_step_raises_and_changes_nothing(cls, kw, make_grads, exc, match):
    for stepped in (True, False):
        opt, params = make(cls, kw, stepped=stepped)
        grads = make_grads(params, good_grads(params), opt)
        before = snapshot(opt)
        with pytest.raises(exc, match=match):
            opt.step(grads)
        assert_unchanged(opt, before)
        if not stepped:
            assert opt.state == {}  # no state was created by the failed first step
        opt.step(good_grads(params))  # still usable


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
def test_grad_aliasing_optimizer_state_is_refused(cls, kw):
    opt, params = make(cls, kw)
    before = snapshot(opt)
    # b1's first state array (not a scalar slot; Adafactor's vectors have no
    # row_var: its slot 2).
    state = next(
        slot[1]
        for slot, kind in zip(opt._state, opt._kinds)
        if kind != "scalar" and slot[1] is not None
    )
    grads = {**good_grads(params), "b1": state}
    with pytest.raises(ValueError, match=r"state '\w+' of params\['b1'\] shares memory"):
        opt.step(grads)
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
def test_param_made_read_only_or_reshaped_after_construction(cls, kw):
    opt, params = make(cls, kw)
    before = snapshot(opt)
    params["b1"].flags.writeable = False
    with pytest.raises(ValueError, match=r"params\['b1'\] is read-only"):
        opt.step(good_grads(params))
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
def test_invalid_hyperparameter_written_to_a_group_is_caught_at_step(cls, kw):
    opt, params = make(cls, kw)
    before = snapshot(opt)
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\].*lr.*-1"):
        opt.step(good_grads(params))
    opt.param_groups[0]["lr"] = before["groups"][0]["lr"]
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
def test_error_in_a_later_group_changes_no_earlier_group(cls, kw):
    a = np.ones(10, np.float32)
    b = np.ones(10, np.float32)
    opt = cls([{"params": [a]}, {"params": [b], "lr": 0.5}], **kw)
    opt.step([np.ones(10, np.float32), np.ones(10, np.float32)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        opt.step([np.ones(10, np.float32), np.ones(9, np.float32)])
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("cls", "kw"), OPTIMIZERS, ids=OPT_IDS)
def test_non_contiguous_grads_are_read_correctly(cls, kw):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((8, 6)).astype(np.float32)
    views = {
        "transposed": np.ascontiguousarray(base.T).T.T,  # C copy of base.T ...
        "fortran": np.asfortranarray(base.T),
        "strided": np.repeat(base.T, 2, axis=1)[:, ::2],
        "negative": base.T[::-1, ::-1][::-1, ::-1],
        "broadcast": np.broadcast_to(base.T[:, :1], (6, 8)),
    }
    for name, grad in views.items():
        p1 = np.ones((6, 8), np.float32)
        p2 = p1.copy()
        cls([p1], **kw).step([grad])
        cls([p2], **kw).step([np.ascontiguousarray(grad)])
        np.testing.assert_array_equal(p1, p2, err_msg=name)


# (id, constructor kwargs, exception, regex)
CONSTRUCTOR_CASES = [
    ("SGD negative lr", optim.SGD, dict(lr=-0.1), ValueError, r"lr: -0.1"),
    ("SGD NaN lr", optim.SGD, dict(lr=float("nan")), ValueError, r"lr: NaN"),
    ("SGD inf lr", optim.SGD, dict(lr=float("inf")), ValueError, r"lr: inf"),
    ("SGD negative momentum", optim.SGD, dict(momentum=-0.5), ValueError, r"momentum"),
    ("SGD dampening > 1", optim.SGD, dict(momentum=0.9, dampening=2), ValueError, r"dampening"),
    ("SGD negative weight_decay", optim.SGD, dict(weight_decay=-1), ValueError, r"weight_decay"),
    ("SGD nesterov without momentum", optim.SGD, dict(nesterov=True), ValueError, r"nesterov"),
    (
        "SGD nesterov with dampening",
        optim.SGD,
        dict(momentum=0.9, dampening=0.1, nesterov=True),
        ValueError,
        r"nesterov",
    ),
    ("SGD lr as string", optim.SGD, dict(lr="0.1"), TypeError, r"str"),
    ("Adagrad negative lr_decay", optim.Adagrad, dict(lr_decay=-1), ValueError, r"lr_decay"),
    ("Adagrad negative eps", optim.Adagrad, dict(eps=-1e-10), ValueError, r"eps"),
    (
        "Adagrad negative initial_accumulator_value",
        optim.Adagrad,
        dict(initial_accumulator_value=-1),
        ValueError,
        r"initial_accumulator_value",
    ),
    ("RMSprop alpha > 1", optim.RMSprop, dict(alpha=1.5), ValueError, r"alpha"),
    ("RMSprop negative alpha", optim.RMSprop, dict(alpha=-0.1), ValueError, r"alpha"),
    ("RMSprop negative momentum", optim.RMSprop, dict(momentum=-1), ValueError, r"momentum"),
    ("Adam beta1 = 1", optim.Adam, dict(betas=(1.0, 0.999)), ValueError, r"betas\[0\]"),
    ("Adam beta2 < 0", optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    ("Adam three betas", optim.Adam, dict(betas=(0.9, 0.99, 0.9)), ValueError, r"betas"),
    ("Adam negative eps", optim.Adam, dict(eps=-1.0), ValueError, r"eps"),
    (
        "NAdam negative momentum_decay",
        optim.NAdam,
        dict(momentum_decay=-1),
        ValueError,
        r"momentum_decay",
    ),
    ("RAdam beta2 = 1", optim.RAdam, dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    ("Adamax negative eps", optim.Adamax, dict(eps=-1), ValueError, r"eps"),
    ("Adadelta rho > 1", optim.Adadelta, dict(rho=1.5), ValueError, r"rho"),
    ("Rprop etaminus > 1", optim.Rprop, dict(etas=(1.5, 1.2)), ValueError, r"etas\[0\]"),
    ("Rprop etaplus < 1", optim.Rprop, dict(etas=(0.5, 0.9)), ValueError, r"etas\[1\]"),
    (
        "Rprop step sizes reversed",
        optim.Rprop,
        dict(step_sizes=(1, 0.1)),
        ValueError,
        r"step_sizes",
    ),
    ("ASGD negative lambd", optim.ASGD, dict(lambd=-1), ValueError, r"lambd"),
    ("complex lr", optim.Adam, dict(lr=1j), TypeError, r"lr.*complex"),
    (
        "AdamW negative weight_decay",
        optim.AdamW,
        dict(weight_decay=-0.01),
        ValueError,
        r"weight_decay",
    ),
]


@pytest.mark.parametrize(
    ("cls", "kw", "exc", "match"),
    [c[1:] for c in CONSTRUCTOR_CASES],
    ids=[c[0] for c in CONSTRUCTOR_CASES],
)
def test_invalid_hyperparameters_raise_at_construction(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls([np.zeros(3, np.float32)], **kw)


def test_invalid_group_override_names_the_group():
    with pytest.raises(ValueError, match=r"param_groups\[1\].*lr"):
        optim.Adam([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)], "lr": -1}])


# (id, params, exception, regex)
PARAM_CASES = [
    ("empty list", [], ValueError, r"empty parameter list"),
    ("single array", np.zeros(3), TypeError, r"not a single array"),
    ("int param", [np.zeros(3, np.int32)], TypeError, r"params\[0\].*int32"),
    ("float16 uint16 param", [np.zeros(3, np.uint16)], TypeError, r"params\[0\].*uint16"),
    (
        "float16 with float32",
        [np.zeros(3, np.float16), np.zeros(3, np.float32)],
        TypeError,
        r"params\[1\].*dtype",
    ),
    ("complex param", [np.zeros(3, np.complex64)], TypeError, r"params\[0\].*complex64"),
    ("list param", [[1.0, 2.0]], TypeError, r"params\[0\].*list"),
    ("mixed dtypes", [np.zeros(3, np.float32), np.zeros(3)], TypeError, r"params\[1\].*dtype"),
    ("non-contiguous", [np.zeros((4, 4))[:, ::2]], ValueError, r"params\[0\].*C-contiguous"),
    ("fortran order", [np.asfortranarray(np.zeros((4, 3)))], ValueError, r"C-contiguous"),
    ("read-only", [np.broadcast_to(np.zeros(1), (3,))], ValueError, r"params\[0\]"),
    ("duplicate", "dup", ValueError, r"params\[1\] shares memory"),
    ("overlapping views", "overlap", ValueError, r"params\['b'\] shares memory"),
    ("string", "abc", TypeError, r"params must be"),
    ("mixed groups", [{"params": [np.zeros(2)]}, np.zeros(2)], TypeError, r"mixes group dicts"),
]


@pytest.mark.parametrize(
    ("params", "exc", "match"), [c[1:] for c in PARAM_CASES], ids=[c[0] for c in PARAM_CASES]
)
def test_bad_params_raise_at_construction(params, exc, match):
    if isinstance(params, str) and params == "dup":
        a = np.zeros(3)
        params = [a, a]
    elif isinstance(params, str) and params == "overlap":
        buf = np.zeros(10)
        params = {"a": buf[:6], "b": buf[4:]}
    with pytest.raises(exc, match=match):
        optim.SGD(params, lr=0.1)
