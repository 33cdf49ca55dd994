//! RMSprop, as in the algorithm box of `torch.optim.RMSprop`:
//!
//! ```text
//! g = -g                          if maximize
//! g = g + wd * p                  if wd != 0
//! v = v * alpha + (1 - alpha) * g * g
//! ga = lerp(ga, g, 1 - alpha)     if centered, and v~ = v + (-1) * ga * ga
//! d = sqrt(v~) + eps              (v~ = v when not centered)
//! b = b * mu + g / d; p = p + (-lr) * b     if momentum > 0
//! p = p + (-lr) * g / d                     otherwise
//! ```
//!
//! The lecture's RMSProp (`decay_rate` = alpha, eps outside the root) is the
//! uncentered form without momentum. TensorFlow/Keras put eps inside the
//! root; PyTorch and this kernel add it outside.

use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use super::Lerp;
use crate::error::{check_non_negative, check_range, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of RMSprop, with PyTorch's names and defaults.
    pub struct RmspropHyper {
        pub lr: f64 = 1e-2,
        pub alpha: f64 = 0.99,
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub momentum: f64 = 0.0,
        pub centered: bool = false,
        pub maximize: bool = false,
    }
}

/// `torch.optim.RMSprop`.
pub struct Rmsprop;

#[derive(Clone, Copy, Debug)]
pub struct RmspropConsts<T> {
    maximize: bool,
    weight_decay: Option<T>,
    alpha: T,
    one_minus_alpha: T,
    /// `Some` when centered.
    grad_avg: Option<Lerp<T>>,
    eps: T,
    /// `Some` when momentum > 0.
    momentum: Option<T>,
    neg_lr: T,
}

impl Rule for Rmsprop {
    type Hyper = RmspropHyper;
    const NAME: &'static str = "rmsprop";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[
        Slot::param("square_avg").unsigned(),
        Slot::param("momentum_buffer").signed(),
        Slot::param("grad_avg").signed(),
    ];

    fn validate(h: &RmspropHyper) -> Result<()> {
        check_non_negative("lr", h.lr)?;
        check_range("alpha", h.alpha, 0.0, 1.0, false, "in [0, 1]")?;
        check_non_negative("eps", h.eps)?;
        check_non_negative("weight_decay", h.weight_decay)?;
        check_non_negative("momentum", h.momentum)
    }

    fn uses(h: &RmspropHyper, slot: usize, _ndim: usize) -> bool {
        match slot {
            0 => true,
            1 => h.momentum > 0.0,
            _ => h.centered,
        }
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, RmspropHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for Rmsprop {
    type Consts<T: Real> = RmspropConsts<T>;

    fn consts<T: Real>(
        h: &RmspropHyper,
        _step: u64,
        _fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> RmspropConsts<T> {
        RmspropConsts {
            maximize: h.maximize,
            weight_decay: (h.weight_decay != 0.0).then(|| T::from_f64(h.weight_decay)),
            alpha: T::from_f64(h.alpha),
            one_minus_alpha: T::from_f64(1.0 - h.alpha),
            grad_avg: h.centered.then(|| Lerp::new(1.0 - h.alpha)),
            eps: T::from_f64(h.eps),
            momentum: (h.momentum > 0.0).then(|| T::from_f64(h.momentum)),
            neg_lr: T::from_f64(-h.lr),
        }
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &RmspropConsts<T>,
        mut g: L,
        p_ptr: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        let [v_ptr, b_ptr, ga_ptr, ..] = s;
        let p = L::load(p_ptr);
        if c.maximize {
            g = g.neg();
        }
        if let Some(wd) = c.weight_decay {
            g = g.add(L::splat(wd).mul(p));
        }
        let v = L::load(v_ptr)
            .mul(L::splat(c.alpha))
            .add(L::splat(c.one_minus_alpha).mul(g).mul(g));
        v.store(v_ptr);
        let avg = match &c.grad_avg {
            Some(lerp) => {
                let ga = lerp.apply(L::load(ga_ptr), g);
                ga.store(ga_ptr);
                // addcmul with value -1: `(-1 * ga) * ga` is `(-ga) * ga`.
                v.add(ga.neg().mul(ga))
            }
            None => v,
        };
        let avg = avg.sqrt().add(L::splat(c.eps));
        let p = match c.momentum {
            Some(mu) => {
                let b = L::load(b_ptr).mul(L::splat(mu)).add(g.div(avg));
                b.store(b_ptr);
                p.add(L::splat(c.neg_lr).mul(b))
            }
            None => p.add(L::splat(c.neg_lr).mul(g).div(avg)),
        };
        p.store(p_ptr);
    }
}
