//! Dropout (Srivastava et al. 2014), `p` = probability of dropping.
//!
//! ```text
//! mask_i = word(i) < round((1 - p) * 2^32)         (1 = kept)
//! inverted (PyTorch):   train y = x * (mask ? 1 / (1 - p) : 0)   test y = x
//! original (lecture):   train y = x * (mask ? 1 : 0)             test y = x * (1 - p)
//! backward:             dx = dout * (mask ? s : 0), s the train scale
//! ```
//!
//! Scales are computed in f64 and rounded once to the element type. With
//! `p = 1` every element is dropped and the inverted scale is taken as 0,
//! so the output is `x * 0` (zeros for finite `x`) as in PyTorch, never
//! `0 * inf`. The forward pass writes `y` and the mask in one pass over
//! memory, 64 elements (one group of Philox words) at a time.

use super::streaming::LineWriter;
use super::{masked, vectorized};
use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::random::philox::Words;
use crate::random::source::{dispatch, Source, WordKernel};
use crate::random::{Draw, Keep};
use crate::simd::Real;

/// The Bernoulli threshold and the scales of dropout with drop probability
/// `p`, in f64.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutScale {
    pub keep: Keep,
    /// The factor of kept elements in training.
    pub train: f64,
    /// The factor of every element at test time.
    pub test: f64,
}

impl DropoutScale {
    /// Checks `p` in [0, 1] (NaN rejected).
    pub fn new(p: f64, inverted: bool) -> Result<Self> {
        let keep = Keep::with_drop_probability(p)?;
        let (train, test) = if !inverted {
            (1.0, 1.0 - p)
        } else if p < 1.0 {
            (1.0 / (1.0 - p), 1.0)
        } else {
            (0.0, 1.0)
        };
        Ok(DropoutScale { keep, train, test })
    }
}

pub(crate) fn check_same_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what: what.to_string(),
            expected,
            got,
        })
    }
}

/// The arrays of a forward pass: `x` is `None` when computing in place
/// (read from `y`).
pub(crate) struct Forward<'a, T> {
    pub x: Option<&'a [T]>,
    pub y: &'a mut [T],
    pub mask: &'a mut [u8],
    /// The index of `y[0]` in the call: its word of the draw.
    pub first: u64,
}

impl<T: Send + Sync> Split for Forward<'_, T> {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (x0, x1) = match self.x {
            Some(x) => {
                let (a, b) = split_ref(x, mid);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let (y0, y1) = split_mut(self.y, mid);
        let (m0, m1) = split_mut(self.mask, mid);
        (
            Forward {
                x: x0,
                y: y0,
                mask: m0,
                first: self.first,
            },
            Forward {
                x: x1,
                y: y1,
                mask: m1,
                first: self.first + mid as u64,
            },
        )
    }
}

/// `y = x * (kept ? s : 0)` and the mask, for a fixed `kept`.
#[inline(always)]
fn constant<T: Real>(x: Option<&[T]>, y: &mut [T], mask: &mut [u8], kept: bool, s: T) {
    mask.fill(u8::from(kept));
    match x {
        Some(x) => {
            let x = &x[..y.len()];
            for k in 0..y.len() {
                y[k] = masked(x[k], kept, s);
            }
        }
        None => {
            for o in y.iter_mut() {
                *o = masked(*o, kept, s);
            }
        }
    }
}

/// `y = x * (word < t ? s : 0)` and the mask, over one run of words.
///
/// Index loops over slices cut to one length (so without bounds checks):
/// iterator adapters such as `zip` are not always inlined into the
/// `#[target_feature]` function in builds without LTO, which then run at
/// half speed.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn bernoulli<T: Real>(words: &[u32], t: u32, x: Option<&[T]>, y: &mut [T], mask: &mut [u8], s: T) {
    let n = words.len();
    let (y, mask) = (&mut y[..n], &mut mask[..n]);
    match x {
        Some(x) => {
            let x = &x[..n];
            for k in 0..n {
                let kept = words[k] < t;
                mask[k] = u8::from(kept);
                y[k] = masked(x[k], kept, s);
            }
        }
        None => {
            for k in 0..n {
                let kept = words[k] < t;
                mask[k] = u8::from(kept);
                y[k] = masked(y[k], kept, s);
            }
        }
    }
}

