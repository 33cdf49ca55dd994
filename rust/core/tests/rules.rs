//! Every update rule of the table, on the core alone: each SIMD level the CPU
//! has (NEON under qemu in CI) against scalar, bit for bit, and 1 vs N
//! threads, at lengths around every lane width, the chunk size and (for
//! the rules with per-tensor norms) several chunks; and the dispatched
//! level is the best one (no silent fall-back to scalar).

use lec7rs_core::optim::{self, Kind, Rule, Tensor, MAX_SLOTS};
use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::simd::{self, Level, Real};

mod common;
use common::{Globals, Rng};

/// One param with its state, stepped as the binding steps it.
struct Param<T> {
    shape: Vec<usize>,
    value: Vec<T>,
    slots: Vec<Vec<T>>,
    scalars: [f64; MAX_SLOTS],
    step: u64,
}

impl<T: Real> Param<T> {
    fn new<R: Rule>(h: &R::Hyper, shape: &[usize], rng: &mut Rng) -> Self {
        let n = shape.iter().product();
        let ndim = shape.len();
        let mut scalars = [0.0; MAX_SLOTS];
        let slots = R::SLOTS
            .iter()
            .enumerate()
            .map(|(k, slot)| {
                let len = match slot.kind.shape(shape) {
                    Some(s) if R::uses(h, k, ndim) => s.iter().product(),
                    _ => 0,
                };
                if slot.kind == Kind::Scalar {
                    scalars[k] = R::init(h, k);
                }
                vec![T::from_f64(R::init(h, k)); len]
            })
            .collect();
        Param {
            shape: shape.to_vec(),
            value: rng.vec(n),
            slots,
            scalars,
            step: 0,
        }
    }

    /// The param and all its state, as bits.
    fn bits(&self) -> Vec<u64> {
        let scalars = self.scalars.iter().map(|s| s.to_bits());
        self.value
            .iter()
            .chain(self.slots.iter().flatten())
            .map(|x| x.to_f64().to_bits())
            .chain(scalars)
            .collect()
    }
}

/// `steps` steps of rule `R` over params of `shapes` (one call each).
fn run<R: Rule, T: Real>(h: R::Hyper, shapes: &[Vec<usize>], steps: u64) -> Vec<u64> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ shapes.len() as u64);
    let mut params: Vec<Param<T>> = shapes
        .iter()
        .map(|s| Param::new::<R>(&h, s, &mut rng))
        .collect();
    for _ in 0..steps {
        let grads: Vec<Vec<T>> = params.iter().map(|p| rng.vec(p.value.len())).collect();
        let mut tensors: Vec<Tensor<'_, T, R::Hyper>> = params
            .iter_mut()
            .zip(&grads)
            .map(|(p, g)| {
                p.step += 1;
                let mut slots: [&mut [T]; MAX_SLOTS] = Default::default();
                for (k, s) in p.slots.iter_mut().enumerate() {
                    slots[k] = &mut s[..];
                }
                Tensor {
                    param: &mut p.value,
                    grad: g,
                    shape: &p.shape,
                    slots,
                    scalars: p.scalars,
                    fresh: [p.step == 1; MAX_SLOTS],
                    step: p.step,
                    hyper: h,
                    grad_scale: None,
                }
            })
            .collect();
        optim::step::<R, T>(&mut tensors).unwrap_or_else(|e| panic!("{}: {e}", R::NAME));
        let scalars: Vec<[f64; MAX_SLOTS]> = tensors.iter().map(|t| t.scalars).collect();
        drop(tensors);
        for (p, s) in params.iter_mut().zip(scalars) {
            p.scalars = s;
        }
    }
    params.iter().flat_map(|p| p.bits()).collect()
}

/// `LEC7RS_TEST_QUICK=1` (set by `.ci/run` under valgrind, which runs
/// these about 40x slower): fewer and smaller shapes, f32 only, 2 steps.
fn quick() -> bool {
    std::env::var_os("LEC7RS_TEST_QUICK").is_some_and(|v| v == "1")
}

/// Vectors around the lane widths 2, 4, 8, 16, one past the inline limit
/// and one over several chunks (the norms' fixed trees), in one call.
fn vectors() -> Vec<Vec<usize>> {
    let mut v: Vec<Vec<usize>> = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 1000]
        .iter()
        .map(|&n| vec![n])
        .collect();
    v.push(vec![if quick() { CHUNK + 17 } else { 3 * CHUNK + 17 }]);
    v
}

/// Matrices for the rules of 2-D params (Adafactor, Muon).
fn matrices() -> Vec<Vec<usize>> {
    let mut m = vec![vec![7, 9], vec![33, 65], vec![1, 17]];
    if !quick() {
        m.push(vec![600, 70]);
    }
    m
}

fn steps() -> u64 {
    if quick() {
        2
    } else {
        4
    }
}

