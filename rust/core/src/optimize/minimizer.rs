//! The driver of `minimize`: a state machine that asks its caller for
//! evaluations instead of calling the objective itself, so the caller (the
//! Python binding) can run the objective with the GIL held and everything
//! else here with the GIL released.
//!
//! ```text
//! let mut m = Minimizer::new(x0, options)?;
//! loop {
//!     match m.next()? {
//!         Request::Evaluate => { let (f, g) = fun(m.x_trial()); m.tell(f, &g)?; }
//!         Request::Direction => m.set_direction(&newton_step(m.x(), m.g()))?,
//!         Request::Iterate => if callback(m.x(), m.f()) { m.stop() },
//!         Request::Done => break,
//!     }
//! }
//! ```
//!
//! An iteration: a direction `d` (L-BFGS compact representation, dense
//! BFGS, or the caller's Newton step), a line search along it, then the
//! update of the curvature pairs. The run ends with a [`Status`] and a
//! message; a failed line search or a non-finite objective is a status,
//! never an error. Conventions follow SciPy's L-BFGS-B: convergence is
//! `max |g_i| <= gtol`, or `(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <=
//! ftol` after a step; the first step is `1 / ||d||_2` along steepest
//! descent; a failed line search with curvature information drops it and
//! retries once along steepest descent before giving up.

use super::bfgs::Dense;
use super::lbfgs::{alloc_zeroed, History};
use super::lbfgsb::{self, Boxed, TakeProjected, TrialProjected};
use super::line_search::{Backtracking, LineSearch, MoreThuente, Next};
use super::reduce::{pass, Body, In, Out};
use crate::error::{check_non_negative, Error, Result};
use crate::simd::{Lanes, Real};

/// The method that computes the search direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// L-BFGS with the last `m` pairs.
    Lbfgs { m: usize },
    /// BFGS with a dense inverse Hessian.
    Bfgs,
    /// Newton: the caller solves for the direction ([`Request::Direction`]).
    Newton,
}

/// The line search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// More-Thuente, strong Wolfe conditions.
    StrongWolfe,
    /// Armijo backtracking.
    Backtracking,
}

/// Options of a run, with `minimize`'s names and defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    pub method: Method,
    pub line_search: Search,
    pub gtol: f64,
    pub ftol: f64,
    pub max_iter: u64,
    pub max_fun: u64,
    /// Evaluations per line search.
    pub max_ls: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            method: Method::Lbfgs { m: 10 },
            line_search: Search::StrongWolfe,
            gtol: 1e-5,
            ftol: 2.2e-9,
            max_iter: 15000,
            max_fun: 15000,
            max_ls: 20,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<()> {
        check_non_negative("gtol", self.gtol)?;
        check_non_negative("ftol", self.ftol)?;
        if let Method::Lbfgs { m } = self.method {
            at_least_one("m", m as u64)?;
        }
        at_least_one("max_fun", self.max_fun)?;
        at_least_one("max_ls", self.max_ls)
    }

    /// Line search constants: L-BFGS as L-BFGS-B (c1 = 1e-3), BFGS and
    /// Newton as SciPy's BFGS (c1 = 1e-4); c2 = 0.9, xtol = 0.1.
    fn line_search(&self) -> LineSearch {
        self.line_search_to(STPMAX)
    }

    /// The line search with the largest step `stpmax`.
    fn line_search_to(&self, stpmax: f64) -> LineSearch {
        let c1 = match self.method {
            Method::Lbfgs { .. } => 1e-3,
            _ => 1e-4,
        };
        match self.line_search {
            Search::StrongWolfe => {
                LineSearch::StrongWolfe(MoreThuente::new(c1, 0.9, 0.1, 0.0, stpmax))
            }
            Search::Backtracking => LineSearch::Backtracking(Backtracking::new(c1)),
        }
    }
}

fn at_least_one(name: &str, v: u64) -> Result<()> {
    if v >= 1 {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name: name.into(),
            value: v as f64,
            expected: "an integer >= 1",
        })
    }
}

/// The largest step a line search may take (L-BFGS-B's).
pub(crate) const STPMAX: f64 = 1e10;

