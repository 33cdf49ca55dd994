//! Philox lanes for NEON (aarch64): 4 blocks per register. `vmull_u32`
//! gives the 64-bit products of two lanes; `vuzp1q` / `vuzp2q` gather their
//! low and high words.

use std::arch::aarch64::*;

use super::philox::Words;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct NeonWords(uint32x4_t);

// SAFETY: a value exists only after `splat` or `iota`, whose callers
// guarantee NEON.
impl Words for NeonWords {
    const N: usize = 4;
    const PASS: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        Self(vdupq_n_u32(x))
    }
    #[inline(always)]
    unsafe fn iota(base: u32) -> Self {
        const STEPS: [u32; 4] = [0, 1, 2, 3];
        Self(vaddq_u32(vdupq_n_u32(base), vld1q_u32(STEPS.as_ptr())))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u32) {
        vst1q_u32(ptr, self.0)
    }
    #[inline(always)]
    fn xor3(self, a: Self, b: Self) -> Self {
        Self(unsafe { veorq_u32(veorq_u32(self.0, a.0), b.0) })
    }
    #[inline(always)]
    fn mulhilo(self, m: Self) -> (Self, Self) {
        unsafe {
            let low = vreinterpretq_u32_u64(vmull_u32(vget_low_u32(self.0), vget_low_u32(m.0)));
            let high = vreinterpretq_u32_u64(vmull_high_u32(self.0, m.0));
            (Self(vuzp2q_u32(low, high)), Self(vuzp1q_u32(low, high)))
        }
    }
}
