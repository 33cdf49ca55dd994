//! `_core.minimize_trust`: the loop of `lec7rs.optimize.minimize(method=
//! "trust-ncg")`.
//!
//! It drives the core's [`TrustNcg`] state machine as `optimize.rs` drives
//! the `Minimizer`: the objective, `hessp` and the callback are Python
//! callables, run with the GIL held; the CG passes, the proposals and the
//! copies run with the GIL released.

use lec7rs_core::optimize::{TrustNcg, TrustOptions, TrustRequest};
use lec7rs_core::simd::Real;
use numpy::{Element, IntoPyArray, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrays::{dtype_of, read_checked, read_shaped, Dtype, Label};
use crate::errors::{int_in, value_error, CoreResult};
use crate::interrupt;
use crate::optimize::{to_numpy, unpack, MAX_COUNT};

/// The options of one run, as `minimize` passes them (a dict).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct TrustRunOptions<'py> {
    gtol: f64,
    max_iter: Bound<'py, PyAny>,
    max_fun: Bound<'py, PyAny>,
    initial_trust_radius: f64,
    max_trust_radius: f64,
    eta: f64,
}

impl TrustRunOptions<'_> {
    fn core(&self) -> PyResult<TrustOptions> {
        let opts = TrustOptions {
            gtol: self.gtol,
            max_iter: int_in(&self.max_iter, "max_iter", 0, MAX_COUNT)?,
            max_fun: int_in(&self.max_fun, "max_fun", 1, MAX_COUNT)?,
            initial_trust_radius: self.initial_trust_radius,
            max_trust_radius: self.max_trust_radius,
            eta: self.eta,
        };
        opts.validate().context("")?;
        Ok(opts)
    }
}

/// Runs a trust-ncg minimization. `x0` is a 1-D contiguous float32/float64
/// array (the flattened starting point); `fun(x) -> (f, g)`,
/// `hessp(x, p) -> H p` and `callback(x, f, g, nit, nfev) -> bool` receive
/// and return arrays of `shape`. Returns `(x, f, g, nit, nfev, nhev,
/// status, message)`.
#[pyfunction]
#[pyo3(signature = (fun, hessp, x0, shape, options, callback=None))]
pub fn minimize_trust<'py>(
    py: Python<'py>,
    fun: &Bound<'py, PyAny>,
    hessp: &Bound<'py, PyAny>,
    x0: &Bound<'py, PyAny>,
    shape: Vec<usize>,
    options: TrustRunOptions<'py>,
    callback: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyTuple>> {
    let opts = options.core()?;
    let calls = Calls {
        fun,
        hessp,
        callback: callback.as_ref(),
        shape: &shape,
    };
    match dtype_of(x0, Label::arg("x0"))? {
        Dtype::F32 => run::<f32>(py, x0, opts, &calls, Dtype::F32),
        Dtype::F64 => run::<f64>(py, x0, opts, &calls, Dtype::F64),
    }
}

/// The Python callables of a run and the shape they see.
struct Calls<'a, 'py> {
    fun: &'a Bound<'py, PyAny>,
    hessp: &'a Bound<'py, PyAny>,
    callback: Option<&'a Bound<'py, PyAny>>,
    shape: &'a [usize],
}

const GRAD: Label<'static, 'static> = Label::Arg("the gradient returned by fun");
const PRODUCT: Label<'static, 'static> = Label::Arg("the product returned by hessp");

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    x0: &Bound<'py, PyAny>,
    opts: TrustOptions,
    calls: &Calls<'_, 'py>,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyTuple>> {
    let n = lec7rs_core::alloc::product(calls.shape, "x").context("shape")?;
    let mut t = {
        let x0 = read_checked::<T>(x0, Label::arg("x0"), dtype, |got| {
            let len = got.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if len == Some(n) {
                Ok(())
            } else {
                Err(value_error(format!(
                    "x0: expected {n} elements for shape {:?}, got shape {:?}",
                    calls.shape, got
                )))
            }
        })?;
        let x0 = x0.as_slice();
        py.detach(|| TrustNcg::new(x0, opts)).context("")?
    };
    // A step reads or writes at most seven vectors (a CG step: z, r, d,
    // H d, g and the next z and r).
    let work = n.saturating_mul(7);
    loop {
        // Between steps, a pending signal stops the run even when the
        // objective is a builtin that runs no Python code.
        py.check_signals()?;
        let request = interrupt::detach(py, work, || t.next())?.context("")?;
        match request {
            TrustRequest::Evaluate => {
                let x = to_numpy(py, t.x_trial(), calls.shape)?;
                let out = calls.fun.call1((x,))?;
                let (f, g) = unpack(&out)?;
                let g = read_shaped::<T>(&g, GRAD, dtype, calls.shape, Label::arg("x0"))?;
                let g = g.as_slice();
                interrupt::detach(py, work, || t.tell(f, g))?.context("")?;
            }
            TrustRequest::HessVec => {
                let x = to_numpy(py, t.x(), calls.shape)?;
                let p = to_numpy(py, t.hess_vector(), calls.shape)?;
                let hp = calls.hessp.call1((x, p))?;
                let hp = read_shaped::<T>(&hp, PRODUCT, dtype, calls.shape, Label::arg("x0"))?;
                let hp = hp.as_slice();
                interrupt::detach(py, work, || t.tell_hessp(hp))?.context("")?;
            }
            TrustRequest::Iterate => {
                if let Some(cb) = calls.callback {
                    let x = to_numpy(py, t.x(), calls.shape)?;
                    let g = to_numpy(py, t.g(), calls.shape)?;
                    let stop = cb.call1((x, t.f(), g, t.nit(), t.nfev()))?;
                    if stop.is_truthy()? {
                        t.stop();
                    }
                }
            }
            TrustRequest::Done => break,
        }
    }
    let (f, nit, nfev, nhev) = (t.f(), t.nit(), t.nfev(), t.nhev());
    let status = t.status().map_or(2, |s| s as i64);
    let message = t.message().to_string();
    let (x, g) = t.into_parts();
    let x = x.into_pyarray(py).reshape(calls.shape)?;
    let g = g.into_pyarray(py).reshape(calls.shape)?;
    (x, f, g, nit, nfev, nhev, status, message).into_pyobject(py)
}
