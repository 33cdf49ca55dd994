//! NEON registers (aarch64): 4 x f32, 2 x f64.

use std::arch::aarch64::*;

use super::Lanes;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F32x4(float32x4_t);

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F64x2(float64x2_t);

// SAFETY (all impls): a value of these types exists only after `splat` or
// `load`, whose callers guarantee NEON.
impl Lanes<f32> for F32x4 {
    const N: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Self(vdupq_n_f32(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Self(vld1q_f32(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        vst1q_f32(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { vaddq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { vsubq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { vmulq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { vdivq_f32(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { vsqrtq_f32(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe { vnegq_f32(self.0) })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        // Not `vmaxq`: this keeps the scalar rule (NaN of `self` first, and
        // `o` when equal) so every level agrees bit for bit.
        unsafe {
            let take_self = vorrq_u32(vcgtq_f32(self.0, o.0), vmvnq_u32(vceqq_f32(self.0, self.0)));
            Self(vbslq_f32(take_self, self.0, o.0))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let take_self = vorrq_u32(vcltq_f32(self.0, o.0), vmvnq_u32(vceqq_f32(self.0, self.0)));
            Self(vbslq_f32(take_self, self.0, o.0))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { vabsq_f32(self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = vdupq_n_f32(0.0);
            let r = vbslq_f32(vceqq_f32(self.0, z), zero.0, nan.0);
            let r = vbslq_f32(vcltq_f32(self.0, z), neg.0, r);
            Self(vbslq_f32(vcgtq_f32(self.0, z), pos.0, r))
        }
    }
}

impl Lanes<f64> for F64x2 {
    const N: usize = 2;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Self(vdupq_n_f64(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        Self(vld1q_f64(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        vst1q_f64(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { vaddq_f64(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { vsubq_f64(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { vmulq_f64(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { vdivq_f64(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { vsqrtq_f64(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe { vnegq_f64(self.0) })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        unsafe {
            let not_nan = vceqq_f64(self.0, self.0);
            let take_self = vorrq_u64(
                vcgtq_f64(self.0, o.0),
                veorq_u64(not_nan, vdupq_n_u64(u64::MAX)),
            );
            Self(vbslq_f64(take_self, self.0, o.0))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let not_nan = vceqq_f64(self.0, self.0);
            let take_self = vorrq_u64(
                vcltq_f64(self.0, o.0),
                veorq_u64(not_nan, vdupq_n_u64(u64::MAX)),
            );
            Self(vbslq_f64(take_self, self.0, o.0))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { vabsq_f64(self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = vdupq_n_f64(0.0);
            let r = vbslq_f64(vceqq_f64(self.0, z), zero.0, nan.0);
            let r = vbslq_f64(vcltq_f64(self.0, z), neg.0, r);
            Self(vbslq_f64(vcgtq_f64(self.0, z), pos.0, r))
        }
    }
}
