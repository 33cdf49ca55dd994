//! The one generic step of every first-order optimizer (`_core.optimizer_step`).
//!
//! Python passes its own lists as they are: params, grads (None to skip),
//! the state (one entry per slot of the rule: a list of arrays, None where
//! the state does not exist yet, or a float64 array of one number per
//! tensor, NaN where it does not exist yet), the int64 step counts, the
//! param groups (dicts: hyperparameters are read by name) and each tensor's
//! group. One call does the whole step, the first included:
//!
//! 1. read and check every group's hyperparameters, the list lengths and
//!    which tensors are active (grad given, group not frozen);
//! 2. check every array (dtype, shape before any copy, layout, writeable)
//!    and that no written array shares memory with another array of the
//!    call;
//! 3. create the missing state (after every check, so a failed call
//!    creates nothing), release the GIL, optionally check that all grads are
//!    finite, and run the rule over all tensors as one job;
//! 4. store the new state and count the step of every active tensor.
//!
//! Arrays are used without rust-numpy's borrow table: the optimizer
//! serialises its own calls (a lock in Python) and the memory check of step
//! 2 refuses aliasing, so a process forked while another thread was in a
//! step inherits no stale borrow.

use lec7rs_core::optim::{
    self, all_finite, Field, Hyperparameters, Kind, Rule, Tensor, Value, MAX_SLOTS,
};
use lec7rs_core::simd::Real;
use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::arrays::{
    dtype_of, fmt_shape, is_writeable, same_shape, typed, zeros, Dtype, Label, Names, OfDtype,
};
use crate::errors::{type_error, value_error, CoreResult};

/// A Python value as a core hyperparameter [`Value`]. The common types
/// (float, bool, int, tuple) are recognised without looking at type names.
fn value(obj: Option<Bound<'_, PyAny>>, depth: usize) -> Value {
    let Some(obj) = obj else {
        return Value::Missing;
    };
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Value::Float(f.value());
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if obj.is_none() {
        return Value::None;
    }
    if obj.cast::<PyInt>().is_ok() {
        return int_value(&obj);
    }
    if depth == 0 {
        if let Ok(t) = obj.cast::<PyTuple>() {
            return seq_value(t.iter(), t.len());
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return seq_value(l.iter(), l.len());
        }
    }
    let ty = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    if ty == "bool_" || ty == "bool" {
        // NumPy's bool.
        return obj.is_truthy().map_or(Value::Other(ty), Value::Bool);
    }
    if ty.contains("complex") {
        return Value::Other(ty);
    }
    if obj.hasattr("__index__").unwrap_or(false) {
        // NumPy's integers.
        return int_value(&obj);
    }
    if obj.cast::<PyString>().is_err() && obj.hasattr("__float__").unwrap_or(false) {
        // NumPy's float16 / float32 scalars.
        return obj.extract::<f64>().map_or(Value::Other(ty), Value::Float);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return s.extract::<String>().map_or(Value::Other(ty), Value::Str);
    }
    Value::Other(ty)
}

fn int_value(obj: &Bound<'_, PyAny>) -> Value {
    match obj.extract::<i64>() {
        Ok(i) => Value::Int(i),
        // A huge int: as a float (inf past f64), which the range checks refuse.
        Err(_) => Value::Float(obj.extract::<f64>().unwrap_or(f64::INFINITY)),
    }
}

fn seq_value<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, n: usize) -> Value {
    if n > 8 {
        return Value::Other(format!("a sequence of {n}"));
    }
    Value::Seq(items.map(|x| value(Some(x), 1)).collect())
}

/// The interned Python string of a hyperparameter name, made once: a dict
/// lookup with it hashes nothing and builds no string. (Only used with the
/// GIL held, so the lock is never contended, nor held across a fork.)
fn key<'py>(py: Python<'py>, name: &'static str) -> Bound<'py, PyString> {
    static KEYS: std::sync::Mutex<Vec<(&'static str, Py<PyString>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, k)) = keys.iter().find(|(n, _)| *n == name) {
        return k.bind(py).clone();
    }
    let k = PyString::intern(py, name);
    keys.push((name, k.clone().unbind()));
    k
}

