"""More ``torch.optim`` rules in pure NumPy: NAdam, RAdam, Adamax, Adadelta,
Rprop, ASGD, Adafactor and Muon.

The conventions are those of ``reference.optim`` (``torch_adam``,
``torch_sgd``): ``rule(param, grad, state=None, **hyper) -> (new_param,
new_state)`` with PyTorch's hyperparameter names and defaults, following the
single-tensor (``_single_tensor_*``, non-capturable, non-foreach,
non-differentiable) code path of ``torch/optim``. ``param`` and ``state`` are
not modified; a new state dict is returned with PyTorch's keys (``step`` as a
Python int).

Rounding: all array arithmetic runs in the param's dtype (float32 or
float64), one NumPy operation for each PyTorch operation, in PyTorch's order:
``a.add(b, alpha=c)`` is ``a + dt(c) * b``, ``a.addcmul(t1, t2, value=v)`` is
``a + dt(v) * t1 * t2``, ``a.addcdiv(t1, t2, value=v)`` is
``a + dt(v) * t1 / t2``, ``lerp`` is ATen's two-branch formula (``_lerp``),
and ``scalar / tensor`` is ``tensor.reciprocal() * scalar`` (that is what
``Tensor.__rtruediv__`` does). Scalars (bias corrections, step sizes, the
rectification term) are computed in Python floats (f64) with PyTorch's
expressions and rounded once to the dtype where they meet an array.

Where these references differ from PyTorch on purpose
-----------------------------------------------------
* Per-tensor scalar state (NAdam's ``mu_product``, ASGD's ``eta`` and
  ``mu``) is a Python float (f64) here. PyTorch keeps 0-d tensors of
  ``_get_scalar_dtype()`` (float32 unless the default dtype is float64), so
  its values are rounded to float32 after every update; the scalars derived
  from them then differ from ours in about the 8th significant digit.
* Reductions (the norms and means of Adafactor and Muon) and matrix
  products (Muon's Newton-Schulz) are NumPy's: their summation order is not
  ATen's, so they agree with PyTorch to rounding, not bit for bit.
* Muon's Newton-Schulz iteration runs in bfloat16 in PyTorch; here it runs
  in the param's dtype (NumPy has no bfloat16).
"""

from __future__ import annotations

import numpy as np

from .optim import State, _lerp, _prepare

# Muon's constants (torch/optim/_muon.py, from Keller Jordan's post).
MUON_EPS = 1e-7
MUON_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
MUON_NS_STEPS = 5


def _zeros(state: State, key: str, like: np.ndarray) -> np.ndarray:
    value = state.get(key)
    return np.zeros_like(like) if value is None else value


# ---------------------------------------------------------------------------
# NAdam
# ---------------------------------------------------------------------------


