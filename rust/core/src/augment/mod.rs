//! Data augmentation on image batches: random flips, random crops with
//! padding, random resized crops and colour jitter, with the semantics of
//! torchvision's `transforms.v2`, for `u8` and `f32` pixels in the NHWC or
//! NCHW layout.
//!
//! Every call draws a fixed number of random 32-bit words per image from
//! one reserved range of a [`crate::random`] stream: image `i` uses words
//! `i * K .. (i + 1) * K` of the call ([`flip::WORDS`], [`crop::WORDS`],
//! [`resize::WORDS`], [`color::WORDS`]), whatever its parameters decide.
//! So an image's transform is a pure function of (stream state, image
//! index), identical for any thread count, and the NumPy reference
//! (`lec7rs.reference.augment`) reproduces it from the same state. The
//! derived values are
//!
//! ```text
//! unit(w)     = (w >> 8) * 2^-24             a uniform in [0, 1), 24 bits
//! below(w, n) = (w * n) >> 32                an integer in [0, n), bias < n / 2^32
//! ```
//!
//! Each call first plans (the per-image parameters, from the words, on the
//! calling thread: a few operations per image), then applies the plan in
//! parallel over whole images ([`parallel::for_each_task`]). The
//! arithmetic is plain f32 in a fixed order without FMA, written as simple
//! loops that LLVM vectorizes inside the `#[target_feature]` function of
//! the current SIMD level, so every level and thread count gives the same
//! bits. `u8` results are rounded to nearest (ties to even) and saturated
//! to [0, 255], never wrapped.

pub mod color;
pub mod crop;
pub mod flip;
pub mod resize;

pub use color::{color_jitter, jitter_params, Jitter, JitterParams, Range};
pub use crop::{crop, crop_params, CropSpec, PadMode};
pub use flip::{flip, flip_params, FlipAxis};
pub use resize::{resized_crop, resized_crop_params, CropBox, ResizedCropSpec};

use crate::error::{Error, Result};
use crate::parallel::{split_mut, split_ref, Split};
use crate::random::{fill_words, Draw};
use crate::simd::{self, Kernel, Lanes};

/// Where the channels are: `(N, H, W, C)` or `(N, C, H, W)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Nhwc,
    Nchw,
}

/// The sizes of a C-contiguous batch of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub layout: Layout,
}

/// The largest image side: indices and the `below` products stay far from
/// overflow.
pub const MAX_SIDE: usize = i32::MAX as usize;

impl Batch {
    /// Elements per image.
    pub fn image_len(&self) -> usize {
        self.h * self.w * self.c
    }

    /// Elements of the batch.
    pub fn len(&self) -> usize {
        self.n * self.image_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same batch with images of `h x w`.
    pub fn resized(&self, h: usize, w: usize) -> Batch {
        Batch { h, w, ..*self }
    }

    /// Geometric transforms see an image as `planes` planes of `h` rows of
    /// `w` pixels of `lanes` values: one interleaved plane (NHWC) or one
    /// plane per channel (NCHW).
    pub fn planes(&self) -> usize {
        match self.layout {
            Layout::Nhwc => 1,
            Layout::Nchw => self.c,
        }
    }

    /// Values per pixel within a plane (see [`Batch::planes`]).
    pub fn lanes(&self) -> usize {
        match self.layout {
            Layout::Nhwc => self.c,
            Layout::Nchw => 1,
        }
    }

    /// Checks the sides against [`MAX_SIDE`] and that the batch's size fits
    /// in memory.
    pub fn validate(&self, what: &str) -> Result<()> {
        if self.h > MAX_SIDE || self.w > MAX_SIDE || self.c > MAX_SIDE {
            return Err(Error::Shape(format!(
                "{what}: image sides and channels must be at most {MAX_SIDE}"
            )));
        }
        self.n
            .checked_mul(self.h)
            .and_then(|v| v.checked_mul(self.w))
            .and_then(|v| v.checked_mul(self.c))
            .map(|_| ())
            .ok_or_else(|| Error::Shape(format!("{what}: the batch is too large")))
    }

    pub(crate) fn check_len(&self, what: &str, len: usize) -> Result<()> {
        if len == self.len() {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                what: what.to_string(),
                expected: self.len(),
                got: len,
            })
        }
    }
}

