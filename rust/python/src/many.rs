//! `_core.minimize_many` (the loop of `lec7rs.optimize.minimize_many`): `k`
//! L-BFGS runs of one length `n`, the rows of `x0`, driven in rounds by the
//! core's [`Many`].
//!
//! Each round advances every running row with the GIL released, then calls
//! `fun(X, active)` once, with the GIL held, for all the rows that need an
//! evaluation: `X` a fresh `(len(active), n)` array of x0's dtype (their
//! trial points), `active` an int64 array of their row indices
//! (ascending). `fun` returns `(f, G)`: f of shape `(len(active),)`, read
//! as float64, and G of X's shape and dtype. Ctrl-C is noticed between
//! rounds, and during a round that is long (see `interrupt.rs`).

use lec7rs_core::optimize::{Many, Method, Options, Search};
use lec7rs_core::simd::Real;
use numpy::{
    Element, IntoPyArray, PyArrayDescrMethods, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::arrays::{describe, dtype_of, fmt_shape, read, read_checked, read_shaped, Dtype, Label};
use crate::errors::{int_in, type_error, value_error, CoreResult};
use crate::interrupt;
use crate::optimize::{to_numpy, MAX_COUNT};

/// The options of `minimize_many`, as it passes them (a dict); the counts
/// are checked here as `minimize`'s are.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct ManyOptions<'py> {
    m: Bound<'py, PyAny>,
    gtol: f64,
    ftol: f64,
    max_iter: Bound<'py, PyAny>,
    max_fun: Bound<'py, PyAny>,
    max_ls: Bound<'py, PyAny>,
}

impl ManyOptions<'_> {
    /// L-BFGS with the strong Wolfe search, and its `m`.
    fn core(&self) -> PyResult<(Options, usize)> {
        let m = int_in(&self.m, "m", 1, MAX_COUNT)?;
        let m = usize::try_from(m)
            .map_err(|_| value_error(format!("m: {m} does not fit this machine")))?;
        let opts = Options {
            method: Method::Lbfgs { m },
            line_search: Search::StrongWolfe,
            gtol: self.gtol,
            ftol: self.ftol,
            max_iter: int_in(&self.max_iter, "max_iter", 0, MAX_COUNT)?,
            max_fun: int_in(&self.max_fun, "max_fun", 1, MAX_COUNT)?,
            max_ls: int_in(&self.max_ls, "max_ls", 1, MAX_COUNT)?,
        };
        opts.validate().context("")?;
        Ok((opts, m))
    }
}

/// Runs `k` minimizations, the rows of `x0` (a `(k, n)` float32/float64
/// array, `k, n >= 1`; copied once if not C-contiguous). Returns `(x, f,
/// nit, nfev, status, message)`: `x` of x0's shape and dtype, `f` float64
/// `(k,)`, the counts and statuses int64 `(k,)`, `message` a list of `k`
/// strings.
#[pyfunction]
#[pyo3(signature = (fun, x0, options, bounds=None))]
pub fn minimize_many<'py>(
    py: Python<'py>,
    fun: &Bound<'py, PyAny>,
    x0: &Bound<'py, PyAny>,
    options: ManyOptions<'py>,
    bounds: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyTuple>> {
    let (opts, m) = options.core()?;
    let bounds = bounds.as_ref();
    match dtype_of(x0, Label::arg("x0"))? {
        Dtype::F32 => run::<f32>(py, fun, x0, (opts, m), bounds, Dtype::F32),
        Dtype::F64 => run::<f64>(py, fun, x0, (opts, m), bounds, Dtype::F64),
    }
}

