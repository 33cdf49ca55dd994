//! Fused passes over vectors with deterministic reductions.
//!
//! A pass runs an element-wise body (which may write) and accumulates up to
//! `S` sums and one maximum of per-element terms. The vector is cut into the
//! fixed chunks of [`parallel::map_chunks`]; inside a chunk, element `j`
//! (counted from the chunk's start) is added to accumulator slot
//! `j % BLOCK`, in order of `j`. Every SIMD level keeps those `BLOCK` slots
//! (`BLOCK / lanes` registers, lane `l` of register `r` being slot
//! `r * lanes + l`), and the scalar tail adds to the same slots, so each slot
//! sees the same additions in the same order at every level. The slots are
//! then summed in f64 in a fixed pairwise tree, and the chunks' sums are
//! added in chunk order. A sum is therefore bit-identical for any thread
//! count and any SIMD level.
//!
//! For `f32` the slots accumulate in `f32` (at most `CHUNK / BLOCK` = 512
//! terms each) and everything above them in f64.
//!
//! `pass` takes `S` sums fixed at compile time, in registers. `pass_n`
//! takes a number known at run time (the L-BFGS direction has four per
//! pair): its body adds its own terms a few blocks at a time, a few sums at
//! a time in registers (`accumulate`), into the same slots in the same
//! order, so its sums have the bits `pass` would give them.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use crate::error::Result;
use crate::parallel::{self, Split};
use crate::simd::{self, Kernel, Lanes, Real};

/// Accumulator slots per chunk: a multiple of every lane count (1 to 16).
pub const BLOCK: usize = 32;

/// The element-wise body of a pass: processes elements `i .. i + L::N`
/// (reading and writing its streams) and returns the terms to add to each
/// of the `S` sums and the term to fold into the maximum.
pub(crate) trait Body<T: Real, const S: usize>: Sync {
    /// Whether [`Body::at`]'s maximum term is used (else it is ignored).
    const MAX: bool = false;

    /// # Safety
    /// The CPU supports `L`, and `i .. i + L::N` is within every stream.
    /// Concurrent calls touch disjoint index ranges.
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; S], L);
}

/// A range of a pass: the unit that [`parallel::map_chunks`] cuts.
struct Span<'a, B, const S: usize> {
    body: &'a B,
    start: usize,
    end: usize,
}

impl<B: Sync, const S: usize> Split for Span<'_, B, S> {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let cut = self.start + mid;
        (
            Span {
                body: self.body,
                start: self.start,
                end: cut,
            },
            Span {
                body: self.body,
                start: cut,
                end: self.end,
            },
        )
    }
}

/// The sums and the maximum of one range (or of a whole pass).
#[derive(Clone, Copy, Debug)]
pub struct Sums<const S: usize> {
    pub sum: [f64; S],
    /// The maximum term, NaN if any term was NaN; `-inf` for an empty pass.
    pub max: f64,
}

