//! Colour jitter (torchvision's `ColorJitter`): per image, a brightness,
//! contrast, saturation and hue factor, each uniform in its range, applied
//! in a random order (a uniformly random permutation per image).
//!
//! Image `i` uses the 8 words `word(8 i ..)`: words 0..3 shuffle the order
//! (`j = k + below(word(k), 4 - k)`, swap `k` and `j`, for `k = 0, 1, 2`,
//! starting from brightness, contrast, saturation, hue), words 3..7 are the
//! factors `lo + (hi - lo) * unit(word)` in that order (f64), word 7 is
//! unused. A factor whose range is `(center, center)` (1 for brightness,
//! contrast and saturation, 0 for hue: torchvision's `None`) is skipped.
//!
//! Each operation maps an image with values in [0, M] (M = 255 for `u8`,
//! 1 for `f32`) to one in [0, M], computed in f32 per pixel, clamped, and
//! for `u8` rounded to nearest (ties to even) before the next operation
//! (torchvision truncates instead, and floors the grayscale image for
//! `u8`):
//!
//! ```text
//! brightness b:  x' = x * b
//! contrast c:    x' = x * c + (1 - c) * mean(gray)     (mean over the image, f64)
//! saturation s:  x' = x * s + gray * (1 - s)
//! hue h:         rotate the hue by h turns in HSV (max and min channels kept)
//! gray = 0.299 r + 0.587 g + 0.114 b                   (ITU-R 601-2; 1 channel: x)
//! ```
//!
//! (`(1 - c) * mean` and `1 - s` are computed in f64 and rounded once to
//! f32.) The hue rotation is torchvision's RGB -> HSV -> RGB round trip
//! written without the division by the maximum: with `mx`, `mn` the largest
//! and smallest channel and `hue6` in [0, 6) the hue in sectors (shifted by
//! `6 h`, wrapped), sector `k = floor(hue6)` and `f = hue6 - k`, the
//! channels become `mx`, `mn`, `mn + (mx - mn) f` or `mx - (mx - mn) f` as
//! HSV's `v`, `p`, `t`, `q`.
//!
//! Contrast needs the mean of the image as the earlier operations left it:
//! an image with contrast after another operation is processed in two
//! passes (operations before contrast, summing the channels; then contrast
//! and the rest), else in one. Sums run per row in eight f64 accumulators
//! in a fixed order (exact for `u8`), so every SIMD level agrees.

use super::{below, finish, unit, vectorized, words, Batch, Images, Layout, Pixel};
use crate::error::{Error, Result};
use crate::parallel;
use crate::random::Draw;

/// Random words per image.
pub const WORDS: usize = 8;

/// ITU-R 601-2 luma weights.
pub const GRAY: [f64; 3] = [0.299, 0.587, 0.114];

/// A factor's range `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    pub lo: f64,
    pub hi: f64,
}

/// The four factor ranges (torchvision's resolved `(min, max)` pairs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter {
    pub brightness: Range,
    pub contrast: Range,
    pub saturation: Range,
    pub hue: Range,
}

/// The operations, numbered as torchvision's `fn_idx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Brightness = 0,
    Contrast = 1,
    Saturation = 2,
    Hue = 3,
}

const OPS: [Op; 4] = [Op::Brightness, Op::Contrast, Op::Saturation, Op::Hue];

/// One image's draw: the order of the operations and the four factors
/// (brightness, contrast, saturation, hue).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterParams {
    pub order: [Op; 4],
    pub factors: [f64; 4],
}

