//! Philox lanes for AVX2 (4 blocks per register) and AVX-512F (8 blocks).
//!
//! Each 32-bit word sits in the low half of a 64-bit lane, so one
//! `vpmuludq` gives the whole 64-bit product of a lane, and swapping the
//! halves of each lane (`vpshufd`, which runs on another port than the
//! multiplier) moves its high word down: two instructions per multiply.
//! The high halves of the lanes hold garbage (carries of `iota`, the other
//! word of products, their xors) that nothing reads: `vpmuludq` reads only
//! the low halves, and `store` keeps only the low halves.

use std::arch::x86_64::*;

use super::philox::Words;

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Avx2Words(__m256i);

#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Avx512Words(__m512i);

// SAFETY (both impls): a value of these types exists only after `splat` or
// `iota`, whose callers guarantee the instruction set.
impl Words for Avx2Words {
    const N: usize = 4;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        Self(_mm256_set1_epi64x(i64::from(x)))
    }
    #[inline(always)]
    unsafe fn iota(base: u32) -> Self {
        Self(_mm256_add_epi64(
            _mm256_set1_epi64x(i64::from(base)),
            _mm256_setr_epi64x(0, 1, 2, 3),
        ))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u32) {
        let packed = _mm256_permutevar8x32_epi32(self.0, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0));
        _mm_storeu_si128(ptr.cast(), _mm256_castsi256_si128(packed));
    }
    #[inline(always)]
    unsafe fn store2(self, next: Self, ptr: *mut u32) {
        // The low words of both, per 128-bit half: a0 a1 b0 b1 | a2 a3 b2 b3.
        let mixed =
            _mm256_shuffle_ps::<0x88>(_mm256_castsi256_ps(self.0), _mm256_castsi256_ps(next.0));
        let packed = _mm256_permute4x64_epi64::<0xD8>(_mm256_castps_si256(mixed));
        _mm256_storeu_si256(ptr.cast(), packed);
    }
    #[inline(always)]
    fn xor3(self, a: Self, b: Self) -> Self {
        Self(unsafe { _mm256_xor_si256(_mm256_xor_si256(self.0, a.0), b.0) })
    }
    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, src: *const u8) {
        _mm256_stream_si256(dst.cast(), _mm256_loadu_si256(src.cast()));
        _mm256_stream_si256(dst.add(32).cast(), _mm256_loadu_si256(src.add(32).cast()));
    }
    #[inline(always)]
    fn prefetch(ptr: *const u8) {
        // SAFETY: prefetching is a hint that never faults; SSE is part of
        // x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast()) }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        _mm_sfence();
    }
    #[inline(always)]
    fn mulhilo(self, m: Self) -> (Self, Self) {
        unsafe {
            let p = _mm256_mul_epu32(self.0, m.0);
            // 0xB1: swap the two 32-bit halves of every 64-bit lane.
            (Self(_mm256_shuffle_epi32::<0xB1>(p)), Self(p))
        }
    }
}

impl Words for Avx512Words {
    const N: usize = 8;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        Self(_mm512_set1_epi64(i64::from(x)))
    }
    #[inline(always)]
    unsafe fn iota(base: u32) -> Self {
        Self(_mm512_add_epi64(
            _mm512_set1_epi64(i64::from(base)),
            _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
        ))
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u32) {
        _mm256_storeu_si256(ptr.cast(), _mm512_cvtepi64_epi32(self.0));
    }
    #[inline(always)]
    unsafe fn store2(self, next: Self, ptr: *mut u32) {
        // The low (even) words of `self`, then those of `next`.
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        _mm512_storeu_si512(ptr.cast(), _mm512_permutex2var_epi32(self.0, even, next.0));
    }
    #[inline(always)]
    fn xor3(self, a: Self, b: Self) -> Self {
        // 0x96: the truth table of a ^ b ^ c.
        Self(unsafe { _mm512_ternarylogic_epi64::<0x96>(self.0, a.0, b.0) })
    }
    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, src: *const u8) {
        _mm512_stream_si512(dst.cast(), _mm512_loadu_si512(src.cast()));
    }
    #[inline(always)]
    fn prefetch(ptr: *const u8) {
        // SAFETY: prefetching is a hint that never faults; SSE is part of
        // x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast()) }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        _mm_sfence();
    }
    #[inline(always)]
    fn mulhilo(self, m: Self) -> (Self, Self) {
        unsafe {
            let p = _mm512_mul_epu32(self.0, m.0);
            (Self(_mm512_shuffle_epi32::<_MM_PERM_CDAB>(p)), Self(p))
        }
    }
}