impl<T: Real, const S: usize, B: Body<T, S>> Kernel<T> for Span<'_, B, S> {
    type Output = Sums<S>;

    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // `regs` registers of `BLOCK`, by index
    unsafe fn run<V: Lanes<T>>(self) -> Sums<S> {
        let len = self.end - self.start;
        let body_len = len - len % BLOCK;
        // The tail's whole vectors go to the registers of the same slots
        // (a part of one more block), its last `< V::N` elements one by one.
        let vec_len = len - len % V::N;
        let mut slots = [[T::ZERO; BLOCK]; S];
        let mut max = f64::NEG_INFINITY;
        if vec_len > 0 {
            let regs = BLOCK / V::N;
            let zero = V::splat(T::ZERO);
            let mut acc = [[zero; BLOCK]; S];
            let mut mx = V::splat(T::from_f64(f64::NEG_INFINITY));
            let mut i = self.start;
            // (A macro, not a closure: a closure may be compiled out of
            // line, without the instruction set.)
            macro_rules! add {
                ($i:expr, $r:expr) => {{
                    let (terms, m) = self.body.at::<V>($i + $r * V::N);
                    for k in 0..S {
                        acc[k][$r] = acc[k][$r].add(terms[k]);
                    }
                    if B::MAX {
                        mx = mx.maximum(m);
                    }
                }};
            }
            while i < self.start + body_len {
                for r in 0..regs {
                    add!(i, r);
                }
                i += BLOCK;
            }
            // (A constant loop with a test, not a loop to `tail`, so that
            // the registers keep constant indices.)
            let tail = (vec_len - body_len) / V::N;
            for r in 0..regs {
                if r < tail {
                    add!(i, r);
                }
            }
            let mut lanes = [T::ZERO; 16];
            mx.store(lanes.as_mut_ptr());
            if B::MAX {
                for &l in &lanes[..V::N] {
                    max = nan_max(max, l.to_f64());
                }
            }
            if slots_are_f64::<T>() && vec_len == len {
                let mut sum = [0.0; S];
                for k in 0..S {
                    sum[k] = tree_regs::<T, V>(&mut acc[k][..regs]);
                }
                return Sums { sum, max };
            }
            for k in 0..S {
                for r in 0..regs {
                    acc[k][r].store(slots[k].as_mut_ptr().add(r * V::N));
                }
            }
        }
        for j in vec_len..len {
            let (terms, m) = self.body.at::<T>(self.start + j);
            for k in 0..S {
                slots[k][j - body_len] = slots[k][j - body_len].add(terms[k]);
            }
            if B::MAX {
                max = nan_max(max, m.to_f64());
            }
        }
        let mut sum = [0.0; S];
        for k in 0..S {
            sum[k] = tree(&slots[k]);
        }
        Sums { sum, max }
    }
}

/// The maximum of two values, NaN if either is NaN.
#[inline]
pub fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The sum of the `BLOCK` slots in f64, in a fixed pairwise tree.
#[inline(always)]
fn tree<T: Real>(slots: &[T]) -> f64 {
    debug_assert_eq!(slots.len(), BLOCK);
    let mut s = [0.0f64; BLOCK];
    for (d, v) in s.iter_mut().zip(slots) {
        *d = v.to_f64();
    }
    let mut w = BLOCK / 2;
    while w > 0 {
        for j in 0..w {
            s[j] += s[j + w];
        }
        w /= 2;
    }
    s[0]
}

/// [`tree`] of the slots of one sum still in its `BLOCK / V::N` registers
/// (slot `r * V::N + l` in lane `l` of register `r`), for `f64` slots: the
/// tree's levels of whole registers are vector additions of the same pairs
/// in the same order, the last `log2(V::N)` levels are scalar, so the sum
/// has the bits of [`tree`] (of an `f32` slot, the tree adds in f64: that
/// goes through [`tree`]). Saves the store and reload of every slot.
#[inline(always)]
unsafe fn tree_regs<T: Real, V: Lanes<T>>(regs: &mut [V]) -> f64 {
    debug_assert!(std::mem::size_of::<T>() == 8 && regs.len() * V::N == BLOCK);
    let mut w = regs.len() / 2;
    while w > 0 {
        for r in 0..w {
            regs[r] = regs[r].add(regs[r + w]);
        }
        w /= 2;
    }
    let mut lanes = [T::ZERO; 16];
    regs[0].store(lanes.as_mut_ptr());
    let mut s = [0.0f64; 16];
    for (d, v) in s.iter_mut().zip(&lanes[..V::N]) {
        *d = v.to_f64();
    }
    let mut w = V::N / 2;
    while w > 0 {
        for j in 0..w {
            s[j] += s[j + w];
        }
        w /= 2;
    }
    s[0]
}

