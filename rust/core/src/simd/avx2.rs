//! AVX2 registers: 8 x f32, 4 x f64. The level also requires FMA, although
//! the kernels do not contract (see the module docs of `simd`).

use std::arch::x86_64::*;

use super::Lanes;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F32x8(__m256);

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F64x4(__m256d);

// SAFETY (all impls): a value of these types exists only after `splat` or
// `load`, whose callers guarantee AVX2.
impl Lanes<f32> for F32x8 {
    const N: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Self(_mm256_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Self(_mm256_loadu_ps(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        _mm256_storeu_ps(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { _mm256_div_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { _mm256_sqrt_ps(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        unsafe {
            let max = _mm256_max_ps(self.0, o.0);
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm256_blendv_ps(max, self.0, nan))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let min = _mm256_min_ps(self.0, o.0);
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm256_blendv_ps(min, self.0, nan))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = _mm256_setzero_ps();
            let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, z);
            let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, z);
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, z);
            let r = _mm256_blendv_ps(nan.0, zero.0, eq);
            let r = _mm256_blendv_ps(r, neg.0, lt);
            Self(_mm256_blendv_ps(r, pos.0, gt))
        }
    }
}

impl Lanes<f64> for F64x4 {
    const N: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Self(_mm256_set1_pd(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        Self(_mm256_loadu_pd(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        _mm256_storeu_pd(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { _mm256_add_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { _mm256_sub_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { _mm256_mul_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { _mm256_div_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { _mm256_sqrt_pd(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe { _mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)) })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        unsafe {
            let max = _mm256_max_pd(self.0, o.0);
            let nan = _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm256_blendv_pd(max, self.0, nan))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let min = _mm256_min_pd(self.0, o.0);
            let nan = _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm256_blendv_pd(min, self.0, nan))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = _mm256_setzero_pd();
            let gt = _mm256_cmp_pd::<_CMP_GT_OQ>(self.0, z);
            let lt = _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, z);
            let eq = _mm256_cmp_pd::<_CMP_EQ_OQ>(self.0, z);
            let r = _mm256_blendv_pd(nan.0, zero.0, eq);
            let r = _mm256_blendv_pd(r, neg.0, lt);
            Self(_mm256_blendv_pd(r, pos.0, gt))
        }
    }
}
