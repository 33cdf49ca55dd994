//! Criterion bench of the L-BFGS two-loop recursion alone (`d = -H g` over
//! `m` pairs), reported in bytes/s of the memory it must stream: the fused
//! recursion makes `2m + 1` passes and moves `(8m + 2) n` elements (every
//! `s_i` and `y_i` read twice, the work vector read and written once per
//! pass, `g` read twice). Compare with the copy bandwidth of
//! `shared/bench/roofline.c` (`benches/optimize_targets.py` does, side by
//! side).
//!
//!     cargo bench -p lec7rs-core --bench two_loop
//!     LEC7RS_NUM_THREADS=1 cargo bench -p lec7rs-core --bench two_loop
//!
//! `LEC7RS_BENCH_N` overrides n (default 1e6); m = 10.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lec7rs_core::optimize::{two_loop, Pair};
use lec7rs_core::{parallel, simd};

fn n() -> usize {
    std::env::var("LEC7RS_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

fn bench<T: simd::Real>(c: &mut Criterion, name: &str) {
    let (n, m) = (n(), 10usize);
    let val = |i: usize, k: usize| T::from_f64(((i * 7 + k * 13) % 17) as f64 * 0.1 - 0.8);
    let s: Vec<Vec<T>> = (0..m)
        .map(|k| (0..n).map(|i| val(i, k)).collect())
        .collect();
    // y_i = 2 s_i + small: s'y > 0.
    let y: Vec<Vec<T>> = s
        .iter()
        .enumerate()
        .map(|(k, v)| {
            v.iter()
                .enumerate()
                .map(|(i, &x)| T::from_f64(2.0 * x.to_f64() + 0.01 * val(i, k + 1).to_f64()))
                .collect()
        })
        .collect();
    let g: Vec<T> = (0..n).map(|i| val(i, 99)).collect();
    let mut d = vec![T::ZERO; n];
    let pairs: Vec<Pair<'_, T>> = s
        .iter()
        .zip(&y)
        .map(|(s, y)| Pair {
            s,
            y,
            rho: 1.0 / lec7rs_core::optimize::dot(s, y).unwrap(),
        })
        .collect();
    let bytes = (8 * m + 2) * n * std::mem::size_of::<T>();
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_with_input(BenchmarkId::new("m10", n), &n, |b, _| {
        b.iter(|| two_loop(&pairs, 0.5, &g, &mut d, true, &g).unwrap())
    });
    group.finish();
}

fn two_loop_f64(c: &mut Criterion) {
    eprintln!(
        "lec7rs two_loop: simd={} threads={}",
        simd::level(),
        parallel::num_threads()
    );
    bench::<f64>(c, "two_loop_f64");
}

fn two_loop_f32(c: &mut Criterion) {
    bench::<f32>(c, "two_loop_f32");
}

criterion_group!(benches, two_loop_f64, two_loop_f32);
criterion_main!(benches);
