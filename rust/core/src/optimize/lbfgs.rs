//! L-BFGS: the history of the last `m` pairs `s = x_{k+1} - x_k`,
//! `y = g_{k+1} - g_k`, and the two-loop recursion that applies the inverse
//! Hessian approximation `H` (Nocedal & Wright, Algorithm 7.4):
//!
//! ```text
//! q = v
//! for i = k-1 .. k-m:  alpha_i = rho_i s_i'q;  q = q - alpha_i y_i
//! r = gamma q                    gamma = s_{k-1}'y_{k-1} / y_{k-1}'y_{k-1}
//! for i = k-m .. k-1:  beta_i = rho_i y_i'r;   r = r + (alpha_i - beta_i) s_i
//! H v = r                        rho_i = 1 / s_i'y_i
//! ```
//!
//! Each dot product is fused with the axpy before it (the dot of pass `j`
//! reads the vector that pass `j` just wrote), so the recursion over `k`
//! pairs is `2k + 1` passes over memory instead of `4k + 1`: it streams
//! `(8k + 2) n` elements (every `s_i` and `y_i` twice, and the work vector
//! read and written once per pass). Scalars (`alpha`, `beta`, `rho`,
//! `gamma`) are computed in f64 and rounded to the element type where they
//! multiply a vector. Every pass is a deterministic reduction
//! ([`super::reduce`]), so the result is bit-identical for any thread count
//! and SIMD level.

use super::reduce::{pass, Body, In, Out};
use crate::error::{Error, Result};
use crate::simd::{Lanes, Real};

/// What a fused two-loop pass writes into the work vector `w` before the
/// dot product with `v`.
#[derive(Clone, Copy)]
enum Op<T> {
    /// `w = u` (start of `H v`).
    Copy,
    /// `w = -u` (start of `-H g`).
    Neg,
    /// `w = w + c u`.
    Axpy(T),
    /// `w = (w + c u) * gamma` (the last step of the first loop and the
    /// initial scaling together).
    AxpyScale(T, T),
}

struct Fused<T> {
    w: Out<T>,
    u: In<T>,
    v: In<T>,
    op: Op<T>,
}

impl<T: Real> Body<T, 1> for Fused<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let u = self.u.get::<L>(i);
        let w = match self.op {
            Op::Copy => u,
            Op::Neg => u.neg(),
            Op::Axpy(c) => self.w.get::<L>(i).add(L::splat(c).mul(u)),
            Op::AxpyScale(c, gamma) => self
                .w
                .get::<L>(i)
                .add(L::splat(c).mul(u))
                .mul(L::splat(gamma)),
        };
        self.w.set(i, w);
        ([self.v.get::<L>(i).mul(w)], w)
    }
}

/// One fused pass: `w = op(w, u)`, then returns `v . w`.
fn fused<T: Real>(w: &mut [T], u: &[T], v: &[T], op: Op<T>) -> Result<f64> {
    let body = Fused {
        w: Out(w.as_mut_ptr()),
        u: In(u.as_ptr()),
        v: In(v.as_ptr()),
        op,
    };
    Ok(pass(w.len(), &body)?.sum[0])
}

/// One `(s, y)` pair of the history, with `rho = 1 / s'y`.
#[derive(Clone, Copy)]
pub struct Pair<'a, T> {
    pub s: &'a [T],
    pub y: &'a [T],
    pub rho: f64,
}

