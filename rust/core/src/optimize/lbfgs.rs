//! L-BFGS: the history of the last `m` pairs `s = x_{k+1} - x_k`,
//! `y = g_{k+1} - g_k`, and two ways to apply the inverse Hessian
//! approximation `H` they define (with `H0 = gamma I`,
//! `gamma = s_{k-1}'y_{k-1} / y_{k-1}'y_{k-1}`, the newest pair's).
//!
//! [`two_loop`] is the two-loop recursion (Nocedal & Wright, Algorithm 7.4),
//! behind `_core.lbfgs_two_loop` and `hess_inv`:
//!
//! ```text
//! q = v
//! for i = k-1 .. k-m:  alpha_i = rho_i s_i'q;  q = q - alpha_i y_i
//! r = gamma q
//! for i = k-m .. k-1:  beta_i = rho_i y_i'r;   r = r + (alpha_i - beta_i) s_i
//! H v = r                        rho_i = 1 / s_i'y_i
//! ```
//!
//! Each dot product is fused with the axpy before it (the dot of pass `j`
//! reads the vector that pass `j` just wrote), so the recursion over `k`
//! pairs is `2k + 1` passes over memory instead of `4k + 1`: it streams
//! `(8k + 2) n` elements (every `s_i` and `y_i` twice, and the work vector
//! read and written once per pass).
//!
//! [`History::direction`], the search direction of `minimize`, computes the
//! same `H g` from the compact representation of Byrd, Nocedal & Schnabel
//! (1994), as L-BFGS-B does, with `S = [s_oldest .. s_newest]`, `Y` alike:
//!
//! ```text
//! a = S'g,  b = Y'g                       (k-vectors, one pass)
//! u = R^-1 a                              R = upper triangle of S'Y
//! p = R^-T ((D + gamma Y'Y) u - gamma b)  D = diag(s_i'y_i)
//! H g = gamma g + S p - gamma Y u         (one pass, writes d = -H g)
//! ```
//!
//! The `k x k` matrices `R` and `Y'Y` are kept in the history: a pair that
//! enters adds a column `s_i'y_new` to `R` and a row and column `y_i'y_new`
//! to `Y'Y`, computed by the first pass of the next direction, which reads
//! every `s_i` and `y_i` anyway. Two passes stream `(4k + 3) n` elements
//! (every `s_i` and `y_i` twice, `g` twice, `d` written once), half the
//! two-loop's traffic for the same `H g` up to rounding (beyond 20 pairs,
//! each pass is split, at `4n` more per split). The passes prefetch their
//! `2k + 1` streams in software.
//!
//! Scalars are computed in f64 and rounded to the element type where they
//! multiply a vector. Every pass is a deterministic reduction
//! ([`super::reduce`]), so both results are bit-identical for any thread
//! count and SIMD level.

use super::reduce::{self, accumulate, pass, pass_n_into, Body, BodyN, In, Out, BLOCK};
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

/// The most pairs one pass of [`History::direction`] reads: more pairs are
/// split into passes of near-equal size. Each further pass rereads `g` and
/// the new `y` (first pass) or reads and writes `d` (second pass), but
/// keeps the streams and accumulators of a pass few (about 1.2x faster at
/// `m = 40` than one pass). Any split gives the same bits.
const PAIRS_PER_PASS: usize = 20;

/// How far ahead of the element being read the passes of
/// [`History::direction`] prefetch each of their streams. With `2k + 1`
/// streams the hardware prefetchers fall behind (about 1.3x slower at
/// `m = 10` without it).
const PREFETCH_BYTES: usize = 1024;

/// Prefetches `at + PREFETCH_BYTES` of `stream` from a vector body.
#[inline(always)]
fn prefetch<T: Real, L: Lanes<T>>(stream: In<T>, at: usize) {
    reduce::prefetch::<T, L>(stream.0, at, PREFETCH_BYTES);
}

/// `a_i = s_i'g` and `b_i = y_i'g` for every pair, and for each new pair
/// `j` the dot products `s_i'y_j` and `y_i'y_j` over every pair `i`: per
/// pair `i`, the sums `[a_i, b_i, s_i'y_j, y_i'y_j, ...]` (`2 + 2 new.len()`
/// of them).
struct Gather<'a, T> {
    g: In<T>,
    s: &'a [In<T>],
    y: &'a [In<T>],
    /// The new pairs' `y`.
    new: &'a [In<T>],
}

