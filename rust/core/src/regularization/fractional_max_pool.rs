//! Fractional max pooling (Graham 2014, "Fractional Max-Pooling") on NCHW
//! input, with PyTorch's conventions: one random draw per (sample, channel)
//! plane, shared by all its outputs, and `argmax` as flat indices into each
//! `H x W` input plane.
//!
//! Along each dimension (input size `n`, output size `m`) the output `i`
//! pools a window `[start_i, start_i + len_i)`:
//!
//! - overlapping (`overlapping = true`, PyTorch's `FractionalMaxPool2d`):
//!   windows of `k` (kernel size) elements, starts from 0 to `n - k` (the
//!   last one always `n - k`, also when `m = 1`), with increments
//!   `floor(alpha)` or `ceil(alpha)`, `alpha = (n - k) / (m - 1)`;
//! - disjoint (`overlapping = false`): the regions between boundaries
//!   `0 = a_0 < a_1 < ... < a_m = n`, with increments `floor(n / m)` or
//!   `ceil(n / m)` (the kernel size plays no part).
//!
//! The increments come from
//!
//! - the pseudo-random sequence (`pseudo_random = true`), from one uniform
//!   `u` in [0, 1) per plane and dimension: overlapping starts are
//!   PyTorch's `generate_intervals`, computed in the element type exactly as
//!   ATen does, `start_i = int((i + u) * alpha) - int(u * alpha)`; disjoint
//!   boundaries are `a_i = floor((i + u) * n / m) - floor(u * n / m)`
//!   computed exactly in integers (`u` is a multiple of 2^-24 or 2^-53);
//! - the random sequence (`pseudo_random = false`): the multiset of
//!   increments in a uniformly random order (a Fisher-Yates shuffle with
//!   `j = (word * (i + 1)) >> 32`, whose bias is below 2^-32 * m).
//!
//! Each plane's draw is a fixed slice of the call's words: for the
//! pseudo-random sequence the uniforms `2 p` (width) and `2 p + 1` (height)
//! of plane `p` (PyTorch's `_random_samples[n, c, :]`, i.e. a
//! `random((N, C, 2))` draw), for the random sequence the words
//! `p * (W_out + H_out) ..`: `W_out` for the width, then `H_out` for the
//! height.
//!
//! Within a window the maximum is found in row-major order with ATen's rule
//! `val > max || isnan(val)`: the first maximum wins, NaN propagates (the
//! last NaN wins). The backward pass adds `dout` to `dx` at each `argmax`,
//! in output order. Planes run in parallel; each plane is computed the same
//! way whatever the threads.

use crate::alloc;
use crate::cancel;
use crate::error::{Error, Result};
use crate::parallel::{self, split_mut, split_ref, Split};
use crate::random::{fill_words, Draw, Uniform};
use crate::simd::Real;

/// The sizes of an NCHW pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub out_h: usize,
    pub out_w: usize,
}

impl PoolShape {
    fn planes(&self) -> usize {
        self.n * self.c
    }
    fn in_plane(&self) -> usize {
        self.h * self.w
    }
    fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Elements of the input, `N * C * H * W`.
    fn input_len(&self) -> Result<usize> {
        elements(&[self.n, self.c, self.h, self.w], "x")
    }

    /// Elements of the output, `N * C * H_out * W_out`.
    fn output_len(&self) -> Result<usize> {
        elements(&[self.n, self.c, self.out_h, self.out_w], "output_size")
    }
}

fn elements(sizes: &[usize], what: &str) -> Result<usize> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Shape(format!("{what}: the pooling's arrays are too large")))
}

/// A fractional max pooling: sizes, kernel and sequence choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FractionalPool {
    pub shape: PoolShape,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub pseudo_random: bool,
    pub overlapping: bool,
}

/// The largest input side: flat plane indices and the exact boundary
/// arithmetic stay far from overflow.
const MAX_SIDE: usize = i32::MAX as usize;