/// Reads the hyperparameters of rule `R` from a group dict, by name.
pub fn read_hyper<R: Rule>(group: &Bound<'_, PyDict>) -> lec7rs_core::Result<R::Hyper> {
    let py = group.py();
    R::Hyper::read(&mut |name| value(group.get_item(key(py, name)).ok().flatten(), 0))
}

/// One group: its hyperparameters (checked) and its frozen flag.
fn read_group<R: Rule>(g: usize, item: &Bound<'_, PyAny>) -> PyResult<(R::Hyper, bool)> {
    let where_ = || format!("param_groups[{g}]");
    let group = item
        .cast::<PyDict>()
        .map_err(|_| type_error(format!("{}: expected a dict", where_())))?;
    let frozen = match value(group.get_item(pyo3::intern!(item.py(), "frozen"))?, 0) {
        Value::Missing => Ok(false),
        v => bool::from_value("frozen", &v),
    };
    let hyper = frozen.and_then(|frozen| {
        let h = read_hyper::<R>(group)?;
        R::validate(&h)?;
        Ok((h, frozen))
    });
    hyper.map_err(|e| crate::errors::core(&where_(), e))
}

/// Raises `ValueError` / `TypeError` when a group's hyperparameters are invalid.
pub fn check<R: Rule>(group: &Bound<'_, PyDict>) -> PyResult<()> {
    let hyper = read_hyper::<R>(group).context("")?;
    R::validate(&hyper).context("")
}

/// The step counts: a private int64 array of the optimizer, read and
/// written here only while the GIL is held.
struct Steps<'py> {
    array: Bound<'py, PyArray1<i64>>,
}

impl<'py> Steps<'py> {
    fn new(obj: &Bound<'py, PyAny>, n: usize) -> PyResult<Self> {
        let array = private_array::<i64>(obj, n, "steps")?;
        Ok(Steps { array })
    }

    #[allow(clippy::mut_from_ref)]
    fn counts(&self) -> &mut [i64] {
        // SAFETY: checked contiguous and writeable; private to the optimizer,
        // touched only with the GIL held, and the slice does not outlive
        // this call's use of it.
        unsafe { self.array.as_slice_mut().unwrap_or_default() }
    }
}

/// A private, writeable, contiguous 1-D array of `n` entries.
fn private_array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    n: usize,
    what: &str,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let array = obj
        .cast::<PyArray1<T>>()
        .map_err(|_| value_error(format!("{what}: expected a 1-D array of {n} entries")))?
        .clone();
    if PyUntypedArrayMethods::len(&array) != n || !array.is_c_contiguous() || !is_writeable(&array)
    {
        return Err(value_error(format!(
            "{what}: expected a writeable contiguous array of {n} entries"
        )));
    }
    Ok(array)
}

/// A grad as the kernel reads it: the array itself when C-contiguous, else
/// a C-order copy (allocated fallibly).
enum Grad<'py, T: Element> {
    View(Bound<'py, PyArrayDyn<T>>),
    Copied(Vec<T>),
}

impl<T: Element + Copy> Grad<'_, T> {
    fn as_slice(&self) -> &[T] {
        match self {
            // SAFETY: C-contiguous (checked), kept alive by the handle, and
            // no array written in this call shares its memory (checked).
            Grad::View(a) => unsafe { a.as_slice().unwrap_or(&[]) },
            Grad::Copied(v) => v,
        }
    }
}

/// The memory span of an array, for the aliasing check.
fn span(arr: &Bound<'_, PyUntypedArray>) -> Option<(usize, usize)> {
    let shape = arr.shape();
    if shape.contains(&0) {
        return None;
    }
    let item = arr.dtype().itemsize() as isize;
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&d, &s) in shape.iter().zip(arr.strides()) {
        let reach = s.saturating_mul(d as isize - 1);
        if reach < 0 {
            lo = lo.saturating_add(reach);
        } else {
            hi = hi.saturating_add(reach);
        }
    }
    // SAFETY: reads the data pointer of a live array object.
    let base =
        unsafe { (*numpy::npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data } as isize;
    Some((
        base.saturating_add(lo) as usize,
        base.saturating_add(hi).saturating_add(item) as usize,
    ))
}

