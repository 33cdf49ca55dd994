"""Pure-NumPy references of the L-BFGS pieces (no Rust): the two-loop
recursion (Nocedal & Wright, Algorithm 7.4) and ``torch.optim.LBFGS.step``
on one flat parameter vector, transcribed line by line from PyTorch."""

from __future__ import annotations

from typing import Callable

import numpy as np


def lbfgs_two_loop(s: list, y: list, v: np.ndarray, gamma: float | None = None) -> np.ndarray:
    """``H v`` for the L-BFGS inverse Hessian approximation of the pairs
    ``(s[i], y[i])``, oldest first::

        q = v
        for i = k-1 .. 0:  alpha_i = rho_i s_i'q;  q = q - alpha_i y_i
        r = gamma q                  (gamma = s_{k-1}'y_{k-1} / y_{k-1}'y_{k-1})
        for i = 0 .. k-1:  beta_i = rho_i y_i'r;   r = r + (alpha_i - beta_i) s_i
        return r                     (rho_i = 1 / s_i'y_i)

    The L-BFGS search direction is ``-H g``. With no pairs, ``H = I``.
    """
    v = np.asarray(v, dtype=np.float64)
    k = len(s)
    if k == 0:
        return v.copy()
    rho = [1.0 / float(np.dot(s[i], y[i])) for i in range(k)]
    if gamma is None:
        gamma = float(np.dot(s[-1], y[-1])) / float(np.dot(y[-1], y[-1]))
    q = v.copy()
    alpha = [0.0] * k
    for i in range(k - 1, -1, -1):
        alpha[i] = rho[i] * float(np.dot(s[i], q))
        q = q - alpha[i] * y[i]
    r = gamma * q
    for i in range(k):
        beta = rho[i] * float(np.dot(y[i], r))
        r = r + (alpha[i] - beta) * s[i]
    return r


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    # IEEE arithmetic as PyTorch's tensors do it: a division by zero or a NaN
    # gives inf or NaN (then the midpoint below), never a Python exception.
    with np.errstate(all="ignore"):
        return float(_cubic(*map(np.float64, (x1, f1, g1, x2, f2, g2)), bounds))


def _cubic(x1, f1, g1, x2, f2, g2, bounds):
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def torch_strong_wolfe(
    obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25
):
    """PyTorch's ``_strong_wolfe`` (from minFunc: bracketing, then zoom with
    cubic interpolation) on flat NumPy vectors. ``obj_func(x, t, d) ->
    (f, g)`` at ``x + t d``; returns ``(f, g, t, evaluations)``."""
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t]
            bracket_f = [f_new]
            bracket_g = [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step)
        )
        t_prev = tmp
        f_prev = f_new
        g_prev = g_new.copy()
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.copy()
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.copy()
            bracket_gtd[low_pos] = gtd_new
    if len(bracket) == 1:
        # PyTorch indexes bracket[1] here when the loss is NaN (the
        # comparison that picks low_pos fails): there is one point.
        low_pos = 0
    t = bracket[low_pos]
    f_new = bracket_f[low_pos]
    g_new = bracket_g[low_pos]
    return f_new, g_new, t, ls_func_evals


def torch_lbfgs(
    closure: Callable[[np.ndarray], tuple],
    x: np.ndarray,
    state: dict,
    lr: float = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: float = 1e-7,
    tolerance_change: float = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> float:
    """One ``torch.optim.LBFGS.step`` on the flat vector ``x`` (updated in
    place). ``closure(x) -> (loss, flat_grad)``; ``state`` persists across
    calls (start with ``{}``). Returns the loss at the start of the step."""
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    state.setdefault("func_evals", 0)
    state.setdefault("n_iter", 0)

    def evaluate():
        loss, grad = closure(x)
        return float(loss), np.array(grad, dtype=x.dtype).reshape(-1)

    orig_loss, flat_grad = evaluate()
    loss = orig_loss
    current_evals = 1
    state["func_evals"] += 1
    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
    if opt_cond:
        return orig_loss
    d = state.get("d")
    t = state.get("t")
    old_dirs = state.get("old_dirs")
    old_stps = state.get("old_stps")
    ro = state.get("ro")
    h_diag = state.get("H_diag")
    prev_flat_grad = state.get("prev_flat_grad")
    prev_loss = state.get("prev_loss")
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state["n_iter"] += 1
        if state["n_iter"] == 1:
            d = -flat_grad
            old_dirs, old_stps, ro = [], [], []
            h_diag = 1
        else:
            y = flat_grad - prev_flat_grad
            s = d * t
            ys = y.dot(s)
            if ys > 1e-10:
                if len(old_dirs) == history_size:
                    old_dirs.pop(0)
                    old_stps.pop(0)
                    ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                h_diag = ys / y.dot(y)
            num_old = len(old_dirs)
            al = [None] * history_size
            q = -flat_grad
            for i in range(num_old - 1, -1, -1):
                al[i] = old_stps[i].dot(q) * ro[i]
                q = q - al[i] * old_dirs[i]
            d = r = q * h_diag
            for i in range(num_old):
                be_i = old_dirs[i].dot(r) * ro[i]
                r += old_stps[i] * (al[i] - be_i)
        prev_flat_grad = flat_grad.copy()
        prev_loss = loss
        if state["n_iter"] == 1:
            t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr
        else:
            t = lr
        gtd = flat_grad.dot(d)
        if gtd > -tolerance_change:
            break
        ls_func_evals = 0
        if line_search_fn is not None:
            if line_search_fn != "strong_wolfe":
                raise RuntimeError("only 'strong_wolfe' is supported")
            x_init = x.copy()

            def obj_func(x_, t_, d_, x=x):
                x[:] = x_ + t_ * d_
                out = evaluate()
                x[:] = x_
                return out

            loss, flat_grad, t, ls_func_evals = torch_strong_wolfe(
                obj_func, x_init, t, d, loss, flat_grad, gtd
            )
            x += t * d
            opt_cond = np.abs(flat_grad).max() <= tolerance_grad
        else:
            x += t * d
            if n_iter != max_iter:
                loss, flat_grad = evaluate()
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                ls_func_evals = 1
        current_evals += ls_func_evals
        state["func_evals"] += ls_func_evals
        if n_iter == max_iter:
            break
        if current_evals >= max_eval:
            break
        if opt_cond:
            break
        if np.abs(d * t).max() <= tolerance_change:
            break
        if abs(loss - prev_loss) < tolerance_change:
            break
    state.update(
        d=d,
        t=t,
        old_dirs=old_dirs,
        old_stps=old_stps,
        ro=ro,
        H_diag=h_diag,
        prev_flat_grad=prev_flat_grad,
        prev_loss=prev_loss,
    )
    return orig_loss
