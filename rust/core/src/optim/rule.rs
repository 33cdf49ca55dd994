//! The one description of an update rule, and the one element-wise driver.
//!
//! A rule (`adam.rs`, `sgd.rs`, ...) says, once:
//! - its hyperparameters: a struct written with [`hyperparameters!`], which
//!   gives the torch names, the torch defaults (`Default`) and the reader
//!   that takes them by name from a param group;
//! - its state slots ([`Slot`]): arrays shaped like the param, factored
//!   row / column statistics, or one float64 number per tensor, each with
//!   its initial value ([`Rule::init`]);
//! - its checks ([`Rule::validate`]);
//! - its kernel: for an element-wise rule, the per-tensor constants and the
//!   body over one register of lanes ([`Elementwise`]), which
//!   [`run_elementwise`] drives over fixed chunks of all tensors as one
//!   parallel job; other rules (factored, matrix) write [`Rule::step`].
//!
//! The binding (`rust/python/src/optim.rs`) is one generic step function and
//! a table with one row per rule; [`step`] checks every length before any
//! write, so an error means nothing changed.

use std::marker::PhantomData;

use super::low::{self, LowTensor};
use super::{Ptrs, Work};
use crate::error::{Error, Result};
use crate::optimize::reduce::{pass_many, prefetch, Body, AHEAD_BYTES};
use crate::simd::{Lanes, Real, Step};

/// The most state slots a rule has.
pub const MAX_SLOTS: usize = 6;

/// Where a state slot lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An array of the param's shape.
    Param,
    /// Row statistics of a param of 2+ dimensions: its shape with the last
    /// dimension set to 1 (torch's Adafactor `row_var`).
    Rows,
    /// Column statistics: the param's shape with dimension -2 set to 1.
    Cols,
    /// One float64 number per tensor (NAdam's `mu_product`).
    Scalar,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Param => "param",
            Kind::Rows => "rows",
            Kind::Cols => "cols",
            Kind::Scalar => "scalar",
        }
    }

    /// The axis that a factored slot (rows, cols) reduces to 1 for a param
    /// of `ndim` dimensions; None for a param-shaped slot or a vector.
    fn unit_axis(self, ndim: usize) -> Option<usize> {
        match self {
            Kind::Rows if ndim >= 2 => Some(ndim - 1),
            Kind::Cols if ndim >= 2 => Some(ndim - 2),
            _ => None,
        }
    }

    /// The shape of this slot's array for a param of `param` shape (`None`
    /// for a scalar slot).
    pub fn shape(self, param: &[usize]) -> Option<Vec<usize>> {
        if self == Kind::Scalar {
            return None;
        }
        let mut s = param.to_vec();
        if let Some(d) = self.unit_axis(s.len()) {
            s[d] = 1;
        }
        Some(s)
    }

    /// Whether `shape` is [`Kind::shape`] of `param`, without building it.
    pub fn fits(self, param: &[usize], shape: &[usize]) -> bool {
        let n = param.len();
        if self == Kind::Scalar || shape.len() != n {
            return false;
        }
        let one = self.unit_axis(n);
        (0..n).all(|d| shape[d] == if one == Some(d) { 1 } else { param[d] })
    }
}

/// Whether a slot is a moment that a low-precision state dtype stores in
/// bfloat16 or 8 bits (`low.rs`), and with which 8-bit code: the signed
/// one (first moments, momentum) or the unsigned one (second moments).
/// Other slots (a param-like average, factored statistics) stay float32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    No,
    Signed,
    Unsigned,
}

impl Moment {
    pub fn name(self) -> &'static str {
        match self {
            Moment::No => "",
            Moment::Signed => "signed",
            Moment::Unsigned => "unsigned",
        }
    }
}

/// A state slot: its state-dict key, where it lives and whether it is a
/// moment.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    pub name: &'static str,
    pub kind: Kind,
    pub moment: Moment,
}