/// What an array of the call is, for the aliasing check and its message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Param,
    Grad,
    Slot(usize),
}

#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    tensor: usize,
    role: Role,
}

impl Span {
    fn written(&self) -> bool {
        self.role != Role::Grad
    }
}

/// The label of an array of the call in messages.
fn label_of<R: Rule>(names: Names<'_, '_>, tensor: usize, role: Role) -> String {
    match role {
        Role::Param => names.of("params", tensor).to_string(),
        Role::Grad => names.of("grads", tensor).to_string(),
        Role::Slot(k) => names
            .of("params", tensor)
            .slot(R::SLOTS[k].name)
            .to_string(),
    }
}

/// The memory written by the steps that run with the GIL released, by
/// process id: another optimizer (another thread) stepping the same array
/// is refused instead of tearing the update. Read and changed only with
/// the GIL held, so a fork (which holds the GIL) never finds the lock
/// taken; a child ignores the entries of the parent's steps.
static IN_FLIGHT: std::sync::Mutex<Vec<(u32, usize, usize)>> = std::sync::Mutex::new(Vec::new());

fn in_flight() -> std::sync::MutexGuard<'static, Vec<(u32, usize, usize)>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The written spans of a step, registered in [`IN_FLIGHT`] until dropped.
struct Writing {
    spans: Vec<(usize, usize)>,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let pid = std::process::id();
        let mut table = in_flight();
        for &(start, end) in &self.spans {
            if let Some(k) = table.iter().position(|&e| e == (pid, start, end)) {
                table.swap_remove(k);
            }
        }
    }
}

/// Refuses a written span that overlaps one a step on another thread is
/// writing; with `register`, claims the spans until the result is dropped.
fn claim<R: Rule>(
    written: &[Span],
    names: Names<'_, '_>,
    register: bool,
) -> PyResult<Option<Writing>> {
    let pid = std::process::id();
    let mut table = in_flight();
    for s in written {
        let busy = table
            .iter()
            .any(|&(p, start, end)| p == pid && start < s.end && s.start < end);
        if busy {
            return Err(value_error(format!(
                "{} is being written by a concurrent call (another optimizer stepping \
                 the same memory on another thread)",
                label_of::<R>(names, s.tensor, s.role)
            )));
        }
    }
    if !register {
        return Ok(None);
    }
    let spans: Vec<(usize, usize)> = written.iter().map(|s| (s.start, s.end)).collect();
    table.extend(spans.iter().map(|&(a, b)| (pid, a, b)));
    Ok(Some(Writing { spans }))
}

/// Refuses any overlap between a written array and another array of the
/// call (O(n log n)); names the later of the two in (tensor, role) order.
fn check_aliasing<R: Rule>(mut spans: Vec<Span>, names: Names<'_, '_>) -> PyResult<()> {
    spans.sort_unstable_by_key(|s| s.start);
    let mut any: Option<usize> = None; // span with the furthest end so far
    let mut written: Option<usize> = None;
    for k in 0..spans.len() {
        let s = &spans[k];
        let hit = if s.written() { any } else { written };
        if let Some(o) = hit.filter(|&o| spans[o].end > s.start) {
            let o = &spans[o];
            let later = if (o.tensor, o.role) > (s.tensor, s.role) {
                o
            } else {
                s
            };
            let label = label_of::<R>(names, later.tensor, later.role);
            return Err(value_error(format!(
                "{label} shares memory with another array of this call \
                 (a param aliased with its grad or state, or a param listed twice)"
            )));
        }
        if any.is_none_or(|a| spans[a].end < s.end) {
            any = Some(k);
        }
        if s.written() && written.is_none_or(|w| spans[w].end < s.end) {
            written = Some(k);
        }
    }
    Ok(())
}

/// A written array of the call's dtype: C-contiguous and writeable.
fn written_array<'py, T: Element>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    dtype: Dtype,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let arr = typed::<T>(obj, what, &OfDtype(dtype))?;
    if !arr.is_c_contiguous() {
        return Err(value_error(format!(
            "{what} must be C-contiguous to be updated in place"
        )));
    }
    if !is_writeable(&arr) {
        return Err(value_error(format!("{what} is read-only")));
    }
    Ok(arr)
}

