//! Schedule-free AdamW and SGD (Defazio et al. 2024, "The Road Less
//! Scheduled"), in the order of operations of the reference implementation
//! (facebookresearch/schedule_free, `AdamWScheduleFree` and
//! `SGDScheduleFree`, the per-tensor path).
//!
//! The param holds `y`, the point where the grad is taken; the state holds
//! `z` (the base sequence, a copy of the param at the first step) and, for
//! AdamW, `exp_avg_sq`. The average `x` is never stored: `y` is moved
//! toward it in place. With `c = ckp1` and `beta1` the first beta (AdamW)
//! or `momentum` (SGD):
//!
//! ```text
//! AdamW:  v = v * beta2 + (1 - beta2) * g * g
//!         g = g / (sqrt(v / bc2) + eps)        bc2 = 1 - beta2^(k+1)
//! both:   g = g + weight_decay * y             if weight_decay != 0
//!         y = lerp(y, z, c)                    (ATen's lerp)
//!         y = y + (lr * (beta1 * (1 - c) - 1)) * g
//!         z = z - lr * g
//! ```
//!
//! The group's schedule (the warmup, `lr_max`, the weight sum and so
//! `ckp1`) is the reference's Python arithmetic, done by the Python class
//! once per group per step: it writes `scheduled_lr` and `ckp1` into the
//! group, and the kernel reads them with the group's step `k`. One pass,
//! Adam's bytes (28 per element for AdamW, 20 for SGD).

use super::adam::check_betas;
use super::rule::{Elementwise, Rule, Slot, Tensor, MAX_SLOTS};
use super::Lerp;
use crate::error::{check_non_negative, check_range, Error, Result};
use crate::simd::{Lanes, Real};

crate::hyperparameters! {
    /// Hyperparameters of schedule-free AdamW, with the reference's defaults,
    /// and its per-group schedule (`k` to `ckp1`).
    pub struct ScheduleFreeAdamwHyper {
        pub lr: f64 = 2.5e-3,
        pub betas: (f64, f64) = (0.9, 0.999),
        pub eps: f64 = 1e-8,
        pub weight_decay: f64 = 0.0,
        pub warmup_steps: u64 = 0,
        pub r: f64 = 0.0,
        pub weight_lr_power: f64 = 2.0,
        /// The group's step count before this step.
        pub k: u64 = 0,
        pub lr_max: f64 = -1.0,
        pub weight_sum: f64 = 0.0,
        /// This step's learning rate (warmup applied).
        pub scheduled_lr: f64 = 0.0,
        /// This step's weight of the newest point in the average `x`.
        pub ckp1: f64 = 0.0,
    }
}

crate::hyperparameters! {
    /// Hyperparameters of schedule-free SGD, with the reference's defaults,
    /// and its per-group schedule (`k` to `ckp1`).
    pub struct ScheduleFreeSgdHyper {
        pub lr: f64 = 1.0,
        pub momentum: f64 = 0.9,
        pub weight_decay: f64 = 0.0,
        pub warmup_steps: u64 = 0,
        pub r: f64 = 0.0,
        pub weight_lr_power: f64 = 2.0,
        pub k: u64 = 0,
        pub lr_max: f64 = -1.0,
        pub weight_sum: f64 = 0.0,
        pub scheduled_lr: f64 = 0.0,
        pub ckp1: f64 = 0.0,
    }
}

/// Schedule-free AdamW.
pub struct ScheduleFreeAdamw;

/// Schedule-free SGD.
pub struct ScheduleFreeSgd;

/// `beta1` (or `momentum`) in (0, 1): `eval()` divides by it.
fn check_open_unit(name: &str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: name.into(),
            value,
            expected: "in (0, 1)",
        })
    }
}

/// The checks both rules share: the learning rate, weight decay and the
/// averaging's powers.
fn check_common(lr: f64, weight_decay: f64, r: f64, weight_lr_power: f64) -> Result<()> {
    check_non_negative("lr", lr)?;
    check_non_negative("weight_decay", weight_decay)?;
    check_range("r", r, f64::MIN, f64::MAX, false, "a finite number")?;
    check_non_negative("weight_lr_power", weight_lr_power)
}

/// The group's schedule, as the Python class keeps it.
fn check_schedule(lr_max: f64, weight_sum: f64, scheduled_lr: f64, ckp1: f64) -> Result<()> {
    check_range(
        "lr_max",
        lr_max,
        -1.0,
        f64::MAX,
        false,
        "-1 (no step yet) or >= 0",
    )?;
    check_non_negative("weight_sum", weight_sum)?;
    check_non_negative("scheduled_lr", scheduled_lr)?;
    check_range("ckp1", ckp1, 0.0, 1.0, false, "in [0, 1]")
}

#[derive(Clone, Copy, Debug)]
pub struct ScheduleFreeConsts<T> {
    /// `(beta2, 1 - beta2, bc2, eps)` for AdamW; `None` for SGD.
    adam: Option<(T, T, T, T)>,
    weight_decay: Option<T>,
    lerp: Lerp<T>,
    y_lr: T,
    lr: T,
    /// `z` is new: it starts as a copy of the param.
    fresh_z: bool,
}

