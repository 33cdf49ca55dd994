//! Adadelta (Zeiler 2012), as in the algorithm box and single-tensor code of
//! `torch.optim.Adadelta`:
//!
//! ```text
//! g = -g                              if maximize
//! g = g + wd * p                      if wd != 0
//! v = v * rho + (1 - rho) * g * g
//! delta = sqrt(u + eps) / sqrt(v + eps) * g
//! u = u * rho + (1 - rho) * delta * delta
//! p = p + (-lr) * delta
//! ```

use super::adam::Decay;
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, check_range, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Adadelta, with PyTorch's names and defaults.
    pub struct AdadeltaHyper {
        pub lr: f64 = 1.0,
        pub rho: f64 = 0.9,
        pub eps: f64 = 1e-6,
        pub weight_decay: f64 = 0.0,
        pub maximize: bool = false,
    }
}

/// `torch.optim.Adadelta`.
pub struct Adadelta;

#[derive(Clone, Copy, Debug)]
pub struct AdadeltaConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
}

impl Rule for Adadelta {
    type Hyper = AdadeltaHyper;
    const NAME: &'static str = "adadelta";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("square_avg").unsigned(),
        Slot::param("acc_delta").unsigned(),
    ];

    fn validate(h: &AdadeltaHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_range("rho", h.rho, 0.0, 1.0, false, "in [0, 1]")?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AdadeltaHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Adadelta {
    type Consts<T: Real> = AdadeltaConsts<T>;

    fn consts<T: Real>(
        h: &AdadeltaHyper,
        _step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> AdadeltaConsts<T> {
        AdadeltaConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, false),
            rho: T::from_f64(h.rho),
            one_minus_rho: T::from_f64(1.0 - h.rho),
            eps: T::from_f64(h.eps),
            neg_lr: T::from_f64(-h.lr),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &AdadeltaConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [v_ptr, u_ptr, ..] = s;
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let (rho, one_minus_rho, eps) =
            (L::splat(c.rho), L::splat(c.one_minus_rho), L::splat(c.eps));
        let v = L::load(v_ptr).mul(rho).add(one_minus_rho.mul(g).mul(g));
        v.store(v_ptr);
        let u = L::load(u_ptr);
        let delta = u.add(eps).sqrt().div(v.add(eps).sqrt()).mul(g);
        u.mul(rho)
            .add(one_minus_rho.mul(delta).mul(delta))
            .store(u_ptr);
        p.add(L::splat(c.neg_lr).mul(delta)).store(p_ptr);
    }
}
