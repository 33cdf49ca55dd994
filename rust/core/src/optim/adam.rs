//! Adam and AdamW, as in the algorithm boxes of `torch.optim.Adam` and
//! `torch.optim.AdamW`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              (Adam, L2 penalty)      | p = p * (1 - lr * wd)   (AdamW)
//! m = lerp(m, g, 1 - beta1)
//! v = v * beta2 + (1 - beta2) * g * g
//! vmax = maximum(vmax, v)     if amsgrad, and v = vmax below
//! p = p + (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//! ```
//!
//! The lecture (cs231n) writes the same update as
//! `p -= lr * m_hat / (sqrt(v_hat) + eps)` with `m_hat = m / (1 - beta1^t)`,
//! `v_hat = v / (1 - beta2^t)`: equal in exact arithmetic, but PyTorch folds
//! the corrections into the step size and the denominator, which is what is
//! computed here. `t` counts steps from 1, per tensor.

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use super::Lerp;
use crate::error::{check_non_negative, check_range, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Adam / AdamW, with PyTorch's names and defaults
    /// (`torch.optim.Adam`'s; AdamW is `decoupled_weight_decay = true`
    /// with `weight_decay = 1e-2`).
    pub struct AdamHyper {
        pub lr: f64 = 1e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub amsgrad: bool = false,
        pub maximize: bool = false,
        /// AdamW: decay the param by `lr * weight_decay` instead of adding
        /// `weight_decay * param` to the gradient.
        pub decoupled_weight_decay: bool = false,
    }
}

/// `torch.optim.Adam` and `torch.optim.AdamW`.
pub struct Adam;

/// How weight decay enters a step (Adam's L2 penalty or AdamW's decay).
///
/// A struct with its constant always defined (zero without decay), not an
/// enum with payloads: the compiler may compute both arms of the branch
/// and select, and the undefined payload of a payload-less variant can be
/// a denormal, which costs an assist per vector at the SSE level (Adam on
/// a 1k tensor at the scalar level: 21 us per step instead of 5).
#[derive(Clone, Copy, Debug)]
pub struct Decay<T> {
    kind: DecayKind,
    /// `wd` for L2, `1 - lr * wd` for decoupled, 0 without decay.
    c: T,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DecayKind {
    None,
    /// Add `wd * p` to the gradient.
    L2,
    /// Multiply the param by `1 - lr * wd`.
    Decoupled,
}

impl<T: Real> Decay<T> {
    pub fn new(lr: f64, weight_decay: f64, decoupled: bool) -> Self {
        let (kind, c) = if weight_decay == 0.0 {
            (DecayKind::None, 0.0)
        } else if decoupled {
            (DecayKind::Decoupled, 1.0 - lr * weight_decay)
        } else {
            (DecayKind::L2, weight_decay)
        };
        Decay {
            kind,
            c: T::from_f64(c),
        }
    }

    /// Applies the decay to the param `p` or the grad `g`.
    #[inline(always)]
    pub fn apply<L: Lanes<T>>(self, p: &mut L, g: &mut L) {
        // SAFETY (splat): `L` values exist only where the CPU supports `L`.
        match self.kind {
            DecayKind::None => {}
            DecayKind::L2 => *g = g.add(unsafe { L::splat(self.c) }.mul(*p)),
            DecayKind::Decoupled => *p = p.mul(unsafe { L::splat(self.c) }),
        }
    }
}

/// The two moments of the Adam family (Adam, NAdam, RAdam), in torch's
/// order: `m = lerp(m, g, 1 - beta1)`, `v = v * beta2 + (1 - beta2) * g * g`.
#[derive(Clone, Copy, Debug)]
pub struct Moments<T> {
    beta1: Lerp<T>,
    beta2: T,
    one_minus_beta2: T,
}

impl<T: Real> Moments<T> {
    pub fn new((beta1, beta2): (f64, f64)) -> Self {
        Moments {
            beta1: Lerp::new(1.0 - beta1),
            beta2: T::from_f64(beta2),
            one_minus_beta2: T::from_f64(1.0 - beta2),
        }
    }

    /// Updates and stores both moments at `m_ptr` and `v_ptr` with the grad
    /// `g`; returns the new `(m, v)`.
    ///
    /// # Safety
    /// The CPU supports `L`; both pointers are valid for `L::N` elements.
    #[inline(always)]
    pub unsafe fn update<L: Lanes<T>>(&self, g: L, m_ptr: *mut T, v_ptr: *mut T) -> (L, L) {
        let m = self.beta1.apply(L::load(m_ptr), g);
        m.store(m_ptr);
        let v = L::load(v_ptr)
            .mul(L::splat(self.beta2))
            .add(L::splat(self.one_minus_beta2).mul(g).mul(g));
        v.store(v_ptr);
        (m, v)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct AdamConsts<T> {
    maximize: bool,
    amsgrad: bool,
    decay: Decay<T>,
    moments: Moments<T>,
    neg_step_size: T,
    bias_correction2_sqrt: T,
    eps: T,
}

impl Rule for Adam {
    type Hyper = AdamHyper;
    const NAME: &'static str = "adam";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("exp_avg").signed(),
        Slot::param("exp_avg_sq").unsigned(),
        Slot::param("max_exp_avg_sq").unsigned(),
    ];

    fn validate(h: &AdamHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_betas(h.betas)?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)
    }

    fn uses(h: &AdamHyper, slot: usize, _ndim: usize) -> bool {
        slot < 2 || h.amsgrad
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AdamHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

/// Both betas in [0, 1).
pub fn check_betas((beta1, beta2): (f64, f64)) -> Result<()> {
    check_range("betas[0]", beta1, 0.0, 1.0, true, "in [0, 1)")?;
    check_range("betas[1]", beta2, 0.0, 1.0, true, "in [0, 1)")
}

impl Elementwise for Adam {
    type Consts<T: Real> = AdamConsts<T>;

    fn consts<T: Real>(
        h: &AdamHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> AdamConsts<T> {
        let (beta1, beta2) = h.betas;
        let t = step as f64;
        let bias_correction1 = 1.0 - beta1.powf(t);
        let bias_correction2 = 1.0 - beta2.powf(t);
        AdamConsts {
            maximize: h.maximize,
            amsgrad: h.amsgrad,
            decay: Decay::new(h.lr, h.weight_decay, h.decoupled_weight_decay),
            moments: Moments::new(h.betas),
            neg_step_size: T::from_f64(-(h.lr / bias_correction1)),
            bias_correction2_sqrt: T::from_f64(bias_correction2.sqrt()),
            eps: T::from_f64(h.eps),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &AdamConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [m_ptr, v_ptr, vmax_ptr, ..] = s;
        let mut p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        c.decay.apply(&mut p, &mut g);
        let (m, v) = c.moments.update(g, m_ptr, v_ptr);
        let v = if c.amsgrad {
            let vmax = L::load(vmax_ptr).maximum(v);
            vmax.store(vmax_ptr);
            vmax
        } else {
            v
        };
        let denom = v
            .sqrt()
            .div(L::splat(c.bias_correction2_sqrt))
            .add(L::splat(c.eps));
        p.add(L::splat(c.neg_step_size).mul(m).div(denom))
            .store(p_ptr);
    }
}