/// How a run ended; the values are `OptimizeResult.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Converged = 0,
    Limit = 1,
    LineSearchFailed = 2,
    Stopped = 3,
}

/// What the minimizer needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Evaluate `f` and `g` at [`Minimizer::x_trial`], then call
    /// [`Minimizer::tell`].
    Evaluate,
    /// Newton: solve for the direction at [`Minimizer::x`] (with
    /// [`Minimizer::g`]), then call [`Minimizer::set_direction`].
    Direction,
    /// An iteration is complete: `x`, `f`, `g` are the new iterate. The
    /// caller may call [`Minimizer::stop`] (a callback asked to stop).
    Iterate,
    /// The run is over: see [`Minimizer::status`].
    Done,
}

enum Dir<T> {
    Lbfgs(History<T>),
    /// L-BFGS-B: L-BFGS with bounds.
    Lbfgsb(Box<Boxed<T>>),
    Bfgs(Dense<T>),
    Newton,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    Initial,
    Direction,
    Search,
    Iterated,
    Done,
}

/// The curvature information a run ends with, for `hess_inv`.
pub enum HessInv<T> {
    /// L-BFGS pairs: `s` and `y` are `(m + 1, n)` row-major buffers, `order`
    /// the rows of the pairs, oldest first.
    Lbfgs {
        s: Vec<T>,
        y: Vec<T>,
        order: Vec<usize>,
    },
    /// The dense `n x n` inverse Hessian approximation.
    Dense(Vec<T>),
    None,
}

/// A minimization in progress. See the module docs.
pub struct Minimizer<T: Real> {
    opts: Options,
    x: Vec<T>,
    g: Vec<T>,
    f: f64,
    gmax: f64,
    xt: Vec<T>,
    gt: Vec<T>,
    ft: f64,
    gdt: f64,
    gmaxt: f64,
    d: Vec<T>,
    gd: f64,
    d_ready: bool,
    dir: Dir<T>,
    ls: LineSearch,
    /// The largest feasible step along `d` (bounds), else [`STPMAX`].
    stpmx: f64,
    stp: f64,
    ls_evals: u64,
    awaiting: bool,
    restarted: bool,
    phase: Phase,
    nit: u64,
    nfev: u64,
    restarts: u64,
    converged: Option<&'static str>,
    status: Option<Status>,
    message: String,
}

/// `xt = x + t d`.
struct Trial<T> {
    xt: Out<T>,
    x: In<T>,
    d: In<T>,
    t: T,
}

impl<T: Real> Body<T, 0> for Trial<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 0], L) {
        let x = self
            .x
            .get::<L>(i)
            .add(L::splat(self.t).mul(self.d.get::<L>(i)));
        self.xt.set(i, x);
        ([], x)
    }
}

/// `gt = g`, returning `g . d` and `max |g_i|`.
struct Take<T> {
    gt: Out<T>,
    g: In<T>,
    d: In<T>,
}

impl<T: Real> Body<T, 1> for Take<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let g = self.g.get::<L>(i);
        self.gt.set(i, g);
        ([g.mul(self.d.get::<L>(i))], super::reduce::abs::<T, L>(g))
    }
}

/// `s = xt - x`, `y = gt - g`, returning `s'y`, `y'y`, `s'g`, `s's`.
struct Pair<T> {
    s: Out<T>,
    y: Out<T>,
    x: In<T>,
    xt: In<T>,
    g: In<T>,
    gt: In<T>,
}

impl<T: Real> Body<T, 4> for Pair<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 4], L) {
        let s = self.xt.get::<L>(i).sub(self.x.get::<L>(i));
        let g = self.g.get::<L>(i);
        let y = self.gt.get::<L>(i).sub(g);
        self.s.set(i, s);
        self.y.set(i, y);
        ([s.mul(y), y.mul(y), s.mul(g), s.mul(s)], s)
    }
}

