//! The Philox stream and the regularization kernels on the core alone:
//! every SIMD level and thread count against a plain-loop definition of
//! the word layout, including counters whose low word wraps inside a
//! register and draws that start mid-group.

use std::sync::Mutex;

use lec7rs_core::parallel::{self, CHUNK};
use lec7rs_core::random::philox::{block, counter_words};
use lec7rs_core::random::{
    fill_bernoulli, fill_block_words, fill_uniform, fill_words, Draw, Keep, Stream,
};
use lec7rs_core::regularization::{
    dropout_backward, dropout_eval, dropout_train, fractional_max_pool2d,
    fractional_max_pool2d_backward, stochastic_depth, Dest, FractionalPool, PoolShape,
    STREAM_MIN_BYTES,
};
use lec7rs_core::simd::{self, Level};

/// Tests that change the SIMD level or thread count hold this lock.
static GLOBALS: Mutex<()> = Mutex::new(());

/// Word `i` of a draw, straight from the definition in `random/mod.rs`.
fn word(draw: &Draw, i: u64) -> u32 {
    let (g, r) = (i / 64, i % 64);
    let c = draw.start + u128::from(16 * g + r % 16);
    block(counter_words(c), draw.key)[(r / 16) as usize]
}

/// Runs `f` at every SIMD level and at 1 and 3 threads; returns the results.
fn everywhere<R>(mut f: impl FnMut() -> R) -> Vec<R> {
    let _guard = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let before = (simd::level(), parallel::num_threads());
    let mut out = Vec::new();
    for level in simd::supported_levels() {
        simd::set_level(level).unwrap();
        for threads in [1, 3] {
            parallel::set_num_threads(threads).unwrap();
            out.push(f());
        }
    }
    simd::set_level(before.0).unwrap();
    parallel::set_num_threads(before.1).unwrap();
    out
}

fn all_equal<R: PartialEq + std::fmt::Debug>(results: Vec<R>) -> R {
    let levels: Vec<Level> = simd::supported_levels();
    for (i, r) in results.iter().enumerate() {
        assert!(
            *r == results[0],
            "result {i} (level {}, threads {}) differs",
            levels[i / 2],
            [1, 3][i % 2]
        );
    }
    results.into_iter().next().unwrap()
}

const DRAWS: [Draw; 5] = [
    Draw {
        key: [0, 0],
        start: 0,
    },
    // The low counter word wraps inside every register width.
    Draw {
        key: [0xdead_beef, 7],
        start: u32::MAX as u128 - 5,
    },
    // Wraps in the second group of a pair computed together (AVX2), or
    // just after the pair.
    Draw {
        key: [3, 4],
        start: u32::MAX as u128 - 16 - 5,
    },
    Draw {
        key: [5, 6],
        start: u32::MAX as u128 - 31,
    },
    Draw {
        key: [1, 2],
        start: u128::MAX - 4 * 16,
    },
];

#[test]
fn words_follow_the_layout_on_every_level() {
    for draw in DRAWS {
        for (first, n) in [
            (0u64, 64usize),
            (0, 1),
            (3, 70),
            (61, 200),
            (0, 2 * CHUNK + 77),
            (1000, 5),
        ] {
            // The last draw has 4 groups (256 words) before the counter ends.
            if draw.start > u128::MAX - 1000 && first + n as u64 > 256 {
                continue;
            }
            let got = all_equal(everywhere(|| {
                let mut out = vec![0u32; n];
                fill_words(draw, first, &mut out).unwrap();
                out
            }));
            for (i, &w) in got.iter().enumerate().step_by(7) {
                assert_eq!(
                    w,
                    word(&draw, first + i as u64),
                    "draw {draw:?} word {}",
                    first + i as u64
                );
            }
        }
    }
}

#[test]
fn block_major_words_follow_their_definition_on_every_level() {
    // Value `e` is word `e & 3` of the block of counter
    // `((e >> 2) as u32, c1, c2, c3)`: unaligned starts, runs across groups
    // and pairs of groups, and the low word wrapping without carry.
    let (key, high) = ([0xdead_beef, 42], [3, 0x8000_0001, 0x5352_4e44]);
    let wrap = 4u64 << 32;
    for (first, n) in [
        (0u64, 1usize),
        (0, 64),
        (3, 200),
        (61, 70),
        (1000, 2048),
        (wrap - 70, 300),
        // A pair of groups from the last group before the wrap.
        (wrap - 40, 100),
    ] {
        let got = all_equal(everywhere(|| {
            let mut out = vec![0u32; n];
            fill_block_words(key, high, first, &mut out);
            out
        }));
        for (j, &w) in got.iter().enumerate() {
            let e = first + j as u64;
            let ctr = [(e >> 2) as u32, high[0], high[1], high[2]];
            assert_eq!(w, block(ctr, key)[(e & 3) as usize], "e {e}");
        }
    }
}

