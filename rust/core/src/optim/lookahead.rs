//! The synchronisation of Lookahead (Zhang et al. 2019, "Lookahead
//! Optimizer: k steps forward, 1 step back", Algorithm 1): every `k` steps
//! of the inner optimizer, the slow weights move toward the fast ones and
//! the fast ones restart from there,
//!
//! ```text
//! slow = slow + alpha * (fast - slow)
//! fast = slow
//! ```
//!
//! one pass over all tensors (16 bytes per element).

use super::{Ptrs, Work};
use crate::error::{check_range, Error, Result};
use crate::simd::{Lanes, Real, Step};

/// `alpha` of Lookahead, rounded once to the element type.
#[derive(Clone, Copy, Debug)]
pub struct SyncConsts<T> {
    alpha: T,
}

impl<T: Real> Step<T> for Ptrs<T, SyncConsts<T>, 2, 0> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let [fast_ptr, slow_ptr] = self.w.map(|p| p.add(i));
        let slow = L::load(slow_ptr);
        let fast = L::load(fast_ptr);
        let slow = slow.add(L::splat(self.c.alpha).mul(fast.sub(slow)));
        slow.store(slow_ptr);
        slow.store(fast_ptr);
    }
}

/// `alpha` in [0, 1].
pub fn check_alpha(alpha: f64) -> Result<()> {
    check_range("alpha", alpha, 0.0, 1.0, false, "in [0, 1]")
}

/// One Lookahead synchronisation of every `fast[i]` with `slow[i]`, in
/// place, as one parallel job. Checks `alpha` and every length first.
pub fn sync<T: Real>(fast: Vec<&mut [T]>, slow: Vec<&mut [T]>, alpha: f64) -> Result<()> {
    check_alpha(alpha)?;
    if fast.len() != slow.len() {
        return Err(Error::LengthMismatch {
            what: "slow weights (one per param)".into(),
            expected: fast.len(),
            got: slow.len(),
        });
    }
    for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
        super::check_len(i, "slow weights", f.len(), s.len())?;
    }
    let c = SyncConsts {
        alpha: T::from_f64(alpha),
    };
    let work: Vec<Work<'_, T, SyncConsts<T>, 2, 0>> = fast
        .into_iter()
        .zip(slow)
        .map(|(f, s)| Work {
            w: [f, s],
            r: [],
            c,
        })
        .collect();
    super::run_all(work)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parallel::{self, CHUNK};

    #[test]
    fn sync_moves_slow_toward_fast_and_restarts_fast() {
        let n = 2 * CHUNK + 3;
        let want: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
        for threads in [1, 2] {
            parallel::set_num_threads(threads).unwrap();
            let mut fast: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let mut slow = vec![0.0f32; n];
            sync(vec![&mut fast], vec![&mut slow], 0.5).unwrap();
            assert_eq!(slow, want);
            assert_eq!(fast, want);
        }
        let mut a = vec![1.0f64; 3];
        let mut b = [0.0f64; 2];
        assert!(sync(vec![&mut a[..]], vec![&mut b[..]], 0.5).is_err());
        assert!(sync(vec![&mut a[..2]], vec![&mut b[..]], 1.5).is_err());
        assert_eq!(a, vec![1.0; 3]);
    }
}