impl Jitter {
    fn ranges(&self) -> [(&'static str, Range, f64); 4] {
        [
            ("brightness", self.brightness, 1.0),
            ("contrast", self.contrast, 1.0),
            ("saturation", self.saturation, 1.0),
            ("hue", self.hue, 0.0),
        ]
    }

    /// Whether operation `op` runs (its range is not just its centre).
    pub fn active(&self, op: Op) -> bool {
        let (_, r, center) = self.ranges()[op as usize];
        !(r.lo == center && r.hi == center)
    }

    /// Checks the ranges (`0 <= lo <= hi` finite; hue within
    /// [-0.5, 0.5]) and the channels: 1 or 3, and 3 for an active
    /// saturation or hue.
    pub fn validate(&self, batch: Batch) -> Result<()> {
        batch.validate("images")?;
        for (i, (name, r, _)) in self.ranges().into_iter().enumerate() {
            let (lo, hi, expected) = if i == 3 {
                (-0.5, 0.5, "a range within [-0.5, 0.5] with lo <= hi")
            } else {
                (0.0, f64::MAX, "a range (lo, hi) with 0 <= lo <= hi, finite")
            };
            if !(lo <= r.lo && r.lo <= r.hi && r.hi <= hi) {
                return Err(Error::InvalidHyperparameter {
                    name: name.to_string(),
                    value: if lo <= r.lo { r.hi } else { r.lo },
                    expected,
                });
            }
        }
        if batch.c != 1 && batch.c != 3 {
            return Err(Error::Shape(format!(
                "images: colour jitter needs 1 or 3 channels, got {}",
                batch.c
            )));
        }
        for op in [Op::Saturation, Op::Hue] {
            if batch.c != 3 && self.active(op) {
                return Err(Error::Shape(format!(
                    "images: {} needs 3 (RGB) channels, got {} (set it to 0 for grayscale images)",
                    if op == Op::Hue { "hue" } else { "saturation" },
                    batch.c
                )));
            }
        }
        Ok(())
    }
}

/// The order and factors of each of `n` images, from words `0 .. 8 n` of
/// `draw`.
pub fn jitter_params(draw: Draw, n: usize, jitter: &Jitter) -> Result<Vec<JitterParams>> {
    let words = words(draw, n, WORDS)?;
    let ranges = jitter.ranges();
    let params = words.chunks_exact(WORDS).map(|w| {
        let mut order = OPS;
        for (k, &word) in w[..3].iter().enumerate() {
            order.swap(k, k + below(word, 4 - k));
        }
        let factors = std::array::from_fn(|k| {
            let r = ranges[k].1;
            r.lo + (r.hi - r.lo) * unit(w[3 + k])
        });
        JitterParams { order, factors }
    });
    crate::alloc::collect(params, "the jitter parameters")
}

/// Writes `dst` (same sizes as `src`): each image jittered with its
/// `params` (from [`jitter_params`]).
pub fn color_jitter<T: Pixel>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    jitter: &Jitter,
    params: &[JitterParams],
) -> Result<()> {
    jitter.validate(batch)?;
    batch.check_len("images", src.len())?;
    batch.check_len("out", dst.len())?;
    super::crop::check_params_len("params", batch.n, params.len())?;
    let len = batch.image_len();
    let work = Images::new(src, dst, len, len);
    parallel::try_for_each_task(work, len, |mut piece| {
        let mut outcome = Ok(());
        piece.for_each(|i, s, d| {
            if outcome.is_ok() {
                let ops: Vec<Op> = params[i]
                    .order
                    .into_iter()
                    .filter(|&op| jitter.active(op))
                    .collect();
                outcome = jitter_image(s, d, batch, &ops, &params[i].factors);
            }
        });
        outcome
    })
}

/// An operation with its per-image constants, in f32.
#[derive(Clone, Copy)]
enum Step {
    Brightness(f32),
    /// `x * c + offset`.
    Contrast(f32, f32),
    /// `x * s + gray * (1 - s)`.
    Saturation(f32, f32),
    /// The hue shift in sectors, `6 h`.
    Hue(f32),
}

fn step(op: Op, factors: &[f64; 4], mean: f64) -> Step {
    let f = factors[op as usize];
    match op {
        Op::Brightness => Step::Brightness(f as f32),
        Op::Contrast => Step::Contrast(f as f32, ((1.0 - f) * mean) as f32),
        Op::Saturation => Step::Saturation(f as f32, (1.0 - f) as f32),
        Op::Hue => Step::Hue((6.0 * f) as f32),
    }
}