impl Slot {
    const fn new(name: &'static str, kind: Kind) -> Slot {
        Slot {
            name,
            kind,
            moment: Moment::No,
        }
    }
    pub const fn param(name: &'static str) -> Slot {
        Slot::new(name, Kind::Param)
    }
    pub const fn scalar(name: &'static str) -> Slot {
        Slot::new(name, Kind::Scalar)
    }
    pub const fn rows(name: &'static str) -> Slot {
        Slot::new(name, Kind::Rows)
    }
    pub const fn cols(name: &'static str) -> Slot {
        Slot::new(name, Kind::Cols)
    }
    /// A first moment (any sign).
    pub const fn signed(self) -> Slot {
        Slot {
            moment: Moment::Signed,
            ..self
        }
    }
    /// A second moment (never negative).
    pub const fn unsigned(self) -> Slot {
        Slot {
            moment: Moment::Unsigned,
            ..self
        }
    }
}

/// A hyperparameter as the binding found it in a param group.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// The group has no such key.
    Missing,
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    /// Anything else, by its type name.
    Other(String),
}

impl Value {
    fn kind(&self) -> String {
        match self {
            Value::Missing => "nothing".into(),
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Seq(items) => format!("a sequence of {}", items.len()),
            Value::Other(ty) => ty.clone(),
        }
    }
}

fn type_error(name: &str, expected: &str, v: &Value) -> Error {
    match v {
        Value::Missing => Error::Type(format!("missing hyperparameter '{name}'")),
        _ => Error::Type(format!("{name}: expected {expected}, got {}", v.kind())),
    }
}

/// A hyperparameter type that can be read from a [`Value`].
pub trait Field: Sized {
    fn from_value(name: &str, v: &Value) -> Result<Self>;
}

impl Field for f64 {
    fn from_value(name: &str, v: &Value) -> Result<f64> {
        match *v {
            Value::Float(x) => Ok(x),
            Value::Int(i) => Ok(i as f64),
            _ => Err(type_error(name, "a number", v)),
        }
    }
}

impl Field for bool {
    fn from_value(name: &str, v: &Value) -> Result<bool> {
        match *v {
            Value::Bool(b) => Ok(b),
            _ => Err(type_error(name, "True or False", v)),
        }
    }
}

impl Field for u64 {
    fn from_value(name: &str, v: &Value) -> Result<u64> {
        match *v {
            Value::Int(i) if i >= 0 => Ok(i as u64),
            Value::Int(i) => Err(Error::InvalidHyperparameter {
                name: name.into(),
                value: i as f64,
                expected: "an integer >= 0",
            }),
            _ => Err(type_error(name, "an int", v)),
        }
    }
}

impl<F: Field> Field for Option<F> {
    fn from_value(name: &str, v: &Value) -> Result<Option<F>> {
        match v {
            Value::None => Ok(None),
            _ => F::from_value(name, v).map(Some),
        }
    }
}

fn items<'v, const N: usize>(name: &str, v: &'v Value) -> Result<&'v [Value; N]> {
    match v {
        Value::Seq(items) => {
            <&[Value; N]>::try_from(&items[..]).map_err(|_| Error::InvalidHyperparameter {
                name: name.into(),
                value: items.len() as f64,
                expected: match N {
                    2 => "a pair (the number of items is shown)",
                    _ => "a sequence of the right length (the number of items is shown)",
                },
            })
        }
        _ => Err(type_error(name, &format!("a tuple of {N}"), v)),
    }
}

/// Item `k` of sequence `name`; its name (`"betas[0]"`) is only built for
/// the message of an error, so a valid step formats nothing.
fn item<F: Field>(name: &str, k: usize, v: &Value) -> Result<F> {
    F::from_value(name, v).or_else(|_| F::from_value(&format!("{name}[{k}]"), v))
}

impl<A: Field, B: Field> Field for (A, B) {
    fn from_value(name: &str, v: &Value) -> Result<(A, B)> {
        let [a, b] = items::<2>(name, v)?;
        Ok((item(name, 0, a)?, item(name, 1, b)?))
    }
}

impl<const N: usize> Field for [f64; N] {
    fn from_value(name: &str, v: &Value) -> Result<[f64; N]> {
        let vs = items::<N>(name, v)?;
        let mut out = [0.0; N];
        for (k, v) in vs.iter().enumerate() {
            out[k] = item(name, k, v)?;
        }
        Ok(out)
    }
}