/// Whether the slots of `T` add in their own type (`f64`), so that
/// [`tree_regs`] applies.
const fn slots_are_f64<T>() -> bool {
    std::mem::size_of::<T>() == 8
}

/// Runs `body` over `0 .. n` as one parallel pass and returns its sums and
/// maximum, the same bits for any thread count and SIMD level.
pub(crate) fn pass<T: Real, const S: usize, B: Body<T, S>>(n: usize, body: &B) -> Result<Sums<S>> {
    let span = Span {
        body,
        start: 0,
        end: n,
    };
    let mut out = Sums {
        sum: [0.0; S],
        max: f64::NEG_INFINITY,
    };
    if n <= parallel::CHUNK {
        // One chunk, run inline by `map_chunks` anyway: the same bits
        // without its allocations (many small passes: `minimize_many`).
        let p = simd::dispatch::<T, Span<'_, B, S>>(span);
        for k in 0..S {
            out.sum[k] += p.sum[k];
        }
        out.max = nan_max(out.max, p.max);
        return Ok(out);
    }
    let parts = parallel::map_chunks(vec![span], simd::dispatch::<T, Span<'_, B, S>>)?;
    for p in parts {
        for k in 0..S {
            out.sum[k] += p.sum[k];
        }
        out.max = nan_max(out.max, p.max);
    }
    Ok(out)
}

/// [`pass`] over several vectors at once (one body and length each, the
/// per-tensor norms of an optimizer step): one parallel job over the fixed
/// chunks of all of them, and each vector's sums and maximum, with the bits
/// [`pass`] gives it alone.
pub(crate) fn pass_many<T: Real, const S: usize, B: Body<T, S>>(
    items: &[(usize, B)],
) -> Result<Vec<Sums<S>>> {
    let spans: Vec<Span<'_, B, S>> = items
        .iter()
        .map(|(n, body)| Span {
            body,
            start: 0,
            end: *n,
        })
        .collect();
    let parts = parallel::map_chunks(spans, simd::dispatch::<T, Span<'_, B, S>>)?;
    // `map_chunks` cuts each vector into ceil(n / CHUNK) chunks (one when
    // n <= CHUNK, empty included), in order.
    let mut parts = parts.into_iter();
    let mut out = Vec::with_capacity(items.len());
    for (n, _) in items {
        let chunks = n.div_ceil(parallel::CHUNK).max(1);
        let mut total = Sums {
            sum: [0.0; S],
            max: f64::NEG_INFINITY,
        };
        for p in parts.by_ref().take(chunks) {
            for k in 0..S {
                total.sum[k] += p.sum[k];
            }
            total.max = nan_max(total.max, p.max);
        }
        out.push(total);
    }
    Ok(out)
}

/// Runs `body` over `0 .. n` on the calling thread (one row of a matrix,
/// say), as one range: the same bits at every SIMD level.
pub(crate) fn pass_inline<T: Real, const S: usize, B: Body<T, S>>(n: usize, body: &B) -> Sums<S> {
    simd::dispatch::<T, Span<'_, B, S>>(Span {
        body,
        start: 0,
        end: n,
    })
}

/// The body of a pass with a number of sums known only at run time (say,
/// four per L-BFGS pair), which adds its terms to the accumulators itself,
/// a range of elements at a time, so that it can keep a few sums in
/// registers while it goes through the range (see [`accumulate`]).
pub(crate) trait BodyN<T: Real>: Sync {
    fn sums(&self) -> usize;

    /// Adds the terms of elements `start .. start + len`, in order: the term
    /// of element `i` for sum `k` goes to slot `i % BLOCK` of sum `k` (a
    /// range starts at a multiple of `BLOCK`), which is lane `j % L::N` of
    /// `acc[k * regs + j / L::N]`, `j = i % BLOCK`, `regs = BLOCK / L::N`.
    /// `len` is a multiple of `L::N`: whole blocks, then at the end of a
    /// range part of one (its whole vectors), and with `L = T` the last
    /// `< BLOCK` elements of a range (its tail), in slot memory.
    ///
    /// # Safety
    /// As [`Body::at`] for every element of the range;
    /// `acc.len() == self.sums() * regs`.
    unsafe fn add<L: Lanes<T>>(&self, start: usize, len: usize, acc: &mut [L]);
}