#[test]
fn uniform_floats_use_the_top_bits() {
    let draw = DRAWS[1];
    let f32s = all_equal(everywhere(|| {
        let mut out = vec![0f32; 1000];
        fill_uniform(draw, &mut out).unwrap();
        out
    }));
    for (i, &v) in f32s.iter().enumerate() {
        assert_eq!(v, (word(&draw, i as u64) >> 8) as f32 / 16_777_216.0);
    }
    let f64s = all_equal(everywhere(|| {
        let mut out = vec![0f64; 1000];
        fill_uniform(draw, &mut out).unwrap();
        out
    }));
    for (i, &v) in f64s.iter().enumerate() {
        let bits =
            u64::from(word(&draw, 2 * i as u64 + 1)) << 32 | u64::from(word(&draw, 2 * i as u64));
        assert_eq!(v, (bits >> 11) as f64 / 9_007_199_254_740_992.0);
        assert!((0.0..1.0).contains(&v));
    }
}

#[test]
fn bernoulli_compares_words() {
    let draw = DRAWS[0];
    let keep = Keep::with_probability(0.3).unwrap();
    let Keep::Below(t) = keep else { panic!() };
    let got = all_equal(everywhere(|| {
        let mut out = vec![0u8; 3 * CHUNK + 5];
        fill_bernoulli(draw, keep, &mut out).unwrap();
        out
    }));
    for (i, &m) in got.iter().enumerate() {
        assert_eq!(m, u8::from(word(&draw, i as u64) < t));
    }
}

fn data(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.37).sin() * 3.0 - 0.5)
        .collect()
}

#[test]
fn dropout_matches_its_definition_everywhere() {
    let n = 2 * CHUNK + 333;
    let x = data(n);
    let draw = Stream::new(42).reserve(n as u64).unwrap();
    for (p, inverted) in [
        (0.5, true),
        (0.1, false),
        (0.0, true),
        (1.0, true),
        (0.9, true),
    ] {
        let (y, mask) = all_equal(everywhere(|| {
            let (mut y, mut mask) = (vec![0f32; n], vec![9u8; n]);
            dropout_train(Some(&x), &mut y, &mut mask, p, inverted, draw, Dest::New).unwrap();
            (y, mask)
        }));
        // In place gives the same.
        let mut inplace = x.clone();
        let mut mask2 = vec![0u8; n];
        dropout_train(
            None,
            &mut inplace,
            &mut mask2,
            p,
            inverted,
            draw,
            Dest::Existing,
        )
        .unwrap();
        assert_eq!(inplace, y);
        assert_eq!(mask2, mask);
        let keep = Keep::with_drop_probability(p).unwrap();
        let s = if !inverted {
            1.0
        } else if p < 1.0 {
            (1.0 / (1.0 - p)) as f32
        } else {
            0.0
        };
        for i in 0..n {
            let kept = match keep {
                Keep::All => true,
                Keep::None => false,
                Keep::Below(t) => word(&draw, i as u64) < t,
            };
            assert_eq!(mask[i], u8::from(kept));
            assert_eq!(
                y[i].to_bits(),
                (x[i] * if kept { s } else { 0.0 }).to_bits()
            );
        }
        let dx = all_equal(everywhere(|| {
            let mut dx = vec![0f32; n];
            dropout_backward(&x, &mask, p, inverted, &mut dx).unwrap();
            dx
        }));
        assert_eq!(dx, y);
    }
}

#[test]
fn streaming_stores_write_the_same_values_at_any_alignment() {
    // Large enough for streaming stores into an existing `y`; `y` starts
    // at every float offset within a cache line, and the chunks of the
    // parallel driver start mid-line too.
    let n = STREAM_MIN_BYTES / 4 + 1234;
    let x = data(n);
    let draw = Stream::new(77).reserve(n as u64).unwrap();
    let (mut want, mut want_mask) = (vec![0f32; n], vec![0u8; n]);
    dropout_train(
        Some(&x),
        &mut want,
        &mut want_mask,
        0.3,
        true,
        draw,
        Dest::New,
    )
    .unwrap();
    // The mask is streamed too, from every byte offset within a line.
    for (offset, mask_offset) in [(0, 0), (1, 3), (5, 33), (15, 63)] {
        let got = all_equal(everywhere(|| {
            let mut storage = vec![7f32; n + 16];
            let mut mask_storage = vec![7u8; n + 64];
            let y = &mut storage[offset..offset + n];
            let mask = &mut mask_storage[mask_offset..mask_offset + n];
            dropout_train(Some(&x), y, mask, 0.3, true, draw, Dest::Existing).unwrap();
            (storage, mask_storage)
        }));
        assert!(got.0[..offset]
            .iter()
            .chain(&got.0[offset + n..])
            .all(|&v| v == 7.0));
        assert!(got.0[offset..offset + n] == want[..], "offset {offset}");
        assert!(got.1[..mask_offset]
            .iter()
            .chain(&got.1[mask_offset + n..])
            .all(|&v| v == 7));
        assert!(
            got.1[mask_offset..mask_offset + n] == want_mask[..],
            "mask offset {mask_offset}"
        );
    }
}