impl<T: Real> Minimizer<T> {
    /// A run from `x0`. Allocates everything up front (the L-BFGS history,
    /// or BFGS's `n x n` matrix): a size that does not fit is an error here.
    pub fn new(x0: &[T], opts: Options) -> Result<Self> {
        opts.validate()?;
        let n = x0.len();
        let dir = match opts.method {
            Method::Lbfgs { m } => Dir::Lbfgs(History::new(n, m)?),
            Method::Bfgs => Dir::Bfgs(Dense::new(n)?),
            Method::Newton => Dir::Newton,
        };
        let mut xt = alloc_zeroed(n, "the iterate")?;
        xt.copy_from_slice(x0);
        Ok(Minimizer {
            opts,
            x: alloc_zeroed(n, "the iterate")?,
            g: alloc_zeroed(n, "the gradient")?,
            f: f64::NAN,
            gmax: f64::NAN,
            xt,
            gt: alloc_zeroed(n, "the gradient")?,
            ft: f64::NAN,
            gdt: f64::NAN,
            gmaxt: f64::NAN,
            d: alloc_zeroed(n, "the search direction")?,
            gd: 0.0,
            d_ready: false,
            dir,
            ls: opts.line_search(),
            stpmx: STPMAX,
            stp: 0.0,
            ls_evals: 0,
            awaiting: false,
            restarted: false,
            phase: Phase::Start,
            nit: 0,
            nfev: 0,
            restarts: 0,
            converged: None,
            status: None,
            message: String::new(),
        })
    }

    /// A run of L-BFGS-B from `x0` (clipped into the box): `lower` and
    /// `upper` hold `-inf` / `inf` where a variable has no bound (checked by
    /// the caller: lengths, no NaN, `lower <= upper`). Without any finite
    /// bound this is the unconstrained run of [`Minimizer::new`], as
    /// L-BFGS-B is then L-BFGS.
    pub fn with_bounds(x0: &[T], opts: Options, lower: Vec<T>, upper: Vec<T>) -> Result<Self> {
        let n = x0.len();
        for (what, len) in [("lower bounds", lower.len()), ("upper bounds", upper.len())] {
            if len != n {
                return Err(Error::LengthMismatch {
                    what: what.into(),
                    expected: n,
                    got: len,
                });
            }
        }
        let Method::Lbfgs { m } = opts.method else {
            return Err(Error::InvalidChoice {
                name: "method".into(),
                value: format!("{:?}", opts.method),
                expected: "L-BFGS with bounds",
            });
        };
        let bounded = lower.iter().chain(&upper).any(|b| b.to_f64().is_finite());
        let mut run = Minimizer::new(x0, opts)?;
        if bounded {
            let boxed = Boxed::new(lower, upper, m)?;
            lbfgsb::project(&mut run.xt, boxed.lower(), boxed.upper());
            run.dir = Dir::Lbfgsb(Box::new(boxed));
        }
        Ok(run)
    }

    /// Whether the run has bounds (L-BFGS-B): then [`Minimizer::gmax`] is
    /// the projected gradient's.
    pub fn bounded(&self) -> bool {
        matches!(self.dir, Dir::Lbfgsb(_))
    }