def torch_nadam(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 2e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    momentum_decay: float = 4e-3,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
):
    r"""``torch.optim.NAdam``: state ``step``, ``mu_product``, ``exp_avg``,
    ``exp_avg_sq``.

    PyTorch's algorithm box (per element)::

        input: lr, betas β1 β2, weight decay λ, momentum decay ψ, eps ε
        init:  m_0 = 0, v_0 = 0
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            θ_t = θ_{t-1}
            if λ != 0:
                if decoupled_weight_decay: θ_t = θ_{t-1} - lr λ θ_{t-1}
                else:                      g_t = g_t + λ θ_{t-1}
            μ_t     = β1 (1 - 0.5 * 0.96^(t ψ))
            μ_{t+1} = β1 (1 - 0.5 * 0.96^((t+1) ψ))
            m_t = β1 m_{t-1} + (1 - β1) g_t
            v_t = β2 v_{t-1} + (1 - β2) g_t²
            m̂_t = μ_{t+1} m_t / (1 - Π_{i=1}^{t+1} μ_i) + (1 - μ_t) g_t / (1 - Π_{i=1}^{t} μ_i)
            v̂_t = v_t / (1 - β2^t)
            θ_t = θ_t - lr m̂_t / (sqrt(v̂_t) + ε)

    PyTorch's code (followed here) applies the two terms of ``m̂_t`` as two
    ``addcdiv`` calls on the param, with ``denom = sqrt(v_t / (1 - β2^t)) + ε``.

    Differs from PyTorch: ``mu_product`` (``Π μ_i``) is a Python float (f64)
    here; PyTorch keeps a float32 0-d tensor (``mu_product *= mu`` rounds to
    float32 each step), so both step sizes differ in about the 8th digit.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    bias_correction2 = 1 - beta2**step
    if weight_decay != 0:
        if decoupled_weight_decay:
            p = p * dt(1 - lr * weight_decay)
        else:
            g = g + dt(weight_decay) * p
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product = state.get("mu_product", 1.0) * mu
    m = _lerp(_zeros(state, "exp_avg", p), g, 1 - beta1)
    v = _zeros(state, "exp_avg_sq", p) * dt(beta2) + dt(1 - beta2) * g * g
    denom = np.sqrt(v / dt(bias_correction2))
    mu_product_next = mu_product * mu_next
    denom = denom + dt(eps)
    p = p + dt(-lr * (1.0 - mu) / (1.0 - mu_product)) * g / denom
    p = p + dt((-lr * mu_next) / (1.0 - mu_product_next)) * m / denom
    state.update(step=step, mu_product=mu_product, exp_avg=m, exp_avg_sq=v)
    return p, state


# ---------------------------------------------------------------------------
# RAdam
# ---------------------------------------------------------------------------


def torch_radam(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
):
    r"""``torch.optim.RAdam``: state ``step``, ``exp_avg``, ``exp_avg_sq``.

    PyTorch's algorithm box (per element)::

        input: lr, betas β1 β2, weight decay λ, eps ε
        init:  m_0 = 0, v_0 = 0, rho_inf = 2 / (1 - β2) - 1
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            θ_t = θ_{t-1}
            if λ != 0:
                if decoupled_weight_decay: θ_t = θ_t - lr λ θ_t
                else:                      g_t = g_t + λ θ_t
            m_t = β1 m_{t-1} + (1 - β1) g_t
            v_t = β2 v_{t-1} + (1 - β2) g_t²
            m̂_t = m_t / (1 - β1^t)
            rho_t = rho_inf - 2 t β2^t / (1 - β2^t)
            if rho_t > 5:
                l_t = sqrt(1 - β2^t) / (sqrt(v_t) + ε)
                r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                θ_t = θ_t - lr m̂_t r_t l_t
            else:
                θ_t = θ_t - lr m̂_t

    PyTorch's order, followed here: ``((m̂_t * lr) * l_t) * r_t`` with
    ``l_t = reciprocal(sqrt(v_t) + ε) * sqrt(1 - β2^t)`` (a scalar divided
    by a tensor is a reciprocal and a multiply in PyTorch), then
    ``θ.add_(…, alpha=-1)``. The switch at ``rho_t > 5`` is decided in Python
    floats; with the default β2 the first 5 steps are unrectified.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    if weight_decay != 0:
        if decoupled_weight_decay:
            p = p * dt(1 - lr * weight_decay)
        else:
            g = g + dt(weight_decay) * p
    m = _lerp(_zeros(state, "exp_avg", p), g, 1 - beta1)
    v = _zeros(state, "exp_avg_sq", p) * dt(beta2) + dt(1 - beta2) * g * g
    state.update(step=step, exp_avg=m, exp_avg_sq=v)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    bias_corrected_exp_avg = m / dt(bias_correction1)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    if rho_t > 5.0:
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
        exp_avg_sq_sqrt = np.sqrt(v) + dt(eps)
        adaptive_lr = np.reciprocal(exp_avg_sq_sqrt) * dt(bias_correction2**0.5)
        update = bias_corrected_exp_avg * dt(lr) * adaptive_lr * dt(rect)
    else:
        update = bias_corrected_exp_avg * dt(lr)
    return p + dt(-1.0) * update, state


# ---------------------------------------------------------------------------
# Adamax
# ---------------------------------------------------------------------------


