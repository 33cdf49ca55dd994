//! Adagrad, as in the algorithm box of `torch.optim.Adagrad`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              if wd != 0
//! clr = lr / (1 + (t - 1) * lr_decay)
//! s = s + 1 * g * g           (s starts at initial_accumulator_value)
//! p = p + (-clr) * g / (sqrt(s) + eps)
//! ```
//!
//! The lecture's AdaGrad is the same with `lr_decay = 0` (eps outside the
//! root, as here).

use super::{check_len, check_step, run_all, Ptrs, Work};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real, Step};

/// Hyperparameters of Adagrad, with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradHyper {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    /// Only used to fill a new accumulator (by the caller); checked here.
    pub initial_accumulator_value: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl Default for AdagradHyper {
    fn default() -> Self {
        AdagradHyper {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

impl AdagradHyper {
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_non_negative("lr_decay", self.lr_decay)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_non_negative("eps", self.eps)
    }
}

/// One param's slices for an Adagrad step.
pub struct AdagradTensor<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub sum: &'a mut [T],
    /// This param's step count including the step being taken (1 first).
    pub step: u64,
    pub hyper: AdagradHyper,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct AdagradConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    neg_clr: T,
    eps: T,
}

/// Streams: param, sum | grad.
type AdagradWork<'a, T> = Work<'a, T, AdagradConsts<T>, 2, 1>;

impl<T: Real> Step<T> for Ptrs<T, AdagradConsts<T>, 2, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let c = &self.c;
        let [p_ptr, s_ptr] = self.w.map(|p| p.add(i));
        let mut g = L::load(self.r[0].add(i));
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        // addcmul with value 1: `1 * g` is exact, so this is `s + g * g`.
        let s = L::load(s_ptr).add(g.mul(g));
        s.store(s_ptr);
        let std = s.sqrt().add(L::splat(c.eps));
        p.add(L::splat(c.neg_clr).mul(g).div(std)).store(p_ptr);
    }
}

/// One Adagrad step over every tensor, in place, as one parallel job.
/// Checks everything first: an error means nothing was written.
pub fn adagrad_step<T: Real>(tensors: Vec<AdagradTensor<'_, T>>) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        t.hyper.validate()?;
        check_step(i, t.step)?;
        let n = t.param.len();
        check_len(i, "grad", n, t.grad.len())?;
        check_len(i, "sum", n, t.sum.len())?;
    }
    let work: Vec<AdagradWork<'_, T>> = tensors
        .into_iter()
        .map(|t| {
            let h = &t.hyper;
            let clr = h.lr / (1.0 + (t.step - 1) as f64 * h.lr_decay);
            Work {
                w: [t.param, t.sum],
                r: [t.grad],
                c: AdagradConsts {
                    maximize: h.maximize,
                    weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
                    neg_clr: T::from_f64(-clr),
                    eps: T::from_f64(h.eps),
                },
            }
        })
        .collect();
    run_all(work)
}
