//! Stochastic depth (Huang et al. 2016) with the semantics of
//! `torchvision.ops.stochastic_depth`: drop a residual branch's output with
//! probability `p`, for each sample ("row": one draw per index along axis 0)
//! or for the whole batch ("batch": one draw), and divide what survives by
//! the survival rate:
//!
//! ```text
//! keep_r = word(r) < round((1 - p) * 2^32)
//! y[r, ...] = x[r, ...] * (keep_r ? 1 / (1 - p) : 0)
//! ```
//!
//! With `p = 1` nothing survives and `y = x * 0`, as in torchvision.

use super::dropout::{check_same_len, DropoutScale};
use super::{masked, vectorized};
use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::random::{fill_bernoulli, Draw};
use crate::simd::Real;

/// Which elements share a draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthMode {
    /// One draw per index along axis 0 (per sample).
    Row,
    /// One draw for the whole input.
    Batch,
}

impl DepthMode {
    /// The number of draws for an input with `rows` indices along axis 0.
    pub fn draws(self, rows: usize) -> usize {
        match self {
            DepthMode::Row => rows,
            DepthMode::Batch => 1,
        }
    }
}

struct Rows<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    first: usize,
}

impl<T: Send + Sync> Split for Rows<'_, T> {
    fn len(&self) -> usize {
        self.y.len()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (x0, x1) = split_ref(self.x, mid);
        let (y0, y1) = split_mut(self.y, mid);
        (
            Rows {
                x: x0,
                y: y0,
                first: self.first,
            },
            Rows {
                x: x1,
                y: y1,
                first: self.first + mid,
            },
        )
    }
}

/// Writes `keep` (1 = kept; one byte per draw: `x.len() / keep.len()`
/// consecutive elements share each) from words `0 .. keep.len()` of `draw`,
/// and `y`. Checks everything first: an error writes nothing.
pub fn stochastic_depth<T: Real>(
    x: &[T],
    y: &mut [T],
    keep: &mut [u8],
    p: f64,
    draw: Draw,
) -> Result<()> {
    let scale = DropoutScale::new(p, true)?;
    check_same_len("y", x.len(), y.len())?;
    let groups = keep.len();
    if (groups == 0 && !x.is_empty()) || (groups > 0 && !x.len().is_multiple_of(groups)) {
        return Err(Error::Shape(format!(
            "keep: {groups} draws do not divide {} elements",
            x.len()
        )));
    }
    fill_bernoulli(draw, scale.keep, keep)?;
    if x.is_empty() {
        return Ok(());
    }
    let row = x.len() / groups;
    let s = T::from_f64(scale.train);
    let keep = &*keep;
    let work = Rows { x, y, first: 0 };
    parallel::for_each_chunk(vec![work], |w| {
        vectorized::<T, _>(
            #[inline(always)]
            || {
                let mut at = 0;
                while at < w.y.len() {
                    let r = (w.first + at) / row;
                    let end = ((r + 1) * row - w.first).min(w.y.len());
                    let kept = keep[r] != 0;
                    let (y, x) = (&mut w.y[at..end], &w.x[at..end]);
                    for k in 0..y.len() {
                        y[k] = masked(x[k], kept, s);
                    }
                    at = end;
                }
            },
        )
    })
}
