//! Turning Python lists of NumPy arrays into checked, borrowed slices.
//!
//! Written arrays (params, state) must be C-contiguous and writeable and are
//! borrowed mutably; read arrays (grads) may have any strides and are copied
//! once when not contiguous. A read array that must match a known shape is
//! checked before that copy ([`read_shaped`]), and the copy itself is a
//! fallible allocation (`MemoryError`, never an abort) that notices Ctrl-C:
//! a broadcast view of 2^36 elements is refused, not materialized. Borrows
//! go through rust-numpy's borrow checker,
//! which refuses overlapping arrays in one call and arrays in use by a
//! concurrent call on another thread (the GIL is released while computing).

use lec7rs_core::buffers;
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList};

use crate::errors::{borrow, type_error, value_error, CoreResult};

/// The element types of the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// The subscripts of the tensors of a call, for messages: `labels[i]` is
/// `"[3]"` or `"['fc1.w']"`, read only when a message is written.
#[derive(Clone, Copy)]
pub struct Names<'a, 'py> {
    labels: &'a Bound<'py, PyList>,
}

impl<'a, 'py> Names<'a, 'py> {
    pub fn new(labels: &'a Bound<'py, PyList>) -> Self {
        Names { labels }
    }

    /// The name of argument `what` of tensor `i`, e.g. `grads['w']`.
    pub fn of(self, what: &'static str, i: usize) -> Label<'a, 'py> {
        Label::Tensor {
            names: self,
            what,
            index: i,
            slot: None,
        }
    }
}

/// An argument name, formatted only when an error needs it: a plain
/// argument (`x`, `out`) or one tensor of a list (`grads['w']`, or a state
/// slot of a param).
#[derive(Clone, Copy)]
pub enum Label<'a, 'py> {
    Arg(&'static str),
    Tensor {
        names: Names<'a, 'py>,
        what: &'static str,
        index: usize,
        /// A state slot of the param, e.g. `exp_avg`.
        slot: Option<&'static str>,
    },
}

impl Label<'_, '_> {
    /// A plain argument name, e.g. `Label::arg("out")`.
    pub fn arg(name: &'static str) -> Self {
        Label::Arg(name)
    }

    /// The label of state slot `slot` of this param.
    pub fn slot(self, slot: &'static str) -> Self {
        match self {
            Label::Tensor {
                names, what, index, ..
            } => Label::Tensor {
                names,
                what,
                index,
                slot: Some(slot),
            },
            arg => arg,
        }
    }
}

impl std::fmt::Display for Label<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Label::Arg(name) => f.write_str(name),
            Label::Tensor {
                names,
                what,
                index,
                slot,
            } => {
                let label = names
                    .labels
                    .get_item(index)
                    .and_then(|l| l.extract::<String>())
                    .unwrap_or_else(|_| format!("[{index}]"));
                match slot {
                    Some(slot) => write!(f, "state '{slot}' of {what}{label}"),
                    None => write!(f, "{what}{label}"),
                }
            }
        }
    }
}

pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    match obj.cast::<PyUntypedArray>() {
        Ok(arr) => {
            let dtype = arr.dtype();
            let name = dtype
                .str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "?".into());
            if dtype.is_native_byteorder().unwrap_or(true) {
                format!("an array of dtype {name}")
            } else {
                format!("an array of dtype {name} (non-native byte order)")
            }
        }
        Err(_) => {
            let ty = obj
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            format!("an object of type {ty}")
        }
    }
}

/// The dtype of an array that must be float32 or float64.
pub fn dtype_of(obj: &Bound<'_, PyAny>, what: Label<'_, '_>) -> PyResult<Dtype> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() {
        Ok(Dtype::F32)
    } else if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        Ok(Dtype::F64)
    } else {
        Err(type_error(format!(
            "{what}: expected a float32 or float64 NumPy array, got {}",
            describe(obj)
        )))
    }
}

pub(crate) fn typed<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &dyn std::fmt::Display,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    obj.cast::<PyArrayDyn<T>>().cloned().map_err(|_| {
        type_error(format!(
            "{what}: expected {expected}, got {}",
            describe(obj)
        ))
    })
}

/// How a float array of the call's dtype is named in messages.
pub(crate) struct OfDtype(pub Dtype);

impl std::fmt::Display for OfDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a {} NumPy array (the dtype of this call)",
            self.0.name()
        )
    }
}

/// A read-only input: borrowed when contiguous, else copied once in C order.
pub enum Input<'py, T: Element> {
    Borrowed(PyReadonlyArrayDyn<'py, T>),
    Copied(Vec<T>, Vec<usize>),
}

impl<T: Element + Copy> Input<'_, T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            // A contiguous borrow always has a slice; the fallback is unreachable.
            Input::Borrowed(a) => a.as_slice().unwrap_or(&[]),
            Input::Copied(v, _) => v,
        }
    }

    pub fn shape(&self) -> &[usize] {
        match self {
            Input::Borrowed(a) => a.shape(),
            Input::Copied(_, shape) => shape,
        }
    }
}