/// A rule's hyperparameters: written with [`hyperparameters!`].
pub trait Hyperparameters: Copy + Default + Send + Sync + std::fmt::Debug + 'static {
    /// The group keys, in declaration order.
    const NAMES: &'static [&'static str];
    /// Reads every field by name; `get` returns [`Value::Missing`] for a
    /// key the group lacks.
    fn read(get: &mut dyn FnMut(&'static str) -> Value) -> Result<Self>;
}

/// Declares a hyperparameter struct once: torch's names and defaults, the
/// `Default` impl and the by-name reader.
#[macro_export]
macro_rules! hyperparameters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$fmeta:meta])* pub $field:ident: $ty:ty = $default:expr,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $crate::optim::rule::Hyperparameters for $name {
            const NAMES: &'static [&'static str] = &[$(stringify!($field)),*];

            fn read(
                get: &mut dyn FnMut(&'static str) -> $crate::optim::rule::Value,
            ) -> $crate::Result<Self> {
                Ok($name {
                    $($field: $crate::optim::rule::Field::from_value(
                        stringify!($field),
                        &get(stringify!($field)),
                    )?,)*
                })
            }
        }
    };
}

/// One param's view for a step: its slices, state and counters.
pub struct Tensor<'a, T, H> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub shape: &'a [usize],
    /// Array slots, in the rule's slot order (empty where unused or scalar).
    pub slots: [&'a mut [T]; MAX_SLOTS],
    /// Scalar slots (in: the current values, the initial ones for new
    /// state; out: after the step).
    pub scalars: [f64; MAX_SLOTS],
    /// Which slots were created for this step.
    pub fresh: [bool; MAX_SLOTS],
    /// This param's step count including the step being taken (1 first).
    pub step: u64,
    pub hyper: H,
    /// Read the grad as `grad * scale` (one multiply in `T`).
    pub grad_scale: Option<T>,
}

