//! `_core.augment_{flip,crop,resized_crop,color_jitter}`: image batches of
//! uint8 or float32 in NHWC or NCHW. Each checks every argument, allocates
//! or checks `out` (all from the arrays' headers: a strided input is
//! copied only once everything fits), then reserves its range of the
//! stream, plans the per-image parameters and computes with the GIL
//! released, stopping on Ctrl-C when long (see `interrupt.rs`); it returns
//! the output and the parameters (Python decides whether to show them).

use lec7rs_core::augment::FlipAxis;
use lec7rs_core::augment::{
    self as kernels, Batch, CropBox, CropSpec, Jitter, JitterParams, Layout, PadMode, Pixel, Range,
    ResizedCropSpec,
};
use lec7rs_core::augment::{color, crop as crop_mod, flip as flip_mod, resize};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::arrays::{
    describe, empty, fmt_shape, read_typed_shaped, shape_of as array_shape, Input, Label,
};
use crate::errors::{borrow, type_error, value_error, CoreResult};
use crate::interrupt;
use crate::random::{reserve, settle, PhiloxStream};

/// The pixel types of the augmentations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dtype {
    U8,
    F32,
}

impl Dtype {
    fn of(obj: &Bound<'_, PyAny>) -> PyResult<Dtype> {
        if obj.cast::<PyArrayDyn<u8>>().is_ok() {
            Ok(Dtype::U8)
        } else if obj.cast::<PyArrayDyn<f32>>().is_ok() {
            Ok(Dtype::F32)
        } else {
            Err(type_error(format!(
                "images: expected a uint8 or float32 NumPy array, got {}",
                describe(obj)
            )))
        }
    }
}

trait Px: Pixel + Element {
    const NAME: &'static str;
}

impl Px for u8 {
    const NAME: &'static str = "uint8";
}

impl Px for f32 {
    const NAME: &'static str = "float32";
}

/// The sizes of the input batch, from the array's header: nothing is
/// copied before the call is known to fit (see [`read_input`]).
fn batch_of(images: &Bound<'_, PyAny>, layout: Layout) -> PyResult<(Vec<usize>, Batch)> {
    let shape = array_shape(images, Label::arg("images"))?;
    let [n, a, b, c] = <[usize; 4]>::try_from(shape.as_slice()).map_err(|_| {
        let (axes, hint) = match layout {
            Layout::Nhwc => ("(N, H, W, C)", "images[None]"),
            Layout::Nchw => ("(N, C, H, W)", "images[None]"),
        };
        value_error(format!(
            "images: expected a 4-D batch {axes} for layout {}, got shape {} \
             (for one image, add a batch axis: {hint})",
            layout_name(layout),
            fmt_shape(&shape)
        ))
    })?;
    let batch = match layout {
        Layout::Nhwc => Batch {
            n,
            h: a,
            w: b,
            c,
            layout,
        },
        Layout::Nchw => Batch {
            n,
            h: b,
            w: c,
            c: a,
            layout,
        },
    };
    Ok((shape, batch))
}

/// The input batch of `shape` (from [`batch_of`]), read with any strides.
fn read_input<'py, T: Px>(images: &Bound<'py, PyAny>, shape: &[usize]) -> PyResult<Input<'py, T>> {
    let expected = format!("a {} NumPy array", T::NAME);
    let images_label = Label::arg("images");
    read_typed_shaped::<T>(images, images_label, &expected, shape, images_label)
}

fn layout_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Nhwc => "NHWC",
        Layout::Nchw => "NCHW",
    }
}

fn layout_of(nchw: bool) -> Layout {
    if nchw {
        Layout::Nchw
    } else {
        Layout::Nhwc
    }
}

fn shape_of(batch: Batch) -> [usize; 4] {
    match batch.layout {
        Layout::Nhwc => [batch.n, batch.h, batch.w, batch.c],
        Layout::Nchw => [batch.n, batch.c, batch.h, batch.w],
    }
}

/// The output: `out=` (checked: dtype, C-contiguous, writeable, shape) or a
/// new array.
struct Output<'py, T: Element> {
    obj: Bound<'py, PyAny>,
    rw: PyReadwriteArrayDyn<'py, T>,
}

impl<'py, T: Px> Output<'py, T> {
    fn get(py: Python<'py>, out: Option<&Bound<'py, PyAny>>, batch: Batch) -> PyResult<Self> {
        let shape = shape_of(batch);
        let Some(obj) = out else {
            let arr = empty::<T>(py, &shape)?;
            let rw = arr
                .try_readwrite()
                .map_err(|e| value_error(e.to_string()))?;
            return Ok(Output {
                obj: arr.into_any(),
                rw,
            });
        };
        let arr = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
            type_error(format!(
                "out: expected a {} NumPy array (the dtype of images), got {}",
                T::NAME,
                describe(obj)
            ))
        })?;
        if !arr.is_c_contiguous() {
            return Err(value_error(
                "out must be C-contiguous to be written in place".into(),
            ));
        }
        if arr.shape() != shape {
            return Err(value_error(format!(
                "out has shape {} but the result has shape {} (layout {})",
                fmt_shape(arr.shape()),
                fmt_shape(&shape),
                layout_name(batch.layout)
            )));
        }
        let rw = arr.try_readwrite().map_err(|e| borrow("out", e))?;
        Ok(Output {
            obj: obj.clone(),
            rw,
        })
    }

    fn slice(&mut self) -> &mut [T] {
        // C-contiguous: checked above, or a new array.
        self.rw.as_slice_mut().unwrap_or_default()
    }
}

