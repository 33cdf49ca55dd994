//! Criterion benches of the Philox stream and dropout.
//!
//!     cargo bench -p lec7rs-core --bench random
//!     LEC7RS_NUM_THREADS=1 LEC7RS_SIMD=scalar cargo bench -p lec7rs-core --bench random -- words
//!
//! `block_words/*` the block-major order of stochastic rounding.
//! `words/*` measures raw generator throughput: criterion's bytes/s times 8
//! is random bits per second, per core with `LEC7RS_NUM_THREADS=1` (the
//! default here; set it to compare thread counts). `dropout_f32/*` reports
//! the bytes the forward pass must stream (read x, write y and the mask:
//! 9 per element); compare with the copy bandwidth of
//! `shared/bench/roofline.c`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lec7rs_core::random::{fill_block_words, fill_uniform, fill_words, Stream};
use lec7rs_core::regularization::{dropout_train, Dest};
use lec7rs_core::{parallel, simd};

fn setup() {
    if std::env::var_os("LEC7RS_NUM_THREADS").is_none() {
        parallel::set_num_threads(1).unwrap();
    }
    eprintln!(
        "lec7rs random: simd={} threads={}",
        simd::level(),
        parallel::num_threads()
    );
}

fn words(c: &mut Criterion) {
    setup();
    let mut group = c.benchmark_group("words");
    // In L2 (the generator alone) and large (with the store traffic).
    for n in [64 * 1024, 16 << 20] {
        let mut out = vec![0u32; n];
        let mut stream = Stream::new(1);
        group.throughput(Throughput::Bytes(4 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let draw = stream.reserve(n as u64).unwrap();
                fill_words(draw, 0, &mut out).unwrap();
            })
        });
    }
    group.finish();
}

/// The block-major words of stochastic rounding (one thread: its callers
/// run inside their own chunks), in L2.
fn block_words(c: &mut Criterion) {
    let mut group = c.benchmark_group("block_words");
    let n = 64 * 1024;
    let mut out = vec![0u32; n];
    group.throughput(Throughput::Bytes(4 * n as u64));
    group.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| fill_block_words([1, 2], [3, 4, 5], 0, &mut out))
    });
    group.finish();
}

fn uniform(c: &mut Criterion) {
    let mut group = c.benchmark_group("uniform_f64");
    let n = 1 << 20;
    let mut out = vec![0f64; n];
    let mut stream = Stream::new(2);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| {
            let draw = stream.reserve(2 * n as u64).unwrap();
            fill_uniform(draw, &mut out).unwrap();
        })
    });
    group.finish();
}

fn dropout(c: &mut Criterion) {
    let mut group = c.benchmark_group("dropout_f32");
    group.sample_size(20);
    for n in [1 << 20, 16 << 20] {
        let x: Vec<f32> = (0..n).map(|i| (i % 101) as f32 - 50.0).collect();
        let (mut y, mut mask) = (vec![0f32; n], vec![0u8; n]);
        let mut stream = Stream::new(3);
        group.throughput(Throughput::Bytes(9 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let draw = stream.reserve(n as u64).unwrap();
                dropout_train(Some(&x), &mut y, &mut mask, 0.5, true, draw, Dest::Existing)
                    .unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, words, block_words, uniform, dropout);
criterion_main!(benches);