/// Jitters one image; stops (with [`crate::Error::Cancelled`]) between
/// rows when the call is cancelled.
fn jitter_image<T: Pixel>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    ops: &[Op],
    factors: &[f64; 4],
) -> Result<()> {
    let pixels = batch.h * batch.w;
    if ops.is_empty() || pixels == 0 {
        dst.copy_from_slice(src);
        return Ok(());
    }
    let mut rows = crate::alloc::filled(batch.c * batch.w, 0f32, "a row of the image")?;
    vectorized(
        #[inline(always)]
        || {
            let Some(k) = ops.iter().position(|&op| op == Op::Contrast) else {
                let steps: Vec<Step> = ops.iter().map(|&op| step(op, factors, 0.0)).collect();
                pass(Some(src), dst, batch, &steps, None, &mut rows);
                return;
            };
            let before: Vec<Step> = ops[..k].iter().map(|&op| step(op, factors, 0.0)).collect();
            let mut sums = [0f64; 3];
            // The operations before contrast (if any) write `dst`, which
            // the second pass then reads.
            let second_input = if before.is_empty() {
                pass_sums(src, batch, &mut sums, &mut rows);
                Some(src)
            } else {
                pass(Some(src), dst, batch, &before, Some(&mut sums), &mut rows);
                None
            };
            let mean = if batch.c == 3 {
                (GRAY[0] * sums[0] + GRAY[1] * sums[1] + GRAY[2] * sums[2]) / pixels as f64
            } else {
                sums[0] / pixels as f64
            };
            let after: Vec<Step> = ops[k..].iter().map(|&op| step(op, factors, mean)).collect();
            pass(second_input, dst, batch, &after, None, &mut rows);
        },
    );
    crate::cancel::check()
}

/// Applies `steps` to every row of `input` (or of `img` itself when
/// `None`), writing `img`; adds each channel's sum of the results to
/// `sums`.
#[inline(always)]
fn pass<T: Pixel>(
    input: Option<&[T]>,
    img: &mut [T],
    batch: Batch,
    steps: &[Step],
    mut sums: Option<&mut [f64; 3]>,
    rows: &mut [f32],
) {
    let w = batch.w;
    for y in 0..batch.h {
        if crate::cancel::requested() {
            return;
        }
        load_row(input.unwrap_or(&*img), batch, y, rows);
        for &s in steps {
            apply::<T>(s, rows, w);
        }
        if let Some(sums) = sums.as_deref_mut() {
            for (sum, ch) in sums.iter_mut().zip(rows.chunks_exact(w)) {
                *sum += sum_f64(ch);
            }
        }
        store_row(img, batch, y, rows);
    }
}

/// Adds each channel's sum of `img` to `sums`.
#[inline(always)]
fn pass_sums<T: Pixel>(img: &[T], batch: Batch, sums: &mut [f64; 3], rows: &mut [f32]) {
    for y in 0..batch.h {
        load_row(img, batch, y, rows);
        for (sum, ch) in sums.iter_mut().zip(rows.chunks_exact(batch.w)) {
            *sum += sum_f64(ch);
        }
    }
}

