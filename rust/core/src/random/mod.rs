//! Counter-based random streams: Philox4x32-10, vectorized.
//!
//! A [`Stream`] is a 64-bit key and a 128-bit block counter. A call that
//! needs `n` random 32-bit words reserves the next `ceil(n / 64) * 16` block
//! counters ([`Stream::reserve`], a [`Draw`]) and word `i` of the call is
//!
//! ```text
//! group g = i / 64, r = i % 64
//! word(i) = philox(key, start + 16 * g + r % 16)[r / 16]
//! ```
//!
//! that is, the 16 blocks of a group are laid out word-major: the first 16
//! words of a group are word 0 of its 16 blocks. Registers hold one word of
//! several blocks (8 for AVX-512, 4 for AVX2 and NEON, 1 for scalar), so
//! this order stores each register straight to consecutive elements, with
//! no transposition, and it does not depend on the register width. Every value is thus a pure function of
//! (key, start counter, element index): identical for any thread count,
//! chunking and SIMD level, and reproduced by the NumPy reference
//! (`lec7rs.reference.random`).
//!
//! Derived values: a Bernoulli draw with keep probability `q` is
//! `word(i) < round(q * 2^32)` ([`Keep`]); a float32 in [0, 1) is
//! `(word(i) >> 8) * 2^-24`; a float64 is
//! `((word(2i + 1) << 32 | word(2i)) >> 11) * 2^-53` ([`Uniform`]).

pub mod bernoulli;
#[cfg(target_arch = "aarch64")]
mod lanes_neon;
#[cfg(target_arch = "x86_64")]
mod lanes_x86;
pub mod philox;
pub mod source;
pub mod stream;
pub mod uniform;

pub use bernoulli::{fill_bernoulli, Keep};
pub use stream::{Draw, Stream, ALGORITHM, MAX_SPAWN};
pub use uniform::{fill_block_words, fill_uniform, fill_words, Uniform};

use crate::parallel::{split_mut, Split};

/// Words per group (see the module docs).
pub const GROUP_WORDS: usize = 64;
/// Philox blocks per group.
pub const GROUP_BLOCKS: usize = 16;

/// An output slice and the index of its first element in the call, for
/// fills that run in parallel over fixed chunks.
pub(crate) struct Span<'a, T> {
    pub out: &'a mut [T],
    pub first: u64,
}

impl<T: Send> Split for Span<'_, T> {
    fn len(&self) -> usize {
        self.out.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (head, tail) = split_mut(self.out, mid);
        (
            Span {
                out: head,
                first: self.first,
            },
            Span {
                out: tail,
                first: self.first + mid as u64,
            },
        )
    }
}
