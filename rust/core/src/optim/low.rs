//! Low-precision storage around the float32 rules: bfloat16 / float16
//! params, float32 master weights, bfloat16 or block-wise 8-bit state
//! (Dettmers et al. 2022) and stochastic rounding.
//!
//! The math is always a rule's own float32 step: each stream is converted
//! to float32 on the way in (exactly: bfloat16 is a shift, float16 a
//! rescaled integer, an 8-bit state `code[q] * absmax`) and rounded on the
//! way out (to nearest even as NumPy's `astype`, or stochastically for the
//! param), so every SIMD level and thread count gives the same bits, and
//! the update uses the float32 moments of this step before they are
//! rounded for storage. The float16 conversions use F16C where the CPU has
//! it (x86 at the AVX2 and AVX-512 levels), fixing up NaN lanes, and
//! vectorized integer code elsewhere: the same bits either way.
//!
//! An element-wise rule ([`tiled`]) converts tiles of [`BLOCK`] elements
//! into float32 buffers on the stack, runs its kernel over them and writes
//! them back: the memory traffic is that of the stored formats. Other
//! rules ([`staged`]: LAMB and LARS, whose norms need the whole tensor,
//! Adafactor, Muon) are staged whole in float32 around their step.

use std::marker::PhantomData;

use super::rule::{ElemConsts, Elementwise, Kind, Rule, Tensor, MAX_SLOTS, STREAMS};
use super::{check_len, check_step, Ptrs};
use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::simd::{self, drive, Kernel, Lanes};

/// Elements per absmax of an 8-bit state; also the tile of [`tiled`].
pub const BLOCK: usize = 2048;

/// Params with fewer elements keep float32 state under `state_dtype="int8"`.
pub const MIN_INT8: usize = 4096;

/// The top counter word of stochastic rounding's draws ("SRND").
const SR_DOMAIN: u32 = 0x5352_4E44;

/// A 16-bit float format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    Bf16,
    F16,
}

/// A written stream in its stored format.
pub enum Store<'a> {
    F32(&'a mut [f32]),
    Half(Half, &'a mut [u16]),
    /// Block-wise 8-bit: code indices (as bytes) and one absmax per block.
    Int8 {
        q: &'a mut [i8],
        absmax: &'a mut [f32],
        signed: bool,
    },
}

impl Default for Store<'_> {
    fn default() -> Self {
        Store::F32(&mut [])
    }
}

impl Store<'_> {
    fn len(&self) -> usize {
        match self {
            Store::F32(s) => s.len(),
            Store::Half(_, s) => s.len(),
            Store::Int8 { q, .. } => q.len(),
        }
    }
}

/// A read stream (the grad) in its stored format.
pub enum Read<'a> {
    F32(&'a [f32]),
    Half(Half, &'a [u16]),
}

impl Read<'_> {
    fn len(&self) -> usize {
        match self {
            Read::F32(s) => s.len(),
            Read::Half(_, s) => s.len(),
        }
    }
}

/// One param's view for a low-precision step (as [`Tensor`], with stored
/// formats).
pub struct LowTensor<'a, H> {
    /// float32 or a 16-bit format.
    pub param: Store<'a>,
    /// The float32 master copy (empty: none); stepped in place, the param
    /// gets its rounded value.
    pub master: &'a mut [f32],
    /// Whether the master copy is new: it starts as the param's value.
    pub fresh_master: bool,
    pub grad: Read<'a>,
    pub shape: &'a [usize],
    /// Slots in the rule's order; a new slot's contents are ignored (it
    /// starts at [`Rule::init`]).
    pub slots: [Store<'a>; MAX_SLOTS],
    pub scalars: [f64; MAX_SLOTS],
    pub fresh: [bool; MAX_SLOTS],
    pub step: u64,
    pub hyper: H,
    pub grad_scale: Option<f32>,
    /// The param's index in its optimizer (a stochastic rounding key).
    pub index: u32,
}

/// Checks every length, then runs rule `R`'s step with stored formats;
/// `sr`: the key of stochastic rounding into 16-bit params. An error means
/// nothing was written.
pub fn step<R: Rule>(tensors: &mut [LowTensor<'_, R::Hyper>], sr: Option<[u32; 2]>) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        R::validate(&t.hyper)?;
        check_step(i, t.step)?;
        let n = t.param.len();
        if t.shape.iter().product::<usize>() != n {
            return Err(Error::Shape(format!(
                "tensor {i}: shape {:?} does not have {n} elements",
                t.shape
            )));
        }
        if matches!(t.param, Store::Int8 { .. }) {
            return Err(Error::Shape(format!("tensor {i}: a param cannot be 8-bit")));
        }
        if !t.master.is_empty() || t.fresh_master {
            check_len(i, "master", n, t.master.len())?;
        }
        check_len(i, "grad", n, t.grad.len())?;
        for (k, slot) in R::SLOTS.iter().enumerate() {
            if slot.kind == Kind::Scalar || !R::uses(&t.hyper, k, t.shape.len()) {
                continue;
            }
            let want = slot.kind.shape(t.shape).map_or(0, |s| s.iter().product());
            check_len(i, slot.name, want, t.slots[k].len())?;
            if let Store::Int8 { absmax, .. } = &t.slots[k] {
                if slot.kind != Kind::Param {
                    return Err(Error::Shape(format!(
                        "tensor {i}: {} cannot be 8-bit",
                        slot.name
                    )));
                }
                check_len(i, "absmax", want.div_ceil(BLOCK), absmax.len())?;
            }
        }
    }
    R::step_low(tensors, sr)
}

// ---------------------------------------------------------------------------
// Conversions (bit-exact, the same at every level)
// ---------------------------------------------------------------------------

#[inline(always)]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Round to nearest even; NaN becomes the quiet NaN of its sign (as
/// `ml_dtypes`).
#[inline(always)]
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16 & 0x8000) | 0x7FC0;
    }
    let round = 0x7FFF + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// Exact. Written without branches (every case computed, then selected) so
/// that loops over it vectorize; [`tests`] checks it against the plain
/// definition on every input.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let sign = (h & 0x8000) << 16;
    let (exp, man) = ((h >> 10) & 0x1F, h & 0x3FF);
    // Zero or subnormal: man * 2^-24, exact in f32.
    let small = (man as f32 * f32::from_bits(0x3380_0000)).to_bits();
    let special = 0x7F80_0000 | (man << 13);
    // (exp + 112) << 23 | man << 13.
    let normal = ((h & 0x7FFF) << 13) + (112 << 23);
    let bits = if exp == 0 {
        small
    } else if exp == 0x1F {
        special
    } else {
        normal
    };
    f32::from_bits(bits | sign)
}

/// Round to nearest even, as NumPy's `astype(float16)`
/// (`npy_floatbits_to_halfbits`). Without branches, as [`f16_to_f32`].
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    let f = x.to_bits();
    let sign = (f >> 16) & 0x8000;
    let f_exp = f & 0x7F80_0000;
    let f_sig = f & 0x007F_FFFF;
    // Overflow to infinity, or NaN: the top significand bits, kept NaN.
    let nan = 0x7C00 + (f_sig >> 13);
    let nan = if nan == 0x7C00 { 0x7C01 } else { nan };
    let big = if f_exp == 0x7F80_0000 && f_sig != 0 {
        nan
    } else {
        0x7C00
    };
    // Subnormal (2^-25 <= |x| < 2^-14): the significand shifted by 1..=11,
    // rounded half to even (the `f & 0x7FF` bits may be shifted out). The
    // exponent is clamped so that the shift stays in range elsewhere.
    let shift = 113 - (f_exp >> 23).clamp(102, 112);
    let sig = (0x0080_0000 + f_sig) >> shift;
    let sig = if (sig & 0x3FFF) != 0x1000 || (f & 0x7FF) != 0 {
        sig + 0x1000
    } else {
        sig
    };
    let sub = sig >> 13;
    // Normal: the rebiased exponent plus the rounded significand (a carry
    // out of it increments the exponent, up to infinity).
    let h_exp = f_exp.wrapping_sub(0x3800_0000) >> 13;
    let sig = if (f_sig & 0x3FFF) != 0x1000 {
        f_sig + 0x1000
    } else {
        f_sig
    };
    let normal = h_exp.wrapping_add(sig >> 13);
    let mag = if f_exp >= 0x4780_0000 {
        big
    } else if f_exp <= 0x3800_0000 {
        if f_exp < 0x3300_0000 {
            0
        } else {
            sub
        }
    } else {
        normal
    };
    (sign | (mag & 0xFFFF)) as u16
}

#[inline(always)]
fn to_f32(format: Half, h: u16) -> f32 {
    match format {
        Half::Bf16 => bf16_to_f32(h),
        Half::F16 => f16_to_f32(h),
    }
}

#[inline(always)]
fn from_f32(format: Half, x: f32) -> u16 {
    match format {
        Half::Bf16 => f32_to_bf16(x),
        Half::F16 => f32_to_f16(x),
    }
}

