//! L-BFGS-B: the search direction of L-BFGS under box constraints
//! `lower <= x <= upper` (Byrd, Lu, Nocedal & Zhu 1995, "A limited memory
//! algorithm for bound constrained optimization"; the steps and constants
//! of L-BFGS-B 3.0 as SciPy's `lbfgsb.c` has them).
//!
//! Each iteration, given the iterate `x` (in the box) and its gradient `g`:
//!
//! 1. The generalized Cauchy point `xcp`: the first local minimizer of the
//!    quadratic model `m(x + t d) ` along the projected steepest-descent
//!    path `P(x - t g)`, walking the breakpoints in increasing `t` (a heap,
//!    as `hpsolb`). The model's Hessian is the compact L-BFGS matrix
//!    `B = theta I - W M W'`, `W = [Y, theta S]`, with the middle matrix
//!    `M` applied through the Cholesky factor of `theta S'S + L D^-1 L'`
//!    (`bmv`, `formt`).
//! 2. Subspace minimization over the variables free at `xcp` (the direct
//!    primal method, section 5.1 of the paper): the reduced gradient
//!    `r = -Z'(g + B (xcp - x))`, the step `du = (r + Z'W K^-1 W'Z r / theta)
//!    / theta` through the `LEL'` factorization of
//!    `K = [-D - Y'ZZ'Y/theta, L_a' - R_z'; L_a - R_z, theta S'AA'S]`, then
//!    `z = P(xcp + du)`, kept only if it is a descent direction, else
//!    backtracked from `xcp` to the box (L-BFGS-B 3.0's `subsm`).
//! 3. The direction `d = z - x`, its largest feasible step `stpmx` (1 at
//!    the first iteration, as L-BFGS-B), for the line search of
//!    [`super::minimizer`].
//!
//! Unlike `lbfgsb.c`, whose `formk` updates the products over the free and
//! active sets incrementally, the products `Y'ZZ'Y`, `S'AA'S`, `S'ZZ'Y` and
//! `S'AA'Y` are recomputed every iteration in the pass that also forms `r`
//! and `W'Z r`: three passes over the pairs per iteration in all (`W'd` for
//! the Cauchy point with the new pair's products, that one, and the
//! subspace step), each a deterministic reduction ([`super::reduce`]), so
//! the iterates are bit-identical for any thread count and SIMD level. The
//! breakpoint walk and the `2m x 2m` algebra are sequential, in f64.

#![allow(clippy::needless_range_loop)] // small matrices and breakpoints by index

use super::lbfgs::alloc_zeroed;
use super::minimizer::STPMAX;
use super::reduce::{accumulate, pass, pass_n, Body, BodyN, In, Out, Term, BLOCK};
use crate::error::{Error, Result};
use crate::simd::{Lanes, Real};

/// What a direction computation gives the line search.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Direction {
    /// `g'd`.
    pub gd: f64,
    /// `||d||_2`.
    pub dnorm: f64,
    /// The largest step that keeps `x + t d` in the box.
    pub stpmx: f64,
}

/// The bounds, the last `m` pairs and the work vectors of an L-BFGS-B run.
pub struct Boxed<T> {
    n: usize,
    m: usize,
    lo: Vec<T>,
    hi: Vec<T>,
    /// Every variable has both bounds (the first step is then 1).
    boxed: bool,
    /// The pairs in a ring of `m + 1` slots (a spare for the candidate).
    s: Vec<T>,
    y: Vec<T>,
    order: Vec<usize>,
    spare: usize,
    theta: f64,
    /// By ring position (0 = oldest), `m x m` row-major: `sy[i][j] =
    /// s_i'y_j` for `i >= j`, `ss` symmetric.
    sy: Vec<f64>,
    ss: Vec<f64>,
    /// The newest pair's products with the older pairs are not computed
    /// yet (the next direction's first pass does it).
    stale: bool,
    /// The upper Cholesky factor of `theta S'S + L D^-1 L'` (`col x col`).
    wt: Vec<f64>,
    /// Per variable, as `iwhere` of L-BFGS-B: -1 unbounded, 3 fixed
    /// (`lower == upper`), 0 free, -3 free with zero gradient, 1 / 2 at
    /// its lower / upper bound in the Cauchy step.
    iwhere: Vec<i8>,
    dc: Vec<T>,
    xcp: Vec<T>,
    mask: Vec<T>,
    r: Vec<T>,
    z: Vec<T>,
    brk_t: Vec<f64>,
    brk_i: Vec<usize>,
}

/// Why an attempt at a direction gave up: a singular system (the memory is
/// then dropped and the direction recomputed, as L-BFGS-B does).
struct Singular;