    pub fn n(&self) -> usize {
        self.x.len()
    }
    /// The current iterate (valid once the first evaluation was told).
    pub fn x(&self) -> &[T] {
        &self.x
    }
    pub fn g(&self) -> &[T] {
        &self.g
    }
    pub fn f(&self) -> f64 {
        self.f
    }
    /// `max |g_i|` at the current iterate (of the projected gradient with
    /// bounds).
    pub fn gmax(&self) -> f64 {
        self.gmax
    }
    /// The point to evaluate after [`Request::Evaluate`].
    pub fn x_trial(&self) -> &[T] {
        &self.xt
    }
    pub fn nit(&self) -> u64 {
        self.nit
    }
    pub fn nfev(&self) -> u64 {
        self.nfev
    }
    /// Times the curvature information was dropped after a failed search.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }
    pub fn status(&self) -> Option<Status> {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Answers [`Request::Evaluate`] with `f` and `g` at the trial point.
    pub fn tell(&mut self, f: f64, g: &[T]) -> Result<()> {
        if !self.awaiting {
            return Err(protocol("tell() without an evaluation request"));
        }
        if g.len() != self.n() {
            return Err(Error::LengthMismatch {
                what: "gradient".into(),
                expected: self.n(),
                got: g.len(),
            });
        }
        let sums = if let Dir::Lbfgsb(b) = &self.dir {
            let body = TakeProjected {
                gt: Out(self.gt.as_mut_ptr()),
                g: In(g.as_ptr()),
                d: In(self.d.as_ptr()),
                x: In(self.xt.as_ptr()),
                lo: In(b.lower().as_ptr()),
                hi: In(b.upper().as_ptr()),
            };
            pass(self.n(), &body)?
        } else {
            let body = Take {
                gt: Out(self.gt.as_mut_ptr()),
                g: In(g.as_ptr()),
                d: In(self.d.as_ptr()),
            };
            pass(self.n(), &body)?
        };
        self.ft = f;
        self.gdt = sums.sum[0];
        self.gmaxt = sums.max.max(0.0);
        if sums.max.is_nan() {
            self.gmaxt = f64::NAN;
        }
        self.awaiting = false;
        Ok(())
    }

    /// Answers [`Request::Direction`] with the Newton direction.
    pub fn set_direction(&mut self, d: &[T]) -> Result<()> {
        if self.phase != Phase::Direction || !matches!(self.dir, Dir::Newton) || self.d_ready {
            return Err(protocol("set_direction() without a direction request"));
        }
        if d.len() != self.n() {
            return Err(Error::LengthMismatch {
                what: "direction".into(),
                expected: self.n(),
                got: d.len(),
            });
        }
        let body = Take {
            gt: Out(self.d.as_mut_ptr()),
            g: In(d.as_ptr()),
            d: In(self.g.as_ptr()),
        };
        self.gd = pass(self.n(), &body)?.sum[0];
        self.d_ready = true;
        Ok(())
    }

    /// Ends the run after [`Request::Iterate`] (status 3).
    pub fn stop(&mut self) {
        if self.status.is_none() {
            self.finish(Status::Stopped, "stopped by the callback".into());
        }
    }

    fn finish(&mut self, status: Status, message: String) -> Request {
        self.status = Some(status);
        self.message = message;
        self.phase = Phase::Done;
        self.awaiting = false;
        Request::Done
    }

    /// Runs until the caller is needed.
    #[allow(clippy::should_implement_trait)] // not an iterator: it can fail
    pub fn next(&mut self) -> Result<Request> {
        if self.awaiting {
            return Err(protocol("next() before tell()"));
        }
        loop {
            match self.phase {
                Phase::Start => {
                    self.phase = Phase::Initial;
                    return Ok(self.request_eval());
                }
                Phase::Initial => {
                    std::mem::swap(&mut self.x, &mut self.xt);
                    std::mem::swap(&mut self.g, &mut self.gt);
                    self.f = self.ft;
                    self.gmax = self.gmaxt;
                    if !(self.f.is_finite() && self.gmax.is_finite()) {
                        let msg = format!(
                            "the objective is not finite at x0 (f = {}, max|g_i| = {})",
                            self.f, self.gmax
                        );
                        return Ok(self.finish(Status::LineSearchFailed, msg));
                    }
                    if self.gmax <= self.opts.gtol {
                        let msg = self.converged_g();
                        return Ok(self.finish(Status::Converged, msg.into()));
                    }
                    self.phase = Phase::Direction;
                }
                Phase::Direction => {
                    if self.nit >= self.opts.max_iter {
                        let msg = format!("iteration limit reached (max_iter = {})", self.nit);
                        return Ok(self.finish(Status::Limit, msg));
                    }
                    if let Some(req) = self.begin_search()? {
                        return Ok(req);
                    }
                }
                Phase::Search => {
                    if let Some(req) = self.continue_search()? {
                        return Ok(req);
                    }
                }
                Phase::Iterated => {
                    if let Some(msg) = self.converged.take() {
                        return Ok(self.finish(Status::Converged, msg.into()));
                    }
                    self.phase = Phase::Direction;
                }
                Phase::Done => return Ok(Request::Done),
            }
        }
    }

    fn converged_g(&self) -> &'static str {
        if self.bounded() {
            CONVERGED_PG
        } else {
            CONVERGED_G
        }
    }