struct ForwardKernel<'a, 'b, T> {
    work: Forward<'a, T>,
    draw: &'b Draw,
    keep: Keep,
    s: T,
    /// Write `y` and the mask with streaming stores.
    stream: bool,
}

impl<T: Real> WordKernel for ForwardKernel<'_, '_, T> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Words>(self) {
        let Forward { x, y, mask, first } = self.work;
        let (keep, s) = (self.keep, self.s);
        let t = match keep {
            Keep::All => return constant(x, y, mask, true, s),
            Keep::None => return constant(x, y, mask, false, s),
            Keep::Below(t) => t,
        };
        let source = Source::<V>::new(*self.draw);
        let Some(x) = x.filter(|_| self.stream) else {
            source.runs(
                first,
                y.len(),
                #[inline(always)]
                |words, at| {
                    let x = x.map(|x| &x[at..]);
                    bernoulli(words, t, x, &mut y[at..], &mut mask[at..], s);
                },
            );
            return;
        };
        // Streaming: compute each group of `y` and of the mask into their
        // writers' staging buffers, which stay in L1, then append them with
        // streaming stores.
        let y_bytes = size_of_val(y);
        // SAFETY: `y` holds plain floats, for which any bytes are valid.
        let y_out = unsafe { std::slice::from_raw_parts_mut(y.as_mut_ptr().cast::<u8>(), y_bytes) };
        let mut y_out = LineWriter::<V>::new(y_out);
        let mut mask_out = LineWriter::<V>::new(mask);
        source.runs(
            first,
            x.len(),
            #[inline(always)]
            |words, at| {
                let n = words.len();
                let src = &x[at..at + n];
                // The stores do not wait for lines to be read, so reading `x`
                // is what is left: ask for it well ahead, further than the
                // hardware prefetcher gets past the Philox work.
                let ahead = src.as_ptr().cast::<u8>().wrapping_add(PREFETCH_BYTES);
                for line in (0..size_of_val(src)).step_by(64) {
                    V::prefetch(ahead.wrapping_add(line));
                }
                let (y_stage, mask_stage) = (y_out.stage::<T>(n), mask_out.stage_bytes(n));
                bernoulli(words, t, Some(src), y_stage, mask_stage, s);
                // SAFETY: we run inside `V`'s dispatch.
                unsafe {
                    y_out.commit(n * size_of::<T>());
                    mask_out.commit(n);
                }
            },
        );
        y_out.finish();
        mask_out.finish();
    }
}

/// Where an output array comes from, which decides how to store to it.
/// The values are the same either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Just allocated: the OS zeroes each fresh page on its first write,
    /// which leaves its lines in cache, where plain stores are cheapest
    /// (streaming stores would have to evict them first).
    New,
    /// An existing buffer (`out=`): one of at least [`STREAM_MIN_BYTES`],
    /// not computed in place, is written with streaming stores. It cannot
    /// stay in the private caches anyway, and skipping the
    /// read-for-ownership of its lines saves a third of the memory traffic.
    Existing,
}

/// The smallest output written with streaming stores (see [`Dest`]).
pub const STREAM_MIN_BYTES: usize = 8 << 20;

/// How far ahead of the group being computed the streaming path prefetches
/// its input.
const PREFETCH_BYTES: usize = 4096;

