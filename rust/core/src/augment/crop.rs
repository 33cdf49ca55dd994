//! Random crops (torchvision's `RandomCrop`): pad each image by
//! `(left, top, right, bottom)`, then cut an `out_h x out_w` window at a
//! random offset of the padded image:
//!
//! ```text
//! top  = below(word(2 i),     H + pad_top + pad_bottom - out_h + 1)
//! left = below(word(2 i + 1), W + pad_left + pad_right - out_w + 1)
//! out[y, x] = padded[top + y, left + x]
//! ```
//!
//! The padded image is never built: each output row is the source row it
//! maps to (a copy of the in-bounds run, border pixels mapped one by one),
//! with the padding modes of `np.pad` / torchvision: `constant` (the fill
//! value), `edge` (the border pixel), `reflect` (mirrored without
//! repeating the border: `.. 2 1 | 0 1 2 ..`) and `symmetric` (mirrored with
//! it: `.. 1 0 | 0 1 ..`), for any padding width (repeated mirroring, as
//! `np.pad`; torchvision refuses `reflect` wider than the image).

use super::{below, words, Batch, Images, Pixel};
use crate::error::{Error, Result};
use crate::parallel;
use crate::random::Draw;

/// Random words per image.
pub const WORDS: usize = 2;

/// How the padding is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Edge,
    Reflect,
    Symmetric,
}

impl PadMode {
    /// The source index of padded index `i` (relative to the image, which
    /// has `n >= 1` pixels along this axis), `None` for the fill value.
    #[inline]
    pub fn map(self, i: i64, n: i64) -> Option<i64> {
        if (0..n).contains(&i) {
            return Some(i);
        }
        match self {
            PadMode::Constant => None,
            PadMode::Edge => Some(i.clamp(0, n - 1)),
            PadMode::Reflect => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                Some(if m >= n { period - m } else { m })
            }
            PadMode::Symmetric => {
                let period = 2 * n;
                let m = i.rem_euclid(period);
                Some(if m >= n { period - 1 - m } else { m })
            }
        }
    }
}

/// A random crop: output size, padding `[left, top, right, bottom]`, mode
/// and the constant fill value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropSpec {
    pub out_h: usize,
    pub out_w: usize,
    pub pad: [usize; 4],
    pub mode: PadMode,
    pub fill: f64,
}

impl CropSpec {
    /// The padded image's `(height, width)` for input `batch`.
    pub fn padded(&self, batch: Batch) -> (usize, usize) {
        let [l, t, r, b] = self.pad;
        (
            batch.h.saturating_add(t).saturating_add(b),
            batch.w.saturating_add(l).saturating_add(r),
        )
    }

    /// Checks the spec against the input: non-empty images, a positive
    /// output no larger than the padded image, a fill value of `T`.
    pub fn validate<T: Pixel>(&self, batch: Batch) -> Result<()> {
        batch.validate("images")?;
        if self.out_h == 0 || self.out_w == 0 {
            return Err(Error::Shape(format!(
                "size: the crop must be at least 1x1, got {}x{}",
                self.out_h, self.out_w
            )));
        }
        if batch.h == 0 || batch.w == 0 {
            return Err(Error::Shape(format!(
                "images: cannot crop empty images ({}x{})",
                batch.h, batch.w
            )));
        }
        if self.pad.iter().any(|&p| p > super::MAX_SIDE) {
            return Err(Error::Shape(format!(
                "padding: at most {} per side",
                super::MAX_SIDE
            )));
        }
        let (ph, pw) = self.padded(batch);
        if self.out_h > ph || self.out_w > pw {
            return Err(Error::Shape(format!(
                "size: the crop {}x{} is larger than the padded image {ph}x{pw} \
                 ({}x{} plus padding {:?} as (left, top, right, bottom))",
                self.out_h, self.out_w, batch.h, batch.w, self.pad
            )));
        }
        if self.mode == PadMode::Constant {
            T::check_fill(self.fill)?;
        }
        Ok(())
    }
}