    fn request_eval(&mut self) -> Request {
        self.nfev += 1;
        self.awaiting = true;
        Request::Evaluate
    }

    /// Whether a steepest-descent direction is all there is (no curvature
    /// information): then the first step is scaled by `1 / ||d||`.
    fn unscaled(&self) -> bool {
        match &self.dir {
            Dir::Lbfgs(h) => h.is_empty(),
            Dir::Lbfgsb(b) => b.is_empty(),
            Dir::Bfgs(b) => b.is_identity(),
            Dir::Newton => false,
        }
    }

    fn has_memory(&self) -> bool {
        !self.unscaled() && !matches!(self.dir, Dir::Newton)
    }

    /// Drops the curvature information (H = I).
    fn forget(&mut self) {
        match &mut self.dir {
            Dir::Lbfgs(h) => h.clear(),
            Dir::Lbfgsb(b) => b.clear(),
            Dir::Bfgs(b) => b.reset(),
            Dir::Newton => {}
        }
        self.d_ready = false;
    }

    /// Computes the direction (or asks for it) and starts a line search.
    fn begin_search(&mut self) -> Result<Option<Request>> {
        let mut bounded_t0 = None;
        self.stpmx = STPMAX;
        if !self.d_ready {
            match &mut self.dir {
                Dir::Newton => return Ok(Some(Request::Direction)),
                Dir::Lbfgs(h) => self.gd = h.direction(&self.g, &mut self.d)?,
                Dir::Lbfgsb(b) => {
                    let dir =
                        b.direction(&self.x, &self.g, self.gmax, self.nit == 0, &mut self.d)?;
                    self.gd = dir.gd;
                    self.stpmx = dir.stpmx;
                    // L-BFGS-B's first step: 1 / ||d|| (within the box's
                    // step) at the first iteration unless every variable is
                    // boxed, else 1.
                    // (A unit step a rounding beyond the box's is shortened.)
                    bounded_t0 = Some(if self.nit == 0 && !b.boxed() {
                        (1.0 / dir.dnorm).min(dir.stpmx)
                    } else if dir.stpmx > 0.0 {
                        dir.stpmx.min(1.0)
                    } else {
                        1.0
                    });
                }
                Dir::Bfgs(b) => self.gd = b.update(false, 0.0, 0.0, &self.g, &mut self.d)?,
            }
        }
        self.d_ready = false;
        if !(self.gd < 0.0 && self.gd.is_finite()) {
            if self.has_memory() {
                // Rounding can make a quasi-Newton direction useless: start
                // over from steepest descent, as L-BFGS-B does.
                self.forget();
                self.restarts += 1;
                return Ok(None);
            }
            let what = if matches!(self.dir, Dir::Newton) {
                "the Newton direction"
            } else {
                "the steepest descent direction"
            };
            let msg = format!(
                "line search failed: {what} is not a descent direction (g'd = {:e})",
                self.gd
            );
            return Ok(Some(self.finish(Status::LineSearchFailed, msg)));
        }
        let t0 = if let Some(t0) = bounded_t0 {
            t0
        } else if self.unscaled() {
            (1.0 / (-self.gd).sqrt()).min(STPMAX)
        } else {
            1.0
        };
        self.ls_evals = 0;
        // A fresh search: `not_finite` may have lowered the previous one's
        // maximum step.
        self.ls = self.opts.line_search_to(self.stpmx);
        match self.ls.start(self.f, self.gd, t0) {
            Next::Evaluate(t) => Ok(Some(self.trial(t)?)),
            Next::Error(e) | Next::Warning(e) => self.fail(e),
            Next::Converged => self.fail("the line search did not start"),
        }
    }