/// Dropout in training: writes `y` and `mask` (1 = kept) from words
/// `0 .. y.len()` of `draw`. `x = None` reads `x` from `y` (in place).
/// Checks lengths and `p` first: an error writes nothing.
pub fn dropout_train<T: Real>(
    x: Option<&[T]>,
    y: &mut [T],
    mask: &mut [u8],
    p: f64,
    inverted: bool,
    draw: Draw,
    dest: Dest,
) -> Result<()> {
    let scale = DropoutScale::new(p, inverted)?;
    if let Some(x) = x {
        check_same_len("y", x.len(), y.len())?;
    }
    check_same_len("mask", y.len(), mask.len())?;
    let s = T::from_f64(scale.train);
    let stream = dest == Dest::Existing && size_of_val(y) >= STREAM_MIN_BYTES;
    let work = Forward {
        x,
        y,
        mask,
        first: 0,
    };
    parallel::for_each_chunk(vec![work], |work| {
        dispatch(ForwardKernel {
            work,
            draw: &draw,
            keep: scale.keep,
            s,
            stream,
        })
    })
}

/// Dropout at test time: `y = x` (inverted) or `y = x * (1 - p)` (the
/// lecture's form). `x = None` computes in place.
#[allow(clippy::needless_range_loop)] // index loops, as in `bernoulli`
pub fn dropout_eval<T: Real>(x: Option<&[T]>, y: &mut [T], p: f64, inverted: bool) -> Result<()> {
    let scale = DropoutScale::new(p, inverted)?;
    if let Some(x) = x {
        check_same_len("y", x.len(), y.len())?;
    }
    let factor = T::from_f64(scale.test);
    let scaled = !inverted;
    let mut mask: [u8; 0] = [];
    let work = Forward {
        x,
        y,
        mask: &mut mask,
        first: 0,
    };
    parallel::for_each_chunk(vec![work], |w| match (w.x, scaled) {
        (Some(x), false) => w.y.copy_from_slice(x),
        (None, false) => {}
        (Some(x), true) => vectorized::<T, _>(
            #[inline(always)]
            || {
                let x = &x[..w.y.len()];
                for k in 0..x.len() {
                    w.y[k] = x[k].mul(factor);
                }
            },
        ),
        (None, true) => vectorized::<T, _>(
            #[inline(always)]
            || {
                for o in w.y.iter_mut() {
                    *o = o.mul(factor);
                }
            },
        ),
    })
}

/// The arrays of a backward pass (DropConnect's too).
pub(crate) struct Backward<'a, T> {
    pub dout: &'a [T],
    pub mask: &'a [u8],
    pub dx: &'a mut [T],
}

impl<T: Send + Sync> Split for Backward<'_, T> {
    fn len(&self) -> usize {
        self.dx.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (d0, d1) = split_ref(self.dout, mid);
        let (m0, m1) = split_ref(self.mask, mid);
        let (x0, x1) = split_mut(self.dx, mid);
        (
            Backward {
                dout: d0,
                mask: m0,
                dx: x0,
            },
            Backward {
                dout: d1,
                mask: m1,
                dx: x1,
            },
        )
    }
}

/// `dx = dout * (mask != 0 ? s : 0)` with the training scale of `p`; any
/// nonzero mask byte counts as kept.
pub fn dropout_backward<T: Real>(
    dout: &[T],
    mask: &[u8],
    p: f64,
    inverted: bool,
    dx: &mut [T],
) -> Result<()> {
    let scale = DropoutScale::new(p, inverted)?;
    check_same_len("mask", dout.len(), mask.len())?;
    check_same_len("dx", dout.len(), dx.len())?;
    let s = T::from_f64(scale.train);
    let work = Backward { dout, mask, dx };
    parallel::for_each_chunk(vec![work], |w| {
        vectorized::<T, _>(
            #[inline(always)]
            || {
                let n = w.dx.len();
                let (dout, mask) = (&w.dout[..n], &w.mask[..n]);
                for k in 0..n {
                    w.dx[k] = masked(dout[k], mask[k] != 0, s);
                }
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales() {
        let s = DropoutScale::new(0.75, true).unwrap();
        assert_eq!((s.train, s.test), (4.0, 1.0));
        let s = DropoutScale::new(0.75, false).unwrap();
        assert_eq!((s.train, s.test), (1.0, 0.25));
        let s = DropoutScale::new(1.0, true).unwrap();
        assert_eq!((s.keep, s.train), (Keep::None, 0.0));
        assert!(DropoutScale::new(f64::NAN, true).is_err());
    }
}
