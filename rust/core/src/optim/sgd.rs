//! SGD with momentum, dampening, Nesterov and weight decay, as in the
//! algorithm box of `torch.optim.SGD`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              if wd != 0
//! b = g                       on the first momentum step (no dampening)
//! b = b * mu + (1 - tau) * g  afterwards
//! g = g + mu * b              if nesterov, else g = b
//! p = p + (-lr) * g
//! ```
//!
//! The lecture writes momentum as `v = rho * v - lr * dx; x += v`: the same
//! trajectory for a constant lr (`v = -lr * b`). Its Nesterov form,
//! `x += -rho * v_old + (1 + rho) * v`, is the change of variables
//! `x~ = x + rho * v` of the look-ahead update; PyTorch's update above
//! is that same rule written in the look-ahead variables.

use super::{check_len, run_all, Ptrs, Work};
use crate::error::{check_non_negative, check_range, Error, Result};
use crate::simd::{Lanes, Real, Step};

/// Hyperparameters of SGD, with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdHyper {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for SgdHyper {
    fn default() -> Self {
        SgdHyper {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl SgdHyper {
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_non_negative("momentum", self.momentum)?;
        check_range("dampening", self.dampening, 0.0, 1.0, false, "in [0, 1]")?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "nesterov".into(),
                value: 1.0,
                expected: "momentum > 0 and dampening = 0",
            });
        }
        Ok(())
    }
}

/// One param's slices for an SGD step.
pub struct SgdTensor<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    /// Needed when momentum != 0; ignored (may be empty) otherwise.
    pub momentum_buffer: &'a mut [T],
    /// True when the buffer holds no history yet: it is set to the gradient
    /// (PyTorch's `torch.clone(grad)`), whatever it contains.
    pub first: bool,
    pub hyper: SgdHyper,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct SgdConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    /// `Some` when momentum != 0.
    momentum: Option<T>,
    one_minus_dampening: T,
    first: bool,
    nesterov: bool,
    neg_lr: T,
}

impl<T: Real> SgdConsts<T> {
    fn new(h: &SgdHyper, first: bool) -> Self {
        SgdConsts {
            maximize: h.maximize,
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            momentum: (h.momentum != 0.0).then(|| T::from_f64(h.momentum)),
            one_minus_dampening: T::from_f64(1.0 - h.dampening),
            first,
            nesterov: h.nesterov,
            neg_lr: T::from_f64(-h.lr),
        }
    }
}

/// Streams: param, momentum_buffer | grad.
type SgdWork<'a, T> = Work<'a, T, SgdConsts<T>, 2, 1>;

impl<T: Real> Step<T> for Ptrs<T, SgdConsts<T>, 2, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let c = &self.c;
        // `wrapping_add`: an unused buffer is a dangling empty-slice pointer.
        let [p_ptr, b_ptr] = self.w.map(|p| p.wrapping_add(i));
        let mut g = L::load(self.r[0].add(i));
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        if let Some(mu) = c.momentum {
            let b = if c.first {
                g
            } else {
                L::load(b_ptr)
                    .mul(L::splat(mu))
                    .add(L::splat(c.one_minus_dampening).mul(g))
            };
            b.store(b_ptr);
            g = if c.nesterov {
                g.add(L::splat(mu).mul(b))
            } else {
                b
            };
        }
        p.add(L::splat(c.neg_lr).mul(g)).store(p_ptr);
    }
}

/// One SGD step over every tensor, in place, as one parallel job.
/// Checks everything first: an error means nothing was written.
pub fn sgd_step<T: Real>(tensors: Vec<SgdTensor<'_, T>>) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        t.hyper.validate()?;
        let n = t.param.len();
        check_len(i, "grad", n, t.grad.len())?;
        if t.hyper.momentum != 0.0 {
            check_len(i, "momentum_buffer", n, t.momentum_buffer.len())?;
        }
    }
    let work: Vec<SgdWork<'_, T>> = tensors
        .into_iter()
        .map(|t| {
            let buffer: &mut [T] = if t.hyper.momentum != 0.0 {
                t.momentum_buffer
            } else {
                &mut []
            };
            Work {
                w: [t.param, buffer],
                r: [t.grad],
                c: SgdConsts::new(&t.hyper, t.first),
            }
        })
        .collect();
    run_all(work)
}
