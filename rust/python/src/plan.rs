//! The step plan: what the last small step of an optimizer checked, so that
//! the next one checks by identity instead of by value.
//!
//! A small step (it runs inline, with the GIL held) spends most of its time
//! in checks: every group's hyperparameters read by name and converted,
//! every array's type, dtype, shape, layout and flags, the aliasing of the
//! written arrays. When a checked step passes with all its state already
//! there, [`Plan::of`] records the objects it checked, holding a reference
//! to each (so none can be freed and its address reused). The next step
//! takes the plan only if every one of them is the same object, in the same
//! place, with the same fields:
//!
//! - the call's lists (params, state, steps, groups, group_of) and each of
//!   their items;
//! - every array's data pointer, shape, dtype object and flags (an array
//!   can be reshaped, retyped or made read-only in place);
//! - every group dict's entries, compared key and value pointer by pointer
//!   while all the values that are hyperparameters are immutable (floats,
//!   ints, bools, strings, tuples of them); a dict that changed (a
//!   scheduler's new `lr`) is read again by name, as the checked step does,
//!   and the plan kept when the same slots stay in use;
//! - the grads: which params have one, each an ndarray of the param's
//!   dtype object and shape, C-contiguous, sharing no memory with a written
//!   array (a binary search in the written spans).
//!
//! Anything else (a fresh slot, a released step, a step with another
//! optimizer in flight, a value a check would refuse) goes to the checked
//! step, which raises the error or records a new plan.

use std::any::{Any, TypeId};

use lec7rs_core::optim::{Hyperparameters, Kind, Rule, MAX_SLOTS};
use lec7rs_core::simd::Real;
use numpy::{Element, PyArray1, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::arrays::Dtype;
use crate::step::{self, Arrays, Call, Elem, Execute, PerTensor, Shape, Span};

/// An optimizer's cached plan (`_core.StepCache`): empty until a step
/// records one; a copy or a pickle starts empty.
#[pyclass(module = "lec7rs._core")]
#[derive(Default)]
pub struct StepCache {
    plan: Option<Plan>,
}

#[pymethods]
impl StepCache {
    #[new]
    fn new() -> Self {
        StepCache::default()
    }

    /// Whether a plan is recorded (for tests).
    #[getter]
    fn planned(&self) -> bool {
        self.plan.is_some()
    }

    /// Forgets the plan.
    fn clear(&mut self) {
        self.plan = None;
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        (slf.get_type(), PyTuple::empty(py)).into_pyobject(py)
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        match &self.plan {
            Some(plan) => plan.objects().try_for_each(|o| visit.call(o)),
            None => Ok(()),
        }
    }

    fn __clear__(&mut self) {
        self.plan = None;
    }
}

impl StepCache {
    pub(crate) fn set(&mut self, plan: Plan) {
        self.plan = Some(plan);
    }
}

/// An object a step checked: a list, or an array and its fields.
struct Meta {
    obj: Py<PyAny>,
    array: bool,
    data: usize,
    shape: Shape,
    descr: usize,
    flags: i32,
}

impl Meta {
    fn of(obj: &Bound<'_, PyAny>) -> Meta {
        let (data, descr, flags) = fields(obj);
        let array = obj.cast::<PyUntypedArray>();
        Meta {
            obj: obj.clone().unbind(),
            array: array.is_ok(),
            data,
            shape: array
                .map(|a| Shape::from_slice(a.shape()))
                .unwrap_or_default(),
            descr,
            flags,
        }
    }

    /// Whether `obj` is this object and, for an array, unchanged.
    fn same(&self, obj: *mut ffi::PyObject) -> bool {
        if obj != self.obj.as_ptr() {
            return false;
        }
        if !self.array {
            return true;
        }
        // SAFETY: `obj` is the array this holds a reference to.
        let f = unsafe { &*numpy::npyffi::_PyArray_GET_ITEM_DATA(obj.cast()) };
        f.data as usize == self.data
            && f.descr as usize == self.descr
            && f.flags == self.flags
            && dims(f) == self.shape.as_slice()
    }
}

/// The data pointer, dtype object and flags of an array.
fn fields(obj: &Bound<'_, PyAny>) -> (usize, usize, i32) {
    match obj.cast::<PyUntypedArray>() {
        Ok(a) => {
            // SAFETY: reads the fields of a live array.
            let f = unsafe { &*numpy::npyffi::_PyArray_GET_ITEM_DATA(a.as_array_ptr()) };
            (f.data as usize, f.descr as usize, f.flags)
        }
        Err(_) => (0, 0, 0),
    }
}

fn dims(f: &numpy::npyffi::PyArrayObject_fields) -> &[usize] {
    match f.nd {
        0 => &[],
        // SAFETY: an array's `nd` dimensions (npy_intp, never negative).
        nd => unsafe { std::slice::from_raw_parts(f.dimensions.cast::<usize>(), nd as usize) },
    }
}

/// A group dict's entries as key and value pointers, while every value
/// that is a hyperparameter (or `frozen`) is immutable; None otherwise
/// (the group is then read by name every step).
fn entries(dict: &Bound<'_, PyDict>, names: &[&str]) -> Option<Vec<(Py<PyAny>, Py<PyAny>)>> {
    let mut out = Vec::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = k.cast_exact::<PyString>().ok()?;
        let key = key.to_cow().ok()?;
        if (key == "frozen" || names.contains(&&*key)) && !immutable(&v, 0) {
            return None;
        }
        out.push((k.unbind(), v.unbind()));
    }
    Some(out)
}

