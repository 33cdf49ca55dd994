//! Raw words and uniform floats in [0, 1).

use super::philox::{blocks, RoundKeys, Words};
use super::source::{dispatch, walk_groups, Source, WordKernel};
use super::{Draw, Span, GROUP_BLOCKS, GROUP_WORDS};
use crate::error::Result;
use crate::parallel;
use crate::simd::Real;

/// A float type drawn uniformly from [0, 1) out of `WORDS` random words:
/// the top 24 bits of one word for `f32`, the top 53 bits of two words (the
/// second one high) for `f64`, scaled by 2^-24 or 2^-53 (both exact), as
/// NumPy and PyTorch do.
pub trait Uniform: Real {
    /// Random words per value.
    const WORDS: usize;
    /// Random bits per value: every value is `m * 2^-BITS`, `m < 2^BITS`.
    const BITS: u32;
    /// The value of the first `WORDS` words.
    fn from_words(words: &[u32]) -> Self;
    /// `out[k]` from words `k * WORDS ..` (a loop LLVM vectorizes).
    fn fill(out: &mut [Self], words: &[u32]);
}

impl Uniform for f32 {
    const WORDS: usize = 1;
    const BITS: u32 = 24;

    #[inline(always)]
    fn from_words(words: &[u32]) -> Self {
        (words[0] >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // index loops: see `blocks16`
    fn fill(out: &mut [Self], words: &[u32]) {
        let words = &words[..out.len()];
        for k in 0..out.len() {
            out[k] = (words[k] >> 8) as f32 * (1.0 / (1u32 << 24) as f32);
        }
    }
}

impl Uniform for f64 {
    const WORDS: usize = 2;
    const BITS: u32 = 53;

    #[inline(always)]
    fn from_words(words: &[u32]) -> Self {
        f64_of(words[0], words[1])
    }

    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // index loops: see `blocks16`
    fn fill(out: &mut [Self], words: &[u32]) {
        let pairs = &words.as_chunks::<2>().0[..out.len()];
        for k in 0..out.len() {
            out[k] = f64_of(pairs[k][0], pairs[k][1]);
        }
    }
}

/// `((high << 32 | low) >> 11) * 2^-53`, as `high * 2^21 + (low >> 11)`:
/// two exact u32 -> f64 conversions (which vectorize, unlike u64 -> f64
/// without AVX-512DQ) and an exact sum below 2^53.
#[inline(always)]
fn f64_of(low: u32, high: u32) -> f64 {
    let high = f64::from(high) * (1u32 << 21) as f64;
    (high + f64::from(low >> 11)) * (1.0 / (1u64 << 53) as f64)
}

struct WordsKernel<'a, 'b>(&'b Draw, Span<'a, u32>);

impl WordKernel for WordsKernel<'_, '_> {
    type Output = ();

    /// The whole groups of the span computed straight into `out` (no copy
    /// through the group buffer), the words before the first and after the
    /// last through [`Source::runs`].
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // index loops: see `blocks16`
    unsafe fn run<V: Words>(self) {
        let WordsKernel(draw, span) = self;
        let source = Source::<V>::new(*draw);
        let (first, out) = (span.first, span.out);
        let group = GROUP_WORDS as u64;
        let head = ((group - first % group) % group).min(out.len() as u64) as usize;
        let body = (out.len() - head) / GROUP_WORDS * GROUP_WORDS;
        let (head_out, rest) = out.split_at_mut(head);
        let (body_out, tail_out) = rest.split_at_mut(body);
        let g0 = (first + head as u64) / group;
        let (groups, _) = body_out.as_chunks_mut::<GROUP_WORDS>();
        let mut k = 0;
        while k < groups.len() {
            let count = if groups.len() - k >= V::GROUPS {
                V::GROUPS
            } else {
                1
            };
            source.groups(g0 + k as u64, &mut groups[k..k + count]);
            k += count;
        }
        let ends = [(head_out, first), (tail_out, first + (head + body) as u64)];
        for (out, start) in ends {
            source.runs(
                start,
                out.len(),
                #[inline(always)]
                |words, at| out[at..at + words.len()].copy_from_slice(words),
            );
        }
    }
}

/// Writes words `first .. first + out.len()` of `draw` to `out`.
pub fn fill_words(draw: Draw, first: u64, out: &mut [u32]) -> Result<()> {
    parallel::for_each_chunk(vec![Span { out, first }], |span| {
        dispatch(WordsKernel(&draw, span))
    })
}

struct BlockMajorKernel<'a> {
    key: [u32; 2],
    high: u128,
    first: u64,
    out: &'a mut [u32],
}

impl WordKernel for BlockMajorKernel<'_> {
    type Output = ();

    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // index loops: see `blocks16`
    unsafe fn run<V: Words>(self) {
        let keys = RoundKeys::<V>::new(self.key);
        let (high, out) = (self.high, self.out);
        walk_groups::<V>(
            self.first,
            out.len(),
            #[inline(always)]
            |g, buf| {
                // The group's first block, `(e >> 2) as u32` rounded down to
                // a multiple of 16: its 16 blocks never wrap; two groups
                // wrap only from the last group before 2^32 (then one at a
                // time, the low word wrapping without carry).
                let b0 = (g * GROUP_BLOCKS as u64) as u32;
                if b0 <= u32::MAX - (GROUP_BLOCKS * buf.len() - 1) as u32 {
                    blocks(high | u128::from(b0), &keys, buf);
                } else {
                    for (q, group) in buf.iter_mut().enumerate() {
                        let b = b0.wrapping_add((GROUP_BLOCKS * q) as u32);
                        blocks(high | u128::from(b), &keys, std::slice::from_mut(group));
                    }
                }
            },
            #[inline(always)]
            |words, skip, take, at| {
                let dst = &mut out[at..at + take];
                // Element `4 j + w` of the group is word `w` of block `j`.
                if let Ok(dst) = <&mut [u32; GROUP_WORDS]>::try_from(&mut *dst) {
                    transpose(words, dst);
                } else {
                    for k in 0..take {
                        let i = skip + k;
                        dst[k] = words[GROUP_BLOCKS * (i & 3) + (i >> 2)];
                    }
                }
            },
        );
    }
}

