//! The one error type of the core. The binding maps each variant to a Python
//! exception in a single place (`rust/python/src/errors.rs`).

use std::fmt;

/// Everything a core entry point can reject. Every check runs before the first
/// write, so an `Err` means nothing was changed (except [`Error::Cancelled`],
/// which stops a call part way).
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A hyperparameter outside its valid range, e.g. `betas[0] = 1.5`.
    InvalidHyperparameter {
        name: String,
        value: f64,
        expected: &'static str,
    },
    /// A hyperparameter that names one of a few choices and names none of
    /// them, e.g. `adjust_lr_fn = "cosine"`.
    InvalidChoice {
        name: String,
        value: String,
        expected: &'static str,
    },
    /// Two slices that must have one length each per tensor do not.
    LengthMismatch {
        what: String,
        expected: usize,
        got: usize,
    },
    /// A state buffer the hyperparameters need (e.g. `max_exp_avg_sq` with
    /// amsgrad) was not supplied.
    MissingState { what: String },
    /// A thread count of zero, or one the OS refused.
    Threads(String),
    /// An environment variable whose value cannot be used, e.g.
    /// `LEC7RS_BUFFER_CACHE_MB=lots`.
    Environment(String),
    /// A SIMD level that is unknown or that this CPU does not have.
    SimdLevel(String),
    /// A buffer (an L-BFGS history, a dense inverse Hessian) that cannot be
    /// allocated.
    OutOfMemory { what: String, bytes: usize },
    /// A reverse-communication object called out of order (a bug of its
    /// caller, not of the user's input).
    Protocol(String),
    /// A random stream that cannot serve a draw (its counter would wrap).
    Random(String),
    /// A hyperparameter of the wrong type, e.g. `lr="0.1"` or a missing key.
    Type(String),
    /// Array shapes or sizes that do not fit together, e.g. a pooling output
    /// larger than its input; the message names the argument.
    Shape(String),
    /// The call was cancelled through its [`crate::cancel`] flag (Ctrl-C
    /// in Python) before it finished: outputs may be partly written.
    Cancelled,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidHyperparameter {
                name,
                value,
                expected,
            } => write!(f, "invalid {name}: {value} (expected {expected})"),
            Error::InvalidChoice {
                name,
                value,
                expected,
            } => write!(f, "invalid {name}: {value:?} (expected {expected})"),
            Error::LengthMismatch {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected} elements, got {got}"),
            Error::MissingState { what } => write!(f, "missing optimizer state {what}"),
            Error::Threads(msg) => write!(f, "{msg}"),
            Error::Environment(msg) => write!(f, "{msg}"),
            Error::SimdLevel(msg) => write!(f, "{msg}"),
            Error::OutOfMemory { what, bytes } => {
                write!(f, "cannot allocate {what} ({bytes} bytes)")
            }
            Error::Protocol(msg) => write!(f, "{msg}"),
            Error::Random(msg) => write!(f, "{msg}"),
            Error::Shape(msg) => write!(f, "{msg}"),
            Error::Type(msg) => write!(f, "{msg}"),
            Error::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Checks `lo <= value <= hi` (or `< hi` when `hi_open`), rejecting NaN.
pub(crate) fn check_range(
    name: &str,
    value: f64,
    lo: f64,
    hi: f64,
    hi_open: bool,
    expected: &'static str,
) -> Result<()> {
    let ok = value >= lo && if hi_open { value < hi } else { value <= hi };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: name.to_string(),
            value,
            expected,
        })
    }
}

/// A finite `value >= 0`.
pub(crate) fn check_non_negative(name: &str, value: f64) -> Result<()> {
    check_range(name, value, 0.0, f64::MAX, false, "a finite number >= 0")
}
