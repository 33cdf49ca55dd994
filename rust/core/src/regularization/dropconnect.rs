//! DropConnect (Wan et al. 2013): drop each weight of a layer, rather than
//! each activation, independently with probability `p`:
//!
//! ```text
//! inverted: w_dropped = w * (mask ? 1 / (1 - p) : 0)     (E[w_dropped] = w)
//! original: w_dropped = w * mask                          (scale by 1 - p at test time)
//! dw = dw_dropped * (mask ? s : 0)                        (s the factor above)
//! ```
//!
//! The layer then computes with `w_dropped` as usual; its gradient with
//! respect to `w_dropped` flows back through the mask. (The paper's
//! inference averages over masks with a Gaussian moment-matching
//! approximation; scaling by the keep probability is the usual shortcut.)
//! The arithmetic is dropout's on the weight array.

use super::dropout::{dropout_backward, dropout_train, Dest};
use crate::error::Result;
use crate::random::Draw;
use crate::simd::Real;

/// Writes `w_dropped` and `mask` (1 = kept) from words `0 .. w.len()` of
/// `draw`. Checks everything first: an error writes nothing.
pub fn dropconnect<T: Real>(
    w: &[T],
    w_dropped: &mut [T],
    mask: &mut [u8],
    p: f64,
    inverted: bool,
    draw: Draw,
    dest: Dest,
) -> Result<()> {
    dropout_train(Some(w), w_dropped, mask, p, inverted, draw, dest)
}

/// `dw = dw_dropped * (mask != 0 ? s : 0)`.
pub fn dropconnect_backward<T: Real>(
    dw_dropped: &[T],
    mask: &[u8],
    p: f64,
    inverted: bool,
    dw: &mut [T],
) -> Result<()> {
    dropout_backward(dw_dropped, mask, p, inverted, dw)
}