/// Stochastic rounding of `x` with the random word `word`: up (away from
/// zero) with probability equal to the distance from the value toward
/// zero, in units of the spacing. NaN, inf, exact values and values whose
/// upper neighbour is infinite round to nearest even.
///
/// The definition, element by element; the steps round with
/// [`round_stochastic_bf16`] and [`round_stochastic_f16`], its integer
/// forms, which [`tests`] check against it.
pub fn round_stochastic(format: Half, x: f32, word: u32) -> u16 {
    match straddle(format, x) {
        Some((lo, frac)) if f64::from(word) < frac * 4_294_967_296.0 => lo + 1,
        Some((lo, _)) => lo,
        None => from_f32(format, x),
    }
}

/// The value of `format` toward zero from `x` and the distance of `x` from
/// it in units of the spacing (exact in f64); `None` where stochastic
/// rounding rounds to nearest (NaN, inf, exact values, values whose next
/// value away from zero is infinite).
fn straddle(format: Half, x: f32) -> Option<(u16, f64)> {
    if !x.is_finite() {
        return None;
    }
    // Toward zero: one step back where rounding to nearest went away from
    // zero (same sign); the next value away from zero is one step up.
    let near = from_f32(format, x);
    let back = to_f32(format, near);
    let lo = if back.abs() > x.abs() { near - 1 } else { near };
    let (lo_v, hi_v) = (to_f32(format, lo), to_f32(format, lo + 1));
    if lo_v == x || !hi_v.is_finite() {
        return None;
    }
    let a = f64::from(x).abs() - f64::from(lo_v).abs();
    let w = f64::from(hi_v).abs() - f64::from(lo_v).abs();
    Some((lo, a / w))
}

/// The Philox block of element `e` of param `index` at `step`: element
/// `e` rounds with its word `e & 3` (the definition that
/// [`crate::random::fill_block_words`] computes vectorized).
#[cfg(test)]
fn sr_block(key: [u32; 2], step: u64, index: u32, e: u64) -> [u32; 4] {
    let ctr = [
        (e >> 2) as u32,
        index,
        step as u32,
        SR_DOMAIN ^ (step >> 32) as u32,
    ];
    crate::random::philox::block(ctr, key)
}

/// A key of stochastic rounding for one tensor.
#[derive(Clone, Copy)]
struct Sr {
    key: [u32; 2],
    step: u64,
    index: u32,
}

/// Rounds `src` (elements `at ..` of the tensor) into `dst`.
#[inline(always)]
fn round_into(format: Half, src: &[f32], dst: &mut [u16], sr: Option<Sr>, at: usize) {
    match sr {
        // One loop per format, so that each vectorizes.
        None if format == Half::Bf16 => {
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = f32_to_bf16(x);
            }
        }
        None => {
            #[cfg(target_arch = "x86_64")]
            if f16c::usable() {
                // SAFETY: the CPU has F16C and AVX2 (checked).
                return unsafe { f16c::round(src, dst) };
            }
            for (d, &x) in dst.iter_mut().zip(src) {
                *d = f32_to_f16(x);
            }
        }
        Some(sr) => {
            // The words of a chunk at a time, vectorized, then the rounding.
            let mut words = [0u32; SR_CHUNK];
            let high = [sr.index, sr.step as u32, SR_DOMAIN ^ (sr.step >> 32) as u32];
            for (k, (dst, src)) in dst
                .chunks_mut(SR_CHUNK)
                .zip(src.chunks(SR_CHUNK))
                .enumerate()
            {
                let words = &mut words[..dst.len()];
                let first = (at + k * SR_CHUNK) as u64;
                crate::random::fill_block_words(sr.key, high, first, words);
                let src = &src[..dst.len()];
                if format == Half::Bf16 {
                    for j in 0..dst.len() {
                        dst[j] = round_stochastic_bf16(src[j], words[j]);
                    }
                } else {
                    for j in 0..dst.len() {
                        dst[j] = round_stochastic_f16(src[j], words[j]);
                    }
                }
            }
        }
    }
}

/// Values rounded stochastically per call of [`crate::random::fill_block_words`].
const SR_CHUNK: usize = 1024;

/// [`round_stochastic`] into bfloat16, without branches (so that it
/// vectorizes). For finite `x`, the value toward zero is the top half of
/// its bits, the next one away from zero that plus one, and the distance
/// from the first in units of the spacing is the low half over 2^16
/// exactly (the spacing is 2^16 units of `x`'s last place, also where the
/// next value is in the next binade). So "up" is `word < low << 16`, the
/// comparison of [`round_stochastic`] in integers. Non-finite `x` and the
/// largest finite magnitudes (whose next value is infinite) round to
/// nearest even; exact values (low half zero) never go up.
#[inline(always)]
pub fn round_stochastic_bf16(x: f32, word: u32) -> u16 {
    let b = x.to_bits();
    let (lo, low) = ((b >> 16) as u16, b & 0xFFFF);
    let up = u16::from(word < low << 16);
    let nearest = (lo & 0x7F80) == 0x7F80 || (lo & 0x7FFF) == 0x7F7F;
    if nearest {
        f32_to_bf16(x)
    } else {
        lo + up
    }
}

/// [`round_stochastic`] into float16, in integers without branches (so
/// that it vectorizes). For finite `|x|` at or above 2^-14 (float16's
/// normal range), the value toward zero is `|x|`'s bits rebiased and
/// shifted right by 13, and the distance from it in units of the spacing
/// is the low 13 bits over 2^13 exactly, so "up" is `word < low << 19`.
/// Below 2^-14 the spacing is 2^-24: with `|x| = m 2^(e - 150)` (`m` the
/// significand with its implicit bit, `e` the biased exponent, 1 for a
/// subnormal), `|x| 2^24 = m / 2^sh` with `sh = 126 - e >= 14`; the value
/// toward zero is `m >> sh`, and "up" is `word < ceil(frac 2^32)` for the
/// `sh` bits below it: `frac << (32 - sh)` while `sh <= 32`, else `m`
/// shifted right by `sh - 32`, rounded up. NaN, inf and magnitudes from
/// 65504 up (whose next value is infinite) round to nearest even; exact
/// values (no bits below) never go up.
#[inline(always)]
pub fn round_stochastic_f16(x: f32, word: u32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let ax = b & 0x7FFF_FFFF;
    // float16's normal range
    let lo_n = ax.wrapping_sub(0x3800_0000) >> 13;
    let n_n = (ax & 0x1FFF) << 19;
    // below it (every shift count kept under 32)
    let e = (ax >> 23).max(1);
    let m = (ax & 0x7F_FFFF) | if ax >= 0x80_0000 { 0x80_0000 } else { 0 };
    let sh = 126u32.saturating_sub(e); // >= 14 here
    let lo_s = m >> sh.min(31);
    let below = m & ((1u32 << sh.min(31)) - 1);
    let n_s = if sh <= 32 {
        // (sh = 32: all of m, unshifted; m < 2^24 < 2^31)
        below << (32 - sh).min(31)
    } else {
        let r = (sh - 32).min(31);
        (m >> r) + u32::from(m & ((1u32 << r) - 1) != 0)
    };
    let normal = ax >= 0x3880_0000;
    let (lo, n) = if normal { (lo_n, n_n) } else { (lo_s, n_s) };
    let nearest = ax >= 0x477F_E000; // 65504 and up, inf, NaN
    let up = u32::from(word < n);
    if nearest {
        f32_to_f16(x)
    } else {
        sign | (lo + up) as u16
    }
}

#[inline(always)]
fn widen(format: Half, src: &[u16], dst: &mut [f32]) {
    match format {
        Half::Bf16 => {
            for (d, &h) in dst.iter_mut().zip(src) {
                *d = bf16_to_f32(h);
            }
        }
        Half::F16 => {
            #[cfg(target_arch = "x86_64")]
            if f16c::usable() {
                // SAFETY: the CPU has F16C and AVX2 (checked).
                return unsafe { f16c::widen(src, dst) };
            }
            for (d, &h) in dst.iter_mut().zip(src) {
                *d = f16_to_f32(h);
            }
        }
    }
}

/// The float16 conversions with F16C's `vcvtph2ps` / `vcvtps2ph` (round to
/// nearest even): the same values as [`f16_to_f32`] and [`f32_to_f16`] for
/// every input but NaN, where F16C sets the quiet bit and NumPy keeps the
/// payload as it is. A register with a NaN lane is converted again with
/// the integer definitions.
#[cfg(target_arch = "x86_64")]
mod f16c {
    use std::arch::x86_64::*;

    use super::{f16_to_f32, f32_to_f16};
    use crate::simd::{self, Level};

    /// Whether to use them: F16C is present and the SIMD level is not
    /// forced to scalar (which runs the integer definitions).
    #[inline(always)]
    pub fn usable() -> bool {
        simd::level() != Level::Scalar
            && std::arch::is_x86_feature_detected!("f16c")
            && std::arch::is_x86_feature_detected!("avx2")
    }

