//! Random resized crops (torchvision's `RandomResizedCrop`): cut a random
//! box of random area and aspect ratio out of each image and resize it to
//! `out_h x out_w` with a bilinear (triangle) filter.
//!
//! The box, from the 40 words of image `i` (`make_params` of torchvision's
//! `transforms.v2`, in f64): for try `k = 0 .. 10` with words
//! `a, r, t, l = word(40 i + 4 k ..)`
//!
//! ```text
//! target = H * W * (scale_lo + (scale_hi - scale_lo) * unit(a))
//! aspect = exp(ln ratio_lo + (ln ratio_hi - ln ratio_lo) * unit(r))
//! w = round(sqrt(target * aspect)), h = round(sqrt(target / aspect))
//! if 0 < w <= W and 0 < h <= H:
//!     box = (top = below(t, H - h + 1), left = below(l, W - w + 1), h, w)
//! ```
//!
//! (`round` ties to even, as Python's); if no try fits, the centred crop
//! of the whole image clamped to the ratio range. `exp` and `ln` are the
//! C library's, as Python's `math`.
//!
//! Resampling (separable, vertical pass into a row of f32, then
//! horizontal): output index `i` of an axis resized from `n` to `m`
//! (`scale = n / m`) has its centre at `c = (i + 0.5) * scale` and weights
//!
//! ```text
//! fs = max(scale, 1) if antialias else 1        (the filter's stretch)
//! j in [max(trunc(c - fs + 0.5), 0), min(trunc(c + fs + 0.5), n))
//! w_j = tri((j - c + 0.5) / fs) / sum_j tri(..),   tri(x) = max(0, 1 - |x|)
//! ```
//!
//! in f64, rounded once to f32: Pillow's and PyTorch's antialiased bilinear
//! filter (`antialias=True`, torchvision v2's default), whose support grows
//! with the downscaling factor; with `fs = 1` it is the plain bilinear
//! interpolation with half-pixel centres and clamped borders of
//! `torch.nn.functional.interpolate(align_corners=False)` and OpenCV's
//! `INTER_LINEAR` (`antialias=False`; identical to the antialiased filter
//! when upscaling). Sums run in f32 in tap order; `u8` results are rounded
//! (ties to even) and saturated, `f32` results are not clamped (as torch).

use super::{below, finish, unit, vectorized, words, Batch, Images, Pixel};
use crate::error::{Error, Result};
use crate::parallel;
use crate::random::Draw;

/// Tries before the centre-crop fallback.
pub const TRIES: usize = 10;
/// Random words per image: 4 per try.
pub const WORDS: usize = 4 * TRIES;

/// A random resized crop: output size, the area fraction and aspect ratio
/// ranges, and the filter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResizedCropSpec {
    pub out_h: usize,
    pub out_w: usize,
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
    pub antialias: bool,
}

/// A crop box in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl ResizedCropSpec {
    /// Checks sizes and ranges: output at least 1x1, non-empty images,
    /// `0 <= scale_lo <= scale_hi`, `0 < ratio_lo <= ratio_hi`, all finite.
    pub fn validate(&self, batch: Batch) -> Result<()> {
        batch.validate("images")?;
        if self.out_h == 0 || self.out_w == 0 {
            return Err(Error::Shape(format!(
                "size: the output must be at least 1x1, got {}x{}",
                self.out_h, self.out_w
            )));
        }
        if self.out_h > super::MAX_SIDE || self.out_w > super::MAX_SIDE {
            return Err(Error::Shape(format!(
                "size: at most {} per side",
                super::MAX_SIDE
            )));
        }
        if batch.w.saturating_mul(batch.lanes()) > MAX_ROW {
            return Err(Error::Shape(format!(
                "images: rows of more than {MAX_ROW} values are not supported"
            )));
        }
        if batch.n > 0 && (batch.h == 0 || batch.w == 0) {
            return Err(Error::Shape(format!(
                "images: cannot crop empty images ({}x{})",
                batch.h, batch.w
            )));
        }
        let (s0, s1) = self.scale;
        if !(s0.is_finite() && s1.is_finite() && 0.0 <= s0 && s0 <= s1) {
            return Err(Error::InvalidHyperparameter {
                name: "scale".into(),
                value: if s0.is_finite() && s0 >= 0.0 { s1 } else { s0 },
                expected: "a range (lo, hi) with 0 <= lo <= hi, finite",
            });
        }
        let (r0, r1) = self.ratio;
        if !(r0.is_finite() && r1.is_finite() && 0.0 < r0 && r0 <= r1) {
            return Err(Error::InvalidHyperparameter {
                name: "ratio".into(),
                value: if r0.is_finite() && r0 > 0.0 { r1 } else { r0 },
                expected: "a range (lo, hi) with 0 < lo <= hi, finite",
            });
        }
        Ok(())
    }
}