/// The sum of `v` in f64: eight accumulators (element `k` goes to `k % 8`),
/// combined pairwise. Written so, the order is fixed by the source, not by
/// the SIMD width.
#[inline(always)]
fn sum_f64(v: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let (chunks, rest) = v.as_chunks::<8>();
    for c in chunks {
        for k in 0..8 {
            acc[k] += f64::from(c[k]);
        }
    }
    for (k, &x) in rest.iter().enumerate() {
        acc[k] += f64::from(x);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Row `y` of `img` as f32 planes: channel `k` at `rows[k * w ..]`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops vectorize without LTO
fn load_row<T: Pixel>(img: &[T], batch: Batch, y: usize, rows: &mut [f32]) {
    let (h, w, c) = (batch.h, batch.w, batch.c);
    match (batch.layout, c) {
        (Layout::Nhwc, 3) => {
            let src = &img[y * w * 3..(y + 1) * w * 3];
            let (r, rest) = rows.split_at_mut(w);
            let (g, b) = rest.split_at_mut(w);
            let (px, _) = src.as_chunks::<3>();
            let px = &px[..w];
            let (r, g, b) = (&mut r[..w], &mut g[..w], &mut b[..w]);
            for i in 0..w {
                r[i] = px[i][0].to_f32();
                g[i] = px[i][1].to_f32();
                b[i] = px[i][2].to_f32();
            }
        }
        _ => {
            for (k, plane) in rows.chunks_exact_mut(w).enumerate() {
                let at = match batch.layout {
                    Layout::Nhwc => y * w,
                    Layout::Nchw => (k * h + y) * w,
                };
                let src = &img[at..at + w];
                for i in 0..w {
                    plane[i] = src[i].to_f32();
                }
            }
        }
    }
}

/// Writes the planes back to row `y` of `img` (values already finished).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn store_row<T: Pixel>(img: &mut [T], batch: Batch, y: usize, rows: &[f32]) {
    let (h, w, c) = (batch.h, batch.w, batch.c);
    match (batch.layout, c) {
        (Layout::Nhwc, 3) => {
            let dst = &mut img[y * w * 3..(y + 1) * w * 3];
            let (r, rest) = rows.split_at(w);
            let (g, b) = rest.split_at(w);
            let (px, _) = dst.as_chunks_mut::<3>();
            let px = &mut px[..w];
            let (r, g, b) = (&r[..w], &g[..w], &b[..w]);
            for i in 0..w {
                px[i] = [T::from_f32(r[i]), T::from_f32(g[i]), T::from_f32(b[i])];
            }
        }
        _ => {
            for (k, plane) in rows.chunks_exact(w).enumerate() {
                let at = match batch.layout {
                    Layout::Nhwc => y * w,
                    Layout::Nchw => (k * h + y) * w,
                };
                let dst = &mut img[at..at + w];
                for i in 0..w {
                    dst[i] = T::from_f32(plane[i]);
                }
            }
        }
    }
}

#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn apply<T: Pixel>(step: Step, rows: &mut [f32], w: usize) {
    match step {
        Step::Brightness(b) => {
            for x in rows.iter_mut() {
                *x = finish::<T>(*x * b);
            }
        }
        Step::Contrast(c, offset) => {
            for x in rows.iter_mut() {
                *x = finish::<T>(*x * c + offset);
            }
        }
        Step::Saturation(s, s1) => {
            let (r, rest) = rows.split_at_mut(w);
            let (g, b) = rest.split_at_mut(w);
            let (r, g, b) = (&mut r[..w], &mut g[..w], &mut b[..w]);
            let (wr, wg, wb) = (GRAY[0] as f32, GRAY[1] as f32, GRAY[2] as f32);
            for i in 0..w {
                let gray = wr * r[i] + wg * g[i] + wb * b[i];
                let base = gray * s1;
                r[i] = finish::<T>(r[i] * s + base);
                g[i] = finish::<T>(g[i] * s + base);
                b[i] = finish::<T>(b[i] * s + base);
            }
        }
        Step::Hue(shift) => {
            let (r, rest) = rows.split_at_mut(w);
            let (g, b) = rest.split_at_mut(w);
            let (r, g, b) = (&mut r[..w], &mut g[..w], &mut b[..w]);
            for i in 0..w {
                let [nr, ng, nb] = rotate_hue(r[i], g[i], b[i], shift);
                r[i] = finish::<T>(nr);
                g[i] = finish::<T>(ng);
                b[i] = finish::<T>(nb);
            }
        }
    }
}

