//! The driver of `minimize(method="trust-ncg")`: the Steihaug-Toint
//! truncated conjugate gradient trust-region method, as a state machine
//! that asks its caller for evaluations and Hessian-vector products (like
//! [`super::minimizer::Minimizer`]), so that the caller can run the
//! objective and `hessp` with the GIL held and everything else here with
//! it released.
//!
//! ```text
//! let mut t = TrustNcg::new(x0, options)?;
//! loop {
//!     match t.next()? {
//!         TrustRequest::Evaluate => { let (f, g) = fun(t.x_trial()); t.tell(f, &g)?; }
//!         TrustRequest::HessVec => t.tell_hessp(&hessp(t.x(), t.hess_vector()))?,
//!         TrustRequest::Iterate => if callback(t.x(), t.f()) { t.stop() },
//!         TrustRequest::Done => break,
//!     }
//! }
//! ```
//!
//! The algorithm is SciPy's (`scipy/optimize/_trustregion.py` and
//! `_trustregion_ncg.py`; Nocedal & Wright, Algorithms 4.1 and 7.2). An
//! iteration solves the model `m(p) = f + g'p + p'Hp / 2` inside
//! `||p|| <= radius` by CG from `z = 0`, `r = g`, `d = -g`, stopping at
//!
//! - `||r|| < min(0.5, sqrt(||g||)) ||g||`: the step is `z`;
//! - `d'Hd <= 0` (negative curvature): the step is whichever of the two
//!   points `z + t d` on the boundary has the lower model value;
//! - `||z + alpha d|| >= radius`: the step is `z + t d` on the boundary,
//!   `t >= 0`;
//!
//! then takes `rho = (f(x) - f(x + p)) / (m(0) - m(p))`: `rho < 0.25`
//! shrinks the radius by 4, `rho > 0.75` with a step on the boundary
//! doubles it (at most `max_trust_radius`), and the step is accepted when
//! `rho > eta`. Every iteration counts in `nit` and reaches the callback,
//! accepted or not, as in SciPy.
//!
//! Where it differs from SciPy, on purpose:
//!
//! - Convergence is `max |g_i| <= gtol` (as every method of `minimize`;
//!   SciPy takes `||g||_2 < gtol`), checked at `x0` and after each
//!   accepted step.
//! - The model value at the step is computed from CG's residual, not by
//!   one more `hessp` call (SciPy calls `hessp` once more per iteration,
//!   and twice more at negative curvature): with `r = g + Hz`,
//!   `m(z) - f = (g + r)'z / 2`, and for `z + t d`, add
//!   `t r'd + t^2 d'Hd / 2`. `nhev` is therefore smaller than SciPy's.
//! - A step whose predicted reduction is not positive ends the run (status
//!   2, SciPy's message) before `f` is evaluated there (SciPy evaluates it
//!   first): the iterates are the same, one evaluation fewer.
//! - A non-finite `f` or gradient at a proposed point counts as `rho =
//!   -inf` (shrink, reject) rather than looping; a radius below
//!   `f64::EPSILON * max(1, ||x||)` ends the run with status 2; so does a
//!   non-finite `hessp` result, a non-finite objective at `x0`, or a CG
//!   scalar that is not finite. None of these is an error.
//! - `max_iter` and `max_fun` give status 1, and `max_fun` is never
//!   exceeded (a proposal at the limit is not evaluated).
//! - CG stops after `10 n + 100` products (SciPy's loop has no bound), with
//!   the step `z` it has: in exact arithmetic CG ends within `n`, and in
//!   floating point within a few `n` on ill-conditioned problems (about
//!   `4n` for a condition number of 1e6), so this only keeps a run whose
//!   rounding makes CG stagnate from calling `hessp` forever.
//! - `0 < initial_trust_radius <= max_trust_radius` (SciPy wants `<`).
//!
//! Every vector operation (the CG updates, the dot products and norms,
//! `max |g_i|`) is a deterministic pass ([`super::reduce`]), so a run is
//! bit-identical for any thread count and SIMD level; scalars are f64 and
//! rounded to the element type where they multiply a vector.

use super::lbfgs::alloc_zeroed;
use super::minimizer::Status;
use super::reduce::{self, abs, pass, Body, In, Out};
use crate::error::{check_non_negative, check_range, Error, Result};
use crate::simd::{Lanes, Real};

/// Options of a trust-ncg run, with `minimize`'s names and SciPy's radius
/// defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrustOptions {
    pub gtol: f64,
    pub max_iter: u64,
    pub max_fun: u64,
    pub initial_trust_radius: f64,
    pub max_trust_radius: f64,
    /// Steps with `rho > eta` are accepted; `0 <= eta < 0.25`.
    pub eta: f64,
}

impl Default for TrustOptions {
    fn default() -> Self {
        TrustOptions {
            gtol: 1e-5,
            max_iter: 15000,
            max_fun: 15000,
            initial_trust_radius: 1.0,
            max_trust_radius: 1000.0,
            eta: 0.15,
        }
    }
}

