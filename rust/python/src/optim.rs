//! The table of first-order update rules: one row per rule. Everything else
//! (the step protocol, reading hyperparameters by name, the state) is
//! generic, in `step.rs`; each rule is described once, in the core.

use lec7rs_core::optim::{self, Hyperparameters, Rule};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::value_error;
use crate::step::{self, Call, Low, StateFormat};
use lec7rs_core::optim::low::Half;

/// Calls `$body` with `$R` bound to the rule named `$name`: the table of
/// rules, one row each.
macro_rules! with_rule {
    ($name:expr, $R:ident => $body:expr) => {
        dispatch!($name, $R => $body;
            optim::Sgd,
            optim::Adagrad,
            optim::Rmsprop,
            optim::Adam,
            optim::Nadam,
            optim::Radam,
            optim::Adamax,
            optim::Adadelta,
            optim::Rprop,
            optim::Asgd,
            optim::Lion,
            optim::Lamb,
            optim::Lars,
            optim::ScheduleFreeAdamw,
            optim::ScheduleFreeSgd,
            optim::Adafactor,
            optim::Muon,
        )
    };
}

macro_rules! dispatch {
    ($name:expr, $R:ident => $body:expr; $($rule:ty,)*) => {
        match $name {
            $(n if n == <$rule as Rule>::NAME => {
                type $R = $rule;
                $body
            })*
            other => Err(value_error(format!("unknown update rule {other:?}"))),
        }
    };
}

/// `(param format, state format, master list or None, per-slot absmax
/// lists, stochastic rounding key or None)`: see `step::Low`.
type LowArg<'py> = (
    String,
    String,
    Option<Bound<'py, PyList>>,
    Bound<'py, PyList>,
    Option<(u32, u32)>,
);

/// One step of rule `rule` over all param groups; see `step.rs`. Returns
/// 0 when skipped (check_finite and a grad was not finite), 1 when
/// stepped, 2 when stepped with a plan recorded in `cache` (the next step
/// may take it: `StepCache.step`).
#[pyfunction]
#[pyo3(signature = (rule, params, grads, state, steps, groups, group_of, labels, check_finite, grad_scale=None, low=None, cache=None))]
#[allow(clippy::too_many_arguments)]
pub fn optimizer_step<'py>(
    py: Python<'py>,
    rule: &str,
    params: &Bound<'py, PyList>,
    grads: &Bound<'py, PyList>,
    state: &Bound<'py, PyList>,
    steps: &Bound<'py, PyAny>,
    groups: &Bound<'py, PyList>,
    group_of: &Bound<'py, PyList>,
    labels: &Bound<'py, PyList>,
    check_finite: bool,
    grad_scale: Option<f64>,
    low: Option<LowArg<'py>>,
    cache: Option<Bound<'py, crate::plan::StepCache>>,
) -> PyResult<u8> {
    let low = match &low {
        None => None,
        Some((param, state, master, absmax, sr)) => Some(Low {
            half: match param.as_str() {
                "float32" => None,
                "bfloat16" => Some(Half::Bf16),
                "float16" => Some(Half::F16),
                other => return Err(value_error(format!("low: unknown param format {other:?}"))),
            },
            state: match state.as_str() {
                "float32" => StateFormat::F32,
                "bfloat16" => StateFormat::Bf16,
                "int8" => StateFormat::Int8,
                other => return Err(value_error(format!("low: unknown state format {other:?}"))),
            },
            master: master.as_ref(),
            absmax,
            sr: sr.map(|(a, b)| [a, b]),
        }),
    };
    let call = Call {
        params,
        grads,
        state,
        steps,
        groups,
        group_of,
        labels,
        check_finite,
        grad_scale,
        low,
        cache: cache.as_ref(),
    };
    with_rule!(rule, R => step::step::<R>(py, call).map(|s| s as u8))
}

/// Raises ValueError / TypeError when a group's hyperparameters are invalid.
#[pyfunction]
pub fn optimizer_check(rule: &str, group: &Bound<'_, PyDict>) -> PyResult<()> {
    with_rule!(rule, R => step::check::<R>(group))
}

/// A rule's hyperparameter names, its `(slot name, slot kind, moment)`
/// triples (moment: "signed", "unsigned" or "") and whether it is
/// [`Rule::SLICEABLE`].
type RuleInfo = (
    Vec<&'static str>,
    Vec<(&'static str, &'static str, &'static str)>,
    bool,
);

/// `(hyperparameter names, [(slot name, slot kind, moment)], sliceable)`
/// of a rule.
#[pyfunction]
pub fn optimizer_rule(rule: &str) -> PyResult<RuleInfo> {
    with_rule!(rule, R => Ok((
        <R as Rule>::Hyper::NAMES.to_vec(),
        R::SLOTS.iter().map(|s| (s.name, s.kind.name(), s.moment.name())).collect(),
        R::SLICEABLE,
    )))
}

/// The shape of a state slot of kind `kind` for a param of `shape` (None
/// for a scalar slot).
#[pyfunction]
pub fn slot_shape(kind: &str, shape: Vec<usize>) -> PyResult<Option<Vec<usize>>> {
    use lec7rs_core::optim::Kind;
    let kind = [Kind::Param, Kind::Rows, Kind::Cols, Kind::Scalar]
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| value_error(format!("unknown slot kind {kind:?}")))?;
    Ok(kind.shape(&shape))
}
