//! What the core's integration tests share.

use std::sync::Mutex;

use lec7rs_core::parallel;
use lec7rs_core::simd::{self, Level, Real};

/// A small deterministic generator (xorshift64*), values in [-2, 2).
#[allow(dead_code)] // not every test file draws
pub struct Rng(pub u64);

#[allow(dead_code)]
impl Rng {
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        bits as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
    }

    pub fn vec<T: Real>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| T::from_f64(self.next())).collect()
    }
}

/// Tests that change the SIMD level or thread count hold this lock.
static GLOBALS: Mutex<()> = Mutex::new(());

/// Holds [`GLOBALS`] and restores the level and thread count when dropped
/// (a failed assertion included).
#[allow(dead_code)] // not every test file changes them
pub struct Globals {
    level: Level,
    threads: usize,
    _lock: std::sync::MutexGuard<'static, ()>,
}

#[allow(dead_code)]
impl Globals {
    pub fn take() -> Self {
        let lock = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
        Globals {
            level: simd::level(),
            threads: parallel::num_threads(),
            _lock: lock,
        }
    }
}

impl Drop for Globals {
    fn drop(&mut self) {
        simd::set_level(self.level).unwrap();
        parallel::set_num_threads(self.threads).unwrap();
    }
}

/// Extended Rosenbrock in f64 whatever `T`, its gradient rounded to `T`.
#[allow(dead_code)] // for the minimizer tests
pub fn rosen<T: Real>(x: &[T], g: &mut [T]) -> f64 {
    let mut f = 0.0;
    for i in (0..x.len()).step_by(2) {
        let (a, b) = (x[i].to_f64(), x[i + 1].to_f64());
        let t1 = b - a * a;
        let t2 = 1.0 - a;
        f += 100.0 * t1 * t1 + t2 * t2;
        g[i] = T::from_f64(-400.0 * a * t1 - 2.0 * t2);
        g[i + 1] = T::from_f64(200.0 * t1);
    }
    f
}
