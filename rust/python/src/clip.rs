//! `_core.grad_norm`, `_core.grads_scale`, `_core.grads_clamp`: the kernels of
//! `lec7rs.optim`'s gradient utilities (torch.nn.utils semantics), and
//! `_core.lookahead_sync` (Lookahead's slow-weight update): each one
//! parallel job over all arrays with the GIL released.

use lec7rs_core::optim::clip::{self, Norm};
use lec7rs_core::optim::lookahead;
use lec7rs_core::simd::Real;
use numpy::{Element, PyReadwriteArrayDyn};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{dtype_of, read, write, Dtype, Names};
use crate::errors::CoreResult;

/// The dtype of a call: that of the first array (float64 when empty).
fn call_dtype(grads: &Bound<'_, PyList>, names: Names<'_, '_>) -> PyResult<Dtype> {
    match grads.len() {
        0 => Ok(Dtype::F64),
        _ => dtype_of(&grads.get_item(0)?, names.of("grads", 0)),
    }
}

/// The total `norm_type`-norm of all grads (any strides).
#[pyfunction]
pub fn grad_norm(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    norm_type: f64,
    labels: &Bound<'_, PyList>,
) -> PyResult<f64> {
    let norm = Norm::new(norm_type).context("")?;
    let names = Names::new(labels);
    fn run<T: Real + Element>(
        py: Python<'_>,
        grads: &Bound<'_, PyList>,
        norm: Norm,
        names: Names<'_, '_>,
        dtype: Dtype,
    ) -> PyResult<f64> {
        let inputs = (0..grads.len())
            .map(|i| read::<T>(&grads.get_item(i)?, names.of("grads", i), dtype))
            .collect::<PyResult<Vec<_>>>()?;
        let slices: Vec<&[T]> = inputs.iter().map(|g| g.as_slice()).collect();
        py.detach(|| clip::total_norm(&slices, norm)).context("")
    }
    match call_dtype(grads, names)? {
        Dtype::F32 => run::<f32>(py, grads, norm, names, Dtype::F32),
        Dtype::F64 => run::<f64>(py, grads, norm, names, Dtype::F64),
    }
}

/// Every array of `list`, borrowed for writing (C-contiguous, writeable).
fn write_all<'py, T: Element>(
    list: &Bound<'py, PyList>,
    what: &'static str,
    names: Names<'_, 'py>,
    dtype: Dtype,
) -> PyResult<Vec<PyReadwriteArrayDyn<'py, T>>> {
    (0..list.len())
        .map(|i| write::<T>(&list.get_item(i)?, names.of(what, i), dtype))
        .collect()
}

/// The slices of borrowed arrays (C-contiguous: checked by `write`).
fn slices_mut<'a, T: Element>(arrays: &'a mut [PyReadwriteArrayDyn<'_, T>]) -> Vec<&'a mut [T]> {
    arrays
        .iter_mut()
        .map(|a| a.as_slice_mut().unwrap_or_default())
        .collect()
}

/// `g = op(g)` in place for every grad (C-contiguous, writeable, distinct).
fn map_in_place(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    labels: &Bound<'_, PyList>,
    value: f64,
    scale: bool,
) -> PyResult<()> {
    let names = Names::new(labels);
    fn run<T: Real + Element>(
        py: Python<'_>,
        grads: &Bound<'_, PyList>,
        names: Names<'_, '_>,
        dtype: Dtype,
        value: f64,
        scale: bool,
    ) -> PyResult<()> {
        let mut arrays = write_all::<T>(grads, "grads", names, dtype)?;
        let slices = slices_mut(&mut arrays);
        let v = T::from_f64(value);
        py.detach(move || {
            if scale {
                clip::scale(slices, v)
            } else {
                clip::clamp(slices, v)
            }
        })
        .context("")
    }
    match call_dtype(grads, names)? {
        Dtype::F32 => run::<f32>(py, grads, names, Dtype::F32, value, scale),
        Dtype::F64 => run::<f64>(py, grads, names, Dtype::F64, value, scale),
    }
}

/// `g *= c` for every grad, `c` rounded once to the grads' dtype.
#[pyfunction]
pub fn grads_scale(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    c: f64,
    labels: &Bound<'_, PyList>,
) -> PyResult<()> {
    map_in_place(py, grads, labels, c, true)
}

/// `g = clamp(g, -v, v)` for every grad.
#[pyfunction]
pub fn grads_clamp(
    py: Python<'_>,
    grads: &Bound<'_, PyList>,
    v: f64,
    labels: &Bound<'_, PyList>,
) -> PyResult<()> {
    map_in_place(py, grads, labels, v, false)
}

/// Lookahead's synchronisation: `slow += alpha * (fast - slow); fast = slow`
/// for every pair (C-contiguous, writeable, distinct, one dtype).
#[pyfunction]
pub fn lookahead_sync(
    py: Python<'_>,
    fast: &Bound<'_, PyList>,
    slow: &Bound<'_, PyList>,
    alpha: f64,
    labels: &Bound<'_, PyList>,
) -> PyResult<()> {
    lookahead::check_alpha(alpha).context("")?;
    let names = Names::new(labels);
    fn run<T: Real + Element>(
        py: Python<'_>,
        fast: &Bound<'_, PyList>,
        slow: &Bound<'_, PyList>,
        alpha: f64,
        names: Names<'_, '_>,
        dtype: Dtype,
    ) -> PyResult<()> {
        let mut f = write_all::<T>(fast, "params", names, dtype)?;
        let mut s = write_all::<T>(slow, "slow weights", names, dtype)?;
        let (f, s) = (slices_mut(&mut f), slices_mut(&mut s));
        py.detach(move || lookahead::sync(f, s, alpha)).context("")
    }
    match call_dtype(fast, names)? {
        Dtype::F32 => run::<f32>(py, fast, slow, alpha, names, Dtype::F32),
        Dtype::F64 => run::<f64>(py, fast, slow, alpha, names, Dtype::F64),
    }
}
