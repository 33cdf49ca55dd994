//! Polyak averaging on the core alone: every SIMD level and thread count
//! against a plain loop, bit for bit, at lengths around each lane width.

use std::sync::Mutex;

use lec7rs_core::averaging::{average_update, AverageTensor, Averaging};
use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::simd::{self, Real};

/// Tests that change the SIMD level or thread count hold this lock.
static GLOBALS: Mutex<()> = Mutex::new(());

const LENGTHS: &[usize] = &[0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 65, 1000];

/// Deterministic values in [-2, 2), a different sequence per `seed`.
fn values<T: Real>(n: usize, seed: u64) -> Vec<T> {
    (0..n as u64)
        .map(|i| {
            let h = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed.wrapping_mul(0xbf58_476d);
            T::from_f64((h >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0)
        })
        .collect()
}

const MODES: [Averaging; 4] = [
    Averaging::Mean,
    Averaging::Ema { decay: 0.999 },
    // 1 - decay >= 0.5: the other side of ATen's lerp.
    Averaging::Ema { decay: 0.25 },
    Averaging::Ema { decay: 1.0 },
];

/// `updates` updates of an average over two tensors of lengths `n` and 7.
fn run<T: Real>(how: Averaging, n: usize, updates: u64) -> Vec<u64> {
    let mut a = vec![T::ZERO; n];
    let mut b = vec![T::ZERO; 7];
    for count in 0..updates {
        let (pa, pb) = (values::<T>(n, count), values::<T>(7, count + 100));
        let tensors = vec![
            AverageTensor {
                average: &mut a,
                param: &pa,
            },
            AverageTensor {
                average: &mut b,
                param: &pb,
            },
        ];
        average_update(tensors, how, count).unwrap();
    }
    a.iter().chain(&b).map(|x| x.to_f64().to_bits()).collect()
}

/// The same updates, one element at a time in plain Rust.
fn plain<T: Real>(how: Averaging, n: usize, updates: u64) -> Vec<u64> {
    let mut a = vec![T::ZERO; n];
    let mut b = vec![T::ZERO; 7];
    for count in 0..updates {
        let (pa, pb) = (values::<T>(n, count), values::<T>(7, count + 100));
        for (avg, p) in [(&mut a, &pa), (&mut b, &pb)] {
            for (x, &y) in avg.iter_mut().zip(p.iter()) {
                *x = match how {
                    _ if count == 0 => y,
                    Averaging::Mean => {
                        let d = T::from_f64(count as f64 + 1.0).to_f64();
                        // Each operation rounded to T, as the kernel does.
                        let diff = T::from_f64(y.to_f64() - x.to_f64()).to_f64();
                        let q = T::from_f64(diff / d).to_f64();
                        T::from_f64(x.to_f64() + q)
                    }
                    Averaging::Ema { decay } => {
                        let w = T::from_f64(1.0 - decay).to_f64();
                        let diff = T::from_f64(y.to_f64() - x.to_f64()).to_f64();
                        if w.abs() < 0.5 {
                            let s = T::from_f64(w * diff).to_f64();
                            T::from_f64(x.to_f64() + s)
                        } else {
                            let om = T::from_f64(1.0 - w).to_f64();
                            let s = T::from_f64(diff * om).to_f64();
                            T::from_f64(y.to_f64() - s)
                        }
                    }
                };
            }
        }
    }
    a.iter().chain(&b).map(|x| x.to_f64().to_bits()).collect()
}

fn every_level_matches_a_plain_loop<T: Real>() {
    let _lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let best = simd::level();
    for how in MODES {
        for &n in LENGTHS {
            let want = plain::<T>(how, n, 6);
            for level in simd::supported_levels() {
                simd::set_level(level).unwrap();
                assert_eq!(run::<T>(how, n, 6), want, "{how:?} n={n} level={level}");
            }
        }
    }
    simd::set_level(best).unwrap();
}

#[test]
fn every_level_matches_a_plain_loop_f32() {
    every_level_matches_a_plain_loop::<f32>();
}

#[test]
fn every_level_matches_a_plain_loop_f64() {
    every_level_matches_a_plain_loop::<f64>();
}

#[test]
fn thread_count_does_not_change_results() {
    let _lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let n = 5 * CHUNK + 123;
    let before = parallel::num_threads();
    for how in MODES {
        parallel::set_num_threads(1).unwrap();
        let want = run::<f32>(how, n, 4);
        for threads in [2, 3] {
            parallel::set_num_threads(threads).unwrap();
            assert_eq!(run::<f32>(how, n, 4), want, "{how:?} threads={threads}");
        }
    }
    parallel::set_num_threads(before).unwrap();
}