impl FractionalPool {
    /// Checks that the output and kernel fit the input.
    pub fn validate(&self) -> Result<()> {
        let s = &self.shape;
        for (what, input, output, k) in [
            ("height", s.h, s.out_h, self.kernel_h),
            ("width", s.w, s.out_w, self.kernel_w),
        ] {
            if input > MAX_SIDE {
                return Err(Error::Shape(format!(
                    "x: input {what} {input} exceeds {MAX_SIDE}"
                )));
            }
            if output == 0 {
                return Err(Error::Shape(format!(
                    "output_size: output {what} must be at least 1"
                )));
            }
            if self.overlapping {
                if k == 0 {
                    return Err(Error::Shape(format!(
                        "kernel_size: kernel {what} must be at least 1"
                    )));
                }
                if output.saturating_add(k - 1) > input {
                    return Err(Error::Shape(format!(
                        "output_size: output {what} {output} with kernel {what} {k} needs an \
                         input {what} of at least {} (output + kernel - 1), got {input}",
                        output.saturating_add(k - 1)
                    )));
                }
            } else if output > input {
                return Err(Error::Shape(format!(
                    "output_size: output {what} {output} is larger than the input {what} {input}"
                )));
            }
        }
        s.input_len()?;
        s.output_len().map(|_| ())
    }

    /// Random words per plane for element type `T`.
    pub fn words_per_plane<T: Uniform>(&self) -> usize {
        if self.pseudo_random {
            2 * T::WORDS
        } else {
            self.shape.out_w + self.shape.out_h
        }
    }

    /// Random words of the whole call (what the caller must reserve).
    pub fn words<T: Uniform>(&self) -> u64 {
        (self.shape.planes() as u64).saturating_mul(self.words_per_plane::<T>() as u64)
    }

    /// The windows of one plane along one dimension, from that plane's
    /// share of the draw.
    fn windows<T: Uniform>(&self, height: bool, words: &[u32]) -> Result<Vec<(usize, usize)>> {
        let s = &self.shape;
        let (input, output, k) = if height {
            (s.h, s.out_h, self.kernel_h)
        } else {
            (s.w, s.out_w, self.kernel_w)
        };
        let words = if self.pseudo_random {
            let at = usize::from(height) * T::WORDS;
            &words[at..at + T::WORDS]
        } else if height {
            &words[s.out_w..]
        } else {
            &words[..s.out_w]
        };
        const WHAT: &str = "the pooling windows";
        match (self.overlapping, self.pseudo_random) {
            (true, true) => {
                let starts = generate_intervals(T::from_words(words), input, output, k)?;
                alloc::collect(starts.into_iter().map(|start| (start, k)), WHAT)
            }
            (true, false) => {
                let increments = shuffled_increments(input - k, output - 1, words)?;
                let mut start = 0;
                let mut windows = alloc::with_capacity(output, WHAT)?;
                windows.push((if output == 1 { input - k } else { 0 }, k));
                for inc in increments {
                    start += inc;
                    windows.push((start, k));
                }
                Ok(windows)
            }
            (false, pseudo) => {
                let increments = if pseudo {
                    exact_increments::<T>(T::from_words(words), input, output)?
                } else {
                    shuffled_increments(input, output, words)?
                };
                let mut start = 0;
                let windows = increments.into_iter().map(|inc| {
                    start += inc;
                    (start - inc, inc)
                });
                alloc::collect(windows, WHAT)
            }
        }
    }
}

/// ATen's `generate_intervals`, in the element type: the window starts of
/// PyTorch's fractional max pooling for sample `u`.
fn generate_intervals<T: Real>(u: T, input: usize, output: usize, k: usize) -> Result<Vec<usize>> {
    let mut starts = alloc::filled(output, 0, "the pooling windows")?;
    if output > 1 {
        let t = |v: usize| T::from_f64(v as f64);
        let alpha = t(input - k).div(t(output - 1));
        // `static_cast<int>` truncates; every value here is >= 0.
        let offset = u.mul(alpha).to_f64() as usize;
        for (i, start) in starts.iter_mut().enumerate().take(output - 1) {
            *start = t(i).add(u).mul(alpha).to_f64() as usize - offset;
        }
    }
    starts[output - 1] = input - k;
    Ok(starts)
}

