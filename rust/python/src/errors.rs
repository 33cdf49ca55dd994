//! The one place where errors become Python exceptions: `ValueError` for
//! values, shapes, layout and aliasing; `TypeError` for types and dtypes;
//! `MemoryError` for a buffer that cannot be allocated (a dense BFGS matrix
//! for a huge n); `RuntimeError` for an internal protocol error (a bug).

use lec7rs_core::Error;
use numpy::BorrowError;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
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