#[test]
fn dropout_nan_stays_nan_and_p1_gives_zeros() {
    let x = [f32::NAN, f32::INFINITY, -2.0, 3.0];
    let draw = Stream::new(1).reserve(4).unwrap();
    let (mut y, mut mask) = ([1f32; 4], [1u8; 4]);
    dropout_train(Some(&x), &mut y, &mut mask, 1.0, true, draw, Dest::New).unwrap();
    assert_eq!(mask, [0; 4]);
    assert!(y[0].is_nan() && y[1].is_nan());
    assert_eq!(y[2].to_bits(), (-0.0f32).to_bits());
    assert_eq!(y[3], 0.0);
}

#[test]
fn errors_write_nothing() {
    let x = data(100);
    let draw = Stream::new(1).reserve(100).unwrap();
    let (mut y, mut mask) = (vec![7f32; 100], vec![7u8; 100]);
    for p in [-0.1, 1.5, f64::NAN] {
        assert!(dropout_train(Some(&x), &mut y, &mut mask, p, true, draw, Dest::New).is_err());
        assert!(dropout_eval(Some(&x), &mut y, p, false).is_err());
    }
    assert!(dropout_train(
        Some(&x),
        &mut y,
        &mut mask[..99],
        0.5,
        true,
        draw,
        Dest::New
    )
    .is_err());
    assert!(dropout_train(
        Some(&x[..99]),
        &mut y,
        &mut mask,
        0.5,
        true,
        draw,
        Dest::New
    )
    .is_err());
    assert!(y.iter().all(|&v| v == 7.0) && mask.iter().all(|&m| m == 7));
}

#[test]
fn dropout_eval_scales_by_keep_in_the_original_form() {
    let x = data(50_000);
    let mut y = vec![0f32; x.len()];
    dropout_eval(Some(&x), &mut y, 0.25, false).unwrap();
    assert!(y.iter().zip(&x).all(|(a, b)| *a == b * 0.75));
    dropout_eval(Some(&x), &mut y, 0.25, true).unwrap();
    assert_eq!(y, x);
}

#[test]
fn stochastic_depth_keeps_whole_rows() {
    let (rows, row) = (37, 3001);
    let x = data(rows * row);
    let draw = Stream::new(5).reserve(rows as u64).unwrap();
    let (y, keep) = all_equal(everywhere(|| {
        let (mut y, mut keep) = (vec![0f32; x.len()], vec![0u8; rows]);
        stochastic_depth(&x, &mut y, &mut keep, 0.4, draw).unwrap();
        (y, keep)
    }));
    let s = (1.0 / 0.6f64) as f32;
    for (r, &k) in keep.iter().enumerate() {
        for i in r * row..(r + 1) * row {
            assert_eq!(y[i], x[i] * if k == 1 { s } else { 0.0 });
        }
    }
    assert!(keep.contains(&0) && keep.contains(&1));
    let mut bad = vec![0u8; 36];
    assert!(stochastic_depth(&x, &mut vec![0f32; x.len()], &mut bad, 0.4, draw).is_err());
}

#[test]
fn fractional_pooling_is_the_same_everywhere_and_backward_scatters() {
    let shape = PoolShape {
        n: 3,
        c: 5,
        h: 23,
        w: 17,
        out_h: 11,
        out_w: 9,
    };
    let x: Vec<f64> = (0..3 * 5 * 23 * 17)
        .map(|i| ((i * 7919) % 1013) as f64)
        .collect();
    for pseudo_random in [true, false] {
        for overlapping in [true, false] {
            let pool = FractionalPool {
                shape,
                kernel_h: 3,
                kernel_w: 2,
                pseudo_random,
                overlapping,
            };
            let draw = Stream::new(9).reserve(pool.words::<f64>()).unwrap();
            let (y, argmax) = all_equal(everywhere(|| {
                let (mut y, mut a) = (vec![0f64; 15 * 99], vec![0i64; 15 * 99]);
                fractional_max_pool2d(&pool, &x, draw, &mut y, &mut a).unwrap();
                (y, a)
            }));
            for (i, (&v, &a)) in y.iter().zip(&argmax).enumerate() {
                assert_eq!(v, x[i / 99 * 23 * 17 + a as usize]);
            }
            let dx = all_equal(everywhere(|| {
                let mut dx = vec![1f64; x.len()];
                fractional_max_pool2d_backward(shape, &y, &argmax, &mut dx).unwrap();
                dx
            }));
            let total: f64 = dx.iter().sum();
            assert_eq!(total, y.iter().sum::<f64>());
        }
    }
}
