//! The trust-ncg driver on the core alone: a run is bit-identical at every
//! SIMD level the CPU has and for 1, 2 or 3 threads, in f32 and f64, at
//! a length of several parallel chunks plus a tail that is no multiple of
//! any lane width.

use lec7rs_core::optimize::{TrustNcg, TrustOptions, TrustRequest};
use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::simd::{self, Level, Real};

mod common;
use common::{rosen, Globals, Rng};

fn rosen_hessp<T: Real>(x: &[T], p: &[T], hp: &mut [T]) {
    for i in (0..x.len()).step_by(2) {
        let (a, b) = (x[i].to_f64(), x[i + 1].to_f64());
        let (p0, p1) = (p[i].to_f64(), p[i + 1].to_f64());
        let h11 = 1200.0 * a * a - 400.0 * b + 2.0;
        let h12 = -400.0 * a;
        hp[i] = T::from_f64(h11 * p0 + h12 * p1);
        hp[i + 1] = T::from_f64(h12 * p0 + 200.0 * p1);
    }
}

/// Everything a run ends with, as bits.
#[derive(Debug, PartialEq)]
struct Outcome {
    x: Vec<u64>,
    g: Vec<u64>,
    f: u64,
    counts: (u64, u64, u64),
    radius: u64,
    message: String,
}

fn run<T: Real>(x0: &[T], opts: TrustOptions) -> Outcome {
    let n = x0.len();
    let mut t = TrustNcg::new(x0, opts).unwrap();
    let (mut g, mut hp) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    loop {
        match t.next().unwrap() {
            TrustRequest::Evaluate => {
                let f = rosen(t.x_trial(), &mut g);
                t.tell(f, &g).unwrap();
            }
            TrustRequest::HessVec => {
                rosen_hessp(t.x(), t.hess_vector(), &mut hp);
                t.tell_hessp(&hp).unwrap();
            }
            TrustRequest::Iterate => {}
            TrustRequest::Done => break,
        }
    }
    let counts = (t.nit(), t.nfev(), t.nhev());
    let (f, radius, message) = (t.f(), t.radius(), t.message().to_string());
    let (x, g) = t.into_parts();
    let bits = |v: &[T]| v.iter().map(|e| e.to_f64().to_bits()).collect();
    Outcome {
        x: bits(&x),
        g: bits(&g),
        f: f.to_bits(),
        counts,
        radius: radius.to_bits(),
        message,
    }
}

fn bit_identical<T: Real>() {
    let _globals = Globals::take();
    // The standard start, perturbed so that the pairs differ.
    let n = 3 * CHUNK + 18;
    let noise: Vec<f64> = Rng(7).vec(n);
    let x0: Vec<T> = (0..n)
        .map(|i| {
            let base = if i % 2 == 0 { -1.2 } else { 1.0 };
            T::from_f64(base + 0.05 * noise[i])
        })
        .collect();
    let opts = TrustOptions {
        gtol: 0.0,
        max_iter: 12,
        ..TrustOptions::default()
    };
    simd::set_level(Level::Scalar).unwrap();
    parallel::set_num_threads(1).unwrap();
    let want = run(&x0, opts);
    assert_eq!(want.counts.0, 12, "{}", want.message);
    // CG took more than one product somewhere: the whole subproblem ran.
    assert!(want.counts.2 > want.counts.0, "{:?}", want.counts);
    for level in simd::supported_levels() {
        simd::set_level(level).unwrap();
        for threads in [1, 2, 3] {
            parallel::set_num_threads(threads).unwrap();
            let got = run(&x0, opts);
            assert!(got == want, "{level} with {threads} threads");
        }
    }
}

#[test]
fn bit_identical_across_levels_and_threads_f64() {
    bit_identical::<f64>();
}

#[test]
fn bit_identical_across_levels_and_threads_f32() {
    bit_identical::<f32>();
}
