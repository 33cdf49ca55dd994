//! Adamax (Kingma & Ba 2015, section 7), as in the algorithm box and
//! single-tensor code of `torch.optim.Adamax`:
//!
//! ```text
//! g = -g                              if maximize
//! g = g + wd * p                      if wd != 0
//! m = lerp(m, g, 1 - beta1)
//! u = maximum(u * beta2, |g| + eps)   (NaN-propagating, as torch.maximum)
//! p = p + (-lr / (1 - beta1^t)) * m / u
//! ```

use super::adam::{check_betas, Decay};
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use super::Lerp;
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Adamax, with PyTorch's names and defaults.
    pub struct AdamaxHyper {
        pub lr: f64 = 2e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub maximize: bool = false,
    }
}

/// `torch.optim.Adamax`.
pub struct Adamax;

#[derive(Clone, Copy, Debug)]
pub struct AdamaxConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    beta1: Lerp<T>,
    beta2: T,
    eps: T,
    neg_clr: T,
}

impl Rule for Adamax {
    type Hyper = AdamaxHyper;
    const NAME: &'static str = "adamax";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("exp_avg").signed(),
        Slot::param("exp_inf").unsigned(),
    ];

    fn validate(h: &AdamaxHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AdamaxHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Adamax {
    type Consts<T: Real> = AdamaxConsts<T>;

    fn consts<T: Real>(
        h: &AdamaxHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> AdamaxConsts<T> {
        let (beta1, beta2) = h.betas;
        let bias_correction = 1.0 - beta1.powf(step as f64);
        AdamaxConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, false),
            beta1: Lerp::new(1.0 - beta1),
            beta2: T::from_f64(beta2),
            eps: T::from_f64(h.eps),
            neg_clr: T::from_f64(-(h.lr / bias_correction)),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &AdamaxConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [m_ptr, u_ptr, ..] = s;
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let m = c.beta1.apply(L::load(m_ptr), g);
        m.store(m_ptr);
        let u = L::load(u_ptr)
            .mul(L::splat(c.beta2))
            .maximum(g.abs().add(L::splat(c.eps)));
        u.store(u_ptr);
        p.add(L::splat(c.neg_clr).mul(m).div(u)).store(p_ptr);
    }
}