/// An update rule: its hyperparameters, state and kernel, described once.
pub trait Rule: 'static {
    type Hyper: Hyperparameters;
    /// The rule's name in the binding's table, e.g. `"adam"`.
    const NAME: &'static str;
    const SLOTS: &'static [Slot];
    /// Whether any slice of a tensor can be stepped alone: the update of an
    /// element depends on that element and per-tensor scalars only (not on
    /// norms, row / column statistics or matrix functions of the tensor).
    /// `lec7rs.distributed.ShardedOptimizer` shards only such rules.
    const SLICEABLE: bool;

    fn validate(h: &Self::Hyper) -> Result<()>;

    /// Whether a param of `ndim` dimensions uses slot `slot` with these
    /// hyperparameters (e.g. `max_exp_avg_sq` only with amsgrad).
    fn uses(h: &Self::Hyper, slot: usize, ndim: usize) -> bool {
        let _ = (h, slot, ndim);
        true
    }

    /// The value every element of a new slot starts with.
    fn init(h: &Self::Hyper, slot: usize) -> f64 {
        let _ = (h, slot);
        0.0
    }

    /// The step over every tensor; called by [`step`] after every check.
    fn step<T: Real>(tensors: &mut [Tensor<'_, T, Self::Hyper>]) -> Result<()>;

    /// The step with low-precision storage, called by [`low::step`] after
    /// every check: by default each tensor is staged whole in float32
    /// around [`Rule::step`]; element-wise rules convert tile by tile
    /// ([`low::tiled`]).
    fn step_low(tensors: &mut [LowTensor<'_, Self::Hyper>], sr: Option<[u32; 2]>) -> Result<()>
    where
        Self: Sized,
    {
        low::staged::<Self>(tensors, sr)
    }
}

/// The number of elements of slot `kind` for a param of `shape`.
fn slot_len(kind: Kind, shape: &[usize]) -> usize {
    kind.shape(shape).map_or(0, |s| s.iter().product())
}

/// One step of rule `R` over every tensor, in place, as one job. Checks
/// every hyperparameter, step count and length first: an error means
/// nothing was written.
pub fn step<R: Rule, T: Real>(tensors: &mut [Tensor<'_, T, R::Hyper>]) -> Result<()> {
    for (i, t) in tensors.iter().enumerate() {
        R::validate(&t.hyper)?;
        super::check_step(i, t.step)?;
        let n = t.param.len();
        if t.shape.iter().product::<usize>() != n {
            return Err(Error::Shape(format!(
                "tensor {i}: shape {:?} does not have {n} elements",
                t.shape
            )));
        }
        super::check_len(i, "grad", n, t.grad.len())?;
        for (k, slot) in R::SLOTS.iter().enumerate() {
            if slot.kind != Kind::Scalar && R::uses(&t.hyper, k, t.shape.len()) {
                let want = slot_len(slot.kind, t.shape);
                super::check_len(i, slot.name, want, t.slots[k].len())?;
            }
        }
    }
    R::step(tensors)
}

/// An element-wise rule: per-tensor constants and a body over lanes.
pub trait Elementwise: Rule {
    type Consts<T: Real>: Copy + Send + Sync;

    /// The tensor's constants for this step, computed in f64 and rounded
    /// once; updates the tensor's scalar state.
    fn consts<T: Real>(
        h: &Self::Hyper,
        step: u64,
        fresh: &[bool; MAX_SLOTS],
        scalars: &mut [f64; MAX_SLOTS],
    ) -> Self::Consts<T>;

    /// Whether the update needs two sums over each whole tensor first (the
    /// norms of a trust ratio: LAMB, LARS). Then [`Elementwise::sums`] runs
    /// as a first pass over every tensor (a deterministic reduction,
    /// `optimize::reduce`), [`Elementwise::finish`] turns each tensor's sums
    /// into its constants, and [`Elementwise::at`] is the second pass.
    const NORMS: bool = false;

    /// How many of the first slots [`Elementwise::sums`] reads (prefetched
    /// in the first pass, with the param and the grad).
    const SUMS_SLOTS: usize = 0;

    /// The first pass of a rule with [`Elementwise::NORMS`]: may update
    /// state; returns the two terms of each element to sum (e.g. `p * p`
    /// and `u * u`).
    ///
    /// # Safety
    /// As [`Elementwise::at`].
    #[inline(always)]
    unsafe fn sums<T: Real, L: Lanes<T>>(
        c: &Self::Consts<T>,
        g: L,
        p: *mut T,
        s: [*mut T; MAX_SLOTS],
    ) -> [L; 2] {
        let _ = (c, g, p, s);
        [L::splat(T::ZERO); 2]
    }

    /// Sets a tensor's constants from the sums of its first pass (in f64,
    /// in the fixed order of `optimize::reduce`).
    fn finish<T: Real>(c: &mut Self::Consts<T>, sums: [f64; 2]) {
        let _ = (c, sums);
    }

    /// Elements `0 .. L::N` of the param at `p` and the slots at `s`, with
    /// `g` the (scaled) grad there.
    ///
    /// # Safety
    /// The CPU supports `L`; `p` and each slot the hyperparameters use are
    /// valid for `L::N` elements (unused slots are dangling: never touch them).
    unsafe fn at<T: Real, L: Lanes<T>>(
        c: &Self::Consts<T>,
        g: L,
        p: *mut T,
        s: [*mut T; MAX_SLOTS],
    );
}

/// The constants of one tensor of an element-wise step.
pub(crate) struct ElemConsts<R: Elementwise, T: Real> {
    c: R::Consts<T>,
    scale: Option<T>,
    rule: PhantomData<fn() -> R>,
}

impl<R: Elementwise, T: Real> ElemConsts<R, T> {
    pub(crate) fn new(c: R::Consts<T>, scale: Option<T>) -> Self {
        ElemConsts {
            c,
            scale,
            rule: PhantomData,
        }
    }
}

impl<R: Elementwise, T: Real> Clone for ElemConsts<R, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: Elementwise, T: Real> Copy for ElemConsts<R, T> {}

/// Streams: the param, then every slot | the grad.
pub(crate) const STREAMS: usize = 1 + MAX_SLOTS;

/// The grad at `g + i`, scaled, and the param and slot pointers at `i`
/// (`wrapping_add`: an unused slot is a dangling empty-slice pointer).
#[inline(always)]
unsafe fn at_index<T: Real, L: Lanes<T>>(
    g: *const T,
    scale: Option<T>,
    w: [*mut T; STREAMS],
    i: usize,
) -> (L, *mut T, [*mut T; MAX_SLOTS]) {
    let mut g = L::load(g.add(i));
    if let Some(scale) = scale {
        g = g.mul(L::splat(scale));
    }
    let [p, slots @ ..] = w.map(|s| s.wrapping_add(i));
    (g, p, slots)
}

impl<R: Elementwise, T: Real> Step<T> for Ptrs<T, ElemConsts<R, T>, STREAMS, 1> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&mut self, i: usize) {
        if R::NORMS {
            // The second pass of a two-pass rule reads mostly: prefetch it.
            for &w in &self.w[..1 + R::SUMS_SLOTS] {
                prefetch::<T, L>(w, i, AHEAD_BYTES);
            }
        }
        let (g, p, slots) = at_index::<T, L>(self.r[0], self.c.scale, self.w, i);
        R::at::<T, L>(&self.c.c, g, p, slots);
    }
}

/// One tensor of the first pass of a rule with [`Elementwise::NORMS`].
struct SumsPass<R: Elementwise, T: Real> {
    c: ElemConsts<R, T>,
    w: [*mut T; STREAMS],
    g: *const T,
}

// SAFETY: the pass's concurrent chunks touch disjoint index ranges of the
// same buffers (`Body::at`), which outlive the pass.
unsafe impl<R: Elementwise, T: Real> Sync for SumsPass<R, T> {}

impl<R: Elementwise, T: Real> Body<T, 2> for SumsPass<R, T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 2], L) {
        prefetch::<T, L>(self.g, i, AHEAD_BYTES);
        for &w in self.w[..1 + R::SUMS_SLOTS].iter().filter(|w| !w.is_null()) {
            prefetch::<T, L>(w, i, AHEAD_BYTES);
        }
        let (g, p, slots) = at_index::<T, L>(self.g, self.c.scale, self.w, i);
        (R::sums::<T, L>(&self.c.c, g, p, slots), g)
    }
}