    /// `dst[i] = f16_to_f32(src[i])` over the shorter of the two.
    ///
    /// # Safety
    /// The CPU has F16C and AVX2.
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn widen(src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let (src, dst) = (&src[..n], &mut dst[..n]);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` elements of both.
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            let mag = _mm256_and_si256(_mm256_cvtepu16_epi32(h), _mm256_set1_epi32(0x7FFF));
            let nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7C00));
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
            if _mm256_movemask_epi8(nan) != 0 {
                for j in i..i + 8 {
                    dst[j] = f16_to_f32(src[j]);
                }
            }
            i += 8;
        }
        for j in i..n {
            dst[j] = f16_to_f32(src[j]);
        }
    }

    /// `dst[i] = f32_to_f16(src[i])` over the shorter of the two.
    ///
    /// # Safety
    /// As [`widen`].
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn round(src: &[f32], dst: &mut [u16]) {
        let n = src.len().min(dst.len());
        let (src, dst) = (&src[..n], &mut dst[..n]);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n` elements of both.
            let x = _mm256_loadu_ps(src.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
            if _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x)) != 0 {
                for j in i..i + 8 {
                    dst[j] = f32_to_f16(src[j]);
                }
            }
            i += 8;
        }
        for j in i..n {
            dst[j] = f32_to_f16(src[j]);
        }
    }
}

// ---------------------------------------------------------------------------
// The 8-bit dynamic code
// ---------------------------------------------------------------------------

/// bitsandbytes' `create_dynamic_map(signed, 7, 8)`: computed in f64,
/// rounded to f32 once, sorted (256 values).
pub fn dynamic_code(signed: bool) -> [f32; 256] {
    let mut data: Vec<f32> = Vec::with_capacity(256);
    for i in 0..7 {
        let items = if signed {
            (1 << i) + 1
        } else {
            (1 << (i + 1)) + 1
        };
        let scale = 10f64.powi(i - 6);
        let b = |k: usize| 0.1 + k as f64 * (1.0 - 0.1) / (items - 1) as f64;
        for k in 0..items - 1 {
            let mean = (b(k) + b(k + 1)) / 2.0;
            data.push((scale * mean) as f32);
            if signed {
                data.push((-scale * mean) as f32);
            }
        }
    }
    data.push(0.0);
    data.push(1.0);
    data.sort_by(f32::total_cmp);
    let mut out = [0.0; 256];
    out.copy_from_slice(&data);
    out
}

/// A code, the midpoints between its neighbours (f64, exact) and the
/// table that finds the nearest value of any `|v| <= 1` in one comparison.
struct Code {
    values: [f32; 256],
    mid: [f64; 256],
    /// Per bucket of values with the same sign, exponent (0 to 127) and top
    /// [`BUCKET_BITS`] mantissa bits: the number of midpoints below the
    /// bucket. A bucket is narrower than the spacing of the midpoints, so
    /// it holds at most one (checked when built). Three bytes of padding
    /// follow, so that a 32-bit gather at any bucket stays inside.
    first: Box<[u8; BUCKETS + 3]>,
    /// The smallest f32 above each midpoint (+inf for the last entry):
    /// `mid[k] < v` exactly when `v >= above[k]`.
    above: [f32; 256],
    /// The code's segments, for indexing by arithmetic (AVX2).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    seg: Segments,
}

/// A code's positive values fall in nine segments: zero, the seven decades
/// `10^(i-6) * (0.1 + (k + 1/2) * 0.9 / 2^b)` (`k < 2^b`, `b = i + 1`
/// unsigned, `i` signed) and one; a signed code mirrors the decades below
/// zero. Within a decade, `t = |v| * mul - off` puts the ideal midpoints
/// at the integers, so the number of midpoints below `|v|` there is
/// `floor(t)` clamped to `0 ..= kmax`, except within rounding of an
/// integer (f32 arithmetic and values rounded to f32 move `t` by under
/// 4e-5 of a spacing; anything within [`NEAR`] goes to the exact path).
/// Entry 0 of the per-segment arrays is zero's (`t = 1/2`, `kmax = 0`);
/// entries 1 to 7 are the decades'.
struct Segments {
    /// The smallest f32 at or above each of the eight boundary midpoints
    /// (zero | decade 0 | ... | decade 6 | one).
    thr: [f32; 8],
    mul: [f32; 8],
    off: [f32; 8],
    kmax: [f32; 8],
    /// The index in the code of the segment's first positive value.
    base: [i32; 8],
}

/// A position within this distance of an interior integer is decided by
/// the table (it is 6x the worst rounding of `t`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const NEAR: f32 = 1.0 / 4096.0;

impl Segments {
    fn new(signed: bool, values: &[f32; 256], mid: &[f64; 256]) -> Segments {
        let zero = if signed { 127 } else { 0 };
        let mut seg = Segments {
            thr: [0.0; 8],
            mul: [0.0; 8],
            off: [-0.5; 8],
            kmax: [0.0; 8],
            base: [zero; 8],
        };
        let mut base = zero as usize + 1;
        for i in 0..7 {
            let b = if signed { i } else { i + 1 };
            let count = 1usize << b;
            let scale = 10f64.powi(i as i32 - 6);
            seg.mul[i + 1] = ((1 << b) as f64 / (0.9 * scale)) as f32;
            seg.off[i + 1] = ((1 << b) as f64 / 9.0) as f32;
            seg.kmax[i + 1] = (count - 1) as f32;
            seg.base[i + 1] = base as i32;
            seg.thr[i] = at_or_above(mid[base - 1]);
            debug_assert!(values[base] > 0.0 && values[base + count - 1] < 1.0);
            base += count;
        }
        debug_assert_eq!((base, values[base]), (255, 1.0));
        seg.thr[7] = at_or_above(mid[254]);
        seg
    }
}

/// The smallest f32 at or above a positive `m`.
fn at_or_above(m: f64) -> f32 {
    let f = m as f32;
    match f64::from(f) < m {
        true => f32::from_bits(f.to_bits() + 1),
        false => f,
    }
}

/// Mantissa bits of a bucket.
const BUCKET_BITS: u32 = 8;
const BUCKETS: usize = 2 << (7 + BUCKET_BITS);

impl Code {
    fn new(signed: bool) -> Code {
        let values = dynamic_code(signed);
        let mut mid = [f64::INFINITY; 256];
        let mut above = [f32::INFINITY; 256];
        for k in 0..255 {
            mid[k] = (f64::from(values[k]) + f64::from(values[k + 1])) / 2.0;
            let m = mid[k] as f32; // nearest; step up past the midpoint
            above[k] = if f64::from(m) > mid[k] {
                m
            } else {
                f32::from_bits(m.to_bits().wrapping_add(if m > 0.0 { 1 } else { u32::MAX }))
            };
            if m == 0.0 {
                above[k] = f32::from_bits(1);
            }
        }
        let mut code = Code {
            values,
            mid,
            first: Box::new([0; BUCKETS + 3]),
            above,
            seg: Segments::new(signed, &values, &mid),
        };
        for b in 0..BUCKETS {
            let (lo, hi) = bucket_range(b);
            let below = code.search_index(lo);
            debug_assert!(usize::from(code.search_index(hi)) <= usize::from(below) + 1);
            code.first[b] = below;
        }
        code
    }

    fn get(signed: bool) -> &'static Code {
        static CODES: std::sync::OnceLock<[Code; 2]> = std::sync::OnceLock::new();
        &CODES.get_or_init(|| [Code::new(false), Code::new(true)])[usize::from(signed)]
    }

    /// The number of midpoints below `v` (binary search, in f64).
    fn search_index(&self, v: f64) -> u8 {
        let mut lo = 0usize;
        let mut step = 128;
        while step > 0 {
            if self.mid[lo + step - 1] < v {
                lo += step;
            }
            step >>= 1;
        }
        lo as u8
    }

    /// The number of midpoints below `v` (`|v| <= 1`, or NaN: 255 or 0 by
    /// its sign): the nearest value, ties low. Branch-free.
    #[inline(always)]
    fn index(&self, v: f32) -> u8 {
        let lo = self.first[bucket(v.to_bits()) as usize];
        lo + u8::from(v >= self.above[usize::from(lo)])
    }

    /// [`Code::index`] of every `x / m`, into `q`: 16 values per division
    /// and pair of gathers at AVX-512, 8 per division and [`Segments`]
    /// arithmetic at AVX2 (the gathers for the rare vector it leaves), one
    /// at a time otherwise; the same division and the same index, so the
    /// same bytes.
    #[inline(always)]
    fn index_all(&self, x: &[f32], m: f32, q: &mut [i8]) {
        debug_assert_eq!(x.len(), q.len());
        let done = match simd::level() {
            // SAFETY: `level()` only returns levels the CPU supports.
            #[cfg(target_arch = "x86_64")]
            simd::Level::Avx512 => unsafe { gather::index_avx512(self, x, m, q) },
            #[cfg(target_arch = "x86_64")]
            simd::Level::Avx2 => unsafe { gather::index_avx2(self, x, m, q) },
            _ => 0,
        };
        for (b, &x) in q[done..].iter_mut().zip(&x[done..]) {
            *b = self.index(x / m) as i8;
        }
    }
}

/// The bucket of a float's bits: its sign, the low 7 bits of its exponent
/// (all of them for `|v| <= 1`) and its top [`BUCKET_BITS`] mantissa bits.
#[inline(always)]
fn bucket(bits: u32) -> u32 {
    ((bits >> 16) & 0x8000) | ((bits >> (23 - BUCKET_BITS)) & 0x7FFF)
}

/// [`Code::index`] in SIMD registers. The gathers: the bucket's entry of
/// `first` (a 32-bit gather at its byte, masked to it), then `above` at
/// that entry.
#[cfg(target_arch = "x86_64")]
mod gather {
    use super::{Code, BUCKET_BITS, NEAR};
    use std::arch::x86_64::*;