const GRAD: Label<'static, 'static> = Label::Arg("the gradient G returned by fun");
const X: Label<'static, 'static> = Label::Arg("X passed to fun");

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    fun: &Bound<'py, PyAny>,
    x0: &Bound<'py, PyAny>,
    (opts, m): (Options, usize),
    bounds: Option<&(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyTuple>> {
    let (mut many, k, n) = {
        let x0 = read_checked::<T>(x0, Label::arg("x0"), dtype, |got| match got {
            [k, n] if *k >= 1 && *n >= 1 => Ok(()),
            _ => Err(value_error(format!(
                "x0: expected a 2-D array of shape (k, n) with k >= 1 and n >= 1, got shape {}",
                fmt_shape(got)
            ))),
        })?;
        let (k, n) = (x0.shape()[0], x0.shape()[1]);
        let x0 = x0.as_slice();
        let bounds = bounds
            .map(|pair| crate::optimize::read_bounds::<T>(pair, n, dtype))
            .transpose()?;
        let bounds = bounds.as_ref().map(|(lo, hi)| (&lo[..], &hi[..]));
        let many = py.detach(|| Many::new(x0, n, opts, bounds)).context("x0")?;
        (many, k, n)
    };
    // Elements of memory a round touches per row (the L-BFGS direction),
    // and per row of a tell, for `interrupt::detach`.
    let round_work = n.saturating_mul(m.saturating_add(1)).saturating_mul(4);
    let mut a = k;
    loop {
        // Between rounds, a pending signal stops the run even when the
        // objective is a builtin that runs no Python code.
        py.check_signals()?;
        a = interrupt::detach(py, a.saturating_mul(round_work), || {
            many.next_round().map(<[usize]>::len)
        })?
        .context("")?;
        if a == 0 {
            break;
        }
        let x = to_numpy(py, many.trials(), &[a, n])?;
        let active =
            lec7rs_core::alloc::collect(many.active().iter().map(|&i| i as i64), "the active rows")
                .context("")?
                .into_pyarray(py);
        let out = fun.call1((x, active))?;
        let (f, g) = unpack(&out)?;
        let f = values(py, &f, a)?;
        let g = read_shaped::<T>(&g, GRAD, dtype, &[a, n], X)?;
        let (f, g) = (f.as_slice(), g.as_slice());
        interrupt::detach(py, a.saturating_mul(n), || many.tell(f, g))?.context("")?;
    }
    let res = py.detach(|| many.results()).context("")?;
    let count = |v: Vec<u64>| -> Vec<i64> {
        v.into_iter()
            .map(|c| i64::try_from(c).unwrap_or(i64::MAX))
            .collect()
    };
    let status: Vec<i64> = res.status.iter().map(|&s| s as i64).collect();
    let x = res.x.into_pyarray(py).reshape([k, n])?;
    (
        x,
        res.f.into_pyarray(py),
        count(res.nit).into_pyarray(py),
        count(res.nfev).into_pyarray(py),
        status.into_pyarray(py),
        res.message,
    )
        .into_pyobject(py)
}

/// `fun(X, active)` must return a tuple `(f, G)`.
fn unpack<'py>(out: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    match out.cast::<PyTuple>() {
        Ok(t) if t.len() == 2 => Ok((t.get_item(0)?, t.get_item(1)?)),
        _ => Err(type_error(format!(
            "fun must return a tuple (f, G) of the values and the gradients of the rows in \
             active, got {}",
            describe(out)
        ))),
    }
}

/// The values `f` returned by `fun`: an array (or a sequence) of `a` real
/// numbers, shape `(a,)`, read as float64 (another real dtype is cast).
fn values<'py>(
    py: Python<'py>,
    f: &Bound<'py, PyAny>,
    a: usize,
) -> PyResult<crate::arrays::Input<'py, f64>> {
    let arr = if f.cast::<PyUntypedArray>().is_ok() {
        f.clone()
    } else {
        py.import("numpy")?.call_method1("asarray", (f,))?
    };
    let wrong_type = || {
        type_error(format!(
            "fun must return f as an array of {a} real numbers (shape ({a},), one per row of \
             active), got {}",
            describe(f)
        ))
    };
    let untyped = arr.cast::<PyUntypedArray>().map_err(|_| wrong_type())?;
    if !matches!(untyped.dtype().kind(), b'f' | b'i' | b'u' | b'b') {
        return Err(wrong_type());
    }
    if untyped.shape() != [a] {
        return Err(value_error(format!(
            "fun must return f of shape ({a},) (one value per row of active), got shape {}",
            fmt_shape(untyped.shape())
        )));
    }
    let arr = if untyped.dtype().is_equiv_to(&numpy::dtype::<f64>(py)) {
        arr
    } else {
        arr.call_method1("astype", ("float64",))?
    };
    read::<f64>(&arr, Label::arg("f returned by fun"), Dtype::F64)
}