pub(crate) fn check_params_len(what: &str, expected: usize, got: usize) -> Result<()> {
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

/// The `(top, left)` offset in the padded image of each of `batch.n`
/// crops, from words `0 .. 2 n` of `draw` (the spec validated first).
pub fn crop_params(draw: Draw, batch: Batch, spec: &CropSpec) -> Result<Vec<(usize, usize)>> {
    let (ph, pw) = spec.padded(batch);
    let words = words(draw, batch.n, WORDS)?;
    let offsets = words.chunks_exact(WORDS).map(|w| {
        (
            below(w[0], ph - spec.out_h + 1),
            below(w[1], pw - spec.out_w + 1),
        )
    });
    crate::alloc::collect(offsets, "the crop offsets")
}

/// Writes the crops `dst` (`batch` resized to the spec's output) of `src`
/// at `offsets` (from [`crop_params`]).
pub fn crop<T: Pixel>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    spec: &CropSpec,
    offsets: &[(usize, usize)],
) -> Result<()> {
    spec.validate::<T>(batch)?;
    let out = batch.resized(spec.out_h, spec.out_w);
    batch.check_len("images", src.len())?;
    out.check_len("out", dst.len())?;
    check_params_len("offsets", batch.n, offsets.len())?;
    let (ph, pw) = spec.padded(batch);
    if offsets
        .iter()
        .any(|&(t, l)| t + spec.out_h > ph || l + spec.out_w > pw)
    {
        return Err(Error::Shape(
            "offsets: a crop leaves the padded image".into(),
        ));
    }
    let fill = T::from_fill(spec.fill);
    let work = Images::new(src, dst, batch.image_len(), out.image_len());
    parallel::for_each_task(work, out.image_len(), |mut piece| {
        piece.for_each(|i, s, d| crop_image(s, d, batch, spec, offsets[i], fill))
    })
}

fn crop_image<T: Copy>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    spec: &CropSpec,
    (top, left): (usize, usize),
    fill: T,
) {
    let lanes = batch.lanes();
    let (in_row, out_row) = (batch.w * lanes, spec.out_w * lanes);
    let (in_plane, out_plane) = (in_row * batch.h, out_row * spec.out_h);
    let [pad_l, pad_t, ..] = spec.pad;
    let (w, h) = (batch.w as i64, batch.h as i64);
    // Output columns `x0 .. x1` read source columns `x0 + dx ..` directly.
    let dx = left as i64 - pad_l as i64;
    let x0 = (-dx).clamp(0, spec.out_w as i64) as usize;
    let x1 = (w - dx).clamp(x0 as i64, spec.out_w as i64) as usize;
    for (s, d) in src
        .chunks_exact(in_plane)
        .zip(dst.chunks_exact_mut(out_plane))
    {
        for (y, d_row) in d.chunks_exact_mut(out_row).enumerate() {
            let sy = (top + y) as i64 - pad_t as i64;
            let Some(sy) = spec.mode.map(sy, h) else {
                d_row.fill(fill);
                continue;
            };
            let s_row = &s[sy as usize * in_row..(sy as usize + 1) * in_row];
            if x1 > x0 {
                let from = (x0 as i64 + dx) as usize * lanes;
                d_row[x0 * lanes..x1 * lanes]
                    .copy_from_slice(&s_row[from..from + (x1 - x0) * lanes]);
            }
            for x in (0..x0).chain(x1..spec.out_w) {
                let px = &mut d_row[x * lanes..(x + 1) * lanes];
                match spec.mode.map(x as i64 + dx, w) {
                    Some(sx) => px.copy_from_slice(&s_row[sx as usize * lanes..][..lanes]),
                    None => px.fill(fill),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::Layout;

    #[test]
    fn pad_modes_match_numpy() {
        // np.pad(np.arange(3), 5, mode)
        let want =
            |mode| -> Vec<Option<i64>> { (-5..8).map(|i| PadMode::map(mode, i, 3)).collect() };
        let s = |v: &[i64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(
            want(PadMode::Reflect),
            s(&[1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1])
        );
        assert_eq!(
            want(PadMode::Symmetric),
            s(&[1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1])
        );
        assert_eq!(
            want(PadMode::Edge),
            s(&[0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2])
        );
        assert_eq!(PadMode::Constant.map(-1, 3), None);
        assert_eq!(PadMode::Reflect.map(-4, 1), Some(0));
    }

    #[test]
    fn crop_with_padding() {
        // One 2x2 single-channel image [[1, 2], [3, 4]], padding 1.
        let batch = Batch {
            n: 1,
            h: 2,
            w: 2,
            c: 1,
            layout: Layout::Nhwc,
        };
        let src = [1u8, 2, 3, 4];
        let mut spec = CropSpec {
            out_h: 3,
            out_w: 3,
            pad: [1, 1, 1, 1],
            mode: PadMode::Constant,
            fill: 9.0,
        };
        let mut dst = [0u8; 9];
        crop(&src, &mut dst, batch, &spec, &[(0, 1)]).unwrap();
        assert_eq!(dst, [9, 9, 9, 1, 2, 9, 3, 4, 9]);
        spec.mode = PadMode::Reflect;
        crop(&src, &mut dst, batch, &spec, &[(1, 0)]).unwrap();
        assert_eq!(dst, [2, 1, 2, 4, 3, 4, 2, 1, 2]);
        spec.out_h = 5;
        assert!(spec.validate::<u8>(batch).is_err());
        spec.out_h = 3;
        spec.mode = PadMode::Constant;
        spec.fill = 300.0;
        assert!(spec.validate::<u8>(batch).is_err());
    }
}