/// The `G` terms of element group `i` for [`accumulate`]: an
/// `#[inline(always)]` closure, or a struct whose `#[inline(always)]`
/// method keeps a large body inlined into the SIMD instantiation. Without
/// the attribute the compiler may put the body out of line (`accumulate`
/// calls it from two loops), without the instruction set, where it runs at
/// a fraction of the speed: the L-BFGS direction at n = 20 took 8 us
/// instead of 2.
pub(crate) trait Term<L, const G: usize> {
    /// # Safety
    /// As [`Body::at`].
    unsafe fn at(&self, i: usize) -> [L; G];
}

impl<L, const G: usize, F: Fn(usize) -> [L; G]> Term<L, G> for F {
    #[inline(always)]
    unsafe fn at(&self, i: usize) -> [L; G] {
        self(i)
    }
}

/// For [`BodyN::add`]: adds `G` sums of `term(i)` over elements
/// `start .. start + len` to `acc` (`G * regs` accumulators, laid out as in
/// [`BodyN::add`]), block after block, each slot adding its terms in order.
///
/// The accumulators are a local array, which LLVM keeps in registers as far
/// as they go and spills the rest to L1. Taking the registers of a block a
/// group at a time instead (a sweep through the range per group, so that
/// nothing spills) reads each stream with a stride, one line in every
/// `regs / group`, which costs more than the spills: with AVX2's 16 ymm
/// registers, four sums of f64 are four sweeps, and the compact L-BFGS
/// direction at n = 1e6, m = 10 took 27 ms instead of 15 on a Zen 3.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // registers by index, as in `Span::run`
pub(crate) unsafe fn accumulate<T: Real, L: Lanes<T>, const G: usize>(
    start: usize,
    len: usize,
    acc: &mut [L],
    term: impl Term<L, G>,
) {
    let regs = BLOCK / L::N;
    debug_assert!(len.is_multiple_of(L::N));
    if L::N == 1 && len < BLOCK {
        // Part of a block (a range's tail) in slot memory, from slot
        // `start % BLOCK` on.
        let first = start % BLOCK;
        debug_assert!(first + len <= BLOCK);
        for j in 0..len {
            let t = term.at(start + j);
            for k in 0..G {
                acc[k * regs + first + j] = acc[k * regs + first + j].add(t[k]);
            }
        }
        return;
    }
    // `regs <= BLOCK` (one lane per register at least); only the first
    // `regs` of each sum are used, so the rest stays uninitialized (zeroing
    // all `BLOCK` cost a 4 KB memset per call at AVX2: most of a small
    // problem's pass).
    let mut a = [[MaybeUninit::<L>::uninit(); BLOCK]; G];
    for k in 0..G {
        for r in 0..regs {
            a[k][r] = MaybeUninit::new(acc[k * regs + r]);
        }
    }
    // (A macro, not a closure, as in `Span::run`.)
    macro_rules! add {
        ($i:expr, $r:expr) => {{
            let t = term.at($i + $r * L::N);
            for k in 0..G {
                // SAFETY: registers below `regs` were initialized above.
                a[k][$r] = MaybeUninit::new(a[k][$r].assume_init().add(t[k]));
            }
        }};
    }
    let end = start + len;
    let mut i = start;
    while i + BLOCK <= end {
        for r in 0..regs {
            add!(i, r);
        }
        i += BLOCK;
    }
    // Part of a block at the end of a range (as in `Span::run`).
    let tail = (end - i) / L::N;
    for r in 0..regs {
        if r < tail {
            add!(i, r);
        }
    }
    for k in 0..G {
        for r in 0..regs {
            acc[k * regs + r] = a[k][r].assume_init();
        }
    }
}