impl<T: Real> Boxed<T> {
    /// The bounds (`-inf` / `inf` where there is none; checked by the
    /// caller: same length, no NaN, `lower <= upper`) and room for `m`
    /// pairs of length `n`.
    pub fn new(lower: Vec<T>, upper: Vec<T>, m: usize) -> Result<Self> {
        let n = lower.len();
        if upper.len() != n {
            return Err(Error::LengthMismatch {
                what: "upper bounds".into(),
                expected: n,
                got: upper.len(),
            });
        }
        if m == 0 {
            return Err(Error::InvalidHyperparameter {
                name: "m".into(),
                value: 0.0,
                expected: "an integer >= 1",
            });
        }
        let slots = m.saturating_add(1);
        let len = slots.saturating_mul(n);
        let mut iwhere = crate::alloc::filled(n, 0i8, "the L-BFGS-B variable states")?;
        let mut boxed = true;
        for ((w, &l), &u) in iwhere.iter_mut().zip(&lower).zip(&upper) {
            let (l, u) = (l.to_f64(), u.to_f64());
            let (has_lo, has_hi) = (l > f64::NEG_INFINITY, u < f64::INFINITY);
            boxed &= has_lo && has_hi;
            *w = if !has_lo && !has_hi {
                -1
            } else if has_lo && has_hi && u - l <= 0.0 {
                3
            } else {
                0
            };
        }
        let square = m.saturating_mul(m);
        const WHAT: &str = "the L-BFGS-B history";
        Ok(Boxed {
            n,
            m,
            lo: lower,
            hi: upper,
            boxed,
            s: alloc_zeroed(len, WHAT)?,
            y: alloc_zeroed(len, WHAT)?,
            order: crate::alloc::with_capacity(slots, WHAT)?,
            spare: 0,
            theta: 1.0,
            sy: alloc_zeroed(square, WHAT)?,
            ss: alloc_zeroed(square, WHAT)?,
            stale: false,
            wt: alloc_zeroed(square, WHAT)?,
            iwhere,
            dc: alloc_zeroed(n, "the Cauchy direction")?,
            xcp: alloc_zeroed(n, "the Cauchy point")?,
            mask: alloc_zeroed(n, "the free variables")?,
            r: alloc_zeroed(n, "the reduced gradient")?,
            z: alloc_zeroed(n, "the subspace minimizer")?,
            brk_t: crate::alloc::with_capacity(n, "the breakpoints")?,
            brk_i: crate::alloc::with_capacity(n, "the breakpoints")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn boxed(&self) -> bool {
        self.boxed
    }

    pub fn lower(&self) -> &[T] {
        &self.lo
    }

    pub fn upper(&self) -> &[T] {
        &self.hi
    }

    /// The point of the last direction (`x + d`, in the box): the trial
    /// point of a unit step.
    pub fn target(&self) -> &[T] {
        &self.z
    }

    /// Forgets every pair (`B = I`).
    pub fn clear(&mut self) {
        self.order.clear();
        self.spare = 0;
        self.theta = 1.0;
        self.stale = false;
    }

    /// The spare slot `(s, y)`, to be filled before [`Boxed::commit`].
    pub fn spare_mut(&mut self) -> (&mut [T], &mut [T]) {
        let r = self.spare * self.n..(self.spare + 1) * self.n;
        (&mut self.s[r.clone()], &mut self.y[r])
    }

    /// Adds the pair in the spare slot given `s'y`, `y'y` and `s's` (the
    /// caller has checked the curvature guard); drops the oldest when full.
    pub fn commit(&mut self, sy: f64, yy: f64, ss: f64) -> Result<()> {
        if self.stale {
            // Two pairs without a direction between them (not a path of the
            // minimizer, kept correct anyway).
            self.products(false)?;
        }
        let m = self.m;
        self.order.push(self.spare);
        if self.order.len() > m {
            self.spare = self.order.remove(0);
            for i in 0..m - 1 {
                for j in 0..m - 1 {
                    self.sy[i * m + j] = self.sy[(i + 1) * m + j + 1];
                    self.ss[i * m + j] = self.ss[(i + 1) * m + j + 1];
                }
            }
        } else {
            self.spare = self.order.len();
        }
        let q = self.order.len() - 1;
        self.sy[q * m + q] = sy;
        self.ss[q * m + q] = ss;
        self.theta = yy / sy;
        self.stale = q > 0;
        Ok(())
    }

    /// The pairs as `(m + 1, n)` buffers and their slots, oldest first.
    pub fn into_parts(self) -> (Vec<T>, Vec<T>, Vec<usize>) {
        (self.s, self.y, self.order)
    }

    fn rows(&self, buf: &[T]) -> Vec<In<T>> {
        let n = self.n;
        self.order
            .iter()
            .map(|&j| In(buf[j * n..(j + 1) * n].as_ptr()))
            .collect()
    }

    fn sy_at(&self, i: usize, j: usize) -> f64 {
        self.sy[i * self.m + j]
    }

    /// The first pass over the pairs: `Y'd` and `S'd` for the Cauchy
    /// direction `d` (when given) and the newest pair's `s_new'y_j`,
    /// `s_new's_j` (when stale). Returns `[d'd, y_0'd, s_0'd, y_1'd, ..]` (or nothing
    /// without `d`) and fills the matrices.
    fn products(&mut self, with_d: bool) -> Result<Vec<f64>> {
        let col = self.order.len();
        let (s, y) = (self.rows(&self.s), self.rows(&self.y));
        let new = if self.stale { s.last().copied() } else { None };
        let body = Gather {
            d: with_d.then_some(In(self.dc.as_ptr())),
            s: &s,
            y: &y,
            new,
        };
        let sums = pass_n(self.n, &body)?;
        let m = self.m;
        if self.stale {
            let q = col - 1;
            let base = body.lead();
            for j in 0..q {
                self.sy[q * m + j] = sums[base + 2 * j];
                self.ss[j * m + q] = sums[base + 2 * j + 1];
                self.ss[q * m + j] = sums[base + 2 * j + 1];
            }
            self.stale = false;
        }
        let lead = body.lead();
        Ok(sums[..lead].to_vec())
    }

    /// `theta S'S + L D^-1 L'` and its Cholesky factor (`formt`).
    fn formt(&mut self) -> std::result::Result<(), Singular> {
        let col = self.order.len();
        let m = self.m;
        let theta = self.theta;
        let mut t = vec![0.0; col * col];
        for i in 0..col {
            for j in i..col {
                let mut sum = 0.0;
                for k in 0..i {
                    sum += self.sy_at(i, k) * self.sy_at(j, k) / self.sy_at(k, k);
                }
                t[i * col + j] = sum + theta * self.ss[i * m + j];
            }
        }
        cholesky_upper(&mut t, col)?;
        self.wt[..col * col].copy_from_slice(&t);
        Ok(())
    }

    /// `p = M v` for the middle matrix `M` of `B` (`bmv`).
    fn bmv(&self, v: &[f64], p: &mut [f64]) -> std::result::Result<(), Singular> {
        let col = self.order.len();
        if col == 0 {
            return Ok(());
        }
        let wt = &self.wt[..col * col];
        p[col] = v[col];
        for i in 1..col {
            let mut sum = 0.0;
            for k in 0..i {
                sum += self.sy_at(i, k) * v[k] / self.sy_at(k, k);
            }
            p[col + i] = v[col + i] + sum;
        }
        solve_upper_t(wt, col, col, &mut p[col..2 * col])?;
        for i in 0..col {
            p[i] = v[i] / self.sy_at(i, i).sqrt();
        }
        solve_upper(wt, col, col, &mut p[col..2 * col])?;
        for i in 0..col {
            p[i] = -p[i] / self.sy_at(i, i).sqrt();
        }
        for i in 0..col {
            let mut sum = 0.0;
            for k in i + 1..col {
                sum += self.sy_at(k, i) * p[col + k] / self.sy_at(i, i);
            }
            p[i] += sum;
        }
        Ok(())
    }

    /// The search direction `d = z - x` at `x` (in the box) with gradient
    /// `g` and projected gradient norm `sbgnrm`; `first` at the first
    /// iteration. A singular system drops the pairs and starts over, as
    /// L-BFGS-B does (without pairs nothing is singular).
    pub(crate) fn direction(
        &mut self,
        x: &[T],
        g: &[T],
        sbgnrm: f64,
        first: bool,
        d: &mut [T],
    ) -> Result<Direction> {
        for (what, len) in [("x", x.len()), ("g", g.len()), ("d", d.len())] {
            if len != self.n {
                return Err(Error::LengthMismatch {
                    what: format!("L-BFGS-B direction: {what}"),
                    expected: self.n,
                    got: len,
                });
            }
        }
        loop {
            match self.attempt(x, g, sbgnrm, first, d)? {
                Ok(dir) => return Ok(dir),
                Err(Singular) => self.clear(),
            }
        }
    }

    fn attempt(
        &mut self,
        x: &[T],
        g: &[T],
        sbgnrm: f64,
        first: bool,
        d: &mut [T],
    ) -> Result<std::result::Result<Direction, Singular>> {
        let c = match self.cauchy(x, g, sbgnrm)? {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        let nfree = self.free_set();
        let col = self.order.len();
        if nfree > 0 && col > 0 {
            if let Err(e) = self.subspace(x, g, &c)? {
                return Ok(Err(e));
            }
        } else {
            crate::parallel::copy(&self.xcp, &mut self.z)?;
        }
        let body = Finish {
            d: Out(d.as_mut_ptr()),
            z: In(self.z.as_ptr()),
            x: In(x.as_ptr()),
            g: In(g.as_ptr()),
            lo: In(self.lo.as_ptr()),
            hi: In(self.hi.as_ptr()),
        };
        let sums = pass(self.n, &body)?;
        let stpmx = if first {
            1.0
        } else {
            (-sums.max).clamp(0.0, STPMAX)
        };
        Ok(Ok(Direction {
            gd: sums.sum[1],
            dnorm: sums.sum[0].sqrt(),
            stpmx: if stpmx.is_nan() { 0.0 } else { stpmx },
        }))
    }

    /// The generalized Cauchy point into `xcp` (`cauchy`); returns
    /// `c = W'(xcp - x)`.
    fn cauchy(
        &mut self,
        x: &[T],
        g: &[T],
        sbgnrm: f64,
    ) -> Result<std::result::Result<Vec<f64>, Singular>> {
        let n = self.n;
        let col = self.order.len();
        let col2 = 2 * col;
        let theta = self.theta;
        // The breakpoints and the direction of the projected gradient path.
        self.brk_t.clear();
        self.brk_i.clear();
        let mut free_without_break = 0usize;
        let mut bnded = true;
        if sbgnrm > 0.0 {
            for i in 0..n {
                let (xi, neggi) = (x[i].to_f64(), -g[i].to_f64());
                let (l, u) = (self.lo[i].to_f64(), self.hi[i].to_f64());
                let (has_lo, has_hi) = (l > f64::NEG_INFINITY, u < f64::INFINITY);
                let (tl, tu) = (xi - l, u - xi);
                let w = &mut self.iwhere[i];
                if *w != 3 && *w != -1 {
                    *w = if has_lo && tl <= 0.0 {
                        if neggi <= 0.0 {
                            1
                        } else {
                            0
                        }
                    } else if has_hi && tu <= 0.0 {
                        if neggi >= 0.0 {
                            2
                        } else {
                            0
                        }
                    } else if neggi.abs() <= 0.0 {
                        -3
                    } else {
                        0
                    };
                }
                if *w != 0 && *w != -1 {
                    self.dc[i] = T::ZERO;
                    continue;
                }
                self.dc[i] = T::from_f64(neggi);
                if has_lo && neggi < 0.0 {
                    self.brk_t.push(tl / -neggi);
                    self.brk_i.push(i);
                } else if has_hi && neggi > 0.0 {
                    self.brk_t.push(tu / neggi);
                    self.brk_i.push(i);
                } else {
                    free_without_break += 1;
                    if neggi.abs() > 0.0 {
                        bnded = false;
                    }
                }
            }
        }
        let sums = self.products(true)?;
        if col > 0 && self.formt().is_err() {
            return Ok(Err(Singular));
        }
        crate::parallel::copy(x, &mut self.xcp)?;
        let mut c = vec![0.0; col2];
        let nbreak = self.brk_t.len();
        if sbgnrm <= 0.0 || (nbreak == 0 && free_without_break == 0) {
            return Ok(Ok(c));
        }
        // The sums interleave the pairs: [d'd, y_0'd, s_0'd, y_1'd, ..].
        let mut p = vec![0.0; col2];
        for j in 0..col {
            p[j] = sums[1 + 2 * j];
            p[col + j] = theta * sums[2 + 2 * j];
        }
        let mut f1 = -sums[0];
        let mut f2 = -theta * f1;
        let f2_org = f2;
        let mut v = vec![0.0; col2];
        if col > 0 {
            if self.bmv(&p, &mut v).is_err() {
                return Ok(Err(Singular));
            }
            f2 -= dot(&v, &p);
        }
        let mut dtm = -f1 / f2;
        let mut tsum = 0.0;
        let mut wbp = vec![0.0; col2];
        // Breakpoints in increasing order: the smallest first by a scan,
        // then a heap (hpsolb).
        let mut nleft = nbreak;
        let mut tj = 0.0;
        let mut bkmin_at = 0usize;
        for (k, &t) in self.brk_t.iter().enumerate() {
            if k == 0 || t < self.brk_t[bkmin_at] {
                bkmin_at = k;
            }
        }
        let mut walked = 0usize;
        while nleft > 0 {
            let tj0 = tj;
            let ibp;
            if walked == 0 {
                tj = self.brk_t[bkmin_at];
                ibp = self.brk_i[bkmin_at];
            } else {
                if walked == 1 && bkmin_at != nbreak - 1 {
                    self.brk_t[bkmin_at] = self.brk_t[nbreak - 1];
                    self.brk_i[bkmin_at] = self.brk_i[nbreak - 1];
                }
                // nleft entries remain at 0 .. nleft.
                heap_pop(
                    &mut self.brk_t[..nleft],
                    &mut self.brk_i[..nleft],
                    walked == 1,
                );
                tj = self.brk_t[nleft - 1];
                ibp = self.brk_i[nleft - 1];
            }
            let dt = tj - tj0;
            if dtm < dt {
                break;
            }
            tsum += dt;
            nleft -= 1;
            walked += 1;
            let dibp = self.dc[ibp].to_f64();
            self.dc[ibp] = T::ZERO;
            let xb = x[ibp].to_f64();
            let zibp = if dibp > 0.0 {
                self.xcp[ibp] = self.hi[ibp];
                self.iwhere[ibp] = 2;
                self.hi[ibp].to_f64() - xb
            } else {
                self.xcp[ibp] = self.lo[ibp];
                self.iwhere[ibp] = 1;
                self.lo[ibp].to_f64() - xb
            };
            if nleft == 0 && nbreak == n {
                // Every variable is at a bound: xcp is the GCP.
                if col > 0 {
                    axpy(dt, &p, &mut c);
                }
                return Ok(Ok(c));
            }
            let dibp2 = dibp * dibp;
            f1 = f1 + dt * f2 + dibp2 - theta * dibp * zibp;
            f2 -= theta * dibp2;
            if col > 0 {
                axpy(dt, &p, &mut c);
                for (j, &slot) in self.order.iter().enumerate() {
                    wbp[j] = self.y[slot * n + ibp].to_f64();
                    wbp[col + j] = theta * self.s[slot * n + ibp].to_f64();
                }
                if self.bmv(&wbp, &mut v).is_err() {
                    return Ok(Err(Singular));
                }
                let (wmc, wmp, wmw) = (dot(&c, &v), dot(&p, &v), dot(&wbp, &v));
                axpy(-dibp, &wbp, &mut p);
                f1 += dibp * wmc;
                f2 += 2.0 * dibp * wmp - dibp2 * wmw;
            }
            f2 = f2.max(f64::EPSILON * f2_org);
            if nleft > 0 {
                dtm = -f1 / f2;
            } else {
                dtm = if bnded { 0.0 } else { -f1 / f2 };
                break;
            }
        }
        let dtm = if dtm > 0.0 { dtm } else { 0.0 };
        tsum += dtm;
        let body = Axpy {
            w: Out(self.xcp.as_mut_ptr()),
            u: In(self.dc.as_ptr()),
            t: T::from_f64(tsum),
        };
        pass(n, &body)?;
        if col > 0 {
            axpy(dtm, &p, &mut c);
        }
        Ok(Ok(c))
    }

    /// The free variables at the Cauchy point as a 0/1 mask; their count.
    fn free_set(&mut self) -> usize {
        let mut nfree = 0;
        for (m, &w) in self.mask.iter_mut().zip(&self.iwhere) {
            if w <= 0 {
                *m = T::ONE;
                nfree += 1;
            } else {
                *m = T::ZERO;
            }
        }
        nfree
    }

    /// Subspace minimization from `xcp` over the free variables, into `z`
    /// (`formk`, `cmprlb`, `subsm` of L-BFGS-B 3.0).
    fn subspace(
        &mut self,
        x: &[T],
        g: &[T],
        c: &[f64],
    ) -> Result<std::result::Result<(), Singular>> {
        let n = self.n;
        let col = self.order.len();
        let col2 = 2 * col;
        let theta = self.theta;
        let mut mc = vec![0.0; col2];
        if self.bmv(c, &mut mc).is_err() {
            return Ok(Err(Singular));
        }
        let (s, y) = (self.rows(&self.s), self.rows(&self.y));
        let ay: Vec<T> = mc[..col].iter().map(|&v| T::from_f64(v)).collect();
        let as_: Vec<T> = mc[col..].iter().map(|&v| T::from_f64(theta * v)).collect();
        let body = Reduced {
            r: Out(self.r.as_mut_ptr()),
            x: In(x.as_ptr()),
            g: In(g.as_ptr()),
            z: In(self.xcp.as_ptr()),
            mask: In(self.mask.as_ptr()),
            s: &s,
            y: &y,
            ay: &ay,
            as_: &as_,
            neg_theta: T::from_f64(-theta),
        };
        let sums = pass_n(n, &body)?;
        // K's blocks from the sums, then its LEL' factorization (formk).
        let at = |i: usize, j: usize| 2 * col + 4 * tri(col, i, j);
        let mut wn = vec![0.0; col2 * col2];
        for iy in 0..col {
            for jy in 0..=iy {
                let k = at(jy, iy);
                wn[jy * col2 + iy] = sums[k] / theta;
                wn[(col + jy) * col2 + col + iy] = sums[k + 1] * theta;
            }
            for jy in 0..iy {
                // -L_a: s_iy'A y_jy, iy > jy.
                wn[jy * col2 + col + iy] = -sums[at(jy, iy) + 3];
            }
            for jy in iy..col {
                // R_z: s_iy'Z y_jy, iy <= jy.
                wn[jy * col2 + col + iy] = sums[at(iy, jy) + 2];
            }
            wn[iy * col2 + iy] += self.sy_at(iy, iy);
        }
        if factor_k(&mut wn, col).is_err() {
            return Ok(Err(Singular));
        }
        let mut wv = vec![0.0; col2];
        for i in 0..col {
            wv[i] = sums[2 * i];
            wv[col + i] = theta * sums[2 * i + 1];
        }
        if solve_upper_t(&wn, col2, col2, &mut wv).is_err() {
            return Ok(Err(Singular));
        }
        for v in &mut wv[..col] {
            *v = -*v;
        }
        if solve_upper(&wn, col2, col2, &mut wv).is_err() {
            return Ok(Err(Singular));
        }
        let cy: Vec<T> = wv[..col].iter().map(|&v| T::from_f64(v / theta)).collect();
        let cs: Vec<T> = wv[col..].iter().map(|&v| T::from_f64(v)).collect();
        let body = Step {
            du: Out(self.r.as_mut_ptr()),
            z: Out(self.z.as_mut_ptr()),
            xcp: In(self.xcp.as_ptr()),
            x: In(x.as_ptr()),
            g: In(g.as_ptr()),
            mask: In(self.mask.as_ptr()),
            lo: In(self.lo.as_ptr()),
            hi: In(self.hi.as_ptr()),
            s: &s,
            y: &y,
            cy: &cy,
            cs: &cs,
            inv_theta: T::from_f64(1.0 / theta),
        };
        let sums = pass(n, &body)?;
        let hit_bound = sums.max > 0.0;
        if hit_bound && sums.sum[0] > 0.0 {
            // Not a descent direction: from xcp along du, back to the box.
            self.backtrack();
        }
        Ok(Ok(()))
    }

    /// `z = xcp + alpha du` with the largest `alpha <= 1` that stays in the
    /// box (the end of `subsm`).
    fn backtrack(&mut self) {
        let mut alpha = 1.0f64;
        let mut ibd = None;
        for i in 0..self.n {
            if self.mask[i] == T::ZERO {
                continue;
            }
            let dk = self.r[i].to_f64();
            let xk = self.xcp[i].to_f64();
            let (l, u) = (self.lo[i].to_f64(), self.hi[i].to_f64());
            let mut t = alpha;
            if dk < 0.0 && l > f64::NEG_INFINITY {
                let room = l - xk;
                if room >= 0.0 {
                    t = 0.0;
                } else if dk * alpha < room {
                    t = room / dk;
                }
            } else if dk > 0.0 && u < f64::INFINITY {
                let room = u - xk;
                if room <= 0.0 {
                    t = 0.0;
                } else if dk * alpha > room {
                    t = room / dk;
                }
            }
            if t < alpha {
                alpha = t;
                ibd = Some(i);
            }
        }
        if alpha < 1.0 {
            if let Some(i) = ibd {
                let dk = self.r[i].to_f64();
                if dk > 0.0 {
                    self.xcp[i] = self.hi[i];
                    self.r[i] = T::ZERO;
                } else if dk < 0.0 {
                    self.xcp[i] = self.lo[i];
                    self.r[i] = T::ZERO;
                }
            }
        }
        let a = T::from_f64(alpha);
        for i in 0..self.n {
            self.z[i] = if self.mask[i] == T::ZERO {
                self.xcp[i]
            } else {
                self.xcp[i].add(a.mul(self.r[i]))
            };
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(t: f64, p: &[f64], c: &mut [f64]) {
    for (c, p) in c.iter_mut().zip(p) {
        *c += t * p;
    }
}

/// Index of `(i, j)`, `i <= j`, in the row-major upper triangle of `k x k`
/// (rows before `i` hold `i k - i (i - 1) / 2` entries).
fn tri(k: usize, i: usize, j: usize) -> usize {
    i * k - (i * i - i) / 2 + (j - i)
}

/// In-place upper Cholesky factor `A = U'U` of the symmetric `k x k`
/// row-major `a` (upper triangle read).
fn cholesky_upper(a: &mut [f64], k: usize) -> std::result::Result<(), Singular> {
    cholesky_upper_ld(a, k, k, 0)
}

/// Cholesky of the `k x k` block at `(off, off)` of a row-major matrix of
/// leading dimension `ld`.
fn cholesky_upper_ld(
    a: &mut [f64],
    k: usize,
    ld: usize,
    off: usize,
) -> std::result::Result<(), Singular> {
    let at = |i: usize, j: usize| (off + i) * ld + off + j;
    for j in 0..k {
        let mut s = a[at(j, j)];
        for p in 0..j {
            s -= a[at(p, j)] * a[at(p, j)];
        }
        if s.is_nan() || s <= 0.0 || s.is_infinite() {
            return Err(Singular);
        }
        let djj = s.sqrt();
        a[at(j, j)] = djj;
        for i in j + 1..k {
            let mut s = a[at(j, i)];
            for p in 0..j {
                s -= a[at(p, j)] * a[at(p, i)];
            }
            a[at(j, i)] = s / djj;
        }
    }
    Ok(())
}

/// Solves `U' x = b` in place for the upper triangular `k x k` `U` (leading
/// dimension `ld`); a zero diagonal is singular.
fn solve_upper_t(
    u: &[f64],
    k: usize,
    ld: usize,
    b: &mut [f64],
) -> std::result::Result<(), Singular> {
    for i in 0..k {
        let mut s = b[i];
        for p in 0..i {
            s -= u[p * ld + i] * b[p];
        }
        let d = u[i * ld + i];
        if d == 0.0 {
            return Err(Singular);
        }
        b[i] = s / d;
    }
    Ok(())
}

/// Solves `U x = b` in place (see [`solve_upper_t`]).
fn solve_upper(u: &[f64], k: usize, ld: usize, b: &mut [f64]) -> std::result::Result<(), Singular> {
    for i in (0..k).rev() {
        let mut s = b[i];
        for p in i + 1..k {
            s -= u[i * ld + p] * b[p];
        }
        let d = u[i * ld + i];
        if d == 0.0 {
            return Err(Singular);
        }
        b[i] = s / d;
    }
    Ok(())
}

/// The `LEL'` factorization of `K` (the end of `formk`), in place on the
/// `2 col x 2 col` row-major `wn` (upper triangle): Cholesky of the upper
/// left block, `U11^-T` times the upper right block, Cholesky of the lower
/// right block plus that block's Gram matrix.
fn factor_k(wn: &mut [f64], col: usize) -> std::result::Result<(), Singular> {
    let col2 = 2 * col;
    cholesky_upper_ld(wn, col, col2, 0)?;
    // Solve U11' X = B for the upper right block, column by column.
    for j in col..col2 {
        for i in 0..col {
            let mut s = wn[i * col2 + j];
            for p in 0..i {
                s -= wn[p * col2 + i] * wn[p * col2 + j];
            }
            wn[i * col2 + j] = s / wn[i * col2 + i];
        }
    }
    for is in col..col2 {
        for js in is..col2 {
            let mut s = 0.0;
            for p in 0..col {
                s += wn[p * col2 + is] * wn[p * col2 + js];
            }
            wn[is * col2 + js] += s;
        }
    }
    cholesky_upper_ld(wn, col, col2, col)
}

/// Pops the smallest of the heap `t[..len]` (built first when `build`)
/// into `t[len - 1]`, the rest staying a heap in `t[..len - 1]` (`hpsolb`).
fn heap_pop(t: &mut [f64], idx: &mut [usize], build: bool) {
    let n = t.len();
    if n == 0 {
        return;
    }
    // 1-based as hpsolb: the heap is t[1 ..= n - 1] after the build; the
    // element at position n is sifted in when the top leaves.
    let last = n - 1;
    if build {
        for k in 2..=last + 1 {
            let (ddum, indxin) = (t[k - 1], idx[k - 1]);
            let mut i = k;
            while i > 1 {
                let j = i / 2;
                if ddum < t[j - 1] {
                    t[i - 1] = t[j - 1];
                    idx[i - 1] = idx[j - 1];
                    i = j;
                } else {
                    break;
                }
            }
            t[i - 1] = ddum;
            idx[i - 1] = indxin;
        }
    }
    if last > 0 {
        let (out, indxout) = (t[0], idx[0]);
        let (ddum, indxin) = (t[last], idx[last]);
        let mut i = 1;
        loop {
            let mut j = i + i;
            if j <= last {
                if t[j] < t[j - 1] {
                    j += 1;
                }
                if t[j - 1] < ddum {
                    t[i - 1] = t[j - 1];
                    idx[i - 1] = idx[j - 1];
                    i = j;
                } else {
                    break;
                }
            } else {
                break;
            }
        }
        t[i - 1] = ddum;
        idx[i - 1] = indxin;
        t[last] = out;
        idx[last] = indxout;
    }
}

/// `w = w + t u`.
struct Axpy<T> {
    w: Out<T>,
    u: In<T>,
    t: T,
}

impl<T: Real> Body<T, 0> for Axpy<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let w = self
            .w
            .get::<L>(i)
            .add(L::splat(self.t).mul(self.u.get::<L>(i)));
        self.w.set(i, w);
        ([], w)
    }
}

/// The first pass: `[d'd, y_j'd.., s_j'd..]` (with `d`), then per older
/// pair `[s_new'y_j, s_new's_j]` (with `new`).
struct Gather<'a, T> {
    d: Option<In<T>>,
    s: &'a [In<T>],
    y: &'a [In<T>],
    new: Option<In<T>>,
}

impl<T> Gather<'_, T> {
    fn lead(&self) -> usize {
        if self.d.is_some() {
            1 + 2 * self.s.len()
        } else {
            0
        }
    }
}

impl<T: Real> BodyN<T> for Gather<'_, T> {
    fn sums(&self) -> usize {
        let older = if self.new.is_some() {
            2 * (self.s.len() - 1)
        } else {
            0
        };
        self.lead() + older
    }

    #[inline(always)]
    unsafe fn add<L: Lanes<T>>(&self, start: usize, len: usize, acc: &mut [L]) {
        let regs = BLOCK / L::N;
        let col = self.s.len();
        let mut k = 0;
        if let Some(d) = self.d {
            accumulate::<T, L, 1>(
                start,
                len,
                &mut acc[..regs],
                #[inline(always)]
                |i| {
                    let d = d.get::<L>(i);
                    [d.mul(d)]
                },
            );
            k = 1;
            for (&s, &y) in self.s.iter().zip(self.y) {
                accumulate::<T, L, 2>(
                    start,
                    len,
                    &mut acc[k * regs..(k + 2) * regs],
                    #[inline(always)]
                    |i| {
                        let d = d.get::<L>(i);
                        [y.get::<L>(i).mul(d), s.get::<L>(i).mul(d)]
                    },
                );
                k += 2;
            }
        }
        if let Some(sn) = self.new {
            for j in 0..col - 1 {
                let (s, y) = (self.s[j], self.y[j]);
                accumulate::<T, L, 2>(
                    start,
                    len,
                    &mut acc[k * regs..(k + 2) * regs],
                    #[inline(always)]
                    |i| {
                        let sn = sn.get::<L>(i);
                        [sn.mul(y.get::<L>(i)), sn.mul(s.get::<L>(i))]
                    },
                );
                k += 2;
            }
        }
    }
}

/// The reduced gradient `r = Z'(-theta (xcp - x) - g + W M c)` (written,
/// zero off the free set) and the sums `[y_i'r, s_i'r]` per pair, then per
/// `i <= j`: `[y_i'Z y_j, s_i'A s_j, s_i'Z y_j, s_j'A y_i]`.
struct Reduced<'a, T> {
    r: Out<T>,
    x: In<T>,
    g: In<T>,
    z: In<T>,
    mask: In<T>,
    s: &'a [In<T>],
    y: &'a [In<T>],
    ay: &'a [T],
    as_: &'a [T],
    neg_theta: T,
}

impl<T: Real> BodyN<T> for Reduced<'_, T> {
    fn sums(&self) -> usize {
        let col = self.s.len();
        2 * col + 4 * (col * (col + 1) / 2)
    }

