//! The Philox4x32-10 block function (Salmon, Moraes, Dror and Shaw, "Parallel
//! random numbers: as easy as 1, 2, 3", SC 2011; the generator of Random123,
//! cuRAND and JAX-style keyed streams).
//!
//! A block maps a 128-bit counter (four 32-bit words, word 0 least
//! significant) and a 64-bit key (two words) to four random words through ten
//! rounds of
//!
//! ```text
//! (hi0, lo0) = M0 * c0          (32 x 32 -> 64-bit product)
//! (hi1, lo1) = M1 * c2
//! c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
//! k = (k0 + W0, k1 + W1)        (mod 2^32, between rounds)
//! ```
//!
//! [`block`] is the scalar definition. [`blocks`] computes the 16 blocks
//! of a group (or of several) with any lane type ([`Words`]): `u32` (one block per
//! register), the AVX2 / AVX-512 types of `lanes_x86` (4 and 8) and the NEON
//! type of `lanes_neon` (4). All of them are integer arithmetic, so every
//! level gives the same words.

/// Multipliers and Weyl key increments of Philox4x32 (Random123's
/// `PHILOX_M4x32_0/1`, `PHILOX_W32_0/1`).
pub const M0: u32 = 0xD251_1F53;
pub const M1: u32 = 0xCD9E_8D57;
pub const W0: u32 = 0x9E37_79B9;
pub const W1: u32 = 0xBB67_AE85;

/// Rounds of Philox4x32-10.
pub const ROUNDS: usize = 10;

/// One Philox4x32-10 block: the four random words of counter `ctr` under
/// `key`.
#[inline]
pub fn block(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = ctr;
    let [mut k0, mut k1] = key;
    for round in 0..ROUNDS {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        (c0, c1, c2, c3) = (
            (p1 >> 32) as u32 ^ c1 ^ k0,
            p1 as u32,
            (p0 >> 32) as u32 ^ c3 ^ k1,
            p0 as u32,
        );
    }
    [c0, c1, c2, c3]
}

/// The counter words of a 128-bit counter value.
#[inline]
pub fn counter_words(c: u128) -> [u32; 4] {
    [
        c as u32,
        (c >> 32) as u32,
        (c >> 64) as u32,
        (c >> 96) as u32,
    ]
}

/// A register of [`Words::N`] 32-bit words, one per Philox block being
/// computed, and the memory operations of its instruction set that the
/// kernels around Philox use (streaming stores, prefetch). Values only come
/// from `splat` and `iota`, which are `unsafe` because they require the
/// instruction set; operations on an existing value are then safe.
pub trait Words: Copy {
    const N: usize;
    /// How many registers [`blocks`] takes through the ten rounds
    /// together (a power of two that divides `16 / N` or is a multiple of
    /// it): enough independent multiply chains to hide their latency, few
    /// enough that the four words of each, the two multipliers and the
    /// products (mostly) stay in the level's register file.
    const PASS: usize;
    /// Groups of 16 blocks computed together: as many as one pass of
    /// [`Words::PASS`] registers covers (kernels take the words of a draw
    /// this many groups at a time, [`blocks`]).
    const GROUPS: usize = (Self::PASS * Self::N).div_ceil(16);

    /// # Safety
    /// The CPU supports this type's instruction set.
    unsafe fn splat(x: u32) -> Self;
    /// Lane `j` holds `base + j` (mod 2^32).
    ///
    /// # Safety
    /// As `splat`.
    unsafe fn iota(base: u32) -> Self;
    /// Writes the `N` words to `ptr .. ptr + N`.
    ///
    /// # Safety
    /// As `splat`, and `ptr .. ptr + N` is writable.
    unsafe fn store(self, ptr: *mut u32);
    /// Writes the `N` words of `self`, then those of `next`, to
    /// `ptr .. ptr + 2 N` (one full-width store where the lanes allow it,
    /// so that a wide load of the words right after is forwarded).
    ///
    /// # Safety
    /// As `store`, for `2 N` words.
    #[inline(always)]
    unsafe fn store2(self, next: Self, ptr: *mut u32) {
        self.store(ptr);
        next.store(ptr.add(Self::N));
    }
    /// `self ^ a ^ b`.
    fn xor3(self, a: Self, b: Self) -> Self;
    /// The high and low words of the 64-bit products `self * m`, lane-wise.
    fn mulhilo(self, m: Self) -> (Self, Self);