/// Elements per [`BodyN::add`] call: a few blocks, so that a body that
/// goes through its streams one after the other within the range finds
/// the ones it rereads (say `g` for every pair) in L1.
const TILE: usize = 8 * BLOCK;

/// A range of a [`pass_n`].
struct SpanN<'a, B> {
    body: &'a B,
    start: usize,
    end: usize,
}

impl<B: Sync> Split for SpanN<'_, B> {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let cut = self.start + mid;
        (
            SpanN {
                body: self.body,
                start: self.start,
                end: cut,
            },
            SpanN {
                body: self.body,
                start: cut,
                end: self.end,
            },
        )
    }
}

thread_local! {
    /// The accumulators of this thread's [`SpanN`] passes, kept so that
    /// many small passes (the L-BFGS directions of `minimize_many`'s rows)
    /// allocate nothing: a buffer of 8-byte words, of which an aligned part
    /// holds the registers.
    static ACC: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl<B> SpanN<'_, B> {
    /// The slots of [`Span::run`], sum by sum, in `buf`: register `r` of
    /// sum `k` is `acc[k * regs + r]`, so slot `j` of sum `k` is element
    /// `k * BLOCK + j` of the same memory seen as `T` (where the tail's
    /// last `< V::N` elements add, after the registers).
    #[inline(always)]
    unsafe fn sums_with<T: Real, V: Lanes<T>>(&self, buf: &mut Vec<u64>, out: &mut Vec<f64>)
    where
        B: BodyN<T>,
    {
        let s = self.body.sums();
        let len = self.end - self.start;
        let regs = BLOCK / V::N;
        // Room for `s * BLOCK` elements at a 64-byte boundary.
        let bytes = s * BLOCK * std::mem::size_of::<T>();
        let words = bytes.div_ceil(8) + 8;
        if buf.len() < words {
            buf.resize(words, 0);
        }
        let base = buf.as_mut_ptr() as *mut u8;
        let base = base.add(base.align_offset(64));
        std::ptr::write_bytes(base, 0, bytes);
        // As in `Span::run`: the tail's whole vectors in registers, then
        // its last `< V::N` elements in slot memory.
        let vec_len = len - len % V::N;
        if vec_len > 0 {
            // SAFETY: `regs * s` registers of zero bits (0.0) in the buffer,
            // at an alignment of at least a register's.
            let acc = std::slice::from_raw_parts_mut(base as *mut V, regs * s);
            let mut i = self.start;
            while i < self.start + vec_len {
                let step = TILE.min(self.start + vec_len - i);
                self.body.add::<V>(i, step, acc);
                i += step;
            }
            if slots_are_f64::<T>() && vec_len == len {
                for c in acc.chunks_exact_mut(regs) {
                    out.push(tree_regs::<T, V>(c));
                }
                return;
            }
        }
        let slots = std::slice::from_raw_parts_mut(base as *mut T, s * BLOCK);
        if vec_len < len {
            self.body
                .add::<T>(self.start + vec_len, len - vec_len, slots);
        }
        for c in slots.chunks_exact(BLOCK) {
            out.push(tree(c));
        }
    }
}

impl<T: Real, B: BodyN<T>> Kernel<T> for SpanN<'_, B> {
    type Output = Vec<f64>;

    #[inline(always)]
    unsafe fn run<V: Lanes<T>>(self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.body.sums());
        self.sums_with::<T, V>(&mut Vec::new(), &mut out);
        out
    }
}

/// A one-chunk [`SpanN`] that appends to the caller's sums, with the
/// caller's accumulators.
struct SpanNInto<'a, 'b, B> {
    span: SpanN<'a, B>,
    buf: &'b mut Vec<u64>,
    out: &'b mut Vec<f64>,
}

