//! Line searches along a descent direction `d` from `x`, on
//! `phi(t) = f(x + t d)` with `phi'(t) = g(x + t d)'d`. Both are reverse
//! communication: they return the next step to evaluate, and the caller
//! answers with `phi` and `phi'` there.
//!
//! - [`MoreThuente`]: the strong Wolfe search of More & Thuente (1994), as
//!   MINPACK-2's `dcsrch` / `dcstep` (the search of L-BFGS-B and of SciPy's
//!   BFGS): safeguarded cubic and quadratic interpolation that brackets a
//!   step with `phi(t) <= phi(0) + c1 t phi'(0)` (sufficient decrease) and
//!   `|phi'(t)| <= c2 |phi'(0)|` (curvature).
//! - [`Backtracking`]: Armijo backtracking (Nocedal & Wright, Algorithm
//!   3.1) with a safeguarded quadratic interpolation: from `t0`, the next
//!   step is the minimizer of the quadratic through `phi(0)`, `phi'(0)` and
//!   `phi(t)`, kept within `[0.1 t, 0.5 t]`, until sufficient decrease.
//!
//! A step where the objective is not finite is never accepted: the search
//! shrinks the step (see [`LineSearch::not_finite`]).

/// What a line search asks for next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    /// Evaluate `phi` and `phi'` at this step.
    Evaluate(f64),
    /// The last step evaluated satisfies the search's conditions.
    Converged,
    /// The search cannot make progress; the last step evaluated is its best
    /// guess (the caller decides whether to take it).
    Warning(&'static str),
    /// The search cannot start (e.g. `phi'(0) >= 0`).
    Error(&'static str),
}

/// The strong Wolfe line search of More & Thuente (MINPACK-2 `dcsrch`).
#[derive(Clone, Debug)]
pub struct MoreThuente {
    /// Sufficient decrease (`c1`).
    pub ftol: f64,
    /// Curvature (`c2`).
    pub gtol: f64,
    /// Relative width of the bracket below which the search stops.
    pub xtol: f64,
    pub stpmin: f64,
    pub stpmax: f64,
    brackt: bool,
    stage: u8,
    finit: f64,
    ginit: f64,
    gtest: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;
const P5: f64 = 0.5;
const P66: f64 = 0.66;

impl MoreThuente {
    pub fn new(ftol: f64, gtol: f64, xtol: f64, stpmin: f64, stpmax: f64) -> Self {
        MoreThuente {
            ftol,
            gtol,
            xtol,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            finit: 0.0,
            ginit: 0.0,
            gtest: 0.0,
            width: 0.0,
            width1: 0.0,
            stx: 0.0,
            fx: 0.0,
            gx: 0.0,
            sty: 0.0,
            fy: 0.0,
            gy: 0.0,
            stmin: 0.0,
            stmax: 0.0,
        }
    }

    /// Starts a search from `phi(0) = f`, `phi'(0) = g` with first step `stp`.
    pub fn start(&mut self, f: f64, g: f64, stp: f64) -> Next {
        if stp.is_nan() || stp < self.stpmin {
            return Next::Error("the initial step is below the minimum step");
        }
        if stp > self.stpmax {
            return Next::Error("the initial step is above the maximum step");
        }
        if g.is_nan() || g >= 0.0 {
            return Next::Error("the search direction is not a descent direction");
        }
        let valid = |v: f64| v >= 0.0;
        if !(valid(self.ftol)
            && valid(self.gtol)
            && valid(self.xtol)
            && valid(self.stpmin)
            && self.stpmax >= self.stpmin)
        {
            return Next::Error("invalid line search parameters");
        }
        self.brackt = false;
        self.stage = 1;
        self.finit = f;
        self.ginit = g;
        self.gtest = self.ftol * g;
        self.width = self.stpmax - self.stpmin;
        self.width1 = self.width / P5;
        self.stx = 0.0;
        self.fx = f;
        self.gx = g;
        self.sty = 0.0;
        self.fy = f;
        self.gy = g;
        self.stmin = 0.0;
        self.stmax = stp + XTRAPU * stp;
        Next::Evaluate(stp)
    }

    /// Whether `phi(stp) = f` satisfies sufficient decrease.
    pub fn sufficient_decrease(&self, stp: f64, f: f64) -> bool {
        f <= self.finit + stp * self.gtest
    }

    /// Feeds `phi(stp) = f`, `phi'(stp) = g` and returns what to do next.
    pub fn step(&mut self, mut stp: f64, f: f64, g: f64) -> Next {
        let ftest = self.finit + stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        let mut warning = None;
        if self.brackt && (stp <= self.stmin || stp >= self.stmax) {
            warning = Some("rounding errors prevent progress");
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            warning = Some("the bracket is narrower than xtol");
        }
        if stp == self.stpmax && f <= ftest && g <= self.gtest {
            warning = Some("the step is at the maximum step");
        }
        if stp == self.stpmin && (f > ftest || g >= self.gtest) {
            warning = Some("the step is at the minimum step");
        }
        if f <= ftest && g.abs() <= self.gtol * (-self.ginit) {
            return Next::Converged;
        }
        if let Some(w) = warning {
            return Next::Warning(w);
        }

        // In the first stage, while a lower value has been found but
        // without sufficient decrease, step on the modified function
        // psi(t) = phi(t) - phi(0) - t * ftol * phi'(0).
        let mut st = Step {
            stx: self.stx,
            fx: self.fx,
            dx: self.gx,
            sty: self.sty,
            fy: self.fy,
            dy: self.gy,
            stp,
            brackt: self.brackt,
        };
        if self.stage == 1 && f <= self.fx && f > ftest {
            let gt = self.gtest;
            st.fx -= self.stx * gt;
            st.fy -= self.sty * gt;
            st.dx -= gt;
            st.dy -= gt;
            st.dcstep(f - stp * gt, g - gt, self.stmin, self.stmax);
            st.fx += st.stx * gt;
            st.fy += st.sty * gt;
            st.dx += gt;
            st.dy += gt;
        } else {
            st.dcstep(f, g, self.stmin, self.stmax);
        }
        self.stx = st.stx;
        self.fx = st.fx;
        self.gx = st.dx;
        self.sty = st.sty;
        self.fy = st.fy;
        self.gy = st.dy;
        self.brackt = st.brackt;
        stp = st.stp;

        // Bisect when the bracket does not shrink fast enough.
        if self.brackt {
            if (self.sty - self.stx).abs() >= P66 * self.width1 {
                stp = self.stx + P5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
        }
        if self.brackt {
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + XTRAPL * (stp - self.stx);
            self.stmax = stp + XTRAPU * (stp - self.stx);
        }
        stp = stp.max(self.stpmin).min(self.stpmax);
        // No further progress possible: try the best step so far.
        if self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            stp = self.stx;
        }
        if !stp.is_finite() {
            return Next::Warning("the interpolated step is not finite");
        }
        Next::Evaluate(stp)
    }
}

/// The state of `dcstep`: the best step `stx`, the other end of the bracket
/// `sty` and the current step `stp`, with values and derivatives.
struct Step {
    stx: f64,
    fx: f64,
    dx: f64,
    sty: f64,
    fy: f64,
    dy: f64,
    stp: f64,
    brackt: bool,
}

impl Step {
    /// MINPACK-2 `dcstep`: the next safeguarded step from the values `fp`
    /// and derivative `dp` at `stp`, and the updated bracket.
    fn dcstep(&mut self, fp: f64, dp: f64, stpmin: f64, stpmax: f64) {
        let (stx, fx, dx, sty, fy, dy, stp) = (
            self.stx, self.fx, self.dx, self.sty, self.fy, self.dy, self.stp,
        );
        let sgnd = dp * (dx / dx.abs());
        let stpf;
        if fp > fx {
            // Higher value: the minimum is bracketed. Take the cubic step if
            // it is closer to stx than the quadratic step, else their mean.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
            if stp < stx {
                gamma = -gamma;
            }
            let p = (gamma - dx) + theta;
            let q = ((gamma - dx) + gamma) + dp;
            let r = p / q;
            let stpc = stx + r * (stp - stx);
            let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
            stpf = if (stpc - stx).abs() < (stpq - stx).abs() {
                stpc
            } else {
                stpc + (stpq - stpc) / 2.0
            };
            self.brackt = true;
        } else if sgnd < 0.0 {
            // Lower value, derivatives of opposite sign: bracketed. Take the
            // cubic step if it is farther from stp than the secant step.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).sqrt();
            if stp > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dx;
            let r = p / q;
            let stpc = stp + r * (stx - stp);
            let stpq = stp + (dp / (dp - dx)) * (stx - stp);
            stpf = if (stpc - stp).abs() > (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            self.brackt = true;
        } else if dp.abs() < dx.abs() {
            // Lower value, same sign, the derivative's magnitude decreases.
            let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
            let s = theta.abs().max(dx.abs()).max(dp.abs());
            // gamma = 0 only when the cubic does not tend to infinity in the
            // direction of the step.
            let mut gamma = s * ((theta / s).powi(2) - (dx / s) * (dp / s)).max(0.0).sqrt();
            if stp > stx {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = (gamma + (dx - dp)) + gamma;
            let r = p / q;
            let stpc = if r < 0.0 && gamma != 0.0 {
                stp + r * (stx - stp)
            } else if stp > stx {
                stpmax
            } else {
                stpmin
            };
            let stpq = stp + (dp / (dp - dx)) * (stx - stp);
            if self.brackt {
                // Cubic step if closer to stp than the secant step, kept
                // within 0.66 of the way to sty.
                let f = if (stpc - stp).abs() < (stpq - stp).abs() {
                    stpc
                } else {
                    stpq
                };
                stpf = if stp > stx {
                    f.min(stp + P66 * (sty - stp))
                } else {
                    f.max(stp + P66 * (sty - stp))
                };
            } else {
                let f = if (stpc - stp).abs() > (stpq - stp).abs() {
                    stpc
                } else {
                    stpq
                };
                stpf = f.min(stpmax).max(stpmin);
            }
        } else if self.brackt {
            // Lower value, same sign, the magnitude does not decrease:
            // cubic step towards sty.
            let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (dy / s) * (dp / s)).sqrt();
            if stp > sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dy;
            let r = p / q;
            stpf = stp + r * (sty - stp);
        } else if stp > stx {
            stpf = stpmax;
        } else {
            stpf = stpmin;
        }

        if fp > fx {
            self.sty = stp;
            self.fy = fp;
            self.dy = dp;
        } else {
            if sgnd < 0.0 {
                self.sty = stx;
                self.fy = fx;
                self.dy = dx;
            }
            self.stx = stp;
            self.fx = fp;
            self.dx = dp;
        }
        self.stp = stpf;
    }
}

/// Armijo backtracking with safeguarded quadratic interpolation.
#[derive(Clone, Debug)]
pub struct Backtracking {
    /// Sufficient decrease (`c1`).
    pub c1: f64,
    f0: f64,
    g0: f64,
}

impl Backtracking {
    pub fn new(c1: f64) -> Self {
        Backtracking {
            c1,
            f0: 0.0,
            g0: 0.0,
        }
    }

    pub fn start(&mut self, f: f64, g: f64, stp: f64) -> Next {
        if g.is_nan() || g >= 0.0 {
            return Next::Error("the search direction is not a descent direction");
        }
        if stp.is_nan() || stp <= 0.0 || stp.is_infinite() {
            return Next::Error("the initial step is not a positive number");
        }
        self.f0 = f;
        self.g0 = g;
        Next::Evaluate(stp)
    }

    pub fn sufficient_decrease(&self, stp: f64, f: f64) -> bool {
        f <= self.f0 + self.c1 * stp * self.g0
    }

    pub fn step(&mut self, stp: f64, f: f64) -> Next {
        if self.sufficient_decrease(stp, f) {
            return Next::Converged;
        }
        // Minimizer of q(t) = f0 + g0 t + a t^2 through phi(stp) = f.
        let a = (f - self.f0 - self.g0 * stp) / (stp * stp);
        let tq = -self.g0 / (2.0 * a);
        let next = if a > 0.0 && tq.is_finite() {
            tq.max(0.1 * stp).min(0.5 * stp)
        } else {
            0.5 * stp
        };
        if next <= 0.0 || self.f0 + self.c1 * next * self.g0 == self.f0 {
            return Next::Warning("the step is too small to decrease the objective");
        }
        Next::Evaluate(next)
    }
}

/// The line search of a run.
#[derive(Clone, Debug)]
pub enum LineSearch {
    StrongWolfe(MoreThuente),
    Backtracking(Backtracking),
}

impl LineSearch {
    pub fn start(&mut self, f: f64, g: f64, stp: f64) -> Next {
        match self {
            LineSearch::StrongWolfe(s) => s.start(f, g, stp),
            LineSearch::Backtracking(s) => s.start(f, g, stp),
        }
    }

    pub fn step(&mut self, stp: f64, f: f64, g: f64) -> Next {
        match self {
            LineSearch::StrongWolfe(s) => s.step(stp, f, g),
            LineSearch::Backtracking(s) => s.step(stp, f),
        }
    }

    pub fn sufficient_decrease(&self, stp: f64, f: f64) -> bool {
        match self {
            LineSearch::StrongWolfe(s) => s.sufficient_decrease(stp, f),
            LineSearch::Backtracking(s) => s.sufficient_decrease(stp, f),
        }
    }

    /// The objective was not finite at `stp`: restart the search from
    /// `phi(0) = f0`, `phi'(0) = g0` at `stp / 4`, never going beyond it
    /// (a strong Wolfe search may still extrapolate up to there).
    pub fn not_finite(&mut self, stp: f64, f0: f64, g0: f64) -> Next {
        let next = 0.25 * stp;
        if next.is_nan() || next <= 0.0 {
            return Next::Warning("the objective is not finite at any step tried");
        }
        match self {
            LineSearch::StrongWolfe(s) => {
                s.stpmax = next;
                s.start(f0, g0, next)
            }
            LineSearch::Backtracking(s) => s.start(f0, g0, next),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search on phi and returns (step, evaluations, outcome).
    fn run(ls: &mut LineSearch, phi: impl Fn(f64) -> (f64, f64), t0: f64) -> (f64, usize, Next) {
        let (f0, g0) = phi(0.0);
        let mut next = ls.start(f0, g0, t0);
        let mut evals = 0;
        let mut t = t0;
        while let Next::Evaluate(s) = next {
            t = s;
            evals += 1;
            assert!(evals < 50, "no termination");
            let (f, g) = phi(t);
            next = if f.is_finite() {
                ls.step(t, f, g)
            } else {
                ls.not_finite(t, f0, g0)
            };
        }
        (t, evals, next)
    }

    #[test]
    fn more_thuente_finds_a_strong_wolfe_step() {
        // phi(t) = (t - 3)^2 and a steep, narrow function.
        type Phi = Box<dyn Fn(f64) -> (f64, f64)>;
        let cases: Vec<(Phi, f64)> = vec![
            (Box::new(|t: f64| ((t - 3.0).powi(2), 2.0 * (t - 3.0))), 1.0),
            (
                Box::new(|t: f64| ((t - 3.0).powi(2), 2.0 * (t - 3.0))),
                100.0,
            ),
            (
                Box::new(|t: f64| {
                    let b = 0.004;
                    (-t / (t * t + b), (t * t - b) / (t * t + b).powi(2))
                }),
                1e-3,
            ),
            (
                Box::new(|t: f64| {
                    let u = t + 0.004;
                    (
                        u.powi(5) - 2.0 * u.powi(4),
                        5.0 * u.powi(4) - 8.0 * u.powi(3),
                    )
                }),
                10.0,
            ),
        ];
        for (phi, t0) in cases {
            let (ftol, gtol) = (1e-3, 0.1);
            let mut ls = LineSearch::StrongWolfe(MoreThuente::new(ftol, gtol, 1e-10, 0.0, 1e10));
            let (t, _, next) = run(&mut ls, &phi, t0);
            assert_eq!(next, Next::Converged, "t0={t0}");
            let (f0, g0) = phi(0.0);
            let (f, g) = phi(t);
            assert!(f <= f0 + ftol * t * g0);
            assert!(g.abs() <= gtol * g0.abs());
        }
    }

    #[test]
    fn ascent_direction_is_refused() {
        let mut ls = MoreThuente::new(1e-3, 0.9, 0.1, 0.0, 1e10);
        assert!(matches!(ls.start(1.0, 0.5, 1.0), Next::Error(_)));
        assert!(matches!(ls.start(1.0, f64::NAN, 1.0), Next::Error(_)));
        let mut bt = Backtracking::new(1e-4);
        assert!(matches!(bt.start(1.0, 0.0, 1.0), Next::Error(_)));
    }

    #[test]
    fn a_wrong_slope_ends_in_a_warning() {
        // phi claims to descend but increases: no step is acceptable.
        let phi = |t: f64| (1.0 + t, -1.0);
        for mut ls in [
            LineSearch::StrongWolfe(MoreThuente::new(1e-3, 0.9, 0.1, 0.0, 1e10)),
            LineSearch::Backtracking(Backtracking::new(1e-4)),
        ] {
            let (t, _, next) = run(&mut ls, phi, 1.0);
            assert!(matches!(next, Next::Warning(_)), "{next:?}");
            // Tiny steps round to no change at all: never a decrease.
            assert!(phi(t).0 >= phi(0.0).0);
        }
    }

    #[test]
    fn backtracking_interpolates_and_keeps_safeguards() {
        let phi = |t: f64| ((t - 0.01).powi(2), 2.0 * (t - 0.01));
        let mut ls = LineSearch::Backtracking(Backtracking::new(1e-4));
        let (t, evals, next) = run(&mut ls, phi, 1.0);
        assert_eq!(next, Next::Converged);
        assert!(t < 0.02 && evals <= 4, "t={t} evals={evals}");
    }

    #[test]
    fn not_finite_values_shrink_the_step() {
        // Finite only for t < 0.5; minimum at 0.4.
        let phi = |t: f64| {
            if t < 0.5 {
                ((t - 0.4).powi(2), 2.0 * (t - 0.4))
            } else {
                (f64::NAN, f64::NAN)
            }
        };
        for mut ls in [
            LineSearch::StrongWolfe(MoreThuente::new(1e-3, 0.9, 0.1, 0.0, 1e10)),
            LineSearch::Backtracking(Backtracking::new(1e-4)),
        ] {
            let (t, _, next) = run(&mut ls, phi, 8.0);
            assert_eq!(next, Next::Converged);
            assert!(t < 0.5 && phi(t).0 < phi(0.0).0);
        }
    }
}