/// [`Rule::step`] of an element-wise rule: every tensor's constants, then
/// one parallel job over fixed chunks of all tensors (two, the first
/// taking each tensor's sums, for a rule with [`Elementwise::NORMS`]).
pub fn run_elementwise<R: Elementwise, T: Real>(
    tensors: &mut [Tensor<'_, T, R::Hyper>],
) -> Result<()> {
    let mut work: Vec<Work<'_, T, ElemConsts<R, T>, STREAMS, 1>> = tensors
        .iter_mut()
        .map(|t| {
            let c = R::consts::<T>(&t.hyper, t.step, &t.fresh, &mut t.scalars);
            let ndim = t.shape.len();
            let hyper = t.hyper;
            let mut w: [&mut [T]; STREAMS] = Default::default();
            w[0] = std::mem::take(&mut t.param);
            for (k, slot) in w[1..].iter_mut().enumerate() {
                let used = k < R::SLOTS.len()
                    && R::SLOTS[k].kind != Kind::Scalar
                    && R::uses(&hyper, k, ndim);
                if used {
                    *slot = std::mem::take(&mut t.slots[k]);
                }
            }
            Work {
                w,
                r: [t.grad],
                c: ElemConsts {
                    c,
                    scale: t.grad_scale,
                    rule: PhantomData,
                },
            }
        })
        .collect();
    if R::NORMS {
        let items: Vec<(usize, SumsPass<R, T>)> = work
            .iter_mut()
            .map(|t| {
                // Null for unused slots (never prefetched); an unused slot's
                // slice is empty (so is a used one of an empty tensor).
                let ptr = |s: &mut &mut [T]| match s.is_empty() {
                    true => std::ptr::null_mut(),
                    false => s.as_mut_ptr(),
                };
                let pass = SumsPass {
                    c: t.c,
                    w: t.w.each_mut().map(ptr),
                    g: t.r[0].as_ptr(),
                };
                (t.w[0].len(), pass)
            })
            .collect();
        let sums = pass_many(&items)?;
        for (t, s) in work.iter_mut().zip(sums) {
            R::finish(&mut t.c.c, s.sum);
        }
    }
    super::run_all(work)
}
