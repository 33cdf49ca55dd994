//! `_core.PhiloxStream`: the state of a `lec7rs.Generator` (key, counter,
//! spawn count), and the draws that need nothing but the stream.
//!
//! Reserving a range of the stream happens with the GIL held, after every
//! other argument was checked: concurrent calls on one generator get
//! disjoint ranges, and a call that raises leaves the stream as it was.

use lec7rs_core::random::{self, fill_uniform, fill_words, Draw, Stream, Uniform};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::empty;
use crate::errors::{value_error, CoreResult};
use crate::interrupt;

/// A Philox4x32-10 stream. Python's `lec7rs.Generator` owns one and checks
/// what it is built from.
#[pyclass(module = "lec7rs._core")]
pub struct PhiloxStream {
    stream: Stream,
}

#[pymethods]
impl PhiloxStream {
    #[new]
    fn new(key0: u32, key1: u32, counter: u128, spawned: u64) -> Self {
        PhiloxStream {
            stream: Stream {
                key: [key0, key1],
                counter,
                spawned,
            },
        }
    }

    /// `(key0, key1, counter, spawned)`.
    fn state(&self) -> (u32, u32, u128, u64) {
        let s = &self.stream;
        (s.key[0], s.key[1], s.counter, s.spawned)
    }

    /// The keys of `n` new child streams (their counters start at zero);
    /// at most `lec7rs_core::random::MAX_SPAWN`.
    fn spawn_keys(&mut self, n: u64) -> PyResult<Vec<(u32, u32)>> {
        let mut probe = self.stream;
        let children = probe.spawn(n).context("n")?;
        let keys = lec7rs_core::alloc::collect(
            children.iter().map(|c| (c.key[0], c.key[1])),
            "the spawned keys",
        )
        .context("n")?;
        self.stream = probe;
        Ok(keys)
    }

    /// The next `n` raw 32-bit words of the stream (tests, benchmarks).
    fn words<'py>(slf: &Bound<'py, Self>, n: usize) -> PyResult<Bound<'py, PyArrayDyn<u32>>> {
        let py = slf.py();
        let out = empty::<u32>(py, &[n])?;
        let mut rw = out
            .try_readwrite()
            .map_err(|e| value_error(e.to_string()))?;
        let slice = rw.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
        let words = n as u64;
        let draw = reserve(slf, words)?;
        let outcome = interrupt::detach(py, n, || fill_words(draw, 0, slice));
        settle(slf, draw, words, outcome)?;
        drop(rw);
        Ok(out)
    }

    /// Uniform [0, 1) values of `shape`, float64 if `double` else float32.
    fn random<'py>(
        slf: &Bound<'py, Self>,
        shape: Vec<usize>,
        double: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        if double {
            uniform::<f64>(slf, &shape)
        } else {
            uniform::<f32>(slf, &shape)
        }
    }
}

fn uniform<'py, T: Uniform + Element>(
    slf: &Bound<'py, PhiloxStream>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let out = empty::<T>(py, shape)?;
    let n = PyUntypedArrayMethods::len(&out);
    let mut rw = out
        .try_readwrite()
        .map_err(|e| value_error(e.to_string()))?;
    let slice = rw.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
    let words = (n as u64).saturating_mul(T::WORDS as u64);
    let draw = reserve(slf, words)?;
    let outcome = interrupt::detach(py, n, || fill_uniform(draw, slice));
    settle(slf, draw, words, outcome)?;
    drop(rw);
    Ok(out.into_any())
}

/// The result of a call that reserved `words` words as `draw`: on any
/// error (a core error, or a signal that stopped it), the reservation is
/// given back when it is still the stream's last, so that a call that
/// raises leaves the generator as it was.
pub fn settle<R>(
    stream: &Bound<'_, PhiloxStream>,
    draw: Draw,
    words: u64,
    outcome: PyResult<lec7rs_core::Result<R>>,
) -> PyResult<R> {
    let err = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => crate::errors::core("", e),
        Err(e) => e,
    };
    if let Ok(mut s) = stream.try_borrow_mut() {
        s.stream.release(draw, words);
    }
    Err(err)
}

/// Reserves the words of a draw: the last step before computing, once
/// every argument was checked.
pub fn reserve(stream: &Bound<'_, PhiloxStream>, words: u64) -> PyResult<Draw> {
    stream
        .try_borrow_mut()?
        .stream
        .reserve(words)
        .context("rng")
}

/// The algorithm name of saved states.
#[pyfunction]
pub fn philox_algorithm() -> &'static str {
    random::ALGORITHM
}

/// One Philox4x32-10 block (known-answer tests from Python).
#[pyfunction]
pub fn philox_block(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    random::philox::block(counter, key)
}