impl<T: Real, B: BodyN<T>> Kernel<T> for SpanNInto<'_, '_, B> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Lanes<T>>(self) {
        self.span.sums_with::<T, V>(self.buf, self.out);
    }
}

/// Runs `body` over `0 .. n` as one parallel pass and returns its
/// `body.sums()` sums, the same bits for any thread count and SIMD level,
/// and the same bits as [`pass`] for the same terms.
pub(crate) fn pass_n<T: Real, B: BodyN<T>>(n: usize, body: &B) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    pass_n_into(n, body, &mut out)?;
    Ok(out)
}

/// [`pass_n`], appending the sums to `out` (a caller of many small passes,
/// the L-BFGS direction of a small problem, keeps it and allocates
/// nothing).
pub(crate) fn pass_n_into<T: Real, B: BodyN<T>>(
    n: usize,
    body: &B,
    out: &mut Vec<f64>,
) -> Result<()> {
    let span = SpanN {
        body,
        start: 0,
        end: n,
    };
    if n <= parallel::CHUNK {
        // As in `pass`: one chunk, without `map_chunks`'s allocations;
        // `+= 0.0` is the fold below (it turns -0.0 into 0.0).
        // (This thread's accumulators, taken here: the thread-local access
        // is not inlined into the SIMD function, so it must stay outside.)
        let from = out.len();
        let run = |buf: &mut Vec<u64>| {
            simd::dispatch::<T, SpanNInto<'_, '_, B>>(SpanNInto {
                span,
                buf,
                out: &mut *out,
            })
        };
        ACC.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => run(&mut buf),
            Err(_) => run(&mut Vec::new()),
        });
        for v in &mut out[from..] {
            *v += 0.0;
        }
        return Ok(());
    }
    let parts = parallel::map_chunks(vec![span], simd::dispatch::<T, SpanN<'_, B>>)?;
    let from = out.len();
    out.resize(from + body.sums(), 0.0);
    for p in parts {
        for (o, v) in out[from..].iter_mut().zip(p) {
            *o += v;
        }
    }
    Ok(())
}

/// A raw read pointer that may cross threads: passes only read through it.
#[derive(Clone, Copy)]
pub(crate) struct In<T>(pub *const T);
// SAFETY: only read, by passes whose callers keep the slice alive and unwritten.
unsafe impl<T> Send for In<T> {}
unsafe impl<T> Sync for In<T> {}

/// A raw write pointer that may cross threads: each chunk of a pass writes
/// only its own index range.
#[derive(Clone, Copy)]
pub(crate) struct Out<T>(pub *mut T);
// SAFETY: concurrent chunks write disjoint ranges (see `Body::at`).
unsafe impl<T> Send for Out<T> {}
unsafe impl<T> Sync for Out<T> {}

impl<T> In<T> {
    #[inline(always)]
    pub unsafe fn get<L: Lanes<T>>(self, i: usize) -> L {
        L::load(self.0.add(i))
    }
}

