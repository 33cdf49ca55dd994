//! `_core.minimize` (the loop of `lec7rs.optimize.minimize`),
//! `_core.lbfgs_two_loop` (the L-BFGS inverse Hessian product by the
//! two-loop recursion) and `_core.lbfgs_direction` (the search direction
//! of `minimize`, by the compact representation).
//!
//! The loop drives the core's [`Minimizer`] state machine: the objective,
//! the callback and the Newton solver are Python callables, run with the
//! GIL held; every pass of the optimizer itself (L-BFGS direction, BFGS
//! update, line search steps, copies) runs with the GIL released. Ctrl-C
//! is noticed between steps, and during a step that is long (a large dense
//! BFGS matrix, a long history), see `interrupt.rs`.

use lec7rs_core::optimize::{
    two_loop, HessInv, History, Method, Minimizer, Options, Pair, Request, Search,
};
use lec7rs_core::parallel;
use lec7rs_core::simd::Real;
use numpy::{Element, IntoPyArray, PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::arrays::{dtype_of, empty, read, read_checked, read_shaped, Dtype, Input, Label};
use crate::errors::{int_in, type_error, value_error, CoreResult};
use crate::interrupt;

/// The options of one run, as `minimize` passes them (a dict). The counts
/// are read as Python ints and checked here, so that any int gives a
/// `ValueError` naming its option.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct RunOptions<'py> {
    method: String,
    line_search: String,
    m: Bound<'py, PyAny>,
    gtol: f64,
    ftol: f64,
    max_iter: Bound<'py, PyAny>,
    max_fun: Bound<'py, PyAny>,
    max_ls: Bound<'py, PyAny>,
}

/// The largest count option: beyond any run, within every integer type.
pub(crate) const MAX_COUNT: u64 = i64::MAX as u64;

impl RunOptions<'_> {
    fn core(&self) -> PyResult<Options> {
        let m = int_in(&self.m, "m", 1, MAX_COUNT)?;
        let method = match self.method.as_str() {
            "L-BFGS" => Method::Lbfgs {
                m: usize::try_from(m)
                    .map_err(|_| value_error(format!("m: {m} does not fit this machine")))?,
            },
            "BFGS" => Method::Bfgs,
            "Newton" => Method::Newton,
            other => {
                return Err(value_error(format!(
                    "method: unknown method {other:?} (expected 'L-BFGS', 'BFGS' or 'Newton')"
                )))
            }
        };
        let line_search = match self.line_search.as_str() {
            "strong_wolfe" => Search::StrongWolfe,
            "backtracking" => Search::Backtracking,
            other => {
                return Err(value_error(format!(
                    "line_search: unknown line search {other:?} \
                     (expected 'strong_wolfe' or 'backtracking')"
                )))
            }
        };
        let opts = Options {
            method,
            line_search,
            gtol: self.gtol,
            ftol: self.ftol,
            max_iter: int_in(&self.max_iter, "max_iter", 0, MAX_COUNT)?,
            max_fun: int_in(&self.max_fun, "max_fun", 1, MAX_COUNT)?,
            max_ls: int_in(&self.max_ls, "max_ls", 1, MAX_COUNT)?,
        };
        opts.validate().context("")?;
        Ok(opts)
    }
}

/// Runs a minimization. `x0` is a 1-D contiguous float32/float64 array (the
/// flattened starting point); `fun`, `callback` and `direction` receive and
/// return arrays of `shape`. Returns `(x, f, g, nit, nfev, status, message,
/// hess)` with `hess` one of `None`, `("lbfgs", s, y, order)` or
/// `("dense", h)`. `bounds`, for L-BFGS-B, is a pair of 1-D contiguous
/// arrays of x0's dtype and length (`-inf` / `inf` for no bound), checked
/// by the caller to hold no NaN and `lower <= upper`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (fun, x0, shape, options, callback=None, direction=None, bounds=None))]
pub fn minimize<'py>(
    py: Python<'py>,
    fun: &Bound<'py, PyAny>,
    x0: &Bound<'py, PyAny>,
    shape: Vec<usize>,
    options: RunOptions<'py>,
    callback: Option<Bound<'py, PyAny>>,
    direction: Option<Bound<'py, PyAny>>,
    bounds: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyTuple>> {
    let opts = options.core()?;
    if bounds.is_some() && !matches!(opts.method, Method::Lbfgs { .. }) {
        return Err(value_error(
            "bounds: only method 'L-BFGS' (L-BFGS-B) takes bounds".into(),
        ));
    }
    if matches!(opts.method, Method::Newton) && direction.is_none() {
        return Err(value_error(
            "method 'Newton' needs a Hessian (hess=...)".into(),
        ));
    }
    let calls = Calls {
        fun,
        callback: callback.as_ref(),
        direction: direction.as_ref(),
        shape: &shape,
        bounds: bounds.as_ref(),
    };
    match dtype_of(x0, Label::arg("x0"))? {
        Dtype::F32 => run::<f32>(py, x0, opts, &calls, Dtype::F32),
        Dtype::F64 => run::<f64>(py, x0, opts, &calls, Dtype::F64),
    }
}