    /// Writes `xt = x + t d` and asks for its evaluation, within max_fun.
    fn trial(&mut self, t: f64) -> Result<Request> {
        if self.nfev >= self.opts.max_fun {
            let msg = format!(
                "evaluation limit reached (max_fun = {}); x is the last iterate",
                self.opts.max_fun
            );
            return Ok(self.finish(Status::Limit, msg));
        }
        if let Dir::Lbfgsb(b) = &self.dir {
            if t == 1.0 {
                // The unit step is the subspace minimizer itself (in the box).
                crate::parallel::copy(b.target(), &mut self.xt)?;
            } else {
                let body = TrialProjected {
                    xt: Out(self.xt.as_mut_ptr()),
                    x: In(self.x.as_ptr()),
                    d: In(self.d.as_ptr()),
                    lo: In(b.lower().as_ptr()),
                    hi: In(b.upper().as_ptr()),
                    t: T::from_f64(t),
                };
                pass(self.n(), &body)?;
            }
        } else {
            let body = Trial {
                xt: Out(self.xt.as_mut_ptr()),
                x: In(self.x.as_ptr()),
                d: In(self.d.as_ptr()),
                t: T::from_f64(t),
            };
            pass(self.n(), &body)?;
        }
        self.stp = t;
        self.ls_evals += 1;
        self.phase = Phase::Search;
        Ok(self.request_eval())
    }

    fn continue_search(&mut self) -> Result<Option<Request>> {
        let finite = self.ft.is_finite() && self.gdt.is_finite() && self.gmaxt.is_finite();
        let next = if finite {
            self.ls.step(self.stp, self.ft, self.gdt)
        } else {
            self.ls.not_finite(self.stp, self.f, self.gd)
        };
        // A step the search could not certify is still taken when it
        // decreases f enough, but never one that only rounds to f.
        let acceptable =
            finite && self.ft < self.f && self.ls.sufficient_decrease(self.stp, self.ft);
        match next {
            Next::Converged => self.accept(),
            Next::Evaluate(t) => {
                if self.ls_evals >= self.opts.max_ls {
                    if acceptable {
                        return self.accept();
                    }
                    return self.fail(if finite {
                        "no step with sufficient decrease within max_ls evaluations"
                    } else {
                        "the objective is not finite at the steps tried within max_ls evaluations"
                    });
                }
                self.trial(t).map(Some)
            }
            Next::Warning(w) | Next::Error(w) => {
                if acceptable {
                    self.accept()
                } else if finite {
                    self.fail(w)
                } else {
                    self.fail("the objective is not finite at the steps tried")
                }
            }
        }
    }

    /// A line search failed: retry once from steepest descent if there was
    /// curvature information, else end with status 2.
    fn fail(&mut self, why: &str) -> Result<Option<Request>> {
        if self.has_memory() && !self.restarted {
            self.forget();
            self.restarted = true;
            self.restarts += 1;
            self.phase = Phase::Direction;
            return Ok(None);
        }
        let msg = format!("line search failed: {why}");
        Ok(Some(self.finish(Status::LineSearchFailed, msg)))
    }

    /// Takes the trial point as the new iterate and updates the curvature
    /// information.
    fn accept(&mut self) -> Result<Option<Request>> {
        let n = self.n();
        let (xp, xtp, gp, gtp) = (
            In(self.x.as_ptr()),
            In(self.xt.as_ptr()),
            In(self.g.as_ptr()),
            In(self.gt.as_ptr()),
        );
        let pair_pass = |s: &mut [T], y: &mut [T]| {
            let body = Pair {
                s: Out(s.as_mut_ptr()),
                y: Out(y.as_mut_ptr()),
                x: xp,
                xt: xtp,
                g: gp,
                gt: gtp,
            };
            pass(n, &body).map(|r| r.sum)
        };
        // L-BFGS-B's curvature guard: keep the pair if s'y > eps (-g's).
        let eps = if std::mem::size_of::<T>() == 4 {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        };
        match &mut self.dir {
            Dir::Lbfgs(h) => {
                let (s, y) = h.spare_mut();
                let [sy, yy, sg, _] = pair_pass(s, y)?;
                if sy > eps * -sg && sy.is_finite() && yy > 0.0 {
                    h.commit(sy, yy);
                }
            }
            Dir::Lbfgsb(b) => {
                let (s, y) = b.spare_mut();
                let [sy, yy, sg, ss] = pair_pass(s, y)?;
                if sy > eps * -sg && sy.is_finite() && yy > 0.0 {
                    b.commit(sy, yy, ss)?;
                }
            }
            Dir::Bfgs(b) => {
                let (s, y) = b.scratch_mut();
                let [sy, yy, sg, _] = pair_pass(s, y)?;
                let ok = sy > eps * -sg && sy.is_finite() && yy > 0.0;
                self.gd = b.update(ok, sy, yy, &self.gt, &mut self.d)?;
                self.d_ready = true;
            }
            Dir::Newton => {}
        }
        std::mem::swap(&mut self.x, &mut self.xt);
        std::mem::swap(&mut self.g, &mut self.gt);
        let f_old = self.f;
        self.f = self.ft;
        self.gmax = self.gmaxt;
        self.nit += 1;
        self.restarted = false;
        if self.gmax <= self.opts.gtol {
            self.converged = Some(self.converged_g());
        } else if f_old - self.f <= self.opts.ftol * f_old.abs().max(self.f.abs()).max(1.0) {
            self.converged = Some(CONVERGED_F);
        }
        self.phase = Phase::Iterated;
        Ok(Some(Request::Iterate))
    }

