//! SGD with momentum, dampening, Nesterov and weight decay, as in the
//! algorithm box of `torch.optim.SGD`:
//!
//! ```text
//! g = -g                      if maximize
//! g = g + wd * p              if wd != 0
//! b = g                       on the first momentum step (no dampening)
//! b = b * mu + (1 - tau) * g  afterwards
//! g = g + mu * b              if nesterov, else g = b
//! p = p + (-lr) * g
//! ```
//!
//! The lecture writes momentum as `v = rho * v - lr * dx; x += v`: the same
//! trajectory for a constant lr (`v = -lr * b`). Its Nesterov form,
//! `x += -rho * v_old + (1 + rho) * v`, is the change of variables
//! `x~ = x + rho * v` of the look-ahead update; PyTorch's update above
//! is that same rule written in the look-ahead variables.

use super::rule::{Elementwise, Rule, Slot, MAX_SLOTS};
use crate::error::{check_non_negative, check_range, Error, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of SGD, with PyTorch's names and defaults.
    pub struct SgdHyper {
        pub lr: f64 = 1e-3,
        pub momentum: f64 = 0.0,
        pub dampening: f64 = 0.0,
        pub weight_decay: f64 = 0.0,
        pub nesterov: bool = false,
        pub maximize: bool = false,
    }
}

/// `torch.optim.SGD`.
pub struct Sgd;

#[derive(Clone, Copy, Debug)]
pub struct SgdConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    /// `Some` when momentum != 0.
    momentum: Option<T>,
    one_minus_dampening: T,
    /// The buffer holds no history yet: it is set to the gradient
    /// (PyTorch's `torch.clone(grad)`), whatever it contains.
    first: bool,
    nesterov: bool,
    neg_lr: T,
}

impl Rule for Sgd {
    type Hyper = SgdHyper;
    const NAME: &'static str = "sgd";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::param("momentum_buffer").signed()];

    fn validate(h: &SgdHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_non_negative("momentum", h.momentum)?;
        check_range("dampening", h.dampening, 0.0, 1.0, false, "in [0, 1]")?;
        check_non_negative("weight_decay", h.weight_decay)?;
        if h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0) {
            return Err(Error::InvalidHyperparameter {
                name: "nesterov".into(),
                value: 1.0,
                expected: "momentum > 0 and dampening = 0",
            });
        }
        Ok(())
    }

    fn uses(h: &SgdHyper, _slot: usize, _ndim: usize) -> bool {
        h.momentum != 0.0
    }

    fn step<T: Real>(tensors: &mut [super::Tensor<'_, T, SgdHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Sgd {
    type Consts<T: Real> = SgdConsts<T>;

    fn consts<T: Real>(
        h: &SgdHyper,
        _step: u64,
        fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> SgdConsts<T> {
        SgdConsts {
            maximize: h.maximize,
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            momentum: (h.momentum != 0.0).then(|| T::from_f64(h.momentum)),
            one_minus_dampening: T::from_f64(1.0 - h.dampening),
            first: fresh[0],
            nesterov: h.nesterov,
            neg_lr: T::from_f64(-h.lr),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &SgdConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let b_ptr = s[0];
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        if let Some(mu) = c.momentum {
            let b = if c.first {
                g
            } else {
                L::load(b_ptr)
                    .mul(L::splat(mu))
                    .add(L::splat(c.one_minus_dampening).mul(g))
            };
            b.store(b_ptr);
            g = if c.nesterov {
                g.add(L::splat(mu).mul(b))
            } else {
                b
            };
        }
        p.add(L::splat(c.neg_lr).mul(g)).store(p_ptr);
    }
}