impl TrustOptions {
    pub fn validate(&self) -> Result<()> {
        check_non_negative("gtol", self.gtol)?;
        if self.max_fun < 1 {
            return Err(Error::InvalidHyperparameter {
                name: "max_fun".into(),
                value: self.max_fun as f64,
                expected: "an integer >= 1",
            });
        }
        check_range("eta", self.eta, 0.0, 0.25, true, "a number in [0, 0.25)")?;
        let max = self.max_trust_radius;
        if !(max > 0.0 && max.is_finite()) {
            return Err(Error::InvalidHyperparameter {
                name: "max_trust_radius".into(),
                value: max,
                expected: "a finite number > 0",
            });
        }
        let init = self.initial_trust_radius;
        if !(init > 0.0 && init <= max) {
            return Err(Error::InvalidHyperparameter {
                name: "initial_trust_radius".into(),
                value: init,
                expected: "a number in (0, max_trust_radius]",
            });
        }
        Ok(())
    }
}

/// What the trust-region run needs from its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustRequest {
    /// Evaluate `f` and `g` at [`TrustNcg::x_trial`], then call
    /// [`TrustNcg::tell`].
    Evaluate,
    /// Compute `H p`, the Hessian at [`TrustNcg::x`] times
    /// `p =` [`TrustNcg::hess_vector`], then call [`TrustNcg::tell_hessp`].
    HessVec,
    /// An iteration is complete (its step accepted or not): `x`, `f`, `g`
    /// are the iterate. The caller may call [`TrustNcg::stop`].
    Iterate,
    /// The run is over: see [`TrustNcg::status`].
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Start,
    Initial,
    Outer,
    Curvature,
    Trial,
    Iterated,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Evaluation,
    Product,
}

/// A trust-ncg run in progress. See the module docs.
pub struct TrustNcg<T: Real> {
    opts: TrustOptions,
    /// The iterate, its gradient, `f`, `max |g_i|`, `g'g` and `x'x`.
    x: Vec<T>,
    g: Vec<T>,
    f: f64,
    gmax: f64,
    gg: f64,
    xx: f64,
    /// The proposed point and what was told there.
    xt: Vec<T>,
    gt: Vec<T>,
    ft: f64,
    gmaxt: f64,
    ggt: f64,
    xxt: f64,
    /// CG: the iterate `z`, the residual `r = g + Hz`, the direction `d`
    /// and `H d`; `zn`, `rn` the next `z`, `r`.
    z: Vec<T>,
    r: Vec<T>,
    zn: Vec<T>,
    rn: Vec<T>,
    d: Vec<T>,
    hd: Vec<T>,
    /// CG scalars: `z'z`, `r'r`, `g'z`, `r'z` (for `m(z)`), `d'd`, `z'd`,
    /// `r'd`, `d'Hd`, `max |(Hd)_i|`; the stopping tolerance and the
    /// number of products of this subproblem.
    zz: f64,
    rr: f64,
    gz: f64,
    rz: f64,
    dd: f64,
    zd: f64,
    rd: f64,
    dhd: f64,
    hdmax: f64,
    tolerance: f64,
    products: u64,
    cg_limit: u64,
    /// The proposal: its predicted reduction `m(0) - m(p)`, and whether it
    /// lies on the boundary.
    predicted: f64,
    on_boundary: bool,
    radius: f64,
    awaiting: Awaiting,
    phase: Phase,
    nit: u64,
    nfev: u64,
    nhev: u64,
    converged: bool,
    status: Option<Status>,
    message: String,
}

/// `gt = g`, returning `g'g` and `max |g_i|`.
struct Take<T> {
    gt: Out<T>,
    g: In<T>,
}

impl<T: Real> Body<T, 1> for Take<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let g = self.g.get::<L>(i);
        self.gt.set(i, g);
        ([g.mul(g)], abs::<T, L>(g))
    }
}

/// The start of CG: `z = 0`, `r = g`, `d = -g`, returning `d'd` and
/// `r'd`.
struct Start<T> {
    z: Out<T>,
    r: Out<T>,
    d: Out<T>,
    g: In<T>,
}

impl<T: Real> Body<T, 2> for Start<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 2], L) {
        let g = self.g.get::<L>(i);
        let d = g.neg();
        self.z.set(i, L::splat(T::ZERO));
        self.r.set(i, g);
        self.d.set(i, d);
        ([d.mul(d), g.mul(d)], d)
    }
}

/// `hd = H d` (the caller's product), returning `d'Hd` and
/// `max |(Hd)_i|`.
struct Curvature<T> {
    hd: Out<T>,
    hp: In<T>,
    d: In<T>,
}

impl<T: Real> Body<T, 1> for Curvature<T> {
    const MAX: bool = true;

    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let hp = self.hp.get::<L>(i);
        self.hd.set(i, hp);
        ([self.d.get::<L>(i).mul(hp)], abs::<T, L>(hp))
    }
}

/// A CG step: `zn = z + alpha d`, `rn = r + alpha H d`, returning
/// `zn'zn`, `rn'rn`, `g'zn` and `rn'zn`.
struct Advance<T> {
    zn: Out<T>,
    rn: Out<T>,
    z: In<T>,
    r: In<T>,
    d: In<T>,
    hd: In<T>,
    g: In<T>,
    alpha: T,
}

impl<T: Real> Body<T, 4> for Advance<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 4], L) {
        let a = L::splat(self.alpha);
        let zn = self.z.get::<L>(i).add(a.mul(self.d.get::<L>(i)));
        let rn = self.r.get::<L>(i).add(a.mul(self.hd.get::<L>(i)));
        self.zn.set(i, zn);
        self.rn.set(i, rn);
        (
            [
                zn.mul(zn),
                rn.mul(rn),
                self.g.get::<L>(i).mul(zn),
                rn.mul(zn),
            ],
            zn,
        )
    }
}

