//! Regularization by noise: dropout, DropConnect, stochastic depth and
//! fractional max pooling, drawing from [`crate::random`] streams.
//!
//! Masks are bytes, 1 = kept. A masked element is `x * (kept ? s : 0)`, one
//! IEEE multiply with the scale `s` rounded once from f64 to the element
//! type, as PyTorch computes `input * noise`: a NaN or inf input stays NaN
//! where dropped (it is not hidden), and every SIMD level gives the same
//! bits. Loops here are plain element-wise code that LLVM vectorizes inside
//! the dispatching `#[target_feature]` function.

pub mod dropconnect;
pub mod dropout;
pub mod fractional_max_pool;
pub mod stochastic_depth;
mod streaming;

pub use dropconnect::{dropconnect, dropconnect_backward};
pub use dropout::{
    dropout_backward, dropout_eval, dropout_train, Dest, DropoutScale, STREAM_MIN_BYTES,
};
pub use fractional_max_pool::{
    fractional_max_pool2d, fractional_max_pool2d_backward, FractionalPool, PoolShape,
};
pub use stochastic_depth::{stochastic_depth, DepthMode};

use crate::simd::{self, Kernel, Lanes, Real};

/// `x * (kept ? s : 0)`.
#[inline(always)]
pub(crate) fn masked<T: Real>(x: T, kept: bool, s: T) -> T {
    x.mul(if kept { s } else { T::ZERO })
}

/// A closure run as a [`Kernel`]: compiled inside the `#[target_feature]`
/// function of the current SIMD level, so its plain loops are vectorized
/// for that level.
struct Vectorized<F>(F);

impl<T: Real, R, F: FnOnce() -> R> Kernel<T> for Vectorized<F> {
    type Output = R;

    #[inline(always)]
    unsafe fn run<V: Lanes<T>>(self) -> R {
        (self.0)()
    }
}

/// Runs `f` compiled for the current SIMD level (see [`Vectorized`]). Mark
/// `f` `#[inline(always)]`: a closure that is not inlined is compiled
/// without the level's instruction set.
#[inline]
pub(crate) fn vectorized<T: Real, R>(f: impl FnOnce() -> R) -> R {
    simd::dispatch::<T, _>(Vectorized(f))
}