impl<T> In<T> {
    /// Hints the cache line `i` elements ahead into L1 (no effect on
    /// results; no fault past the end).
    #[inline(always)]
    pub fn prefetch(self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(self.0.wrapping_add(i) as *const i8);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

/// How far ahead a pass with few streams prefetches: a read-only stream
/// gets about half the bandwidth of a read-write mix from the hardware
/// prefetchers alone (the norm pass of a 50M float32 vector: 15.7 GB/s
/// without, 20 GB/s with, 25.7 GB/s for gcc's OpenMP sum, 2 threads).
pub(crate) const AHEAD_BYTES: usize = 4096;

/// Prefetches element `i + bytes / size_of::<T>()` of the stream at `ptr`
/// from a vector body; the scalar level and tails skip it.
#[inline(always)]
pub(crate) fn prefetch<T: Real, L: Lanes<T>>(ptr: *const T, i: usize, bytes: usize) {
    if L::N > 1 {
        In(ptr).prefetch(i + bytes / std::mem::size_of::<T>());
    }
}

impl<T> Out<T> {
    #[inline(always)]
    pub unsafe fn get<L: Lanes<T>>(self, i: usize) -> L {
        L::load(self.0.add(i))
    }
    #[inline(always)]
    pub unsafe fn set<L: Lanes<T>>(self, i: usize, v: L) {
        v.store(self.0.add(i))
    }
}

/// `|x|` for any lane type (NaN stays NaN).
#[inline(always)]
pub(crate) fn abs<T: Real, L: Lanes<T>>(x: L) -> L {
    x.maximum(x.neg())
}

struct Dot<T> {
    a: In<T>,
    b: In<T>,
}

impl<T: Real> Body<T, 1> for Dot<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let a = self.a.get::<L>(i);
        ([a.mul(self.b.get::<L>(i))], a)
    }
}

/// `a . b`, deterministic (see the module docs). Lengths must match.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> Result<f64> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let body = Dot {
        a: In(a.as_ptr()),
        b: In(b.as_ptr()),
    };
    Ok(pass(n, &body)?.sum[0])
}

struct AbsMax<T> {
    a: In<T>,
}

impl<T: Real> Body<T, 0> for AbsMax<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        ([], abs::<T, L>(self.a.get::<L>(i)))
    }
}

