//! Rprop (Riedmiller & Braun 1993), as in the algorithm box and single-tensor
//! code of `torch.optim.Rprop`:
//!
//! ```text
//! g = -g                                      if maximize
//! s = sign(g * prev) -> eta+ where > 0, eta- where < 0, 1 where 0
//! step_size = clamp(step_size * s, step_sizes[0], step_sizes[1])
//! g = 0 where s == eta-                        (a sign change: no step)
//! p = p + (-1 * sign(g)) * step_size; prev = g
//! ```
//!
//! `step_size` starts at `lr` per element, `prev` at 0; there is no weight
//! decay. NaN propagates as in torch (a NaN product keeps `s` NaN).

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use crate::error::{check_non_negative, Error, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of Rprop, with PyTorch's names and defaults.
    pub struct RpropHyper {
        pub lr: f64 = 1e-2,
        pub etas: (f64, f64) = (0.5, 1.2),
        pub step_sizes: (f64, f64) = (1e-6, 50.0),
        pub maximize: bool = false,
    }
}

/// `torch.optim.Rprop`.
pub struct Rprop;

#[derive(Clone, Copy, Debug)]
pub struct RpropConsts<T> {
    maximize: bool,
    eta_minus: T,
    eta_plus: T,
    min: T,
    max: T,
}

impl Rule for Rprop {
    type Hyper = RpropHyper;
    const NAME: &'static str = "rprop";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("prev").signed(),
        Slot::param("step_size").unsigned(),
    ];

    fn validate(h: &RpropHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        let (minus, plus) = h.etas;
        // torch: 0 < etaminus < 1 < etaplus.
        if !(minus > 0.0 && minus < 1.0) {
            return Err(Error::InvalidHyperparameter {
                name: "etas[0]".into(),
                value: minus,
                expected: "in (0, 1)",
            });
        }
        if !(plus > 1.0 && plus.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "etas[1]".into(),
                value: plus,
                expected: "a finite number > 1",
            });
        }
        let (lo, hi) = h.step_sizes;
        check_non_negative("step_sizes[0]", lo)?;
        check_non_negative("step_sizes[1]", hi)?;
        if lo > hi {
            return Err(Error::InvalidHyperparameter {
                name: "step_sizes[1]".into(),
                value: hi,
                expected: ">= step_sizes[0]",
            });
        }
        Ok(())
    }

    fn init(h: &RpropHyper, slot: usize) -> f64 {
        if slot == 1 {
            h.lr
        } else {
            0.0
        }
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, RpropHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Rprop {
    type Consts<T: Real> = RpropConsts<T>;

    fn consts<T: Real>(
        h: &RpropHyper,
        _step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> RpropConsts<T> {
        RpropConsts {
            maximize: h.maximize,
            eta_minus: T::from_f64(h.etas.0),
            eta_plus: T::from_f64(h.etas.1),
            min: T::from_f64(h.step_sizes.0),
            max: T::from_f64(h.step_sizes.1),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &RpropConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [prev_ptr, size_ptr, ..] = s;
        if c.maximize {
            g = g.neg();
        }
        let (zero, one) = (L::splat(T::ZERO), L::splat(T::ONE));
        let product = g.mul(L::load(prev_ptr));
        let factor = product.sign_select(L::splat(c.eta_plus), L::splat(c.eta_minus), one, product);
        let size = L::load(size_ptr)
            .mul(factor)
            .maximum(L::splat(c.min))
            .minimum(L::splat(c.max));
        size.store(size_ptr);
        // Where the sign flipped (`factor == eta-`, i.e. product < 0): no step.
        let g = product.sign_select(g, zero, g, g);
        g.store(prev_ptr);
        let sign = g.sign_select(one, one.neg(), zero, g);
        L::load(p_ptr).add(sign.neg().mul(size)).store(p_ptr);
    }
}