    /// The final iterate and the curvature information, consuming the run.
    pub fn into_parts(self) -> Result<(Vec<T>, Vec<T>, HessInv<T>)> {
        let hess = match self.dir {
            Dir::Lbfgs(h) => {
                let (s, y, order) = h.into_parts();
                HessInv::Lbfgs { s, y, order }
            }
            Dir::Lbfgsb(b) => {
                let (s, y, order) = b.into_parts();
                HessInv::Lbfgs { s, y, order }
            }
            Dir::Bfgs(b) => HessInv::Dense(b.into_matrix()?),
            Dir::Newton => HessInv::None,
        };
        Ok((self.x, self.g, hess))
    }
}

const CONVERGED_G: &str = "converged: max|g_i| <= gtol";
const CONVERGED_PG: &str = "converged: max|proj g_i| <= gtol";
const CONVERGED_F: &str = "converged: relative reduction of f <= ftol";

fn protocol(what: &str) -> Error {
    Error::Protocol(format!("Minimizer: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extended Rosenbrock: sum over pairs of 100 (x2 - x1^2)^2 + (1 - x1)^2.
    fn rosen(x: &[f64], g: &mut [f64]) -> f64 {
        let mut f = 0.0;
        for i in (0..x.len()).step_by(2) {
            let (a, b) = (x[i], x[i + 1]);
            let t1 = b - a * a;
            let t2 = 1.0 - a;
            f += 100.0 * t1 * t1 + t2 * t2;
            g[i] = -400.0 * a * t1 - 2.0 * t2;
            g[i + 1] = 200.0 * t1;
        }
        f
    }

    fn run(method: Method, search: Search, n: usize) -> (Status, u64, Vec<f64>) {
        let x0: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect();
        let opts = Options {
            method,
            line_search: search,
            ..Options::default()
        };
        let mut m = Minimizer::new(&x0, opts).unwrap();
        let mut g = vec![0.0; n];
        loop {
            match m.next().unwrap() {
                Request::Evaluate => {
                    let f = rosen(m.x_trial(), &mut g);
                    m.tell(f, &g).unwrap();
                }
                Request::Iterate => {}
                Request::Direction => unreachable!(),
                Request::Done => break,
            }
        }
        let status = m.status().unwrap();
        let nit = m.nit();
        (status, nit, m.into_parts().unwrap().0)
    }

    #[test]
    fn quasi_newton_methods_solve_rosenbrock() {
        for (method, search) in [
            (Method::Lbfgs { m: 10 }, Search::StrongWolfe),
            (Method::Lbfgs { m: 5 }, Search::Backtracking),
            (Method::Bfgs, Search::StrongWolfe),
            (Method::Bfgs, Search::Backtracking),
        ] {
            let (status, nit, x) = run(method, search, 100);
            assert_eq!(status, Status::Converged, "{method:?} {search:?}");
            assert!(nit < 200, "{method:?} {search:?}: {nit} iterations");
            for xi in x {
                assert!((xi - 1.0).abs() < 1e-3, "{method:?} {search:?}: {xi}");
            }
        }
    }
}