/// Calls `$check::<Rule>(hyper, matrix)` for every rule of the table, each
/// with some non-default options (`matrix`: 2-D params only).
macro_rules! every_rule {
    ($check:ident) => {{
        use optim::*;
        $check::<Sgd>(
            SgdHyper {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.01,
                ..Default::default()
            },
            false,
        );
        $check::<Adagrad>(
            AdagradHyper {
                lr_decay: 0.01,
                maximize: true,
                ..Default::default()
            },
            false,
        );
        $check::<Rmsprop>(
            RmspropHyper {
                momentum: 0.5,
                centered: true,
                ..Default::default()
            },
            false,
        );
        $check::<Adam>(
            AdamHyper {
                amsgrad: true,
                weight_decay: 0.01,
                ..Default::default()
            },
            false,
        );
        $check::<Nadam>(
            NadamHyper {
                weight_decay: 0.1,
                decoupled_weight_decay: true,
                ..Default::default()
            },
            false,
        );
        $check::<Radam>(
            RadamHyper {
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Adamax>(
            AdamaxHyper {
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Adadelta>(
            AdadeltaHyper {
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Rprop>(RpropHyper::default(), false);
        $check::<Asgd>(
            AsgdHyper {
                t0: 2.0,
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Lion>(
            LionHyper {
                weight_decay: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Lamb>(
            LambHyper {
                weight_decay: 0.1,
                trust_clip: true,
                ..Default::default()
            },
            false,
        );
        $check::<Lars>(
            LarsHyper {
                weight_decay: 0.01,
                nesterov: true,
                ..Default::default()
            },
            false,
        );
        $check::<ScheduleFreeAdamw>(
            ScheduleFreeAdamwHyper {
                weight_decay: 0.1,
                ckp1: 0.3,
                scheduled_lr: 0.01,
                k: 3,
                ..Default::default()
            },
            false,
        );
        $check::<ScheduleFreeSgd>(
            ScheduleFreeSgdHyper {
                weight_decay: 0.1,
                ckp1: 0.7,
                scheduled_lr: 0.1,
                ..Default::default()
            },
            false,
        );
        $check::<Adafactor>(
            AdafactorHyper {
                weight_decay: 0.1,
                ..Default::default()
            },
            true,
        );
        $check::<Muon>(MuonHyper::default(), true);
    }};
}

fn shapes(matrix: bool) -> Vec<Vec<usize>> {
    if matrix {
        matrices()
    } else {
        vectors()
    }
}

fn levels_match<R: Rule, T: Real>(h: R::Hyper, matrix: bool) {
    let shapes = shapes(matrix);
    simd::set_level(Level::Scalar).unwrap();
    let want = run::<R, T>(h, &shapes, steps());
    for level in simd::supported_levels() {
        simd::set_level(level).unwrap();
        assert!(
            run::<R, T>(h, &shapes, steps()) == want,
            "{} level={level}",
            R::NAME
        );
    }
}

#[test]
fn every_rule_at_every_level_matches_scalar() {
    fn check<R: Rule>(h: R::Hyper, matrix: bool) {
        levels_match::<R, f32>(h, matrix);
        if !quick() {
            levels_match::<R, f64>(h, matrix);
        }
    }
    let _globals = Globals::take();
    every_rule!(check);
}

#[test]
fn every_rule_is_thread_count_independent() {
    fn check<R: Rule, T: Real>(h: R::Hyper, matrix: bool) {
        let shapes = shapes(matrix);
        parallel::set_num_threads(1).unwrap();
        let want = run::<R, T>(h, &shapes, steps());
        for threads in [2, 3] {
            parallel::set_num_threads(threads).unwrap();
            assert!(
                run::<R, T>(h, &shapes, steps()) == want,
                "{} threads={threads}",
                R::NAME
            );
        }
    }
    fn check32<R: Rule>(h: R::Hyper, matrix: bool) {
        check::<R, f32>(h, matrix);
    }
    let _globals = Globals::take();
    every_rule!(check32);
}

#[test]
fn the_best_level_is_dispatched() {
    // No silent fall-back to scalar: without LEC7RS_SIMD the kernels run
    // the best level this CPU has (NEON on aarch64).
    let _globals = Globals::take();
    if std::env::var_os("LEC7RS_SIMD").is_some() {
        return;
    }
    assert_eq!(simd::level(), simd::best_level());
    #[cfg(target_arch = "aarch64")]
    assert_eq!(simd::best_level(), Level::Neon);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        assert_ne!(simd::best_level(), Level::Scalar);
    }
}

#[test]
fn a_slot_shape_fits_exactly_the_shape_it_names() {
    let kinds = [Kind::Param, Kind::Rows, Kind::Cols, Kind::Scalar];
    let shapes: [&[usize]; 6] = [&[], &[5], &[3, 4], &[2, 3, 4], &[1, 1], &[4, 1]];
    for kind in kinds {
        for param in shapes {
            for other in shapes {
                let want = kind.shape(param);
                assert_eq!(
                    kind.fits(param, other),
                    want.as_deref() == Some(other),
                    "{kind:?} {param:?} {other:?}"
                );
            }
        }
    }
}
