//! Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms",
//! Algorithm 2), in the order of operations of the authors' reference code
//! (lion-pytorch):
//!
//! ```text
//! g = -g                                      if maximize
//! p = p * (1 - lr * wd)                       (decoupled weight decay)
//! u = sign(m * beta1 + (1 - beta1) * g)       (sign 0 at 0, NaN at NaN)
//! p = p + (-lr) * u
//! m = m * beta2 + (1 - beta2) * g
//! ```

use super::adam::{check_betas, Decay};
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Lion, with the paper's and lion-pytorch's defaults.
    pub struct LionHyper {
        pub lr: f64 = 1e-4,
        pub betas: (f64, f64) = (0.9, 0.99),
        pub weight_decay: f64 = 0.0,
        pub maximize: bool = false,
    }
}

/// Lion: the sign of an interpolated momentum.
pub struct Lion;

#[derive(Clone, Copy, Debug)]
pub struct LionConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    neg_lr: T,
}

impl Rule for Lion {
    type Hyper = LionHyper;
    const NAME: &'static str = "lion";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::param("exp_avg").signed()];

    fn validate(h: &LionHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, LionHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Lion {
    type Consts<T: Real> = LionConsts<T>;

    fn consts<T: Real>(
        h: &LionHyper,
        _step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> LionConsts<T> {
        let (beta1, beta2) = h.betas;
        LionConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, true),
            beta1: T::from_f64(beta1),
            one_minus_beta1: T::from_f64(1.0 - beta1),
            beta2: T::from_f64(beta2),
            one_minus_beta2: T::from_f64(1.0 - beta2),
            neg_lr: T::from_f64(-h.lr),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &LionConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let m_ptr = s[0];
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let m = L::load(m_ptr);
        let interp = m
            .mul(L::splat(c.beta1))
            .add(L::splat(c.one_minus_beta1).mul(g));
        let (zero, one) = (L::splat(T::ZERO), L::splat(T::ONE));
        let sign = interp.sign_select(one, one.neg(), zero, interp);
        p.add(L::splat(c.neg_lr).mul(sign)).store(p_ptr);
        m.mul(L::splat(c.beta2))
            .add(L::splat(c.one_minus_beta2).mul(g))
            .store(m_ptr);
    }
}
