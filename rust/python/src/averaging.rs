//! `_core.average_update` (Polyak averaging, `lec7rs.averaging`) and its
//! hyperparameter check.

use lec7rs_core::averaging::{self as kernels, AverageTensor, Averaging};
use lec7rs_core::simd::Real;
use numpy::{Element, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{dtype_of, read_checked, same_shape, write, Dtype, Names};
use crate::errors::{value_error, CoreResult};

fn averaging(decay: Option<f64>) -> Averaging {
    match decay {
        None => Averaging::Mean,
        Some(decay) => Averaging::Ema { decay },
    }
}

/// Folds `params[i]` into `averages[i]` for every `i`, in place, as one
/// parallel job with the GIL released. `count` is the number of updates so
/// far (0: copy); `decay` is `None` for the running mean. Averages must be
/// C-contiguous and writeable; params may have any strides. Everything is
/// checked before the first write.
#[pyfunction]
pub fn average_update<'py>(
    py: Python<'py>,
    averages: &Bound<'py, PyList>,
    params: &Bound<'py, PyList>,
    count: u64,
    decay: Option<f64>,
    labels: &Bound<'py, PyList>,
) -> PyResult<()> {
    let how = averaging(decay);
    how.validate().context("")?;
    if params.len() != averages.len() {
        return Err(value_error(format!(
            "params: expected {} entries (one per average), got {}",
            averages.len(),
            params.len()
        )));
    }
    if averages.is_empty() {
        return Ok(());
    }
    let names = Names::new(labels);
    match dtype_of(&averages.get_item(0)?, names.of("averages", 0))? {
        Dtype::F32 => run::<f32>(py, averages, params, how, count, names, Dtype::F32),
        Dtype::F64 => run::<f64>(py, averages, params, how, count, names, Dtype::F64),
    }
}

fn run<'py, T: Real + Element>(
    py: Python<'py>,
    averages: &Bound<'py, PyList>,
    params: &Bound<'py, PyList>,
    how: Averaging,
    count: u64,
    names: Names<'_, 'py>,
    dtype: Dtype,
) -> PyResult<()> {
    let mut borrowed = Vec::with_capacity(averages.len());
    for i in 0..averages.len() {
        let a_name = names.of("averages", i);
        let average = write::<T>(&averages.get_item(i)?, a_name, dtype)?;
        let p_name = names.of("params", i);
        // The shape is checked before a strided param is copied.
        let param = read_checked::<T>(&params.get_item(i)?, p_name, dtype, |got| {
            same_shape(got, p_name, average.shape(), a_name)
        })?;
        borrowed.push((average, param));
    }
    let tensors: Vec<AverageTensor<'_, T>> = borrowed
        .iter_mut()
        .map(|(average, param)| AverageTensor {
            // Written arrays are C-contiguous (checked by `write`).
            average: average.as_slice_mut().unwrap_or_default(),
            param: param.as_slice(),
        })
        .collect();
    py.detach(move || kernels::average_update(tensors, how, count))
        .context("")
}

/// Raises `ValueError` when `decay` is not `None` or in [0, 1].
#[pyfunction]
pub fn average_check(decay: Option<f64>) -> PyResult<()> {
    averaging(decay).validate().context("")
}