/// Increments `floor((i + 1 + u) n / m) - floor((i + u) n / m)`, exactly.
fn exact_increments<T: Uniform>(u: T, input: usize, output: usize) -> Result<Vec<usize>> {
    // `u = num / 2^BITS` exactly.
    let num = (u.to_f64() * 2f64.powi(T::BITS as i32)) as u128;
    let den = (output as u128) << T::BITS;
    let boundary = |i: usize| (((i as u128) << T::BITS) + num) * input as u128 / den;
    let increments = (0..output).map(|i| (boundary(i + 1) - boundary(i)) as usize);
    alloc::collect(increments, "the pooling windows")
}

/// `count` increments summing to `total` (`total / count` and one more),
/// shuffled with words `0 .. count - 1`.
fn shuffled_increments(total: usize, count: usize, words: &[u32]) -> Result<Vec<usize>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let (q, r) = (total / count, total % count);
    let increments = (0..count).map(|i| q + usize::from(i >= count - r));
    let mut inc = alloc::collect(increments, "the pooling windows")?;
    for (i, &word) in (1..count).rev().zip(words) {
        let j = ((u64::from(word) * (i as u64 + 1)) >> 32) as usize;
        inc.swap(i, j);
    }
    Ok(inc)
}

/// The arrays of a run of planes, forward.
struct Planes<'a, T> {
    x: &'a [T],
    y: &'a mut [T],
    argmax: &'a mut [i64],
    words: &'a [u32],
    pool: &'a FractionalPool,
    words_per_plane: usize,
}

impl<T: Send + Sync> Split for Planes<'_, T> {
    fn len(&self) -> usize {
        self.argmax.len() / self.pool.shape.out_plane().max(1)
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let s = self.pool.shape;
        let (x0, x1) = split_ref(self.x, mid * s.in_plane());
        let (y0, y1) = split_mut(self.y, mid * s.out_plane());
        let (a0, a1) = split_mut(self.argmax, mid * s.out_plane());
        let (w0, w1) = split_ref(self.words, mid * self.words_per_plane);
        let part = |x, y, argmax, words| Planes {
            x,
            y,
            argmax,
            words,
            pool: self.pool,
            words_per_plane: self.words_per_plane,
        };
        (part(x0, y0, a0, w0), part(x1, y1, a1, w1))
    }
}

/// Input elements scanned between two checks for cancellation (a window
/// of a huge kernel alone can be millions).
const SCAN_PER_CHECK: usize = 1 << 18;

/// Pools one plane. (An index loop: with `zip` LLVM brings the branch
/// back, and the scan runs at half speed.)
#[allow(clippy::needless_range_loop)]
fn pool_plane<T: Uniform>(
    pool: &FractionalPool,
    x: &[T],
    y: &mut [T],
    argmax: &mut [i64],
    words: &[u32],
) -> Result<()> {
    let width = pool.shape.w;
    let rows = pool.windows::<T>(true, words)?;
    let cols = pool.windows::<T>(false, words)?;
    let mut out = 0;
    let mut scanned = 0;
    for &(h0, hl) in &rows {
        for &(w0, wl) in &cols {
            scanned += hl * wl;
            if scanned >= SCAN_PER_CHECK {
                cancel::check()?;
                scanned = 0;
            }
            let mut best = T::from_f64(f64::NEG_INFINITY);
            let mut at = h0 * width + w0;
            for h in h0..h0 + hl {
                for i in h * width + w0..h * width + w0 + wl {
                    let v = x[i];
                    // ATen's `if (val > maxVal || std::isnan(val))`, without
                    // a branch that random data would mispredict: the new
                    // maximum is `maximum` (NaN-propagating, ties keep
                    // `best`), and the index moves by a mask.
                    let take = v > best || v.partial_cmp(&v).is_none();
                    best = v.maximum(best);
                    at ^= (at ^ i) & usize::from(take).wrapping_neg();
                }
            }
            y[out] = best;
            argmax[out] = at as i64;
            out += 1;
        }
    }
    Ok(())
}

