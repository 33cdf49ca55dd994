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
//! A small step (run inline) with all its state records what it checked in
//! the optimizer's plan cache; the next one takes it when every object is
//! the same one, unchanged (`plan.rs`), and runs the same [`execute`].
//!
//! Arrays are used without rust-numpy's borrow table: the optimizer
//! serialises its own calls (a lock in Python) and the memory check of step
//! 2 refuses aliasing, so a process forked while another thread was in a
//! step inherits no stale borrow.

use lec7rs_core::optim::low::{self, Half, LowTensor, Read, Store};
use lec7rs_core::optim::{
    self, all_finite, Field, Hyperparameters, Kind, Moment, Rule, Tensor, Value, MAX_SLOTS,
};
use lec7rs_core::simd::Real;
use numpy::{
    Element, PyArray1, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::arrays::{
    describe, dtype_of, fmt_shape, is_writeable, same_shape, zeros, Dtype, Label, Names, OfDtype,
};
use crate::errors::{type_error, value_error, CoreResult};

/// A Python value as a core hyperparameter [`Value`]. The common types
/// (float, bool, int, tuple) are recognised without looking at type names.
fn value(obj: Option<Bound<'_, PyAny>>, depth: usize) -> Value {
    let Some(obj) = obj else {
        return Value::Missing;
    };
    // The exact types first (a pointer comparison each, no subtype walk);
    // the checks below also take their subclasses (NumPy's float64).
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Value::Float(f.value());
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return int_value(&obj);
    }
    if let (0, Ok(t)) = (depth, obj.cast_exact::<PyTuple>()) {
        return seq_value(t.iter(), t.len());
    }
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
        // NumPy's float16 / float32 scalars. A `__float__` that raises is
        // named in the type error, with its exception.
        return obj.extract::<f64>().map_or_else(
            |e| Value::Other(format!("{ty} (whose __float__ raised {e})")),
            Value::Float,
        );
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

/// The interned Python strings of the group keys of `H`, in
/// `H::NAMES` order, made once per rule: a dict lookup with them hashes
/// nothing and builds no string. One lock per read, never held while
/// Python code runs (only with the GIL held, so never taken at a fork).
fn keys_of<H: Hyperparameters>(py: Python<'_>) -> std::sync::Arc<[Py<PyString>]> {
    type Keys = Vec<(std::any::TypeId, std::sync::Arc<[Py<PyString>]>)>;
    static KEYS: std::sync::Mutex<Keys> = std::sync::Mutex::new(Vec::new());
    let id = std::any::TypeId::of::<H>();
    let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, k)) = keys.iter().find(|(t, _)| *t == id) {
        return k.clone();
    }
    let k: std::sync::Arc<[Py<PyString>]> = H::NAMES
        .iter()
        .map(|n| PyString::intern(py, n).unbind())
        .collect();
    keys.push((id, k.clone()));
    k
}

/// Reads the hyperparameters of rule `R` from a group dict, by name.
pub fn read_hyper<R: Rule>(group: &Bound<'_, PyDict>) -> lec7rs_core::Result<R::Hyper> {
    let py = group.py();
    let keys = keys_of::<R::Hyper>(py);
    let names = <R::Hyper as Hyperparameters>::NAMES;
    // `read` asks for the fields in declaration order: the next name is
    // checked first, any other found by a search.
    let mut next = 0;
    R::Hyper::read(&mut |name| {
        let k = match names.get(next) {
            Some(&n) if std::ptr::eq(n, name) || n == name => next,
            _ => names.iter().position(|&n| n == name).unwrap_or(names.len()),
        };
        next = k + 1;
        let item = keys.get(k).map(|key| group.get_item(key.bind(py)));
        value(item.and_then(|r| r.ok().flatten()), 0)
    })
}

/// One group: its hyperparameters (checked) and its frozen flag.
pub(crate) fn read_group<R: Rule>(g: usize, item: &Bound<'_, PyAny>) -> PyResult<(R::Hyper, bool)> {
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

/// The memory span of an array, for the aliasing check.
pub(crate) fn span(arr: &Bound<'_, PyUntypedArray>) -> Option<(usize, usize)> {
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
    Master,
    Absmax(usize),
}

#[derive(Clone, Copy)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
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
        Role::Master => names.of("params", tensor).slot("master").to_string(),
        Role::Absmax(k) => format!(
            "{} (its absmax)",
            names.of("params", tensor).slot(R::SLOTS[k].name)
        ),
    }
}