def torch_adamax(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 2e-3,
    betas: tuple = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0,
    maximize: bool = False,
):
    r"""``torch.optim.Adamax``: state ``step``, ``exp_avg``, ``exp_inf``.

    PyTorch's algorithm box (per element)::

        input: lr, betas β1 β2, weight decay λ, eps ε
        init:  m_0 = 0, u_0 = 0 (infinity norm)
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            if λ != 0: g_t = g_t + λ θ_{t-1}
            m_t = β1 m_{t-1} + (1 - β1) g_t
            u_t = max(β2 u_{t-1}, |g_t| + ε)
            θ_t = θ_{t-1} - lr m_t / ((1 - β1^t) u_t)

    ``u_t`` is the elementwise max of ``exp_inf * β2`` and ``|g| + ε``:
    PyTorch's single-tensor code takes ``torch.maximum`` of the two (its
    differentiable branch the ``amax`` of the two stacked), which is the
    same value, NaN-propagating like ``np.maximum``. The step is
    ``addcdiv(m_t, u_t, value=-lr / (1 - β1^t))``.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    m = _lerp(_zeros(state, "exp_avg", p), g, 1 - beta1)
    u = np.maximum(_zeros(state, "exp_inf", p) * dt(beta2), np.abs(g) + dt(eps))
    state.update(step=step, exp_avg=m, exp_inf=u)
    bias_correction = 1 - beta1**step
    clr = lr / bias_correction
    return p + dt(-clr) * m / u, state


# ---------------------------------------------------------------------------
# Adadelta
# ---------------------------------------------------------------------------


def torch_adadelta(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1.0,
    rho: float = 0.9,
    eps: float = 1e-6,
    weight_decay: float = 0,
    maximize: bool = False,
):
    r"""``torch.optim.Adadelta``: state ``step``, ``square_avg``, ``acc_delta``.

    PyTorch's algorithm box (per element)::

        input: lr, decay rho, weight decay λ, eps ε
        init:  v_0 = 0 (square avg), u_0 = 0 (accumulated deltas)
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            if λ != 0: g_t = g_t + λ θ_{t-1}
            v_t  = rho v_{t-1} + (1 - rho) g_t²
            Δx_t = sqrt(u_{t-1} + ε) / sqrt(v_t + ε) * g_t
            u_t  = rho u_{t-1} + (1 - rho) Δx_t²
            θ_t  = θ_{t-1} - lr Δx_t

    PyTorch's order: ``delta = sqrt(u + ε); delta /= sqrt(v + ε); delta *= g``.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    step = state.get("step", 0) + 1
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    v = _zeros(state, "square_avg", p) * dt(rho) + dt(1 - rho) * g * g
    std = np.sqrt(v + dt(eps))
    u = _zeros(state, "acc_delta", p)
    delta = np.sqrt(u + dt(eps))
    delta = delta / std
    delta = delta * g
    u = u * dt(rho) + dt(1 - rho) * delta * delta
    state.update(step=step, square_avg=v, acc_delta=u)
    return p + dt(-lr) * delta, state


# ---------------------------------------------------------------------------
# Rprop
# ---------------------------------------------------------------------------


