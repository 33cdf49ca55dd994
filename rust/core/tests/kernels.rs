//! Kernel tests on the core alone: every SIMD level against scalar at lengths
//! around each lane width (the scalar tail), 1 vs N threads, a plain-loop
//! reference, and "an error writes nothing".

use std::sync::Mutex;

use lec7rs_core::optim::{
    self, Adagrad, AdagradHyper, Adam, AdamHyper, Rmsprop, RmspropHyper, Rule, Sgd, SgdHyper,
    Tensor, MAX_SLOTS,
};
use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::simd::{self, Level, Real};
use lec7rs_core::Error;

mod common;
use common::Rng;

/// Tests that change the SIMD level or thread count hold this lock.
static GLOBALS: Mutex<()> = Mutex::new(());

/// Lengths around the lane widths 2, 4, 8, 16 and the chunk size.
const LENGTHS: &[usize] = &[
    0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 65, 1000,
];

/// The state a rule carries between steps, as plain vectors.
#[derive(Clone, PartialEq, Debug)]
struct Run<T> {
    param: Vec<T>,
    state: [Vec<T>; 3],
}

fn bits<T: Real>(run: &Run<T>) -> Vec<u64> {
    run.param
        .iter()
        .chain(run.state.iter().flatten())
        .map(|x| x.to_f64().to_bits())
        .collect()
}

/// One tensor of a step: `slots` in the rule's order, none fresh.
fn tensor<'a, T: Real, H>(
    param: &'a mut [T],
    grad: &'a [T],
    shape: &'a [usize],
    slots: Vec<&'a mut [T]>,
    step: u64,
    hyper: H,
) -> Tensor<'a, T, H> {
    let mut all: [&mut [T]; MAX_SLOTS] = Default::default();
    for (k, s) in slots.into_iter().enumerate() {
        all[k] = s;
    }
    Tensor {
        param,
        grad,
        shape,
        slots: all,
        scalars: [0.0; MAX_SLOTS],
        fresh: [step == 1; MAX_SLOTS],
        step,
        hyper,
        grad_scale: None,
    }
}

fn adamw() -> AdamHyper {
    AdamHyper {
        weight_decay: 1e-2,
        decoupled_weight_decay: true,
        ..AdamHyper::default()
    }
}

/// Runs `steps` steps of `rule` on a param of length `n` from a fixed seed.
fn run<T: Real>(rule: &str, n: usize, steps: u64) -> Run<T> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let mut r = Run {
        param: rng.vec(n),
        state: [vec![T::ZERO; n], vec![T::ZERO; n], vec![T::ZERO; n]],
    };
    let shape = [n];
    for step in 1..=steps {
        let grad: Vec<T> = rng.vec(n);
        let [a, b, c] = &mut r.state;
        let (p, slots) = (&mut r.param[..], vec![&mut a[..], &mut b[..], &mut c[..]]);
        match rule {
            "sgd" => optim::step::<Sgd, T>(&mut [tensor(
                p,
                &grad,
                &shape,
                slots,
                step,
                SgdHyper {
                    lr: 0.01,
                    momentum: 0.9,
                    nesterov: true,
                    weight_decay: 0.01,
                    ..SgdHyper::default()
                },
            )]),
            "adagrad" => optim::step::<Adagrad, T>(&mut [tensor(
                p,
                &grad,
                &shape,
                slots,
                step,
                AdagradHyper {
                    lr_decay: 0.01,
                    maximize: true,
                    ..AdagradHyper::default()
                },
            )]),
            "rmsprop" => optim::step::<Rmsprop, T>(&mut [tensor(
                p,
                &grad,
                &shape,
                slots,
                step,
                RmspropHyper {
                    momentum: 0.5,
                    centered: true,
                    weight_decay: 0.1,
                    ..RmspropHyper::default()
                },
            )]),
            "adam" => optim::step::<Adam, T>(&mut [tensor(
                p,
                &grad,
                &shape,
                slots,
                step,
                AdamHyper {
                    amsgrad: true,
                    weight_decay: 0.01,
                    ..adamw()
                },
            )]),
            _ => unreachable!(),
        }
        .unwrap();
    }
    r
}

const RULES: &[&str] = &["sgd", "adagrad", "rmsprop", "adam"];

fn every_level_matches_scalar<T: Real>() {
    let _lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let best = simd::level();
    for &rule in RULES {
        for &n in LENGTHS {
            simd::set_level(Level::Scalar).unwrap();
            let want = bits(&run::<T>(rule, n, 5));
            for level in simd::supported_levels() {
                simd::set_level(level).unwrap();
                let got = bits(&run::<T>(rule, n, 5));
                assert_eq!(got, want, "{rule} n={n} level={level}");
            }
        }
    }
    simd::set_level(best).unwrap();
}

#[test]
fn every_level_matches_scalar_f32() {
    every_level_matches_scalar::<f32>();
}

#[test]
fn every_level_matches_scalar_f64() {
    every_level_matches_scalar::<f64>();
}

#[test]
fn thread_count_does_not_change_results() {
    let _lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let before = parallel::num_threads();
    let n = 3 * CHUNK + 77;
    for &rule in RULES {
        parallel::set_num_threads(1).unwrap();
        let want = bits(&run::<f32>(rule, n, 3));
        for threads in [2, 3, 5] {
            parallel::set_num_threads(threads).unwrap();
            assert_eq!(
                bits(&run::<f32>(rule, n, 3)),
                want,
                "{rule} threads={threads}"
            );
        }
    }
    parallel::set_num_threads(before).unwrap();
}