impl<T: Real> ScheduleFreeConsts<T> {
    fn new(
        beta1: f64,
        adam: Option<(T, T, T, T)>,
        weight_decay: f64,
        lr: f64,
        ckp1: f64,
        fresh_z: bool,
    ) -> Self {
        ScheduleFreeConsts {
            adam,
            weight_decay: (weight_decay != 0.0).then(|| T::from_f64(weight_decay)),
            lerp: Lerp::new(ckp1),
            y_lr: T::from_f64(lr * (beta1 * (1.0 - ckp1) - 1.0)),
            lr: T::from_f64(lr),
            fresh_z,
        }
    }

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, mut g: L, p_ptr: *mut T, s: [*mut T; MAX_SLOTS]) {
        let [z_ptr, v_ptr, ..] = s;
        let y = L::load(p_ptr);
        let z = if self.fresh_z { y } else { L::load(z_ptr) };
        if let Some((beta2, one_minus_beta2, bc2, eps)) = self.adam {
            let v = L::load(v_ptr)
                .mul(L::splat(beta2))
                .add(L::splat(one_minus_beta2).mul(g).mul(g));
            v.store(v_ptr);
            g = g.div(v.div(L::splat(bc2)).sqrt().add(L::splat(eps)));
        }
        if let Some(wd) = self.weight_decay {
            g = g.add(L::splat(wd).mul(y));
        }
        let y = self.lerp.apply(y, z).add(L::splat(self.y_lr).mul(g));
        y.store(p_ptr);
        z.sub(L::splat(self.lr).mul(g)).store(z_ptr);
    }
}

impl Rule for ScheduleFreeAdamw {
    type Hyper = ScheduleFreeAdamwHyper;
    const NAME: &'static str = "schedule_free_adamw";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::param("z"), Slot::param("exp_avg_sq").unsigned()];

    fn validate(h: &ScheduleFreeAdamwHyper) -> Result<()> {
        check_betas(h.betas)?;
        check_open_unit("betas[0]", h.betas.0)?;
        check_non_negative("eps", h.eps)?;
        check_common(h.lr, h.weight_decay, h.r, h.weight_lr_power)?;
        check_schedule(h.lr_max, h.weight_sum, h.scheduled_lr, h.ckp1)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, ScheduleFreeAdamwHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for ScheduleFreeAdamw {
    type Consts<T: Real> = ScheduleFreeConsts<T>;

    fn consts<T: Real>(
        h: &ScheduleFreeAdamwHyper,
        _step: u64,
        fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> ScheduleFreeConsts<T> {
        let (beta1, beta2) = h.betas;
        let bias_correction2 = 1.0 - beta2.powf(h.k as f64 + 1.0);
        let adam = (
            T::from_f64(beta2),
            T::from_f64(1.0 - beta2),
            T::from_f64(bias_correction2),
            T::from_f64(h.eps),
        );
        ScheduleFreeConsts::new(
            beta1,
            Some(adam),
            h.weight_decay,
            h.scheduled_lr,
            h.ckp1,
            fresh[0],
        )
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &ScheduleFreeConsts<T>,
        g: L,
        p: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        c.at(g, p, s)
    }
}

impl Rule for ScheduleFreeSgd {
    type Hyper = ScheduleFreeSgdHyper;
    const NAME: &'static str = "schedule_free_sgd";
    const SLICEABLE: bool = true;
    const SLOTS: &'static [Slot] = &[Slot::param("z")];

    fn validate(h: &ScheduleFreeSgdHyper) -> Result<()> {
        check_open_unit("momentum", h.momentum)?;
        check_common(h.lr, h.weight_decay, h.r, h.weight_lr_power)?;
        check_schedule(h.lr_max, h.weight_sum, h.scheduled_lr, h.ckp1)
    }

    fn step<T: Real>(tensors: &mut [Tensor<'_, T, ScheduleFreeSgdHyper>]) -> Result<()> {
        super::run_elementwise::<Self, T>(tensors)
    }

    fn step_low(
        tensors: &mut [super::low::LowTensor<'_, Self::Hyper>],
        sr: Option<[u32; 2]>,
    ) -> Result<()> {
        super::low::tiled::<Self>(tensors, sr)
    }
}

impl Elementwise for ScheduleFreeSgd {
    type Consts<T: Real> = ScheduleFreeConsts<T>;

    fn consts<T: Real>(
        h: &ScheduleFreeSgdHyper,
        _step: u64,
        fresh: &[bool; MAX_SLOTS],
        _scalars: &mut [f64; MAX_SLOTS],
    ) -> ScheduleFreeConsts<T> {
        ScheduleFreeConsts::new(
            h.momentum,
            None,
            h.weight_decay,
            h.scheduled_lr,
            h.ckp1,
            fresh[0],
        )
    }

    #[inline(always)]
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &ScheduleFreeConsts<T>,
        g: L,
        p: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) {
        c.at(g, p, s)
    }
}