    /// Stores the 64 bytes at `src` to the 64-byte aligned `dst` with a
    /// streaming (non-temporal) store where the level has one: the line is
    /// written whole without being read first, and not kept in cache. Call
    /// [`Words::stream_fence`] before the data is handed to another thread.
    ///
    /// # Safety
    /// As `splat`; `dst` is 64-byte aligned, both ranges are valid and do
    /// not overlap.
    #[inline(always)]
    unsafe fn stream_line(dst: *mut u8, src: *const u8) {
        std::ptr::copy_nonoverlapping(src, dst, 64);
    }
    /// Orders the streaming stores before every later store.
    ///
    /// # Safety
    /// As `splat`.
    #[inline(always)]
    unsafe fn stream_fence() {}
    /// Asks for the cache line at `ptr` to be loaded into L1 (any address:
    /// a prefetch never faults).
    #[inline(always)]
    fn prefetch(ptr: *const u8) {
        let _ = ptr;
    }
}

impl Words for u32 {
    const N: usize = 1;
    const PASS: usize = 2;

    #[inline(always)]
    unsafe fn splat(x: u32) -> Self {
        x
    }
    #[inline(always)]
    unsafe fn iota(base: u32) -> Self {
        base
    }
    #[inline(always)]
    unsafe fn store(self, ptr: *mut u32) {
        *ptr = self
    }
    #[inline(always)]
    fn xor3(self, a: Self, b: Self) -> Self {
        self ^ a ^ b
    }
    #[inline(always)]
    fn mulhilo(self, m: Self) -> (Self, Self) {
        let p = u64::from(self) * u64::from(m);
        ((p >> 32) as u32, p as u32)
    }
}

/// The most groups any lane type computes together ([`Words::GROUPS`]).
pub const MAX_GROUPS: usize = 2;

/// The key of every round and the multipliers, splatted once per call.
#[derive(Clone, Copy)]
pub struct RoundKeys<V> {
    k0: [V; ROUNDS],
    k1: [V; ROUNDS],
    m0: V,
    m1: V,
}

impl<V: Words> RoundKeys<V> {
    /// # Safety
    /// The CPU supports `V`'s instruction set.
    #[inline(always)]
    pub unsafe fn new(key: [u32; 2]) -> Self {
        let mut k0 = [V::splat(0); ROUNDS];
        let mut k1 = [V::splat(0); ROUNDS];
        for r in 0..ROUNDS {
            k0[r] = V::splat(key[0].wrapping_add(W0.wrapping_mul(r as u32)));
            k1[r] = V::splat(key[1].wrapping_add(W1.wrapping_mul(r as u32)));
        }
        RoundKeys {
            k0,
            k1,
            m0: V::splat(M0),
            m1: V::splat(M1),
        }
    }
}

/// Round `r` of Philox on every register of `set`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn round<V: Words>(set: &mut [[V; 4]], keys: &RoundKeys<V>, r: usize) {
    for i in 0..set.len() {
        let [c0, c1, c2, c3] = set[i];
        let (hi0, lo0) = c0.mulhilo(keys.m0);
        let (hi1, lo1) = c2.mulhilo(keys.m1);
        set[i] = [hi1.xor3(c1, keys.k0[r]), lo1, hi0.xor3(c3, keys.k1[r]), lo0];
    }
}

/// [`block`] of the `16 * out.len()` counters `first ..`, whose low words
/// must not wrap, word-major per group of 16: `out[q][16 * w + j]` is word
/// `w` of block `16 * q + j`. `out` holds one group or [`Words::GROUPS`].
///
/// The `16 * out.len() / V::N` registers go through the rounds
/// [`Words::PASS`] at a time: one block's rounds are a chain of dependent
/// multiplies, and interleaving independent chains keeps the multiplier
/// busy, but more chains than the registers hold spill to the stack. The
/// out-of-order core overlaps consecutive passes. (Index loops: iterator
/// adapters are not always inlined into the dispatching
/// `#[target_feature]` function in builds without LTO.)
///
/// # Safety
/// The CPU supports `V`'s instruction set;
/// `first as u32 <= u32::MAX - (16 * out.len() - 1)`.
#[inline(always)]
pub unsafe fn blocks<V: Words>(first: u128, keys: &RoundKeys<V>, out: &mut [[u32; 64]]) {
    // Constant group counts, so that the loops below unroll.
    if out.len() == V::GROUPS {
        blocks_n(first, keys, out, V::GROUPS);
    } else {
        debug_assert_eq!(out.len(), 1);
        blocks_n(first, keys, &mut out[..1], 1);
    }
}