def torch_rprop(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    etas: tuple = (0.5, 1.2),
    step_sizes: tuple = (1e-6, 50),
    maximize: bool = False,
):
    r"""``torch.optim.Rprop``: state ``step``, ``prev``, ``step_size``.

    PyTorch's algorithm box (per element ``i``)::

        input: etas (η-, η+), step sizes (Γ_min, Γ_max), lr
        init:  g_prev = 0, η_0 = lr (per element step size)
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            if   g_prev g_t > 0: η_t = min(η_{t-1} η+, Γ_max)
            elif g_prev g_t < 0: η_t = max(η_{t-1} η-, Γ_min); g_t = 0
            else:                η_t = η_{t-1}
            θ_t = θ_{t-1} - η_t sign(g_t)
            g_prev = g_t

    As PyTorch's code does: ``s = sign(g * prev)`` in the dtype; ``s`` is set
    to η+ where positive, η- where negative, 1 where zero (η± rounded to the
    dtype); ``step_size = clamp(step_size * s, Γ_min, Γ_max)`` (so the
    ``else`` branch is clamped too, and a zero product keeps the step size);
    ``g`` is zeroed where ``s == η-``; ``θ.addcmul_(sign(g), step_size,
    value=-1)``; ``prev`` stores that (zeroed, and with ``maximize``
    negated) gradient. ``lr`` is used only to initialize ``step_size``.
    There is no weight decay in Rprop.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    etaminus, etaplus = etas
    step_size_min, step_size_max = step_sizes
    step = state.get("step", 0) + 1
    prev = _zeros(state, "prev", p)
    step_size = state.get("step_size")
    step_size = np.full_like(p, lr) if step_size is None else step_size
    sign = np.sign(g * prev)
    sign = np.where(sign > 0, dt(etaplus), sign)
    sign = np.where(sign < 0, dt(etaminus), sign)
    sign = np.where(sign == 0, dt(1), sign)
    step_size = np.clip(step_size * sign, dt(step_size_min), dt(step_size_max))
    g = np.where(sign == dt(etaminus), dt(0), g)
    p = p + dt(-1) * np.sign(g) * step_size
    state.update(step=step, prev=g, step_size=step_size)
    return p, state


# ---------------------------------------------------------------------------
# ASGD
# ---------------------------------------------------------------------------


def torch_asgd(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    lambd: float = 1e-4,
    alpha: float = 0.75,
    t0: float = 1e6,
    weight_decay: float = 0,
    maximize: bool = False,
):
    r"""``torch.optim.ASGD``: state ``step``, ``eta``, ``mu``, ``ax``.

    PyTorch documents no algorithm box for ASGD; its single-tensor code is
    (per element, ``η`` = ``eta``, ``μ`` = ``mu``, ``a`` = ``ax``)::

        input: lr, decay λ (lambd), power alpha, start t0, weight decay w
        init:  η_0 = lr, μ_0 = 1, a_0 = 0
        for t = 1, 2, ...:
            g_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            if w != 0: g_t = g_t + w θ_{t-1}
            θ_t = θ_{t-1} (1 - λ η_{t-1})
            θ_t = θ_t - η_{t-1} g_t
            a_t = a_{t-1} + (θ_t - a_{t-1}) μ_{t-1}   if μ_{t-1} != 1
                  θ_t                                 otherwise
            η_t = lr / (1 + λ lr t)^alpha
            μ_t = 1 / max(1, t - t0)

    The update uses the ``eta`` and ``mu`` of the previous step; the new
    ones are stored for the next.

    Differs from PyTorch: ``eta`` and ``mu`` are Python floats (f64) here;
    PyTorch keeps float32 0-d tensors (``_get_scalar_dtype()``), so for
    float64 params its ``eta`` and ``mu`` (and for both dtypes its
    ``1 - lambd * eta``) are rounded through float32.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    step = state.get("step", 0) + 1
    eta = state.get("eta", lr)
    mu = state.get("mu", 1.0)
    ax = _zeros(state, "ax", p)
    if weight_decay != 0:
        g = g + dt(weight_decay) * p
    p = p * dt(1 - lambd * eta)
    p = p + dt(-eta) * g
    ax = ax + (p - ax) * dt(mu) if mu != 1 else p.copy()
    new_eta = lr / ((1 + lambd * lr * step) ** alpha)
    new_mu = 1 / max(1, step - t0)
    state.update(step=step, eta=new_eta, mu=new_mu, ax=ax)
    return p, state


# ---------------------------------------------------------------------------
# Adafactor
# ---------------------------------------------------------------------------