/// Borrows an array that is only read. Any strides are accepted.
pub fn read<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    dtype: Dtype,
) -> PyResult<Input<'py, T>> {
    read_typed(obj, what, &OfDtype(dtype))
}

/// As [`read`], for an array that must have `shape` (the shape of the
/// argument `shape_what`): a `ValueError` naming both (the text of
/// [`same_shape`]) is raised from the array's header, before any copy.
pub fn read_shaped<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    dtype: Dtype,
    shape: &[usize],
    shape_what: Label<'_, '_>,
) -> PyResult<Input<'py, T>> {
    read_typed_shaped(obj, what, &OfDtype(dtype), shape, shape_what)
}

/// [`read_shaped`] for an array of another element type (see
/// [`read_typed`]).
pub fn read_typed_shaped<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &dyn std::fmt::Display,
    shape: &[usize],
    shape_what: Label<'_, '_>,
) -> PyResult<Input<'py, T>> {
    read_general(obj, what, expected, |got| {
        same_shape(shape, shape_what, got, what)
    })
}

/// As [`read`], with `check` run on the array's shape before anything is
/// borrowed or copied (for a check that [`read_shaped`] does not express,
/// such as another order of the names in the message).
pub fn read_checked<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    dtype: Dtype,
    check: impl FnOnce(&[usize]) -> PyResult<()>,
) -> PyResult<Input<'py, T>> {
    read_general(obj, what, &OfDtype(dtype), check)
}

/// As [`read`], for an array of another element type (a uint8 view of a
/// bool mask, int64 indices), described as `expected` in messages.
pub fn read_typed<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &dyn std::fmt::Display,
) -> PyResult<Input<'py, T>> {
    read_general(obj, what, expected, |_| Ok(()))
}

/// The general read: the dtype, then `check` on the shape (from the array's
/// header, nothing copied yet), then the borrow, and a copy in C order if
/// the array is not C-contiguous.
fn read_general<'py, T: Element + Copy>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &dyn std::fmt::Display,
    check: impl FnOnce(&[usize]) -> PyResult<()>,
) -> PyResult<Input<'py, T>> {
    let arr = typed::<T>(obj, what, expected)?;
    check(arr.shape())?;
    let ro = arr
        .try_readonly()
        .map_err(|e| borrow(&what.to_string(), e))?;
    // Not `as_slice().is_ok()`: that also accepts Fortran order, whose memory
    // order is not the logical (C) order.
    if arr.is_c_contiguous() {
        Ok(Input::Borrowed(ro))
    } else {
        let shape = ro.shape().to_vec();
        let data = copy_in_c_order(obj.py(), &ro, what)?;
        Ok(Input::Copied(data, shape))
    }
}

/// Elements copied between two checks for Ctrl-C while a strided input is
/// copied (with the GIL held).
const COPY_PER_SIGNAL_CHECK: usize = 1 << 22;

/// The elements of `ro` in C order, in a vector allocated fallibly
/// (`MemoryError` if it does not fit); a pending signal (Ctrl-C) stops the
/// copy with its exception.
fn copy_in_c_order<T: Element + Copy>(
    py: Python<'_>,
    ro: &PyReadonlyArrayDyn<'_, T>,
    what: Label<'_, '_>,
) -> PyResult<Vec<T>> {
    let mut data =
        lec7rs_core::alloc::with_capacity(ro.len(), "a C-contiguous copy of this strided array")
            .context(&what.to_string())?;
    let view = ro.as_array();
    let mut elements = view.iter().copied();
    loop {
        let before = data.len();
        data.extend(elements.by_ref().take(COPY_PER_SIGNAL_CHECK));
        if data.len() == before {
            return Ok(data);
        }
        py.check_signals()?;
    }
}

/// The shape of a NumPy array, read from its header (nothing copied);
/// `TypeError` for anything else.
pub fn shape_of(obj: &Bound<'_, PyAny>, what: Label<'_, '_>) -> PyResult<Vec<usize>> {
    obj.cast::<PyUntypedArray>()
        .map(|a| a.shape().to_vec())
        .map_err(|_| {
            type_error(format!(
                "{what}: expected a NumPy array, got {}",
                describe(obj)
            ))
        })
}

/// Borrows an array that is written: C-contiguous and writeable.
pub fn write<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    dtype: Dtype,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let arr = typed::<T>(obj, what, &OfDtype(dtype))?;
    if !arr.is_c_contiguous() {
        let hint = match what {
            Label::Arg(_) => "",
            Label::Tensor { .. } => {
                " (use np.ascontiguousarray once, before building the optimizer)"
            }
        };
        return Err(value_error(format!(
            "{what} must be C-contiguous to be updated in place{hint}"
        )));
    }
    arr.try_readwrite()
        .map_err(|e| borrow(&what.to_string(), e))
}

