//! RMSprop, as in the algorithm box of `torch.optim.RMSprop`:
//!
//! ```text
//! g = -g                          if maximize
//! g = g + wd * p                  if wd != 0
//! v = v * alpha + (1 - alpha) * g * g
//! ga = lerp(ga, g, 1 - alpha)     if centered, and v~ = v + (-1) * ga * ga
//! d = sqrt(v~) + eps              (v~ = v when not centered)
//! b = b * mu + g / d; p = p + (-lr) * b     if momentum > 0
//! p = p + (-lr) * g / d                     otherwise
//! ```
//!
//! The lecture's RMSProp (`decay_rate` = alpha, eps outside the root) is the
//! uncentered form without momentum. TensorFlow/Keras put eps inside the
//! root; PyTorch and this kernel add it outside.

use super::{check_len, run_all, Lerp, Ptrs, Work};
use crate::error::{check_non_negative, check_range, Result};
use crate::simd::{Lanes, Real, Step};

/// Hyperparameters of RMSprop, with PyTorch's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropHyper {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl Default for RmspropHyper {
    fn default() -> Self {
        RmspropHyper {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl RmspropHyper {
    pub fn validate(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_range("alpha", self.alpha, 0.0, 1.0, false, "in [0, 1]")?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        check_non_negative("momentum", self.momentum)
    }
}

/// One param's slices for an RMSprop step.
pub struct RmspropTensor<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub square_avg: &'a mut [T],
    /// Needed when momentum > 0; ignored (may be empty) otherwise.
    pub momentum_buffer: &'a mut [T],
    /// Needed when centered; ignored (may be empty) otherwise.
    pub grad_avg: &'a mut [T],
    pub hyper: RmspropHyper,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct RmspropConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    alpha: T,
    one_minus_alpha: T,
    /// `Some` when centered.
    grad_avg: Option<Lerp<T>>,
    eps: T,
    /// `Some` when momentum > 0.
    momentum: Option<T>,
    neg_lr: T,
}

/// Streams: param, square_avg, momentum_buffer, grad_avg | grad.
type RmspropWork<'a, T> = Work<'a, T, RmspropConsts<T>, 4, 1>;

impl<T: Real> Step<T> for Ptrs<T, RmspropConsts<T>, 4, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let c = &self.c;
        // `wrapping_add`: unused buffers are dangling empty-slice pointers.
        let [p_ptr, v_ptr, b_ptr, ga_ptr] = self.w.map(|p| p.wrapping_add(i));
        let mut g = L::load(self.r[0].add(i));
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        let v = L::load(v_ptr)
            .mul(L::splat(c.alpha))
            .add(L::splat(c.one_minus_alpha).mul(g).mul(g));
        v.store(v_ptr);
        let avg = match &c.grad_avg {
            Some(lerp) => {
                let ga = lerp.apply(L::load(ga_ptr), g);
                ga.store(ga_ptr);
                // addcmul with value -1: `(-1 * ga) * ga` is `(-ga) * ga`.
                v.add(ga.neg().mul(ga))
            }
            None => v,
        };
        let avg = avg.sqrt().add(L::splat(c.eps));
        let p = match c.momentum {
            Some(mu) => {
                let b = L::load(b_ptr).mul(L::splat(mu)).add(g.div(avg));
                b.store(b_ptr);
                p.add(L::splat(c.neg_lr).mul(b))
            }
            None => p.add(L::splat(c.neg_lr).mul(g).div(avg)),
        };
        p.store(p_ptr);
    }
}

/// One RMSprop step over every tensor, in place, as one parallel job.
/// Checks everything first: an error means nothing was written.
pub fn rmsprop_step<T: Real>(tensors: Vec<RmspropTensor<'_, T>>) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        t.hyper.validate()?;
        let n = t.param.len();
        check_len(i, "grad", n, t.grad.len())?;
        check_len(i, "square_avg", n, t.square_avg.len())?;
        if t.hyper.momentum > 0.0 {
            check_len(i, "momentum_buffer", n, t.momentum_buffer.len())?;
        }
        if t.hyper.centered {
            check_len(i, "grad_avg", n, t.grad_avg.len())?;
        }
    }
    let work: Vec<RmspropWork<'_, T>> = tensors
        .into_iter()
        .map(|t| {
            let h = t.hyper;
            let buffer: &mut [T] = if h.momentum > 0.0 {
                t.momentum_buffer
            } else {
                &mut []
            };
            let grad_avg: &mut [T] = if h.centered { t.grad_avg } else { &mut [] };
            Work {
                w: [t.param, t.square_avg, buffer, grad_avg],
                r: [t.grad],
                c: RmspropConsts {
                    maximize: h.maximize,
                    weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
                    alpha: T::from_f64(h.alpha),
                    one_minus_alpha: T::from_f64(1.0 - h.alpha),
                    grad_avg: h.centered.then(|| Lerp::new(1.0 - h.alpha)),
                    eps: T::from_f64(h.eps),
                    momentum: (h.momentum > 0.0).then(|| T::from_f64(h.momentum)),
                    neg_lr: T::from_f64(-h.lr),
                },
            }
        })
        .collect();
    run_all(work)
}
