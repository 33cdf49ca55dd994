//! Computing the words of a draw on the current SIMD level.
//!
//! A kernel that consumes random words implements [`WordKernel`]: its body
//! is written once, generic over the Philox lane type, and [`dispatch`] runs
//! it inside a `#[target_feature]` function of the current [`simd::level`]
//! (the pattern of [`simd::dispatch`]), so that the Philox lanes and the
//! plain loops around them (comparisons, conversions, multiplies, which LLVM
//! vectorizes) are compiled for that instruction set.

use super::philox::{block, counter_words, RoundKeys, Words, MAX_GROUPS};
use super::stream::Draw;
use super::{GROUP_BLOCKS, GROUP_WORDS};
use crate::simd::{self, Level};

/// A kernel body generic over the Philox lane type.
pub trait WordKernel {
    type Output;

    /// # Safety
    /// The CPU supports `V`'s instruction set. Implementations are
    /// `#[inline(always)]` so that they compile inside the dispatching
    /// `#[target_feature]` function.
    unsafe fn run<V: Words>(self) -> Self::Output;
}

/// Runs `kernel` with the Philox lanes of the current SIMD level.
#[inline]
pub fn dispatch<K: WordKernel>(kernel: K) -> K::Output {
    // SAFETY: `level()` only returns levels the CPU supports.
    unsafe {
        match simd::level() {
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => run_avx512(kernel),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => run_avx2(kernel),
            #[cfg(target_arch = "aarch64")]
            Level::Neon => run_neon(kernel),
            _ => kernel.run::<u32>(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<K: WordKernel>(kernel: K) -> K::Output {
    kernel.run::<super::lanes_x86::Avx512Words>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: WordKernel>(kernel: K) -> K::Output {
    kernel.run::<super::lanes_x86::Avx2Words>()
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn run_neon<K: WordKernel>(kernel: K) -> K::Output {
    kernel.run::<super::lanes_neon::NeonWords>()
}

/// The words of one draw, computed with lanes `V`.
pub struct Source<V> {
    draw: Draw,
    keys: RoundKeys<V>,
}

impl<V: Words> Source<V> {
    /// # Safety
    /// The CPU supports `V`'s instruction set.
    #[inline(always)]
    pub unsafe fn new(draw: Draw) -> Self {
        Source {
            draw,
            keys: RoundKeys::new(draw.key),
        }
    }

    /// Writes the 64 words of group `g` in the order of the draw: word
    /// `16 * w + j` of the group is word `w` of its block `j`.
    #[inline(always)]
    pub fn group(&self, g: u64, buf: &mut [u32; GROUP_WORDS]) {
        self.groups(g, std::slice::from_mut(buf));
    }

    /// Writes the words of groups `g .. g + buf.len()` (one group or
    /// [`Words::GROUPS`], computed together) to `buf`, as [`Source::group`].
    #[inline(always)]
    pub fn groups(&self, g: u64, buf: &mut [[u32; GROUP_WORDS]]) {
        let first = self
            .draw
            .start
            .wrapping_add(u128::from(g) * GROUP_BLOCKS as u128);
        let blocks = GROUP_BLOCKS * buf.len();
        if first as u32 <= u32::MAX - (blocks as u32 - 1) {
            // SAFETY: a `Source<V>` exists only where `V` is supported, and
            // the low counter word does not wrap.
            unsafe { super::philox::blocks(first, &self.keys, buf) };
        } else {
            // The low counter word wraps inside these groups (once every
            // 2^32 blocks): count block by block, carrying into the next
            // word.
            for b in 0..blocks {
                let out = block(counter_words(first.wrapping_add(b as u128)), self.draw.key);
                let (q, j) = (b / GROUP_BLOCKS, b % GROUP_BLOCKS);
                for (w, word) in out.into_iter().enumerate() {
                    buf[q][GROUP_BLOCKS * w + j] = word;
                }
            }
        }
    }

    /// Calls `f(words, at)` for consecutive runs covering words
    /// `first .. first + n` of the draw, in order: `words` are the draw's
    /// words `first + at ..`. Runs end at group boundaries (64 words), so
    /// that consuming a group's words (loads and stores of the data) is
    /// interleaved with computing the next ones. Mark `f` `#[inline(always)]`:
    /// a closure that is not inlined is compiled without the instruction set
    /// of the dispatching function (builds without LTO do not always inline
    /// it otherwise).
    #[inline(always)]
    pub fn runs(&self, first: u64, n: usize, mut f: impl FnMut(&[u32], usize)) {
        walk_groups::<V>(
            first,
            n,
            #[inline(always)]
            |g, buf| self.groups(g, buf),
            #[inline(always)]
            |words, skip, take, at| f(&words[skip..skip + take], at),
        );
    }
}

/// The walk of [`Source::runs`] over the groups that hold words
/// `first .. first + n`, with the groups' words computed by `compute(g,
/// buf)`: it fills groups `g .. g + buf.len()`, [`Words::GROUPS`] of them
/// where the run reaches past group `g`, else one. Then `f(words, skip,
/// take, at)` gets each group's words and the part of it in the run:
/// `words[skip .. skip + take]` are the words `first + at ..`. Mark both
/// closures `#[inline(always)]` (see [`Source::runs`]).
#[inline(always)]
pub(crate) fn walk_groups<V: Words>(
    first: u64,
    n: usize,
    mut compute: impl FnMut(u64, &mut [[u32; GROUP_WORDS]]),
    mut f: impl FnMut(&[u32; GROUP_WORDS], usize, usize, usize),
) {
    let mut buf = [[0u32; GROUP_WORDS]; MAX_GROUPS];
    let mut at = 0;
    while at < n {
        let word = first + at as u64;
        let g = word / GROUP_WORDS as u64;
        let mut skip = (word % GROUP_WORDS as u64) as usize;
        let count = if skip + (n - at) > GROUP_WORDS {
            V::GROUPS
        } else {
            1
        };
        let buf = &mut buf[..count];
        compute(g, buf);
        for words in buf.iter() {
            let take = (GROUP_WORDS - skip).min(n - at);
            if take == 0 {
                break;
            }
            f(words, skip, take, at);
            at += take;
            skip = 0;
        }
    }
}