/// The memory written by the steps that run with the GIL released, one
/// entry per step: another optimizer (another thread) stepping the same
/// array is refused instead of tearing the update. Read and changed only
/// with the GIL held, so a fork (which holds the GIL) never finds the lock
/// taken; a child ignores the entries of the parent's steps.
static IN_FLIGHT: std::sync::Mutex<Vec<Claim>> = std::sync::Mutex::new(Vec::new());

/// The written spans of one released step, sorted by start; disjoint
/// (the step's aliasing check refused any overlap), so their ends are
/// sorted too.
struct Claim {
    pid: u32,
    id: u64,
    spans: Vec<(usize, usize)>,
}

impl Claim {
    /// Whether a span of this step overlaps `start .. end` (O(log n)).
    fn overlaps(&self, start: usize, end: usize) -> bool {
        let k = self.spans.partition_point(|&(_, e)| e <= start);
        self.spans.get(k).is_some_and(|&(s, _)| s < end)
    }
}

/// The length of [`IN_FLIGHT`], kept beside it for a planned step's check
/// (a load instead of the mutex).
static IN_FLIGHT_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether no released step is in flight (in any process).
pub(crate) fn in_flight_is_empty() -> bool {
    IN_FLIGHT_LEN.load(std::sync::atomic::Ordering::SeqCst) == 0
}

fn in_flight() -> std::sync::MutexGuard<'static, Vec<Claim>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// A step's entry in [`IN_FLIGHT`], removed when dropped.
struct Writing {
    id: u64,
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut table = in_flight();
        table.retain(|c| c.id != self.id);
        IN_FLIGHT_LEN.store(table.len(), std::sync::atomic::Ordering::SeqCst);
    }
}

/// Refuses a written span that overlaps one a step on another thread is
/// writing; with `register`, claims the spans until the result is dropped.
/// `written` holds disjoint spans.
fn claim<R: Rule>(
    written: &[Span],
    names: Names<'_, '_>,
    register: bool,
) -> PyResult<Option<Writing>> {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut table = in_flight();
    if table.is_empty() && !register {
        return Ok(None); // nothing to refuse, nothing to claim
    }
    let pid = std::process::id();
    let mine: Vec<&Claim> = table.iter().filter(|c| c.pid == pid).collect();
    if !mine.is_empty() {
        // The first written span in (tensor, role) order that is busy.
        let busy = written
            .iter()
            .filter(|s| mine.iter().any(|c| c.overlaps(s.start, s.end)))
            .min_by_key(|s| (s.tensor, s.role));
        if let Some(s) = busy {
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
    let mut spans: Vec<(usize, usize)> = written.iter().map(|s| (s.start, s.end)).collect();
    spans.sort_unstable();
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    table.push(Claim { pid, id, spans });
    IN_FLIGHT_LEN.store(table.len(), std::sync::atomic::Ordering::SeqCst);
    Ok(Some(Writing { id }))
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

/// The element type of an array as the kernels see it: a 16-bit float
/// comes as its bits (a `uint16` view made by Python), 8-bit state as int8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    F32,
    F64,
    U16,
    I8,
}

impl Elem {
    pub(crate) fn of(dtype: Dtype) -> Elem {
        match dtype {
            Dtype::F32 => Elem::F32,
            Dtype::F64 => Elem::F64,
        }
    }

    fn is(self, obj: &Bound<'_, PyAny>) -> bool {
        match self {
            Elem::F32 => obj.cast::<PyArrayDyn<f32>>().is_ok(),
            Elem::F64 => obj.cast::<PyArrayDyn<f64>>().is_ok(),
            Elem::U16 => obj.cast::<PyArrayDyn<u16>>().is_ok(),
            Elem::I8 => obj.cast::<PyArrayDyn<i8>>().is_ok(),
        }
    }

    fn zeros<'py>(self, py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyUntypedArray>> {
        Ok(match self {
            Elem::F32 => zeros::<f32>(py, shape)?.as_untyped().clone(),
            Elem::F64 => zeros::<f64>(py, shape)?.as_untyped().clone(),
            Elem::U16 => zeros::<u16>(py, shape)?.as_untyped().clone(),
            Elem::I8 => zeros::<i8>(py, shape)?.as_untyped().clone(),
        })
    }
}

/// How an array of an element type is named in messages.
struct Expected {
    elem: Elem,
    /// The 16-bit format of a `uint16` array.
    half: &'static str,
    /// This call's dtype, for the plain path's message.
    dtype: Option<Dtype>,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.dtype, self.elem) {
            (Some(d), _) => OfDtype(d).fmt(f),
            (None, Elem::U16) => write!(f, "a {} array (as its uint16 bits)", self.half),
            (None, Elem::I8) => f.write_str("an int8 array"),
            (None, Elem::F32) => f.write_str("a float32 array"),
            (None, Elem::F64) => f.write_str("a float64 array"),
        }
    }
}