    #[inline(always)]
    unsafe fn add<L: Lanes<T>>(&self, start: usize, len: usize, acc: &mut [L]) {
        let regs = BLOCK / L::N;
        let col = self.s.len();
        let zero = L::splat(T::ZERO);
        let mut i = start;
        while i < start + len {
            let mut w = self
                .z
                .get::<L>(i)
                .sub(self.x.get::<L>(i))
                .mul(L::splat(self.neg_theta))
                .sub(self.g.get::<L>(i));
            for j in 0..col {
                w = w.add(self.y[j].get::<L>(i).mul(L::splat(self.ay[j])));
                w = w.add(self.s[j].get::<L>(i).mul(L::splat(self.as_[j])));
            }
            let free = self.mask.get::<L>(i);
            self.r.set(i, free.sign_select(w, zero, zero, zero));
            i += L::N;
        }
        let r = In(self.r.0 as *const T);
        for j in 0..col {
            let term = WithR {
                r,
                s: self.s[j],
                y: self.y[j],
            };
            accumulate::<T, L, 2>(start, len, &mut acc[2 * j * regs..(2 * j + 2) * regs], term);
        }
        for a in 0..col {
            for b in a..col {
                let k = 2 * col + 4 * tri(col, a, b);
                let term = Split {
                    mask: self.mask,
                    sa: self.s[a],
                    ya: self.y[a],
                    sb: self.s[b],
                    yb: self.y[b],
                };
                accumulate::<T, L, 4>(start, len, &mut acc[k * regs..(k + 4) * regs], term);
            }
        }
    }
}

