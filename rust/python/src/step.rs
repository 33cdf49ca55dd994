//! The shared shape of every optimizer step call.
//!
//! Python passes flat lists over all param groups: params, grads (None to
//! skip) and one list per state slot (None where the state does not exist
//! yet), the group of each tensor, each group's hyperparameters and the
//! per-tensor step counts. One call does the whole step:
//!
//! 1. check the lists, the hyperparameters and which tensors are active
//!    (grad given, group not frozen);
//! 2. if an active tensor lacks state its hyperparameters need, return the
//!    list of `(tensor, slot)` pairs: Python allocates them and calls again,
//!    so nothing is created when a later check fails;
//! 3. borrow and check every array (dtype, shape, layout, aliasing);
//! 4. release the GIL, optionally check that all grads are finite, and run
//!    the core kernel over all tensors as one job;
//! 5. count the step of every active tensor.

use numpy::{Element, PyArray1, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::arrays::{dtype_of, is_writeable, read, same_shape, write, Dtype, Input, Names};
use crate::errors::value_error;

/// The result of a step call, as Python sees it: `True` (stepped), `False`
/// (skipped: a grad was not finite) or a list of missing `(tensor, slot)`.
pub enum Outcome {
    Stepped,
    Skipped,
    Missing(Vec<(usize, usize)>),
}

impl<'py> IntoPyObject<'py> for Outcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            Outcome::Stepped => Ok(true.into_pyobject(py)?.to_owned().into_any()),
            Outcome::Skipped => Ok(false.into_pyobject(py)?.to_owned().into_any()),
            Outcome::Missing(pairs) => Ok(pairs.into_pyobject(py)?.into_any()),
        }
    }
}

/// The Python lists of one step call.
pub struct Lists<'a, 'py> {
    pub params: &'a Bound<'py, PyList>,
    pub grads: &'a Bound<'py, PyList>,
    /// `(name, list)` per state slot, in the optimizer's slot order.
    pub slots: Vec<(&'static str, &'a Bound<'py, PyList>)>,
    pub group_of: &'a Bound<'py, PyList>,
    pub names: Names<'a, 'py>,
}

impl<'a, 'py> Lists<'a, 'py> {
    /// Checks the list lengths and group indices; returns each tensor's group.
    pub fn groups(&self, n_groups: usize) -> PyResult<Vec<usize>> {
        let n = self.params.len();
        let mut lists = vec![("grads", self.grads), ("group_of", self.group_of)];
        lists.extend(self.slots.iter().copied());
        for (name, list) in lists {
            if list.len() != n {
                return Err(value_error(format!(
                    "{name}: expected {n} entries (one per param), got {}",
                    list.len()
                )));
            }
        }
        let groups: Vec<usize> = self.group_of.extract()?;
        if let Some(&g) = groups.iter().find(|&&g| g >= n_groups) {
            return Err(value_error(format!(
                "group_of: group {g} does not exist ({n_groups} groups)"
            )));
        }
        Ok(groups)
    }

    /// Tensors that take part in this step: a grad is given and the group is
    /// not frozen.
    pub fn active(&self, groups: &[usize], frozen: &[bool]) -> PyResult<Vec<usize>> {
        let mut active = Vec::with_capacity(groups.len());
        for (i, &g) in groups.iter().enumerate() {
            if !frozen[g] && !self.grads.get_item(i)?.is_none() {
                active.push(i);
            }
        }
        Ok(active)
    }

    /// Active tensors' state that `needs(tensor, slot)` but is `None`.
    pub fn missing(
        &self,
        active: &[usize],
        needs: impl Fn(usize, usize) -> bool,
    ) -> PyResult<Vec<(usize, usize)>> {
        let mut missing = Vec::new();
        for &i in active {
            for (s, (_, list)) in self.slots.iter().enumerate() {
                if needs(i, s) && list.get_item(i)?.is_none() {
                    missing.push((i, s));
                }
            }
        }
        Ok(missing)
    }

    /// The dtype of the call: that of the first active param.
    pub fn dtype(&self, active: &[usize]) -> PyResult<Option<Dtype>> {
        match active.first() {
            Some(&i) => Ok(Some(dtype_of(
                &self.params.get_item(i)?,
                self.names.of("params", i),
            )?)),
            None => Ok(None),
        }
    }