/// An array of element type `expected.elem`.
fn array_of<'py>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &Expected,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    match expected.elem.is(obj) {
        true => Ok(obj.cast::<PyUntypedArray>()?.clone()),
        false => Err(type_error(format!(
            "{what}: expected {expected}, got {}",
            describe(obj)
        ))),
    }
}

/// A written array: of the expected element type, C-contiguous, writeable.
fn written_array<'py>(
    obj: &Bound<'py, PyAny>,
    what: Label<'_, '_>,
    expected: &Expected,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let arr = array_of(obj, what, expected)?;
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

/// The data of an array as a slice of `X`.
///
/// # Safety
/// The array is C-contiguous with elements of type `X`, outlives the slice,
/// and no other slice of its memory is in use while this one is.
#[allow(clippy::mut_from_ref)]
unsafe fn slice_mut<'a, X>(arr: &'a Bound<'_, PyUntypedArray>) -> &'a mut [X] {
    let n = PyUntypedArrayMethods::len(arr);
    if n == 0 {
        return &mut [];
    }
    let data = (*numpy::npyffi::_PyArray_GET_ITEM_DATA(arr.as_array_ptr())).data;
    std::slice::from_raw_parts_mut(data.cast::<X>(), n)
}

/// The arrays of one active tensor, checked.
pub(crate) struct Arrays<'py> {
    pub index: usize,
    pub param: Bound<'py, PyUntypedArray>,
    pub shape: Shape,
    /// C-contiguous: the grad itself, or NumPy's C-order copy of it.
    pub grad: Bound<'py, PyUntypedArray>,
    pub grad_elem: Elem,
    /// Existing or new state arrays (None: unused or scalar), their element
    /// types and, for 8-bit slots, their absmax arrays.
    pub slots: [Option<Bound<'py, PyUntypedArray>>; MAX_SLOTS],
    pub elems: [Elem; MAX_SLOTS],
    pub absmax: [Option<Bound<'py, PyUntypedArray>>; MAX_SLOTS],
    pub fresh: [bool; MAX_SLOTS],
    pub scalars: [f64; MAX_SLOTS],
    pub master: Option<Bound<'py, PyUntypedArray>>,
    pub fresh_master: bool,
    pub hyper_group: usize,
}

/// Per-tensor items of one step, on the stack for the common few tensors
/// (a small step spends a tenth of its time in the allocator otherwise).
pub(crate) type PerTensor<T> = smallvec::SmallVec<[T; 4]>;

/// A param's shape, on the stack up to 4 dimensions.
pub(crate) type Shape = smallvec::SmallVec<[usize; 4]>;

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
    /// Low-precision storage (None: every array has the params' dtype).
    pub low: Option<Low<'a, 'py>>,
    /// The optimizer's cached plan (None: check everything every call).
    pub cache: Option<&'a Bound<'py, crate::plan::StepCache>>,
}

/// How state dtype `state_dtype` stores the moments.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StateFormat {
    F32,
    Bf16,
    Int8,
}

/// The storage of a low-precision step (`optimizer_step`'s `low`).
pub struct Low<'a, 'py> {
    /// The params' format: None for float32, else their 16-bit format (the
    /// params and 16-bit grads come as uint16 views).
    pub half: Option<Half>,
    pub state: StateFormat,
    /// One entry per param (None: not created yet), with master weights.
    pub master: Option<&'a Bound<'py, PyList>>,
    /// Per slot, one entry per param: the absmax of an 8-bit slot.
    pub absmax: &'a Bound<'py, PyList>,
    /// The key of stochastic rounding.
    pub sr: Option<[u32; 2]>,
}

