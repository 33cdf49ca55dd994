//! Adagrad, as in the algorithm box of `torch.optim.Adagrad`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              if wd != 0
//! clr = lr / (1 + (t - 1) * lr_decay)
//! s = s + 1 * g * g           (s starts at initial_accumulator_value)
//! p = p + (-clr) * g / (sqrt(s) + eps)
//! ```
//!
//! The lecture's AdaGrad is the same with `lr_decay = 0` (eps outside the
//! root, as here).

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Adagrad, with PyTorch's names and defaults.
    pub struct AdagradHyper {
        pub lr: f64 = 1e-2,
        pub lr_decay: f64 = 0.0,
        pub weight_decay: f64 = 0.0,
        /// The value a new `sum` starts with.
        pub initial_accumulator_value: f64 = 0.0,
        pub eps: f64 = 1e-10,
        pub maximize: bool = false,
    }
}

/// `torch.optim.Adagrad`.
pub struct Adagrad;

#[derive(Clone, Copy, Debug)]
pub struct AdagradConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    neg_clr: T,
    eps: T,
}

impl Rule for Adagrad {
    type Hyper = AdagradHyper;
    const NAME: &'static str = "adagrad";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::param("sum").unsigned()];

    fn validate(h: &AdagradHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_non_negative("lr_decay", h.lr_decay)?;
        check_non_negative("weight_decay", h.weight_decay)?;
        check_non_negative("initial_accumulator_value", h.initial_accumulator_value)?;
        check_non_negative("eps", h.eps)
    }

    fn init(h: &AdagradHyper, _slot: usize) -> f64 {
        h.initial_accumulator_value
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, AdagradHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Adagrad {
    type Consts<T: Real> = AdagradConsts<T>;

    fn consts<T: Real>(
        h: &AdagradHyper,
        step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> AdagradConsts<T> {
        let clr = h.lr / (1.0 + (step - 1) as f64 * h.lr_decay);
        AdagradConsts {
            maximize: h.maximize,
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            neg_clr: T::from_f64(-clr),
            eps: T::from_f64(h.eps),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &AdagradConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let s_ptr = s[0];
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        // addcmul with value 1: `1 * g` is exact, so this is `s + g * g`.
        let s = L::load(s_ptr).add(g.mul(g));
        s.store(s_ptr);
        let std = s.sqrt().add(L::splat(c.eps));
        p.add(L::splat(c.neg_clr).mul(g).div(std)).store(p_ptr);
    }
}