/// The crop box of each image, from words `0 .. 40 n` of `draw` (the spec
/// validated first).
pub fn resized_crop_params(
    draw: Draw,
    batch: Batch,
    spec: &ResizedCropSpec,
) -> Result<Vec<CropBox>> {
    let words = words(draw, batch.n, WORDS)?;
    let boxes = words
        .chunks_exact(WORDS)
        .map(|w| plan(w, batch.h, batch.w, spec));
    crate::alloc::collect(boxes, "the crop boxes")
}

/// Python's `round` (ties to even) of a value >= 0, as an integer.
fn round_half_even(v: f64) -> usize {
    v.round_ties_even() as usize
}

fn plan(words: &[u32], height: usize, width: usize, spec: &ResizedCropSpec) -> CropBox {
    let area = (height * width) as f64;
    let (s0, s1) = spec.scale;
    let (l0, l1) = (spec.ratio.0.ln(), spec.ratio.1.ln());
    for t in words.chunks_exact(4) {
        let target = area * (s0 + (s1 - s0) * unit(t[0]));
        let aspect = (l0 + (l1 - l0) * unit(t[1])).exp();
        let w = round_half_even((target * aspect).sqrt());
        let h = round_half_even((target / aspect).sqrt());
        if 0 < w && w <= width && 0 < h && h <= height {
            return CropBox {
                top: below(t[2], height - h + 1),
                left: below(t[3], width - w + 1),
                height: h,
                width: w,
            };
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (mut w, mut h) = (width, height);
    if in_ratio < spec.ratio.0 {
        h = round_half_even(w as f64 / spec.ratio.0).clamp(1, height);
    } else if in_ratio > spec.ratio.1 {
        w = round_half_even(h as f64 * spec.ratio.1).clamp(1, width);
    }
    CropBox {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

/// The filter of one axis resized from `input` to `output`: output `i`
/// reads `count[i]` inputs from `start[i]` with weights
/// `weights[i * taps ..]` (zero beyond `count[i]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Taps {
    pub start: Vec<usize>,
    pub count: Vec<usize>,
    pub weights: Vec<f32>,
    pub taps: usize,
}

/// The triangle filter's weights (see the module docs); an error if its
/// tables do not fit in memory.
pub fn taps(input: usize, output: usize, antialias: bool) -> Result<Taps> {
    const WHAT: &str = "the resize filter's tables";
    let scale = input as f64 / output as f64;
    let fs = if antialias && scale > 1.0 { scale } else { 1.0 };
    let inv = 1.0 / fs;
    let center = |i: usize| (i as f64 + 0.5) * scale;
    let mut start = crate::alloc::with_capacity(output, WHAT)?;
    let mut count = crate::alloc::with_capacity(output, WHAT)?;
    for i in 0..output {
        let c = center(i);
        // `as i64` truncates toward zero, as C's `(int)` in Pillow.
        let lo = ((c - fs + 0.5) as i64).max(0);
        let hi = ((c + fs + 0.5) as i64).min(input as i64);
        let n = (hi - lo).max(1) as usize;
        let lo = (lo as usize).min(input - 1);
        start.push(lo);
        count.push(n.min(input - lo));
    }
    let taps = count.iter().copied().max().unwrap_or(1);
    let len = crate::alloc::product(&[output, taps], WHAT)?;
    let mut weights = crate::alloc::filled(len, 0f32, WHAT)?;
    let mut w: Vec<f64> = crate::alloc::with_capacity(taps, WHAT)?;
    for (i, out) in weights.chunks_exact_mut(taps).enumerate() {
        let c = center(i);
        w.clear();
        w.extend((0..count[i]).map(|j| {
            let x = (((j + start[i]) as f64 - c + 0.5) * inv).abs();
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        }));
        let total: f64 = w.iter().sum();
        for (o, &v) in out.iter_mut().zip(&w) {
            *o = if total != 0.0 { v / total } else { v } as f32;
        }
    }
    Ok(Taps {
        start,
        count,
        weights,
        taps,
    })
}

/// Writes `dst` (`batch` resized to the spec's output): each image's `box`
/// (from [`resized_crop_params`]) resized.
pub fn resized_crop<T: Pixel>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    spec: &ResizedCropSpec,
    boxes: &[CropBox],
) -> Result<()> {
    spec.validate(batch)?;
    let out = batch.resized(spec.out_h, spec.out_w);
    batch.check_len("images", src.len())?;
    out.check_len("out", dst.len())?;
    super::crop::check_params_len("boxes", batch.n, boxes.len())?;
    if boxes.iter().any(|b| {
        b.height == 0 || b.width == 0 || b.top + b.height > batch.h || b.left + b.width > batch.w
    }) {
        return Err(Error::Shape("boxes: a box leaves the image".into()));
    }
    let work = Images::new(src, dst, batch.image_len(), out.image_len());
    parallel::try_for_each_task(work, out.image_len(), |mut piece| {
        let mut outcome = Ok(());
        piece.for_each(|i, s, d| {
            if outcome.is_ok() {
                outcome = resize_image(s, d, batch, spec, boxes[i]);
            }
        });
        outcome
    })
}

/// The horizontal filter expanded to every value of an output row (`lanes`
/// values per pixel): value `o` is `sum_t weight[t][o] * row[index[t][o]]`,
/// where `row` holds the box's row followed by one zero (the index of the
/// taps beyond a pixel's count). Indices are `i32` so that the gathers use
/// 32-bit offsets (16 lanes per AVX-512 gather instead of 8).
struct RowFilter {
    index: Vec<Vec<i32>>,
    /// The index of the zero after the row.
    zero: i32,
    weight: Vec<Vec<f32>>,
    /// For two taps and a [`permute::Shape`]: per part of `part` output
    /// values, the first index of the `window` row values that all its taps
    /// read, or -1 if they spread wider (downscaling, or a border tap on
    /// the zero).
    bases: Vec<i32>,
}

/// Output values per block of the permuting horizontal pass.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const BLOCK: usize = 16;
/// The most row values a block may read (two AVX-512 registers): the room
/// left after the row.
const WINDOW: usize = 32;

impl RowFilter {
    fn new(taps: &Taps, lanes: usize, zero: usize, shape: Option<permute::Shape>) -> Result<Self> {
        const WHAT: &str = "the resize filter's tables";
        let values = crate::alloc::product(&[taps.start.len(), lanes], WHAT)?;
        let mut index = crate::alloc::with_capacity(taps.taps, WHAT)?;
        let mut weight = crate::alloc::with_capacity(taps.taps, WHAT)?;
        for _ in 0..taps.taps {
            index.push(crate::alloc::filled(values, zero as i32, WHAT)?);
            weight.push(crate::alloc::filled(values, 0f32, WHAT)?);
        }
        for (x, (&start, &count)) in taps.start.iter().zip(&taps.count).enumerate() {
            for t in 0..count {
                for c in 0..lanes {
                    index[t][x * lanes + c] = ((start + t) * lanes + c) as i32;
                    weight[t][x * lanes + c] = taps.weights[x * taps.taps + t];
                }
            }
        }
        // The zero slot (taps beyond a pixel's count) is not read through
        // the window: `permute` zeroes those lanes (or, for u8 rows, whose
        // values are all finite, lets their zero weight do it).
        let bases = match shape {
            Some(permute::Shape { part, window }) if taps.taps == 2 => {
                let bases = index[0]
                    .chunks_exact(part)
                    .zip(index[1].chunks_exact(part))
                    .map(|(a, b)| {
                        let read = a.iter().chain(b).copied().filter(|&i| i != zero as i32);
                        let lo = read.clone().min().unwrap_or(0);
                        let hi = read.max().unwrap_or(0);
                        if ((hi - lo) as usize) < window {
                            lo
                        } else {
                            -1
                        }
                    });
                crate::alloc::collect(bases, WHAT)?
            }
            _ => Vec::new(),
        };
        Ok(RowFilter {
            index,
            zero: zero as i32,
            weight,
            bases,
        })
    }
}

/// The largest box side (times the lanes) for `i32` row indices.
const MAX_ROW: usize = i32::MAX as usize - 1;

/// Resizes one image's box; stops (with [`Error::Cancelled`]) between
/// output rows when the call is cancelled.
fn resize_image<T: Pixel>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    spec: &ResizedCropSpec,
    b: CropBox,
) -> Result<()> {
    const WHAT: &str = "the resize buffers";
    let lanes = batch.lanes();
    crate::alloc::check_fits(table_bytes(b, spec, lanes), "the resize filter's tables")?;
    let ty = taps(b.height, spec.out_h, spec.antialias)?;
    let tx = taps(b.width, spec.out_w, spec.antialias)?;
    let span = b.width * lanes;
    // Read once: the level may be set again while this call runs.
    let shape = permute::shape();
    let filter = RowFilter::new(&tx, lanes, span, shape)?;
    let (in_row, out_row) = (batch.w * lanes, spec.out_w * lanes);
    let (in_plane, out_plane) = (in_row * batch.h, out_row * spec.out_h);
    // The box's row after the vertical pass, a zero after it, and room for
    // the window of the last block.
    let mut row = crate::alloc::filled(span + 1 + WINDOW, 0f32, WHAT)?;
    let permute = shape.is_some();
    // Large outputs do not stay in cache: stream them (no read of the
    // destination lines before writing them), as dropout does.
    let stream = permute
        && batch.n * out_plane * batch.planes() * std::mem::size_of::<T>()
            >= crate::regularization::STREAM_MIN_BYTES;
    let mut acc = crate::alloc::filled(out_row, 0f32, WHAT)?;
    vectorized(
        #[inline(always)]
        || {
            for (s, d) in src
                .chunks_exact(in_plane)
                .zip(dst.chunks_exact_mut(out_plane))
            {
                for (y, d_row) in d.chunks_exact_mut(out_row).enumerate() {
                    if crate::cancel::requested() {
                        return;
                    }
                    let first = b.top + ty.start[y];
                    let weights = &ty.weights[y * ty.taps..][..ty.count[y]];
                    let at = |t: usize| (first + t) * in_row + b.left * lanes;
                    let src_row = |t: usize| &s[at(t)..at(t) + span];
                    match *weights {
                        [w0] => vertical1(&mut row[..span], src_row(0), w0),
                        [w0, w1] => vertical2(&mut row[..span], src_row(0), src_row(1), w0, w1),
                        _ => {
                            for (t, &w) in weights.iter().enumerate() {
                                vertical(&mut row[..span], src_row(t), w, t == 0);
                            }
                        }
                    }
                    let (ix, wx) = (&filter.index, &filter.weight);
                    match tx.taps {
                        1 => horizontal_store::<T, 1>(d_row, &row, [&ix[0]], [&wx[0]]),
                        2 if permute => {
                            // SAFETY: `shape` is this CPU's; `row` has
                            // `WINDOW` values after every base.
                            unsafe {
                                permute::horizontal2(
                                    shape,
                                    d_row,
                                    &row,
                                    [&ix[0], &ix[1]],
                                    [&wx[0], &wx[1]],
                                    &filter.bases,
                                    filter.zero,
                                    stream,
                                )
                            }
                        }
                        2 => horizontal_store::<T, 2>(
                            d_row,
                            &row,
                            [&ix[0], &ix[1]],
                            [&wx[0], &wx[1]],
                        ),
                        3 => horizontal_store::<T, 3>(
                            d_row,
                            &row,
                            [&ix[0], &ix[1], &ix[2]],
                            [&wx[0], &wx[1], &wx[2]],
                        ),
                        k => {
                            for t in 0..k - 1 {
                                horizontal(&mut acc, &row, &ix[t], &wx[t], t == 0);
                            }
                            horizontal_last(d_row, &acc, &row, &ix[k - 1], &wx[k - 1]);
                        }
                    }
                }
            }
        },
    );
    if stream {
        permute::fence();
    }
    crate::cancel::check()
}

/// About the bytes of the tables and buffers [`resize_image`] allocates for
/// box `b` (an upper bound on the taps), to refuse them before any is
/// allocated when they cannot fit together.
fn table_bytes(b: CropBox, spec: &ResizedCropSpec, lanes: usize) -> usize {
    let max_taps = |input: usize, output: usize| {
        let scale = input as f64 / output as f64;
        let fs = if spec.antialias && scale > 1.0 {
            scale
        } else {
            1.0
        };
        ((2.0 * fs).ceil() as usize)
            .saturating_add(2)
            .min(input.max(1))
    };
    let axis = |input: usize, output: usize| {
        let taps = max_taps(input, output);
        (
            output,
            taps,
            output.saturating_mul(taps.saturating_mul(4).saturating_add(16)),
        )
    };
    let (_, _, y_bytes) = axis(b.height, spec.out_h);
    let (out_w, taps_x, x_bytes) = axis(b.width, spec.out_w);
    let values = out_w.saturating_mul(lanes);
    let row_filter = values.saturating_mul(taps_x).saturating_mul(8);
    let rows = b
        .width
        .saturating_mul(lanes)
        .saturating_add(values)
        .saturating_mul(4);
    y_bytes
        .saturating_add(x_bytes)
        .saturating_add(row_filter)
        .saturating_add(rows)
}

/// `row = w * src` (first tap) or `row += w * src`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // index loops vectorize without LTO
fn vertical<T: Pixel>(row: &mut [f32], src: &[T], w: f32, first: bool) {
    let src = &src[..row.len()];
    if first {
        for k in 0..row.len() {
            row[k] = w * src[k].to_f32();
        }
    } else {
        for k in 0..row.len() {
            row[k] += w * src[k].to_f32();
        }
    }
}

/// `row = w0 * a`.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn vertical1<T: Pixel>(row: &mut [f32], a: &[T], w0: f32) {
    let a = &a[..row.len()];
    for k in 0..row.len() {
        row[k] = w0 * a[k].to_f32();
    }
}