#[test]
fn adam_matches_a_plain_loop() {
    // The algorithm box, written out element by element in f64.
    let n = 37;
    let h = AdamHyper {
        lr: 0.01,
        ..AdamHyper::default()
    };
    let mut rng = Rng(42);
    let mut p: Vec<f64> = rng.vec(n);
    let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
    let (mut p2, mut m2, mut v2) = (p.clone(), m.clone(), v.clone());
    for step in 1..=20u64 {
        let g: Vec<f64> = rng.vec(n);
        optim::step::<Adam, f64>(&mut [tensor(&mut p, &g, &[n], vec![&mut m, &mut v], step, h)])
            .unwrap();
        let t = step as f64;
        for i in 0..n {
            let (beta1, beta2) = h.betas;
            m2[i] = beta1 * m2[i] + (1.0 - beta1) * g[i];
            v2[i] = beta2 * v2[i] + (1.0 - beta2) * g[i] * g[i];
            let m_hat = m2[i] / (1.0 - beta1.powf(t));
            let v_hat = v2[i] / (1.0 - beta2.powf(t));
            p2[i] -= h.lr * m_hat / (v_hat.sqrt() + h.eps);
        }
    }
    for i in 0..n {
        assert!((p[i] - p2[i]).abs() <= 1e-12 * p2[i].abs().max(1.0), "{i}");
    }
}

#[test]
fn an_error_writes_nothing() {
    let mut p = vec![1.0f32; 10];
    let g = vec![0.5f32; 10];
    let (mut m, mut v) = (vec![0.0f32; 10], vec![0.0f32; 9]);
    // The second tensor is bad: the first must not be written either.
    let mut p0 = vec![1.0f32; 4];
    let (mut m0, mut v0) = (vec![0.0f32; 4], vec![0.0f32; 4]);
    let err = optim::step::<Adam, f32>(&mut [
        tensor(
            &mut p0,
            &[0.5; 4],
            &[4],
            vec![&mut m0, &mut v0],
            1,
            AdamHyper::default(),
        ),
        tensor(
            &mut p,
            &g,
            &[10],
            vec![&mut m, &mut v],
            1,
            AdamHyper::default(),
        ),
    ])
    .unwrap_err();
    assert!(matches!(err, Error::LengthMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tensor 1: exp_avg_sq"));
    assert_eq!(p0, vec![1.0; 4]);
    assert_eq!(m0, vec![0.0; 4]);
    assert_eq!(p, vec![1.0; 10]);
}

#[test]
fn hyperparameters_are_validated() {
    let bad = [
        AdamHyper {
            lr: -1.0,
            ..AdamHyper::default()
        },
        AdamHyper {
            betas: (1.0, 0.999),
            ..AdamHyper::default()
        },
        AdamHyper {
            betas: (0.9, f64::NAN),
            ..AdamHyper::default()
        },
        AdamHyper {
            eps: -1e-8,
            ..AdamHyper::default()
        },
    ];
    for h in bad {
        assert!(Adam::validate(&h).is_err(), "{h:?}");
    }
    assert!(Adam::validate(&AdamHyper::default()).is_ok());
    assert!(Adam::validate(&adamw()).is_ok());
    let nesterov = SgdHyper {
        nesterov: true,
        ..SgdHyper::default()
    };
    assert!(Sgd::validate(&nesterov).is_err());
    let alpha = RmspropHyper {
        alpha: 1.5,
        ..RmspropHyper::default()
    };
    assert!(Rmsprop::validate(&alpha).is_err());
}

#[test]
fn amsgrad_needs_its_buffer() {
    let mut p = vec![1.0f64; 3];
    let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
    let err = optim::step::<Adam, f64>(&mut [tensor(
        &mut p,
        &[1.0; 3],
        &[3],
        vec![&mut m, &mut v],
        1,
        AdamHyper {
            amsgrad: true,
            ..AdamHyper::default()
        },
    )])
    .unwrap_err();
    assert!(err.to_string().contains("max_exp_avg_sq"));
    assert_eq!(p, vec![1.0; 3]);
}

#[test]
fn nan_max_propagates_like_numpy() {
    // maximum(vmax, v) with NaN on either side is NaN: checked through
    // amsgrad at every level.
    let _lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let best = simd::level();
    for level in simd::supported_levels() {
        simd::set_level(level).unwrap();
        let n = 40;
        let mut p = vec![1.0f32; n];
        let mut g = vec![0.5f32; n];
        g[3] = f32::NAN;
        g[21] = f32::INFINITY;
        let mut vmax = vec![0.0f32; n];
        vmax[5] = f32::NAN;
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        optim::step::<Adam, f32>(&mut [tensor(
            &mut p,
            &g,
            &[n],
            vec![&mut m, &mut v, &mut vmax],
            1,
            AdamHyper {
                amsgrad: true,
                ..AdamHyper::default()
            },
        )])
        .unwrap();
        for (i, x) in vmax.iter().enumerate() {
            assert_eq!(x.is_nan(), matches!(i, 3 | 5), "{level} {i}");
        }
        assert_eq!(vmax[21], f32::INFINITY);
        assert!(p[0].is_finite() && p[3].is_nan() && p[5].is_nan());
    }
    simd::set_level(best).unwrap();
}
