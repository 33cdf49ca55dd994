//! `_core.dropout`, `_core.dropout_backward`, `_core.stochastic_depth`,
//! `_core.fractional_max_pool2d(_backward)`. Each checks every argument
//! (shapes before any strided input is copied), then reserves its range of
//! the stream, then computes with the GIL released; a long call stops on
//! Ctrl-C (see `interrupt.rs`) and gives its range of the stream back.
//! Masks are bool arrays, read through a uint8 view (any byte other than 0
//! counts as kept, as NumPy's `astype(bool)` would).

use lec7rs_core::random::Uniform;
use lec7rs_core::regularization::{
    self as kernels, DepthMode, Dest, DropoutScale, FractionalPool, PoolShape,
};
use numpy::{
    Element, PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::arrays::{
    dtype_of, empty, empty_with_origin, fmt_shape, read, read_checked, read_typed_shaped,
    same_shape, shape_of, write, Dtype, Input, Label,
};
use crate::errors::{type_error, value_error, CoreResult};
use crate::interrupt;
use crate::random::{reserve, settle, PhiloxStream};

/// The output array of a call: `out=` borrowed for writing, or a new one.
enum Output<'py, T: Element> {
    Given(Bound<'py, PyAny>, PyReadwriteArrayDyn<'py, T>),
    /// A new array, and whether its memory is fresh from the allocator.
    New(Bound<'py, PyArrayDyn<T>>, PyReadwriteArrayDyn<'py, T>, bool),
}

impl<'py, T: Element> Output<'py, T> {
    fn new(py: Python<'py>, shape: &[usize]) -> PyResult<Self> {
        let (arr, fresh) = empty_with_origin::<T>(py, shape)?;
        let rw = arr
            .try_readwrite()
            .map_err(|e| value_error(e.to_string()))?;
        Ok(Output::New(arr, rw, fresh))
    }

    fn shape(&self) -> &[usize] {
        match self {
            Output::Given(_, rw) | Output::New(_, rw, _) => rw.shape(),
        }
    }

    fn slice(&mut self) -> &mut [T] {
        // Written arrays are C-contiguous (checked by `write`; new ones are).
        match self {
            Output::Given(_, rw) | Output::New(_, rw, _) => rw.as_slice_mut().unwrap_or_default(),
        }
    }

    fn into_object(self) -> Bound<'py, PyAny> {
        match self {
            Output::Given(obj, _) => obj,
            Output::New(arr, ..) => arr.into_any(),
        }
    }
}

/// A new bool array and its bytes.
fn new_mask<'py>(
    py: Python<'py>,
    shape: &[usize],
) -> PyResult<(Bound<'py, PyArrayDyn<bool>>, PyReadwriteArrayDyn<'py, bool>)> {
    let arr = empty::<bool>(py, shape)?;
    let rw = arr
        .try_readwrite()
        .map_err(|e| value_error(e.to_string()))?;
    Ok((arr, rw))
}

/// The bytes of a bool array being written: 0 or 1 only are stored, so
/// the bools stay valid.
fn mask_bytes<'a>(rw: &'a mut PyReadwriteArrayDyn<'_, bool>) -> &'a mut [u8] {
    let bools = rw.as_slice_mut().unwrap_or_default();
    // SAFETY: `bool` and `u8` have the same layout, and the kernels write
    // only 0 and 1.
    unsafe { std::slice::from_raw_parts_mut(bools.as_mut_ptr().cast::<u8>(), bools.len()) }
}

/// Reads a bool mask of `shape` (that of argument `shape_what`) as bytes,
/// through a uint8 view, so that no byte is ever read as a Rust `bool`.
fn read_mask<'py>(
    obj: &Bound<'py, PyAny>,
    what: &'static str,
    shape: &[usize],
    shape_what: Label<'_, '_>,
) -> PyResult<Input<'py, u8>> {
    if obj.cast::<PyArrayDyn<bool>>().is_err() {
        let got = match obj.cast::<PyUntypedArray>() {
            Ok(a) => format!("an array of dtype {}", a.dtype()),
            Err(_) => format!("an object of type {}", obj.get_type().name()?),
        };
        return Err(type_error(format!(
            "{what}: expected a bool NumPy array, got {got}"
        )));
    }
    let view = obj.call_method1("view", ("u1",))?;
    read_typed_shaped::<u8>(
        &view,
        Label::arg(what),
        &"a bool NumPy array",
        shape,
        shape_what,
    )
}