/// A pixel type: `u8` (values 0..=255) or `f32` (values in [0, 1] by
/// convention, as torchvision's float images).
pub trait Pixel: Copy + Default + Send + Sync + PartialEq + std::fmt::Debug + 'static {
    /// The largest value: 255 or 1.
    const MAX: f32;
    /// Whether results are rounded to integers.
    const INTEGER: bool;
    fn to_f32(self) -> f32;
    /// The pixel of a value already clamped to [0, MAX] and, for integer
    /// pixels, rounded (a plain conversion for `f32`).
    fn from_f32(v: f32) -> Self;
    /// The pixel of a fill value, checked by [`Pixel::check_fill`].
    fn from_fill(v: f64) -> Self;
    /// Whether `v` is a value of this pixel type.
    fn check_fill(v: f64) -> Result<()>;
}

impl Pixel for u8 {
    const MAX: f32 = 255.0;
    const INTEGER: bool = true;

    #[inline(always)]
    fn to_f32(self) -> f32 {
        f32::from(self)
    }

    /// For `v` in [0, 255]: `v + 2^23` has a unit last place, so its low
    /// mantissa byte is `v` rounded (ties to even). Integer operations only:
    /// the saturating `f32 as u8` / `as i32` casts do not vectorize on x86.
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        (v + 8_388_608.0).to_bits() as u8
    }

    fn from_fill(v: f64) -> Self {
        v as u8
    }

    fn check_fill(v: f64) -> Result<()> {
        if (0.0..=255.0).contains(&v) && v.fract() == 0.0 {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter {
                name: "fill".into(),
                value: v,
                expected: "an integer in [0, 255] for uint8 images",
            })
        }
    }
}

impl Pixel for f32 {
    const MAX: f32 = 1.0;
    const INTEGER: bool = false;

    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }

    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }

    fn from_fill(v: f64) -> Self {
        v as f32
    }

    fn check_fill(v: f64) -> Result<()> {
        if v.is_nan() {
            Err(Error::InvalidHyperparameter {
                name: "fill".into(),
                value: v,
                expected: "a number",
            })
        } else {
            Ok(())
        }
    }
}

/// `v` rounded to the nearest integer, ties to even, for `0 <= v <= 2^23`:
/// adding and subtracting 2^23 leaves no fraction bits (IEEE round to
/// nearest even), with two adds that every SIMD level has.
#[inline(always)]
pub(crate) fn round_even(v: f32) -> f32 {
    const SHIFT: f32 = 8_388_608.0;
    (v + SHIFT) - SHIFT
}

/// `v` clamped to [0, T::MAX] and, for integer pixels, rounded: the last
/// step of every colour operation. NaN stays NaN (float pixels).
#[inline(always)]
pub(crate) fn finish<T: Pixel>(v: f32) -> f32 {
    let v = if v < 0.0 {
        0.0
    } else if v > T::MAX {
        T::MAX
    } else {
        v
    };
    if T::INTEGER {
        round_even(v)
    } else {
        v
    }
}

/// A uniform in [0, 1) from one word: `(w >> 8) * 2^-24`.
#[inline]
pub fn unit(word: u32) -> f64 {
    f64::from(word >> 8) * (1.0 / (1u32 << 24) as f64)
}

/// An integer in [0, n) from one word: `(w * n) >> 32`.
#[inline]
pub fn below(word: u32, n: usize) -> usize {
    ((u64::from(word) * n as u64) >> 32) as usize
}

/// The `n * k` words of a call for `n` images of `k` words each.
pub(crate) fn words(draw: Draw, n: usize, k: usize) -> Result<Vec<u32>> {
    let len = crate::alloc::product(&[n, k], "the call's random words")?;
    let mut words = crate::alloc::filled(len, 0u32, "the call's random words")?;
    fill_words(draw, 0, &mut words)?;
    Ok(words)
}

/// The words a call for `n` images of `k` words each must reserve.
pub fn call_words(n: usize, k: usize) -> u64 {
    n as u64 * k as u64
}

/// A closure run as a [`Kernel`], compiled inside the `#[target_feature]`
/// function of the current SIMD level so that its plain loops are
/// vectorized for that level.
struct Vectorized<F>(F);

