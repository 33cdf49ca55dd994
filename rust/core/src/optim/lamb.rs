//! LAMB (You et al. 2020, "Large Batch Optimization for Deep Learning:
//! Training BERT in 76 minutes", Algorithm 2), with Adam's moments and a
//! per-tensor trust ratio, in the order of operations of timm's `Lamb`
//! (`always_adapt=True`, no global gradient clipping):
//!
//! ```text
//! g = -g                                         if maximize
//! m = m * beta1 + (1 - beta1) * g
//! v = v * beta2 + (1 - beta2) * g * g
//! u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)    (bc = 1 without bias_correction)
//! u = u + weight_decay * p                       if weight_decay != 0
//! r = ||p|| / ||u||  (1 where either is 0)       r = min(r, 1) if trust_clip
//! p = p + (-lr) * (u * r)
//! ```
//!
//! `t` is the param's own step count. The two norms are summed in a first
//! pass (which also writes `m` and `v`) by `optimize::reduce`'s fixed trees,
//! so `r` is the same for any thread count and SIMD level; the second pass
//! recomputes `u` from the stored moments (the same bits) and writes `p`.
//! Bytes per element: 24 in the first pass (p, g, m, v read; m, v written),
//! 16 in the second (p, m, v read; p written), against Adam's 28 in one.

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

use super::adam::check_betas;

crate::hyperparameters! {
    /// Hyperparameters of LAMB, with timm's defaults.
    pub struct LambHyper {
        pub lr: f64 = 1e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-6,
        pub weight_decay: f64 = 0.0,
        pub bias_correction: bool = true,
        /// Clip the trust ratio at 1.
        pub trust_clip: bool = false,
        pub maximize: bool = false,
    }
}

/// LAMB: Adam's update scaled per tensor by `||p|| / ||update||`.
pub struct Lamb;

#[derive(Clone, Copy, Debug)]
pub struct LambConsts<T> {
    maximize: bool,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    bias_correction1: T,
    bias_correction2_sqrt: T,
    eps: T,
    weight_decay: Option<T>,
    trust_clip: bool,
    neg_lr: T,
    /// The trust ratio, set by `finish`.
    ratio: T,
}

impl<T: Real> LambConsts<T> {
    /// The update from the new moments at `m` and `v`.
    #[inline(always)]
    unsafe fn update<L: Lanes<T>>(&self, m: L, v: L, p: L) -> L {
        let denom = v
            .sqrt()
            .div(L::splat(self.bias_correction2_sqrt))
            .add(L::splat(self.eps));
        let u = m.div(L::splat(self.bias_correction1)).div(denom);
        match self.weight_decay {
            Some(wd) => u.add(L::splat(wd).mul(p)),
            None => u,
        }
    }
}

impl Rule for Lamb {
    type Hyper = LambHyper;
    const NAME: &'static str = "lamb";
    const SLICEABLE: bool = false;
    const SLOTS: &'static [Slot] = &[
        Slot::param("exp_avg").signed(),
        Slot::param("exp_avg_sq").unsigned(),
    ];

    fn validate(h: &LambHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, LambHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }
}

/// The trust ratio `||p|| / ||u||` from the sums of squares (1 unless both
/// norms are > 0; NaN norms give 1), clipped at 1 with `clip` (NaN stays).
pub(crate) fn trust_ratio(p_sq: f64, u_sq: f64, clip: bool) -> f64 {
    let (p_norm, u_norm) = (p_sq.sqrt(), u_sq.sqrt());
    let r = if p_norm > 0.0 && u_norm > 0.0 {
        p_norm / u_norm
    } else {
        1.0
    };
    if clip && r > 1.0 {
        1.0
    } else {
        r
    }
}

impl Elementwise for Lamb {
    type Consts<T: Real> = LambConsts<T>;
    const NORMS: bool = true;
    const SUMS_SLOTS: usize = 2;

    fn consts<T: Real>(
        h: &LambHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> LambConsts<T> {
        let (beta1, beta2) = h.betas;
        let t = step as f64;
        let (bc1, bc2) = if h.bias_correction {
            (1.0 - beta1.powf(t), 1.0 - beta2.powf(t))
        } else {
            (1.0, 1.0)
        };
        LambConsts {
            maximize: h.maximize,
            beta1: T::from_f64(beta1),
            one_minus_beta1: T::from_f64(1.0 - beta1),
            beta2: T::from_f64(beta2),
            one_minus_beta2: T::from_f64(1.0 - beta2),
            bias_correction1: T::from_f64(bc1),
            bias_correction2_sqrt: T::from_f64(bc2.sqrt()),
            eps: T::from_f64(h.eps),
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            trust_clip: h.trust_clip,
            neg_lr: T::from_f64(-h.lr),
            ratio: T::ONE,
        }
    }

    #[inline(always)]
    unsafe fn sums<T: Real, L: Lanes<T>>(
        c: &LambConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) -> [L; 2] {
        let [m_ptr, v_ptr, ..] = s;
        if c.maximize {
            g = g.neg();
        }
        let m = L::load(m_ptr)
            .mul(L::splat(c.beta1))
            .add(L::splat(c.one_minus_beta1).mul(g));
        let v = L::load(v_ptr)
            .mul(L::splat(c.beta2))
            .add(L::splat(c.one_minus_beta2).mul(g).mul(g));
        m.store(m_ptr);
        v.store(v_ptr);
        let p = L::load(p_ptr);
        let u = c.update(m, v, p);
        [p.mul(p), u.mul(u)]
    }

    fn finish<T: Real>(c: &mut LambConsts<T>, [p_sq, u_sq]: [f64; 2]) {
        c.ratio = T::from_f64(trust_ratio(p_sq, u_sq, c.trust_clip));
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &LambConsts<T>,
        _g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [m_ptr, v_ptr, ..] = s;
        let p = L::load(p_ptr);
        let u = c.update(L::load(m_ptr), L::load(v_ptr), p);
        p.add(L::splat(c.neg_lr).mul(u.mul(L::splat(c.ratio))))
            .store(p_ptr);
    }
}
