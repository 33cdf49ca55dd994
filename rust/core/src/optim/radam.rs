//! RAdam (Liu et al. 2020), as in the algorithm box and single-tensor code
//! of `torch.optim.RAdam`:
//!
//! ```text
//! g = -g                                  if maximize
//! p = p * (1 - lr * wd)                   if decoupled_weight_decay
//! g = g + wd * p                          otherwise, if wd != 0
//! m = lerp(m, g, 1 - beta1); v = v * beta2 + (1 - beta2) * g * g
//! m_hat = m / (1 - beta1^t)
//! rho_inf = 2 / (1 - beta2) - 1; rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
//! rho_t > 5:  l = (1 / (sqrt(v) + eps)) * sqrt(1 - beta2^t)
//!             r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
//!             p = p - ((m_hat * lr) * l) * r
//! otherwise:  p = p - m_hat * lr
//! ```
//!
//! The switch is decided per tensor in f64 (torch: in Python floats).

use super::adam::{check_betas, Decay, Moments};
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of RAdam, with PyTorch's names and defaults.
    pub struct RadamHyper {
        pub lr: f64 = 1e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub decoupled_weight_decay: bool = false,
        pub maximize: bool = false,
    }
}

/// `torch.optim.RAdam`.
pub struct Radam;

#[derive(Clone, Copy, Debug)]
pub struct RadamConsts<T> {
    maximize: bool,
    decay: Decay<T>,
    moments: Moments<T>,
    bias_correction1: T,
    lr: T,
    eps: T,
    /// `(sqrt(1 - beta2^t), r)` when rectified.
    rect: Option<(T, T)>,
}

impl Rule for Radam {
    type Hyper = RadamHyper;
    const NAME: &'static str = "radam";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("exp_avg").signed(),
        Slot::param("exp_avg_sq").unsigned(),
    ];

    fn validate(h: &RadamHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, RadamHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Radam {
    type Consts<T: Real> = RadamConsts<T>;

    fn consts<T: Real>(
        h: &RadamHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> RadamConsts<T> {
        let (beta1, beta2) = h.betas;
        let t = step as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - beta2.powf(t);
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * t * beta2.powf(t) / bias_correction2;
        let rect = (rho_t > 5.0).then(|| {
            let r = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt();
            (T::from_f64(bias_correction2.sqrt()), T::from_f64(r))
        });
        RadamConsts {
            maximize: h.maximize,
            decay: Decay::new(h.lr, h.weight_decay, h.decoupled_weight_decay),
            moments: Moments::new(h.betas),
            bias_correction1: T::from_f64(bias_correction1),
            lr: T::from_f64(h.lr),
            eps: T::from_f64(h.eps),
            rect,
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &RadamConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [m_ptr, v_ptr, ..] = s;
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let (m, v) = c.moments.update(g, m_ptr, v_ptr);
        let m_hat = m.div(L::splat(c.bias_correction1));
        let update = match c.rect {
            Some((bc2_sqrt, r)) => {
                let adaptive = L::splat(T::ONE)
                    .div(v.sqrt().add(L::splat(c.eps)))
                    .mul(L::splat(bc2_sqrt));
                m_hat.mul(L::splat(c.lr)).mul(adaptive).mul(L::splat(r))
            }
            None => m_hat.mul(L::splat(c.lr)),
        };
        p.add(update.neg()).store(p_ptr);
    }
}