/// `max |a_i|` (NaN if any element is NaN, `-inf` for an empty slice).
pub fn abs_max<T: Real>(a: &[T]) -> Result<f64> {
    let body = AbsMax { a: In(a.as_ptr()) };
    Ok(pass(a.len(), &body)?.max)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::simd::{set_level, supported_levels};

    /// `n` numbers uniform in [-1, 1), from `seed`.
    pub(crate) fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn dot_is_the_same_at_every_level_and_thread_count() {
        for n in [
            0,
            1,
            7,
            31,
            32,
            33,
            1000,
            parallel::CHUNK + 3,
            5 * parallel::CHUNK + 77,
        ] {
            let a = data(n, 1);
            let b = data(n, 2);
            let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let mut want = None;
            for level in supported_levels() {
                set_level(level).unwrap();
                for threads in [1, 2, 3] {
                    parallel::set_num_threads(threads).unwrap();
                    let got = (dot(&a, &b).unwrap(), dot(&af, &bf).unwrap());
                    assert!((got.0 - exact).abs() <= 1e-12 * (1.0 + n as f64));
                    match want {
                        None => want = Some(got),
                        Some(w) => {
                            assert_eq!(w.0.to_bits(), got.0.to_bits(), "n={n} {level}");
                            assert_eq!(w.1.to_bits(), got.1.to_bits(), "n={n} {level}");
                        }
                    }
                }
            }
            set_level(crate::simd::best_level()).unwrap();
        }
    }

    /// The documented order of a pass, written out: element `j` adds to
    /// slot `j % BLOCK` (in the element type, from +0.0), the slots add in
    /// f64 in the pairwise tree. `dot` and `pass_n` must give its bits at
    /// every level for lengths around the vector and block sizes (the
    /// tails' whole vectors go through registers, the rest one by one).
    fn model<T: Real>(a: &[T], b: &[T]) -> f64 {
        let mut slots = [T::ZERO; BLOCK];
        for (j, (&x, &y)) in a.iter().zip(b).enumerate() {
            slots[j % BLOCK] = slots[j % BLOCK].add(x.mul(y));
        }
        let mut s = slots.map(|v| v.to_f64());
        let mut w = BLOCK / 2;
        while w > 0 {
            for j in 0..w {
                s[j] += s[j + w];
            }
            w /= 2;
        }
        0.0 + s[0]
    }

    #[test]
    fn short_passes_add_in_the_documented_order() {
        let lens = [
            1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 20, 21, 24, 31, 32, 33, 36, 37, 44, 48, 63, 64, 65,
            100, 257, 1000,
        ];
        for n in lens {
            let a = data(n, 7);
            let b = data(n, 8);
            let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let (want, want32) = (model(&a, &b), model(&af, &bf));
            for level in supported_levels() {
                set_level(level).unwrap();
                assert_eq!(
                    dot(&a, &b).unwrap().to_bits(),
                    want.to_bits(),
                    "n={n} {level}"
                );
                assert_eq!(
                    dot(&af, &bf).unwrap().to_bits(),
                    want32.to_bits(),
                    "n={n} {level}"
                );
                let two = |a: &[f64], b: &[f64]| {
                    pass_n(
                        n,
                        &TwoDots {
                            a: In(a.as_ptr()),
                            b: In(b.as_ptr()),
                        },
                    )
                    .unwrap()
                };
                let got = two(&a, &b);
                assert_eq!(got[0].to_bits(), want.to_bits(), "pass_n n={n} {level}");
                assert_eq!(
                    got[1].to_bits(),
                    model(&b, &b).to_bits(),
                    "pass_n n={n} {level}"
                );
            }
            set_level(crate::simd::best_level()).unwrap();
        }
    }

    /// `[a b, b b]`, as a pass with a run-time number of sums.
    struct TwoDots<T> {
        a: In<T>,
        b: In<T>,
    }

    impl<T: Real> BodyN<T> for TwoDots<T> {
        fn sums(&self) -> usize {
            2
        }

        unsafe fn add<L: Lanes<T>>(&self, start: usize, len: usize, acc: &mut [L]) {
            accumulate::<T, L, 2>(
                start,
                len,
                acc,
                #[inline(always)]
                |i| {
                    let b = self.b.get::<L>(i);
                    [self.a.get::<L>(i).mul(b), b.mul(b)]
                },
            );
        }
    }

    #[test]
    fn pass_n_sums_as_pass_does() {
        for n in [0, 1, 31, 33, 1000, 5 * parallel::CHUNK + 77] {
            let a = data(n, 4);
            let b = data(n, 5);
            let af: Vec<f32> = a.iter().map(|&x| x as f32).collect();
            let bf: Vec<f32> = b.iter().map(|&x| x as f32).collect();
            let want = [dot(&a, &b).unwrap(), dot(&b, &b).unwrap()];
            let want32 = [dot(&af, &bf).unwrap(), dot(&bf, &bf).unwrap()];
            for level in supported_levels() {
                set_level(level).unwrap();
                for threads in [1, 2, 3] {
                    parallel::set_num_threads(threads).unwrap();
                    let got = pass_n(
                        n,
                        &TwoDots {
                            a: In(a.as_ptr()),
                            b: In(b.as_ptr()),
                        },
                    );
                    let got32 = pass_n(
                        n,
                        &TwoDots {
                            a: In(af.as_ptr()),
                            b: In(bf.as_ptr()),
                        },
                    );
                    for (w, g) in want.iter().zip(got.unwrap()) {
                        assert_eq!(w.to_bits(), g.to_bits(), "n={n} {level}");
                    }
                    for (w, g) in want32.iter().zip(got32.unwrap()) {
                        assert_eq!(w.to_bits(), g.to_bits(), "n={n} {level} f32");
                    }
                }
            }
            set_level(crate::simd::best_level()).unwrap();
        }
    }

    #[test]
    fn abs_max_finds_nan_and_the_largest() {
        let mut a = data(3 * parallel::CHUNK + 5, 3);
        a[parallel::CHUNK + 9] = -7.5;
        assert_eq!(abs_max(&a).unwrap(), 7.5);
        a[17] = f64::NAN;
        assert!(abs_max(&a).unwrap().is_nan());
        assert_eq!(abs_max::<f32>(&[]).unwrap(), f64::NEG_INFINITY);
    }
}
