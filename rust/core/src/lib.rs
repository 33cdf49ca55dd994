//! lec7rs-core: the numerical core of lec7rs, with no Python in it.
//!
//! Kernels take slices and return [`Result`]; they check everything before
//! the first write. Element-wise kernels are SIMD (AVX-512, AVX2, NEON or
//! scalar, chosen at run time, see [`simd`]) and run in parallel over fixed
//! chunks (see [`parallel`]), so results do not depend on the thread count
//! or the SIMD level.

pub mod alloc;
pub mod augment;
pub mod averaging;
pub mod buffers;
pub mod cancel;
pub mod error;
pub mod optim;
pub mod optimize;
pub mod parallel;
pub mod random;
pub mod regularization;
pub mod simd;

pub use error::{Error, Result};
