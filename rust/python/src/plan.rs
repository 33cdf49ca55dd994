//! The step plan: what the last small step of an optimizer checked, so that
//! the next one checks by identity instead of by value.
//!
//! A small step (it runs inline, with the GIL held) spends most of its time
//! in checks: every group's hyperparameters read by name and converted,
//! every array's type, dtype, shape, layout and flags, the aliasing of the
//! written arrays. When a checked step passes with all its state already
//! there, [`Plan::of`] records the objects it checked, holding a reference
//! to each (so none can be freed and its address reused). The next step is
//! one call, `StepCache.step(grads, param_groups, lock, check_finite,
//! grad_scale)`: it takes the optimizer's lock in Rust ([`crate::lock`]) and
//! the plan's own lists (the optimizer forgets the plan where it replaces
//! one of them, in `load_state_dict` and `add_param_group`), and runs only
//! if every object is the same, in the same place, with the same fields:
//!
//! - the lists (params, state, steps, group_of, and `param_groups`, which
//!   a user may replace) and each of their items;
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
//! optimizer in flight, a value a check would refuse, the lock held by
//! another thread) returns None, and the optimizer runs the checked step,
//! which raises the error or records a new plan.

use std::any::Any;

use lec7rs_core::optim::{Hyperparameters, Kind, Rule, Tensor, MAX_SLOTS};
use lec7rs_core::simd::Real;
use numpy::{Element, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::{PyTraverseError, PyVisit};

use crate::errors::CoreResult;
use crate::lock::{Held, Lock};
use crate::step::{self, Arrays, Call, PerTensor, Shape, Span};

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

    /// The step by the plan, with `lock` (the optimizer's) taken here:
    /// None where the plan does not hold for this call (the lock held by
    /// another thread, no plan, anything changed), and the optimizer then
    /// runs the checked step; else whether the step was taken (False: a
    /// grad not finite, with `check_finite`). `groups` is the optimizer's
    /// `param_groups`, the one list a user may replace.
    fn step(
        slf: &Bound<'_, Self>,
        grads: &Bound<'_, PyAny>,
        groups: &Bound<'_, PyAny>,
        lock: &Bound<'_, Lock>,
        check_finite: bool,
        grad_scale: Option<f64>,
    ) -> PyResult<Option<bool>> {
        let Some(_held) = Held::try_new(lock.get()) else {
            return Ok(None);
        };
        // Busy only in a step re-entered from Python code this step ran
        // (a hyperparameter's `__float__`): the checked step runs.
        let Ok(mut cache) = slf.try_borrow_mut() else {
            return Ok(None);
        };
        let Some(plan) = cache.plan.as_mut() else {
            return Ok(None);
        };
        let (Ok(grads), true) = (grads.cast_exact::<PyList>(), groups.is(&plan.groups_list)) else {
            return Ok(None);
        };
        let fast = Fast {
            grads,
            check_finite,
            grad_scale,
        };
        (plan.run)(slf.py(), plan, &fast)
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
    /// The number of elements (of an array).
    len: usize,
    descr: usize,
    flags: i32,
}

impl Meta {
    fn of(obj: &Bound<'_, PyAny>) -> Meta {
        let (data, descr, flags) = fields(obj);
        let array = obj.cast::<PyUntypedArray>();
        let shape = array
            .as_ref()
            .map(|a| Shape::from_slice(a.shape()))
            .unwrap_or_default();
        Meta {
            obj: obj.clone().unbind(),
            array: array.is_ok(),
            data,
            len: shape.iter().product(),
            shape,
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
            && same_dims(f, &self.shape)
    }

    /// The array's data as a slice of `X` (of its `len` elements).
    ///
    /// # Safety
    /// The array is unchanged ([`Meta::same`]), C-contiguous with elements
    /// of type `X`, and no other slice of its memory is in use.
    unsafe fn slice<'a, X>(&self) -> &'a mut [X] {
        match self.len {
            0 => &mut [],
            n => std::slice::from_raw_parts_mut(self.data as *mut X, n),
        }
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

/// Whether an array has shape `shape` (a loop: a call to memcmp costs
/// more for the few dimensions of a param).
fn same_dims(f: &numpy::npyffi::PyArrayObject_fields, shape: &[usize]) -> bool {
    let dims = dims(f);
    dims.len() == shape.len() && dims.iter().zip(shape).all(|(a, b)| a == b)
}

/// Item `i` of a list, borrowed (`i` in range: checked by the caller).
fn item(list: &Bound<'_, PyList>, i: usize) -> *mut ffi::PyObject {
    // SAFETY: a live list, GIL held; the pointer is compared or read while
    // the list (which the plan or the caller holds) holds the item.
    unsafe { ffi::PyList_GetItem(list.as_ptr(), i as ffi::Py_ssize_t) }
}

/// A list's length.
fn len(list: &Bound<'_, PyList>) -> usize {
    // SAFETY: a live list, GIL held.
    unsafe { ffi::PyList_Size(list.as_ptr()) as usize }
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

/// What the call of a planned step brings besides the plan.
struct Fast<'a, 'py> {
    grads: &'a Bound<'py, PyList>,
    check_finite: bool,
    grad_scale: Option<f64>,
}

/// The planned step of one rule and element type.
type Runner = fn(Python<'_>, &mut Plan, &Fast<'_, '_>) -> PyResult<Option<bool>>;

/// The objects a checked small step took, and what it found in them.
pub(crate) struct Plan {
    run: Runner,
    params: Py<PyList>,
    state: Py<PyList>,
    steps: Meta,
    groups_list: Py<PyList>,
    group_of: Py<PyList>,
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
            run: run::<R, T>,
            params: call.params.clone().unbind(),
            state: call.state.clone().unbind(),
            steps: Meta::of(call.steps),
            groups_list: call.groups.clone().unbind(),
            group_of: call.group_of.clone().unbind(),
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
            self.params.as_any(),
            self.state.as_any(),
            &self.steps.obj,
            self.groups_list.as_any(),
            self.group_of.as_any(),
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

/// The planned step of rule `R` on arrays of `T`: None when the plan does
/// not hold for this call (the checked step then runs); else the step's
/// result. Every check reads pointers and fields of the objects the plan
/// holds; the kernel gets views of their memory, with nothing converted.
fn run<R: Rule, T: Real + Element>(
    py: Python<'_>,
    plan: &mut Plan,
    call: &Fast<'_, '_>,
) -> PyResult<Option<bool>> {
    let n = plan.group_items.len();
    let (params, state) = (plan.params.bind(py), plan.state.bind(py));
    let (groups, group_of) = (plan.groups_list.bind(py), plan.group_of.bind(py));
    // The groups first: reading a changed one by name may run Python code
    // (a hyperparameter's `__float__`), so everything else is checked
    // after it. Unchanged, or read again with the same slots in use.
    if len(groups) != plan.groups.len() || call.grad_scale.is_some_and(|s| !s.is_finite()) {
        return Ok(None);
    }
    let Some(hypers) = plan.hypers.downcast_mut::<Vec<(R::Hyper, bool)>>() else {
        return Ok(None);
    };
    for (g, group) in plan.groups.iter_mut().enumerate() {
        // (The length again: Python code may have run for the last group.)
        if len(groups) != hypers.len() || item(groups, g) != group.dict.as_ptr() {
            return Ok(None);
        }
        let dict = group.dict.bind(py).cast::<PyDict>()?;
        if group.entries.as_ref().is_some_and(|e| unchanged(dict, e)) {
            continue;
        }
        let Ok((hyper, frozen)) = step::read_group::<R>(g, dict.as_any()) else {
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
    let same_lists = plan.steps.same(plan.steps.obj.as_ptr())
        && len(params) == n
        && len(call.grads) == n
        && len(group_of) == n
        && len(state) == plan.state_items.len();
    if !same_lists {
        return Ok(None);
    }
    for (k, meta) in plan.state_items.iter().enumerate() {
        if !meta.same(item(state, k)) {
            return Ok(None);
        }
    }
    for (i, (g, _)) in plan.group_items.iter().enumerate() {
        if item(group_of, i) != g.as_ptr() {
            return Ok(None);
        }
    }
    if !step::in_flight_is_empty() {
        return Ok(None); // another step is in flight: the checked step decides
    }
    // SAFETY: numpy's API table, loaded by the arrays the plan checked.
    let array_type =
        unsafe { numpy::npyffi::get_type_object(py, numpy::npyffi::NpyTypes::PyArray_Type) };
    // SAFETY (every slice below): arrays the plan holds and has just found
    // unchanged, of `T` (f64 for scalars, i64 for the counts), C-contiguous
    // and disjoint (checked when the plan was made), and grads of the
    // param's dtype and shape, C-contiguous, sharing no memory with them;
    // the GIL is held throughout and no Python code runs from here on.
    let counts: &mut [i64] = unsafe { plan.steps.slice() };
    let scalars_of = |k: usize| match R::SLOTS[k].kind {
        Kind::Scalar => Some(unsafe { plan.state_items[k].slice::<f64>() }),
        _ => None,
    };
    let mut scalar_slots: [Option<&mut [f64]>; MAX_SLOTS] = Default::default();
    let mut slot_lists: [Option<&Bound<'_, PyList>>; MAX_SLOTS] = Default::default();
    for k in 0..R::SLOTS.len() {
        scalar_slots[k] = scalars_of(k);
        if scalar_slots[k].is_none() {
            let list = plan.state_items[k].obj.bind(py).cast::<PyList>()?;
            if len(list) != n {
                return Ok(None);
            }
            slot_lists[k] = Some(list);
        }
    }
    if counts.len() != n {
        return Ok(None);
    }
    let grad_scale = step::scale_in::<T>(call.grad_scale);
    let mut planned = plan.tensors.iter().peekable();
    let mut views: PerTensor<Tensor<'_, T, R::Hyper>> = PerTensor::new();
    let mut index: PerTensor<usize> = PerTensor::new();
    for (i, &(_, g)) in plan.group_items.iter().enumerate() {
        let grad = item(call.grads, i);
        // SAFETY: Py_None is a static object.
        let active = !hypers[g].1 && grad != unsafe { ffi::Py_None() };
        let Some(t) = planned.next_if(|t| t.index == i) else {
            if active {
                return Ok(None);
            }
            continue;
        };
        if !active || !t.param.same(item(params, i)) {
            return Ok(None);
        }
        // The grad: an ndarray of the param's dtype object and shape,
        // C-contiguous, sharing no memory with a written array.
        // SAFETY: a live object; its type is checked before any field read.
        if unsafe { ffi::Py_TYPE(grad) } != array_type {
            return Ok(None);
        }
        // SAFETY: an ndarray (checked just above).
        let f = unsafe { &*numpy::npyffi::_PyArray_GET_ITEM_DATA(grad.cast()) };
        if f.descr as usize != t.param.descr
            || f.flags & numpy::npyffi::NPY_ARRAY_C_CONTIGUOUS == 0
            || !same_dims(f, &t.param.shape)
        {
            return Ok(None);
        }
        let len = t.param.len;
        if len > 0 {
            let start = f.data as usize;
            let end = start + len * std::mem::size_of::<T>();
            let k = plan.written.partition_point(|s| s.end <= start);
            if plan.written.get(k).is_some_and(|s| s.start < end) {
                return Ok(None);
            }
        }
        let mut slots: [&mut [T]; MAX_SLOTS] = Default::default();
        let mut scalars = [0.0; MAX_SLOTS];
        for k in 0..R::SLOTS.len() {
            if !t.uses[k] {
                continue;
            }
            if let Some(values) = &scalar_slots[k] {
                match values.get(i) {
                    Some(&v) if !v.is_nan() => scalars[k] = v,
                    _ => return Ok(None),
                }
                continue;
            }
            let (Some(meta), Some(list)) = (&t.slots[k], slot_lists[k]) else {
                return Ok(None);
            };
            if !meta.same(item(list, i)) {
                return Ok(None);
            }
            slots[k] = unsafe { meta.slice::<T>() };
        }
        let Some(step) = step::next_step(counts[i]) else {
            return Ok(None);
        };
        let grad: &[T] = match len {
            0 => &[],
            _ => unsafe { std::slice::from_raw_parts(f.data.cast::<T>(), len) },
        };
        index.push(i);
        views.push(Tensor {
            param: unsafe { t.param.slice::<T>() },
            grad,
            shape: &t.param.shape,
            slots,
            scalars,
            fresh: [false; MAX_SLOTS],
            step,
            hyper: hypers[g].0,
            grad_scale,
        });
    }
    if !step::compute::<R, T>(call.check_finite, &mut views).context("")? {
        return Ok(Some(false));
    }
    // Commit: the scalars and step counts.
    for (t, &i) in views.iter().zip(&index) {
        for (k, values) in scalar_slots.iter_mut().enumerate() {
            if let Some(values) = values {
                if R::uses(&t.hyper, k, t.shape.len()) {
                    values[i] = t.scalars[k];
                }
            }
        }
        counts[i] = t.step as i64;
    }
    Ok(Some(true))
}