/// `[y'r, s'r]` of one pair.
struct WithR<T> {
    r: In<T>,
    s: In<T>,
    y: In<T>,
}

impl<T: Real, L: Lanes<T>> Term<L, 2> for WithR<T> {
    #[inline(always)]
    unsafe fn at(&self, e: usize) -> [L; 2] {
        let r = self.r.get::<L>(e);
        [self.y.get::<L>(e).mul(r), self.s.get::<L>(e).mul(r)]
    }
}

/// `[y_a'Z y_b, s_a'A s_b, s_a'Z y_b, s_b'A y_a]` of the pairs `a <= b`
/// (`mask` is 1 on the free set `Z`, 0 on the active set `A`).
struct Split<T> {
    mask: In<T>,
    sa: In<T>,
    ya: In<T>,
    sb: In<T>,
    yb: In<T>,
}

impl<T: Real, L: Lanes<T>> Term<L, 4> for Split<T> {
    #[inline(always)]
    unsafe fn at(&self, e: usize) -> [L; 4] {
        let f = self.mask.get::<L>(e);
        let act = L::splat(T::ONE).sub(f);
        let (sa, ya, sb, yb) = (
            self.sa.get::<L>(e),
            self.ya.get::<L>(e),
            self.sb.get::<L>(e),
            self.yb.get::<L>(e),
        );
        [
            f.mul(ya).mul(yb),
            act.mul(sa).mul(sb),
            f.mul(sa).mul(yb),
            act.mul(sb).mul(ya),
        ]
    }
}

