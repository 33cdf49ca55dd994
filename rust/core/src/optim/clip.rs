//! Gradient norms and clipping with the semantics of `torch.nn.utils`
//! (`get_total_norm`, `clip_grads_with_norm_`, `clip_grad_value_`), over
//! many arrays at once: the norm is one parallel pass over the fixed chunks
//! of every array with deterministic reductions (`optimize::reduce`), so it
//! is bit-identical for any thread count and SIMD level.
//!
//! The total p-norm is `(sum_i sum_j |g_ij|^p)^(1/p)`, which is torch's
//! norm of the per-tensor norms; the sums are taken in f64 above the
//! fixed-order slots (torch computes in the grads' dtype). The inf-norm is
//! the largest `|g_ij|`. Empty arrays add nothing; NaN propagates.

use super::{Ptrs, Work};
use crate::error::{Error, Result};
use crate::optimize::reduce::{pass_many, prefetch, Body, In, AHEAD_BYTES};
use crate::simd::{Lanes, Real, Step};

/// The order of a vector norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Norm {
    /// `p` in `(0, inf)`.
    P(f64),
    Inf,
}

impl Norm {
    /// torch's `norm_type`: a number in `(0, inf]`.
    pub fn new(norm_type: f64) -> Result<Norm> {
        if norm_type == f64::INFINITY {
            Ok(Norm::Inf)
        } else if norm_type > 0.0 && norm_type.is_finite() {
            Ok(Norm::P(norm_type))
        } else {
            Err(Error::InvalidHyperparameter {
                name: "norm_type".into(),
                value: norm_type,
                expected: "a number > 0, or inf",
            })
        }
    }
}

/// Terms of one array's norm: `|g|`, `g * g`, `|g|^p`, or the max of `|g|`.
struct Terms<T> {
    g: In<T>,
    norm: Norm,
}

// SAFETY (Sync): `In` is a read-only pointer shared by disjoint chunks.
unsafe impl<T> Sync for Terms<T> {}

impl<T: Real> Body<T, 1> for Terms<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        prefetch::<T, L>(self.g.0, i, AHEAD_BYTES);
        let g = self.g.get::<L>(i);
        let a = g.abs();
        let term = match self.norm {
            Norm::Inf => L::splat(T::ZERO),
            Norm::P(1.0) => a,
            Norm::P(2.0) => g.mul(g),
            Norm::P(p) => {
                let mut lanes = [T::ZERO; 16];
                a.store(lanes.as_mut_ptr());
                for x in &mut lanes[..L::N] {
                    *x = T::from_f64(x.to_f64().powf(p));
                }
                L::load(lanes.as_ptr())
            }
        };
        ([term], a)
    }
}

/// The total `norm` of all `grads` together (see the module docs).
pub fn total_norm<T: Real>(grads: &[&[T]], norm: Norm) -> Result<f64> {
    let items: Vec<(usize, Terms<T>)> = grads
        .iter()
        .map(|g| {
            (
                g.len(),
                Terms {
                    g: In(g.as_ptr()),
                    norm,
                },
            )
        })
        .collect();
    let sums = pass_many(&items)?;
    Ok(match norm {
        Norm::Inf => sums
            .iter()
            .fold(0.0, |m, s| crate::optimize::reduce::nan_max(m, s.max)),
        Norm::P(p) => {
            let total: f64 = sums.iter().map(|s| s.sum[0]).sum();
            if p == 1.0 {
                total
            } else if p == 2.0 {
                total.sqrt()
            } else {
                total.powf(1.0 / p)
            }
        }
    })
}

/// An in-place element-wise map of every grad: `g * c` or `clamp(g, lo, hi)`.
#[derive(Clone, Copy, Debug)]
pub struct Map<T> {
    op: Op<T>,
}

#[derive(Clone, Copy, Debug)]
enum Op<T> {
    Scale(T),
    Clamp(T, T),
}

impl<T: Real> Step<T> for Ptrs<T, Map<T>, 1, 0> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let ptr = self.w[0].add(i);
        let g = L::load(ptr);
        let g = match self.c.op {
            Op::Scale(c) => g.mul(L::splat(c)),
            // torch's clamp: NaN stays NaN.
            Op::Clamp(lo, hi) => g.maximum(L::splat(lo)).minimum(L::splat(hi)),
        };
        g.store(ptr);
    }
}

fn map<T: Real>(grads: Vec<&mut [T]>, op: Op<T>) -> Result<()> {
    let work: Vec<Work<'_, T, Map<T>, 1, 0>> = grads
        .into_iter()
        .map(|g| Work {
            w: [g],
            r: [],
            c: Map { op },
        })
        .collect();
    super::run_all(work)
}

/// `g = g * c` for every grad, in place, as one parallel job.
pub fn scale<T: Real>(grads: Vec<&mut [T]>, c: T) -> Result<()> {
    map(grads, Op::Scale(c))
}

/// `g = clamp(g, -v, v)` for every grad, in place, as one parallel job.
pub fn clamp<T: Real>(grads: Vec<&mut [T]>, v: T) -> Result<()> {
    map(grads, Op::Clamp(Lanes::<T>::neg(v), v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::{self, CHUNK};

    #[test]
    fn norms_of_many_arrays_match_plain_sums_and_any_thread_count() {
        let a: Vec<f64> = (0..3 * CHUNK + 5)
            .map(|i| ((i % 17) as f64 - 8.0) * 0.25)
            .collect();
        let b = vec![3.0f64, -4.0];
        let empty: Vec<f64> = Vec::new();
        let grads: Vec<&[f64]> = vec![&a, &empty, &b];
        let want2: f64 = a.iter().chain(&b).map(|x| x * x).sum::<f64>().sqrt();
        let mut first = None;
        for threads in [1, 2, 3] {
            parallel::set_num_threads(threads).unwrap();
            let got = total_norm(&grads, Norm::P(2.0)).unwrap();
            assert!((got - want2).abs() <= 1e-12 * want2);
            let bits = got.to_bits();
            assert_eq!(*first.get_or_insert(bits), bits, "threads={threads}");
        }
        assert_eq!(total_norm(&grads, Norm::Inf).unwrap(), 4.0);
        assert_eq!(total_norm(&[&b[..]], Norm::P(1.0)).unwrap(), 7.0);
        let p3 = total_norm(&[&b[..]], Norm::P(3.0)).unwrap();
        assert!((p3 - 91f64.powf(1.0 / 3.0)).abs() < 1e-12);
        assert_eq!(total_norm::<f32>(&[&[]], Norm::Inf).unwrap(), 0.0);
        assert!(total_norm(&[&[1.0, f64::NAN][..]], Norm::Inf)
            .unwrap()
            .is_nan());
        assert!(Norm::new(0.0).is_err() && Norm::new(f64::NAN).is_err());
    }

    #[test]
    fn scale_and_clamp_in_place() {
        let mut a = vec![1.0f32, -2.0, f32::NAN, 5.0];
        clamp(vec![&mut a], 1.5).unwrap();
        assert_eq!(&a[..2], &[1.0, -1.5]);
        assert!(a[2].is_nan());
        assert_eq!(a[3], 1.5);
        scale(vec![&mut a], 2.0).unwrap();
        assert_eq!(a[1], -3.0);
    }
}