fn immutable(v: &Bound<'_, PyAny>, depth: usize) -> bool {
    v.is_none()
        || v.is_exact_instance_of::<PyFloat>()
        || v.is_exact_instance_of::<PyBool>()
        || v.is_exact_instance_of::<PyInt>()
        || v.is_exact_instance_of::<PyString>()
        || (depth == 0
            && v.cast_exact::<PyTuple>()
                .is_ok_and(|t| t.iter().all(|x| immutable(&x, 1))))
}

/// Whether a dict holds exactly `entries`, in order (pointer comparisons).
fn unchanged(dict: &Bound<'_, PyDict>, entries: &[(Py<PyAny>, Py<PyAny>)]) -> bool {
    // SAFETY: a live dict, GIL held; PyDict_Next hands out borrowed
    // pointers, compared only; no Python code runs in between.
    unsafe {
        if ffi::PyDict_Size(dict.as_ptr()) != entries.len() as ffi::Py_ssize_t {
            return false;
        }
        let mut pos: ffi::Py_ssize_t = 0;
        let (mut k, mut v) = (std::ptr::null_mut(), std::ptr::null_mut());
        for (key, value) in entries {
            if ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut k, &mut v) == 0
                || k != key.as_ptr()
                || v != value.as_ptr()
            {
                return false;
            }
        }
        true
    }
}

struct Group {
    dict: Py<PyAny>,
    entries: Option<Vec<(Py<PyAny>, Py<PyAny>)>>,
}

struct Planned {
    index: usize,
    group: usize,
    param: Meta,
    /// The used array slots (None: unused or scalar).
    slots: [Option<Meta>; MAX_SLOTS],
    uses: [bool; MAX_SLOTS],
}

/// The objects a checked small step took, and what it found in them.
pub(crate) struct Plan {
    rule: TypeId,
    dtype: Dtype,
    params: Py<PyAny>,
    state: Py<PyAny>,
    steps: Meta,
    groups_list: Py<PyAny>,
    group_of: Py<PyAny>,
    /// Per slot: the list of arrays, or the scalars' array.
    state_items: Vec<Meta>,
    /// group_of's items and their values.
    group_items: Vec<(Py<PyAny>, usize)>,
    groups: Vec<Group>,
    /// `Vec<(R::Hyper, bool)>`: each group's hyperparameters and frozen flag.
    hypers: Box<dyn Any + Send + Sync>,
    tensors: Vec<Planned>,
    /// The written spans, sorted by start (disjoint: checked).
    written: Vec<Span>,
}