impl<T: Real> BodyN<T> for Gather<'_, T> {
    fn sums(&self) -> usize {
        self.s.len() * (2 + 2 * self.new.len())
    }

    /// Pair by pair through the range, with the pair's sums in registers;
    /// `g` and the new `y` are read once per pair, from L1 after the first.
    #[inline(always)]
    unsafe fn add<L: Lanes<T>>(&self, start: usize, len: usize, acc: &mut [L]) {
        let regs = BLOCK / L::N;
        let per = (2 + 2 * self.new.len()) * regs;
        let g = self.g;
        for (q, (&s, &y)) in self.s.iter().zip(self.y).enumerate() {
            let acc = &mut acc[q * per..(q + 1) * per];
            if let [yj] = self.new {
                // The usual case: one new pair. The first pair also
                // prefetches `g` and the new `y`, which every pair reads.
                let yj = *yj;
                let first = q == 0;
                accumulate::<T, L, 4>(
                    start,
                    len,
                    acc,
                    #[inline(always)]
                    |i| {
                        prefetch::<T, L>(s, i);
                        prefetch::<T, L>(y, i);
                        if first {
                            prefetch::<T, L>(g, i);
                            prefetch::<T, L>(yj, i);
                        }
                        let (s, y, g, yj) =
                            (s.get::<L>(i), y.get::<L>(i), g.get::<L>(i), yj.get::<L>(i));
                        [s.mul(g), y.mul(g), s.mul(yj), y.mul(yj)]
                    },
                );
                continue;
            }
            for (c, &v) in std::iter::once(&g).chain(self.new).enumerate() {
                let acc = &mut acc[2 * c * regs..2 * (c + 1) * regs];
                let first = c == 0;
                accumulate::<T, L, 2>(
                    start,
                    len,
                    acc,
                    #[inline(always)]
                    |i| {
                        if first {
                            prefetch::<T, L>(s, i);
                            prefetch::<T, L>(y, i);
                        }
                        let (s, y, v) = (s.get::<L>(i), y.get::<L>(i), v.get::<L>(i));
                        [s.mul(v), y.mul(v)]
                    },
                );
            }
        }
    }
}

/// `d = cg g + sum_i (cs_i s_i + cy_i y_i)`, added in that order; a pass
/// after the `first` adds its pairs to `d` instead (`d` holds the same
/// bits a single pass would have had in a register there), and the `last`
/// returns `g'd`.
struct Combine<'a, T> {
    d: Out<T>,
    g: In<T>,
    cg: T,
    s: &'a [In<T>],
    y: &'a [In<T>],
    cs: &'a [T],
    cy: &'a [T],
    first: bool,
    last: bool,
}

impl<T: Real> Body<T, 1> for Combine<'_, T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let mut w = if self.first {
            prefetch::<T, L>(self.g, i);
            self.g.get::<L>(i).mul(L::splat(self.cg))
        } else {
            self.d.get::<L>(i)
        };
        for (((s, y), &cs), &cy) in self.s.iter().zip(self.y).zip(self.cs).zip(self.cy) {
            prefetch::<T, L>(*s, i);
            prefetch::<T, L>(*y, i);
            w = w.add(s.get::<L>(i).mul(L::splat(cs)));
            w = w.add(y.get::<L>(i).mul(L::splat(cy)));
        }
        self.d.set(i, w);
        if self.last {
            if !self.first {
                prefetch::<T, L>(self.g, i);
            }
            ([w.mul(self.g.get::<L>(i))], w)
        } else {
            ([w], w)
        }
    }
}

/// The matrices `R` (read above the diagonal) and `Y'Y` of the pairs, in
/// the ring's order: entry `(i, j)` is slot `(order[i], order[j])` of the
/// history's `(m + 1)`-square matrices (row length `w`).
#[derive(Clone, Copy)]
struct Ring<'a> {
    sy: &'a [f64],
    yy: &'a [f64],
    order: &'a [usize],
    w: usize,
}

impl Ring<'_> {
    #[inline(always)]
    fn r(&self, i: usize, j: usize) -> f64 {
        self.sy[self.order[i] * self.w + self.order[j]]
    }
    #[inline(always)]
    fn yy(&self, i: usize, j: usize) -> f64 {
        self.yy[self.order[i] * self.w + self.order[j]]
    }
}