/// A crop box as `(top, left, height, width)`.
type Box4 = (usize, usize, usize, usize);

/// The output array and each image's parameters.
type WithParams<'py, P> = (Bound<'py, PyAny>, P);

/// `augment_flip(images, stream, p, vertical, nchw, out=None) -> (out, flipped)`.
#[pyfunction]
#[pyo3(signature = (images, stream, p, vertical, nchw, out=None))]
pub fn augment_flip<'py>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    p: f64,
    vertical: bool,
    nchw: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<bool>>> {
    let axis = if vertical {
        FlipAxis::Vertical
    } else {
        FlipAxis::Horizontal
    };
    let args = (p, axis, layout_of(nchw));
    match Dtype::of(images)? {
        Dtype::U8 => flip_typed::<u8>(images, stream, args, out),
        Dtype::F32 => flip_typed::<f32>(images, stream, args, out),
    }
}

fn flip_typed<'py, T: Px>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    (p, axis, layout): (f64, FlipAxis, Layout),
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<bool>>> {
    let py = images.py();
    lec7rs_core::random::Keep::with_probability(p).context("p")?;
    let (shape, batch) = batch_of(images, layout)?;
    batch.validate("images").context("")?;
    let mut y = Output::<T>::get(py, out, batch)?;
    let input = read_input::<T>(images, &shape)?;
    let words = kernels::call_words(batch.n, flip_mod::WORDS);
    let draw = reserve(stream, words)?;
    let (src, dst) = (input.as_slice(), y.slice());
    let outcome = interrupt::detach(py, dst.len(), || -> lec7rs_core::Result<Vec<bool>> {
        let flips = kernels::flip_params(draw, batch.n, p)?;
        kernels::flip(src, dst, batch, axis, &flips)?;
        Ok(flips)
    });
    let flips = settle(stream, draw, words, outcome)?;
    drop(y.rw);
    Ok((y.obj, flips))
}

fn pad_mode(mode: &str) -> PyResult<PadMode> {
    match mode {
        "constant" => Ok(PadMode::Constant),
        "edge" => Ok(PadMode::Edge),
        "reflect" => Ok(PadMode::Reflect),
        "symmetric" => Ok(PadMode::Symmetric),
        _ => Err(value_error(format!(
            "pad_mode must be 'constant', 'edge', 'reflect' or 'symmetric', got {mode:?}"
        ))),
    }
}

/// `augment_crop(images, stream, out_h, out_w, pad, pad_mode, fill, nchw,
/// out=None) -> (out, [(top, left)])`; `pad` is (left, top, right, bottom).
#[pyfunction]
#[pyo3(signature = (images, stream, out_h, out_w, pad, pad_mode, fill, nchw, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn augment_crop<'py>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    out_h: usize,
    out_w: usize,
    pad: [usize; 4],
    pad_mode: &str,
    fill: f64,
    nchw: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<(usize, usize)>>> {
    let spec = CropSpec {
        out_h,
        out_w,
        pad,
        mode: self::pad_mode(pad_mode)?,
        fill,
    };
    match Dtype::of(images)? {
        Dtype::U8 => crop_typed::<u8>(images, stream, spec, layout_of(nchw), out),
        Dtype::F32 => crop_typed::<f32>(images, stream, spec, layout_of(nchw), out),
    }
}

fn crop_typed<'py, T: Px>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    spec: CropSpec,
    layout: Layout,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<(usize, usize)>>> {
    let py = images.py();
    let (shape, batch) = batch_of(images, layout)?;
    spec.validate::<T>(batch).context("")?;
    let mut y = Output::<T>::get(py, out, batch.resized(spec.out_h, spec.out_w))?;
    let input = read_input::<T>(images, &shape)?;
    let words = kernels::call_words(batch.n, crop_mod::WORDS);
    let draw = reserve(stream, words)?;
    let (src, dst) = (input.as_slice(), y.slice());
    let work = dst.len();
    let outcome = interrupt::detach(py, work, || -> lec7rs_core::Result<Vec<(usize, usize)>> {
        let offsets = kernels::crop_params(draw, batch, &spec)?;
        kernels::crop(src, dst, batch, &spec, &offsets)?;
        Ok(offsets)
    });
    let offsets = settle(stream, draw, words, outcome)?;
    drop(y.rw);
    Ok((y.obj, offsets))
}