fn typed_dtype<T: Element>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// `dropout(x, p, stream, training, inverted, out=None) -> (y, mask | None)`;
/// `out` may be `x` itself (in place).
#[pyfunction]
#[pyo3(signature = (x, p, stream, training, inverted, out=None))]
pub fn dropout<'py>(
    x: &Bound<'py, PyAny>,
    p: f64,
    stream: &Bound<'py, PhiloxStream>,
    training: bool,
    inverted: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    match dtype_of(x, Label::arg("x"))? {
        Dtype::F32 => dropout_typed::<f32>(x, p, stream, training, inverted, out),
        Dtype::F64 => dropout_typed::<f64>(x, p, stream, training, inverted, out),
    }
}

fn dropout_typed<'py, T: Uniform + Element>(
    x: &Bound<'py, PyAny>,
    p: f64,
    stream: &Bound<'py, PhiloxStream>,
    training: bool,
    inverted: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let py = x.py();
    let dtype = typed_dtype::<T>();
    DropoutScale::new(p, inverted).context("")?;
    let in_place = out.is_some_and(|o| o.is(x));
    let (input, mut y) = if in_place {
        let rw = write::<T>(x, Label::arg("out"), dtype)?;
        (None, Output::Given(x.clone(), rw))
    } else {
        match out {
            Some(o) => {
                // `out` first, so that a strided `x` of another shape is
                // refused before it is copied.
                let rw = write::<T>(o, Label::arg("out"), dtype)?;
                let out_shape = rw.shape().to_vec();
                let input = read_checked::<T>(x, Label::arg("x"), dtype, |got| {
                    same_shape(got, Label::arg("x"), &out_shape, Label::arg("out"))
                })?;
                (Some(input), Output::Given(o.clone(), rw))
            }
            None => {
                let input = read::<T>(x, Label::arg("x"), dtype)?;
                let y = Output::new(py, input.shape())?;
                (Some(input), y)
            }
        }
    };
    let shape = y.shape().to_vec();
    // Fresh pages take plain stores, pages written before streaming stores.
    let dest = match y {
        Output::New(_, _, true) => Dest::New,
        _ => Dest::Existing,
    };
    let x_slice = input.as_ref().map(|i| i.as_slice());
    let y_slice = y.slice();
    let work = y_slice.len();
    let mask = if training {
        let (mask, mut rw) = new_mask(py, &shape)?;
        let words = work as u64;
        let draw = reserve(stream, words)?;
        let bytes = mask_bytes(&mut rw);
        let outcome = interrupt::detach(py, work, || {
            kernels::dropout_train(x_slice, y_slice, bytes, p, inverted, draw, dest)
        });
        settle(stream, draw, words, outcome)?;
        drop(rw);
        Some(mask.into_any())
    } else {
        interrupt::detach(py, work, || {
            kernels::dropout_eval(x_slice, y_slice, p, inverted)
        })?
        .context("")?;
        None
    };
    drop(input);
    Ok((y.into_object(), mask))
}

/// `dropout_backward(dout, mask, p, inverted) -> dx` (also DropConnect's).
#[pyfunction]
pub fn dropout_backward<'py>(
    dout: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    p: f64,
    inverted: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match dtype_of(dout, Label::arg("dout"))? {
        Dtype::F32 => dropout_backward_typed::<f32>(dout, mask, p, inverted),
        Dtype::F64 => dropout_backward_typed::<f64>(dout, mask, p, inverted),
    }
}

