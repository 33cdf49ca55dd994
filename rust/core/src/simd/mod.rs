//! Run-time SIMD dispatch.
//!
//! A kernel is written once, generic over a [`Lanes`] type (one SIMD register
//! of `T`, or `T` itself for the scalar tail), and implements [`Kernel`].
//! [`dispatch`] picks the instruction set once per call from [`level`] and
//! runs the kernel inside a `#[target_feature]` function, so the generic body
//! is compiled for that instruction set (the `pulp` / `WithSimd` pattern).
//!
//! Every lane type performs the same IEEE operations (add, sub, mul, div,
//! sqrt; no FMA contraction), so the vector body, the scalar tail and every
//! level give bit-identical results.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};

mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    Scalar = 1,
    Avx2 = 2,
    Avx512 = 3,
    Neon = 4,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Scalar, Level::Avx2, Level::Avx512, Level::Neon];

    /// The name used by `simd_level()` and `LEC7RS_SIMD`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Neon => "neon",
        }
    }

    /// Parses a level name (case-insensitive).
    pub fn parse(name: &str) -> Result<Level> {
        let lower = name.trim().to_ascii_lowercase();
        Level::ALL
            .into_iter()
            .find(|l| l.name() == lower)
            .ok_or_else(|| {
                Error::SimdLevel(format!(
                    "unknown SIMD level {name:?} (expected one of scalar, avx2, avx512, neon)"
                ))
            })
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Level::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            2 => Level::Avx2,
            3 => Level::Avx512,
            4 => Level::Neon,
            _ => Level::Scalar,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every level this CPU supports, best first.
pub fn supported_levels() -> Vec<Level> {
    [Level::Avx512, Level::Avx2, Level::Neon, Level::Scalar]
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// The best level this CPU supports.
pub fn best_level() -> Level {
    supported_levels()[0]
}

/// The level named by `LEC7RS_SIMD`, if set. An unknown or unsupported name is
/// an error, which the caller reports (the binding warns and uses the best).
pub fn level_from_env() -> Result<Option<Level>> {
    match std::env::var("LEC7RS_SIMD") {
        Ok(name) if !name.trim().is_empty() => {
            let level =
                Level::parse(&name).map_err(|e| Error::SimdLevel(format!("LEC7RS_SIMD: {e}")))?;
            if level.is_supported() {
                Ok(Some(level))
            } else {
                Err(Error::SimdLevel(format!(
                    "LEC7RS_SIMD={name}: this CPU does not support {level}"
                )))
            }
        }
        _ => Ok(None),
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The level kernels dispatch to: `LEC7RS_SIMD` if it names a supported
/// level, else the best one. Decided on first use.
#[inline]
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let level = level_from_env().ok().flatten().unwrap_or_else(best_level);
            LEVEL.store(level as u8, Ordering::Relaxed);
            level
        }
        v => Level::from_u8(v),
    }
}

/// Forces a level (tests and benchmarks). Refuses levels the CPU lacks.
pub fn set_level(level: Level) -> Result<()> {
    if !level.is_supported() {
        return Err(Error::SimdLevel(format!(
            "this CPU does not support SIMD level {level}"
        )));
    }
    LEVEL.store(level as u8, Ordering::Relaxed);
    Ok(())
}

/// A floating-point element type of the kernels: `f32` or `f64`.
pub trait Real:
    Copy + Send + Sync + PartialOrd + fmt::Debug + Default + 'static + Lanes<Self>
{
    const ZERO: Self;
    const ONE: Self;
    /// Rounds to nearest, as a cast of a Python float to the array's dtype.
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    /// True for every value except NaN and +-inf (tested on the bits).
    fn is_finite_bits(self) -> bool;

    #[cfg(target_arch = "x86_64")]
    type Avx512: Lanes<Self>;
    #[cfg(target_arch = "x86_64")]
    type Avx2: Lanes<Self>;
    #[cfg(target_arch = "aarch64")]
    type Neon: Lanes<Self>;
}

/// One SIMD register of `T` (or a lone `T`, `N == 1`).
///
/// Values of a vector type only come from `splat` and `load`, which are
/// `unsafe` because they require the instruction set; the arithmetic on an
/// existing value is then safe.
pub trait Lanes<T>: Copy {
    const N: usize;

    /// # Safety
    /// The CPU supports this type's instruction set.
    unsafe fn splat(x: T) -> Self;
    /// # Safety
    /// As `splat`, and `ptr .. ptr + N` is readable.
    unsafe fn load(ptr: *const T) -> Self;
    /// # Safety
    /// As `splat`, and `ptr .. ptr + N` is writable.
    unsafe fn store(self, ptr: *mut T);

    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn sqrt(self) -> Self;
    /// Flips the sign bit (`-x`, also for zeros and NaN).
    fn neg(self) -> Self;
    /// `max` that propagates NaN like `np.maximum` / `torch.maximum`: NaN if
    /// either is NaN (the first one's if both), else the larger, else `o`.
    fn maximum(self, o: Self) -> Self;
    /// `min` with the same NaN rule as [`Lanes::maximum`]: NaN if either is
    /// NaN (the first one's if both), else the smaller, else `o`.
    fn minimum(self, o: Self) -> Self;
    /// Clears the sign bit (`|x|`, NaN stays NaN).
    fn abs(self) -> Self;
    /// Per lane: `pos` where `self > 0`, `neg` where `self < 0`, `zero`
    /// where `self == 0` (either sign), `nan` where `self` is NaN.
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self;
}

/// A kernel body written once for any [`Lanes`] type.
pub trait Kernel<T: Real> {
    type Output;

    /// # Safety
    /// The CPU supports `V`'s instruction set. Implementations are
    /// `#[inline(always)]` so they compile inside the dispatching
    /// `#[target_feature]` function.
    unsafe fn run<V: Lanes<T>>(self) -> Self::Output;
}

/// Runs `kernel` with the lane type of the current [`level`].
#[inline]
pub fn dispatch<T: Real, K: Kernel<T>>(kernel: K) -> K::Output {
    // SAFETY: `level()` only returns levels the CPU supports.
    unsafe {
        match level() {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => run_avx512::<T, K>(kernel),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => run_avx2::<T, K>(kernel),
            #[cfg(target_arch = "aarch64")]
            Level::Neon => run_neon::<T, K>(kernel),
            _ => kernel.run::<T>(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<T: Real, K: Kernel<T>>(kernel: K) -> K::Output {
    kernel.run::<T::Avx512>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<T: Real, K: Kernel<T>>(kernel: K) -> K::Output {
    kernel.run::<T::Avx2>()
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn run_neon<T: Real, K: Kernel<T>>(kernel: K) -> K::Output {
    kernel.run::<T::Neon>()
}

/// An element-wise step over `n` elements, one [`Lanes`] group at a time.
pub trait Step<T: Real> {
    /// Processes elements `i .. i + L::N`.
    ///
    /// # Safety
    /// As [`Lanes::load`] for every stream at `i .. i + L::N`.
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize);
}

/// The one loop of every element-wise kernel: full registers of `V`, then a
/// scalar tail that performs the same operations.
///
/// # Safety
/// The CPU supports `V`, and `step` is valid for indices `0 .. n`.
#[inline(always)]
pub unsafe fn drive<T: Real, V: Lanes<T>, S: Step<T>>(n: usize, step: &mut S) {
    let body = n - n % V::N;
    let mut i = 0;
    while i < body {
        step.at::<V>(i);
        i += V::N;
    }
    while i < n {
        step.at::<T>(i);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.name()).unwrap(), level);
        }
        assert_eq!(Level::parse(" AVX2 ").unwrap(), Level::Avx2);
        assert!(Level::parse("sse9").is_err());
    }

    #[test]
    fn scalar_is_always_supported_and_last() {
        let levels = supported_levels();
        assert_eq!(*levels.last().unwrap(), Level::Scalar);
        assert!(levels.contains(&best_level()));
    }
}
