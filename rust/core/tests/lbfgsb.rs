//! L-BFGS-B (`Minimizer::with_bounds`) on the core alone: a bounded run is
//! bit-identical at every SIMD level the CPU has (NEON under qemu in CI)
//! and for 1, 2 or 3 threads, in f32 and f64, at a length of two
//! parallel chunks (one full, one part) plus a tail that is no multiple of any lane width; and
//! every point it asks for lies in the box.

use lec7rs_core::optimize::{Minimizer, Options, Request, Status};
use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::simd::{self, Real};

mod common;
use common::{rosen, Globals};

/// The box: a_i in [-2, 0.5] (active at the solution), b_i in [-inf, 2],
/// every 7th b_i unbounded, x_4 fixed at 0.3.
fn bounds<T: Real>(n: usize) -> (Vec<T>, Vec<T>) {
    let mut lo = vec![T::from_f64(-2.0); n];
    let mut hi = vec![T::from_f64(2.0); n];
    for i in 0..n {
        if i % 2 == 0 {
            hi[i] = T::from_f64(0.5);
        } else {
            lo[i] = T::from_f64(f64::NEG_INFINITY);
            if i % 7 == 0 {
                hi[i] = T::from_f64(f64::INFINITY);
            }
        }
    }
    lo[4] = T::from_f64(0.3);
    hi[4] = T::from_f64(0.3);
    (lo, hi)
}

/// The final x (as bits), f, nit, nfev and status of a bounded run; checks
/// that every trial point lies in the box.
fn run<T: Real>(n: usize, iters: u64) -> (Vec<f64>, f64, u64, u64, Status) {
    let x0: Vec<T> = (0..n)
        .map(|i| T::from_f64(if i % 2 == 0 { -1.2 } else { 1.0 }))
        .collect();
    let (lo, hi) = bounds::<T>(n);
    let opts = Options {
        max_iter: iters,
        ..Options::default()
    };
    let mut m = Minimizer::with_bounds(&x0, opts, lo.clone(), hi.clone()).unwrap();
    assert!(m.bounded());
    let mut g = vec![T::ZERO; n];
    loop {
        match m.next().unwrap() {
            Request::Evaluate => {
                let x = m.x_trial();
                for (i, &v) in x.iter().enumerate() {
                    assert!(lo[i] <= v && v <= hi[i], "x[{i}] = {v:?} outside the box");
                }
                let f = rosen(x, &mut g);
                m.tell(f, &g).unwrap();
            }
            Request::Iterate => {}
            Request::Direction => unreachable!(),
            Request::Done => break,
        }
    }
    let (f, nit, nfev, status) = (m.f(), m.nit(), m.nfev(), m.status().unwrap());
    let x = m.into_parts().unwrap().0;
    (x.iter().map(|v| v.to_f64()).collect(), f, nit, nfev, status)
}

fn identical_everywhere<T: Real>() {
    let _g = Globals::take();
    // `LEC7RS_TEST_QUICK=1` (valgrind in CI): fewer iterations.
    let quick = std::env::var_os("LEC7RS_TEST_QUICK").is_some_and(|v| v == "1");
    let iters = if quick { 4 } else { 12 };
    let n = CHUNK + 2 * 37;
    let mut want = None;
    for level in simd::supported_levels() {
        simd::set_level(level).unwrap();
        for threads in 1..=3 {
            parallel::set_num_threads(threads).unwrap();
            let got = run::<T>(n, iters);
            assert_eq!(got.2, iters, "{level:?}: {} iterations", got.2);
            match &want {
                None => want = Some(got),
                Some(w) => {
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got.0), bits(&w.0), "{level:?}, {threads} threads: x");
                    assert_eq!(got.1.to_bits(), w.1.to_bits(), "{level:?}, {threads}: f");
                    assert_eq!(
                        (got.2, got.3, got.4),
                        (w.2, w.3, w.4),
                        "{level:?}, {threads}"
                    );
                }
            }
        }
    }
    let (x, _, _, _, _) = want.unwrap();
    // The fixed variable stays fixed.
    assert_eq!(x[4], T::from_f64(0.3).to_f64());
}

#[test]
fn bounded_runs_are_bit_identical_across_levels_and_threads_f64() {
    identical_everywhere::<f64>();
}

#[test]
fn bounded_runs_are_bit_identical_across_levels_and_threads_f32() {
    identical_everywhere::<f32>();
}

#[test]
fn bounds_of_the_wrong_length_or_method_are_errors() {
    let x0 = [0.0f64; 4];
    let opts = Options::default();
    assert!(Minimizer::with_bounds(&x0, opts, vec![0.0; 3], vec![1.0; 4]).is_err());
    let bfgs = Options {
        method: lec7rs_core::optimize::Method::Bfgs,
        ..Options::default()
    };
    assert!(Minimizer::with_bounds(&x0, bfgs, vec![0.0; 4], vec![1.0; 4]).is_err());
    // No finite bound: the unconstrained run.
    let inf = f64::INFINITY;
    let m = Minimizer::with_bounds(&x0, opts, vec![-inf; 4], vec![inf; 4]).unwrap();
    assert!(!m.bounded());
}
