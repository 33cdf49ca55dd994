//! The pre-pass of `check_finite=True`: are all gradients finite?

use crate::error::Result;
use crate::parallel::{self, split_ref, Split};
use crate::simd::{self, Kernel, Lanes, Real};

struct Finite<'a, T>(&'a [T]);

impl<T: Real> Split for Finite<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        let (a, b) = split_ref(self.0, mid);
        (Finite(a), Finite(b))
    }
}

impl<T: Real> Kernel<T> for Finite<'_, T> {
    type Output = bool;

    #[inline(always)]
    unsafe fn run<V: Lanes<T>>(self) -> bool {
        // A branch-free fold on the exponent bits, which the compiler
        // vectorizes for the dispatched instruction set.
        self.0.iter().fold(true, |ok, x| ok & x.is_finite_bits())
    }
}

/// True when no element of any slice is NaN or infinite.
pub fn all_finite<T: Real>(slices: &[&[T]]) -> Result<bool> {
    let items = slices.iter().map(|s| Finite(s)).collect();
    let chunks = parallel::map_chunks(items, simd::dispatch)?;
    Ok(chunks.into_iter().all(|ok| ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nan_and_inf_anywhere() {
        let n = 3 * parallel::CHUNK + 11;
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            for at in [0, 17, parallel::CHUNK, n - 1] {
                let mut x = vec![1.0f32; n];
                x[at] = bad;
                assert!(!all_finite(&[&[2.0f32][..], &x]).unwrap());
            }
        }
        let x = vec![f32::MAX; n];
        assert!(all_finite(&[&x[..], &[f32::MIN_POSITIVE / 2.0]]).unwrap());
        assert!(all_finite::<f64>(&[]).unwrap());
    }
}