/// `out[4 j + w] = words[16 w + j]`: a whole group from word-major to
/// block-major order (fixed sizes, which LLVM turns into shuffles).
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops: see `blocks16`
fn transpose(words: &[u32; GROUP_WORDS], out: &mut [u32; GROUP_WORDS]) {
    for j in 0..GROUP_BLOCKS {
        for w in 0..4 {
            out[4 * j + w] = words[GROUP_BLOCKS * w + j];
        }
    }
}

/// Writes `out[j] = block([(e >> 2) as u32, c1, c2, c3], key)[e & 3]` for
/// `e = first + j`: four consecutive values from each block of counters
/// whose low word is the value's index over four (wrapping at 2^32, without
/// carry) and whose other words are `high = [c1, c2, c3]`. On the current
/// thread (callers run inside their own chunks).
pub fn fill_block_words(key: [u32; 2], high: [u32; 3], first: u64, out: &mut [u32]) {
    let high = u128::from(high[0]) << 32 | u128::from(high[1]) << 64 | u128::from(high[2]) << 96;
    dispatch(BlockMajorKernel {
        key,
        high,
        first,
        out,
    })
}

struct UniformKernel<'a, 'b, T>(&'b Draw, Span<'a, T>);

impl<T: Uniform> WordKernel for UniformKernel<'_, '_, T> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Words>(self) {
        let UniformKernel(draw, span) = self;
        let source = Source::<V>::new(*draw);
        let n = span.out.len();
        source.runs(
            span.first * T::WORDS as u64,
            n * T::WORDS,
            #[inline(always)]
            |words, at| {
                let out = &mut span.out[at / T::WORDS..(at + words.len()) / T::WORDS];
                T::fill(out, words);
            },
        );
    }
}

/// Fills `out` with uniform [0, 1) values `0 .. out.len()` of `draw`, which
/// must have reserved `out.len() * T::WORDS` words.
pub fn fill_uniform<T: Uniform>(draw: Draw, out: &mut [T]) -> Result<()> {
    parallel::for_each_chunk(vec![Span { out, first: 0 }], |span| {
        dispatch(UniformKernel(&draw, span))
    })
}