/// The `k`-vectors `u = R^-1 a` and `p = R^-T ((D + gamma Y'Y) u - gamma b)`
/// of the compact representation (`D` the diagonal of `R`), all in f64,
/// into `u` and `p`.
#[allow(clippy::needless_range_loop)] // triangular solves, by index
fn compact(m: Ring<'_>, a: &[f64], b: &[f64], gamma: f64, u: &mut Vec<f64>, p: &mut Vec<f64>) {
    let k = a.len();
    u.clear();
    u.resize(k, 0.0);
    for i in (0..k).rev() {
        let mut t = a[i];
        for j in i + 1..k {
            t -= m.r(i, j) * u[j];
        }
        u[i] = t / m.r(i, i);
    }
    p.clear();
    p.resize(k, 0.0);
    for i in 0..k {
        let mut t = 0.0;
        for j in 0..k {
            t += m.yy(i, j) * u[j];
        }
        t = m.r(i, i) * u[i] + gamma * t - gamma * b[i];
        for j in 0..i {
            t -= m.r(j, i) * p[j];
        }
        p[i] = t / m.r(i, i);
    }
}

/// `0 .. k` cut into the fewest ranges of at most `per_pass`, of
/// near-equal length.
fn passes(k: usize, per_pass: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let count = k.div_ceil(per_pass.max(1)).max(1);
    (0..count).map(move |c| c * k / count..(c + 1) * k / count)
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
    /// `s_i'y_j` and `y_i'y_j` for slots `i`, `j` (row-major, `m + 1`
    /// square): in `sy`, valid where pair `i` is not newer than pair `j`
    /// (the upper triangle `R` of `S'Y`); `yy` is symmetric.
    sy: Vec<f64>,
    yy: Vec<f64>,
    /// Slots committed since the last direction, whose columns of `sy` and
    /// `yy` the next direction computes.
    stale: Vec<usize>,
    /// (Boxed: the history of each of many small problems stays small.)
    work: Box<Work<T>>,
}

/// The buffers of [`History::direction`], kept from call to call.
struct Work<T> {
    /// The pairs' vectors, oldest first, and the new pairs' `y`.
    s: Vec<In<T>>,
    y: Vec<In<T>>,
    y_new: Vec<In<T>>,
    /// The new pairs' positions in the ring.
    new: Vec<usize>,
    /// The first pass's sums.
    sums: Vec<f64>,
    /// `S'g`, `Y'g`, `u`, `p` (see [`compact`]) and the
    /// coefficients of `S` and `Y` in `d`.
    a: Vec<f64>,
    b: Vec<f64>,
    u: Vec<f64>,
    p: Vec<f64>,
    cs: Vec<T>,
    cy: Vec<T>,
}