/// The arrays of one active tensor, checked.
struct Arrays<'py, T: Element> {
    index: usize,
    param: Bound<'py, PyArrayDyn<T>>,
    shape: Vec<usize>,
    grad: Grad<'py, T>,
    /// Existing or new state arrays (None: unused or scalar).
    slots: [Option<Bound<'py, PyArrayDyn<T>>>; MAX_SLOTS],
    fresh: [bool; MAX_SLOTS],
    scalars: [f64; MAX_SLOTS],
    hyper_group: usize,
}

/// The Python lists of one step call.
pub struct Call<'a, 'py> {
    pub params: &'a Bound<'py, PyList>,
    pub grads: &'a Bound<'py, PyList>,
    pub state: &'a Bound<'py, PyList>,
    pub steps: &'a Bound<'py, PyAny>,
    pub groups: &'a Bound<'py, PyList>,
    pub group_of: &'a Bound<'py, PyList>,
    pub labels: &'a Bound<'py, PyList>,
    pub check_finite: bool,
    pub grad_scale: Option<f64>,
}

/// One step of rule `R`; returns false when skipped (a grad not finite).
pub fn step<R: Rule>(py: Python<'_>, call: Call<'_, '_>) -> PyResult<bool> {
    let groups: Vec<(R::Hyper, bool)> = call
        .groups
        .iter()
        .enumerate()
        .map(|(g, item)| read_group::<R>(g, &item))
        .collect::<PyResult<_>>()?;
    let n = call.params.len();
    for (name, list) in [("grads", call.grads), ("group_of", call.group_of)] {
        if list.len() != n {
            return Err(value_error(format!(
                "{name}: expected {n} entries (one per param), got {}",
                list.len()
            )));
        }
    }
    if call.state.len() != R::SLOTS.len() {
        return Err(value_error(format!(
            "state: expected {} slots, got {}",
            R::SLOTS.len(),
            call.state.len()
        )));
    }
    let group_of: Vec<usize> = call.group_of.extract()?;
    if let Some(&g) = group_of.iter().find(|&&g| g >= groups.len()) {
        return Err(value_error(format!(
            "group_of: group {g} does not exist ({} groups)",
            groups.len()
        )));
    }
    let steps = Steps::new(call.steps, n)?;
    if let Some(scale) = call.grad_scale {
        if !scale.is_finite() {
            return Err(value_error(format!(
                "grad_scale: expected a finite number, got {scale}"
            )));
        }
    }
    let mut active = Vec::with_capacity(n);
    for (i, &g) in group_of.iter().enumerate() {
        if !groups[g].1 && !call.grads.get_item(i)?.is_none() {
            active.push(i);
        }
    }
    let Some(&first) = active.first() else {
        return Ok(true);
    };
    let names = Names::new(call.labels);
    match dtype_of(&call.params.get_item(first)?, names.of("params", first))? {
        Dtype::F32 => run::<R, f32>(py, &call, &groups, &group_of, &active, &steps, Dtype::F32),
        Dtype::F64 => run::<R, f64>(py, &call, &groups, &group_of, &active, &steps, Dtype::F64),
    }
}

