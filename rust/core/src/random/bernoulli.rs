//! Bernoulli draws by integer comparison: keep element `i` iff
//! `word(i) < t` with `t = round(q * 2^32)` (half away from zero) computed
//! once in f64, for a keep probability `q`. The realized probability is `t / 2^32`, within
//! 2^-33 of `q`; `q = 1` keeps everything and `q = 0` (or any `q < 2^-33`)
//! keeps nothing. No float conversion happens per element.

use super::philox::Words;
use super::source::{dispatch, Source, WordKernel};
use super::{Draw, Span};
use crate::error::{check_range, Result};
use crate::parallel;

/// The comparison that decides "kept" for a keep probability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Every element is kept (`q` rounds to 2^32 / 2^32).
    All,
    /// No element is kept (`q` rounds to 0).
    None,
    /// Kept iff `word < t`, `0 < t < 2^32`.
    Below(u32),
}

impl Keep {
    /// The threshold for keep probability `q` in [0, 1] (NaN rejected).
    pub fn with_probability(q: f64) -> Result<Keep> {
        check_range("keep probability", q, 0.0, 1.0, false, "in [0, 1]")?;
        let t = (q * 4_294_967_296.0).round();
        Ok(if t <= 0.0 {
            Keep::None
        } else if t >= 4_294_967_296.0 {
            Keep::All
        } else {
            Keep::Below(t as u32)
        })
    }

    /// The threshold for drop probability `p` in [0, 1]: keep probability
    /// `1 - p`, computed in f64.
    pub fn with_drop_probability(p: f64) -> Result<Keep> {
        check_range("p", p, 0.0, 1.0, false, "in [0, 1]")?;
        Keep::with_probability(1.0 - p)
    }

    /// The realized keep probability, `t / 2^32`.
    pub fn probability(self) -> f64 {
        match self {
            Keep::All => 1.0,
            Keep::None => 0.0,
            Keep::Below(t) => f64::from(t) / 4_294_967_296.0,
        }
    }

    /// Whether the draw decides anything (neither all nor none kept).
    pub fn is_random(self) -> bool {
        matches!(self, Keep::Below(_))
    }
}

struct BernoulliKernel<'a, 'b>(&'b Draw, Keep, Span<'a, u8>);

impl WordKernel for BernoulliKernel<'_, '_> {
    type Output = ();

    #[inline(always)]
    unsafe fn run<V: Words>(self) {
        let BernoulliKernel(draw, keep, span) = self;
        let t = match keep {
            Keep::All => return span.out.fill(1),
            Keep::None => return span.out.fill(0),
            Keep::Below(t) => t,
        };
        let source = Source::<V>::new(*draw);
        source.runs(
            span.first,
            span.out.len(),
            #[inline(always)]
            |words, at| {
                let out = &mut span.out[at..at + words.len()];
                for k in 0..words.len() {
                    out[k] = u8::from(words[k] < t);
                }
            },
        );
    }
}

/// Writes element `i` of `out` as 1 (kept) or 0 from word `i` of `draw`,
/// which must have reserved `out.len()` words.
pub fn fill_bernoulli(draw: Draw, keep: Keep, out: &mut [u8]) -> Result<()> {
    parallel::for_each_chunk(vec![Span { out, first: 0 }], |span| {
        dispatch(BernoulliKernel(&draw, keep, span))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        assert_eq!(Keep::with_probability(1.0).unwrap(), Keep::All);
        assert_eq!(Keep::with_probability(0.0).unwrap(), Keep::None);
        assert_eq!(Keep::with_probability(0.5).unwrap(), Keep::Below(1 << 31));
        assert_eq!(Keep::with_probability(1e-10).unwrap(), Keep::None);
        assert_eq!(Keep::with_probability(1.0 - 1e-10).unwrap(), Keep::All);
        assert_eq!(
            Keep::with_drop_probability(0.75).unwrap(),
            Keep::Below(1 << 30)
        );
        for bad in [-0.1, 1.1, f64::NAN, f64::INFINITY] {
            assert!(Keep::with_probability(bad).is_err());
            assert!(Keep::with_drop_probability(bad).is_err());
        }
        assert_eq!(Keep::Below(1 << 30).probability(), 0.25);
    }
}