/// [`blocks`] of `groups == out.len()` groups.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
unsafe fn blocks_n<V: Words>(
    first: u128,
    keys: &RoundKeys<V>,
    out: &mut [[u32; 64]],
    groups: usize,
) {
    const { assert!(V::GROUPS * 16 / V::N <= 16 && V::GROUPS >= 1 && V::GROUPS <= MAX_GROUPS) };
    let regs = 16 * groups / V::N;
    let lo = first as u32;
    let (c1, c2, c3) = (
        V::splat((first >> 32) as u32),
        V::splat((first >> 64) as u32),
        V::splat((first >> 96) as u32),
    );
    let mut x: [[V; 4]; 16] = [[c1; 4]; 16];
    for r in 0..regs {
        x[r] = [V::iota(lo + (r * V::N) as u32), c1, c2, c3];
    }
    let pass = V::PASS.min(regs);
    for first in (0..regs).step_by(pass) {
        let set = &mut x[first..first + pass];
        // Spelled out: LLVM does not unroll the rounds of a wide lane type
        // by itself, and the loop then reloads what it cannot keep.
        const { assert!(ROUNDS == 10) };
        round(set, keys, 0);
        round(set, keys, 1);
        round(set, keys, 2);
        round(set, keys, 3);
        round(set, keys, 4);
        round(set, keys, 5);
        round(set, keys, 6);
        round(set, keys, 7);
        round(set, keys, 8);
        round(set, keys, 9);
    }
    if regs == 1 {
        let out = out[0].as_mut_ptr();
        for w in 0..4 {
            x[0][w].store(out.add(16 * w));
        }
        return;
    }
    for r in (0..regs).step_by(2) {
        // Registers `r` and `r + 1` hold blocks `j .. j + 2 N` of group `q`.
        let (q, j) = (r * V::N / 16, r * V::N % 16);
        let out = out[q].as_mut_ptr();
        for w in 0..4 {
            // `16 * w + j + 2 N <= 64`.
            x[r][w].store2(x[r + 1][w], out.add(16 * w + j));
        }
    }
}

/// [`blocks`] of one group of 16 counters.
///
/// # Safety
/// As [`blocks`], for 16 counters.
#[inline(always)]
pub unsafe fn blocks16<V: Words>(first: u128, keys: &RoundKeys<V>, out: &mut [u32; 64]) {
    blocks(first, keys, std::slice::from_mut(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's `examples/kat_vectors` for philox4x32 with 10 rounds:
    /// counter (4 words), key (2 words), expected output (4 words).
    const KAT: [([u32; 4], [u32; 2], [u32; 4]); 6] = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [0xffffffff; 4],
            [0xffffffff; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
        // From Random123's generated known-answer tests (gentests.py).
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [1, 0],
            [0x38527b8f, 0xfad9a48c, 0x20e675c0, 0xf2fea26a],
        ),
        (
            [0, 0, 0, 0x80000000],
            [0, 0x80000000],
            [0xf7a0b371, 0xe51dc93d, 0x56ce135d, 0x1d4b5580],
        ),
        (
            [0x452821e6, 0x38d01377, 0xbe5466cf, 0x34e90c6c],
            [0, 0xffffffff],
            [0x72ce44b3, 0xb44f9b78, 0x49af0267, 0x726813ac],
        ),
    ];

    #[test]
    fn known_answers() {
        for (ctr, key, want) in KAT {
            assert_eq!(block(ctr, key), want, "ctr {ctr:08x?} key {key:08x?}");
        }
    }

    #[test]
    fn sixteen_one_lane_blocks_are_block() {
        for (first, key) in [(0u128, [0, 0]), (u128::MAX - 40, [7, 9]), (1 << 70, [1, 2])] {
            let mut out = [0u32; 64];
            // SAFETY: `u32` lanes need no instruction set.
            unsafe { blocks16::<u32>(first, &RoundKeys::new(key), &mut out) };
            for j in 0..16 {
                let want = block(counter_words(first + j as u128), key);
                for (w, &word) in want.iter().enumerate() {
                    assert_eq!(out[16 * w + j], word, "first {first} block {j}");
                }
            }
        }
    }

    #[test]
    fn counter_words_are_little_endian() {
        let c = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10u128;
        assert_eq!(
            counter_words(c),
            [0x0d0e_0f10, 0x090a_0b0c, 0x0506_0708, 0x0102_0304]
        );
    }
}