/// Checks that two arrays of one tensor have the same shape.
pub fn same_shape(
    a: &[usize],
    a_what: Label<'_, '_>,
    b: &[usize],
    b_what: Label<'_, '_>,
) -> PyResult<()> {
    if a == b {
        Ok(())
    } else {
        Err(value_error(format!(
            "shape mismatch: {a_what} has shape {} but {b_what} has shape {}",
            fmt_shape(a),
            fmt_shape(b)
        )))
    }
}

pub fn fmt_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// NumPy's WRITEABLE flag.
pub fn is_writeable<'py>(arr: &impl PyUntypedArrayMethods<'py>) -> bool {
    // SAFETY: reads the flags of a live array object.
    unsafe {
        (*numpy::npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).flags
            & numpy::npyffi::NPY_ARRAY_WRITEABLE
            != 0
    }
}

/// A new C-order array for a kernel that writes every element of it:
/// from 1 MiB up, its memory comes from the core's cache of freed output
/// buffers (`lec7rs_core::buffers`), so a loop that asks for the same size
/// every step does not pay for fresh pages each time; the array's base is
/// the capsule that owns the buffer and returns it to the cache when the
/// last view of it is gone. Smaller arrays are [`zeros`]. The contents of
/// a reused buffer are whatever its last user wrote: never call this for
/// an output that a kernel accumulates into or writes only in part.
pub fn empty<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    Ok(empty_with_origin(py, shape)?.0)
}

/// [`empty`], and whether its memory is fresh from the allocator (`true`)
/// rather than reused from the cache, for kernels that store differently
/// to pages not yet touched.
pub fn empty_with_origin<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<(Bound<'py, PyArrayDyn<T>>, bool)> {
    let too_large = || value_error(format!("shape {} is too large", fmt_shape(shape)));
    let bytes = shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d))
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(too_large)?;
    if bytes < buffers::MIN_BYTES || buffers::capacity() == 0 {
        return Ok((zeros(py, shape)?, true));
    }
    let (mut dims, nd) = npy_dims(shape)?;
    let mut buf = buffers::Buffer::take(bytes).context("output array")?;
    let (data, fresh) = (buf.as_mut_ptr(), buf.is_fresh());
    // If anything below fails, the capsule (or the buffer) is dropped and
    // the buffer goes back to the cache.
    let capsule = PyCapsule::new_with_value(py, buf, c"lec7rs output buffer")?;
    // SAFETY: `data` holds `bytes` bytes, 16-byte aligned, for `dims`
    // (`nd` sizes) of `T` in C order, and stays valid while the capsule
    // lives; the capsule becomes the array's base, which keeps it alive as
    // long as the array or any view of it. PyArray_NewFromDescr steals the
    // dtype reference and returns a new reference or NULL with an exception
    // set; PyArray_SetBaseObject steals the capsule reference, also when it
    // fails.
    unsafe {
        let api = &numpy::PY_ARRAY_API;
        let arr = api.PyArray_NewFromDescr(
            py,
            numpy::npyffi::get_type_object(py, numpy::npyffi::NpyTypes::PyArray_Type),
            T::get_dtype(py).into_dtype_ptr(),
            nd,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data.cast(),
            numpy::npyffi::NPY_ARRAY_WRITEABLE,
            std::ptr::null_mut(),
        );
        let arr = Bound::from_owned_ptr_or_err(py, arr)?;
        if api.PyArray_SetBaseObject(py, arr.as_ptr().cast(), capsule.into_ptr()) < 0 {
            return Err(PyErr::fetch(py));
        }
        Ok((arr.cast_into_unchecked(), fresh))
    }
}

/// A new zero-filled C-order array (NumPy's `calloc`: fresh pages cost
/// nothing until written). A failed allocation is a Python `MemoryError`
/// (or `ValueError` for a shape that is too large), never a panic.
pub fn zeros<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let (mut dims, nd) = npy_dims(shape)?;
    // SAFETY: `dims` holds `nd` sizes; PyArray_Zeros steals the dtype
    // reference and returns a new reference or NULL with an exception set.
    unsafe {
        let ptr = numpy::PY_ARRAY_API.PyArray_Zeros(
            py,
            nd,
            dims.as_mut_ptr(),
            T::get_dtype(py).into_dtype_ptr(),
            0,
        );
        Ok(Bound::from_owned_ptr_or_err(py, ptr)?.cast_into_unchecked())
    }
}

/// `shape` as NumPy's dimensions and their count; ValueError for a shape
/// that does not fit them.
fn npy_dims(shape: &[usize]) -> PyResult<(Vec<numpy::npyffi::npy_intp>, std::ffi::c_int)> {
    let too_large = || value_error(format!("shape {} is too large", fmt_shape(shape)));
    let dims = shape
        .iter()
        .map(|&d| numpy::npyffi::npy_intp::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| too_large())?;
    let nd = std::ffi::c_int::try_from(dims.len()).map_err(|_| too_large())?;
    Ok((dims, nd))
}