    /// Indexes `x / m` for the whole multiples of 16 of `x`; returns how
    /// many.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn index_avx512(code: &Code, x: &[f32], m: f32, q: &mut [i8]) -> usize {
        let n = x.len() / 16 * 16;
        let m = _mm512_set1_ps(m);
        let sign = _mm512_set1_epi32(0x8000);
        let rest = _mm512_set1_epi32(0x7FFF);
        let byte = _mm512_set1_epi32(0xFF);
        let one = _mm512_set1_epi32(1);
        let first = code.first.as_ptr();
        let above = code.above.as_ptr();
        for i in (0..n).step_by(16) {
            let v = _mm512_div_ps(_mm512_loadu_ps(x.as_ptr().add(i)), m);
            let bits = _mm512_castps_si512(v);
            let key = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi32::<16>(bits), sign),
                _mm512_and_si512(_mm512_srli_epi32::<{ 23 - BUCKET_BITS }>(bits), rest),
            );
            let lo = _mm512_and_si512(_mm512_i32gather_epi32::<1>(key, first as _), byte);
            let bound = _mm512_i32gather_ps::<4>(lo, above as _);
            let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(v, bound);
            let k = _mm512_mask_add_epi32(lo, up, lo, one);
            _mm_storeu_si128(
                q.as_mut_ptr().add(i) as *mut __m128i,
                _mm512_cvtepi32_epi8(k),
            );
        }
        n
    }

    /// Indexes `x / m` for the whole multiples of 8 of `x`; returns how
    /// many. Each vector is indexed by [`arithmetic`], or with the gathers
    /// of the table when a lane is one the arithmetic may not decide.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn index_avx2(code: &Code, x: &[f32], m: f32, q: &mut [i8]) -> usize {
        let n = x.len() / 8 * 8;
        let m = _mm256_set1_ps(m);
        let c = Consts::new(code);
        for i in (0..n).step_by(8) {
            let v = _mm256_div_ps(_mm256_loadu_ps(x.as_ptr().add(i)), m);
            let (idx, bad) = arithmetic(&c, v);
            let k = match _mm256_movemask_ps(bad) {
                0 => idx,
                _ => gathered(code, v),
            };
            store8(k, q.as_mut_ptr().add(i));
        }
        n
    }

    /// A code's [`Segments`] in registers.
    pub(super) struct Consts {
        thr: __m256,
        each: [__m256; 8],
        mul: __m256,
        off: __m256,
        kmax: __m256,
        base: __m256i,
        /// All ones for an unsigned code (its negative lanes go to the
        /// table).
        unsigned: __m256i,
    }

    impl Consts {
        #[inline(always)]
        pub(super) unsafe fn new(code: &Code) -> Consts {
            let s = &code.seg;
            let mut each = [_mm256_setzero_ps(); 8];
            for (e, &t) in each.iter_mut().zip(&s.thr) {
                *e = _mm256_set1_ps(t);
            }
            Consts {
                thr: _mm256_loadu_ps(s.thr.as_ptr()),
                each,
                mul: _mm256_loadu_ps(s.mul.as_ptr()),
                off: _mm256_loadu_ps(s.off.as_ptr()),
                kmax: _mm256_loadu_ps(s.kmax.as_ptr()),
                base: _mm256_loadu_si256(s.base.as_ptr() as *const __m256i),
                unsigned: _mm256_set1_epi32(if code.values[0] < 0.0 { 0 } else { -1 }),
            }
        }
    }

    /// The index of each lane of `v` from its segment ([`Segments`]), and
    /// a mask of the lanes it may not decide: within [`NEAR`] of an
    /// interior integer, equal to the boundary passed (exact only for a
    /// negative lane, when the midpoint is a float), NaN, above 1, or
    /// negative for an unsigned code.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[inline(always)]
    pub(super) unsafe fn arithmetic(c: &Consts, v: __m256) -> (__m256i, __m256) {
        let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF));
        let one = _mm256_set1_ps(1.0);
        let a = _mm256_and_ps(v, magnitude);
        let neg = _mm256_srai_epi32::<31>(_mm256_castps_si256(v));
        // d: the boundaries at or below |v| (0: zero, 8: one)
        let mut d = _mm256_setzero_si256();
        for &t in &c.each {
            d = _mm256_sub_epi32(d, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(a, t)));
        }
        let j = _mm256_min_epu32(d, _mm256_set1_epi32(7));
        let t = _mm256_sub_ps(
            _mm256_mul_ps(a, _mm256_permutevar8x32_ps(c.mul, j)),
            _mm256_permutevar8x32_ps(c.off, j),
        );
        let last = _mm256_permutevar8x32_ps(c.kmax, j);
        let k = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), last));
        let up = _mm256_add_epi32(_mm256_permutevar8x32_epi32(c.base, j), k);
        let mirrored = _mm256_sub_epi32(_mm256_set1_epi32(254), up);
        let idx = _mm256_blendv_epi8(up, mirrored, neg);
        let is_one = _mm256_andnot_si256(neg, _mm256_cmpeq_epi32(d, _mm256_set1_epi32(8)));
        let idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32(255), is_one);
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
        let off_r = _mm256_and_ps(_mm256_sub_ps(t, r), magnitude);
        let close = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_LT_OQ>(off_r, _mm256_set1_ps(NEAR)),
            _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(r, one),
                _mm256_cmp_ps::<_CMP_LE_OQ>(r, last),
            ),
        );
        // (d - 1 of d = 0 permutes in thr[7], which |v| < thr[0] never equals)
        let passed = _mm256_permutevar8x32_ps(c.thr, _mm256_sub_epi32(d, _mm256_set1_epi32(1)));
        let on = _mm256_cmp_ps::<_CMP_EQ_OQ>(a, passed);
        let out = _mm256_cmp_ps::<_CMP_NLE_UQ>(a, one);
        let wrong_sign = _mm256_castsi256_ps(_mm256_and_si256(neg, c.unsigned));
        let bad = _mm256_or_ps(_mm256_or_ps(close, on), _mm256_or_ps(out, wrong_sign));
        (idx, bad)
    }

    /// [`Code::index`] of eight values, with gathers.
    #[inline(always)]
    unsafe fn gathered(code: &Code, v: __m256) -> __m256i {
        let bits = _mm256_castps_si256(v);
        let key = _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi32::<16>(bits), _mm256_set1_epi32(0x8000)),
            _mm256_and_si256(
                _mm256_srli_epi32::<{ 23 - BUCKET_BITS as i32 }>(bits),
                _mm256_set1_epi32(0x7FFF),
            ),
        );
        let first = code.first.as_ptr();
        let lo = _mm256_and_si256(
            _mm256_i32gather_epi32::<1>(first as _, key),
            _mm256_set1_epi32(0xFF),
        );
        let bound = _mm256_i32gather_ps::<4>(code.above.as_ptr(), lo);
        // all ones (-1) where v >= bound: subtracting adds 1
        let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(v, bound));
        _mm256_sub_epi32(lo, up)
    }

    /// Stores eight indexes (0 to 255) as bytes.
    #[inline(always)]
    unsafe fn store8(k: __m256i, q: *mut i8) {
        let w = _mm256_packus_epi32(k, k);
        let b = _mm256_packus_epi16(w, w);
        // dword 0 of each 128-bit lane (after the packs: bytes 0-3 and 16-19)
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
        _mm_storel_epi64(q as *mut __m128i, _mm256_castsi256_si128(b));
    }
}

/// The values of bucket `b` as a closed range in the order of the reals
/// (for a negative bucket, its far end is `lo`).
fn bucket_range(b: usize) -> (f64, f64) {
    let sign = b >> (7 + BUCKET_BITS);
    let bits = ((b & ((1 << (7 + BUCKET_BITS)) - 1)) as u32) << (23 - BUCKET_BITS);
    let start = f64::from(f32::from_bits(bits));
    let end = f64::from(f32::from_bits(bits + (1 << (23 - BUCKET_BITS)) - 1));
    match sign {
        0 => (start, end),
        _ => (-end, -start),
    }
}

/// Dequantizes one block (explicit gathers measured no faster than this
/// loop).
#[inline(always)]
fn dequantize(code: &Code, q: &[i8], absmax: f32, dst: &mut [f32]) {
    for (d, &b) in dst.iter_mut().zip(q) {
        *d = code.values[usize::from(b as u8)] * absmax;
    }
}

/// Quantizes one block: its absmax, then the nearest code of `x / absmax`.
#[inline(always)]
fn quantize(code: &Code, src: &[f32], q: &mut [i8], absmax: &mut f32) {
    // Sixteen maxima (the loop vectorizes; max is exact in any order).
    let mut acc = [0.0f32; 16];
    let mut chunks = src.chunks_exact(16);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = a.max(x.abs());
        }
    }
    for &x in chunks.remainder() {
        acc[0] = acc[0].max(x.abs());
    }
    let m = acc.iter().fold(0.0f32, |m, &a| m.max(a));
    *absmax = m;
    if m != 0.0 {
        code.index_all(src, m, q);
    } else {
        // every value is zero (or NaN, which max skips): all are read as 0
        q.fill(code.index(0.0) as i8);
    }
}

