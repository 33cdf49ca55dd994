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
    adagrad_step, adam_step, rmsprop_step, sgd_step, AdagradHyper, AdagradTensor, AdamHyper,
    AdamTensor, RmspropHyper, RmspropTensor, SgdHyper, SgdTensor,
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

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam_f32");
    group.sample_size(10);
    for n in sizes() {
        let (mut p, g) = data(n);
        let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
        let mut step = 0;
        // Reads p, g, m, v; writes p, m, v.
        group.throughput(Throughput::Bytes(28 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                step += 1;
                adam_step(vec![AdamTensor {
                    param: &mut p,
                    grad: &g,
                    exp_avg: &mut m,
                    exp_avg_sq: &mut v,
                    max_exp_avg_sq: &mut [],
                    step,
                    hyper: AdamHyper::default(),
                }])
                .unwrap()
            })
        });
    }
    group.finish();
}

fn adam_many_tensors(c: &mut Criterion) {
    // 200 tensors of 50k elements, one call: the multi-tensor job.
    let mut group = c.benchmark_group("adam_f32_200x50k");
    group.sample_size(10);
    let (k, n) = (200, 50_000);
    let mut tensors: Vec<_> = (0..k)
        .map(|_| {
            let (p, g) = data(n);
            (p, g, vec![0.0f32; n], vec![0.0f32; n])
        })
        .collect();
    let mut step = 0;
    group.throughput(Throughput::Bytes(28 * (k * n) as u64));
    group.bench_function("10M", |b| {
        b.iter(|| {
            step += 1;
            adam_step(
                tensors
                    .iter_mut()
                    .map(|(p, g, m, v)| AdamTensor {
                        param: p,
                        grad: g,
                        exp_avg: m,
                        exp_avg_sq: v,
                        max_exp_avg_sq: &mut [],
                        step,
                        hyper: AdamHyper::default(),
                    })
                    .collect(),
            )
            .unwrap()
        })
    });
    group.finish();
}

fn sgd_momentum(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgd_momentum_f32");
    group.sample_size(10);
    for n in sizes() {
        let (mut p, g) = data(n);
        let mut b = vec![0.0f32; n];
        let hyper = SgdHyper {
            momentum: 0.9,
            ..SgdHyper::default()
        };
        // Reads p, g, b; writes p, b.
        group.throughput(Throughput::Bytes(20 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                sgd_step(vec![SgdTensor {
                    param: &mut p,
                    grad: &g,
                    momentum_buffer: &mut b,
                    first: false,
                    hyper,
                }])
                .unwrap()
            })
        });
    }
    group.finish();
}

fn adagrad(c: &mut Criterion) {
    let mut group = c.benchmark_group("adagrad_f32");
    group.sample_size(10);
    for n in sizes() {
        let (mut p, g) = data(n);
        let mut s = vec![0.0f32; n];
        let mut step = 0;
        // Reads p, g, s; writes p, s.
        group.throughput(Throughput::Bytes(20 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                step += 1;
                adagrad_step(vec![AdagradTensor {
                    param: &mut p,
                    grad: &g,
                    sum: &mut s,
                    step,
                    hyper: AdagradHyper::default(),
                }])
                .unwrap()
            })
        });
    }
    group.finish();
}

fn rmsprop(c: &mut Criterion) {
    let mut group = c.benchmark_group("rmsprop_f32");
    group.sample_size(10);
    for n in sizes() {
        let (mut p, g) = data(n);
        let mut v = vec![0.0f32; n];
        // Reads p, g, v; writes p, v.
        group.throughput(Throughput::Bytes(20 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                rmsprop_step(vec![RmspropTensor {
                    param: &mut p,
                    grad: &g,
                    square_avg: &mut v,
                    momentum_buffer: &mut [],
                    grad_avg: &mut [],
                    hyper: RmspropHyper::default(),
                }])
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    header,
    adam,
    adam_many_tensors,
    sgd_momentum,
    adagrad,
    rmsprop
);
criterion_main!(benches);