/// Fractional max pooling of `x` (NCHW, C-contiguous) into `y` and `argmax`
/// (N, C, H_out, W_out), with the words `0 .. pool.words::<T>()` of `draw`.
/// Checks everything first: an error writes nothing.
pub fn fractional_max_pool2d<T: Uniform>(
    pool: &FractionalPool,
    x: &[T],
    draw: Draw,
    y: &mut [T],
    argmax: &mut [i64],
) -> Result<()> {
    pool.validate()?;
    let s = pool.shape;
    check_len("x", s.input_len()?, x.len())?;
    check_len("y", s.output_len()?, y.len())?;
    check_len("argmax", s.output_len()?, argmax.len())?;
    let n_words = usize::try_from(pool.words::<T>()).unwrap_or(usize::MAX);
    let mut words = alloc::filled(n_words, 0u32, "the pooling's random words")?;
    fill_words(draw, 0, &mut words)?;
    let words_per_plane = pool.words_per_plane::<T>();
    let work = Planes {
        x,
        y,
        argmax,
        words: &words,
        pool,
        words_per_plane,
    };
    parallel::try_for_each_task(work, s.in_plane() + s.out_plane(), |p| {
        let (ip, op) = (s.in_plane(), s.out_plane());
        for i in 0..p.len() {
            pool_plane(
                p.pool,
                &p.x[i * ip..(i + 1) * ip],
                &mut p.y[i * op..(i + 1) * op],
                &mut p.argmax[i * op..(i + 1) * op],
                &p.words[i * words_per_plane..(i + 1) * words_per_plane],
            )?;
        }
        Ok(())
    })
}

/// The arrays of a run of planes, backward.
struct Grads<'a, T> {
    dout: &'a [T],
    argmax: &'a [i64],
    dx: &'a mut [T],
    shape: PoolShape,
}

impl<T: Send + Sync> Split for Grads<'_, T> {
    fn len(&self) -> usize {
        self.argmax.len() / self.shape.out_plane().max(1)
    }

    fn split_at(self, mid: usize) -> (Self, Self) {
        let s = self.shape;
        let (d0, d1) = split_ref(self.dout, mid * s.out_plane());
        let (a0, a1) = split_ref(self.argmax, mid * s.out_plane());
        let (x0, x1) = split_mut(self.dx, mid * s.in_plane());
        (
            Grads {
                dout: d0,
                argmax: a0,
                dx: x0,
                shape: s,
            },
            Grads {
                dout: d1,
                argmax: a1,
                dx: x1,
                shape: s,
            },
        )
    }
}