impl Low<'_, '_> {
    fn half_name(&self) -> &'static str {
        match self.half {
            Some(Half::F16) => "float16",
            _ => "bfloat16",
        }
    }

    /// The element type of slot `slot` of a param of `n` elements.
    fn slot_elem(&self, slot: &optim::Slot, n: usize) -> Elem {
        if slot.kind != Kind::Param || slot.moment == Moment::No {
            return Elem::F32;
        }
        match self.state {
            StateFormat::F32 => Elem::F32,
            StateFormat::Bf16 => Elem::U16,
            StateFormat::Int8 if n >= low::MIN_INT8 => Elem::I8,
            StateFormat::Int8 => Elem::F32,
        }
    }
}

/// What a checked step did, as `optimizer_step` returns it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum Stepped {
    /// Skipped: a grad was not finite (with `check_finite`).
    Skipped = 0,
    Taken = 1,
    /// Stepped, and recorded a plan that the next call may take
    /// (`StepCache.step`).
    Planned = 2,
}

/// One step of rule `R`.
pub fn step<R: Rule>(py: Python<'_>, call: Call<'_, '_>) -> PyResult<Stepped> {
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
    if let Some(low) = &call.low {
        let lists = [low.master, Some(low.absmax)];
        if low.absmax.len() != R::SLOTS.len()
            || lists.iter().flatten().any(|l| l.len() == 0 && n > 0)
        {
            return Err(value_error(format!(
                "low: expected {} absmax lists and a master list",
                R::SLOTS.len()
            )));
        }
    }
    let group_of = call
        .group_of
        .iter()
        .map(|g| g.extract::<usize>())
        .collect::<PyResult<Vec<usize>>>()?;
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
        return Ok(Stepped::Taken);
    };
    let names = Names::new(call.labels);
    if call.low.is_some() {
        return run::<R, f32>(py, &call, &groups, &group_of, &active, &steps, None);
    }
    match dtype_of(&call.params.get_item(first)?, names.of("params", first))? {
        Dtype::F32 => run::<R, f32>(
            py,
            &call,
            &groups,
            &group_of,
            &active,
            &steps,
            Some(Dtype::F32),
        ),
        Dtype::F64 => run::<R, f64>(
            py,
            &call,
            &groups,
            &group_of,
            &active,
            &steps,
            Some(Dtype::F64),
        ),
    }
}

/// Reads item `i` of list `k` of a list of lists.
fn item_of<'py>(lists: &Bound<'py, PyList>, k: usize, i: usize) -> PyResult<Bound<'py, PyAny>> {
    lists.get_item(k)?.cast_into::<PyList>()?.get_item(i)
}

