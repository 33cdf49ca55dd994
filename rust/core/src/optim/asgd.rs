//! Averaged SGD (Polyak & Juditsky 1992), as the single-tensor code of
//! `torch.optim.ASGD` (torch documents no algorithm box):
//!
//! ```text
//! g = -g                              if maximize
//! g = g + wd * p                      if wd != 0
//! p = p * (1 - lambd * eta); p = p + (-eta) * g
//! ax = ax + (p - ax) * mu             if mu != 1, else ax = p
//! eta = lr / (1 + lambd * lr * t)^alpha;  mu = 1 / max(1, t - t0)
//! ```
//!
//! The step uses the previous step's `eta` and `mu` (per tensor, kept in
//! f64; torch keeps float32 0-d tensors), from `eta = lr`, `mu = 1`.

use super::adam::Decay;
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::optimize::reduce::{prefetch, AHEAD_BYTES};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of ASGD, with PyTorch's names and defaults.
    pub struct AsgdHyper {
        pub lr: f64 = 1e-2,
        pub lambd: f64 = 1e-4,
        pub alpha: f64 = 0.75,
        pub t0: f64 = 1e6,
        pub weight_decay: f64 = 0.0,
        pub maximize: bool = false,
    }
}

/// `torch.optim.ASGD`.
pub struct Asgd;

#[derive(Clone, Copy, Debug)]
pub struct AsgdConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    shrink: T,
    neg_eta: T,
    /// `None`: `mu == 1`, copy the param.
    mu: Option<T>,
}

impl Rule for Asgd {
    type Hyper = AsgdHyper;
    const NAME: &'static str = "asgd";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::scalar("eta"), Slot::scalar("mu"), Slot::param("ax")];

    fn validate(h: &AsgdHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_non_negative("lambd", h.lambd)?;
        check_non_negative("alpha", h.alpha)?;
        check_non_negative("t0", h.t0)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn init(h: &AsgdHyper, slot: usize) -> f64 {
        match slot {
            0 => h.lr,
            1 => 1.0,
            _ => 0.0,
        }
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AsgdHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Asgd {
    type Consts<T: Real> = AsgdConsts<T>;

    fn consts<T: Real>(
        h: &AsgdHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        scalars: &mut [f64; MAX_SLOTS],
    ) -> AsgdConsts<T> {
        let (eta, mu) = (scalars[0], scalars[1]);
        let t = step as f64;
        scalars[0] = h.lr / (1.0 + h.lambd * h.lr * t).powf(h.alpha);
        scalars[1] = 1.0 / (t - h.t0).max(1.0);
        AsgdConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, false),
            shrink: T::from_f64(1.0 - h.lambd * eta),
            neg_eta: T::from_f64(-eta),
            mu: (mu != 1.0).then(|| T::from_f64(mu)),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &AsgdConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let ax_ptr = s[2];
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let p = p.mul(L::splat(c.shrink)).add(L::splat(c.neg_eta).mul(g));
        p.store(p_ptr);
        let ax = match c.mu {
            Some(mu) => {
                let ax = L::load(ax_ptr);
                ax.add(p.sub(ax).mul(L::splat(mu)))
            }
            None => {
                // A stream only stored to is fetched by the store's
                // read-for-ownership miss, which the hardware prefetchers
                // serve poorly: 1.57x the time of loading it (20M f32).
                prefetch::<T, L>(ax_ptr, 0, AHEAD_BYTES);
                p
            }
        };
        ax.store(ax_ptr);
    }
}