    /// Borrows and checks every array of the active tensors. Slots that
    /// `needs` rejects are left out (`None`).
    pub fn borrow<T: Element + Copy>(
        &self,
        active: &[usize],
        dtype: Dtype,
        needs: impl Fn(usize, usize) -> bool,
    ) -> PyResult<Vec<Borrowed<'py, T>>> {
        let mut out = Vec::with_capacity(active.len());
        for &i in active {
            let p_name = self.names.of("params", i);
            let param = write::<T>(&self.params.get_item(i)?, p_name, dtype)?;
            let g_name = self.names.of("grads", i);
            let grad = read::<T>(&self.grads.get_item(i)?, g_name, dtype)?;
            same_shape(param.shape(), p_name, grad.shape(), g_name)?;
            let mut slots: [Option<PyReadwriteArrayDyn<'py, T>>; MAX_SLOTS] = Default::default();
            for (s, (slot, list)) in self.slots.iter().enumerate() {
                if needs(i, s) {
                    let s_name = p_name.slot(slot);
                    let state = write::<T>(&list.get_item(i)?, s_name, dtype)?;
                    same_shape(param.shape(), p_name, state.shape(), s_name)?;
                    slots[s] = Some(state);
                }
            }
            out.push(Borrowed { param, grad, slots });
        }
        Ok(out)
    }
}

/// The most state slots an optimizer has (RMSprop, Adam).
pub const MAX_SLOTS: usize = 3;

/// The borrowed arrays of one active tensor.
pub struct Borrowed<'py, T: Element> {
    pub param: PyReadwriteArrayDyn<'py, T>,
    pub grad: Input<'py, T>,
    pub slots: [Option<PyReadwriteArrayDyn<'py, T>>; MAX_SLOTS],
}

/// Mutable slices of one active tensor: param, grad, and its slots (empty
/// where not needed).
pub struct Slices<'s, T> {
    pub param: &'s mut [T],
    pub grad: &'s [T],
    pub slots: [&'s mut [T]; MAX_SLOTS],
}

impl<'py, T: Element + Copy> Borrowed<'py, T> {
    /// The slices of the tensor. Written arrays are C-contiguous (checked
    /// when borrowed), so every slice exists.
    pub fn slices(&mut self) -> Slices<'_, T> {
        let [a, b, c] = &mut self.slots;
        Slices {
            param: self.param.as_slice_mut().unwrap_or_default(),
            grad: self.grad.as_slice(),
            slots: [slot_slice(a), slot_slice(b), slot_slice(c)],
        }
    }
}

fn slot_slice<'s, T: Element>(s: &'s mut Option<PyReadwriteArrayDyn<'_, T>>) -> &'s mut [T] {
    match s {
        Some(s) => s.as_slice_mut().unwrap_or_default(),
        None => Default::default(),
    }
}

/// The per-tensor step counts: a private int64 array of the optimizer,
/// read and written here only while the GIL is held.
pub struct Steps<'py> {
    array: Bound<'py, PyArray1<i64>>,
}

impl<'py> Steps<'py> {
    pub fn new(obj: &Bound<'py, PyAny>, n: usize) -> PyResult<Self> {
        let array = obj
            .cast::<PyArray1<i64>>()
            .map_err(|_| value_error("steps: expected a 1-D int64 array".into()))?
            .clone();
        if PyUntypedArrayMethods::len(&array) != n
            || !array.is_c_contiguous()
            || !is_writeable(&array)
        {
            return Err(value_error(format!(
                "steps: expected a writeable contiguous array of {n} step counts"
            )));
        }
        Ok(Steps { array })
    }

    #[allow(clippy::mut_from_ref)]
    fn counts(&self) -> &mut [i64] {
        // SAFETY: checked contiguous and writeable in `new`; the array is
        // private to the optimizer and only touched with the GIL held, and
        // the returned slice does not outlive this call.
        unsafe { self.array.as_slice_mut().unwrap_or_default() }
    }

    /// The count each active tensor reaches with this step (>= 1).
    pub fn next(&self, active: &[usize]) -> PyResult<Vec<u64>> {
        let steps = self.counts();
        active
            .iter()
            .map(|&i| {
                u64::try_from(steps[i])
                    .ok()
                    .and_then(|s| s.checked_add(1))
                    .ok_or_else(|| value_error(format!("steps[{i}] = {} is invalid", steps[i])))
            })
            .collect()
    }

    /// Records that every active tensor took a step.
    pub fn commit(&self, active: &[usize]) {
        let steps = self.counts();
        for &i in active {
            steps[i] += 1;
        }
    }
}

/// Reads the hyperparameter tuples of every group with `parse`, naming the
/// group in any error.
pub fn parse_groups<H>(
    hypers: &Bound<'_, PyList>,
    parse: impl Fn(&Bound<'_, PyTuple>) -> PyResult<H>,
) -> PyResult<Vec<H>> {
    hypers
        .iter()
        .enumerate()
        .map(|(g, item)| {
            let tuple = item
                .cast::<PyTuple>()
                .map_err(|_| value_error(format!("param_groups[{g}]: expected a tuple")))?;
            parse(tuple).map_err(|e| {
                let err = e.value(item.py()).to_string();
                if e.is_instance_of::<pyo3::exceptions::PyTypeError>(item.py()) {
                    crate::errors::type_error(format!("param_groups[{g}]: {err}"))
                } else {
                    value_error(format!("param_groups[{g}]: {err}"))
                }
            })
        })
        .collect()
}