/// The step: `dtype` for the plain path (every array of that dtype, `T`),
/// None for the low-precision one (`call.low`; `T` is f32).
#[allow(clippy::too_many_arguments)]
fn run<R: Rule, T: Real + Element>(
    py: Python<'_>,
    call: &Call<'_, '_>,
    groups: &[(R::Hyper, bool)],
    group_of: &[usize],
    active: &[usize],
    steps: &Steps<'_>,
    dtype: Option<Dtype>,
) -> PyResult<Stepped> {
    let names = Names::new(call.labels);
    let n = call.params.len();
    let low = call.low.as_ref();
    let half = low.map_or("", |l| l.half_name());
    let expected = |elem: Elem| Expected { elem, half, dtype };
    let param_elem = match (dtype, low) {
        (Some(d), _) => Elem::of(d),
        (None, Some(l)) if l.half.is_some() => Elem::U16,
        _ => Elem::F32,
    };
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
    let mut next = PerTensor::with_capacity(active.len());
    let mut tensors: PerTensor<Arrays<'_>> = PerTensor::with_capacity(active.len());
    let mut spans = Vec::new();
    let mut add_span = |arr: &Bound<'_, PyUntypedArray>, tensor: usize, role: Role| {
        if let Some((start, end)) = span(arr) {
            spans.push(Span {
                start,
                end,
                tensor,
                role,
            });
        }
    };
    for &i in active {
        let g = group_of[i];
        let hyper = &groups[g].0;
        let p_name = names.of("params", i);
        let param = written_array(&call.params.get_item(i)?, p_name, &expected(param_elem))?;
        let shape = Shape::from_slice(param.shape());
        let len: usize = shape.iter().product();
        let g_name = names.of("grads", i);
        let grad_obj = call.grads.get_item(i)?;
        // A 16-bit param's grad: its format or float32.
        let grad_elem = match (param_elem, low) {
            (Elem::U16, Some(_)) if Elem::F32.is(&grad_obj) => Elem::F32,
            (e, _) => e,
        };
        let grad_arr = array_of(&grad_obj, g_name, &expected(grad_elem))?;
        // The shape first: a huge broadcast grad is refused before a copy.
        same_shape(&shape, p_name, grad_arr.shape(), g_name)?;
        add_span(&param, i, Role::Param);
        add_span(&grad_arr, i, Role::Grad);
        let grad = match grad_arr.is_c_contiguous() {
            true => grad_arr,
            false => grad_arr
                .call_method1(pyo3::intern!(py, "copy"), ("C",))?
                .cast_into::<PyUntypedArray>()?,
        };
        let mut slots: [Option<Bound<'_, PyUntypedArray>>; MAX_SLOTS] = Default::default();
        let mut absmax: [Option<Bound<'_, PyUntypedArray>>; MAX_SLOTS] = Default::default();
        let mut elems = [param_elem; MAX_SLOTS];
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
            if let Some(l) = low {
                elems[k] = l.slot_elem(slot, len);
            }
            let Some(list) = &lists[k] else { continue };
            let obj = list.get_item(i)?;
            if obj.is_none() {
                fresh[k] = true;
                continue;
            }
            let s_name = p_name.slot(slot.name);
            let arr = written_array(&obj, s_name, &expected(elems[k]))?;
            if !slot.kind.fits(&shape, arr.shape()) {
                return Err(value_error(format!(
                    "{s_name} has shape {} but {p_name} needs {}",
                    fmt_shape(arr.shape()),
                    fmt_shape(&slot.kind.shape(&shape).unwrap_or_default())
                )));
            }
            add_span(&arr, i, Role::Slot(k));
            if elems[k] == Elem::I8 {
                let a_obj = item_of(low.map_or(call.state, |l| l.absmax), k, i)?;
                let a = written_array(&a_obj, s_name, &expected(Elem::F32))?;
                if a.shape() != [len.div_ceil(low::BLOCK)] {
                    return Err(value_error(format!(
                        "{s_name}: its absmax has shape {}, expected ({},)",
                        fmt_shape(a.shape()),
                        len.div_ceil(low::BLOCK)
                    )));
                }
                add_span(&a, i, Role::Absmax(k));
                absmax[k] = Some(a);
            }
            slots[k] = Some(arr);
        }
        let (mut master, mut fresh_master) = (None, false);
        if let Some(list) = low
            .and_then(|l| l.master)
            .filter(|_| param_elem == Elem::U16)
        {
            let obj = list.get_item(i)?;
            if obj.is_none() {
                fresh_master = true;
            } else {
                let m_name = p_name.slot("master");
                let arr = written_array(&obj, m_name, &expected(Elem::F32))?;
                if arr.shape() != shape.as_slice() {
                    return Err(value_error(format!(
                        "{m_name} has shape {} but {p_name} needs {}",
                        fmt_shape(arr.shape()),
                        fmt_shape(&shape)
                    )));
                }
                add_span(&arr, i, Role::Master);
                master = Some(arr);
            }
        }
        let step = next_step(counts[i]).ok_or_else(|| {
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
            grad_elem,
            slots,
            elems,
            absmax,
            fresh,
            scalars,
            master,
            fresh_master,
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
    // Every check passed: create the missing state (the low-precision
    // step fills new state itself).
    for t in &mut tensors {
        let hyper = &groups[t.hyper_group].0;
        for (k, slot) in R::SLOTS.iter().enumerate() {
            if t.fresh[k] && slot.kind != Kind::Scalar {
                let shape = slot.kind.shape(&t.shape).unwrap_or_default();
                let arr = t.elems[k].zeros(py, &shape)?;
                let init = R::init(hyper, k);
                if init != 0.0 && low.is_none() {
                    // SAFETY: a new array of `T`, owned here.
                    unsafe { slice_mut::<T>(&arr) }.fill(T::from_f64(init));
                }
                if t.elems[k] == Elem::I8 {
                    let blocks = shape.iter().product::<usize>().div_ceil(low::BLOCK);
                    t.absmax[k] = Some(Elem::F32.zeros(py, &[blocks])?);
                }
                t.slots[k] = Some(arr);
            }
        }
        if t.fresh_master {
            t.master = Some(Elem::F32.zeros(py, &t.shape)?);
        }
    }
    // A small plain step with all its state: the next may take its plan.
    let fresh = tensors.iter().any(|t| t.fresh.contains(&true));
    let record = call.cache.filter(|_| low.is_none() && inline && !fresh);
    let plan = match record {
        Some(_) => Some(crate::plan::Plan::of::<R, T>(
            call, groups, &tensors, written,
        )?),
        None => None,
    };
    let stepped = execute::<R, T>(
        py,
        Execute {
            low,
            check_finite: call.check_finite,
            grad_scale: call.grad_scale,
            inline,
            groups,
            scalar_arrays: &scalar_arrays,
            lists: &lists,
            counts,
        },
        &mut tensors,
        &next,
    )?;
    if !stepped {
        return Ok(Stepped::Skipped);
    }
    if let (Some(cache), Some(plan)) = (call.cache, plan) {
        // Busy only in a step re-entered from Python code this step ran
        // (a hyperparameter's `__float__`): that step keeps its plan.
        if let Ok(mut cache) = cache.try_borrow_mut() {
            cache.set(plan);
            return Ok(Stepped::Planned);
        }
    }
    Ok(Stepped::Taken)
}

/// What [`execute`] needs besides the checked arrays.
pub(crate) struct Execute<'a, 'py, H> {
    pub low: Option<&'a Low<'a, 'py>>,
    pub check_finite: bool,
    pub grad_scale: Option<f64>,
    /// Run on this thread with the GIL held (else released).
    pub inline: bool,
    pub groups: &'a [(H, bool)],
    pub scalar_arrays: &'a [Option<Bound<'py, PyArray1<f64>>>],
    pub lists: &'a [Option<Bound<'py, PyList>>],
    pub counts: &'a mut [i64],
}

/// Runs a checked step (the state created) and commits it: the new state,
/// scalars and step counts. Returns false when skipped.
pub(crate) fn execute<R: Rule, T: Real + Element>(
    py: Python<'_>,
    e: Execute<'_, '_, R::Hyper>,
    tensors: &mut [Arrays<'_>],
    next: &[u64],
) -> PyResult<bool> {
    let Execute {
        low,
        check_finite,
        grad_scale,
        inline,
        groups,
        scalar_arrays,
        lists,
        counts,
    } = e;
    let (stepped, new_scalars) = match low {
        None => {
            let grad_scale = scale_in::<T>(grad_scale);
            // SAFETY (slices): C-contiguous and of `T` (checked), alive for
            // the call, and no other array of the call shares their memory.
            let mut views: PerTensor<Tensor<'_, T, R::Hyper>> = tensors
                .iter()
                .zip(next)
                .map(|(t, &step)| Tensor {
                    param: unsafe { slice_mut::<T>(&t.param) },
                    grad: unsafe { slice_mut::<T>(&t.grad) },
                    shape: &t.shape,
                    slots: std::array::from_fn(|k| match &t.slots[k] {
                        Some(a) => unsafe { slice_mut::<T>(a) },
                        None => Default::default(),
                    }),
                    scalars: t.scalars,
                    fresh: t.fresh,
                    step,
                    hyper: groups[t.hyper_group].0,
                    grad_scale,
                })
                .collect();
            let stepped = match inline {
                true => compute::<R, T>(check_finite, &mut views),
                false => py.detach(|| compute::<R, T>(check_finite, &mut views)),
            };
            (
                stepped,
                views.iter().map(|t| t.scalars).collect::<PerTensor<_>>(),
            )
        }
        Some(l) => {
            let format = l.half.unwrap_or(Half::Bf16);
            let scale32 = std::hint::black_box(grad_scale.unwrap_or(1.0)) as f32;
            let mut views: PerTensor<LowTensor<'_, R::Hyper>> = tensors
                .iter()
                .zip(next)
                .map(|(t, &step)| unsafe {
                    // SAFETY: as above, with each array's element type.
                    let slot = |k: usize| match (&t.slots[k], t.elems[k], &t.absmax[k]) {
                        (Some(a), Elem::U16, _) => Store::Half(Half::Bf16, slice_mut(a)),
                        (Some(a), Elem::I8, Some(m)) => Store::Int8 {
                            q: slice_mut(a),
                            absmax: slice_mut(m),
                            signed: R::SLOTS[k].moment == Moment::Signed,
                        },
                        (Some(a), _, _) => Store::F32(slice_mut(a)),
                        (None, _, _) => Store::default(),
                    };
                    LowTensor {
                        param: match l.half {
                            Some(f) => Store::Half(f, slice_mut(&t.param)),
                            None => Store::F32(slice_mut(&t.param)),
                        },
                        master: t.master.as_ref().map_or(&mut [][..], |m| slice_mut(m)),
                        fresh_master: t.fresh_master,
                        grad: match t.grad_elem {
                            Elem::U16 => Read::Half(format, slice_mut(&t.grad)),
                            _ => Read::F32(slice_mut(&t.grad)),
                        },
                        shape: &t.shape,
                        slots: std::array::from_fn(slot),
                        scalars: t.scalars,
                        fresh: t.fresh,
                        step,
                        hyper: groups[t.hyper_group].0,
                        grad_scale: grad_scale.is_some().then_some(scale32),
                        index: t.index as u32,
                    }
                })
                .collect();
            let sr = l.sr;
            let stepped = match inline {
                true => compute_low::<R>(check_finite, &mut views, sr),
                false => py.detach(|| compute_low::<R>(check_finite, &mut views, sr)),
            };
            (
                stepped,
                views.iter().map(|t| t.scalars).collect::<PerTensor<_>>(),
            )
        }
    };
    if !stepped.context("")? {
        return Ok(false);
    }
    // Commit: new state, scalars and step counts.
    for ((t, &step), scalars) in tensors.iter_mut().zip(next).zip(&new_scalars) {
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
                    if let (Some(l), Some(a)) = (low, t.absmax[k].take()) {
                        l.absmax
                            .get_item(k)?
                            .cast_into::<PyList>()?
                            .set_item(i, a)?;
                    }
                }
            }
        }
        if let (Some(list), Some(m), true) =
            (low.and_then(|l| l.master), t.master.take(), t.fresh_master)
        {
            list.set_item(i, m)?;
        }
        counts[i] = step as i64;
    }
    Ok(true)
}

