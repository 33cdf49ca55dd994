//! Random flips (torchvision's `RandomHorizontalFlip` /
//! `RandomVerticalFlip`): image `i` is flipped iff word `i` of the call is
//! below `round(p * 2^32)`, i.e. with probability `p` (within 2^-33; the
//! [`Keep`] threshold of dropout). A flipped image is its mirror along the
//! width (horizontal) or the height (vertical); the others are copied.

use super::{words, Batch, Images};
use crate::error::Result;
use crate::parallel;
use crate::random::{Draw, Keep};

/// Random words per image.
pub const WORDS: usize = 1;

/// Which way to mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlipAxis {
    /// Along the width: column `x` becomes `W - 1 - x`.
    Horizontal,
    /// Along the height: row `y` becomes `H - 1 - y`.
    Vertical,
}

/// Whether each of `n` images is flipped, from words `0 .. n` of `draw`
/// (`p` in [0, 1], checked).
pub fn flip_params(draw: Draw, n: usize, p: f64) -> Result<Vec<bool>> {
    let keep = Keep::with_probability(p)?;
    let words = words(draw, n, WORDS)?;
    let flips = words.iter().map(|&w| match keep {
        Keep::All => true,
        Keep::None => false,
        Keep::Below(t) => w < t,
    });
    crate::alloc::collect(flips, "the flips")
}

/// Writes `dst` (same sizes as `src`): image `i` mirrored along `axis` if
/// `flips[i]`, else copied.
pub fn flip<T: Copy + Send + Sync>(
    src: &[T],
    dst: &mut [T],
    batch: Batch,
    axis: FlipAxis,
    flips: &[bool],
) -> Result<()> {
    batch.validate("images")?;
    batch.check_len("images", src.len())?;
    batch.check_len("out", dst.len())?;
    super::crop::check_params_len("flips", batch.n, flips.len())?;
    let len = batch.image_len();
    let work = Images::new(src, dst, len, len);
    parallel::for_each_task(work, len, |mut piece| {
        piece.for_each(|i, s, d| {
            if !flips[i] {
                d.copy_from_slice(s);
            } else {
                flip_image(s, d, batch, axis);
            }
        })
    })
}

fn flip_image<T: Copy>(src: &[T], dst: &mut [T], batch: Batch, axis: FlipAxis) {
    let row = batch.w * batch.lanes();
    if row == 0 || batch.h == 0 {
        return;
    }
    let plane = row * batch.h;
    for (s, d) in src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane)) {
        match axis {
            FlipAxis::Vertical => {
                for (d_row, s_row) in d.chunks_exact_mut(row).zip(s.chunks_exact(row).rev()) {
                    d_row.copy_from_slice(s_row);
                }
            }
            FlipAxis::Horizontal => {
                for (d_row, s_row) in d.chunks_exact_mut(row).zip(s.chunks_exact(row)) {
                    reverse_pixels(s_row, d_row, batch.lanes());
                }
            }
        }
    }
}

/// `dst` = the pixels of `src` (`lanes` values each) in reverse order.
fn reverse_pixels<T: Copy>(src: &[T], dst: &mut [T], lanes: usize) {
    match lanes {
        1 => reverse::<T, 1>(src, dst),
        2 => reverse::<T, 2>(src, dst),
        3 => reverse::<T, 3>(src, dst),
        4 => reverse::<T, 4>(src, dst),
        _ => {
            for (d, s) in dst
                .chunks_exact_mut(lanes)
                .zip(src.chunks_exact(lanes).rev())
            {
                d.copy_from_slice(s);
            }
        }
    }
}

#[inline]
fn reverse<T: Copy, const L: usize>(src: &[T], dst: &mut [T]) {
    let (s, _) = src.as_chunks::<L>();
    let (d, _) = dst.as_chunks_mut::<L>();
    for (d, s) in d.iter_mut().zip(s.iter().rev()) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::Layout;
    use crate::random::Stream;

    #[test]
    fn flips_nhwc_and_nchw() {
        // One 2x3 image with 2 channels.
        let src: Vec<u8> = (0..12).collect();
        let mut dst = vec![0u8; 12];
        let nhwc = Batch {
            n: 1,
            h: 2,
            w: 3,
            c: 2,
            layout: Layout::Nhwc,
        };
        flip(&src, &mut dst, nhwc, FlipAxis::Horizontal, &[true]).unwrap();
        assert_eq!(dst, [4, 5, 2, 3, 0, 1, 10, 11, 8, 9, 6, 7]);
        flip(&src, &mut dst, nhwc, FlipAxis::Vertical, &[true]).unwrap();
        assert_eq!(dst, [6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5]);
        let nchw = Batch {
            layout: Layout::Nchw,
            ..nhwc
        };
        flip(&src, &mut dst, nchw, FlipAxis::Horizontal, &[true]).unwrap();
        assert_eq!(dst, [2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9]);
        flip(&src, &mut dst, nchw, FlipAxis::Horizontal, &[false]).unwrap();
        assert_eq!(dst, src);
    }

    #[test]
    fn params_follow_the_threshold() {
        let mut s = Stream::new(5);
        let draw = s.reserve(1000).unwrap();
        let all = flip_params(draw, 1000, 1.0).unwrap();
        assert!(all.iter().all(|&f| f));
        let none = flip_params(draw, 1000, 0.0).unwrap();
        assert!(none.iter().all(|&f| !f));
        let half = flip_params(draw, 1000, 0.5).unwrap();
        let count = half.iter().filter(|&&f| f).count();
        assert!((400..600).contains(&count), "{count}");
        assert!(flip_params(draw, 3, 1.5).is_err());
    }
}
