//! Criterion benches of the core's optimizer kernels, reported in bytes/s
//! (the bytes each step must stream: read param, grad and state, write param
//! and state). Compare with the copy bandwidth of `shared/bench/roofline.c`.
//!
//!     cargo bench -p lec7rs-core --bench kernels
//!     LEC7RS_NUM_THREADS=1 cargo bench -p lec7rs-core --bench kernels -- adam
//!
//! Sizes: 1M elements (in cache) and 50M (memory-bound); `LEC7RS_BENCH_N`
//! overrides the large size.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lec7rs_core::optim::{
    self, Adafactor, Adagrad, Adam, Kind, Rmsprop, Rule, Sgd, SgdHyper, Tensor, MAX_SLOTS,
};
use lec7rs_core::{parallel, simd};

fn sizes() -> Vec<usize> {
    let large = std::env::var("LEC7RS_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000_000);
    vec![1_000_000, large]
}

fn data(n: usize) -> (Vec<f32>, Vec<f32>) {
    let param = (0..n).map(|i| 1.0 + (i % 13) as f32 * 0.01).collect();
    let grad = (0..n).map(|i| 0.01 * (i % 7) as f32 - 0.03).collect();
    (param, grad)
}

fn header(c: &mut Criterion) {
    let _ = c;
    eprintln!(
        "lec7rs kernels: simd={} threads={}",
        simd::level(),
        parallel::num_threads()
    );
}

/// The state arrays of rule `R` for a tensor of `shape` with
/// hyperparameters `h` (only the slots they use), and the bytes a step
/// must stream: param and grad read, param written, each slot read and
/// written (a factored slot is one number per row or column).
fn state<R: Rule>(h: &R::Hyper, shape: &[usize]) -> (Vec<Vec<f32>>, u64) {
    let n: usize = shape.iter().product();
    let mut bytes = 12 * n as u64;
    let slots = (0..R::SLOTS.len())
        .map(|k| {
            let slot = R::SLOTS[k];
            let used = slot.kind != Kind::Scalar && R::uses(h, k, shape.len());
            let len = match slot.kind.shape(shape) {
                Some(s) if used => s.iter().product(),
                _ => 0,
            };
            bytes += 8 * len as u64;
            vec![R::init(h, k) as f32; len]
        })
        .collect();
    (slots, bytes)
}

/// A tensor's param, grad and state slots.
type Item = (Vec<f32>, Vec<f32>, Vec<Vec<f32>>);

fn tensors<'a, R: Rule>(
    items: &'a mut [Item],
    shape: &'a [usize],
    h: R::Hyper,
    step: u64,
) -> Vec<Tensor<'a, f32, R::Hyper>> {
    items
        .iter_mut()
        .map(|(p, g, slots)| {
            let mut all: [&mut [f32]; MAX_SLOTS] = Default::default();
            for (k, s) in slots.iter_mut().enumerate() {
                all[k] = s;
            }
            Tensor {
                param: p,
                grad: g,
                shape,
                slots: all,
                scalars: [0.0; MAX_SLOTS],
                fresh: [false; MAX_SLOTS],
                step,
                hyper: h,
                grad_scale: None,
            }
        })
        .collect()
}

/// Steps of rule `R` over `k` vectors of each size.
fn bench_rule<R: Rule>(c: &mut Criterion, name: &str, h: R::Hyper, k: usize) {
    bench_shaped::<R>(c, name, h, k, |n| vec![n]);
}

/// Steps of rule `R` over `k` tensors of shape `shape(size)` for each size.
fn bench_shaped<R: Rule>(
    c: &mut Criterion,
    name: &str,
    h: R::Hyper,
    k: usize,
    shape: impl Fn(usize) -> Vec<usize>,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    let sizes = if k == 1 { sizes() } else { vec![50_000] };
    for size in sizes {
        let shape = shape(size);
        let n = shape.iter().product();
        let (_, bytes) = state::<R>(&h, &shape);
        let mut items: Vec<_> = (0..k)
            .map(|_| {
                let (p, g) = data(n);
                (p, g, state::<R>(&h, &shape).0)
            })
            .collect();
        let mut step = 0;
        group.throughput(Throughput::Bytes(bytes * k as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n * k), &n, |b, _| {
            b.iter(|| {
                step += 1;
                let mut ts = tensors::<R>(&mut items, &shape, h, step);
                optim::step::<R, f32>(&mut ts).unwrap()
            })
        });
    }
    group.finish();
}

fn adam(c: &mut Criterion) {
    bench_rule::<Adam>(c, "adam_f32", Default::default(), 1);
}

fn adam_many_tensors(c: &mut Criterion) {
    // 200 tensors of 50k elements, one call: the multi-tensor job.
    bench_rule::<Adam>(c, "adam_f32_200x50k", Default::default(), 200);
}

fn sgd_momentum(c: &mut Criterion) {
    let h = SgdHyper {
        momentum: 0.9,
        ..SgdHyper::default()
    };
    bench_rule::<Sgd>(c, "sgd_momentum_f32", h, 1);
}

fn adagrad(c: &mut Criterion) {
    bench_rule::<Adagrad>(c, "adagrad_f32", Default::default(), 1);
}

fn rmsprop(c: &mut Criterion) {
    bench_rule::<Rmsprop>(c, "rmsprop_f32", Default::default(), 1);
}

fn adafactor(c: &mut Criterion) {
    // A matrix of 5000 columns (50M elements: 10000 x 5000): three passes,
    // 24 bytes per element moved against the 12 it must stream; a vector:
    // two passes, 28 against 20.
    bench_shaped::<Adafactor>(c, "adafactor_f32", Default::default(), 1, |n| {
        vec![n / 5000, 5000]
    });
    bench_rule::<Adafactor>(c, "adafactor_f32_vector", Default::default(), 1);
}

criterion_group!(
    benches,
    header,
    adam,
    adam_many_tensors,
    sgd_momentum,
    adagrad,
    rmsprop,
    adafactor
);
criterion_main!(benches);