/// The subspace step `du = (r + Z'(Y cy + S cs)) / theta` (written over
/// `r`) and `z = P(xcp + du)` on the free set (`xcp` elsewhere); sums
/// `(z - x)'g`, maximum 1 where a free variable lands on a bound.
struct Step<'a, T> {
    du: Out<T>,
    z: Out<T>,
    xcp: In<T>,
    x: In<T>,
    g: In<T>,
    mask: In<T>,
    lo: In<T>,
    hi: In<T>,
    s: &'a [In<T>],
    y: &'a [In<T>],
    cy: &'a [T],
    cs: &'a [T],
    inv_theta: T,
}

impl<T: Real> Body<T, 1> for Step<'_, T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let zero = L::splat(T::ZERO);
        let one = L::splat(T::ONE);
        let free = self.mask.get::<L>(i);
        let mut w = self.du.get::<L>(i);
        for j in 0..self.s.len() {
            w = w.add(self.y[j].get::<L>(i).mul(L::splat(self.cy[j])));
            w = w.add(self.s[j].get::<L>(i).mul(L::splat(self.cs[j])));
        }
        let du = free.sign_select(w.mul(L::splat(self.inv_theta)), zero, zero, zero);
        self.du.set(i, du);
        let xcp = self.xcp.get::<L>(i);
        let (lo, hi) = (self.lo.get::<L>(i), self.hi.get::<L>(i));
        let moved = lo.maximum(xcp.add(du)).minimum(hi);
        let z = free.sign_select(moved, xcp, xcp, xcp);
        self.z.set(i, z);
        // 1 where a free z equals a bound.
        let at_lo = z.sub(lo).sign_select(zero, zero, one, zero);
        let at_hi = hi.sub(z).sign_select(zero, zero, one, zero);
        let hit = free.sign_select(at_lo.maximum(at_hi), zero, zero, zero);
        ([z.sub(self.x.get::<L>(i)).mul(self.g.get::<L>(i))], hit)
    }
}