/// `augment_resized_crop(images, stream, out_h, out_w, scale, ratio,
/// antialias, nchw, out=None) -> (out, [(top, left, height, width)])`.
#[pyfunction]
#[pyo3(signature = (images, stream, out_h, out_w, scale, ratio, antialias, nchw, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn augment_resized_crop<'py>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    out_h: usize,
    out_w: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    antialias: bool,
    nchw: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<Box4>>> {
    let spec = ResizedCropSpec {
        out_h,
        out_w,
        scale,
        ratio,
        antialias,
    };
    match Dtype::of(images)? {
        Dtype::U8 => resized_typed::<u8>(images, stream, spec, layout_of(nchw), out),
        Dtype::F32 => resized_typed::<f32>(images, stream, spec, layout_of(nchw), out),
    }
}

fn resized_typed<'py, T: Px>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    spec: ResizedCropSpec,
    layout: Layout,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, Vec<Box4>>> {
    let py = images.py();
    let (shape, batch) = batch_of(images, layout)?;
    spec.validate(batch).context("")?;
    let mut y = Output::<T>::get(py, out, batch.resized(spec.out_h, spec.out_w))?;
    let input = read_input::<T>(images, &shape)?;
    let words = kernels::call_words(batch.n, resize::WORDS);
    let draw = reserve(stream, words)?;
    let (src, dst) = (input.as_slice(), y.slice());
    // Each output value reads a few taps; a downscale reads the whole box.
    let work = dst.len().saturating_add(src.len());
    let outcome = interrupt::detach(py, work, || -> lec7rs_core::Result<Vec<CropBox>> {
        let boxes = kernels::resized_crop_params(draw, batch, &spec)?;
        kernels::resized_crop(src, dst, batch, &spec, &boxes)?;
        Ok(boxes)
    });
    let boxes = settle(stream, draw, words, outcome)?;
    drop(y.rw);
    let boxes = boxes
        .into_iter()
        .map(
            |CropBox {
                 top,
                 left,
                 height,
                 width,
             }| (top, left, height, width),
        )
        .collect();
    Ok((y.obj, boxes))
}

/// Each image's order of the operations (their numbers) and four factors.
type Orders = Vec<[u32; 4]>;
type Factors = Vec<[f64; 4]>;
type JitterDraws = (Orders, Factors);

/// `augment_color_jitter(images, stream, brightness, contrast, saturation,
/// hue, nchw, out=None) -> (out, orders, factors)`; each factor is a
/// resolved `(lo, hi)` range.
#[pyfunction]
#[pyo3(signature = (images, stream, brightness, contrast, saturation, hue, nchw, out=None))]
#[allow(clippy::too_many_arguments)]
pub fn augment_color_jitter<'py>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    brightness: (f64, f64),
    contrast: (f64, f64),
    saturation: (f64, f64),
    hue: (f64, f64),
    nchw: bool,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Orders, Factors)> {
    let range = |(lo, hi): (f64, f64)| Range { lo, hi };
    let jitter = Jitter {
        brightness: range(brightness),
        contrast: range(contrast),
        saturation: range(saturation),
        hue: range(hue),
    };
    let (y, (orders, factors)) = match Dtype::of(images)? {
        Dtype::U8 => jitter_typed::<u8>(images, stream, jitter, layout_of(nchw), out)?,
        Dtype::F32 => jitter_typed::<f32>(images, stream, jitter, layout_of(nchw), out)?,
    };
    Ok((y, orders, factors))
}

fn jitter_typed<'py, T: Px>(
    images: &Bound<'py, PyAny>,
    stream: &Bound<'py, PhiloxStream>,
    jitter: Jitter,
    layout: Layout,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<WithParams<'py, JitterDraws>> {
    let py = images.py();
    let (shape, batch) = batch_of(images, layout)?;
    jitter.validate(batch).context("")?;
    let mut y = Output::<T>::get(py, out, batch)?;
    let input = read_input::<T>(images, &shape)?;
    let words = kernels::call_words(batch.n, color::WORDS);
    let draw = reserve(stream, words)?;
    let (src, dst) = (input.as_slice(), y.slice());
    // Up to two passes over each image (contrast needs its mean first).
    let work = dst.len().saturating_mul(2);
    let outcome = interrupt::detach(py, work, || -> lec7rs_core::Result<Vec<JitterParams>> {
        let params = kernels::jitter_params(draw, batch.n, &jitter)?;
        kernels::color_jitter(src, dst, batch, &jitter, &params)?;
        Ok(params)
    });
    let params: Vec<JitterParams> = settle(stream, draw, words, outcome)?;
    drop(y.rw);
    let orders = params.iter().map(|p| p.order.map(|op| op as u32)).collect();
    let factors = params.iter().map(|p| p.factors).collect();
    Ok((y.obj, (orders, factors)))
}