/// The next direction `d = -r + beta d` (`z`, `r` the new iterate and
/// residual), returning `d'd`, `z'd` and `r'd`.
struct Turn<T> {
    d: Out<T>,
    z: In<T>,
    r: In<T>,
    beta: T,
}

impl<T: Real> Body<T, 3> for Turn<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 3], L) {
        let r = self.r.get::<L>(i);
        let d = r.neg().add(L::splat(self.beta).mul(self.d.get::<L>(i)));
        self.d.set(i, d);
        ([d.mul(d), self.z.get::<L>(i).mul(d), r.mul(d)], d)
    }
}

/// The proposed point `xt = x + p`, `p = z` or `p = z + t d` (rounded as
/// SciPy's `x + (z + t * d)`), returning `xt'xt`.
struct Propose<T> {
    xt: Out<T>,
    x: In<T>,
    z: In<T>,
    d: In<T>,
    t: Option<T>,
}

impl<T: Real> Body<T, 1> for Propose<T> {
    #[inline(always)]
    unsafe fn at<L: Lanes<T>>(&self, i: usize) -> ([L; 1], L) {
        let mut p = self.z.get::<L>(i);
        if let Some(t) = self.t {
            p = p.add(L::splat(t).mul(self.d.get::<L>(i)));
        }
        let xt = self.x.get::<L>(i).add(p);
        self.xt.set(i, xt);
        ([xt.mul(xt)], xt)
    }
}

/// The two `t` of `||z + t d|| = radius`, low first (SciPy's
/// `get_boundaries_intersections`, in f64, with the root of the larger
/// magnitude computed first to avoid cancellation), or `None` when they
/// are not finite numbers.
fn boundary(zz: f64, zd: f64, dd: f64, radius: f64) -> Option<(f64, f64)> {
    let a = dd;
    let b = 2.0 * zd;
    let c = zz - radius * radius;
    let disc = b * b - 4.0 * a * c;
    if !(a > 0.0 && disc >= 0.0) {
        return None;
    }
    let aux = b + disc.sqrt().copysign(b);
    let ta = -aux / (2.0 * a);
    let tb = -2.0 * c / aux;
    if !(ta.is_finite() && tb.is_finite()) {
        return None;
    }
    Some(if ta <= tb { (ta, tb) } else { (tb, ta) })
}

const CONVERGED_G: &str = "converged: max|g_i| <= gtol";
const BAD_APPROXIMATION: &str = "A bad approximation caused failure to predict improvement.";

