//! SIMD level, thread count and the output-buffer cache.

use lec7rs_core::{buffers, parallel, simd};
use pyo3::prelude::*;

use crate::errors::{int_in, CoreResult};

/// The instruction set the kernels dispatch to.
#[pyfunction]
pub fn simd_level() -> &'static str {
    simd::level().name()
}

/// Every SIMD level this CPU supports, best first.
#[pyfunction]
pub fn simd_levels() -> Vec<&'static str> {
    simd::supported_levels()
        .into_iter()
        .map(|l| l.name())
        .collect()
}

/// Forces a SIMD level (tests and benchmarks); ValueError if unsupported.
#[pyfunction]
pub fn set_simd_level(name: &str) -> PyResult<()> {
    let level = simd::Level::parse(name).context("level")?;
    simd::set_level(level).context("level")
}

/// The number of threads the kernels use (``LEC7RS_NUM_THREADS`` sets the
/// default, ``set_num_threads`` changes it).
#[pyfunction]
pub fn get_num_threads() -> usize {
    parallel::num_threads()
}

/// Sets the thread count; `ValueError` naming `n` for any int outside
/// `1..=MAX_THREADS` (however large).
#[pyfunction]
pub fn set_num_threads(n: &Bound<'_, PyAny>) -> PyResult<()> {
    let n = int_in(
        n,
        "n (the number of threads)",
        1,
        parallel::MAX_THREADS as u64,
    )?;
    parallel::set_num_threads(n as usize).context("n")
}

/// Problems with `LEC7RS_SIMD` / `LEC7RS_NUM_THREADS` /
/// `LEC7RS_BUFFER_CACHE_MB`, for a warning at import.
#[pyfunction]
pub fn env_warnings() -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = simd::level_from_env() {
        out.push(format!("{e}; using {}", simd::best_level()));
    }
    if let Err(e) = parallel::num_threads_from_env() {
        out.push(format!("{e}; using the number of CPUs"));
    }
    if let Err(e) = buffers::capacity_mb_from_env() {
        out.push(format!("{e}; using {} MiB", buffers::DEFAULT_CAPACITY_MB));
    }
    out
}

/// Test hook: panics inside a parallel job of the thread pool (with the
/// GIL released), to show that a Rust panic reaches Python as an exception
/// (pyo3's `PanicException`) and leaves the process and the pool working.
#[pyfunction]
pub fn _panic_in_pool(py: Python<'_>) -> PyResult<()> {
    struct Task(usize);
    impl parallel::Split for Task {
        fn len(&self) -> usize {
            self.0
        }
        fn split_at(self, mid: usize) -> (Self, Self) {
            (Task(mid), Task(self.0 - mid))
        }
    }
    py.detach(|| {
        parallel::for_each_chunk(vec![Task(4 * parallel::CHUNK)], |t| {
            if t.0 > 0 {
                panic!("lec7rs test hook: a panic in a pool thread");
            }
        })
    })
    .context("")
}

/// The output-buffer cache (`lec7rs_core::buffers`): `(buffers, bytes)`
/// cached now and the cap in bytes (tests, benchmarks).
#[pyfunction]
pub fn _buffer_cache() -> (usize, usize, usize) {
    let (count, bytes) = buffers::cached();
    (count, bytes, buffers::capacity())
}

/// Frees every cached output buffer.
#[pyfunction]
pub fn _clear_buffer_cache() {
    buffers::clear();
}