def torch_adafactor(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-2,
    beta2_decay: float = -0.8,
    eps: tuple = (None, 1e-3),
    d: float = 1.0,
    weight_decay: float = 0.0,
    maximize: bool = False,
):
    r"""``torch.optim.Adafactor``: state ``step`` and, for params of 2 or
    more dims, ``row_var`` (the grad's shape with the last dim 1) and
    ``col_var`` (the grad's shape with dim -2 set to 1); for 0-D and 1-D
    params, ``variance`` (the param's shape).

    PyTorch's algorithm box (``G`` of shape ``(..., n, m)``; the row and col
    factors reduce over the last and the second-to-last dims)::

        input: lr, β2 decay τ, eps (ε1, ε2), clipping threshold d,
               weight decay λ
        init:  R_0 = 0, C_0 = 0 (row and col factors), V̂_0 = 0 (vectors)
        for t = 1, 2, ...:
            G_t = -∇f(θ_{t-1}) if maximize else ∇f(θ_{t-1})
            β̂2_t = 1 - t^τ
            rho_t  = min(lr, 1 / sqrt(t))
            alpha_t  = max(ε2, RMS(θ_{t-1})) rho_t
            θ_t  = θ_{t-1} - lr λ θ_{t-1}
            if dim(G_t) > 1:
                R_t = β̂2_t R_{t-1} + (1 - β̂2_t) mean(G_t ⊙ G_t, dim=-1)
                C_t = β̂2_t C_{t-1} + (1 - β̂2_t) mean(G_t ⊙ G_t, dim=-2)
                V̂_t = R_t C_t / max(mean(R_t, dim=-2), ε1)
            else:
                V̂_t = β̂2_t V̂_{t-1} + (1 - β̂2_t) G_t ⊙ G_t
            U_t = G_t / max(sqrt(V̂_t), ε1)
            Û_t = U_t / max(1, RMS(U_t) / d)
            θ_t = θ_t - alpha_t Û_t

    (PyTorch's box writes sums, ``· 1_m``; its note and code use means.)
    ``ε1 = None`` means ``finfo(param.dtype).eps``.

    PyTorch's order, followed here: the moving averages are
    ``lerp(R, norm(G, dim=-1)² / m, t^τ)`` (likewise for C); ``V̂ = (R @ C)
    / clamp(mean(R, dim=-2), min=ε1)``; ``U = rsqrt(clamp(V̂, min=ε1²)) *
    G`` (``rsqrt`` as ``1 / sqrt``); the step is ``θ.add_(U, alpha=-alpha_t /
    max(1, ‖U‖ / (sqrt(numel) d)))``; alpha_t uses ``θ`` before the weight
    decay, and the weight decay multiplies by ``1 - lr λ``.

    Differs from PyTorch: the norms and means are NumPy's reductions (a
    different summation order than ATen's), so results agree to rounding,
    not bit for bit. In PyTorch an ``ε1 = None`` is resolved from the first
    param of the group and then reused for all of its params; here it is
    each param's own dtype.
    """
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, maximize)
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = float(np.finfo(p.dtype).eps)
    step = state.get("step", 0) + 1
    step_float = float(step)
    one_minus_beta2_t = step_float**beta2_decay
    rho_t = min(lr, 1 / (step_float**0.5))
    alpha = max(eps2, float(np.linalg.norm(p)) / (p.size**0.5)) * rho_t
    if weight_decay != 0:
        p = p * dt(1 - lr * weight_decay)
    if g.ndim > 1:
        row_shape = (*g.shape[:-1], 1)
        col_shape = (*g.shape[:-2], 1, g.shape[-1])
        row_var = state.get("row_var")
        row_var = np.zeros(row_shape, p.dtype) if row_var is None else row_var
        col_var = state.get("col_var")
        col_var = np.zeros(col_shape, p.dtype) if col_var is None else col_var
        row_mean = np.linalg.norm(g, axis=-1, keepdims=True)
        row_mean = np.square(row_mean)
        row_mean = row_mean / dt(g.shape[-1])
        row_var = _lerp(row_var, row_mean, one_minus_beta2_t)
        col_mean = np.linalg.norm(g, axis=-2, keepdims=True)
        col_mean = np.square(col_mean)
        col_mean = col_mean / dt(g.shape[-2])
        col_var = _lerp(col_var, col_mean, one_minus_beta2_t)
        var_estimate = row_var @ col_var
        row_var_mean = np.maximum(np.mean(row_var, axis=-2, keepdims=True), dt(eps1))
        var_estimate = var_estimate / row_var_mean
        state.update(row_var=row_var, col_var=col_var)
    else:
        variance = _zeros(state, "variance", p)
        grad_squared = g * g
        variance = _lerp(variance, grad_squared, one_minus_beta2_t)
        var_estimate = variance.copy()
        state["variance"] = variance
    update = np.maximum(var_estimate, dt(eps1 * eps1))
    update = dt(1) / np.sqrt(update)
    update = update * g
    denom = max(1.0, float(np.linalg.norm(update)) / ((update.size**0.5) * d))
    state["step"] = step
    return p + dt(-alpha / denom) * update, state


# ---------------------------------------------------------------------------
# Muon
# ---------------------------------------------------------------------------