/// `row = w0 * a + w1 * b`, the two taps of bilinear upscaling fused.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn vertical2<T: Pixel>(row: &mut [f32], a: &[T], b: &[T], w0: f32, w1: f32) {
    let (a, b) = (&a[..row.len()], &b[..row.len()]);
    for k in 0..row.len() {
        row[k] = w0 * a[k].to_f32() + w1 * b[k].to_f32();
    }
}

/// `row[index[o]]`, unchecked.
#[inline(always)]
fn tap(row: &[f32], index: i32) -> f32 {
    debug_assert!((index as usize) < row.len());
    // SAFETY: `RowFilter::new` makes every index non-negative and below
    // `row.len()` (the box's values and the zero after them).
    unsafe { *row.get_unchecked(index as usize) }
}

/// The result of an output value: rounded and saturated for integers.
#[inline(always)]
fn output<T: Pixel>(acc: f32) -> T {
    if T::INTEGER {
        T::from_f32(finish::<T>(acc))
    } else {
        T::from_f32(acc)
    }
}

/// `dst[o] = sum_t weight[t][o] * row[index[t][o]]` for `K` taps, summed
/// in tap order.
#[inline(always)]
fn horizontal_store<T: Pixel, const K: usize>(
    dst: &mut [T],
    row: &[f32],
    index: [&[i32]; K],
    weight: [&[f32]; K],
) {
    let n = dst.len();
    let index = index.map(|i| &i[..n]);
    let weight = weight.map(|w| &w[..n]);
    for o in 0..n {
        let mut acc = weight[0][o] * tap(row, index[0][o]);
        for t in 1..K {
            acc += weight[t][o] * tap(row, index[t][o]);
        }
        dst[o] = output::<T>(acc);
    }
}