/// A step's `grad_scale` in the element type. Converted from a value that
/// is there: the compiler may otherwise convert the bits of None (often a
/// denormal, whose assist costs more than the conversion) before it looks.
pub(crate) fn scale_in<T: Real>(grad_scale: Option<f64>) -> Option<T> {
    let scale = T::from_f64(std::hint::black_box(grad_scale.unwrap_or(1.0)));
    grad_scale.is_some().then_some(scale)
}

/// [`compute`] for the low-precision step.
fn compute_low<'a, R: Rule>(
    check_finite: bool,
    views: &mut [LowTensor<'a, R::Hyper>],
    sr: Option<[u32; 2]>,
) -> lec7rs_core::Result<bool> {
    if check_finite {
        let grads: PerTensor<&Read<'_>> = views.iter().map(|t| &t.grad).collect();
        if !low::all_finite(&grads)? {
            return Ok(false);
        }
    }
    low::step::<R>(views, sr).map(|()| true)
}

/// The finite check (optional) and the step, on whichever thread runs it;
/// the views keep their new scalar state.
pub(crate) fn compute<'a, R: Rule, T: Real>(
    check_finite: bool,
    views: &mut [Tensor<'a, T, R::Hyper>],
) -> lec7rs_core::Result<bool> {
    if check_finite {
        let grads: PerTensor<&[T]> = views.iter().map(|t| t.grad).collect();
        if !all_finite(&grads)? {
            return Ok(false);
        }
    }
    optim::step::<R, T>(views).map(|()| true)
}

/// The step count after `count`: `count + 1` where the old count is a
/// valid one (0 ..= i64::MAX - 1), else None.
pub(crate) fn next_step(count: i64) -> Option<u64> {
    u64::try_from(count)
        .ok()
        .and_then(|s| s.checked_add(1))
        .filter(|&s| s <= i64::MAX as u64)
}
