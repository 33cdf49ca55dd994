//! NAdam (Dozat 2016), as in the algorithm box and single-tensor code of
//! `torch.optim.NAdam`:
//!
//! ```text
//! g = -g                                  if maximize
//! p = p * (1 - lr * wd)                   if decoupled_weight_decay
//! g = g + wd * p                          otherwise, if wd != 0
//! mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)); mu_{t+1} likewise
//! mu_product = mu_product * mu_t         (per tensor, from 1)
//! m = lerp(m, g, 1 - beta1); v = v * beta2 + (1 - beta2) * g * g
//! d = sqrt(v / (1 - beta2^t)) + eps
//! p = p + (-lr * (1 - mu_t) / (1 - mu_product)) * g / d
//! p = p + (-lr * mu_{t+1} / (1 - mu_product * mu_{t+1})) * m / d
//! ```
//!
//! `mu_product` is kept in f64 (torch keeps a float32 0-d tensor, so its
//! step sizes differ from these in about the 8th digit).

use super::adam::{check_betas, Decay, Moments};
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of NAdam, with PyTorch's names and defaults.
    pub struct NadamHyper {
        pub lr: f64 = 2e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub momentum_decay: f64 = 4e-3,
        pub decoupled_weight_decay: bool = false,
        pub maximize: bool = false,
    }
}

/// `torch.optim.NAdam`.
pub struct Nadam;

#[derive(Clone, Copy, Debug)]
pub struct NadamConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    moments: Moments<T>,
    bias_correction2: T,
    eps: T,
    grad_step: T,
    avg_step: T,
}

impl Rule for Nadam {
    type Hyper = NadamHyper;
    const NAME: &'static str = "nadam";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::scalar("mu_product"),
        Slot::param("exp_avg").signed(),
        Slot::param("exp_avg_sq").unsigned(),
    ];

    fn validate(h: &NadamHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)?;
        check_non_negative("momentum_decay", h.momentum_decay)
    }

    fn init(_h: &NadamHyper, slot: usize) -> f64 {
        if slot == 0 {
            1.0
        } else {
            0.0
        }
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, NadamHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Nadam {
    type Consts<T: Real> = NadamConsts<T>;

    fn consts<T: Real>(
        h: &NadamHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        scalars: &mut [f64; MAX_SLOTS],
    ) -> NadamConsts<T> {
        let (beta1, beta2) = h.betas;
        let t = step as f64;
        let bias_correction2 = 1.0 - beta2.powf(t);
        let mu = beta1 * (1.0 - 0.5 * 0.96f64.powf(t * h.momentum_decay));
        let mu_next = beta1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * h.momentum_decay));
        let mu_product = scalars[0] * mu;
        scalars[0] = mu_product;
        let mu_product_next = mu_product * mu_next;
        NadamConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, h.decoupled_weight_decay),
            moments: Moments::new(h.betas),
            bias_correction2: T::from_f64(bias_correction2),
            eps: T::from_f64(h.eps),
            grad_step: T::from_f64(-h.lr * (1.0 - mu) / (1.0 - mu_product)),
            avg_step: T::from_f64((-h.lr * mu_next) / (1.0 - mu_product_next)),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &NadamConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [_, m_ptr, v_ptr, ..] = s;
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let (m, v) = c.moments.update(g, m_ptr, v_ptr);
        let d = v
            .div(L::splat(c.bias_correction2))
            .sqrt()
            .add(L::splat(c.eps));
        p.add(L::splat(c.grad_step).mul(g).div(d))
            .add(L::splat(c.avg_step).mul(m).div(d))
            .store(p_ptr);
    }
}