def _zeropower_via_newtonschulz(
    grad: np.ndarray, ns_coefficients: tuple, ns_steps: int, eps: float
) -> np.ndarray:
    """PyTorch's quintic Newton-Schulz orthogonalization of a 2-D matrix, in
    ``grad``'s dtype (PyTorch: bfloat16)::

        X = G (transposed when rows > cols);  X = X / max(‖X‖_F, eps)
        repeat ns_steps times:
            A = X Xᵀ
            B = b A + c A A        # torch.addmm(A, A, A, beta=b, alpha=c)
            X = a X + B X          # torch.addmm(X, B, X, beta=a)
        return X (transposed back)
    """
    dt = grad.dtype.type
    a, b, c = ns_coefficients
    x = grad.T if grad.shape[0] > grad.shape[1] else grad
    x = x / np.maximum(np.linalg.norm(x), dt(eps))
    for _ in range(ns_steps):
        gram_matrix = x @ x.T
        gram_update = dt(b) * gram_matrix + dt(c) * (gram_matrix @ gram_matrix)
        x = dt(a) * x + gram_update @ x
    if grad.shape[0] > grad.shape[1]:
        x = x.T
    return np.ascontiguousarray(x)


def _adjust_lr(lr: float, adjust_lr_fn: str | None, param_shape: tuple) -> float:
    """PyTorch's ``_adjust_lr`` for Muon (``A, B`` = rows, cols)."""
    rows, cols = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        adjusted_ratio = max(1, rows / cols) ** 0.5
    elif adjust_lr_fn == "match_rms_adamw":
        adjusted_ratio = 0.2 * max(rows, cols) ** 0.5
    else:
        adjusted_ratio = 1.0
    return lr * adjusted_ratio


def torch_muon(
    param: np.ndarray,
    grad: np.ndarray,
    state: State | None = None,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple = MUON_NS_COEFFICIENTS,
    eps: float = MUON_EPS,
    ns_steps: int = MUON_NS_STEPS,
    adjust_lr_fn: str | None = None,
):
    r"""``torch.optim.Muon`` (2-D params only): state ``momentum_buffer``.

    PyTorch's algorithm box::

        input: lr, weight decay λ, momentum μ, nesterov, NS coefficients
               (a, b, c), eps ε, NS steps k
        init:  B_0 = 0
        for t = 1, 2, ...:
            g_t = ∇f(θ_{t-1})
            B_t = μ B_{t-1} + g_t
            B̃_t = g_t + μ B_t if nesterov else B_t
            O_t = NS_k^{(a,b,c)}(B̃_t; ε)
            θ_t = θ_{t-1} - lr λ θ_{t-1}          (decoupled weight decay)
            lr'  = AdjustLR(lr; shape(θ_t))
            θ_t = θ_t - lr' O_t

    with ``AdjustLR`` = ``lr sqrt(max(1, A / B))`` for ``adjust_lr_fn`` None or
    ``"original"`` and ``0.2 lr sqrt(max(A, B))`` for ``"match_rms_adamw"``
    (``A, B`` = rows, cols). The weight decay uses the unadjusted ``lr``.

    PyTorch's code, followed here, keeps the buffer as a moving average:
    ``B_t = lerp(B_{t-1}, g_t, 1 - μ)`` and, with nesterov,
    ``B̃_t = lerp(g_t, B_t, μ)``: ``(1 - μ)`` times the box's ``B_t`` and
    ``B̃_t``. Newton-Schulz first divides by the Frobenius norm, so ``O_t``
    is the same unless that norm is below ``ε``; the stored
    ``momentum_buffer`` is PyTorch's (the scaled one). There is no
    ``maximize`` in Muon.

    Differs from PyTorch: Newton-Schulz runs in the param's dtype here, in
    bfloat16 in PyTorch (``grad.bfloat16()``; the bfloat16 result is then
    added to the param); and its norm and matrix products are NumPy's
    (BLAS) reductions. So this agrees with PyTorch only to about bfloat16
    precision (2-3 digits); the momentum buffer and the weight decay are
    exact.
    """
    if np.ndim(param) != 2:
        raise ValueError(f"Muon only supports 2D parameters, got shape {np.shape(param)}")
    state = dict(state or {})
    dt, p, g = _prepare(param, grad, False)
    buf = _lerp(_zeros(state, "momentum_buffer", g), g, 1 - momentum)
    state["momentum_buffer"] = buf
    update = _lerp(g, buf, momentum) if nesterov else buf
    update = _zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
    adjusted_lr = _adjust_lr(lr, adjust_lr_fn, p.shape)
    p = p * dt(1 - lr * weight_decay)
    return p + dt(-adjusted_lr) * update, state
