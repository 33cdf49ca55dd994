//! AVX-512F registers: 16 x f32, 8 x f64.

use std::arch::x86_64::*;

use super::Lanes;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F32x16(__m512);

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct F64x8(__m512d);

// SAFETY (all impls): a value of these types exists only after `splat` or
// `load`, whose callers guarantee AVX-512F.
impl Lanes<f32> for F32x16 {
    const N: usize = 16;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        Self(_mm512_set1_ps(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        Self(_mm512_loadu_ps(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        _mm512_storeu_ps(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { _mm512_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { _mm512_div_ps(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { _mm512_sqrt_ps(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe {
            _mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(self.0),
                _mm512_set1_epi32(i32::MIN),
            ))
        })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        unsafe {
            let max = _mm512_max_ps(self.0, o.0);
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm512_mask_blend_ps(nan, max, self.0))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let min = _mm512_min_ps(self.0, o.0);
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm512_mask_blend_ps(nan, min, self.0))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { _mm512_abs_ps(self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = _mm512_setzero_ps();
            let gt = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, z);
            let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, z);
            let eq = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, z);
            let r = _mm512_mask_blend_ps(eq, nan.0, zero.0);
            let r = _mm512_mask_blend_ps(lt, r, neg.0);
            Self(_mm512_mask_blend_ps(gt, r, pos.0))
        }
    }
}

impl Lanes<f64> for F64x8 {
    const N: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        Self(_mm512_set1_pd(x))
    }
    #[inline(always)]
    unsafe fn load(ptr: *const f64) -> Self {
        Self(_mm512_loadu_pd(ptr))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut f64) {
        _mm512_storeu_pd(ptr, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(unsafe { _mm512_add_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(unsafe { _mm512_sub_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(unsafe { _mm512_mul_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(unsafe { _mm512_div_pd(self.0, o.0) })
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Self(unsafe { _mm512_sqrt_pd(self.0) })
    }
    #[inline(always)]
    fn neg(self) -> Self {
        Self(unsafe {
            _mm512_castsi512_pd(_mm512_xor_si512(
                _mm512_castpd_si512(self.0),
                _mm512_set1_epi64(i64::MIN),
            ))
        })
    }
    #[inline(always)]
    fn maximum(self, o: Self) -> Self {
        unsafe {
            let max = _mm512_max_pd(self.0, o.0);
            let nan = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm512_mask_blend_pd(nan, max, self.0))
        }
    }
    #[inline(always)]
    fn minimum(self, o: Self) -> Self {
        unsafe {
            let min = _mm512_min_pd(self.0, o.0);
            let nan = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0);
            Self(_mm512_mask_blend_pd(nan, min, self.0))
        }
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(unsafe { _mm512_abs_pd(self.0) })
    }
    #[inline(always)]
    fn sign_select(self, pos: Self, neg: Self, zero: Self, nan: Self) -> Self {
        unsafe {
            let z = _mm512_setzero_pd();
            let gt = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(self.0, z);
            let lt = _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, z);
            let eq = _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(self.0, z);
            let r = _mm512_mask_blend_pd(eq, nan.0, zero.0);
            let r = _mm512_mask_blend_pd(lt, r, neg.0);
            Self(_mm512_mask_blend_pd(gt, r, pos.0))
        }
    }
}