impl<T> Work<T> {
    /// Room for `slots` pairs, of which one is new (the usual direction):
    /// a history that fills up does not reallocate.
    fn with_capacity(slots: usize) -> Self {
        Work {
            s: Vec::with_capacity(slots),
            y: Vec::with_capacity(slots),
            y_new: Vec::with_capacity(1),
            new: Vec::with_capacity(1),
            sums: Vec::with_capacity(4 * slots),
            a: Vec::with_capacity(slots),
            b: Vec::with_capacity(slots),
            u: Vec::with_capacity(slots),
            p: Vec::with_capacity(slots),
            cs: Vec::with_capacity(slots),
            cy: Vec::with_capacity(slots),
        }
    }
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
        let slots = m
            .checked_add(1)
            .ok_or_else(|| oom("the L-BFGS history", usize::MAX))?;
        let len = slots
            .checked_mul(n)
            .ok_or_else(|| oom("the L-BFGS history", usize::MAX))?;
        // The (m + 1)^2 matrices of the compact representation: what limits
        // m when n is small.
        let square = slots
            .checked_mul(slots)
            .ok_or_else(|| oom("the L-BFGS history's (m + 1)^2 matrices", usize::MAX))?;
        const MATRICES: &str = "the L-BFGS history's (m + 1)^2 matrices";
        Ok(History {
            n,
            m,
            s: alloc_zeroed(len, "the L-BFGS history (s)")?,
            y: alloc_zeroed(len, "the L-BFGS history (y)")?,
            rho: alloc_zeroed(slots, "the L-BFGS history")?,
            order: crate::alloc::with_capacity(slots, "the L-BFGS history")?,
            spare: 0,
            gamma: 1.0,
            sy: alloc_zeroed(square, MATRICES)?,
            yy: alloc_zeroed(square, MATRICES)?,
            stale: crate::alloc::with_capacity(slots, "the L-BFGS history")?,
            work: Box::new(Work::with_capacity(slots)),
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
        self.stale.push(self.spare);
        if self.order.len() > self.m {
            self.spare = self.order.remove(0);
            self.stale.retain(|&j| j != self.spare);
        } else {
            self.spare = self.order.len();
        }
    }

    /// Forgets every pair (a restart with `H = I`).
    pub fn clear(&mut self) {
        self.order.clear();
        self.stale.clear();
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

    /// `d = -H g` from the compact representation (see the module docs),
    /// in two passes over memory; returns `g'd`. Also completes the
    /// matrices `R` and `Y'Y` for the pairs committed since the last call.
    pub fn direction(&mut self, g: &[T], d: &mut [T]) -> Result<f64> {
        self.direction_in_passes(g, d, PAIRS_PER_PASS)
    }

    fn direction_in_passes(&mut self, g: &[T], d: &mut [T], per_pass: usize) -> Result<f64> {
        let n = self.n;
        for (what, len) in [("g", g.len()), ("d", d.len())] {
            if len != n {
                return Err(Error::LengthMismatch {
                    what: format!("L-BFGS direction: {what}"),
                    expected: n,
                    got: len,
                });
            }
        }
        let k = self.order.len();
        let w = self.m + 1;
        // The buffers of the last call, refilled (a small problem makes
        // many directions: none allocates once the history is full).
        let Work {
            s,
            y,
            y_new,
            new,
            sums,
            a,
            b,
            u,
            p,
            cs,
            cy,
        } = &mut *self.work;
        for (list, buf) in [(&mut *s, &self.s), (&mut *y, &self.y)] {
            list.clear();
            list.extend(
                self.order
                    .iter()
                    .map(|&j| In(buf[j * n..(j + 1) * n].as_ptr())),
            );
        }
        // a = S'g, b = Y'g, and the new columns of R and Y'Y.
        new.clear();
        new.extend((0..k).filter(|&q| self.stale.contains(&self.order[q])));
        y_new.clear();
        y_new.extend(new.iter().map(|&q| y[q]));
        let per = 2 + 2 * new.len();
        sums.clear();
        if k > 0 {
            for range in passes(k, per_pass) {
                let body = Gather {
                    g: In(g.as_ptr()),
                    s: &s[range.clone()],
                    y: &y[range],
                    new: y_new,
                };
                pass_n_into(n, &body, sums)?;
            }
        }
        for (&oi, sums) in self.order.iter().zip(sums.chunks_exact(per)) {
            for (&q, c) in new.iter().zip(sums[2..].chunks_exact(2)) {
                let oj = self.order[q];
                self.sy[oi * w + oj] = c[0];
                self.yy[oi * w + oj] = c[1];
                self.yy[oj * w + oi] = c[1];
            }
        }
        self.stale.clear();
        a.clear();
        a.extend(sums.chunks_exact(per).map(|c| c[0]));
        b.clear();
        b.extend(sums.chunks_exact(per).map(|c| c[1]));
        let gamma = self.gamma;
        compact(
            Ring {
                sy: &self.sy,
                yy: &self.yy,
                order: &self.order,
                w,
            },
            a,
            b,
            gamma,
            u,
            p,
        );
        // d = -(gamma g + S p - gamma Y u).
        cs.clear();
        cs.extend(p.iter().map(|&v| T::from_f64(-v)));
        cy.clear();
        cy.extend(u.iter().map(|&v| T::from_f64(gamma * v)));
        let count = passes(k, per_pass).count();
        let mut gd = 0.0;
        for (c, range) in passes(k, per_pass).enumerate() {
            let body = Combine {
                d: Out(d.as_mut_ptr()),
                g: In(g.as_ptr()),
                cg: T::from_f64(-gamma),
                s: &s[range.clone()],
                y: &y[range.clone()],
                cs: &cs[range.clone()],
                cy: &cy[range],
                first: c == 0,
                last: c + 1 == count,
            };
            gd = pass(n, &body)?.sum[0];
        }
        Ok(gd)
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
    crate::alloc::check_fits(bytes, what)?;
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

#[cfg(test)]
mod tests {
    use super::super::reduce::tests::data;
    use super::*;
    use crate::parallel::{self, CHUNK};
    use crate::simd::{best_level, set_level, supported_levels};

    /// `H g` by the two-loop recursion, plainly in f64 (the reference).
    fn reference(pairs: &[(Vec<f64>, Vec<f64>)], g: &[f64]) -> Vec<f64> {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut q = g.to_vec();
        let k = pairs.len();
        if k == 0 {
            return q;
        }
        let rho: Vec<f64> = pairs.iter().map(|(s, y)| 1.0 / dot(s, y)).collect();
        let mut alpha = vec![0.0; k];
        for i in (0..k).rev() {
            alpha[i] = rho[i] * dot(&pairs[i].0, &q);
            for (q, y) in q.iter_mut().zip(&pairs[i].1) {
                *q -= alpha[i] * y;
            }
        }
        let (s, y) = &pairs[k - 1];
        let gamma = dot(s, y) / dot(y, y);
        for v in q.iter_mut() {
            *v *= gamma;
        }
        for i in 0..k {
            let beta = rho[i] * dot(&pairs[i].1, &q);
            for (q, s) in q.iter_mut().zip(&pairs[i].0) {
                *q += (alpha[i] - beta) * s;
            }
        }
        q
    }

    /// A stream of pairs `y = B s` with `B` diagonal, eigenvalues log-spaced
    /// in `[1, cond]`, each `s` the last one times `drift` plus a random
    /// vector (nearly parallel steps make `R` ill-conditioned); every
    /// `reject`-th pair has `s'y < 0` instead.
    fn stream(
        n: usize,
        count: usize,
        cond: f64,
        drift: f64,
        reject: usize,
        seed: u64,
    ) -> Vec<(Vec<f64>, Vec<f64>, bool)> {
        let b: Vec<f64> = (0..n)
            .map(|i| cond.powf(i as f64 / (n.max(2) - 1) as f64))
            .collect();
        let mut last = vec![0.0; n];
        (0..count)
            .map(|c| {
                let noise = data(n, 1000 * seed + c as u64);
                let mut s: Vec<f64> = last.iter().zip(noise).map(|(v, e)| drift * v + e).collect();
                let rms = (s.iter().map(|v| v * v).sum::<f64>() / n as f64).sqrt();
                s.iter_mut().for_each(|v| *v /= rms);
                last.clone_from(&s);
                let bad = reject > 0 && c % reject == reject - 1;
                let sign = if bad { -1.0 } else { 1.0 };
                let y = s.iter().zip(&b).map(|(s, b)| sign * b * s).collect();
                (s, y, !bad)
            })
            .collect()
    }

    /// Offers the pairs to a history of `m` as the minimizer does (a pair
    /// fails the guard if `s'y <= 0`), taking a direction after each, and
    /// returns the last direction and `g'd`.
    fn run<T: Real>(m: usize, pairs: &[(Vec<f64>, Vec<f64>, bool)], g: &[f64]) -> (Vec<T>, f64) {
        run_in_passes(m, pairs, g, PAIRS_PER_PASS)
    }

    fn run_in_passes<T: Real>(
        m: usize,
        pairs: &[(Vec<f64>, Vec<f64>, bool)],
        g: &[f64],
        per_pass: usize,
    ) -> (Vec<T>, f64) {
        let n = g.len();
        let g: Vec<T> = g.iter().map(|&v| T::from_f64(v)).collect();
        let mut h = History::<T>::new(n, m).unwrap();
        let mut d = vec![T::ZERO; n];
        let mut gd = h.direction_in_passes(&g, &mut d, per_pass).unwrap();
        for (s, y, _) in pairs {
            let (hs, hy) = h.spare_mut();
            for (a, &b) in hs.iter_mut().zip(s).chain(hy.iter_mut().zip(y)) {
                *a = T::from_f64(b);
            }
            let (hs, hy) = h.spare_mut();
            let sy = crate::optimize::dot(&*hs, &*hy).unwrap();
            let yy = crate::optimize::dot(&*hy, &*hy).unwrap();
            if sy > 0.0 {
                h.commit(sy, yy);
            }
            gd = h.direction_in_passes(&g, &mut d, per_pass).unwrap();
        }
        (d, gd)
    }

    fn accepted(m: usize, pairs: &[(Vec<f64>, Vec<f64>, bool)]) -> Vec<(Vec<f64>, Vec<f64>)> {
        let ok: Vec<_> = pairs
            .iter()
            .filter(|p| p.2)
            .map(|p| (p.0.clone(), p.1.clone()))
            .collect();
        ok[ok.len().saturating_sub(m)..].to_vec()
    }

    #[test]
    fn compact_direction_is_the_two_loop_direction() {
        for (n, m, count, cond, drift) in [
            (1, 3, 5, 1.0, 0.0),
            (7, 3, 8, 10.0, 0.0),
            (33, 5, 13, 1e3, 0.0),
            (1000, 10, 25, 1e2, 0.0),
            (1000, 10, 25, 1e4, 3.0),
            (1000, 10, 25, 1e4, 1000.0),
            (CHUNK + 17, 4, 11, 1e3, 1.0),
        ] {
            let pairs = stream(n, count, cond, drift, 4, n as u64);
            let g = data(n, 99);
            let want: Vec<f64> = reference(&accepted(m, &pairs), &g)
                .iter()
                .map(|v| -v)
                .collect();
            let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let (got, gd) = run::<f64>(m, &pairs, &g);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-12 * scale, "n={n} m={m}: {a} vs {b}");
            }
            let gd_want: f64 = got.iter().zip(&g).map(|(d, g)| d * g).sum();
            assert!((gd - gd_want).abs() <= 1e-12 * gd_want.abs());
            let (got32, _) = run::<f32>(m, &pairs, &g);
            for (a, b) in got32.iter().zip(&want) {
                let err = (*a as f64 - b).abs() / scale;
                assert!(err <= 1e-4, "f32 n={n} m={m}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn compact_direction_matches_two_loop_on_the_history() {
        let (n, m) = (500, 5);
        let pairs = stream(n, 12, 1e3, 1.0, 5, 7);
        let g = data(n, 3);
        let mut h = History::<f64>::new(n, m).unwrap();
        let mut d = vec![0.0; n];
        let mut want = vec![0.0; n];
        for (c, (s, y, _)) in pairs.iter().enumerate() {
            let (hs, hy) = h.spare_mut();
            hs.copy_from_slice(s);
            hy.copy_from_slice(y);
            let sy: f64 = s.iter().zip(y).map(|(a, b)| a * b).sum();
            let yy: f64 = y.iter().map(|v| v * v).sum();
            if sy > 0.0 {
                h.commit(sy, yy);
            }
            // Sometimes two commits (one dropping the oldest pair) between
            // directions.
            if c % 3 == 1 {
                continue;
            }
            h.direction(&g, &mut d).unwrap();
            two_loop(&h.pairs(), h.gamma(), &g, &mut want, true, &g).unwrap();
            let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            for (a, b) in d.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-12 * scale, "{a} vs {b}");
            }
        }
        h.clear();
        let gd = h.direction(&g, &mut d).unwrap();
        assert!(d.iter().zip(&g).all(|(d, g)| d.to_bits() == (-g).to_bits()));
        assert_eq!(gd, -crate::optimize::dot(&g, &g).unwrap());
    }

    #[test]
    fn compact_direction_is_the_same_at_every_level_thread_count_and_split() {
        // Past the size below which passes run inline, so threads split it;
        // 4 pairs, the third rejected, into a history of 2: the ring wraps.
        let n = parallel::INLINE_MAX + 45;
        let pairs = stream(n, 4, 1e3, 1.0, 3, 11);
        let g = data(n, 5);
        let mut want: Option<(Vec<u64>, Vec<u32>, u64, u64)> = None;
        for level in supported_levels() {
            set_level(level).unwrap();
            for (threads, per_pass) in [(1, PAIRS_PER_PASS), (2, PAIRS_PER_PASS), (3, 1)] {
                parallel::set_num_threads(threads).unwrap();
                let (d64, gd64) = run_in_passes::<f64>(2, &pairs, &g, per_pass);
                let (d32, gd32) = run_in_passes::<f32>(2, &pairs, &g, per_pass);
                let got = (
                    d64.iter().map(|v| v.to_bits()).collect(),
                    d32.iter().map(|v| v.to_bits()).collect(),
                    gd64.to_bits(),
                    gd32.to_bits(),
                );
                match &want {
                    None => want = Some(got),
                    Some(w) => assert!(*w == got, "{level} threads={threads} {per_pass}"),
                }
            }
        }
        set_level(best_level()).unwrap();
    }

    #[test]
    fn passes_cover_the_pairs_evenly() {
        let cut = |k, p| passes(k, p).collect::<Vec<_>>();
        assert_eq!(cut(0, 16), vec![0..0]);
        assert_eq!(cut(10, 16), vec![0..10]);
        assert_eq!(cut(20, 16), vec![0..10, 10..20]);
        assert_eq!(cut(40, 16), vec![0..13, 13..26, 26..40]);
        assert_eq!(cut(5, 1).len(), 5);
    }

    #[test]
    fn direction_checks_lengths() {
        let mut h = History::<f64>::new(4, 2).unwrap();
        let mut d = vec![0.0; 4];
        assert!(h.direction(&[1.0; 3], &mut d).is_err());
        assert!(h.direction(&[1.0; 4], &mut d[..3]).is_err());
    }
}