/// Loads elements `at .. at + dst.len()` of a slot into float32.
#[inline(always)]
fn load(store: &Store<'_>, at: usize, dst: &mut [f32]) {
    let n = dst.len();
    match store {
        Store::F32(s) => dst.copy_from_slice(&s[at..at + n]),
        Store::Half(f, s) => widen(*f, &s[at..at + n], dst),
        Store::Int8 { q, absmax, signed } => {
            let code = Code::get(*signed);
            for (b, start) in (at..at + n).step_by(BLOCK).enumerate() {
                let end = (start + BLOCK).min(at + n);
                let o = start - at;
                dequantize(
                    code,
                    &q[start..end],
                    absmax[at / BLOCK + b],
                    &mut dst[o..o + end - start],
                );
            }
        }
    }
}

/// Stores float32 `src` into elements `at ..` of a slot (to nearest even,
/// or quantized by blocks; `at` is a multiple of [`BLOCK`]).
#[inline(always)]
fn store(store: &mut Store<'_>, at: usize, src: &[f32]) {
    let n = src.len();
    match store {
        Store::F32(s) => s[at..at + n].copy_from_slice(src),
        Store::Half(f, s) => round_into(*f, src, &mut s[at..at + n], None, at),
        Store::Int8 { q, absmax, signed } => {
            let code = Code::get(*signed);
            for (b, start) in (at..at + n).step_by(BLOCK).enumerate() {
                let end = (start + BLOCK).min(at + n);
                let o = start - at;
                quantize(
                    code,
                    &src[o..o + end - start],
                    &mut q[start..end],
                    &mut absmax[at / BLOCK + b],
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Element-wise rules: tiles on the stack
// ---------------------------------------------------------------------------

/// A slice of one tensor's streams, cut at multiples of [`BLOCK`].
struct Tile<'a, R: Elementwise> {
    param: Store<'a>,
    master: &'a mut [f32],
    fresh_master: bool,
    grad: Read<'a>,
    slots: [Store<'a>; MAX_SLOTS],
    /// Fresh slots start at this value (None: the slot is loaded).
    init: [Option<f32>; MAX_SLOTS],
    c: ElemConsts<R, f32>,
    sr: Option<Sr>,
    /// The index of this slice's first element in the tensor.
    at: usize,
    len: usize,
    rule: PhantomData<fn() -> R>,
}

fn split_store<'a>(s: Store<'a>, mid: usize) -> (Store<'a>, Store<'a>) {
    match s {
        Store::F32([]) => (Store::F32(&mut []), Store::F32(&mut [])),
        Store::F32(s) => {
            let (a, b) = split_mut(s, mid);
            (Store::F32(a), Store::F32(b))
        }
        Store::Half(f, s) => {
            let (a, b) = split_mut(s, mid);
            (Store::Half(f, a), Store::Half(f, b))
        }
        Store::Int8 { q, absmax, signed } => {
            let (qa, qb) = split_mut(q, mid);
            let (aa, ab) = split_mut(absmax, mid / BLOCK);
            (
                Store::Int8 {
                    q: qa,
                    absmax: aa,
                    signed,
                },
                Store::Int8 {
                    q: qb,
                    absmax: ab,
                    signed,
                },
            )
        }
    }
}

impl<R: Elementwise> Split for Tile<'_, R> {
    fn len(&self) -> usize {
        self.len
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        debug_assert_eq!(mid % BLOCK, 0);
        let (pa, pb) = split_store(self.param, mid);
        let (ma, mb) = match self.master.is_empty() {
            true => (&mut [][..], &mut [][..]),
            false => split_mut(self.master, mid),
        };
        let (ga, gb) = match self.grad {
            Read::F32(s) => {
                let (a, b) = split_ref(s, mid);
                (Read::F32(a), Read::F32(b))
            }
            Read::Half(f, s) => {
                let (a, b) = split_ref(s, mid);
                (Read::Half(f, a), Read::Half(f, b))
            }
        };
        let mut sa: [Store<'_>; MAX_SLOTS] = Default::default();
        let mut sb: [Store<'_>; MAX_SLOTS] = Default::default();
        for (k, s) in self.slots.into_iter().enumerate() {
            (sa[k], sb[k]) = split_store(s, mid);
        }
        let head = Tile {
            param: pa,
            master: ma,
            fresh_master: self.fresh_master,
            grad: ga,
            slots: sa,
            init: self.init,
            c: self.c,
            sr: self.sr,
            at: self.at,
            len: mid,
            rule: PhantomData,
        };
        let tail = Tile {
            param: pb,
            master: mb,
            fresh_master: self.fresh_master,
            grad: gb,
            slots: sb,
            init: self.init,
            c: self.c,
            sr: self.sr,
            at: self.at + mid,
            len: self.len - mid,
            rule: PhantomData,
        };
        (head, tail)
    }
}

/// A tile's float32 buffers.
struct Buffers {
    p: [f32; BLOCK],
    g: [f32; BLOCK],
    s: [[f32; BLOCK]; MAX_SLOTS],
}

impl<R: Elementwise> Kernel<f32> for Tile<'_, R> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Lanes<f32>>(mut self) {
        let mut buf = Buffers {
            p: [0.0; BLOCK],
            g: [0.0; BLOCK],
            s: [[0.0; BLOCK]; MAX_SLOTS],
        };
        let mut start = 0;
        while start < self.len {
            let n = BLOCK.min(self.len - start);
            self.tile::<V>(start, n, &mut buf);
            start += n;
        }
    }
}

impl<R: Elementwise> Tile<'_, R> {
    /// Elements `start .. start + n` of this slice (one block at most).
    #[inline(always)]
    unsafe fn tile<V: Lanes<f32>>(&mut self, start: usize, n: usize, buf: &mut Buffers) {
        let at = self.at + start;
        // The param: the master copy in place, a float32 param in place,
        // or a 16-bit param widened.
        let p: *mut f32 = if !self.master.is_empty() {
            let m = &mut self.master[start..start + n];
            if self.fresh_master {
                load(&self.param, start, m);
            }
            m.as_mut_ptr()
        } else if let Store::F32(s) = &mut self.param {
            s[start..].as_mut_ptr()
        } else {
            load(&self.param, start, &mut buf.p[..n]);
            buf.p.as_mut_ptr()
        };
        let g: *const f32 = match &self.grad {
            Read::F32(s) => s[start..].as_ptr(),
            Read::Half(f, s) => {
                widen(*f, &s[start..start + n], &mut buf.g[..n]);
                buf.g.as_ptr()
            }
        };
        let mut w = [p; STREAMS];
        for k in 0..MAX_SLOTS {
            w[1 + k] = match (&mut self.slots[k], self.init[k]) {
                (Store::F32(s), None) => s.as_mut_ptr().wrapping_add(start),
                (Store::F32(s), Some(v)) => {
                    s[start..start + n].fill(v);
                    s.as_mut_ptr().wrapping_add(start)
                }
                (other, init) => {
                    let b = &mut buf.s[k][..n];
                    match init {
                        Some(v) => b.fill(v),
                        None => load(other, start, b),
                    }
                    b.as_mut_ptr()
                }
            };
        }
        let mut ptrs: Ptrs<f32, ElemConsts<R, f32>, STREAMS, 1> = Ptrs {
            w,
            r: [g],
            c: self.c,
        };
        drive::<f32, V, _>(n, &mut ptrs);
        for k in 0..MAX_SLOTS {
            if !matches!(self.slots[k], Store::F32(_)) {
                store(&mut self.slots[k], start, &buf.s[k][..n]);
            }
        }
        let sr = self.sr;
        if !self.master.is_empty() {
            let m = &self.master[start..start + n];
            store_param(&mut self.param, start, at, m, sr);
        } else if !matches!(self.param, Store::F32(_)) {
            store_param(&mut self.param, start, at, &buf.p[..n], sr);
        }
    }
}

/// Rounds float32 param values into elements `start ..` of a 16-bit
/// param (element `at` of the tensor: the stochastic rounding key). A
/// float32 param is stepped in place and never comes here.
#[inline(always)]
fn store_param(param: &mut Store<'_>, start: usize, at: usize, src: &[f32], sr: Option<Sr>) {
    if let Store::Half(f, s) = param {
        round_into(*f, src, &mut s[start..start + src.len()], sr, at);
    }
}

/// The initial value of each new slot (None: loaded from the store).
fn inits<R: Rule>(h: &R::Hyper, fresh: &[bool; MAX_SLOTS]) -> [Option<f32>; MAX_SLOTS] {
    std::array::from_fn(|k| {
        let used = k < R::SLOTS.len() && R::SLOTS[k].kind != Kind::Scalar;
        (used && fresh[k]).then(|| R::init(h, k) as f32)
    })
}

fn sr_of(sr: Option<[u32; 2]>, t: &LowTensor<'_, impl Sized>) -> Option<Sr> {
    sr.filter(|_| matches!(t.param, Store::Half(..)))
        .map(|key| Sr {
            key,
            step: t.step,
            index: t.index,
        })
}

/// [`Rule::step_low`] of an element-wise rule: one parallel job over
/// fixed chunks (multiples of [`BLOCK`]) of every tensor, each converted
/// tile by tile around the rule's float32 kernel.
pub fn tiled<R: Elementwise>(
    tensors: &mut [LowTensor<'_, R::Hyper>],
    sr: Option<[u32; 2]>,
) -> Result<()> {
    const _: () = assert!(parallel::CHUNK.is_multiple_of(BLOCK));
    let work: Vec<Tile<'_, R>> = tensors
        .iter_mut()
        .map(|t| {
            let c = R::consts::<f32>(&t.hyper, t.step, &t.fresh, &mut t.scalars);
            let sr = sr_of(sr, t);
            let ndim = t.shape.len();
            let hyper = t.hyper;
            let mut slots: [Store<'_>; MAX_SLOTS] = Default::default();
            for (k, s) in slots.iter_mut().enumerate() {
                let used = k < R::SLOTS.len()
                    && R::SLOTS[k].kind != Kind::Scalar
                    && R::uses(&hyper, k, ndim);
                if used {
                    *s = std::mem::take(&mut t.slots[k]);
                }
            }
            Tile {
                len: t.param.len(),
                param: std::mem::take(&mut t.param),
                master: std::mem::take(&mut t.master),
                fresh_master: t.fresh_master,
                grad: std::mem::replace(&mut t.grad, Read::F32(&[])),
                slots,
                init: inits::<R>(&hyper, &t.fresh),
                c: ElemConsts::new(c, t.grad_scale),
                sr,
                at: 0,
                rule: PhantomData,
            }
        })
        .collect();
    parallel::for_each_chunk(work, simd::dispatch)
}

// ---------------------------------------------------------------------------
// Other rules: whole tensors staged in float32
// ---------------------------------------------------------------------------

fn staging(n: usize) -> Result<Vec<f32>> {
    let mut v = crate::alloc::with_capacity(n, "a float32 copy of a low-precision tensor")?;
    v.resize(n, 0.0);
    Ok(v)
}

/// A tensor's float32 copies: param, grad, slots (empty where a stream is
/// float32 already).
type Copies = (Vec<f32>, Vec<f32>, Vec<Vec<f32>>);

/// [`Rule::step_low`] of any rule: each tensor's streams copied whole into
/// float32 (where they are not float32 already), the rule's float32 step,
/// and the results stored back.
pub fn staged<R: Rule>(
    tensors: &mut [LowTensor<'_, R::Hyper>],
    sr: Option<[u32; 2]>,
) -> Result<()> {
    // Every copy is allocated before anything is written.
    let mut copies: Vec<Copies> = Vec::with_capacity(tensors.len());
    for t in tensors.iter() {
        let n = t.param.len();
        let p = match (&t.param, t.master.is_empty()) {
            (Store::F32(_), _) | (_, false) => Vec::new(),
            _ => staging(n)?,
        };
        let g = match t.grad {
            Read::F32(_) => Vec::new(),
            Read::Half(..) => staging(n)?,
        };
        let mut s = Vec::with_capacity(MAX_SLOTS);
        for slot in &t.slots {
            s.push(match slot {
                Store::F32(_) => Vec::new(),
                other => staging(other.len())?,
            });
        }
        copies.push((p, g, s));
    }
    for (t, (p, g, s)) in tensors.iter_mut().zip(copies.iter_mut()) {
        if t.fresh_master {
            load(&t.param, 0, t.master);
        }
        if !p.is_empty() {
            load(&t.param, 0, p);
        }
        if let Read::Half(f, src) = t.grad {
            widen(f, src, g);
        }
        let init = inits::<R>(&t.hyper, &t.fresh);
        for k in 0..MAX_SLOTS {
            match (&mut t.slots[k], init[k]) {
                (Store::F32(d), Some(v)) => d.fill(v),
                (Store::F32(_), None) => {}
                (_, Some(v)) => s[k].fill(v),
                (other, None) => load(other, 0, &mut s[k]),
            }
        }
    }
    let mut views: Vec<Tensor<'_, f32, R::Hyper>> = Vec::with_capacity(tensors.len());
    for (t, (p, g, s)) in tensors.iter_mut().zip(copies.iter_mut()) {
        let LowTensor {
            param,
            master,
            grad,
            slots,
            ..
        } = t;
        let param: &mut [f32] = if !master.is_empty() {
            master
        } else if let Store::F32(d) = param {
            d
        } else {
            p
        };
        let grad: &[f32] = match grad {
            Read::F32(src) => src,
            Read::Half(..) => g,
        };
        let mut pairs = slots.iter_mut().zip(s.iter_mut());
        let slots: [&mut [f32]; MAX_SLOTS] = std::array::from_fn(|_| match pairs.next() {
            Some((Store::F32(d), _)) => &mut d[..],
            Some((_, copy)) => &mut copy[..],
            None => &mut [][..],
        });
        views.push(Tensor {
            param,
            grad,
            shape: t.shape,
            slots,
            scalars: t.scalars,
            fresh: t.fresh,
            step: t.step,
            hyper: t.hyper,
            grad_scale: t.grad_scale,
        });
    }
    super::rule::step::<R, f32>(&mut views)?;
    let scalars: Vec<[f64; MAX_SLOTS]> = views.iter().map(|v| v.scalars).collect();
    drop(views);
    for ((t, (p, _, s)), sc) in tensors.iter_mut().zip(copies.iter()).zip(scalars) {
        t.scalars = sc;
        for (slot, copy) in t.slots.iter_mut().zip(s) {
            if !matches!(slot, Store::F32(_)) {
                store(slot, 0, copy);
            }
        }
        let sr = sr_of(sr, t);
        if !t.master.is_empty() {
            store_param(&mut t.param, 0, 0, t.master, sr);
        } else if !p.is_empty() {
            store_param(&mut t.param, 0, 0, p, sr);
        }
    }
    Ok(())
}

/// Whether every grad is finite (no NaN, no inf), in any stored format.
pub fn all_finite(grads: &[&Read<'_>]) -> Result<bool> {
    let f32s: Vec<&[f32]> = grads
        .iter()
        .filter_map(|g| match g {
            Read::F32(s) => Some(*s),
            Read::Half(..) => None,
        })
        .collect();
    if !super::all_finite(&f32s)? {
        return Ok(false);
    }
    // A 16-bit value is finite unless its exponent bits are all ones.
    Ok(grads.iter().all(|g| match g {
        Read::F32(_) => true,
        Read::Half(Half::Bf16, s) => s.iter().all(|&h| h & 0x7F80 != 0x7F80),
        Read::Half(Half::F16, s) => s.iter().all(|&h| h & 0x7C00 != 0x7C00),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_index_is_the_search_index() {
        for signed in [false, true] {
            let code = Code::get(signed);
            // Every bucket's ends and a spread of values in [-1, 1].
            let mut x = 0x2545_F491_4F6C_DD1Du64;
            for _ in 0..2_000_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let bits = (x as u32) & 0x3FFF_FFFF | ((x >> 32) as u32 & 0x8000_0000);
                let v = f32::from_bits(bits).clamp(-1.0, 1.0);
                assert_eq!(code.index(v), code.search_index(f64::from(v)), "{v}");
            }
            for k in 0..255 {
                let m = code.mid[k] as f32;
                for v in [
                    m,
                    f32::from_bits(m.to_bits() + 1),
                    f32::from_bits(m.to_bits() - 1),
                ] {
                    assert_eq!(code.index(v), code.search_index(f64::from(v)), "{v}");
                }
            }
            for b in 0..BUCKETS {
                let (lo, hi) = bucket_range(b);
                let inside = code.search_index(hi) - code.search_index(lo);
                assert!(
                    inside <= 1,
                    "bucket {b} [{lo}, {hi}] holds {inside} midpoints"
                );
            }
            for v in [0.0f32, -0.0, 1.0, -1.0, 1e-30, -1e-30, f32::MIN_POSITIVE] {
                assert_eq!(code.index(v), code.search_index(f64::from(v)), "{v}");
            }
        }
    }

    /// The gathers give the scalar index of every value: each bucket's
    /// ends, the floats around every midpoint, zeros, subnormals, NaN, and
    /// lengths that leave a scalar tail.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn gathered_index_is_the_scalar_index() {
        let mut v: Vec<f32> = Vec::new();
        for b in 0..BUCKETS {
            let (lo, hi) = bucket_range(b); // f32 values, exact in f64
            v.extend([lo as f32, hi as f32]);
        }
        for signed in [false, true] {
            let code = Code::get(signed);
            for k in 0..255 {
                let m = code.mid[k] as f32;
                v.extend([
                    m,
                    f32::from_bits(m.to_bits() + 1),
                    f32::from_bits(m.to_bits() - 1),
                ]);
            }
        }
        v.extend([0.0, -0.0, 1.0, -1.0, f32::from_bits(1), f32::NAN, -f32::NAN]);
        let mut x = 0x9E37_79B9_u32;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            v.push(f32::from_bits(x & 0xBFFF_FFFF)); // |v| < 2
        }
        for signed in [false, true] {
            let code = Code::get(signed);
            let want: Vec<i8> = v.iter().map(|&x| code.index(x) as i8).collect();
            for len in [v.len(), v.len() - 5, 13] {
                let mut q = vec![0i8; len];
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    let done = unsafe { gather::index_avx512(code, &v[..len], 1.0, &mut q) };
                    assert_eq!(done, len / 16 * 16);
                    assert_eq!(q[..done], want[..done], "avx512, signed {signed}");
                }
                if is_x86_feature_detected!("avx2") {
                    q.fill(0);
                    // SAFETY: the CPU has AVX2.
                    let done = unsafe { gather::index_avx2(code, &v[..len], 1.0, &mut q) };
                    assert_eq!(done, len / 8 * 8);
                    assert_eq!(q[..done], want[..done], "avx2, signed {signed}");
                }
                q.fill(0);
                code.index_all(&v[..len], 1.0, &mut q);
                assert_eq!(q, want[..len]);
                // the division happens in the lanes as in the scalar code
                let m = 1.75f32;
                let scaled: Vec<i8> = v[..len].iter().map(|&x| code.index(x / m) as i8).collect();
                q.fill(0);
                code.index_all(&v[..len], m, &mut q);
                assert_eq!(q, scaled);
            }
        }
    }

    /// Where the AVX2 arithmetic decides a lane, it gives the table's
    /// index. Returns how many lanes it decided and how many it left to
    /// the table, of `values` and (for a signed code) their negatives.
    #[cfg(target_arch = "x86_64")]
    fn check_arithmetic(code: &Code, values: impl Iterator<Item = f32>) -> (usize, usize) {
        use std::arch::x86_64::*;
        let signed = code.values[0] < 0.0;
        let v: Vec<f32> = values
            .flat_map(|v| [v, if signed { -v } else { v }])
            .collect();
        let (mut decided, mut left) = (0, 0);
        for c in v.chunks_exact(8) {
            // SAFETY: the caller checked that the CPU has AVX2.
            let (idx, bad) = unsafe {
                let consts = gather::Consts::new(code);
                let (idx, bad) = gather::arithmetic(&consts, _mm256_loadu_ps(c.as_ptr()));
                let mut i = [0i32; 8];
                _mm256_storeu_si256(i.as_mut_ptr() as *mut __m256i, idx);
                (i, _mm256_movemask_ps(bad))
            };
            for (l, &x) in c.iter().enumerate() {
                if bad >> l & 1 == 1 {
                    left += 1;
                } else {
                    decided += 1;
                    assert_eq!(
                        idx[l],
                        i32::from(code.index(x)),
                        "{x:e} ({:#x})",
                        x.to_bits()
                    );
                }
            }
        }
        (decided, left)
    }

    /// The floats within `ulps` of each midpoint and of each segment
    /// boundary, a spread of every float in [0, 1], and the edges.
    #[cfg(target_arch = "x86_64")]
    fn near_midpoints(code: &Code, ulps: u32, stride: usize) -> Vec<f32> {
        let mut v = Vec::new();
        for k in 0..255 {
            let m = (code.mid[k] as f32).to_bits();
            v.extend((m.saturating_sub(ulps)..=m + ulps).map(f32::from_bits));
        }
        for &t in &code.seg.thr {
            let t = t.to_bits();
            v.extend((t - ulps..=t + ulps).map(f32::from_bits));
        }
        v.extend((0..=1f32.to_bits()).step_by(stride).map(f32::from_bits));
        v.extend([
            0.0,
            1.0,
            f32::from_bits(1),
            f32::MIN_POSITIVE,
            f32::NAN,
            1.5,
        ]);
        v
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn arithmetic_index_is_the_table_index() {
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        for signed in [false, true] {
            let code = Code::get(signed);
            // (most floats this close to a midpoint go to the table)
            let (decided, _) = check_arithmetic(code, near_midpoints(code, 300, 4099).into_iter());
            assert!(decided > 100_000, "signed {signed}: {decided} decided");
            // uniform values: fewer than 1 lane in 500
            let mut x = 0x2545_F491_u32;
            let uniform = (0..400_000).map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 8) as f32 / (1 << 24) as f32
            });
            let (decided, left) = check_arithmetic(code, uniform);
            assert!(
                decided > 500 * left,
                "signed {signed}: {decided} decided, {left} left"
            );
        }
    }

    /// `cargo test --release -p lec7rs-core --lib arithmetic_index_everywhere -- --ignored`
    /// (about five minutes): every float in [-1, 1].
    #[test]
    #[ignore]
    #[cfg(target_arch = "x86_64")]
    fn arithmetic_index_everywhere() {
        assert!(is_x86_feature_detected!("avx2"));
        for signed in [false, true] {
            let code = Code::get(signed);
            let all = (0..=1f32.to_bits()).map(f32::from_bits);
            let (decided, left) = check_arithmetic(code, all);
            println!("signed {signed}: {decided} decided, {left} left");
        }
    }

    #[test]
    fn codes_are_bitsandbytes_dynamic_maps() {
        let s = dynamic_code(true);
        let u = dynamic_code(false);
        assert_eq!(s.iter().filter(|&&v| v < 0.0).count(), 127);
        assert_eq!((s[127], s[255], u[0], u[255]), (0.0, 1.0, 0.0, 1.0));
        assert!(s.windows(2).all(|w| w[0] < w[1]) && u.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn conversions_round_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3F80);
        assert_eq!(f32_to_bf16(f32::from_bits(0x3F80_8000)), 0x3F80); // tie, even
        assert_eq!(f32_to_bf16(f32::from_bits(0x3F81_8000)), 0x3F82); // tie, odd
        assert_eq!(f32_to_bf16(f32::NAN) & 0x7FC0, 0x7FC0);
        assert_eq!(f32_to_f16(1.0), 0x3C00);
        assert_eq!(f32_to_f16(65520.0), 0x7C00); // rounds to inf
        assert_eq!(f32_to_f16(65519.0), 0x7BFF);
        assert_eq!(f32_to_f16(f32::from_bits(0x3380_0000)), 0x0001); // 2^-24
        assert_eq!(f32_to_f16(f32::from_bits(0x3300_0000)), 0x0000); // 2^-25: tie to 0
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if !x.is_nan() {
                assert_eq!(f32_to_f16(x), h, "{h:#x}");
            }
            let y = bf16_to_f32(h);
            if !y.is_nan() {
                assert_eq!(f32_to_bf16(y), h, "{h:#x}");
            }
        }
    }

    #[test]
    fn stochastic_rounding_picks_a_neighbour() {
        let x = 1.0f32 + 3.0 * f32::EPSILON; // between two bfloat16 values
        let lo = round_stochastic(Half::Bf16, x, u32::MAX);
        let hi = round_stochastic(Half::Bf16, x, 0);
        assert_eq!((lo, hi), (0x3F80, 0x3F81));
        assert_eq!(round_stochastic(Half::F16, 1.0, 0), 0x3C00);
        assert_eq!(
            round_stochastic(Half::F16, -1.0005, 0),
            f32_to_f16(-1.0009766)
        );
    }

    /// The plain definitions of the float16 conversions (as NumPy's
    /// `npy_halfbits_to_floatbits` / `npy_floatbits_to_halfbits`).
    fn f16_to_f32_plain(h: u16) -> f32 {
        let sign = u32::from(h & 0x8000) << 16;
        let exp = u32::from(h >> 10) & 0x1F;
        let man = u32::from(h & 0x3FF);
        let bits = match exp {
            0 => {
                let mag = man as f32 * f32::from_bits(0x3380_0000);
                return f32::from_bits(mag.to_bits() | sign);
            }
            0x1F => sign | 0x7F80_0000 | (man << 13),
            _ => sign | ((exp + 112) << 23) | (man << 13),
        };
        f32::from_bits(bits)
    }

    fn f32_to_f16_plain(x: f32) -> u16 {
        let f = x.to_bits();
        let sign = ((f >> 16) & 0x8000) as u16;
        let f_exp = f & 0x7F80_0000;
        let f_sig = f & 0x007F_FFFF;
        if f_exp >= 0x4780_0000 {
            if f_exp == 0x7F80_0000 && f_sig != 0 {
                let nan = 0x7C00u16 + (f_sig >> 13) as u16;
                return sign | if nan == 0x7C00 { 0x7C01 } else { nan };
            }
            return sign | 0x7C00;
        }
        if f_exp <= 0x3800_0000 {
            if f_exp < 0x3300_0000 {
                return sign;
            }
            let mut sig = (0x0080_0000 + f_sig) >> (113 - (f_exp >> 23));
            if (sig & 0x3FFF) != 0x1000 || (f & 0x7FF) != 0 {
                sig += 0x1000;
            }
            return sign | (sig >> 13) as u16;
        }
        let h_exp = ((f_exp - 0x3800_0000) >> 13) as u16;
        let mut sig = f_sig;
        if (sig & 0x3FFF) != 0x1000 {
            sig += 0x1000;
        }
        sign | h_exp.wrapping_add((sig >> 13) as u16)
    }

    #[test]
    fn branch_free_f16_conversions_are_the_definitions() {
        for h in 0..=0xFFFFu16 {
            assert_eq!(
                f16_to_f32(h).to_bits(),
                f16_to_f32_plain(h).to_bits(),
                "{h:#06x}"
            );
        }
        // Every high half with the low halves around the rounding bits of
        // every shift (normal: bit 13; subnormal: bits 13 + 1..=11), then
        // random floats.
        let mut lows = vec![0u32, 1, 0x7FF, 0x800, 0xFFFF];
        for b in 12..=24 {
            for d in [-1i64, 0, 1] {
                lows.push(((1i64 << b) + d) as u32 & 0xFFFF);
                lows.push((((1i64 << b) + d) as u32 >> 8) & 0xFFFF);
            }
        }
        for hi in 0..=0xFFFFu32 {
            for &low in &lows {
                let x = f32::from_bits(hi << 16 | low);
                assert_eq!(f32_to_f16(x), f32_to_f16_plain(x), "{:#010x}", x.to_bits());
            }
        }
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..4_000_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            for bits in [r as u32, (r >> 32) as u32] {
                let x = f32::from_bits(bits);
                assert_eq!(f32_to_f16(x), f32_to_f16_plain(x), "{bits:#010x}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn f16c_conversions_are_the_definitions() {
        if !f16c::usable() {
            return;
        }
        // Every float16, at every offset in a register and in the tail.
        let all: Vec<u16> = (0..=0xFFFFu16).collect();
        for skip in [0, 3] {
            let src = &all[skip..];
            let mut got = vec![0f32; src.len()];
            // SAFETY: checked above.
            unsafe { f16c::widen(src, &mut got) };
            for (&h, g) in src.iter().zip(&got) {
                assert_eq!(g.to_bits(), f16_to_f32_plain(h).to_bits(), "{h:#06x}");
            }
        }
        // Floats around every float16 rounding boundary and NaNs of every
        // kind, then random ones.
        let mut xs = Vec::new();
        for hi in 0..=0xFFFFu32 {
            for low in [0u32, 1, 0x0FFF, 0x1000, 0x1001, 0x7FFF, 0x8000, 0xFFFF] {
                xs.push(f32::from_bits(hi << 16 | low));
            }
        }
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..1_000_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            xs.push(f32::from_bits(r as u32));
        }
        let mut got = vec![0u16; xs.len()];
        // SAFETY: checked above.
        unsafe { f16c::round(&xs[5..], &mut got[5..]) };
        for (x, &g) in xs[5..].iter().zip(&got[5..]) {
            assert_eq!(g, f32_to_f16_plain(*x), "{:#010x}", x.to_bits());
        }
    }

    /// Every float32 (4.3e9 inputs, about a minute in release):
    /// `cargo test --release -p lec7rs-core --lib f32_to_f16_everywhere -- --ignored`
    #[test]
    #[ignore]
    fn f32_to_f16_everywhere() {
        for bits in 0..=u32::MAX {
            let x = f32::from_bits(bits);
            assert_eq!(f32_to_f16(x), f32_to_f16_plain(x), "{bits:#010x}");
        }
    }

    /// The definition's threshold of "up" for `x` (`word < t` rounds up;
    /// 0 where it rounds to nearest), clamped to the words.
    fn f16_threshold(x: f32) -> u32 {
        straddle(Half::F16, x).map_or(0, |(_, frac)| {
            (frac * 4_294_967_296.0).ceil().clamp(0.0, u32::MAX as f64) as u32
        })
    }

    #[test]
    fn integer_f16_stochastic_rounding_is_the_definition() {
        let check = |x: f32, word: u32| {
            assert_eq!(
                round_stochastic_f16(x, word),
                round_stochastic(Half::F16, x, word),
                "{:#010x} {word:#010x}",
                x.to_bits()
            );
        };
        // Every high half (sign, exponent, top of the significand) with
        // low halves around float16's rounding bits and the subnormal
        // range's, at the words around each threshold and the extremes.
        for hi in 0..=0xFFFFu32 {
            for low in [
                0u32, 1, 2, 0x0FFF, 0x1000, 0x1FFF, 0x2000, 0x8000, 0xFFFE, 0xFFFF,
            ] {
                let x = f32::from_bits(hi << 16 | low);
                let t = f16_threshold(x);
                for word in [0, 1, u32::MAX, t.saturating_sub(1), t, t.saturating_add(1)] {
                    check(x, word);
                }
            }
        }
        // Random floats below 2^-14 (every shift of the subnormal range)
        // and anywhere, at their thresholds and at random words.
        let mut r = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..1_000_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let bits = r as u32;
            for x in [
                f32::from_bits((bits % 0x3880_0000) | (bits & 0x8000_0000)),
                f32::from_bits(bits),
            ] {
                let t = f16_threshold(x);
                for word in [t.saturating_sub(1), t, (r >> 32) as u32] {
                    check(x, word);
                }
            }
        }
    }

    /// `cargo test --release -p lec7rs-core --lib f16_stochastic_rounding_everywhere -- --ignored`
    /// (a few minutes): every float at the words on both sides of its
    /// threshold.
    #[test]
    #[ignore]
    fn f16_stochastic_rounding_everywhere() {
        for bits in 0..=u32::MAX {
            let x = f32::from_bits(bits);
            let t = f16_threshold(x);
            for word in [t.saturating_sub(1), t] {
                assert_eq!(
                    round_stochastic_f16(x, word),
                    round_stochastic(Half::F16, x, word),
                    "{bits:#010x} {word:#010x}"
                );
            }
        }
    }

    #[test]
    fn branch_free_bf16_rounding_is_the_definition() {
        // Every bfloat16 pattern's neighbourhood (the low halves 0, 1, the
        // middle and the top, which covers NaN, inf, the largest finite
        // values, zeros and subnormals), then random floats; the words at
        // and around the threshold `low << 16`, and random ones.
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r
        };
        let check = |bits: u32, word: u32| {
            let x = f32::from_bits(bits);
            assert_eq!(
                round_stochastic_bf16(x, word),
                round_stochastic(Half::Bf16, x, word),
                "x {bits:#010x} word {word:#010x}"
            );
        };
        for hi in 0..=0xFFFFu32 {
            for low in [0u32, 1, 0x7FFF, 0x8000, 0xFFFF] {
                let t = low << 16;
                for word in [0, 1, t.wrapping_sub(1), t, t.wrapping_add(1), u32::MAX] {
                    check(hi << 16 | low, word);
                }
                check(hi << 16 | low, next() as u32);
            }
        }
        for _ in 0..4_000_000 {
            let v = next();
            check(v as u32, (v >> 32) as u32);
        }
    }

    #[test]
    fn stochastic_rounding_uses_each_elements_counter_block() {
        // `round_into` against its definition element by element: word
        // `e & 3` of `sr_block` for element `e`, at offsets and lengths
        // across groups and chunks, and where `e >> 2` wraps at 2^32.
        let sr = Sr {
            key: [0x1234_5678, 0x9abc_def0],
            step: (7u64 << 32) | 5,
            index: 3,
        };
        let wrap = 4usize << 32;
        for format in [Half::Bf16, Half::F16] {
            for (at, n) in [(0usize, 1usize), (61, 3000), (wrap - 70, 300)] {
                let src: Vec<f32> = (0..n).map(|i| 1.0 + i as f32 * 1e-5).collect();
                let mut dst = vec![0u16; n];
                round_into(format, &src, &mut dst, Some(sr), at);
                for (j, (&x, &d)) in src.iter().zip(&dst).enumerate() {
                    let e = (at + j) as u64;
                    let word = sr_block(sr.key, sr.step, sr.index, e)[(e & 3) as usize];
                    assert_eq!(d, round_stochastic(format, x, word), "{format:?} e {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;

    /// `cargo test --release -p lec7rs-core --lib low::timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn quantize_and_dequantize_rates() {
        let n = 1 << 22;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 * 1e-3 - 0.5)
            .collect();
        let mut q = vec![0i8; n];
        let mut a = vec![0f32; n / BLOCK];
        let mut y = vec![0f32; n];
        let code = Code::get(true);
        q.fill(1);
        y.fill(1.0);
        let mut tq = f64::INFINITY;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for ((xs, qs), am) in x.chunks(BLOCK).zip(q.chunks_mut(BLOCK)).zip(&mut a) {
                quantize(code, xs, qs, am);
            }
            tq = tq.min(t.elapsed().as_secs_f64() / n as f64 * 1e9);
        }
        // one block in L1, as in a step's tile
        let mut tv = f64::INFINITY;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            for _ in 0..n / BLOCK {
                code.index_all(&x[..BLOCK], 0.75, &mut q[..BLOCK]);
            }
            tv = tv.min(t.elapsed().as_secs_f64() / n as f64 * 1e9);
        }
        let t = std::time::Instant::now();
        for ((qs, ys), &am) in q.chunks(BLOCK).zip(y.chunks_mut(BLOCK)).zip(&a) {
            dequantize(code, qs, am, ys);
        }
        let td = t.elapsed().as_secs_f64() / n as f64 * 1e9;
        let t = std::time::Instant::now();
        let mut acc = 0u32;
        for &v in &y {
            acc = acc.wrapping_add(u32::from(code.index(v * 0.3)));
        }
        let ti = t.elapsed().as_secs_f64() / n as f64 * 1e9;
        let t = std::time::Instant::now();
        for &v in &y {
            acc = acc.wrapping_add(u32::from(code.search_index(f64::from(v * 0.3))));
        }
        let ts = t.elapsed().as_secs_f64() / n as f64 * 1e9;
        println!("quantize {tq:.2} ns/elem (index_all in L1 {tv:.2}), dequantize {td:.2} ns/elem, index {ti:.2}, search {ts:.2} {acc}");
    }
}
