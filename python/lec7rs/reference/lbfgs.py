"""Pure-NumPy references of the L-BFGS pieces (no Rust): the two-loop
recursion (Nocedal & Wright, Algorithm 7.4) and ``torch.optim.LBFGS.step``
on one flat parameter vector, transcribed line by line from PyTorch.

The strong-Wolfe line search is not copied here: ``torch_lbfgs`` imports
the production one, ``lec7rs.optim._strong_wolfe.torch_strong_wolfe`` (pure
NumPy, itself a transcription of PyTorch's ``_strong_wolfe``), so there is
one copy of it; what this module checks is the L-BFGS step around it."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..optim._strong_wolfe import torch_strong_wolfe

__all__ = ["lbfgs_two_loop", "torch_lbfgs", "torch_strong_wolfe"]


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
    calls (start with ``{}``). Returns the loss at the start of the step.
    As recent PyTorch, the strong-Wolfe search is given the evaluations left
    in the step (``max_ls = max_eval - current_evals``)."""
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

            # Recent PyTorch: the search gets the evaluations left in the step.
            loss, flat_grad, t, ls_func_evals = torch_strong_wolfe(
                obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
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
