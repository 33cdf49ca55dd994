//! Criterion bench of the L-BFGS direction alone (`d = -H g` over `m`
//! pairs), reported in bytes/s of the memory each form must stream:
//!
//! - `two_loop`: the fused recursion makes `2m + 1` passes and moves
//!   `(8m + 2) n` elements (every `s_i` and `y_i` read twice, the work vector
//!   read and written once per pass, `g` read twice).
//! - `compact`: `History::direction`, the compact representation that
//!   `minimize` uses, with a new pair committed before every direction as in
//!   a run: two passes, `(4m + 3) n` elements (every `s_i`, `y_i` and `g`
//!   read twice, `d` written once).
//!
//! Compare with the copy bandwidth of `shared/bench/roofline.c`
//! (`benches/optimize_targets.py` does, side by side).
//!
//!     cargo bench -p lec7rs-core --bench two_loop
//!     LEC7RS_NUM_THREADS=1 cargo bench -p lec7rs-core --bench two_loop
//!
//! `LEC7RS_BENCH_N` overrides n (default 1e6), `LEC7RS_BENCH_M` m (default
//! 10).

use std::collections::HashMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lec7rs_core::optimize::{dot, two_loop, History, Pair};
use lec7rs_core::{parallel, simd};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn bench<T: simd::Real>(c: &mut Criterion, name: &str) {
    let (n, m) = (env("LEC7RS_BENCH_N", 1_000_000), env("LEC7RS_BENCH_M", 10));
    let val = |i: usize, k: usize| T::from_f64(((i * 7 + k * 13) % 17) as f64 * 0.1 - 0.8);
    // m + 1 pairs (the history's ring and its spare slot), y_i = 2 s_i +
    // small: s'y > 0.
    let s: Vec<Vec<T>> = (0..=m)
        .map(|k| (0..n).map(|i| val(i, k)).collect())
        .collect();
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
    let pairs: Vec<Pair<'_, T>> = s[..m]
        .iter()
        .zip(&y)
        .map(|(s, y)| Pair {
            s,
            y,
            rho: 1.0 / dot(s, y).unwrap(),
        })
        .collect();
    let elem = std::mem::size_of::<T>();
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.throughput(Throughput::Bytes(((8 * m + 2) * n * elem) as u64));
    group.bench_with_input(BenchmarkId::new(format!("two_loop_m{m}"), n), &n, |b, _| {
        b.iter(|| two_loop(&pairs, 0.5, &g, &mut d, true, &g).unwrap())
    });

    // The slot of each pair is known by the address of its storage, so a
    // recycled spare slot can be committed again with its own s'y, y'y.
    let mut h = History::<T>::new(n, m).unwrap();
    let mut dots = HashMap::new();
    for (sk, yk) in s.iter().zip(&y) {
        let (hs, hy) = h.spare_mut();
        hs.copy_from_slice(sk);
        hy.copy_from_slice(yk);
        let (sy, yy) = (dot(sk, yk).unwrap(), dot(yk, yk).unwrap());
        dots.insert(hs.as_ptr() as usize, (sy, yy));
        h.commit(sy, yy);
    }
    group.throughput(Throughput::Bytes(((4 * m + 3) * n * elem) as u64));
    group.bench_with_input(BenchmarkId::new(format!("compact_m{m}"), n), &n, |b, _| {
        b.iter(|| {
            let key = h.spare_mut().0.as_ptr() as usize;
            let (sy, yy) = dots[&key];
            h.commit(sy, yy);
            h.direction(&g, &mut d).unwrap()
        })
    });
    group.finish();
}

fn direction_f64(c: &mut Criterion) {
    eprintln!(
        "lec7rs L-BFGS direction: simd={} threads={}",
        simd::level(),
        parallel::num_threads()
    );
    bench::<f64>(c, "lbfgs_direction_f64");
}

fn direction_f32(c: &mut Criterion) {
    bench::<f32>(c, "lbfgs_direction_f32");
}

criterion_group!(benches, direction_f64, direction_f32);
criterion_main!(benches);