/// The Python callables of a run and the shape they see.
struct Calls<'a, 'py> {
    fun: &'a Bound<'py, PyAny>,
    callback: Option<&'a Bound<'py, PyAny>>,
    direction: Option<&'a Bound<'py, PyAny>>,
    shape: &'a [usize],
    bounds: Option<&'a (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
}

const GRAD: Label<'static, 'static> = Label::Arg("the gradient returned by fun");
const STEP: Label<'static, 'static> = Label::Arg("the Newton step");

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    x0: &Bound<'py, PyAny>,
    opts: Options,
    calls: &Calls<'_, 'py>,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyTuple>> {
    let n = lec7rs_core::alloc::product(calls.shape, "x").context("shape")?;
    let mut m = {
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
        match calls.bounds {
            None => py.detach(|| Minimizer::new(x0, opts)).context("")?,
            Some(pair) => {
                let (lo, hi) = read_bounds::<T>(pair, n, dtype)?;
                py.detach(|| Minimizer::with_bounds(x0, opts, lo, hi))
                    .context("")?
            }
        }
    };
    let work = step_work(&opts, n);
    loop {
        // Between steps, a pending signal stops the run even when the
        // objective is a builtin that runs no Python code.
        py.check_signals()?;
        let request = interrupt::detach(py, work, || m.next())?.context("")?;
        match request {
            Request::Evaluate => {
                let x = to_numpy(py, m.x_trial(), calls.shape)?;
                let out = calls.fun.call1((x,))?;
                let (f, g) = unpack(&out)?;
                let g = read_shaped::<T>(&g, GRAD, dtype, calls.shape, Label::arg("x0"))?;
                let g = g.as_slice();
                interrupt::detach(py, work, || m.tell(f, g))?.context("")?;
            }
            Request::Direction => {
                let Some(solve) = calls.direction else {
                    return Err(value_error("method 'Newton' needs hess".into()));
                };
                let x = to_numpy(py, m.x(), calls.shape)?;
                let g = to_numpy(py, m.g(), calls.shape)?;
                let d = solve.call1((x, g))?;
                let d: Input<'_, T> =
                    read_shaped::<T>(&d, STEP, dtype, calls.shape, Label::arg("x0"))?;
                let d = d.as_slice();
                interrupt::detach(py, work, || m.set_direction(d))?.context("")?;
            }
            Request::Iterate => {
                if let Some(cb) = calls.callback {
                    let x = to_numpy(py, m.x(), calls.shape)?;
                    let g = to_numpy(py, m.g(), calls.shape)?;
                    let stop = cb.call1((x, m.f(), g, m.nit(), m.nfev()))?;
                    if stop.is_truthy()? {
                        m.stop();
                    }
                }
            }
            Request::Done => break,
        }
    }
    let (f, nit, nfev) = (m.f(), m.nit(), m.nfev());
    let status = m.status().map_or(2, |s| s as i64);
    let message = m.message().to_string();
    let (x, g, hess) = py.detach(|| m.into_parts()).context("")?;
    let x = x.into_pyarray(py).reshape(calls.shape)?;
    let g = g.into_pyarray(py).reshape(calls.shape)?;
    let hess: Bound<'py, PyAny> = match hess {
        HessInv::Lbfgs { s, y, order } => {
            let rows = s.len().checked_div(n).unwrap_or(0);
            let s = s.into_pyarray(py).reshape([rows, n])?;
            let y = y.into_pyarray(py).reshape([rows, n])?;
            ("lbfgs", s, y, order).into_pyobject(py)?.into_any()
        }
        HessInv::Dense(h) => ("dense", h.into_pyarray(py).reshape([n, n])?)
            .into_pyobject(py)?
            .into_any(),
        HessInv::None => py.None().into_bound(py),
    };
    (x, f, g, nit, nfev, status, message, hess).into_pyobject(py)
}