/// `d = z - x`; sums `d'd`, `g'd`; maximum `-t_i`, `t_i` the step at which
/// `x_i + t d_i` meets its bound (`inf` where it never does).
struct Finish<T> {
    d: Out<T>,
    z: In<T>,
    x: In<T>,
    g: In<T>,
    lo: In<T>,
    hi: In<T>,
}

impl<T: Real> Body<T, 2> for Finish<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 2], L) {
        let x = self.x.get::<L>(i);
        let d = self.z.get::<L>(i).sub(x);
        self.d.set(i, d);
        let inf = L::splat(T::from_f64(f64::INFINITY));
        let up = self.hi.get::<L>(i).sub(x).div(d);
        let down = self.lo.get::<L>(i).sub(x).div(d);
        let t = d.sign_select(up, down, inf, inf);
        ([d.mul(d), self.g.get::<L>(i).mul(d)], t.neg())
    }
}

/// `gt = g`, returning `g'd` and the projected gradient's `max |pg_i|` at
/// `x` (the bounded version of the minimizer's `Take`).
pub(crate) struct TakeProjected<T> {
    pub gt: Out<T>,
    pub g: In<T>,
    pub d: In<T>,
    pub x: In<T>,
    pub lo: In<T>,
    pub hi: In<T>,
}

