//! `_core.{sgd,adagrad,rmsprop,adam}_step` and their hyperparameter checks.
//! The protocol of a step call is described in `step.rs`.

use lec7rs_core::optim::{
    self as kernels, all_finite, AdagradHyper, AdagradTensor, AdamHyper, AdamTensor, RmspropHyper,
    RmspropTensor, SgdHyper, SgdTensor,
};
use lec7rs_core::simd::Real;
use numpy::Element;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::arrays::{Dtype, Names};
use crate::errors::CoreResult;
use crate::step::{parse_groups, Lists, Outcome, Slices, Steps};

/// What differs between optimizers: hyperparameters, state slots, kernel.
trait Rule {
    type Hyper: Copy + Send + Sync;
    /// State slot names, in the order of the step call's lists.
    const SLOTS: &'static [&'static str];

    /// Reads one group's tuple: the hyperparameters and the frozen flag.
    fn parse(t: &Bound<'_, PyTuple>) -> PyResult<(Self::Hyper, bool)>;
    fn validate(h: &Self::Hyper) -> lec7rs_core::Result<()>;
    /// Whether these hyperparameters use state slot `slot`.
    fn needs(h: &Self::Hyper, slot: usize) -> bool;
    /// Runs the kernel. `step` is each tensor's count including this step;
    /// `fresh` says the tensor's state was created for this step.
    fn run<T: Real>(
        tensors: Vec<(Slices<'_, T>, Self::Hyper, u64, bool)>,
    ) -> lec7rs_core::Result<()>;
}

#[allow(clippy::too_many_arguments)]
fn step<'py, R: Rule>(
    py: Python<'py>,
    params: &Bound<'py, PyList>,
    grads: &Bound<'py, PyList>,
    slots: &[&Bound<'py, PyList>],
    steps: &Bound<'py, PyAny>,
    group_of: &Bound<'py, PyList>,
    hypers: &Bound<'py, PyList>,
    fresh: Vec<usize>,
    labels: &Bound<'py, PyList>,
    check_finite: bool,
) -> PyResult<Outcome> {
    let groups = parse_groups(hypers, |t| {
        let (h, frozen) = R::parse(t)?;
        R::validate(&h).context("")?;
        Ok((h, frozen))
    })?;
    let lists = Lists {
        params,
        grads,
        slots: R::SLOTS
            .iter()
            .copied()
            .zip(slots.iter().copied())
            .collect(),
        group_of,
        names: Names::new(labels),
    };
    let group_of = lists.groups(groups.len())?;
    let steps = Steps::new(steps, params.len())?;
    let frozen: Vec<bool> = groups.iter().map(|(_, f)| *f).collect();
    let active = lists.active(&group_of, &frozen)?;
    let needs = |i: usize, s: usize| R::needs(&groups[group_of[i]].0, s);
    let missing = lists.missing(&active, needs)?;
    if !missing.is_empty() {
        return Ok(Outcome::Missing(missing));
    }
    let next = steps.next(&active)?;
    let outcome = match lists.dtype(&active)? {
        None => Outcome::Stepped,
        Some(Dtype::F32) => run::<R, f32>(
            py,
            &lists,
            &active,
            &groups,
            &group_of,
            &next,
            &fresh,
            check_finite,
        )?,
        Some(Dtype::F64) => run::<R, f64>(
            py,
            &lists,
            &active,
            &groups,
            &group_of,
            &next,
            &fresh,
            check_finite,
        )?,
    };
    if let Outcome::Stepped = outcome {
        steps.commit(&active);
    }
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
fn run<R: Rule, T: Real + Element>(
    py: Python<'_>,
    lists: &Lists<'_, '_>,
    active: &[usize],
    groups: &[(R::Hyper, bool)],
    group_of: &[usize],
    next: &[u64],
    fresh: &[usize],
    check_finite: bool,
) -> PyResult<Outcome> {
    let dtype = if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    };
    let needs = |i: usize, s: usize| R::needs(&groups[group_of[i]].0, s);
    let mut borrowed = lists.borrow::<T>(active, dtype, needs)?;
    let tensors: Vec<_> = borrowed
        .iter_mut()
        .map(|b| b.slices())
        .zip(active)
        .zip(next)
        .map(|((s, &i), &step)| (s, groups[group_of[i]].0, step, fresh.contains(&i)))
        .collect();
    let stepped = py.detach(move || {
        if check_finite {
            let grads: Vec<&[T]> = tensors.iter().map(|(s, ..)| s.grad).collect();
            if !all_finite(&grads)? {
                return Ok(false);
            }
        }
        R::run(tensors).map(|()| true)
    });
    match stepped.context("")? {
        true => Ok(Outcome::Stepped),
        false => Ok(Outcome::Skipped),
    }
}

struct Sgd;

impl Rule for Sgd {
    type Hyper = SgdHyper;
    const SLOTS: &'static [&'static str] = &["momentum_buffer"];

    fn parse(t: &Bound<'_, PyTuple>) -> PyResult<(SgdHyper, bool)> {
        let (lr, momentum, dampening, weight_decay, nesterov, maximize, frozen) = t.extract()?;
        let h = SgdHyper {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            maximize,
        };
        Ok((h, frozen))
    }
    fn validate(h: &SgdHyper) -> lec7rs_core::Result<()> {
        h.validate()
    }
    fn needs(h: &SgdHyper, _slot: usize) -> bool {
        h.momentum != 0.0
    }
    fn run<T: Real>(tensors: Vec<(Slices<'_, T>, SgdHyper, u64, bool)>) -> lec7rs_core::Result<()> {
        kernels::sgd_step(
            tensors
                .into_iter()
                .map(|(s, hyper, _, first)| {
                    let [momentum_buffer, ..] = s.slots;
                    SgdTensor {
                        param: s.param,
                        grad: s.grad,
                        momentum_buffer,
                        first,
                        hyper,
                    }
                })
                .collect(),
        )
    }
}

struct Adagrad;

impl Rule for Adagrad {
    type Hyper = AdagradHyper;
    const SLOTS: &'static [&'static str] = &["sum"];

    fn parse(t: &Bound<'_, PyTuple>) -> PyResult<(AdagradHyper, bool)> {
        let (lr, lr_decay, weight_decay, initial_accumulator_value, eps, maximize, frozen) =
            t.extract()?;
        let h = AdagradHyper {
            lr,
            lr_decay,
            weight_decay,
            initial_accumulator_value,
            eps,
            maximize,
        };
        Ok((h, frozen))
    }
    fn validate(h: &AdagradHyper) -> lec7rs_core::Result<()> {
        h.validate()
    }
    fn needs(_h: &AdagradHyper, _slot: usize) -> bool {
        true
    }
    fn run<T: Real>(
        tensors: Vec<(Slices<'_, T>, AdagradHyper, u64, bool)>,
    ) -> lec7rs_core::Result<()> {
        kernels::adagrad_step(
            tensors
                .into_iter()
                .map(|(s, hyper, step, _)| {
                    let [sum, ..] = s.slots;
                    AdagradTensor {
                        param: s.param,
                        grad: s.grad,
                        sum,
                        step,
                        hyper,
                    }
                })
                .collect(),
        )
    }
}

struct Rmsprop;

impl Rule for Rmsprop {
    type Hyper = RmspropHyper;
    const SLOTS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];

    fn parse(t: &Bound<'_, PyTuple>) -> PyResult<(RmspropHyper, bool)> {
        let (lr, alpha, eps, weight_decay, momentum, centered, maximize, frozen) = t.extract()?;
        let h = RmspropHyper {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            maximize,
        };
        Ok((h, frozen))
    }
    fn validate(h: &RmspropHyper) -> lec7rs_core::Result<()> {
        h.validate()
    }
    fn needs(h: &RmspropHyper, slot: usize) -> bool {
        match slot {
            0 => true,
            1 => h.momentum > 0.0,
            _ => h.centered,
        }
    }
    fn run<T: Real>(
        tensors: Vec<(Slices<'_, T>, RmspropHyper, u64, bool)>,
    ) -> lec7rs_core::Result<()> {
        kernels::rmsprop_step(
            tensors
                .into_iter()
                .map(|(s, hyper, _, _)| {
                    let [square_avg, momentum_buffer, grad_avg] = s.slots;
                    RmspropTensor {
                        param: s.param,
                        grad: s.grad,
                        square_avg,
                        momentum_buffer,
                        grad_avg,
                        hyper,
                    }
                })
                .collect(),
        )
    }
}

struct Adam;

impl Rule for Adam {
    type Hyper = AdamHyper;
    const SLOTS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

    fn parse(t: &Bound<'_, PyTuple>) -> PyResult<(AdamHyper, bool)> {
        let (lr, (beta1, beta2), eps, weight_decay, amsgrad, maximize, decoupled, frozen) =
            t.extract()?;
        let h = AdamHyper {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            maximize,
            decoupled,
        };
        Ok((h, frozen))
    }
    fn validate(h: &AdamHyper) -> lec7rs_core::Result<()> {
        h.validate()
    }
    fn needs(h: &AdamHyper, slot: usize) -> bool {
        slot < 2 || h.amsgrad
    }
    fn run<T: Real>(
        tensors: Vec<(Slices<'_, T>, AdamHyper, u64, bool)>,
    ) -> lec7rs_core::Result<()> {
        kernels::adam_step(
            tensors
                .into_iter()
                .map(|(s, hyper, step, _)| {
                    let [exp_avg, exp_avg_sq, max_exp_avg_sq] = s.slots;
                    AdamTensor {
                        param: s.param,
                        grad: s.grad,
                        exp_avg,
                        exp_avg_sq,
                        max_exp_avg_sq,
                        step,
                        hyper,
                    }
                })
                .collect(),
        )
    }
}

macro_rules! step_functions {
    ($($rule:ident: $step:ident($($slot:ident),+), $check:ident;)+) => {$(
        /// One step over all param groups; see `step.rs` for the protocol.
        #[pyfunction]
        #[allow(clippy::too_many_arguments)]
        pub fn $step<'py>(
            py: Python<'py>,
            params: &Bound<'py, PyList>,
            grads: &Bound<'py, PyList>,
            $($slot: &Bound<'py, PyList>,)+
            steps: &Bound<'py, PyAny>,
            group_of: &Bound<'py, PyList>,
            hypers: &Bound<'py, PyList>,
            fresh: Vec<usize>,
            labels: &Bound<'py, PyList>,
            check_finite: bool,
        ) -> PyResult<Outcome> {
            step::<$rule>(
                py, params, grads, &[$($slot),+], steps, group_of, hypers, fresh, labels,
                check_finite,
            )
        }

        /// Raises `ValueError` when one group's hyperparameters are invalid.
        #[pyfunction]
        pub fn $check(hyper: &Bound<'_, PyTuple>) -> PyResult<()> {
            let (h, _frozen) = $rule::parse(hyper)?;
            $rule::validate(&h).context("")
        }
    )+};
}

step_functions! {
    Sgd: sgd_step(momentum_buffer), sgd_check;
    Adagrad: adagrad_step(sum), adagrad_check;
    Rmsprop: rmsprop_step(square_avg, momentum_buffer, grad_avg), rmsprop_check;
    Adam: adam_step(exp_avg, exp_avg_sq, max_exp_avg_sq), adam_check;
}