fn dropout_backward_typed<'py, T: Uniform + Element>(
    dout: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
    p: f64,
    inverted: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let py = dout.py();
    DropoutScale::new(p, inverted).context("")?;
    // Both shapes are checked before either array is copied.
    let dout_shape = shape_of(dout, Label::arg("dout"))?;
    let mask = read_mask(mask, "mask", &dout_shape, Label::arg("dout"))?;
    let grad = read::<T>(dout, Label::arg("dout"), typed_dtype::<T>())?;
    let mut dx = Output::<T>::new(py, grad.shape())?;
    let (g, m, d) = (grad.as_slice(), mask.as_slice(), dx.slice());
    interrupt::detach(py, g.len(), || {
        kernels::dropout_backward(g, m, p, inverted, d)
    })?
    .context("")?;
    Ok(dx.into_object())
}

/// `stochastic_depth(x, p, stream, row, training) -> (y, keep | None)`;
/// `keep` has shape `(N, 1, ..., 1)` ("row") or `(1, ..., 1)` ("batch").
#[pyfunction]
pub fn stochastic_depth<'py>(
    x: &Bound<'py, PyAny>,
    p: f64,
    stream: &Bound<'py, PhiloxStream>,
    row: bool,
    training: bool,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    match dtype_of(x, Label::arg("x"))? {
        Dtype::F32 => stochastic_depth_typed::<f32>(x, p, stream, row, training),
        Dtype::F64 => stochastic_depth_typed::<f64>(x, p, stream, row, training),
    }
}

fn stochastic_depth_typed<'py, T: Uniform + Element>(
    x: &Bound<'py, PyAny>,
    p: f64,
    stream: &Bound<'py, PhiloxStream>,
    row: bool,
    training: bool,
) -> PyResult<(Bound<'py, PyAny>, Option<Bound<'py, PyAny>>)> {
    let py = x.py();
    DropoutScale::new(p, true).context("")?;
    let input = read::<T>(x, Label::arg("x"), typed_dtype::<T>())?;
    let shape = input.shape().to_vec();
    let mode = if row {
        DepthMode::Row
    } else {
        DepthMode::Batch
    };
    if row && shape.is_empty() {
        return Err(value_error(
            "x: mode=\"row\" needs an array with at least one dimension (one draw per index along axis 0)".into(),
        ));
    }
    let mut y = Output::<T>::new(py, &shape)?;
    if !training {
        let (src, dst) = (input.as_slice(), y.slice());
        interrupt::detach(py, src.len(), || lec7rs_core::parallel::copy(src, dst))?.context("")?;
        return Ok((y.into_object(), None));
    }
    let keep_shape: Vec<usize> = (0..shape.len())
        .map(|axis| if row && axis == 0 { shape[0] } else { 1 })
        .collect();
    let draws = mode.draws(shape.first().copied().unwrap_or(1));
    let (keep, mut rw) = new_mask(py, &keep_shape)?;
    let words = draws as u64;
    let draw = reserve(stream, words)?;
    let bytes = mask_bytes(&mut rw);
    let (src, dst) = (input.as_slice(), y.slice());
    let outcome = interrupt::detach(py, src.len(), || {
        kernels::stochastic_depth(src, dst, bytes, p, draw)
    });
    settle(stream, draw, words, outcome)?;
    drop(rw);
    Ok((y.into_object(), Some(keep.into_any())))
}

fn nchw(shape: &[usize], what: &str) -> PyResult<[usize; 4]> {
    <[usize; 4]>::try_from(shape).map_err(|_| {
        value_error(format!(
            "{what}: expected a 4-D (N, C, H, W) array, got shape {}",
            fmt_shape(shape)
        ))
    })
}

/// `fractional_max_pool2d(x, out_h, out_w, kernel_h, kernel_w, stream,
/// pseudo_random, overlapping) -> (y, argmax)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn fractional_max_pool2d<'py>(
    x: &Bound<'py, PyAny>,
    out_h: usize,
    out_w: usize,
    kernel_h: usize,
    kernel_w: usize,
    stream: &Bound<'py, PhiloxStream>,
    pseudo_random: bool,
    overlapping: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let sizes = (out_h, out_w, kernel_h, kernel_w, pseudo_random, overlapping);
    match dtype_of(x, Label::arg("x"))? {
        Dtype::F32 => pool_typed::<f32>(x, sizes, stream),
        Dtype::F64 => pool_typed::<f64>(x, sizes, stream),
    }
}

