//! Polyak averaging of parameters: the running mean of every update, or an
//! exponential moving average (EMA), as in `torch.optim.swa_utils`:
//!
//! ```text
//! a = p                           first update (n = 0), both modes
//! a = a + (p - a) / (n + 1)       running mean, n = updates so far
//! a = lerp(a, p, 1 - decay)       EMA
//! ```
//!
//! The running mean is `AveragedModel`'s default `avg_fn` on the CPU
//! (`get_swa_avg_fn`: a true division by `n + 1`, rounded to the element
//! type like PyTorch's long-to-float promotion, so exact for `n + 1 <= 2^24`
//! in f32). The EMA is `get_ema_multi_avg_fn`: `_foreach_lerp_` with weight
//! `1 - decay` computed in f64 and rounded to the element type, through
//! ATen's two-sided lerp (the same [`Lerp`] as Adam's moments).
//!
//! An update over every tensor is one parallel job over fixed chunks, in
//! place: one read of the param and one read and write of the average per
//! element (12 bytes in f32), the memory-traffic bound of the operation.

use crate::error::{check_range, Result};
use crate::optim::{check_len, run_all, Lerp, Ptrs, Work};
use crate::simd::{Lanes, Real, Step};

/// Which average to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Averaging {
    /// The running mean of every update (stochastic weight averaging).
    Mean,
    /// An exponential moving average with weight `decay` on the old average.
    Ema { decay: f64 },
}

impl Averaging {
    pub fn validate(&self) -> Result<()> {
        match *self {
            Averaging::Mean => Ok(()),
            Averaging::Ema { decay } => check_range("decay", decay, 0.0, 1.0, false, "in [0, 1]"),
        }
    }
}

/// One param and its average.
pub struct AverageTensor<'a, T> {
    /// Updated in place.
    pub average: &'a mut [T],
    pub param: &'a [T],
}

/// The update of one call, in the element type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rule<T> {
    Copy,
    /// `n + 1`, the divisor of the running mean.
    Mean(T),
    Ema(Lerp<T>),
}

impl<T: Real> Rule<T> {
    fn new(how: Averaging, count: u64) -> Self {
        match how {
            _ if count == 0 => Rule::Copy,
            // `count + 1` through f64, as PyTorch promotes its long counter.
            Averaging::Mean => Rule::Mean(T::from_f64(count as f64 + 1.0)),
            Averaging::Ema { decay } => Rule::Ema(Lerp::new(1.0 - decay)),
        }
    }
}

/// Streams: average | param.
type AverageWork<'a, T> = Work<'a, T, Rule<T>, 1, 1>;

impl<T: Real> Step<T> for Ptrs<T, Rule<T>, 1, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        let a_ptr = self.w[0].add(i);
        let p = L::load(self.r[0].add(i));
        let a = match self.c {
            Rule::Copy => p,
            Rule::Mean(count) => {
                let a = L::load(a_ptr);
                a.add(p.sub(a).div(L::splat(count)))
            }
            Rule::Ema(lerp) => lerp.apply(L::load(a_ptr), p),
        };
        a.store(a_ptr);
    }
}

/// Folds the params into their averages, in place, as one parallel job.
/// `count` is the number of updates so far: the first (`count == 0`)
/// copies the params. Checks everything first: an error writes nothing.
pub fn average_update<T: Real>(
    tensors: Vec<AverageTensor<'_, T>>,
    how: Averaging,
    count: u64,
) -> Result<()> {
    how.validate()?;
    for (i, t) in tensors.iter().enumerate() {
        check_len(i, "param", t.average.len(), t.param.len())?;
    }
    let rule = Rule::new(how, count);
    let work: Vec<AverageWork<'_, T>> = tensors
        .into_iter()
        .map(|t| Work {
            w: [t.average],
            r: [t.param],
            c: rule,
        })
        .collect();
    run_all(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(avg: &mut [f32], p: &[f32], how: Averaging, count: u64) -> Result<()> {
        average_update(
            vec![AverageTensor {
                average: avg,
                param: p,
            }],
            how,
            count,
        )
    }

    #[test]
    fn first_update_copies_even_over_nan() {
        for how in [Averaging::Mean, Averaging::Ema { decay: 0.9 }] {
            let mut avg = vec![f32::NAN, 1.0, f32::INFINITY];
            update(&mut avg, &[-0.0, 2.0, 3.0], how, 0).unwrap();
            assert_eq!(avg.map_bits(), [-0.0f32, 2.0, 3.0].map_bits());
        }
    }

    #[test]
    fn mean_of_three_updates() {
        let mut avg = vec![0.0f32; 3];
        for (n, p) in [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [5.0, 9.0, -8.0]]
            .iter()
            .enumerate()
        {
            update(&mut avg, p, Averaging::Mean, n as u64).unwrap();
        }
        assert_eq!(avg, [3.0, 5.0, 0.0]);
    }

    #[test]
    fn bad_decay_and_lengths_write_nothing() {
        let mut avg = vec![1.0f32; 4];
        for decay in [-0.1, 1.5, f64::NAN] {
            assert!(update(&mut avg, &[2.0; 4], Averaging::Ema { decay }, 3).is_err());
        }
        assert!(update(&mut avg, &[2.0; 3], Averaging::Mean, 3).is_err());
        assert_eq!(avg, [1.0; 4]);
    }

    trait Bits {
        fn map_bits(&self) -> Vec<u32>;
    }

    impl Bits for [f32] {
        fn map_bits(&self) -> Vec<u32> {
            self.iter().map(|x| x.to_bits()).collect()
        }
    }
}