/// The box `(lower, upper)`: two 1-D arrays of `n` elements of `dtype`,
/// without NaN, `lower <= upper`, `lower < inf`, `upper > -inf`.
pub(crate) fn read_bounds<T: Real + Element>(
    (lo, hi): &(Bound<'_, PyAny>, Bound<'_, PyAny>),
    n: usize,
    dtype: Dtype,
) -> PyResult<(Vec<T>, Vec<T>)> {
    let one_d = [n];
    let read_side = |side, what| -> PyResult<Vec<T>> {
        let a = read_shaped::<T>(
            side,
            Label::arg(what),
            dtype,
            &one_d,
            Label::arg("one row of x0"),
        )?;
        Ok(a.as_slice().to_vec())
    };
    let (lo, hi) = (
        read_side(lo, "lower bounds")?,
        read_side(hi, "upper bounds")?,
    );
    for (i, (l, h)) in lo.iter().zip(&hi).enumerate() {
        let (l, h) = (l.to_f64(), h.to_f64());
        if l.is_nan() || h.is_nan() || l > h || l == f64::INFINITY || h == f64::NEG_INFINITY {
            return Err(value_error(format!(
                "bounds: expected lower <= upper, no NaN, lower < inf and upper > -inf, \
                 got ({l}, {h}) at index {i}"
            )));
        }
    }
    Ok((lo, hi))
}

/// The elements one step of the minimizer may touch: the dense matrix
/// (BFGS), the history (L-BFGS), or a few vectors (Newton), for
/// [`interrupt::detach`].
fn step_work(opts: &Options, n: usize) -> usize {
    match opts.method {
        Method::Bfgs => n.saturating_mul(n),
        Method::Lbfgs { m } => n.saturating_mul(m.saturating_add(1)).saturating_mul(4),
        Method::Newton => n.saturating_mul(8),
    }
}

/// A new array of `shape` holding `data`, copied in parallel with the GIL
/// released; from the output-buffer cache, so that handing `x` to the
/// objective at every evaluation does not fault in fresh pages.
pub(crate) fn to_numpy<'py, T: Real + Element>(
    py: Python<'py>,
    data: &[T],
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let arr = empty::<T>(py, shape)?;
    let mut rw = arr
        .try_readwrite()
        .map_err(|e| value_error(e.to_string()))?;
    let dst = rw.as_slice_mut().map_err(|e| value_error(e.to_string()))?;
    py.detach(|| parallel::copy(data, dst)).context("")?;
    drop(rw);
    Ok(arr.into_any())
}

/// `fun(x)` must return `(f, g)`: f a real number, g an array.
pub(crate) fn unpack<'py>(out: &Bound<'py, PyAny>) -> PyResult<(f64, Bound<'py, PyAny>)> {
    let pair = out
        .cast::<PyTuple>()
        .ok()
        .filter(|t| t.len() == 2)
        .map(|t| (t.get_item(0), t.get_item(1)));
    let (f, g) = match pair {
        Some((Ok(f), Ok(g))) => (f, g),
        _ => {
            let ty = out.get_type().name()?;
            return Err(type_error(format!(
                "fun must return a pair (f, g) when jac=True, got an object of type {ty}"
            )));
        }
    };
    let f: f64 = f.extract().map_err(|_| {
        let ty = f
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        type_error(format!(
            "fun must return a real number f as the first element of (f, g), got {ty}"
        ))
    })?;
    Ok((f, g))
}

