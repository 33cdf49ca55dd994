//! Adam and AdamW, as in the algorithm boxes of `torch.optim.Adam` and
//! `torch.optim.AdamW`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              (Adam, L2 penalty)      | p = p * (1 - lr * wd)   (AdamW)
//! m = lerp(m, g, 1 - beta1)
//! v = v * beta2 + (1 - beta2) * g * g
//! vmax = maximum(vmax, v)     if amsgrad, and v = vmax below
//! p = p + (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! The lecture (cs231n) writes the same update as
//! `p -= lr * m_hat / (sqrt(v_hat) + eps)` with `m_hat = m / (1 - beta1^t)`,
//! `v_hat = v / (1 - beta2^t)`: equal in exact arithmetic, but PyTorch folds
//! the corrections into the step size and the denominator, which is what is
//! computed here. `t` counts steps from 1, per tensor.

use super::{check_len, check_step, run_all, Lerp, Ptrs, Work};
use crate::error::{check_non_negative, check_range, Result};
use crate::simd::{Lanes, Real, Step};

/// Hyperparameters of Adam / AdamW, with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// AdamW: decay the param by `lr * weight_decay` instead of adding
    /// `weight_decay * param` to the gradient.
    pub decoupled: bool,
}

impl Default for AdamHyper {
    /// `torch.optim.Adam`'s defaults.
    fn default() -> Self {
        AdamHyper {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled: false,
        }
    }
}

impl AdamHyper {
    /// `torch.optim.AdamW`'s defaults.
    pub fn adamw() -> Self {
        AdamHyper {
            weight_decay: 1e-2,
            decoupled: true,
            ..AdamHyper::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_range("betas[0]", self.beta1, 0.0, 1.0, true, "in [0, 1)")?;
        check_range("betas[1]", self.beta2, 0.0, 1.0, true, "in [0, 1)")?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)
    }
}

/// One param's slices for an Adam step.
pub struct AdamTensor<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub exp_avg: &'a mut [T],
    pub exp_avg_sq: &'a mut [T],
    /// Needed with amsgrad; ignored (may be empty) without.
    pub max_exp_avg_sq: &'a mut [T],
    /// This param's step count including the step being taken (1 first).
    pub step: u64,
    pub hyper: AdamHyper,
}

#[derive(Clone, Copy, Debug)]
enum Decay<T> {
    None,
    L2(T),
    /// Multiply the param by this factor (`1 - lr * wd`).
    Decoupled(T),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamConsts<T> {
    maximize: bool,
    amsgrad: bool,
    decay: Decay<T>,
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
    neg_step_size: T,
    bias_correction2_sqrt: T,
    eps: T,
}

impl<T: Real> AdamConsts<T> {
    fn new(h: &AdamHyper, step: u64) -> Self {
        let t = step as f64;
        let bias_correction1 = 1.0 - h.beta1.powf(t);
        let bias_correction2 = 1.0 - h.beta2.powf(t);
        let decay = if h.weight_decay == 0.0 {
            Decay::None
        } else if h.decoupled {
            Decay::Decoupled(T::from_f64(1.0 - h.lr * h.weight_decay))
        } else {
            Decay::L2(T::from_f64(h.weight_decay))
        };
        AdamConsts {
            maximize: h.maximize,
            amsgrad: h.amsgrad,
            decay,
            beta1: Lerp::new(1.0 - h.beta1),
            beta2: T::from_f64(h.beta2),
            one_minus_beta2: T::from_f64(1.0 - h.beta2),
            neg_step_size: T::from_f64(-(h.lr / bias_correction1)),
            bias_correction2_sqrt: T::from_f64(bias_correction2.sqrt()),
            eps: T::from_f64(h.eps),
        }
    }
}

/// Streams: param, exp_avg, exp_avg_sq, max_exp_avg_sq | grad.
type AdamWork<'a, T> = Work<'a, T, AdamConsts<T>, 4, 1>;

impl<T: Real> Step<T> for Ptrs<T, AdamConsts<T>, 4, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let c = &self.c;
        // `wrapping_add`: the unused vmax stream is a dangling empty-slice pointer.
        let [p_ptr, m_ptr, v_ptr, vmax_ptr] = self.w.map(|p| p.wrapping_add(i));
        let mut g = L::load(self.r[0].add(i));
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        match c.decay {
            Decay::None => {}
            Decay::L2(wd) => g = g.add(L::splat(wd).mul(p)),
            Decay::Decoupled(factor) => p = p.mul(L::splat(factor)),
        }
        let m = c.beta1.apply(L::load(m_ptr), g);
        m.store(m_ptr);
        let v = L::load(v_ptr)
            .mul(L::splat(c.beta2))
            .add(L::splat(c.one_minus_beta2).mul(g).mul(g));
        v.store(v_ptr);
        let v = if c.amsgrad {
            let vmax = L::load(vmax_ptr).maximum(v);
            vmax.store(vmax_ptr);
            vmax
        } else {
            v
        };
        let denom = v
            .sqrt()
            .div(L::splat(c.bias_correction2_sqrt))
            .add(L::splat(c.eps));
        p.add(L::splat(c.neg_step_size).mul(m).div(denom))
            .store(p_ptr);
    }
}

/// One Adam / AdamW step over every tensor, in place, as one parallel job.
/// Checks everything first: an error means nothing was written.
pub fn adam_step<T: Real>(tensors: Vec<AdamTensor<'_, T>>) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        t.hyper.validate()?;
        check_step(i, t.step)?;
        let n = t.param.len();
        check_len(i, "grad", n, t.grad.len())?;
        check_len(i, "exp_avg", n, t.exp_avg.len())?;
        check_len(i, "exp_avg_sq", n, t.exp_avg_sq.len())?;
        if t.hyper.amsgrad {
            check_len(i, "max_exp_avg_sq", n, t.max_exp_avg_sq.len())?;
        }
    }
    let work: Vec<AdamWork<'_, T>> = tensors
        .into_iter()
        .map(|t| {
            let c = AdamConsts::new(&t.hyper, t.step);
            let vmax: &mut [T] = if t.hyper.amsgrad {
                t.max_exp_avg_sq
            } else {
                &mut []
            };
            Work {
                w: [t.param, t.exp_avg, t.exp_avg_sq, vmax],
                r: [t.grad],
                c,
            }
        })
        .collect();
    run_all(work)
}