fn pool_typed<'py, T: Uniform + Element>(
    x: &Bound<'py, PyAny>,
    (out_h, out_w, kernel_h, kernel_w, pseudo_random, overlapping): (
        usize,
        usize,
        usize,
        usize,
        bool,
        bool,
    ),
    stream: &Bound<'py, PhiloxStream>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let py = x.py();
    let input = read::<T>(x, Label::arg("x"), typed_dtype::<T>())?;
    let [n, c, h, w] = nchw(input.shape(), "x")?;
    let pool = FractionalPool {
        shape: PoolShape {
            n,
            c,
            h,
            w,
            out_h,
            out_w,
        },
        kernel_h,
        kernel_w,
        pseudo_random,
        overlapping,
    };
    pool.validate().context("")?;
    let out_shape = [n, c, out_h, out_w];
    let mut y = Output::<T>::new(py, &out_shape)?;
    let mut argmax = Output::<i64>::new(py, &out_shape)?;
    let words = pool.words::<T>();
    let draw = reserve(stream, words)?;
    let (src, dst, idx) = (input.as_slice(), y.slice(), argmax.slice());
    let outcome = interrupt::detach(py, pool_work(&pool, src.len(), dst.len()), || {
        kernels::fractional_max_pool2d(&pool, src, draw, dst, idx)
    });
    settle(stream, draw, words, outcome)?;
    Ok((y.into_object(), argmax.into_object()))
}

/// The input elements a pooling visits: every window of every output
/// (overlapping windows of `kernel_h x kernel_w`), or about the input once
/// (disjoint regions).
fn pool_work(pool: &FractionalPool, input: usize, output: usize) -> usize {
    if pool.overlapping {
        output
            .saturating_mul(pool.kernel_h)
            .saturating_mul(pool.kernel_w)
    } else {
        input.saturating_add(output)
    }
}

/// `fractional_max_pool2d_backward(dout, argmax, input_shape) -> dx`.
#[pyfunction]
pub fn fractional_max_pool2d_backward<'py>(
    dout: &Bound<'py, PyAny>,
    argmax: &Bound<'py, PyAny>,
    input_shape: Vec<usize>,
) -> PyResult<Bound<'py, PyAny>> {
    match dtype_of(dout, Label::arg("dout"))? {
        Dtype::F32 => pool_backward_typed::<f32>(dout, argmax, &input_shape),
        Dtype::F64 => pool_backward_typed::<f64>(dout, argmax, &input_shape),
    }
}

fn pool_backward_typed<'py, T: Uniform + Element>(
    dout: &Bound<'py, PyAny>,
    argmax: &Bound<'py, PyAny>,
    input_shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let py = dout.py();
    // Every shape is checked before either array is copied.
    let dout_shape = shape_of(dout, Label::arg("dout"))?;
    let index = read_typed_shaped::<i64>(
        argmax,
        Label::arg("argmax"),
        &"an int64 NumPy array",
        &dout_shape,
        Label::arg("dout"),
    )?;
    let [n, c, h, w] = nchw(input_shape, "input_shape")?;
    let [gn, gc, out_h, out_w] = nchw(&dout_shape, "dout")?;
    if (gn, gc) != (n, c) {
        return Err(value_error(format!(
            "dout has shape {} but input_shape is {}: N and C must match",
            fmt_shape(&dout_shape),
            fmt_shape(input_shape)
        )));
    }
    let grad = read::<T>(dout, Label::arg("dout"), typed_dtype::<T>())?;
    let shape = PoolShape {
        n,
        c,
        h,
        w,
        out_h,
        out_w,
    };
    let mut dx = Output::<T>::new(py, input_shape)?;
    let (g, a, d) = (grad.as_slice(), index.as_slice(), dx.slice());
    interrupt::detach(py, g.len().saturating_add(d.len()), || {
        kernels::fractional_max_pool2d_backward(shape, g, a, d)
    })?
    .context("")?;
    Ok(dx.into_object())
}