/// The pixel `(r, g, b)` with its hue shifted by `shift` sectors (a sixth
/// of a turn each), branch-free so that the loop vectorizes.
#[inline(always)]
pub fn rotate_hue(r: f32, g: f32, b: f32, shift: f32) -> [f32; 3] {
    let mx = if r > g { r } else { g };
    let mx = if mx > b { mx } else { b };
    let mn = if r < g { r } else { g };
    let mn = if mn < b { mn } else { b };
    let range = mx - mn;
    let d = if range == 0.0 { 1.0 } else { range };
    // The hue in sectors, in [-1, 5): red, green or blue is the largest.
    let (base, num) = if mx == r {
        (0.0, g - b)
    } else if mx == g {
        (2.0, b - r)
    } else {
        (4.0, r - g)
    };
    let hue = base + num / d + shift;
    let hue = if hue < 0.0 { hue + 6.0 } else { hue };
    let hue = if hue >= 6.0 { hue - 6.0 } else { hue };
    // The sector `floor(hue)`, at most 5 (`hue + 6` may round up to 6), by
    // comparisons: they vectorize, where the float-to-int casts do not.
    let at_least = |edge: f32| if hue >= edge { 1.0 } else { 0.0 };
    let k = at_least(1.0) + at_least(2.0) + at_least(3.0) + at_least(4.0) + at_least(5.0);
    let f = hue - k;
    let rise = mn + range * f;
    let fall = mx - range * f;
    let nr = if k == 0.0 || k == 5.0 {
        mx
    } else if k == 1.0 {
        fall
    } else if k == 4.0 {
        rise
    } else {
        mn
    };
    let ng = if k == 1.0 || k == 2.0 {
        mx
    } else if k == 0.0 {
        rise
    } else if k == 3.0 {
        fall
    } else {
        mn
    };
    let nb = if k == 3.0 || k == 4.0 {
        mx
    } else if k == 2.0 {
        rise
    } else if k == 5.0 {
        fall
    } else {
        mn
    };
    [nr, ng, nb]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Stream;

    fn none() -> Jitter {
        let one = Range { lo: 1.0, hi: 1.0 };
        Jitter {
            brightness: one,
            contrast: one,
            saturation: one,
            hue: Range { lo: 0.0, hi: 0.0 },
        }
    }

    #[test]
    fn hue_rotation_is_hsv() {
        // A third of a turn maps red to green, green to blue.
        assert_eq!(rotate_hue(200.0, 10.0, 10.0, 2.0), [10.0, 200.0, 10.0]);
        assert_eq!(rotate_hue(10.0, 200.0, 10.0, 2.0), [10.0, 10.0, 200.0]);
        // Half a turn: the complement within [min, max].
        assert_eq!(rotate_hue(200.0, 100.0, 0.0, 3.0), [0.0, 100.0, 200.0]);
        // Gray stays gray; no shift changes nothing.
        assert_eq!(rotate_hue(7.0, 7.0, 7.0, 1.3), [7.0, 7.0, 7.0]);
        assert_eq!(rotate_hue(30.0, 90.0, 250.0, 0.0), [30.0, 90.0, 250.0]);
    }

    #[test]
    fn params_are_permutations_in_range() {
        let mut s = Stream::new(9);
        let draw = s.reserve(800).unwrap();
        let j = Jitter {
            brightness: Range { lo: 0.6, hi: 1.4 },
            hue: Range { lo: -0.1, hi: 0.1 },
            ..none()
        };
        let params = jitter_params(draw, 100, &j).unwrap();
        let mut firsts = [0; 4];
        for p in &params {
            let mut o: Vec<u8> = p.order.iter().map(|&op| op as u8).collect();
            firsts[o[0] as usize] += 1;
            o.sort();
            assert_eq!(o, [0, 1, 2, 3]);
            assert!((0.6..1.4).contains(&p.factors[0]));
            assert!((-0.1..0.1).contains(&p.factors[3]));
            assert_eq!(p.factors[1], 1.0);
        }
        assert!(firsts.iter().all(|&n| n > 10), "{firsts:?}");
    }

    #[test]
    fn validation() {
        let batch = Batch {
            n: 1,
            h: 2,
            w: 2,
            c: 1,
            layout: Layout::Nhwc,
        };
        assert!(none().validate(batch).is_ok());
        let sat = Jitter {
            saturation: Range { lo: 0.5, hi: 1.5 },
            ..none()
        };
        assert!(sat.validate(batch).is_err());
        assert!(sat.validate(Batch { c: 3, ..batch }).is_ok());
        let hue = Jitter {
            hue: Range { lo: -0.6, hi: 0.1 },
            ..none()
        };
        assert!(hue.validate(Batch { c: 3, ..batch }).is_err());
        assert!(none().validate(Batch { c: 4, ..batch }).is_err());
    }

    #[test]
    fn contrast_blends_with_the_mean() {
        let batch = Batch {
            n: 1,
            h: 1,
            w: 4,
            c: 1,
            layout: Layout::Nhwc,
        };
        let j = Jitter {
            contrast: Range { lo: 0.5, hi: 0.5 },
            ..none()
        };
        let src = [0u8, 100, 200, 100];
        let mut dst = [0u8; 4];
        let mut s = Stream::new(1);
        let params = jitter_params(s.reserve(8).unwrap(), 1, &j).unwrap();
        color_jitter(&src, &mut dst, batch, &j, &params).unwrap();
        // mean 100: x * 0.5 + 50.
        assert_eq!(dst, [50, 100, 150, 100]);
    }
}
