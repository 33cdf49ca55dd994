//! The one place where errors become Python exceptions: `ValueError` for
//! values, shapes, layout and aliasing; `TypeError` for types and dtypes;
//! `MemoryError` for a buffer that cannot be allocated (a dense BFGS matrix
//! for a huge n, a copy of a strided input, a filter table); `KeyboardInterrupt`
//! for a call stopped by Ctrl-C (normally the signal handler's own exception
//! is raised instead, see `interrupt.rs`); `RuntimeError` for an internal
//! protocol error (a bug).

use lec7rs_core::Error;
use numpy::BorrowError;
use pyo3::exceptions::{
    PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};
use pyo3::PyErr;

/// A core error, with the argument it concerns in front.
pub fn core(context: &str, err: Error) -> PyErr {
    let msg = if context.is_empty() {
        err.to_string()
    } else {
        format!("{context}: {err}")
    };
    match err {
        Error::InvalidHyperparameter { .. }
        | Error::InvalidChoice { .. }
        | Error::LengthMismatch { .. }
        | Error::MissingState { .. }
        | Error::Threads(_)
        | Error::Environment(_)
        | Error::SimdLevel(_)
        | Error::Random(_)
        | Error::Shape(_) => PyValueError::new_err(msg),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(msg),
        Error::Type(_) => PyTypeError::new_err(msg),
        Error::Protocol(_) => PyRuntimeError::new_err(msg),
        Error::Cancelled => PyKeyboardInterrupt::new_err(msg),
    }
}

/// Adapts `Result<_, core::Error>` with the argument name.
pub trait CoreResult<T> {
    fn context(self, what: &str) -> Result<T, PyErr>;
}

impl<T> CoreResult<T> for Result<T, Error> {
    fn context(self, what: &str) -> Result<T, PyErr> {
        self.map_err(|e| core(what, e))
    }
}

pub fn type_error(msg: String) -> PyErr {
    PyTypeError::new_err(msg)
}

pub fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// An int argument that must lie in `lo..=hi`: `ValueError` naming it when
/// it does not (also for ints beyond 64 bits, which would otherwise be
/// pyo3's `OverflowError`), `TypeError` when it is not an int.
pub fn int_in(obj: &Bound<'_, PyAny>, name: &str, lo: u64, hi: u64) -> PyResult<u64> {
    if obj.cast::<PyInt>().is_err() || obj.cast::<PyBool>().is_ok() {
        let ty = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(type_error(format!("{name} must be an int, got {ty}")));
    }
    match obj.extract::<u64>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(value_error(format!(
            "{name} must be an integer in [{lo}, {hi}], got {}",
            obj.str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into())
        ))),
    }
}

/// A failed borrow of an array that will be written or read.
pub fn borrow(what: &str, err: BorrowError) -> PyErr {
    match err {
        BorrowError::NotWriteable => value_error(format!("{what} is read-only")),
        _ => value_error(format!(
            "{what} shares memory with another array of this call \
             (a param aliased with its grad or state, or a param listed twice), \
             or is being written by a concurrent call"
        )),
    }
}