fn run<R: Rule, T: Real + Element>(
    py: Python<'_>,
    call: &Call<'_, '_>,
    groups: &[(R::Hyper, bool)],
    group_of: &[usize],
    active: &[usize],
    steps: &Steps<'_>,
    dtype: Dtype,
) -> PyResult<bool> {
    let names = Names::new(call.labels);
    let n = call.params.len();
    // The state: per slot, the list of arrays or the scalars' array.
    let mut lists = Vec::with_capacity(R::SLOTS.len());
    let mut scalar_arrays = Vec::with_capacity(R::SLOTS.len());
    for (k, slot) in R::SLOTS.iter().enumerate() {
        let item = call.state.get_item(k)?;
        if slot.kind == Kind::Scalar {
            scalar_arrays.push(Some(private_array::<f64>(&item, n, slot.name)?));
            lists.push(None);
        } else {
            let list = item
                .cast_into::<PyList>()
                .map_err(|_| value_error(format!("state '{}': expected a list", slot.name)))?;
            if list.len() != n {
                return Err(value_error(format!(
                    "state '{}': expected {n} entries, got {}",
                    slot.name,
                    list.len()
                )));
            }
            lists.push(Some(list));
            scalar_arrays.push(None);
        }
    }
    let counts = steps.counts();
    let mut next = Vec::with_capacity(active.len());
    let mut tensors: Vec<Arrays<'_, T>> = Vec::with_capacity(active.len());
    let mut spans = Vec::new();
    for &i in active {
        let g = group_of[i];
        let hyper = &groups[g].0;
        let p_name = names.of("params", i);
        let param = written_array::<T>(&call.params.get_item(i)?, p_name, dtype)?;
        let shape = param.shape().to_vec();
        let g_name = names.of("grads", i);
        let grad_obj = call.grads.get_item(i)?;
        let grad_arr = typed::<T>(&grad_obj, g_name, &OfDtype(dtype))?;
        // The shape first: a huge broadcast grad is refused before a copy.
        same_shape(&shape, p_name, grad_arr.shape(), g_name)?;
        let untyped = param.as_untyped();
        if let Some((start, end)) = span(untyped) {
            spans.push(Span {
                start,
                end,
                tensor: i,
                role: Role::Param,
            });
        }
        if let Some((start, end)) = span(grad_arr.as_untyped()) {
            spans.push(Span {
                start,
                end,
                tensor: i,
                role: Role::Grad,
            });
        }
        let grad = if grad_arr.is_c_contiguous() {
            Grad::View(grad_arr)
        } else {
            let len = shape.iter().product();
            let mut v = Vec::new();
            v.try_reserve_exact(len).map_err(|_| {
                pyo3::exceptions::PyMemoryError::new_err(format!(
                    "{g_name}: cannot allocate a contiguous copy of {} elements",
                    len
                ))
            })?;
            // SAFETY: read while the GIL is held; no written array overlaps
            // (checked below, before any write).
            v.extend(unsafe { grad_arr.as_array() }.iter().copied());
            Grad::Copied(v)
        };
        let mut slots: [Option<Bound<'_, PyArrayDyn<T>>>; MAX_SLOTS] = Default::default();
        let mut fresh = [false; MAX_SLOTS];
        let mut scalars = [0.0; MAX_SLOTS];
        for (k, slot) in R::SLOTS.iter().enumerate() {
            if !R::uses(hyper, k, shape.len()) {
                continue;
            }
            if let Some(arr) = &scalar_arrays[k] {
                // SAFETY: private, checked, GIL held.
                let v = unsafe { arr.as_slice().unwrap_or_default() }
                    .get(i)
                    .copied();
                let v = v.unwrap_or(f64::NAN);
                fresh[k] = v.is_nan();
                scalars[k] = if fresh[k] { R::init(hyper, k) } else { v };
                continue;
            }
            let Some(list) = &lists[k] else { continue };
            let obj = list.get_item(i)?;
            if obj.is_none() {
                fresh[k] = true;
                continue;
            }
            let s_name = p_name.slot(slot.name);
            let arr = written_array::<T>(&obj, s_name, dtype)?;
            let want = slot.kind.shape(&shape).unwrap_or_default();
            if arr.shape() != want.as_slice() {
                return Err(value_error(format!(
                    "{s_name} has shape {} but {p_name} needs {}",
                    fmt_shape(arr.shape()),
                    fmt_shape(&want)
                )));
            }
            if let Some((start, end)) = span(arr.as_untyped()) {
                spans.push(Span {
                    start,
                    end,
                    tensor: i,
                    role: Role::Slot(k),
                });
            }
            slots[k] = Some(arr);
        }
        let step = u64::try_from(counts[i])
            .ok()
            .and_then(|s| s.checked_add(1))
            .filter(|&s| s <= i64::MAX as u64)
            .ok_or_else(|| {
                value_error(format!(
                    "state of {p_name}: step count {} cannot be incremented",
                    counts[i]
                ))
            })?;
        next.push(step);
        tensors.push(Arrays {
            index: i,
            param,
            shape,
            grad,
            slots,
            fresh,
            scalars,
            hyper_group: g,
        });
    }
    let written: Vec<Span> = spans.iter().filter(|s| s.written()).copied().collect();
    check_aliasing::<R>(spans, names)?;
    // As NumPy does, a small step (it runs inline, on this thread, in a few
    // microseconds) keeps the GIL: releasing and taking it back would cost
    // more than the step. Only a released step claims its memory.
    let total: usize = tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let inline = total <= lec7rs_core::parallel::INLINE_MAX;
    let _writing = claim::<R>(&written, names, !inline)?;
    // Every check passed: create the missing state.
    for t in &mut tensors {
        let hyper = &groups[t.hyper_group].0;
        for (k, slot) in R::SLOTS.iter().enumerate() {
            if t.fresh[k] && slot.kind != Kind::Scalar {
                let shape = slot.kind.shape(&t.shape).unwrap_or_default();
                let arr = zeros::<T>(py, &shape)?;
                let init = R::init(hyper, k);
                if init != 0.0 {
                    let v = T::from_f64(init);
                    // SAFETY: a new array, owned here.
                    unsafe { arr.as_slice_mut().unwrap_or_default() }.fill(v);
                }
                t.slots[k] = Some(arr);
            }
        }
    }
    let grad_scale = call.grad_scale.map(T::from_f64);
    let views: Vec<Tensor<'_, T, R::Hyper>> = tensors
        .iter_mut()
        .zip(&next)
        .map(|(t, &step)| Tensor {
            // SAFETY: C-contiguous and writeable (checked), alive for the
            // call, and no other array of the call shares their memory.
            param: unsafe { t.param.as_slice_mut().unwrap_or_default() },
            grad: t.grad.as_slice(),
            shape: &t.shape,
            slots: std::array::from_fn(|k| match &t.slots[k] {
                Some(a) => unsafe { a.as_slice_mut().unwrap_or_default() },
                None => Default::default(),
            }),
            scalars: t.scalars,
            fresh: t.fresh,
            step,
            hyper: groups[t.hyper_group].0,
            grad_scale,
        })
        .collect();
    let check_finite = call.check_finite;
    let (stepped, views) = if inline {
        compute::<R, T>(check_finite, views)
    } else {
        py.detach(move || compute::<R, T>(check_finite, views))
    };
    let new_scalars: Vec<[f64; MAX_SLOTS]> = views.iter().map(|t| t.scalars).collect();
    drop(views);
    if !stepped.context("")? {
        return Ok(false);
    }
    // Commit: new state, scalars and step counts.
    for ((t, &step), scalars) in tensors.iter_mut().zip(&next).zip(&new_scalars) {
        let i = t.index;
        for k in 0..R::SLOTS.len() {
            if let Some(arr) = &scalar_arrays[k] {
                if R::uses(&groups[t.hyper_group].0, k, t.shape.len()) {
                    // SAFETY: private, checked, GIL held.
                    let values = unsafe { arr.as_slice_mut().unwrap_or_default() };
                    values[i] = scalars[k];
                }
            } else if let (Some(list), Some(arr)) = (&lists[k], t.slots[k].take()) {
                if t.fresh[k] {
                    list.set_item(i, arr)?;
                }
            }
        }
        counts[i] = step as i64;
    }
    Ok(true)
}

/// The finite check (optional) and the step, on whichever thread runs it;
/// gives the views back for their new scalar state.
#[allow(clippy::type_complexity)]
fn compute<'a, R: Rule, T: Real>(
    check_finite: bool,
    mut views: Vec<Tensor<'a, T, R::Hyper>>,
) -> (lec7rs_core::Result<bool>, Vec<Tensor<'a, T, R::Hyper>>) {
    if check_finite {
        let grads: Vec<&[T]> = views.iter().map(|t| t.grad).collect();
        match all_finite(&grads) {
            Ok(true) => {}
            Ok(false) => return (Ok(false), views),
            Err(e) => return (Err(e), views),
        }
    }
    let r = optim::step::<R, T>(&mut views).map(|()| true);
    (r, views)
}