/// `acc = w * row[index]` (first tap) or `acc += w * row[index]`.
#[inline(always)]
fn horizontal(acc: &mut [f32], row: &[f32], index: &[i32], weight: &[f32], first: bool) {
    let n = acc.len();
    let (index, weight) = (&index[..n], &weight[..n]);
    for o in 0..n {
        let p = weight[o] * tap(row, index[o]);
        acc[o] = if first { p } else { acc[o] + p };
    }
}

/// The last tap of [`horizontal`], stored.
#[inline(always)]
fn horizontal_last<T: Pixel>(
    dst: &mut [T],
    acc: &[f32],
    row: &[f32],
    index: &[i32],
    weight: &[f32],
) {
    let n = dst.len();
    let (acc, index, weight) = (&acc[..n], &index[..n], &weight[..n]);
    for o in 0..n {
        dst[o] = output::<T>(acc[o] + weight[o] * tap(row, index[o]));
    }
}

/// The two-tap horizontal pass (bilinear upscaling) with permutes instead
/// of gathers: the taps of a part of consecutive output values read at
/// most `window` consecutive row values, which are loaded in two registers
/// and picked by index (AVX-512: `vpermt2ps`, 16 values from 32; AVX2:
/// two `vpermps` and a blend, 8 values from 16, a block being two parts).
/// The same multiplies and adds in the same order as [`horizontal_store`],
/// so the same bits.
mod permute {
    /// The parts a level's permuting pass works in (see [`super::RowFilter`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub struct Shape {
        /// Output values per part (one register).
        pub part: usize,
        /// Row values a part may read (two registers).
        pub window: usize,
    }

    /// The shape of this level's permuting pass, None where it has none.
    pub fn shape() -> Option<Shape> {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::simd::{self, Level};
            match simd::level() {
                Level::Avx512 => Some(Shape {
                    part: 16,
                    window: 32,
                }),
                Level::Avx2 => Some(Shape {
                    part: 8,
                    window: 16,
                }),
                _ => None,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    /// Orders the streaming stores before the image is handed back.
    pub fn fence() {
        // SAFETY: SSE2, part of x86_64.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::x86_64::_mm_sfence()
        }
    }

    /// # Safety
    /// `shape` is [`shape`]'s answer on this CPU (not None); `row` has
    /// `WINDOW` values from every non-negative `bases[b]`, and part `b`'s
    /// indices lie in its window.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn horizontal2<T: super::Pixel>(
        shape: Option<Shape>,
        dst: &mut [T],
        row: &[f32],
        index: [&[i32]; 2],
        weight: [&[f32]; 2],
        bases: &[i32],
        zero: i32,
        stream: bool,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::any::TypeId;
            // The kernels load and store u8 and f32 outputs; other types
            // take `horizontal_store` below, as every block of theirs would.
            let id = TypeId::of::<T>();
            if id == TypeId::of::<u8>() || id == TypeId::of::<f32>() {
                let n = dst.len();
                let (index, weight) = (index.map(|i| &i[..n]), weight.map(|w| &w[..n]));
                match shape.map(|s| s.part) {
                    Some(16) => {
                        return x86::avx512::<T>(dst, row, index, weight, bases, zero, stream)
                    }
                    Some(8) => return x86::avx2::<T>(dst, row, index, weight, bases, zero, stream),
                    _ => {}
                }
            }
        }
        let _ = (shape, bases, zero, stream);
        super::horizontal_store::<T, 2>(dst, row, index, weight)
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::super::{horizontal_store, Pixel, BLOCK};
        use std::any::TypeId;
        use std::arch::x86_64::*;
        use std::ops::Range;

        /// The fallback for the block of outputs `part`.
        #[inline(always)]
        fn scalar<T: Pixel>(
            dst: &mut [T],
            row: &[f32],
            index: [&[i32]; 2],
            weight: [&[f32]; 2],
            part: Range<usize>,
        ) {
            horizontal_store::<T, 2>(
                &mut dst[part.clone()],
                row,
                [&index[0][part.clone()], &index[1][part.clone()]],
                [&weight[0][part.clone()], &weight[1][part]],
            );
        }

        /// Stores the 16 bytes `packed` at output `o` of a u8 `dst`
        /// (streamed when asked and aligned).
        ///
        /// # Safety
        /// `T` is u8 and `dst` has 16 values from `o`.
        #[inline(always)]
        unsafe fn put_bytes<T>(dst: &mut [T], o: usize, packed: __m128i, stream: bool) {
            let at = dst.as_mut_ptr().add(o).cast::<__m128i>();
            if stream && (at as usize).is_multiple_of(16) {
                _mm_stream_si128(at, packed);
            } else {
                _mm_storeu_si128(at, packed);
            }
        }

        /// # Safety
        /// As [`super::horizontal2`], with AVX-512F (16 values per part);
        /// `T` is u8 or f32; `index` and `weight` have `dst.len()` values.
        #[target_feature(enable = "avx512f")]
        pub unsafe fn avx512<T: Pixel>(
            dst: &mut [T],
            row: &[f32],
            index: [&[i32]; 2],
            weight: [&[f32]; 2],
            bases: &[i32],
            zero: i32,
            stream: bool,
        ) {
            let n = dst.len();
            let ([i0, i1], [w0, w1]) = (index, weight);
            let blocks = (n / BLOCK).min(bases.len());
            let bytes = TypeId::of::<T>() == TypeId::of::<u8>();
            let zero = _mm512_set1_epi32(zero);
            for (b, &base) in bases[..blocks].iter().enumerate() {
                let o = b * BLOCK;
                if base < 0 {
                    scalar(dst, row, index, weight, o..o + BLOCK);
                    continue;
                }
                let p = row.as_ptr().add(base as usize);
                let (lo, hi) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                let shift = _mm512_set1_epi32(base);
                let fetch = |index: &[i32]| {
                    let at = _mm512_loadu_si512(index.as_ptr().add(o).cast());
                    let v = _mm512_permutex2var_ps(lo, _mm512_sub_epi32(at, shift), hi);
                    // Lanes on the zero slot read 0, as the gather would.
                    _mm512_maskz_mov_ps(_mm512_cmpneq_epi32_mask(at, zero), v)
                };
                let (v0, v1) = (fetch(i0), fetch(i1));
                let acc = _mm512_add_ps(
                    _mm512_mul_ps(_mm512_loadu_ps(w0.as_ptr().add(o)), v0),
                    _mm512_mul_ps(_mm512_loadu_ps(w1.as_ptr().add(o)), v1),
                );
                if bytes {
                    // `finish` and `from_f32` of u8: clamp to [0, 255], then
                    // the low byte of `v + 2^23` (rounded, ties to even).
                    let v = _mm512_min_ps(
                        _mm512_max_ps(acc, _mm512_setzero_ps()),
                        _mm512_set1_ps(255.0),
                    );
                    let v = _mm512_add_ps(v, _mm512_set1_ps(8_388_608.0));
                    let packed = _mm512_cvtepi32_epi8(_mm512_castps_si512(v));
                    put_bytes(dst, o, packed, stream);
                } else {
                    let at = dst.as_mut_ptr().add(o).cast::<f32>();
                    if stream && (at as usize).is_multiple_of(64) {
                        _mm512_stream_ps(at, acc);
                    } else {
                        _mm512_storeu_ps(at, acc);
                    }
                }
            }
            let rest = blocks * BLOCK..n;
            scalar(dst, row, index, weight, rest);
        }

        /// # Safety
        /// As [`super::horizontal2`], with AVX2 (8 values per part, two
        /// parts per block); `T` and the lengths as for [`avx512`].
        #[target_feature(enable = "avx2")]
        pub unsafe fn avx2<T: Pixel>(
            dst: &mut [T],
            row: &[f32],
            index: [&[i32]; 2],
            weight: [&[f32]; 2],
            bases: &[i32],
            zero: i32,
            stream: bool,
        ) {
            const PART: usize = 8;
            let n = dst.len();
            let ([i0, i1], [w0, w1]) = (index, weight);
            let blocks = (n / BLOCK).min(bases.len() / 2);
            let bytes = TypeId::of::<T>() == TypeId::of::<u8>();
            let zero = _mm256_set1_epi32(zero);
            // The 8 values of part `o / 8` (its window at `base`).
            let part = |o: usize, base: i32| {
                let p = row.as_ptr().add(base as usize);
                let (lo, hi) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(PART)));
                let shift = _mm256_set1_epi32(base);
                let fetch = |index: &[i32]| {
                    let at = _mm256_loadu_si256(index.as_ptr().add(o).cast());
                    let rel = _mm256_sub_epi32(at, shift);
                    // `vpermps` reads the low 3 bits of `rel`; bit 3 (moved
                    // to the sign, which `vblendvps` reads) picks `hi`.
                    let pick = _mm256_castsi256_ps(_mm256_slli_epi32::<28>(rel));
                    let v = _mm256_blendv_ps(
                        _mm256_permutevar8x32_ps(lo, rel),
                        _mm256_permutevar8x32_ps(hi, rel),
                        pick,
                    );
                    if bytes {
                        // A lane on the zero slot has weight 0 and reads
                        // some finite value of the window (a u8 row has no
                        // others): its product is +0, as the zero's.
                        return v;
                    }
                    // Lanes on the zero slot read 0, as the gather would.
                    let on_zero = _mm256_castsi256_ps(_mm256_cmpeq_epi32(at, zero));
                    _mm256_andnot_ps(on_zero, v)
                };
                let (v0, v1) = (fetch(i0), fetch(i1));
                _mm256_add_ps(
                    _mm256_mul_ps(_mm256_loadu_ps(w0.as_ptr().add(o)), v0),
                    _mm256_mul_ps(_mm256_loadu_ps(w1.as_ptr().add(o)), v1),
                )
            };
            for b in 0..blocks {
                let o = b * BLOCK;
                let (b0, b1) = (bases[2 * b], bases[2 * b + 1]);
                if b0 < 0 || b1 < 0 {
                    scalar(dst, row, index, weight, o..o + BLOCK);
                    continue;
                }
                let (a0, a1) = (part(o, b0), part(o + PART, b1));
                if bytes {
                    // `finish` and `from_f32` of u8 (clamp to [0, 255],
                    // round half to even) as `vcvtps2dq` (half to even)
                    // and saturating packs: the same bytes for NaN (0) and
                    // every value below 2^31 (a sum of u8 values with
                    // weights of sum 1 is below 256).
                    let words = _mm256_packus_epi32(_mm256_cvtps_epi32(a0), _mm256_cvtps_epi32(a1));
                    // 32-bit words: outputs 0-3, 8-11 (twice) | 4-7, 12-15
                    let narrow = _mm256_packus_epi16(words, words);
                    let order = _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0);
                    let packed = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(narrow, order));
                    put_bytes(dst, o, packed, stream);
                } else {
                    let at = dst.as_mut_ptr().add(o).cast::<f32>();
                    if stream && (at as usize).is_multiple_of(32) {
                        _mm256_stream_ps(at, a0);
                        _mm256_stream_ps(at.add(PART), a1);
                    } else {
                        _mm256_storeu_ps(at, a0);
                        _mm256_storeu_ps(at.add(PART), a1);
                    }
                }
            }
            let rest = blocks * BLOCK..n;
            scalar(dst, row, index, weight, rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::Layout;
    use crate::random::Stream;

    #[test]
    fn upscaling_is_bilinear_with_clamped_borders() {
        let t = taps(2, 4, true).unwrap();
        assert_eq!(t.start, [0, 0, 0, 1]);
        // Centres at 0.25, 0.75, 1.25, 1.75 (in pixel units: -0.25, 0.25, 0.75, 1.25).
        assert_eq!(t.weights[0..2], [1.0, 0.0]);
        assert_eq!(t.weights[t.taps..t.taps + 2], [0.75, 0.25]);
        assert_eq!(t.weights[2 * t.taps..2 * t.taps + 2], [0.25, 0.75]);
        assert_eq!(t.weights[3 * t.taps], 1.0);
        assert_eq!(taps(2, 4, false).unwrap(), t);
    }

    #[test]
    fn downscaling_antialias_averages() {
        // 4 -> 2 with antialias: a triangle of half-width 2 over 3 pixels
        // (weights 1/8, 3/8, 3/8, 1/8 truncated by the window).
        let t = taps(4, 2, true).unwrap();
        assert_eq!(t.start, [0, 1]);
        assert_eq!(t.count, [3, 3]);
        let w0 = &t.weights[..3];
        assert!((w0[0] - 3.0 / 7.0).abs() < 1e-7 && (w0[2] - 1.0 / 7.0).abs() < 1e-7);
        // Without antialias: bilinear at 0.5 and 2.5 -> pixels (0, 1) and (2, 3) halved.
        let t = taps(4, 2, false).unwrap();
        assert_eq!(t.start, [0, 2]);
        assert_eq!(t.weights[..2], [0.5, 0.5]);
    }

    #[test]
    fn identity_box_copies() {
        let batch = Batch {
            n: 1,
            h: 3,
            w: 4,
            c: 3,
            layout: Layout::Nhwc,
        };
        let src: Vec<u8> = (0..36).map(|v| (v * 7) as u8).collect();
        let mut dst = vec![0u8; 36];
        let spec = ResizedCropSpec {
            out_h: 3,
            out_w: 4,
            scale: (0.08, 1.0),
            ratio: (0.75, 4.0 / 3.0),
            antialias: true,
        };
        let b = CropBox {
            top: 0,
            left: 0,
            height: 3,
            width: 4,
        };
        resized_crop(&src, &mut dst, batch, &spec, &[b]).unwrap();
        assert_eq!(dst, src);
    }

    #[test]
    fn boxes_fit_and_fallback_is_centred() {
        let batch = Batch {
            n: 200,
            h: 30,
            w: 50,
            c: 1,
            layout: Layout::Nchw,
        };
        let spec = ResizedCropSpec {
            out_h: 8,
            out_w: 8,
            scale: (0.08, 1.0),
            ratio: (0.75, 4.0 / 3.0),
            antialias: true,
        };
        let mut s = Stream::new(3);
        let draw = s.reserve((batch.n * WORDS) as u64).unwrap();
        for b in resized_crop_params(draw, batch, &spec).unwrap() {
            assert!(b.height >= 1 && b.top + b.height <= 30);
            assert!(b.width >= 1 && b.left + b.width <= 50);
        }
        // A scale no try can meet: the centred fallback, clamped to the ratio.
        let spec = ResizedCropSpec {
            scale: (2.0, 3.0),
            ..spec
        };
        let b = resized_crop_params(draw, batch, &spec).unwrap()[0];
        assert_eq!(
            b,
            CropBox {
                top: 0,
                left: 5,
                height: 30,
                width: 40
            }
        );
    }
}
