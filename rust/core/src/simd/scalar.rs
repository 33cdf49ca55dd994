//! `f32` and `f64` as their own one-lane [`Lanes`]: the scalar level and the
//! tail of every vector loop.

use super::{Lanes, Real};

macro_rules! scalar_real {
    ($t:ty, $bits:ty, $exp_mask:expr, $avx512:ident, $avx2:ident, $neon:ident) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }

            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }

            #[inline(always)]
            fn is_finite_bits(self) -> bool {
                self.to_bits() & $exp_mask != $exp_mask
            }

            #[cfg(target_arch = "x86_64")]
            type Avx512 = super::avx512::$avx512;
            #[cfg(target_arch = "x86_64")]
            type Avx2 = super::avx2::$avx2;
            #[cfg(target_arch = "aarch64")]
            type Neon = super::neon::$neon;
        }

        impl Lanes<$t> for $t {
            const N: usize = 1;

            #[inline(always)]
            unsafe fn splat(x: $t) -> Self {
                x
            }
            #[inline(always)]
            unsafe fn load(ptr: *const $t) -> Self {
                *ptr
            }
            #[inline(always)]
            unsafe fn store(self, ptr: *mut $t) {
                *ptr = self
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self - o
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                self / o
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn neg(self) -> Self {
                -self
            }
            #[inline(always)]
            fn maximum(self, o: Self) -> Self {
                // Same rule as x86 `max` followed by a NaN blend of `self`.
                if self.is_nan() || self > o {
                    self
                } else {
                    o
                }
            }
            #[inline(always)]
            fn minimum(self, o: Self) -> Self {
                if self.is_nan() || self < o {
                    self
                } else {
                    o
                }
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
                if self > 0.0 {
                    pos
                } else if self < 0.0 {
                    neg
                } else if self == 0.0 {
                    zero
                } else {
                    nan
                }
            }
        }

        // Keeps the exponent mask's type honest.
        const _: $bits = $exp_mask;
    };
}

scalar_real!(f32, u32, 0x7f80_0000u32, F32x16, F32x8, F32x4);
scalar_real!(f64, u64, 0x7ff0_0000_0000_0000u64, F64x8, F64x4, F64x2);