/// The 1-D vector `v` (argument `name`) and the L-BFGS pairs: as many
/// `y[i]` as `s[i]`, each of `v`'s shape and dtype; the pairs are returned
/// as the `s` then the `y`.
fn read_pairs<'py, T: Element + Copy>(
    s: &Bound<'py, PyList>,
    y: &Bound<'py, PyList>,
    v: &Bound<'py, PyAny>,
    name: &'static str,
    dtype: Dtype,
) -> PyResult<(Input<'py, T>, Vec<Input<'py, T>>)> {
    let k = s.len();
    if y.len() != k {
        return Err(value_error(format!(
            "s and y: expected as many y as s ({k}), got {}",
            y.len()
        )));
    }
    let v_in = read::<T>(v, Label::arg(name), dtype)?;
    if v_in.shape().len() != 1 {
        return Err(value_error(format!(
            "{name}: expected a 1-D array, got {} dimensions",
            v_in.shape().len()
        )));
    }
    let mut inputs = Vec::with_capacity(2 * k);
    for (list, what) in [(s, Label::arg("s[i]")), (y, Label::arg("y[i]"))] {
        for item in list.iter() {
            inputs.push(read_shaped::<T>(
                &item,
                what,
                dtype,
                v_in.shape(),
                Label::arg(name),
            )?);
        }
    }
    Ok((v_in, inputs))
}

/// `H v` (or `-H v` with `negate`) for the L-BFGS pairs `s[i]`, `y[i]`
/// (oldest first, 1-D arrays of `v`'s length and dtype), with
/// `rho_i = 1 / s_i'y_i` and `H0 = gamma I`, `gamma = s'y / y'y` of the
/// newest pair, unless `rho` / `gamma` are given. `minimize` computes the
/// same `-H g` by the compact representation (`lbfgs_direction`), equal up
/// to rounding.
#[pyfunction]
#[pyo3(signature = (s, y, v, *, rho=None, gamma=None, negate=false))]
pub fn lbfgs_two_loop<'py>(
    py: Python<'py>,
    s: &Bound<'py, PyList>,
    y: &Bound<'py, PyList>,
    v: &Bound<'py, PyAny>,
    rho: Option<Vec<f64>>,
    gamma: Option<f64>,
    negate: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match dtype_of(v, Label::arg("v"))? {
        Dtype::F32 => two_loop_typed::<f32>(py, s, y, v, rho, gamma, negate, Dtype::F32),
        Dtype::F64 => two_loop_typed::<f64>(py, s, y, v, rho, gamma, negate, Dtype::F64),
    }
}

#[allow(clippy::too_many_arguments)]
fn two_loop_typed<'py, T: Real + Element>(
    py: Python<'py>,
    s: &Bound<'py, PyList>,
    y: &Bound<'py, PyList>,
    v: &Bound<'py, PyAny>,
    rho: Option<Vec<f64>>,
    gamma: Option<f64>,
    negate: bool,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyAny>> {
    let k = s.len();
    if let Some(r) = &rho {
        if r.len() != k {
            return Err(value_error(format!(
                "rho: expected {k} entries (one per pair), got {}",
                r.len()
            )));
        }
    }
    let (v_in, inputs) = read_pairs::<T>(s, y, v, "v", dtype)?;
    let slices: Vec<&[T]> = inputs.iter().map(|a| a.as_slice()).collect();
    let (s_in, y_in) = slices.split_at(k);
    let v_sl = v_in.as_slice();
    let mut out = lec7rs_core::alloc::filled(v_sl.len(), T::ZERO, "the product").context("v")?;
    let work = v_sl
        .len()
        .saturating_mul(k.saturating_mul(4).saturating_add(1));
    let outcome = interrupt::detach(py, work, || -> lec7rs_core::Result<()> {
        let mut pairs = Vec::with_capacity(k);
        for i in 0..k {
            let (si, yi) = (s_in[i], y_in[i]);
            let r = match &rho {
                Some(r) => r[i],
                None => 1.0 / lec7rs_core::optimize::dot(si, yi)?,
            };
            pairs.push(Pair {
                s: si,
                y: yi,
                rho: r,
            });
        }
        let g = match (gamma, pairs.last()) {
            (Some(g), _) => g,
            (None, Some(p)) => {
                // As the minimizer: gamma = s'y / y'y of the newest pair.
                let sy = lec7rs_core::optimize::dot(p.s, p.y)?;
                sy / lec7rs_core::optimize::dot(p.y, p.y)?
            }
            (None, None) => 1.0,
        };
        two_loop(&pairs, g, v_sl, &mut out, negate, v_sl).map(|_| ())
    })?;
    outcome.context("")?;
    Ok(out.into_pyarray(py).into_any())
}