/// The gradient of fractional max pooling: `dx` (N, C, H, W) is zeroed,
/// then `dout[n, c, i, j]` is added at `argmax[n, c, i, j]` of plane
/// `(n, c)`, in output order. Checks the lengths and every index first.
pub fn fractional_max_pool2d_backward<T: Real>(
    shape: PoolShape,
    dout: &[T],
    argmax: &[i64],
    dx: &mut [T],
) -> Result<()> {
    check_len("dout", shape.output_len()?, dout.len())?;
    check_len("argmax", dout.len(), argmax.len())?;
    check_len("dx", shape.input_len()?, dx.len())?;
    let limit = shape.in_plane() as i64;
    if let Some((i, &bad)) = argmax
        .iter()
        .enumerate()
        .find(|(_, &a)| !(0..limit).contains(&a))
    {
        return Err(Error::Shape(format!(
            "argmax: entry {i} is {bad}, outside an input plane of {} x {} = {limit} elements",
            shape.h, shape.w
        )));
    }
    let work = Grads {
        dout,
        argmax,
        dx,
        shape,
    };
    parallel::for_each_task(work, shape.in_plane() + shape.out_plane(), |g| {
        let (ip, op) = (shape.in_plane(), shape.out_plane());
        g.dx.fill(T::ZERO);
        for (plane, dx) in g.dx.chunks_exact_mut(ip.max(1)).enumerate() {
            let at = plane * op;
            for (&d, &a) in g.dout[at..at + op].iter().zip(&g.argmax[at..at + op]) {
                dx[a as usize] = dx[a as usize].add(d);
            }
        }
    })
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Shape(format!(
            "{what}: expected {expected} elements for the pooling's shape, got {got}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(h: usize, out: usize, k: usize, pseudo: bool, overlapping: bool) -> FractionalPool {
        FractionalPool {
            shape: PoolShape {
                n: 1,
                c: 1,
                h,
                w: h,
                out_h: out,
                out_w: out,
            },
            kernel_h: k,
            kernel_w: k,
            pseudo_random: pseudo,
            overlapping,
        }
    }

    #[test]
    fn pytorch_intervals() {
        // alpha = (25 - 2) / (16 - 1) in f32; u = 0.5.
        let starts = generate_intervals(0.5f32, 25, 16, 2).unwrap();
        assert_eq!(starts.len(), 16);
        assert_eq!(starts[0], 0);
        assert_eq!(starts[15], 23);
        for pair in starts.windows(2) {
            assert!((1..=2).contains(&(pair[1] - pair[0])), "{starts:?}");
        }
        assert_eq!(generate_intervals(0.3f64, 10, 1, 3).unwrap(), vec![7]);
    }

    #[test]
    fn disjoint_regions_partition_the_input() {
        for (input, output) in [(25, 16), (10, 10), (7, 3), (100, 1), (31, 30)] {
            for num in [0u32, 1, 1 << 23, (1 << 24) - 1] {
                let u = num as f32 / (1u32 << 24) as f32;
                let inc = exact_increments(u, input, output).unwrap();
                assert_eq!(inc.iter().sum::<usize>(), input);
                let (lo, hi) = (input / output, input.div_ceil(output));
                assert!(inc.iter().all(|&i| i == lo || i == hi), "{inc:?}");
            }
            let words: Vec<u32> = (0..output as u32)
                .map(|i| i.wrapping_mul(0x9E37_79B9))
                .collect();
            let inc = shuffled_increments(input, output, &words).unwrap();
            assert_eq!(inc.iter().sum::<usize>(), input);
        }
    }

    #[test]
    fn validation() {
        assert!(pool(5, 4, 2, true, true).validate().is_ok());
        assert!(pool(5, 5, 2, true, true).validate().is_err());
        assert!(pool(5, 5, 2, true, false).validate().is_ok());
        assert!(pool(5, 6, 2, true, false).validate().is_err());
        assert!(pool(5, 0, 2, true, false).validate().is_err());
        assert!(pool(5, 2, 0, true, true).validate().is_err());
    }

    #[test]
    fn windows_stay_inside() {
        let words: Vec<u32> = (0..64u32).map(|i| i.wrapping_mul(0x2545_F491)).collect();
        for pseudo in [true, false] {
            for overlapping in [true, false] {
                let p = pool(9, 5, 3, pseudo, overlapping);
                for height in [true, false] {
                    let windows = p.windows::<f64>(height, &words).unwrap();
                    assert_eq!(windows.len(), 5);
                    assert!(windows.iter().all(|&(s, l)| l >= 1 && s + l <= 9));
                    assert_eq!(windows[4].0 + windows[4].1, 9);
                }
            }
        }
    }
}
