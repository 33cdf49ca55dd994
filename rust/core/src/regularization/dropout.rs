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
            for (o, &v) in y.iter_mut().zip(x) {
                *o = masked(v, kept, s);
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
#[inline(always)]
fn bernoulli<T: Real>(words: &[u32], t: u32, x: Option<&[T]>, y: &mut [T], mask: &mut [u8], s: T) {
    let n = words.len();
    let (y, mask) = (&mut y[..n], &mut mask[..n]);
    match x {
        Some(x) => {
            for (((o, m), &v), &w) in y.iter_mut().zip(mask.iter_mut()).zip(&x[..n]).zip(words) {
                let kept = w < t;
                *m = u8::from(kept);
                *o = masked(v, kept, s);
            }
        }
        None => {
            for ((o, m), &w) in y.iter_mut().zip(mask.iter_mut()).zip(words) {
                let kept = w < t;
                *m = u8::from(kept);
                *o = masked(*o, kept, s);
            }
        }
    }
}

struct ForwardKernel<'a, 'b, T> {
    work: Forward<'a, T>,
    draw: &'b Draw,
    keep: Keep,
    s: T,
}

impl<T: Real> WordKernel for ForwardKernel<'_, '_, T> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Words>(self) {
        let Forward { x, y, mask, first } = self.work;
        let (keep, s) = (self.keep, self.s);
        match keep {
            Keep::All => constant(x, y, mask, true, s),
            Keep::None => constant(x, y, mask, false, s),
            Keep::Below(t) => {
                let source = Source::<V>::new(*self.draw);
                source.runs(first, y.len(), |words, at| {
                    let x = x.map(|x| &x[at..]);
                    bernoulli(words, t, x, &mut y[at..], &mut mask[at..], s);
                });
            }
        }
    }
}

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
) -> Result<()> {
    let scale = DropoutScale::new(p, inverted)?;
    if let Some(x) = x {
        check_same_len("y", x.len(), y.len())?;
    }
    check_same_len("mask", y.len(), mask.len())?;
    let s = T::from_f64(scale.train);
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
        })
    })
}

/// Dropout at test time: `y = x` (inverted) or `y = x * (1 - p)` (the
/// lecture's form). `x = None` computes in place.
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
        (Some(x), true) => vectorized::<T, _>(|| {
            for (o, &v) in w.y.iter_mut().zip(x) {
                *o = v.mul(factor);
            }
        }),
        (None, true) => vectorized::<T, _>(|| {
            for o in w.y.iter_mut() {
                *o = o.mul(factor);
            }
        }),
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
        vectorized::<T, _>(|| {
            for ((o, &g), &m) in w.dx.iter_mut().zip(w.dout).zip(w.mask) {
                *o = masked(g, m != 0, s);
            }
        })
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