/// The search direction `d = -H g` of `minimize` (the compact
/// representation) after the pairs `s[i]`, `y[i]` (oldest first, 1-D arrays
/// of `g`'s length and dtype) were offered one by one to a history of `m`
/// pairs, as `minimize` offers them: a pair with `s'y <= 0` (or not finite,
/// or `y = 0`) fails the curvature guard and is dropped, and a direction is
/// taken after each pair. With no pairs kept, `d = -g`.
#[pyfunction]
#[pyo3(signature = (s, y, g, *, m))]
pub fn lbfgs_direction<'py>(
    py: Python<'py>,
    s: &Bound<'py, PyList>,
    y: &Bound<'py, PyList>,
    g: &Bound<'py, PyAny>,
    m: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let m = usize::try_from(m)
        .map_err(|_| value_error(format!("invalid m: {m} (expected an integer >= 1)")))?;
    match dtype_of(g, Label::arg("g"))? {
        Dtype::F32 => direction_typed::<f32>(py, s, y, g, m, Dtype::F32),
        Dtype::F64 => direction_typed::<f64>(py, s, y, g, m, Dtype::F64),
    }
}

fn direction_typed<'py, T: Real + Element>(
    py: Python<'py>,
    s: &Bound<'py, PyList>,
    y: &Bound<'py, PyList>,
    g: &Bound<'py, PyAny>,
    m: usize,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyAny>> {
    let k = s.len();
    let (g_in, inputs) = read_pairs::<T>(s, y, g, "g", dtype)?;
    let slices: Vec<&[T]> = inputs.iter().map(|a| a.as_slice()).collect();
    let (s_in, y_in) = slices.split_at(k);
    let g_sl = g_in.as_slice();
    let n = g_sl.len();
    let mut out = lec7rs_core::alloc::filled(n, T::ZERO, "the direction").context("g")?;
    let work = n.saturating_mul(k.saturating_add(1)).saturating_mul(8);
    let outcome = interrupt::detach(py, work, || -> lec7rs_core::Result<()> {
        let mut h = History::<T>::new(n, m)?;
        h.direction(g_sl, &mut out)?;
        for (si, yi) in s_in.iter().zip(y_in) {
            let (hs, hy) = h.spare_mut();
            hs.copy_from_slice(si);
            hy.copy_from_slice(yi);
            let sy = lec7rs_core::optimize::dot(si, yi)?;
            let yy = lec7rs_core::optimize::dot(yi, yi)?;
            if sy > 0.0 && sy.is_finite() && yy > 0.0 {
                h.commit(sy, yy);
            }
            h.direction(g_sl, &mut out)?;
        }
        Ok(())
    })?;
    outcome.context("")?;
    Ok(out.into_pyarray(py).into_any())
}

/// Newton's step: solves `L L^T x = b` for a lower-triangular Cholesky
/// factor `l` (float64, `(n, n)`, any strides) and `b` (float64, `(n,)`),
/// with the GIL released. Returns `x` as a new array.
#[pyfunction]
pub fn cholesky_solve<'py>(
    py: Python<'py>,
    l: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let rhs = read::<f64>(b, Label::Arg("b"), Dtype::F64)?;
    let n = rhs.shape().first().copied().unwrap_or(0);
    let b_shape = rhs.shape().to_vec();
    let factor = read_checked::<f64>(l, Label::Arg("l"), Dtype::F64, |got| {
        if b_shape.len() != 1 || got != [n, n] {
            Err(value_error(format!(
                "cholesky_solve: expected l of shape ({n}, {n}) and b of shape ({n},), got {got:?} and {b_shape:?}"
            )))
        } else {
            Ok(())
        }
    })?;
    let mut x = lec7rs_core::alloc::filled(n, 0.0, "the solution").context("b")?;
    x.copy_from_slice(rhs.as_slice());
    let l = factor.as_slice();
    py.detach(|| lec7rs_core::optimize::cholesky_solve(l, n, &mut x))
        .context("")?;
    Ok(x.into_pyarray(py))
}