impl<T: Real> TrustNcg<T> {
    /// A run from `x0`; allocates its ten vectors of `x0`'s length up
    /// front.
    pub fn new(x0: &[T], opts: TrustOptions) -> Result<Self> {
        opts.validate()?;
        let n = x0.len();
        let mut xt = alloc_zeroed(n, "the iterate")?;
        xt.copy_from_slice(x0);
        let vec = |what: &str| alloc_zeroed::<T>(n, what);
        Ok(TrustNcg {
            opts,
            x: vec("the iterate")?,
            g: vec("the gradient")?,
            f: f64::NAN,
            gmax: f64::NAN,
            gg: f64::NAN,
            xx: 0.0,
            xt,
            gt: vec("the gradient")?,
            ft: f64::NAN,
            gmaxt: f64::NAN,
            ggt: f64::NAN,
            xxt: 0.0,
            z: vec("the CG iterate")?,
            r: vec("the CG residual")?,
            zn: vec("the CG iterate")?,
            rn: vec("the CG residual")?,
            d: vec("the CG direction")?,
            hd: vec("the Hessian-vector product")?,
            zz: 0.0,
            rr: 0.0,
            gz: 0.0,
            rz: 0.0,
            dd: 0.0,
            zd: 0.0,
            rd: 0.0,
            dhd: 0.0,
            hdmax: 0.0,
            tolerance: 0.0,
            products: 0,
            cg_limit: (n as u64).saturating_mul(10).saturating_add(100),
            predicted: 0.0,
            on_boundary: false,
            radius: opts.initial_trust_radius,
            awaiting: Awaiting::Nothing,
            phase: Phase::Start,
            nit: 0,
            nfev: 0,
            nhev: 0,
            converged: false,
            status: None,
            message: String::new(),
        })
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
    /// `max |g_i|` at the current iterate.
    pub fn gmax(&self) -> f64 {
        self.gmax
    }
    /// The point to evaluate after [`TrustRequest::Evaluate`].
    pub fn x_trial(&self) -> &[T] {
        &self.xt
    }
    /// The vector to multiply by the Hessian at [`TrustNcg::x`] after
    /// [`TrustRequest::HessVec`].
    pub fn hess_vector(&self) -> &[T] {
        &self.d
    }
    /// The trust radius the next iteration will use.
    pub fn radius(&self) -> f64 {
        self.radius
    }
    pub fn nit(&self) -> u64 {
        self.nit
    }
    pub fn nfev(&self) -> u64 {
        self.nfev
    }
    /// The number of Hessian-vector products asked for.
    pub fn nhev(&self) -> u64 {
        self.nhev
    }
    pub fn status(&self) -> Option<Status> {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
    }

    fn check_len(&self, what: &str, len: usize) -> Result<()> {
        if len == self.n() {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                what: what.into(),
                expected: self.n(),
                got: len,
            })
        }
    }

    /// Answers [`TrustRequest::Evaluate`] with `f` and `g` at the trial
    /// point.
    pub fn tell(&mut self, f: f64, g: &[T]) -> Result<()> {
        if self.awaiting != Awaiting::Evaluation {
            return Err(protocol("tell() without an evaluation request"));
        }
        self.check_len("gradient", g.len())?;
        let body = Take {
            gt: Out(self.gt.as_mut_ptr()),
            g: In(g.as_ptr()),
        };
        let sums = pass(self.n(), &body)?;
        self.ft = f;
        self.ggt = sums.sum[0];
        // `max` is -inf for n = 0 and NaN if any element is.
        self.gmaxt = if sums.max.is_nan() {
            f64::NAN
        } else {
            sums.max.max(0.0)
        };
        self.awaiting = Awaiting::Nothing;
        Ok(())
    }

    /// Answers [`TrustRequest::HessVec`] with `H p`.
    pub fn tell_hessp(&mut self, hp: &[T]) -> Result<()> {
        if self.awaiting != Awaiting::Product {
            return Err(protocol("tell_hessp() without a product request"));
        }
        self.check_len("Hessian-vector product", hp.len())?;
        let body = Curvature {
            hd: Out(self.hd.as_mut_ptr()),
            hp: In(hp.as_ptr()),
            d: In(self.d.as_ptr()),
        };
        let sums = pass(self.n(), &body)?;
        self.dhd = sums.sum[0];
        self.hdmax = if sums.max.is_nan() {
            f64::NAN
        } else {
            sums.max.max(0.0)
        };
        self.awaiting = Awaiting::Nothing;
        Ok(())
    }

    /// Ends the run after [`TrustRequest::Iterate`] (status 3).
    pub fn stop(&mut self) {
        if self.status.is_none() {
            self.finish(Status::Stopped, "stopped by the callback".into());
        }
    }

    fn finish(&mut self, status: Status, message: String) -> TrustRequest {
        self.status = Some(status);
        self.message = message;
        self.phase = Phase::Done;
        self.awaiting = Awaiting::Nothing;
        TrustRequest::Done
    }

    /// Runs until the caller is needed.
    #[allow(clippy::should_implement_trait)] // not an iterator: it can fail
    pub fn next(&mut self) -> Result<TrustRequest> {
        if self.awaiting != Awaiting::Nothing {
            return Err(protocol("next() before the request was answered"));
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
                    self.gg = self.ggt;
                    if !(self.f.is_finite() && self.gmax.is_finite() && self.gg.is_finite()) {
                        let msg = format!(
                            "the objective is not finite at x0 (f = {}, max|g_i| = {})",
                            self.f, self.gmax
                        );
                        return Ok(self.finish(Status::LineSearchFailed, msg));
                    }
                    self.xx = reduce::dot(&self.x, &self.x)?;
                    if self.gmax <= self.opts.gtol {
                        return Ok(self.finish(Status::Converged, CONVERGED_G.into()));
                    }
                    self.phase = Phase::Outer;
                }
                Phase::Outer => {
                    if self.nit >= self.opts.max_iter {
                        let msg = format!(
                            "Maximum number of iterations reached (max_iter = {}).",
                            self.opts.max_iter
                        );
                        return Ok(self.finish(Status::Limit, msg));
                    }
                    return self.start_cg();
                }
                Phase::Curvature => {
                    if let Some(req) = self.cg_step()? {
                        return Ok(req);
                    }
                }
                Phase::Trial => return Ok(self.judge()),
                Phase::Iterated => {
                    if self.converged {
                        return Ok(self.finish(Status::Converged, CONVERGED_G.into()));
                    }
                    let floor = f64::EPSILON * self.xx.sqrt().max(1.0);
                    if self.radius < floor {
                        let msg = format!(
                            "the trust radius collapsed ({:e} < eps * max(1, ||x||)): \
                             no step of the model decreases f",
                            self.radius
                        );
                        return Ok(self.finish(Status::LineSearchFailed, msg));
                    }
                    self.phase = Phase::Outer;
                }
                Phase::Done => return Ok(TrustRequest::Done),
            }
        }
    }

    fn request_eval(&mut self) -> TrustRequest {
        self.nfev += 1;
        self.awaiting = Awaiting::Evaluation;
        TrustRequest::Evaluate
    }

    fn request_product(&mut self) -> TrustRequest {
        self.nhev += 1;
        self.products += 1;
        self.awaiting = Awaiting::Product;
        self.phase = Phase::Curvature;
        TrustRequest::HessVec
    }

    /// The CG subproblem from `z = 0`, `r = g`, `d = -g`; asks for `H d`.
    /// (SciPy's first test, `||g|| < tolerance`, never holds for `g != 0`,
    /// and `g = 0` has converged.)
    fn start_cg(&mut self) -> Result<TrustRequest> {
        let body = Start {
            z: Out(self.z.as_mut_ptr()),
            r: Out(self.r.as_mut_ptr()),
            d: Out(self.d.as_mut_ptr()),
            g: In(self.g.as_ptr()),
        };
        let [dd, rd] = pass(self.n(), &body)?.sum;
        let gnorm = self.gg.sqrt();
        self.tolerance = 0.5f64.min(gnorm.sqrt()) * gnorm;
        (self.zz, self.rr, self.gz, self.rz) = (0.0, self.gg, 0.0, 0.0);
        (self.dd, self.zd, self.rd) = (dd, 0.0, rd);
        self.products = 0;
        Ok(self.request_product())
    }

    /// One CG step after `H d` was told: a proposal (an evaluation
    /// request), the next product request, or the end of the run.
    fn cg_step(&mut self) -> Result<Option<TrustRequest>> {
        if !self.hdmax.is_finite() {
            let msg = format!(
                "hessp returned a non-finite value (max|Hp_i| = {})",
                self.hdmax
            );
            return Ok(Some(self.finish(Status::LineSearchFailed, msg)));
        }
        if !self.dhd.is_finite() {
            return Ok(Some(self.breakdown("d'Hd", self.dhd)));
        }
        // m(z) - f, from the residual: (g + r)'z / 2.
        let mz = 0.5 * (self.gz + self.rz);
        if self.dhd <= 0.0 {
            // Negative curvature: the boundary point of lower model value.
            let Some((ta, tb)) = boundary(self.zz, self.zd, self.dd, self.radius) else {
                return Ok(Some(self.breakdown("the boundary intersection", f64::NAN)));
            };
            let q = |t: f64| t * self.rd + 0.5 * t * t * self.dhd;
            let (qa, qb) = (q(ta), q(tb));
            let (t, qt) = if qa < qb { (ta, qa) } else { (tb, qb) };
            return self.propose(Some(t), mz + qt, true).map(Some);
        }
        let alpha = self.rr / self.dhd;
        let body = Advance {
            zn: Out(self.zn.as_mut_ptr()),
            rn: Out(self.rn.as_mut_ptr()),
            z: In(self.z.as_ptr()),
            r: In(self.r.as_ptr()),
            d: In(self.d.as_ptr()),
            hd: In(self.hd.as_ptr()),
            g: In(self.g.as_ptr()),
            alpha: T::from_f64(alpha),
        };
        let [zz, rr, gz, rz] = pass(self.n(), &body)?.sum;
        if !(zz.is_finite() && rr.is_finite() && gz.is_finite() && rz.is_finite()) {
            return Ok(Some(self.breakdown("the CG step", zz + rr + gz + rz)));
        }
        if zz.sqrt() >= self.radius {
            // Leaving the region: z + t d on the boundary, t >= 0.
            let Some((_, tb)) = boundary(self.zz, self.zd, self.dd, self.radius) else {
                return Ok(Some(self.breakdown("the boundary intersection", f64::NAN)));
            };
            let qt = tb * self.rd + 0.5 * tb * tb * self.dhd;
            return self.propose(Some(tb), mz + qt, true).map(Some);
        }
        std::mem::swap(&mut self.z, &mut self.zn);
        std::mem::swap(&mut self.r, &mut self.rn);
        let beta = rr / self.rr;
        (self.zz, self.rr, self.gz, self.rz) = (zz, rr, gz, rz);
        if rr.sqrt() < self.tolerance || self.products >= self.cg_limit {
            return self.propose(None, 0.5 * (gz + rz), false).map(Some);
        }
        let body = Turn {
            d: Out(self.d.as_mut_ptr()),
            z: In(self.z.as_ptr()),
            r: In(self.r.as_ptr()),
            beta: T::from_f64(beta),
        };
        let [dd, zd, rd] = pass(self.n(), &body)?.sum;
        if !(dd.is_finite() && zd.is_finite() && rd.is_finite()) {
            return Ok(Some(self.breakdown("the CG direction", dd + zd + rd)));
        }
        (self.dd, self.zd, self.rd) = (dd, zd, rd);
        Ok(Some(self.request_product()))
    }

    fn breakdown(&mut self, what: &str, value: f64) -> TrustRequest {
        let msg =
            format!("the trust-region subproblem broke down: {what} is not finite ({value}) in CG");
        self.finish(Status::LineSearchFailed, msg)
    }

    /// Proposes `x + p`, `p = z` or `z + t d`, with the model change
    /// `m(p) - m(0) = model`: asks for its evaluation, or ends the run when
    /// no reduction is predicted or at `max_fun`.
    fn propose(&mut self, t: Option<f64>, model: f64, on_boundary: bool) -> Result<TrustRequest> {
        let predicted = -model;
        // SciPy evaluates f at the proposal before this test; the run
        // ends either way, so the evaluation is skipped.
        if predicted.is_nan() || predicted <= 0.0 {
            return Ok(self.finish(Status::LineSearchFailed, BAD_APPROXIMATION.into()));
        }
        if self.nfev >= self.opts.max_fun {
            let msg = format!(
                "Maximum number of function evaluations reached (max_fun = {}); \
                 x is the last accepted iterate.",
                self.opts.max_fun
            );
            return Ok(self.finish(Status::Limit, msg));
        }
        let body = Propose {
            xt: Out(self.xt.as_mut_ptr()),
            x: In(self.x.as_ptr()),
            z: In(self.z.as_ptr()),
            d: In(self.d.as_ptr()),
            t: t.map(T::from_f64),
        };
        self.xxt = pass(self.n(), &body)?.sum[0];
        self.predicted = predicted;
        self.on_boundary = on_boundary;
        self.phase = Phase::Trial;
        Ok(self.request_eval())
    }

    /// The ratio of actual to predicted reduction at the evaluated
    /// proposal: updates the radius, accepts or rejects the step.
    fn judge(&mut self) -> TrustRequest {
        let finite = self.ft.is_finite() && self.gmaxt.is_finite() && self.ggt.is_finite();
        let rho = if finite {
            (self.f - self.ft) / self.predicted
        } else {
            f64::NEG_INFINITY
        };
        let rho = if rho.is_nan() { f64::NEG_INFINITY } else { rho };
        if rho < 0.25 {
            self.radius *= 0.25;
        } else if rho > 0.75 && self.on_boundary {
            self.radius = (2.0 * self.radius).min(self.opts.max_trust_radius);
        }
        if rho > self.opts.eta {
            std::mem::swap(&mut self.x, &mut self.xt);
            std::mem::swap(&mut self.g, &mut self.gt);
            self.f = self.ft;
            self.gmax = self.gmaxt;
            self.gg = self.ggt;
            self.xx = self.xxt;
            self.converged = self.gmax <= self.opts.gtol;
        }
        self.nit += 1;
        self.phase = Phase::Iterated;
        TrustRequest::Iterate
    }

    /// The final iterate and its gradient, consuming the run.
    pub fn into_parts(self) -> (Vec<T>, Vec<T>) {
        (self.x, self.g)
    }
}

