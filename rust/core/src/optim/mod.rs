//! First-order update rules of `torch.optim`, one pass over memory per step.
//!
//! Each rule follows the algorithm box and the single-tensor code path of
//! PyTorch, in the same order of operations (which decides the rounding):
//! `add(x, alpha=a)` is `self + a * x`, `addcmul(t1, t2, value=v)` is
//! `self + v * t1 * t2`, `addcdiv(t1, t2, value=v)` is `self + v * t1 / t2`
//! and `lerp` is ATen's two-sided formula. Scalars are computed once per
//! tensor in f64 and rounded to the element type, as PyTorch rounds a Python
//! float to the tensor's dtype.
//!
//! A step over a param group is one job: every tensor's param, grad and state
//! are cut into fixed chunks that run in parallel together. `rule.rs` says
//! how a rule is described (once) and drives the element-wise ones.

pub mod adadelta;
pub mod adafactor;
pub mod adagrad;
pub mod adam;
pub mod adamax;
pub mod asgd;
pub mod clip;
pub mod finite;
pub mod lamb;
pub mod lars;
pub mod lion;
pub mod lookahead;
pub mod low;
pub mod muon;
pub mod nadam;
pub mod radam;
pub mod rmsprop;
pub mod rprop;
pub mod rule;
pub mod schedule_free;
pub mod sgd;

pub use adadelta::{Adadelta, AdadeltaHyper};
pub use adafactor::{Adafactor, AdafactorHyper};
pub use adagrad::{Adagrad, AdagradHyper};
pub use adam::{Adam, AdamHyper};
pub use adamax::{Adamax, AdamaxHyper};
pub use asgd::{Asgd, AsgdHyper};
pub use finite::all_finite;
pub use lamb::{Lamb, LambHyper};
pub use lars::{Lars, LarsHyper};
pub use lion::{Lion, LionHyper};
pub use muon::{AdjustLr, Muon, MuonHyper};
pub use nadam::{Nadam, NadamHyper};
pub use radam::{Radam, RadamHyper};
pub use rmsprop::{Rmsprop, RmspropHyper};
pub use rprop::{Rprop, RpropHyper};
pub use rule::{
    run_elementwise, step, Elementwise, Field, Hyperparameters, Kind, Moment, Rule, Slot, Tensor,
    Value, MAX_SLOTS,
};
pub use schedule_free::{
    ScheduleFreeAdamw, ScheduleFreeAdamwHyper, ScheduleFreeSgd, ScheduleFreeSgdHyper,
};
pub use sgd::{Sgd, SgdHyper};

use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::simd::{self, drive, Kernel, Lanes, Real, Step};

/// One tensor's streams for an element-wise step: `W` written (param first,
/// then state; an unused optional state is an empty slice), `R` read (grad),
/// and the tensor's constants.
pub(crate) struct Work<'a, T, C, const W: usize, const R: usize> {
    pub w: [&'a mut [T]; W],
    pub r: [&'a [T]; R],
    pub c: C,
}

impl<T: Send + Sync, C: Copy + Send, const W: usize, const R: usize> Split
    for Work<'_, T, C, W, R>
{
    fn len(&self) -> usize {
        self.w[0].len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let mut w_head: [&mut [T]; W] = std::array::from_fn(|_| Default::default());
        let mut w_tail: [&mut [T]; W] = std::array::from_fn(|_| Default::default());
        for (k, s) in self.w.into_iter().enumerate() {
            (w_head[k], w_tail[k]) = split_mut(s, mid);
        }
        let mut r_head: [&[T]; R] = [&[]; R];
        let mut r_tail: [&[T]; R] = [&[]; R];
        for (k, s) in self.r.into_iter().enumerate() {
            (r_head[k], r_tail[k]) = split_ref(s, mid);
        }
        (
            Work {
                w: w_head,
                r: r_head,
                c: self.c,
            },
            Work {
                w: w_tail,
                r: r_tail,
                c: self.c,
            },
        )
    }
}

/// Raw pointers into a [`Work`] for the SIMD loop.
pub(crate) struct Ptrs<T, C, const W: usize, const R: usize> {
    pub w: [*mut T; W],
    pub r: [*const T; R],
    pub c: C,
}

impl<T: Real, C: Copy, const W: usize, const R: usize> Kernel<T> for Work<'_, T, C, W, R>
where
    Ptrs<T, C, W, R>: Step<T>,
{
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Lanes<T>>(mut self) {
        let n = self.w[0].len();
        let mut ptrs = Ptrs {
            w: std::array::from_fn(|k| self.w[k].as_mut_ptr()),
            r: std::array::from_fn(|k| self.r[k].as_ptr()),
            c: self.c,
        };
        drive::<T, V, _>(n, &mut ptrs);
    }
}

/// Runs one step over all tensors as one parallel job.
pub(crate) fn run_all<T, C, const W: usize, const R: usize>(
    work: Vec<Work<'_, T, C, W, R>>,
) -> Result<()>
where
    T: Real,
    C: Copy + Send + Sync,
    Ptrs<T, C, W, R>: Step<T>,
{
    parallel::for_each_chunk(work, simd::dispatch)
}

/// ATen's `lerp(self, end, weight)`: `self + w * (end - self)` for |w| < 0.5,
/// else `end - (end - self) * (1 - w)`, with `1 - w` in the element type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lerp<T> {
    w: T,
    one_minus_w: T,
    small: bool,
}

impl<T: Real> Lerp<T> {
    pub fn new(weight: f64) -> Self {
        let w = T::from_f64(weight);
        let small = w.to_f64().abs() < 0.5;
        let one_minus_w = T::ONE.sub(w);
        Lerp {
            w,
            one_minus_w,
            small,
        }
    }

    /// # Safety
    /// The CPU supports `L`.
    #[inline(always)]
    pub unsafe fn apply<L: Lanes<T>>(&self, start: L, end: L) -> L {
        if self.small {
            start.add(L::splat(self.w).mul(end.sub(start)))
        } else {
            end.sub(end.sub(start).mul(L::splat(self.one_minus_w)))
        }
    }
}

/// Checks that a tensor's streams have the param's length.
pub(crate) fn check_len(tensor: usize, what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: format!("tensor {tensor}: {what}"),
            expected,
            got,
        })
    }
}

/// A step count must be at least 1 (it counts the step being taken).
pub(crate) fn check_step(tensor: usize, step: u64) -> Result<()> {
    if step >= 1 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: format!("tensor {tensor}: step"),
            value: step as f64,
            expected: ">= 1 (the count including this step)",
        })
    }
}