impl<R, F: FnOnce() -> R> Kernel<f32> for Vectorized<F> {
    type Output = R;

    #[inline(always)]
    unsafe fn run<V: Lanes<f32>>(self) -> R {
        (self.0)()
    }
}

/// Runs `f` compiled for the current SIMD level. Mark `f`
/// `#[inline(always)]`, and every function it calls: a function that is not
/// inlined is compiled without the level's instruction set.
#[inline]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    simd::dispatch::<f32, _>(Vectorized(f))
}

/// The source and destination images of a parallel piece: whole images,
/// `first` the index of the first one in the batch.
pub(crate) struct Images<'a, S, D> {
    pub src: &'a [S],
    pub dst: &'a mut [D],
    pub src_len: usize,
    pub dst_len: usize,
    pub first: usize,
}

impl<'a, S, D> Images<'a, S, D> {
    pub fn new(src: &'a [S], dst: &'a mut [D], src_len: usize, dst_len: usize) -> Self {
        Images {
            src,
            dst,
            src_len,
            dst_len,
            first: 0,
        }
    }

    /// Calls `f(index in the batch, source image, destination image)` for
    /// each image of the piece, in order.
    #[inline(always)]
    pub fn for_each(&mut self, mut f: impl FnMut(usize, &[S], &mut [D])) {
        let (sl, dl) = (self.src_len, self.dst_len);
        for k in 0..self.count() {
            let s = &self.src[k * sl..(k + 1) * sl];
            let d = &mut self.dst[k * dl..(k + 1) * dl];
            f(self.first + k, s, d);
        }
    }

    fn count(&self) -> usize {
        self.dst
            .len()
            .checked_div(self.dst_len)
            .or_else(|| self.src.len().checked_div(self.src_len))
            .unwrap_or(0)
    }
}

impl<S: Sync, D: Send> Split for Images<'_, S, D> {
    fn len(&self) -> usize {
        self.count()
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let (s0, s1) = split_ref(self.src, mid * self.src_len);
        let (d0, d1) = split_mut(self.dst, mid * self.dst_len);
        (
            Images {
                src: s0,
                dst: d0,
                src_len: self.src_len,
                dst_len: self.dst_len,
                first: self.first,
            },
            Images {
                src: s1,
                dst: d1,
                src_len: self.src_len,
                dst_len: self.dst_len,
                first: self.first + mid,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_even_ties() {
        for (v, want) in [
            (0.0, 0.0),
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (254.5, 254.0),
            (254.50002, 255.0),
            (3.4999998, 3.0),
            (255.0, 255.0),
        ] {
            assert_eq!(round_even(v), want, "{v}");
        }
    }

    #[test]
    fn finish_clamps_and_rounds() {
        assert_eq!(finish::<u8>(-3.0), 0.0);
        assert_eq!(finish::<u8>(300.0), 255.0);
        assert_eq!(finish::<u8>(7.6), 8.0);
        assert_eq!(finish::<f32>(1.5), 1.0);
        assert_eq!(finish::<f32>(0.25), 0.25);
        assert!(finish::<f32>(f32::NAN).is_nan());
    }

    #[test]
    fn below_and_unit_ranges() {
        assert_eq!(below(u32::MAX, 10), 9);
        assert_eq!(below(0, 10), 0);
        assert_eq!(below(1 << 31, 2), 1);
        assert_eq!(unit(0), 0.0);
        assert!(unit(u32::MAX) < 1.0);
    }

    #[test]
    fn images_split_and_iterate() {
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 6];
        let work = Images::new(&src, &mut dst, 4, 2);
        assert_eq!(work.len(), 3);
        let (a, mut b) = work.split_at(1);
        assert_eq!((a.len(), b.len(), b.first), (1, 2, 1));
        let mut seen = Vec::new();
        b.for_each(|i, s, d| {
            d[0] = s[0];
            seen.push((i, s.to_vec()));
        });
        assert_eq!(seen, vec![(1, vec![4, 5, 6, 7]), (2, vec![8, 9, 10, 11])]);
        assert_eq!(dst, vec![0, 0, 4, 0, 8, 0]);
    }
}
