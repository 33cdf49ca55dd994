//! LARS (You et al. 2017, "Large Batch Training of Convolutional Networks",
//! Algorithm 1): a per-tensor local learning rate from the norms of the
//! param and its grad, then torch's SGD momentum (and Nesterov) on the
//! scaled grad, with the global learning rate inside the momentum as in
//! the paper:
//!
//! ```text
//! local = tc * ||p|| / (||g|| + wd * ||p|| + eps)  (1 where ||p|| or ||g|| is 0)
//! d = (g + wd * p) * (lr * local)                  (g + wd * p: torch's add)
//! b = d  on the first step,  b = b * momentum + d  afterwards
//! d = d + momentum * b  if nesterov, else d = b
//! p = p + (-1) * d
//! ```
//!
//! `momentum = 0` keeps no buffer (`p = p - d`). The norms are summed in a
//! first pass that only reads (p, g: 8 bytes per element) by
//! `optimize::reduce`'s fixed trees, so the local rate is the same for any
//! thread count and SIMD level; the second pass is SGD's (20 bytes).

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use super::sgd::{Sgd, SgdConsts, SgdHyper};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of LARS (`lr` has no default in the Python class).
    pub struct LarsHyper {
        pub lr: f64 = 1.0,
        pub momentum: f64 = 0.9,
        pub weight_decay: f64 = 0.0,
        pub trust_coefficient: f64 = 1e-3,
        pub eps: f64 = 1e-8,
        pub nesterov: bool = false,
    }
}

/// LARS: SGD momentum with a layer-wise (per-tensor) learning rate.
pub struct Lars;

#[derive(Clone, Copy, Debug)]
pub struct LarsConsts<T> {
    /// SGD with lr 1 and no weight decay, on the scaled grad.
    sgd: SgdConsts<T>,
    weight_decay: Option<T>,
    weight_decay_f64: f64,
    trust_coefficient: f64,
    eps: f64,
    lr: f64,
    /// `lr * local`, set by `finish`.
    coef: T,
}

/// The SGD that LARS runs on its scaled grad.
fn sgd(h: &LarsHyper) -> SgdHyper {
    SgdHyper {
        lr: 1.0,
        momentum: h.momentum,
        dampening: 0.0,
        weight_decay: 0.0,
        nesterov: h.nesterov,
        maximize: false,
    }
}

impl Rule for Lars {
    type Hyper = LarsHyper;
    const NAME: &'static str = "lars";
    const SLICEABLE: bool = false;
    const SLOTS: &'static [Slot] = &[Slot::param("momentum_buffer").signed()];

    fn validate(h: &LarsHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_non_negative("weight_decay", h.weight_decay)?;
        check_non_negative("trust_coefficient", h.trust_coefficient)?;
        check_non_negative("eps", h.eps)?;
        // momentum's range and nesterov's requirement, as SGD says them.
        Sgd::validate(&sgd(h))
    }

    fn uses(h: &LarsHyper, _slot: usize, _ndim: usize) -> bool {
        h.momentum != 0.0
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, LarsHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }
}

impl Elementwise for Lars {
    type Consts<T: Real> = LarsConsts<T>;
    const NORMS: bool = true;

    fn consts<T: Real>(
        h: &LarsHyper,
        step: u64,
        fresh: &[bool; MAX_SLOTS],
        scalars: &mut [f64; MAX_SLOTS],
    ) -> LarsConsts<T> {
        LarsConsts {
            sgd: Sgd::consts::<T>(&sgd(h), step, fresh, scalars),
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            weight_decay_f64: h.weight_decay,
            trust_coefficient: h.trust_coefficient,
            eps: h.eps,
            lr: h.lr,
            coef: T::from_f64(h.lr),
        }
    }

    #[inline(always)]
    unsafe fn sums<T: Real, L: Lanes<T>>(
        _c: &LarsConsts<T>,
        g: L,
        p_ptr: *mut T,
        _s: [*mut T; MAX_SLOTS],
    ) -> [L; 2] {
        let p = L::load(p_ptr);
        [p.mul(p), g.mul(g)]
    }

    fn finish<T: Real>(c: &mut LarsConsts<T>, [p_sq, g_sq]: [f64; 2]) {
        let (p_norm, g_norm) = (p_sq.sqrt(), g_sq.sqrt());
        let local = if p_norm > 0.0 && g_norm > 0.0 {
            c.trust_coefficient * p_norm / (g_norm + c.weight_decay_f64 * p_norm + c.eps)
        } else {
            1.0
        };
        c.coef = T::from_f64(c.lr * local);
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &LarsConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(L::load(p_ptr)));
        }
        Sgd::at::<T, L>(&c.sgd, g.mul(L::splat(c.coef)), p_ptr, s);
    }
}