impl<T: Real> Body<T, 1> for TakeProjected<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let g = self.g.get::<L>(i);
        self.gt.set(i, g);
        let x = self.x.get::<L>(i);
        let pos = x.sub(self.lo.get::<L>(i)).minimum(g);
        let neg = x.sub(self.hi.get::<L>(i)).maximum(g);
        let pg = g.sign_select(pos, neg, g, g);
        ([g.mul(self.d.get::<L>(i))], pg.abs())
    }
}

/// `xt = P(x + t d)`, the projection onto the box.
pub(crate) struct TrialProjected<T> {
    pub xt: Out<T>,
    pub x: In<T>,
    pub d: In<T>,
    pub lo: In<T>,
    pub hi: In<T>,
    pub t: T,
}

impl<T: Real> Body<T, 0> for TrialProjected<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let v = self
            .x
            .get::<L>(i)
            .add(L::splat(self.t).mul(self.d.get::<L>(i)));
        let v = self.lo.get::<L>(i).maximum(v).minimum(self.hi.get::<L>(i));
        self.xt.set(i, v);
        ([], v)
    }
}

/// `x = P(x)`: each entry clipped into `[lo, hi]` (L-BFGS-B's `active`).
pub(crate) fn project<T: Real>(x: &mut [T], lo: &[T], hi: &[T]) {
    for ((x, &l), &u) in x.iter_mut().zip(lo).zip(hi) {
        if *x < l {
            *x = l;
        } else if *x > u {
            *x = u;
        }
    }
}