impl Plan {
    /// The plan of a checked step over `tensors` (every used slot there).
    pub(crate) fn of<R: Rule, T: Real + Element>(
        call: &Call<'_, '_>,
        groups: &[(R::Hyper, bool)],
        tensors: &[Arrays<'_>],
        mut written: Vec<Span>,
    ) -> PyResult<Plan> {
        let names = <R::Hyper as Hyperparameters>::NAMES;
        let state_items = (0..R::SLOTS.len())
            .map(|k| Ok(Meta::of(&call.state.get_item(k)?)))
            .collect::<PyResult<_>>()?;
        let group_items = call
            .group_of
            .iter()
            .map(|g| {
                let index = g.extract::<usize>()?;
                Ok((g.unbind(), index))
            })
            .collect::<PyResult<_>>()?;
        let dicts = call
            .groups
            .iter()
            .map(|d| Group {
                entries: d.cast::<PyDict>().ok().and_then(|d| entries(d, names)),
                dict: d.unbind(),
            })
            .collect();
        let tensors = tensors
            .iter()
            .map(|t| {
                let hyper = &groups[t.hyper_group].0;
                let ndim = t.shape.len();
                Planned {
                    index: t.index,
                    group: t.hyper_group,
                    param: Meta::of(t.param.as_any()),
                    slots: std::array::from_fn(|k| {
                        t.slots[k].as_ref().map(|a| Meta::of(a.as_any()))
                    }),
                    uses: std::array::from_fn(|k| k < R::SLOTS.len() && R::uses(hyper, k, ndim)),
                }
            })
            .collect();
        written.sort_unstable_by_key(|s| s.start);
        Ok(Plan {
            rule: TypeId::of::<R>(),
            dtype: dtype_of::<T>(),
            params: call.params.clone().into_any().unbind(),
            state: call.state.clone().into_any().unbind(),
            steps: Meta::of(call.steps),
            groups_list: call.groups.clone().into_any().unbind(),
            group_of: call.group_of.clone().into_any().unbind(),
            state_items,
            group_items,
            groups: dicts,
            hypers: Box::new(groups.to_vec()),
            tensors,
            written,
        })
    }

    /// Every object the plan holds a reference to.
    fn objects(&self) -> impl Iterator<Item = &Py<PyAny>> {
        let lists = [
            &self.params,
            &self.state,
            &self.steps.obj,
            &self.groups_list,
            &self.group_of,
        ];
        lists
            .into_iter()
            .chain(self.state_items.iter().map(|m| &m.obj))
            .chain(self.group_items.iter().map(|(g, _)| g))
            .chain(self.groups.iter().flat_map(|g| {
                std::iter::once(&g.dict).chain(g.entries.iter().flatten().flat_map(|(k, v)| [k, v]))
            }))
            .chain(self.tensors.iter().flat_map(|t| {
                std::iter::once(&t.param.obj).chain(t.slots.iter().flatten().map(|m| &m.obj))
            }))
    }
}

fn dtype_of<T: Real + Element>() -> Dtype {
    if TypeId::of::<T>() == TypeId::of::<f64>() {
        Dtype::F64
    } else {
        Dtype::F32
    }
}

/// The step by the cached plan: None when the plan does not hold for this
/// call (the checked step then runs); else the step's result.
pub(crate) fn fast<R: Rule>(
    py: Python<'_>,
    call: &Call<'_, '_>,
    cache: &Bound<'_, StepCache>,
) -> PyResult<Option<bool>> {
    let Ok(mut cache) = cache.try_borrow_mut() else {
        return Ok(None);
    };
    let Some(plan) = cache.plan.as_mut() else {
        return Ok(None);
    };
    if call.low.is_some() || plan.rule != TypeId::of::<R>() {
        return Ok(None);
    }
    match plan.dtype {
        Dtype::F32 => run::<R, f32>(py, call, plan),
        Dtype::F64 => run::<R, f64>(py, call, plan),
    }
}

fn run<R: Rule, T: Real + Element>(
    py: Python<'_>,
    call: &Call<'_, '_>,
    plan: &mut Plan,
) -> PyResult<Option<bool>> {
    let n = plan.group_items.len();
    let same_lists = call.params.is(&plan.params)
        && call.state.is(&plan.state)
        && call.groups.is(&plan.groups_list)
        && call.group_of.is(&plan.group_of)
        && plan.steps.same(call.steps.as_ptr())
        && call.params.len() == n
        && call.grads.len() == n
        && call.group_of.len() == n
        && call.groups.len() == plan.groups.len()
        && call.state.len() == plan.state_items.len();
    if !same_lists || call.grad_scale.is_some_and(|s| !s.is_finite()) {
        return Ok(None);
    }
    for (k, item) in plan.state_items.iter().enumerate() {
        if !item.same(call.state.get_item(k)?.as_ptr()) {
            return Ok(None);
        }
    }
    for (i, (g, _)) in plan.group_items.iter().enumerate() {
        if !call.group_of.get_item(i)?.is(g) {
            return Ok(None);
        }
    }
    // The groups: unchanged, or read again with the same slots in use.
    let Some(hypers) = plan.hypers.downcast_mut::<Vec<(R::Hyper, bool)>>() else {
        return Ok(None);
    };
    for (g, group) in plan.groups.iter_mut().enumerate() {
        let item = call.groups.get_item(g)?;
        if !item.is(&group.dict) {
            return Ok(None);
        }
        let dict = item.cast::<PyDict>()?;
        if group.entries.as_ref().is_some_and(|e| unchanged(dict, e)) {
            continue;
        }
        let Ok((hyper, frozen)) = step::read_group::<R>(g, &item) else {
            return Ok(None);
        };
        let same_slots = plan.tensors.iter().filter(|t| t.group == g).all(|t| {
            let ndim = t.param.shape.len();
            (0..R::SLOTS.len()).all(|k| R::uses(&hyper, k, ndim) == t.uses[k])
        });
        if frozen != hypers[g].1 || !same_slots {
            return Ok(None);
        }
        hypers[g].0 = hyper;
        group.entries = entries(dict, <R::Hyper as Hyperparameters>::NAMES);
    }
    if !step::in_flight_is_empty() {
        return Ok(None); // another step is in flight: the checked step decides
    }
    // The state arrays and the grads.
    // SAFETY: numpy's API table, loaded by the arrays the plan checked.
    let array_type =
        unsafe { numpy::npyffi::get_type_object(py, numpy::npyffi::NpyTypes::PyArray_Type) };
    let slots = R::SLOTS.len();
    let lists: [Option<Bound<'_, PyList>>; MAX_SLOTS] = std::array::from_fn(|k| {
        let m = plan.state_items.get(k).filter(|_| k < slots)?;
        match R::SLOTS[k].kind {
            Kind::Scalar => None,
            _ => m.obj.bind(py).cast::<PyList>().ok().cloned(),
        }
    });
    let scalar_arrays: [Option<Bound<'_, PyArray1<f64>>>; MAX_SLOTS] = std::array::from_fn(|k| {
        let m = plan.state_items.get(k).filter(|_| k < slots)?;
        match R::SLOTS[k].kind {
            Kind::Scalar => m.obj.bind(py).cast::<PyArray1<f64>>().ok().cloned(),
            _ => None,
        }
    });
    let steps = plan.steps.obj.bind(py).cast::<PyArray1<i64>>()?;
    // SAFETY: the optimizer's private step counts, checked by the plan,
    // GIL held.
    let counts = unsafe { steps.as_slice_mut() }.unwrap_or_default();
    if counts.len() != n {
        return Ok(None);
    }
    let mut planned = plan.tensors.iter().peekable();
    let mut tensors = PerTensor::with_capacity(plan.tensors.len());
    let mut next = PerTensor::with_capacity(plan.tensors.len());
    for (i, &(_, g)) in plan.group_items.iter().enumerate() {
        let grad = call.grads.get_item(i)?;
        let active = !hypers[g].1 && !grad.is_none();
        let Some(t) = planned.next_if(|t| t.index == i) else {
            if active {
                return Ok(None);
            }
            continue;
        };
        if !active || !t.param.same(call.params.get_item(i)?.as_ptr()) {
            return Ok(None);
        }
        // The grad: an ndarray of the param's dtype object and shape,
        // C-contiguous, sharing no memory with a written array.
        // SAFETY: a live object; its type is checked before any field read.
        let is_array = unsafe { ffi::Py_TYPE(grad.as_ptr()) } == array_type;
        if !is_array {
            return Ok(None);
        }
        let (_, descr, flags) = fields(&grad);
        let grad = grad.cast_into::<PyUntypedArray>()?;
        if descr != t.param.descr
            || flags & numpy::npyffi::NPY_ARRAY_C_CONTIGUOUS == 0
            || grad.shape() != t.param.shape.as_slice()
        {
            return Ok(None);
        }
        if let Some((start, end)) = step::span(&grad) {
            let k = plan.written.partition_point(|s| s.end <= start);
            if plan.written.get(k).is_some_and(|s| s.start < end) {
                return Ok(None);
            }
        }
        let mut slots: [Option<Bound<'_, PyUntypedArray>>; MAX_SLOTS] = Default::default();
        let mut scalars = [0.0; MAX_SLOTS];
        for k in 0..R::SLOTS.len() {
            if !t.uses[k] {
                continue;
            }
            if let Some(arr) = &scalar_arrays[k] {
                // SAFETY: private, checked by the plan, GIL held.
                let v = unsafe { arr.as_slice() }
                    .unwrap_or_default()
                    .get(i)
                    .copied();
                match v {
                    Some(v) if !v.is_nan() => scalars[k] = v,
                    _ => return Ok(None),
                }
                continue;
            }
            let (Some(meta), Some(list)) = (&t.slots[k], &lists[k]) else {
                return Ok(None);
            };
            if !meta.same(list.get_item(i)?.as_ptr()) {
                return Ok(None);
            }
            slots[k] = Some(meta.obj.bind(py).cast::<PyUntypedArray>()?.clone());
        }
        let Some(step) = step::next_step(counts[i]) else {
            return Ok(None);
        };
        next.push(step);
        let elem = Elem::of(plan.dtype);
        tensors.push(Arrays {
            index: i,
            param: t.param.obj.bind(py).cast::<PyUntypedArray>()?.clone(),
            shape: t.param.shape.clone(),
            grad,
            grad_elem: elem,
            slots,
            elems: [elem; MAX_SLOTS],
            absmax: Default::default(),
            fresh: [false; MAX_SLOTS],
            scalars,
            master: None,
            fresh_master: false,
            hyper_group: t.group,
        });
    }
    let stepped = step::execute::<R, T>(
        py,
        Execute {
            low: None,
            check_finite: call.check_finite,
            grad_scale: call.grad_scale,
            inline: true,
            groups: hypers,
            scalar_arrays: &scalar_arrays[..slots],
            lists: &lists[..slots],
            counts,
        },
        &mut tensors,
        &next,
    )?;
    Ok(Some(stepped))
}