/// Writes `out = H v` (or `-H v` with `negate`) for the pairs given oldest
/// first, and returns `dot_with . out`. `gamma` scales the initial matrix
/// `H0 = gamma I` (the newest pair's `s'y / y'y` in L-BFGS); with no pairs,
/// `H = I`. `out` may not alias anything; all slices have one length
/// (checked).
pub fn two_loop<T: Real>(
    pairs: &[Pair<'_, T>],
    gamma: f64,
    v: &[T],
    out: &mut [T],
    negate: bool,
    dot_with: &[T],
) -> Result<f64> {
    let n = out.len();
    for (what, len) in [("v", v.len()), ("dot_with", dot_with.len())]
        .into_iter()
        .chain(
            pairs
                .iter()
                .flat_map(|p| [("s", p.s.len()), ("y", p.y.len())]),
        )
    {
        if len != n {
            return Err(Error::LengthMismatch {
                what: format!("two-loop recursion: {what}"),
                expected: n,
                got: len,
            });
        }
    }
    let start = if negate { Op::Neg } else { Op::Copy };
    let k = pairs.len();
    if k == 0 {
        return fused(out, v, dot_with, start);
    }
    let mut alpha = vec![0.0f64; k];
    // First loop, newest to oldest: the pass that applies pair i+1 also
    // takes the dot product with s_i.
    let mut dot = fused(out, v, pairs[k - 1].s, start)?;
    for i in (0..k).rev() {
        alpha[i] = pairs[i].rho * dot;
        let c = T::from_f64(-alpha[i]);
        if i > 0 {
            dot = fused(out, pairs[i].y, pairs[i - 1].s, Op::Axpy(c))?;
        } else {
            let g = T::from_f64(gamma);
            dot = fused(out, pairs[0].y, pairs[0].y, Op::AxpyScale(c, g))?;
        }
    }
    // Second loop, oldest to newest: the pass that applies pair i also takes
    // the dot product with y_{i+1} (or with `dot_with` after the last).
    for i in 0..k {
        let beta = pairs[i].rho * dot;
        let c = T::from_f64(alpha[i] - beta);
        let next = if i + 1 < k { pairs[i + 1].y } else { dot_with };
        dot = fused(out, pairs[i].s, next, Op::Axpy(c))?;
    }
    Ok(dot)
}

/// The last `m` accepted pairs in a ring of `m + 1` slots: a new pair is
/// written into the spare slot and only enters the ring if it passes the
/// curvature guard, so a rejected pair never overwrites an old one.
pub struct History<T> {
    n: usize,
    m: usize,
    s: Vec<T>,
    y: Vec<T>,
    rho: Vec<f64>,
    /// Slots in the ring, oldest first.
    order: Vec<usize>,
    spare: usize,
    gamma: f64,
}

impl<T: Real> History<T> {
    /// Room for `m >= 1` pairs of length `n`; allocation failure is an error.
    pub fn new(n: usize, m: usize) -> Result<Self> {
        if m == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "m".into(),
                value: 0.0,
                expected: "an integer >= 1",
            });
        }
        let len = (m + 1)
            .checked_mul(n)
            .ok_or_else(|| oom("the L-BFGS history", usize::MAX))?;
        Ok(History {
            n,
            m,
            s: alloc_zeroed(len, "the L-BFGS history (s)")?,
            y: alloc_zeroed(len, "the L-BFGS history (y)")?,
            rho: vec![0.0; m + 1],
            order: Vec::with_capacity(m),
            spare: 0,
            gamma: 1.0,
        })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.m
    }

    /// `gamma = s'y / y'y` of the newest accepted pair (1 when empty).
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    /// The spare slot `(s, y)`, to be filled before [`History::commit`].
    pub fn spare_mut(&mut self) -> (&mut [T], &mut [T]) {
        let r = self.spare * self.n..(self.spare + 1) * self.n;
        (&mut self.s[r.clone()], &mut self.y[r])
    }

    /// Adds the pair in the spare slot, given `s'y` and `y'y` (the caller
    /// has checked the curvature guard). Drops the oldest pair when full.
    pub fn commit(&mut self, sy: f64, yy: f64) {
        self.rho[self.spare] = 1.0 / sy;
        self.gamma = sy / yy;
        self.order.push(self.spare);
        if self.order.len() > self.m {
            self.spare = self.order.remove(0);
        } else {
            self.spare = self.order.len();
        }
    }

    /// Forgets every pair (a restart with `H = I`).
    pub fn clear(&mut self) {
        self.order.clear();
        self.spare = 0;
        self.gamma = 1.0;
    }

    /// The pairs, oldest first.
    pub fn pairs(&self) -> Vec<Pair<'_, T>> {
        self.order
            .iter()
            .map(|&j| Pair {
                s: &self.s[j * self.n..(j + 1) * self.n],
                y: &self.y[j * self.n..(j + 1) * self.n],
                rho: self.rho[j],
            })
            .collect()
    }

    /// `d = -H g`; returns `g'd`.
    pub fn direction(&self, g: &[T], d: &mut [T]) -> Result<f64> {
        two_loop(&self.pairs(), self.gamma, g, d, true, g)
    }

    /// The storage, for export: `s` and `y` as `(m + 1, n)` row-major
    /// buffers, and the slots of the pairs, oldest first.
    pub fn into_parts(self) -> (Vec<T>, Vec<T>, Vec<usize>) {
        (self.s, self.y, self.order)
    }
}

pub(crate) fn oom(what: &str, bytes: usize) -> Error {
    Error::OutOfMemory {
        what: what.to_string(),
        bytes,
    }
}

/// A zeroed vector of `len` elements, or an error instead of an abort. The
/// memory comes zeroed from the allocator (pages are not touched here).
pub(crate) fn alloc_zeroed<T: Real>(len: usize, what: &str) -> Result<Vec<T>> {
    let bytes = len.saturating_mul(std::mem::size_of::<T>());
    if len == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| oom(what, bytes))?;
    // SAFETY: `layout` has a non-zero size; all-zero bits are 0.0 for f32
    // and f64; the pointer comes from the global allocator with the layout
    // of a `Vec<T>` of capacity `len`.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut T;
        if ptr.is_null() {
            return Err(oom(what, bytes));
        }
        Ok(Vec::from_raw_parts(ptr, len, len))
    }
}

/// The machine's physical memory in bytes, if known.
pub(crate) fn physical_memory() -> Option<usize> {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            return (pages as usize).checked_mul(size as usize);
        }
    }
    None
}