fn protocol(what: &str) -> Error {
    Error::Protocol(format!("TrustNcg: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extended Rosenbrock: sum over pairs of 100 (b - a^2)^2 + (1 - a)^2.
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

    /// Its Hessian times `p` (2x2 blocks).
    fn rosen_hessp(x: &[f64], p: &[f64], hp: &mut [f64]) {
        for i in (0..x.len()).step_by(2) {
            let (a, b) = (x[i], x[i + 1]);
            let h11 = 1200.0 * a * a - 400.0 * b + 2.0;
            let h12 = -400.0 * a;
            hp[i] = h11 * p[i] + h12 * p[i + 1];
            hp[i + 1] = h12 * p[i] + 200.0 * p[i + 1];
        }
    }

    struct Run {
        status: Status,
        message: String,
        nit: u64,
        nfev: u64,
        nhev: u64,
        f: f64,
        x: Vec<f64>,
        g: Vec<f64>,
    }

    /// Drives a run with `fun` and `hessp` on plain vectors.
    fn drive(
        x0: &[f64],
        opts: TrustOptions,
        mut fun: impl FnMut(&[f64], &mut [f64]) -> f64,
        mut hessp: impl FnMut(&[f64], &[f64], &mut [f64]),
    ) -> Run {
        let n = x0.len();
        let mut t = TrustNcg::new(x0, opts).unwrap();
        let (mut g, mut hp) = (vec![0.0; n], vec![0.0; n]);
        loop {
            match t.next().unwrap() {
                TrustRequest::Evaluate => {
                    let f = fun(t.x_trial(), &mut g);
                    t.tell(f, &g).unwrap();
                }
                TrustRequest::HessVec => {
                    hessp(t.x(), t.hess_vector(), &mut hp);
                    t.tell_hessp(&hp).unwrap();
                }
                TrustRequest::Iterate => {}
                TrustRequest::Done => break,
            }
        }
        let (status, message) = (t.status().unwrap(), t.message().to_string());
        let (nit, nfev, nhev, f) = (t.nit(), t.nfev(), t.nhev(), t.f());
        let (x, g) = t.into_parts();
        Run {
            status,
            message,
            nit,
            nfev,
            nhev,
            f,
            x,
            g,
        }
    }

    fn standard_start(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect()
    }

    #[test]
    fn solves_rosenbrock_from_the_standard_start() {
        // SciPy's trust-ncg: 29 iterations for n = 2 (gtol 1e-5 on ||g||).
        for n in [2, 100] {
            let r = drive(
                &standard_start(n),
                TrustOptions::default(),
                rosen,
                rosen_hessp,
            );
            assert_eq!(r.status, Status::Converged, "{}", r.message);
            assert!(r.nit <= 45, "n = {n}: {} iterations", r.nit);
            assert!(r.g.iter().all(|g| g.abs() <= 1e-5));
            assert!(r.x.iter().all(|x| (x - 1.0).abs() < 1e-5), "{:?}", r.x);
            assert!(r.f < 1e-10);
            // One evaluation per iteration, plus x0.
            assert_eq!(r.nfev, r.nit + 1);
            assert!(r.nhev >= r.nit);
        }
    }

    #[test]
    fn negative_curvature_goes_to_the_boundary() {
        // sum x^4 / 4 - x^2 / 2: H = 3x^2 - 1 < 0 near 0, minima at +-1.
        let fun = |x: &[f64], g: &mut [f64]| {
            let mut f = 0.0;
            for (gi, &xi) in g.iter_mut().zip(x) {
                f += xi.powi(4) / 4.0 - xi * xi / 2.0;
                *gi = xi.powi(3) - xi;
            }
            f
        };
        let hessp = |x: &[f64], p: &[f64], hp: &mut [f64]| {
            for i in 0..x.len() {
                hp[i] = (3.0 * x[i] * x[i] - 1.0) * p[i];
            }
        };
        let x0 = [0.1, -0.2, 0.05];
        let opts = TrustOptions {
            initial_trust_radius: 0.5,
            ..TrustOptions::default()
        };
        let mut t = TrustNcg::new(&x0, opts).unwrap();
        let (mut g, mut hp) = ([0.0; 3], [0.0; 3]);
        // x0, then the first proposal: on the boundary of radius 0.5.
        assert_eq!(t.next().unwrap(), TrustRequest::Evaluate);
        let f0 = fun(t.x_trial(), &mut g);
        t.tell(f0, &g).unwrap();
        assert_eq!(t.next().unwrap(), TrustRequest::HessVec);
        hessp(t.x(), t.hess_vector(), &mut hp);
        t.tell_hessp(&hp).unwrap();
        assert_eq!(t.next().unwrap(), TrustRequest::Evaluate);
        let step: f64 = t
            .x_trial()
            .iter()
            .zip(&x0)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        assert!((step.sqrt() - 0.5).abs() < 1e-12, "{}", step.sqrt());
        let r = drive(&x0, TrustOptions::default(), fun, hessp);
        assert_eq!(r.status, Status::Converged, "{}", r.message);
        assert!(
            r.x.iter().all(|x| (x.abs() - 1.0).abs() < 1e-5),
            "{:?}",
            r.x
        );
        assert!((r.f + 0.75).abs() < 1e-10);
    }

    #[test]
    fn a_quadratic_converges_in_few_iterations() {
        // Diagonal, condition 1e4, from sqrt(20) away: the radius doubles
        // on the way; SciPy takes 14 iterations too.
        let n = 20;
        let h: Vec<f64> = (0..n).map(|i| 10f64.powf(4.0 * i as f64 / 19.0)).collect();
        let fun = |x: &[f64], g: &mut [f64]| {
            let mut f = 0.0;
            for i in 0..x.len() {
                g[i] = h[i] * (x[i] - 1.0);
                f += 0.5 * h[i] * (x[i] - 1.0) * (x[i] - 1.0);
            }
            f
        };
        let hessp = |_: &[f64], p: &[f64], hp: &mut [f64]| {
            for i in 0..p.len() {
                hp[i] = h[i] * p[i];
            }
        };
        let r = drive(&vec![0.0; n], TrustOptions::default(), fun, hessp);
        assert_eq!(r.status, Status::Converged, "{}", r.message);
        assert!(r.nit <= 14, "{}", r.nit);
        // g_i = h_i (x_i - 1), h_i >= 1.
        assert!(r.x.iter().all(|x| (x - 1.0).abs() <= 1e-5));
    }

    #[test]
    fn not_finite_proposals_shrink_the_radius() {
        // f is +inf outside the unit ball; the first steps leave it.
        let fun = |x: &[f64], g: &mut [f64]| {
            let r2: f64 = x.iter().map(|v| v * v).sum();
            if r2 >= 1.0 {
                g.fill(f64::INFINITY);
                return f64::INFINITY;
            }
            let mut f = -(1.0 - r2).ln();
            for i in 0..x.len() {
                g[i] = 2.0 * x[i] / (1.0 - r2) + 2.0 * (x[i] - 0.5);
                f += (x[i] - 0.5) * (x[i] - 0.5);
            }
            f
        };
        // A Hessian that underestimates the barrier: steps overshoot.
        let hessp = |_: &[f64], p: &[f64], hp: &mut [f64]| {
            for i in 0..p.len() {
                hp[i] = 0.1 * p[i];
            }
        };
        let r = drive(&[0.1; 4], TrustOptions::default(), fun, hessp);
        assert_eq!(r.status, Status::Converged, "{}", r.message);
        assert!(r.x.iter().map(|v| v * v).sum::<f64>() < 1.0);
        assert!(r.nfev > r.nit / 2);
    }

    #[test]
    fn failures_are_statuses() {
        // A NaN Hessian-vector product.
        let r = drive(&[-1.2, 1.0], TrustOptions::default(), rosen, |_, _, hp| {
            hp.fill(f64::NAN)
        });
        assert_eq!(r.status, Status::LineSearchFailed);
        assert!(r.message.contains("hessp"), "{}", r.message);
        assert_eq!((r.nit, r.nfev, r.nhev), (0, 1, 1));
        // A non-finite objective at x0.
        for bad in [f64::NAN, f64::INFINITY] {
            let r = drive(
                &[1.0, 2.0],
                TrustOptions::default(),
                |_, _| bad,
                |_, _, _| {},
            );
            assert_eq!(r.status, Status::LineSearchFailed);
            assert!(r.message.contains("not finite at x0"), "{}", r.message);
            assert_eq!((r.nit, r.nfev, r.nhev), (0, 1, 0));
        }
        // A model that rounds to no decrease: z = alpha d underflows.
        let opts = TrustOptions {
            gtol: 0.0,
            ..TrustOptions::default()
        };
        let r = drive(
            &[1.0],
            opts,
            |_, g| {
                g[0] = 1e-150;
                1.0
            },
            |_, p, hp| hp[0] = 1e300 * p[0],
        );
        assert_eq!(r.status, Status::LineSearchFailed);
        assert_eq!(r.message, BAD_APPROXIMATION);
        assert_eq!((r.nit, r.nfev), (0, 1));
        // Every proposal is +inf: the radius collapses.
        let r = drive(
            &[3.0, 4.0],
            TrustOptions::default(),
            |x, g| {
                g.copy_from_slice(x);
                if x == [3.0, 4.0] {
                    12.5
                } else {
                    f64::INFINITY
                }
            },
            |_, p, hp| hp.copy_from_slice(p),
        );
        assert_eq!(r.status, Status::LineSearchFailed);
        assert!(
            r.message.contains("trust radius collapsed"),
            "{}",
            r.message
        );
        assert_eq!(r.x, [3.0, 4.0]);
        // 4^-k < eps * ||x|| = 2.2e-16 * 5 from k = 25 rejected steps on.
        assert_eq!(r.nit, 25);
    }

    #[test]
    fn limits_give_status_one_and_max_fun_is_never_exceeded() {
        let opts = TrustOptions {
            max_iter: 5,
            ..TrustOptions::default()
        };
        let r = drive(&standard_start(2), opts, rosen, rosen_hessp);
        assert_eq!((r.status, r.nit), (Status::Limit, 5));
        assert!(r.message.contains("max_iter = 5"), "{}", r.message);
        for max_fun in [1, 2, 7] {
            let opts = TrustOptions {
                max_fun,
                ..TrustOptions::default()
            };
            let r = drive(&standard_start(2), opts, rosen, rosen_hessp);
            assert_eq!((r.status, r.nfev), (Status::Limit, max_fun));
            assert!(r.message.contains("max_fun"), "{}", r.message);
        }
        let opts = TrustOptions {
            max_iter: 0,
            ..TrustOptions::default()
        };
        let r = drive(&standard_start(2), opts, rosen, rosen_hessp);
        assert_eq!((r.status, r.nit, r.nfev, r.nhev), (Status::Limit, 0, 1, 0));
        // Converged at x0.
        let r = drive(&[1.0, 1.0], TrustOptions::default(), rosen, rosen_hessp);
        assert_eq!((r.status, r.nit, r.nfev), (Status::Converged, 0, 1));
    }

    #[test]
    fn stop_ends_the_run() {
        let mut t = TrustNcg::new(&standard_start(2), TrustOptions::default()).unwrap();
        let (mut g, mut hp) = ([0.0; 2], [0.0; 2]);
        let mut iterations = 0;
        loop {
            match t.next().unwrap() {
                TrustRequest::Evaluate => {
                    let f = rosen(t.x_trial(), &mut g);
                    t.tell(f, &g).unwrap();
                }
                TrustRequest::HessVec => {
                    rosen_hessp(t.x(), t.hess_vector(), &mut hp);
                    t.tell_hessp(&hp).unwrap();
                }
                TrustRequest::Iterate => {
                    iterations += 1;
                    if iterations == 3 {
                        t.stop();
                    }
                }
                TrustRequest::Done => break,
            }
        }
        assert_eq!((t.status(), t.nit()), (Some(Status::Stopped), 3));
        assert_eq!(t.next().unwrap(), TrustRequest::Done);
    }

    #[test]
    fn out_of_order_calls_are_protocol_errors() {
        let mut t = TrustNcg::new(&[1.0, 2.0], TrustOptions::default()).unwrap();
        assert!(matches!(t.tell(1.0, &[1.0, 1.0]), Err(Error::Protocol(_))));
        assert_eq!(t.next().unwrap(), TrustRequest::Evaluate);
        assert!(matches!(t.next(), Err(Error::Protocol(_))));
        assert!(matches!(t.tell_hessp(&[1.0, 1.0]), Err(Error::Protocol(_))));
        assert!(matches!(
            t.tell(1.0, &[1.0]),
            Err(Error::LengthMismatch { .. })
        ));
        t.tell(1.0, &[1.0, 1.0]).unwrap();
        assert_eq!(t.next().unwrap(), TrustRequest::HessVec);
        assert!(matches!(
            t.tell_hessp(&[1.0, 1.0, 1.0]),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(t.tell(1.0, &[1.0, 1.0]), Err(Error::Protocol(_))));
    }

    #[test]
    fn options_are_validated() {
        let bad = [
            (
                "eta",
                TrustOptions {
                    eta: 0.25,
                    ..Default::default()
                },
            ),
            (
                "eta",
                TrustOptions {
                    eta: -0.1,
                    ..Default::default()
                },
            ),
            (
                "eta",
                TrustOptions {
                    eta: f64::NAN,
                    ..Default::default()
                },
            ),
            (
                "gtol",
                TrustOptions {
                    gtol: -1.0,
                    ..Default::default()
                },
            ),
            (
                "max_fun",
                TrustOptions {
                    max_fun: 0,
                    ..Default::default()
                },
            ),
            (
                "initial_trust_radius",
                TrustOptions {
                    initial_trust_radius: 0.0,
                    ..Default::default()
                },
            ),
            (
                "initial_trust_radius",
                TrustOptions {
                    initial_trust_radius: 2e3,
                    ..Default::default()
                },
            ),
            (
                "max_trust_radius",
                TrustOptions {
                    max_trust_radius: f64::INFINITY,
                    ..Default::default()
                },
            ),
        ];
        for (name, opts) in bad {
            match TrustNcg::<f64>::new(&[0.0], opts) {
                Err(Error::InvalidHyperparameter { name: got, .. }) => assert_eq!(got, name),
                _ => panic!("{name}: {opts:?} accepted"),
            }
        }
        let equal = TrustOptions {
            initial_trust_radius: 1000.0,
            ..Default::default()
        };
        assert!(equal.validate().is_ok());
    }

    #[test]
    fn boundary_roots_are_sorted_and_on_the_sphere() {
        let (ta, tb) = boundary(0.25, 0.1, 2.0, 1.0).unwrap();
        assert!(ta < 0.0 && 0.0 < tb);
        for t in [ta, tb] {
            // ||z + t d||^2 = zz + 2 t zd + t^2 dd.
            assert!((0.25 + 0.2 * t + 2.0 * t * t - 1.0).abs() < 1e-14);
        }
        assert!(boundary(0.0, 0.0, 0.0, 1.0).is_none());
    }
}
